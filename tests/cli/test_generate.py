"""sg3jax generate: seeds, truncation, transforms, classes, PNG output."""

import functools
import pathlib

import jax
import jax.numpy as jnp
import numpy as np
from absl.testing import absltest
from PIL import Image

from sg3jax.cli import common
from sg3jax.cli import generate
from sg3jax.training import checkpoints
from tests import official
from tests.training.test_checkpoints import converted_generator


class ParseTest(absltest.TestCase):

  def test_ranges_and_vectors(self):
    self.assertEqual(common.parse_ints("0,3-5, 9", "seeds"), [0, 3, 4, 5, 9])
    self.assertEqual(common.parse_vec2("0.1,-0.2"), (0.1, -0.2))
    with self.assertRaisesRegex(ValueError, "seeds:"):
      common.parse_ints("a-b", "seeds")
    with self.assertRaisesRegex(ValueError, "translate:"):
      common.parse_vec2("1,2,3")
    with self.assertRaisesRegex(ValueError, "translate: expected 'x,y'"):
      common.parse_vec2("1,b")


class GenerateTest(absltest.TestCase):

  def test_translate_rotate_match_official_transform(self):
    module, variables, _, arrays = converted_generator()
    _, cases = official.load("g_t64")
    tx, ty, angle = cases["transform"]["make_transform"]
    moved = generate.with_transform(variables, (tx, ty), angle)
    img = jax.jit(module.apply)(moved, jnp.asarray(arrays["transform/z"]))
    # fp32 parity, 1e-5 of the image scale (as the generator tests).
    self.assertLessEqual(
        official.max_rel_error(img, official.nhwc(arrays["transform/img"])),
        1e-5)

  def test_seeds_draw_official_latents(self):
    module, variables, _, _ = converted_generator()
    images = generate.generate_images(module, variables, [3],
                                      truncation_psi=0.5)
    z = np.random.RandomState(3).randn(1, 64).astype(np.float32)
    expected = np.asarray(jax.jit(functools.partial(
        module.apply, truncation_psi=0.5))(variables, z))
    expected = np.clip(expected * 127.5 + 128, 0, 255).astype(np.uint8)
    np.testing.assert_array_equal(images, expected)

  def test_class_label_checks(self):
    module, variables, _, _ = converted_generator()
    with self.assertRaisesRegex(ValueError, "unconditional"):
      generate.generate_images(module, variables, [0], class_idx=1)

  def test_command_writes_pngs(self):
    module, variables, init_kwargs, _ = converted_generator()
    root = pathlib.Path(self.create_tempdir().full_path)
    ckpt = checkpoints.save_networks(root / "ckpt", {
        "G_ema": checkpoints.Network("Generator", init_kwargs, variables)})
    generate.run(["generate", f"--network={ckpt}", "--seeds=1-2",
                  "--trunc=0.7", "--translate=0.2,0", "--rotate=30",
                  f"--outdir={root / 'out'}"])
    expected = generate.generate_images(module, variables, [1, 2],
                                        truncation_psi=0.7,
                                        translate=(0.2, 0.0), rotate=30.0)
    for seed, image in zip((1, 2), expected):
      with Image.open(root / "out" / f"seed{seed:04d}.png") as png:
        np.testing.assert_array_equal(np.asarray(png), image)
    self.assertTrue(np.any(expected[0] != expected[1]))

  def test_command_reports_missing_network(self):
    # After a full run in the same process: flags must not carry over.
    root = pathlib.Path(self.create_tempdir().full_path)
    _, variables, init_kwargs, _ = converted_generator()
    ckpt = checkpoints.save_networks(root / "ckpt", {
        "G_ema": checkpoints.Network("Generator", init_kwargs, variables)})
    generate.run(["generate", f"--network={ckpt}", "--seeds=1",
                  f"--outdir={root}"])
    with self.assertRaises(SystemExit) as exit_info:
      generate.run(["generate", "--seeds=1"])
    self.assertIn("--network", str(exit_info.exception.code))


if __name__ == "__main__":
  absltest.main()
