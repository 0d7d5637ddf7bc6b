"""sg3jax export: the artifact, reloaded without sg3jax, renders G.apply's
images; one export serves every batch size and platform."""

import functools
import json
import pathlib
import re
import shutil
import subprocess
import sys
import tempfile
import textwrap
from unittest import mock

import jax
import jax.numpy as jnp
import numpy as np
from absl.testing import absltest

from sg3jax import analysis
from sg3jax import serving
from sg3jax.cli import export
from sg3jax.convert import generator_from_kwargs
from sg3jax.serving import loader
from tests.analysis import tiny

# Runs in a fresh interpreter where importing sg3jax fails: renders the
# export in argv[1] for the z of argv[2] and saves the images to argv[3].
_RELOAD = textwrap.dedent("""
    import importlib.abc, sys

    class NoSg3jax(importlib.abc.MetaPathFinder):
      def find_spec(self, name, path, target=None):
        if name.split(".")[0] == "sg3jax":
          raise ImportError("the export must run without sg3jax")

    sys.meta_path.insert(0, NoSg3jax())
    sys.path.insert(0, sys.argv[1])
    import numpy as np
    import loader
    G = loader.load(sys.argv[1])
    z = np.load(sys.argv[2])
    np.savez(sys.argv[3], batch=G(z, psi=0.7), one=G(z[:1], psi=0.7))
    assert not any(m.split(".")[0] == "sg3jax" for m in sys.modules)
    """)


def expected_images(module, variables, z, psi):
  """uint8 images of G.apply, quantized as gen_images.py does."""
  render = jax.jit(functools.partial(module.apply, truncation_psi=psi))
  return analysis.to_uint8(render(variables, z))


class ExportTest(absltest.TestCase):

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    cls.root = pathlib.Path(tempfile.mkdtemp())
    cls.addClassCleanup(shutil.rmtree, cls.root)
    export.run(["export", f"--network={tiny.checkpoint_dir()}",
                f"--outdir={cls.root}"])

  def test_reloaded_without_sg3jax_renders_g_apply_images(self):
    module, variables = tiny.generator()
    z = np.random.RandomState(1).randn(3, module.z_dim).astype(np.float32)
    np.save(self.root / "z.npy", z)
    out = self.root / "images.npz"
    subprocess.run([sys.executable, "-c", _RELOAD, str(self.root),
                    str(self.root / "z.npy"), str(out)], check=True)
    expected = expected_images(module, variables, z, 0.7)
    with np.load(out) as images:
      np.testing.assert_array_equal(images["batch"], expected)
      np.testing.assert_array_equal(images["one"], expected[:1])
    self.assertTrue(np.any(expected[0] != expected[1]))

  def test_manifest_and_platforms(self):
    manifest = json.loads((self.root / "manifest.json").read_text())
    self.assertEqual(manifest["platforms"], ["cpu", "cuda", "tpu"])
    self.assertEqual((manifest["z_dim"], manifest["c_dim"],
                      manifest["img_resolution"]), (8, 0, 16))
    with np.load(self.root / "weights.npz") as npz:
      self.assertEqual(sorted(npz.files), sorted(manifest["weights"]))
    self.assertIn("params/mapping/fc0/weight", manifest["weights"])

  def test_loader_checks_inputs(self):
    generator = loader.load(self.root)
    with self.assertRaisesRegex(ValueError, r"z: expected \[N >= 1, 8\]"):
      generator(np.zeros((2, 5), np.float32))
    with self.assertRaisesRegex(ValueError, r"c: expected \[2, 0\]"):
      generator(np.zeros((2, 8), np.float32), np.zeros((2, 3), np.float32))
    with self.assertRaisesRegex(ValueError, "no manifest.json"):
      loader.load(self.root / "missing")

  def test_accelerator_host_exports_the_xla_filtered_lrelu(self):
    # On a GPU/TPU host impl="auto" picks the Pallas kernel; the export
    # must not carry it (its lowering is per platform, compiled only there).
    module, variables = tiny.generator()
    with mock.patch("jax.default_backend", return_value="tpu"):
      text = serving.export_generator(module, variables).mlir_module()
    self.assertEqual(set(re.findall(r"custom_call @(\w+)", text)),
                     {"shape_assertion"})  # the symbolic batch checks only

  def test_stylegan2_generator_exports(self):
    module = generator_from_kwargs(
        dict(z_dim=8, c_dim=3, w_dim=8, img_resolution=8, img_channels=3,
             mapping_kwargs={"num_layers": 1}, channel_base=64,
             channel_max=8), class_name="StyleGAN2Generator")
    variables = jax.jit(module.init)(jax.random.key(0), jnp.zeros((1, 8)),
                                     jnp.zeros((1, 3)))
    exported = serving.export_generator(module, variables, platforms=("cpu",))
    z = np.random.RandomState(2).randn(2, 8).astype(np.float32)
    c = np.eye(3, dtype=np.float32)[[0, 2]]
    images = exported.call(serving.named_leaves(variables)[1], z, c,
                           np.float32(0.5))
    render = jax.jit(functools.partial(module.apply, truncation_psi=0.5))
    np.testing.assert_array_equal(images,
                                  analysis.to_uint8(render(variables, z, c)))

  def test_bad_platform_is_named(self):
    module, variables = tiny.generator()
    with self.assertRaisesRegex(ValueError, "platforms: .*'gpu'"):
      serving.export_generator(module, variables, platforms=("gpu",))


if __name__ == "__main__":
  absltest.main()
