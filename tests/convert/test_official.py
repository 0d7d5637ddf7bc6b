"""Official pickle -> sg3jax: networks, ADA state, checkpoint, CLI, safety."""

import functools
import pathlib

import jax
import jax.numpy as jnp
import numpy as np
from absl.testing import absltest

from sg3jax.cli import convert as convert_cli
from sg3jax.cli import generate
from sg3jax.convert import official as official_pkl
from sg3jax.convert import pickle_reader
from sg3jax.training import checkpoints
from tests import official
from tests.convert.pickle_writer import _dumps
from tests.convert.pickle_writer import _Evil
from tests.convert.pickle_writer import _Module
from tests.convert.pickle_writer import _tensor
from tests.convert.pickle_writer import network_object
from tests.training import test_checkpoints


def _states():
  g_arrays, g_cases = official.load("g_t64")
  loss_arrays, loss_cases = official.load("loss_t64")
  g_state = {k[len("state/"):]: v for k, v in g_arrays.items()
             if k.startswith("state/")}
  d_state = {k[len("D_state/"):]: v for k, v in loss_arrays.items()
             if k.startswith("D_state/")}
  return (g_state, g_cases["state"]["init_kwargs"], d_state,
          loss_cases["D_init_kwargs"], g_arrays, loss_arrays)


@functools.cache
def snapshot_bytes(evil_target: str | None = None,
                   sentinel: str = "") -> bytes:
  """An official-format snapshot of the fixture networks (protocol 3)."""
  g_state, g_kwargs, d_state, d_kwargs, _, _ = _states()
  data = {
      "G": network_object("Generator", g_state, g_kwargs),
      "D": network_object("Discriminator", d_state, d_kwargs),
      "G_ema": network_object("Generator", g_state, g_kwargs),
      "augment_pipe": _Module("AugmentPipe", init_kwargs=dict(xflip=1),
                              buffers=dict(p=_tensor(
                                  np.float32(0.3).reshape(())))),
      "training_set_kwargs": dict(path="ffhq.zip", resolution=64),
  }
  if evil_target is not None:
    data = {"payload": _Evil(evil_target, sentinel), **data}
  return _dumps(data, protocol=3, evil_target=evil_target)


class OfficialPickleTest(absltest.TestCase):

  def setUp(self):
    super().setUp()
    self.root = pathlib.Path(self.create_tempdir().full_path)
    self.pkl = self.root / "network-snapshot-000000.pkl"
    self.pkl.write_bytes(snapshot_bytes())

  def test_load_gives_working_networks_and_ada_state(self):
    loaded = official_pkl.load_official_pickle(self.pkl)
    _, _, _, _, g_arrays, loss_arrays = _states()
    module, variables = loaded["G_ema"]
    img = jax.jit(module.apply)(variables, g_arrays["psi1.0/z"])
    # fp32 parity with the official image, 1e-5 of its scale.
    self.assertLessEqual(
        official.max_rel_error(img, official.nhwc(g_arrays["psi1.0/img"])),
        1e-5)
    d_module, d_variables = loaded["D"]
    logits = jax.jit(d_module.apply)(
        d_variables, jnp.asarray(official.nhwc(loss_arrays["real_img"])),
        jnp.asarray(loss_arrays["real_c"]))
    np.testing.assert_allclose(jax.nn.softplus(-logits[:, 0]),
                               loss_arrays["blur0/D_real"], rtol=1e-5)
    self.assertAlmostEqual(loaded["augment_pipe"]["p"], 0.3, places=6)
    self.assertEqual(loaded["augment_pipe"]["init_kwargs"], {"xflip": 1})
    self.assertEqual(loaded["training_set_kwargs"]["path"], "ffhq.zip")

  def test_convert_command_then_generate(self):
    outdir = self.root / "converted"
    convert_cli.run(["convert", str(self.pkl), str(outdir)])
    self.assertEqual(set(checkpoints.read_network_meta(outdir)),
                     {"G", "D", "G_ema"})
    self.assertAlmostEqual(
        checkpoints.read_extras(outdir)["augment_pipe"]["p"], 0.3, places=6)
    generate.run(["generate", f"--network={outdir}", "--seeds=5",
                  f"--outdir={self.root / 'images'}"])
    self.assertTrue((self.root / "images" / "seed0005.png").exists())
    # A flipped byte in an array chunk of the converted checkpoint is found
    # (and the command exits with the message).
    flipped = test_checkpoints.flip_byte_in_largest_file(outdir / "variables")
    with self.assertRaisesRegex(
        SystemExit, f"{flipped.relative_to(outdir)}: SHA-256 .*, expected"):
      generate.run(["generate", f"--network={outdir}", "--seeds=5",
                    f"--outdir={self.root / 'images'}"])

  def test_malicious_pickle_is_refused_and_runs_nothing(self):
    sentinel = self.root / "pwned"
    evil = self.root / "evil.pkl"
    evil.write_bytes(snapshot_bytes("os.system", str(sentinel)))
    with self.assertRaisesRegex(pickle_reader.UnsafePickleError, "os.system"):
      convert_cli.run(["convert", str(evil), str(self.root / "out")])
    self.assertFalse(sentinel.exists())
    self.assertFalse((self.root / "out").exists())


if __name__ == "__main__":
  absltest.main()
