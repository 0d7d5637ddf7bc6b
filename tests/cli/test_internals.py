"""sg3jax internals: a grid of layer channels."""

import pathlib

import jax
import numpy as np
from absl.testing import absltest
from PIL import Image

from sg3jax import analysis
from sg3jax.cli import internals
from sg3jax.training import checkpoints
from tests.analysis import tiny
from tests.convert import pickle_writer


def _write_tiny_pkl(path: pathlib.Path) -> pathlib.Path:
  """The tiny generator as G_ema of an official-format pickle."""
  module, variables = tiny.generator()
  path.write_bytes(pickle_writer.snapshot_bytes(
      {"G_ema": (module, variables, tiny.INIT_KWARGS)}))
  return path


class InternalsTest(absltest.TestCase):

  def test_tiles_of_chosen_layers(self):
    module, variables = tiny.generator()
    tiles, layers = internals.internal_tiles(
        module, variables, 4, layers=["0", "L2", "-1"], channels=[0, 3, 5])
    self.assertEqual(layers, ["input", "L2_20_6", "L4_16_3"])
    self.assertEqual(tiles.shape, (3, 3, 20, 20))
    # ToRGB has 3 channels: channels 3 and 5 are missing there.
    self.assertTrue(np.isnan(tiles[2, 1:]).all())
    self.assertFalse(np.isnan(tiles[:2]).any())
    z = analysis.seed_latents([4], module.z_dim)
    ws = analysis.map_latents(variables, z, analysis.class_labels(0, 1, None),
                              module=module)
    acts = analysis.capture_layers(variables, ws, np.eye(3, dtype=np.float32),
                                   module=module, layers=("L2_20_6",))
    channel = np.asarray(acts["L2_20_6"])[0, :, :, 3]
    np.testing.assert_allclose(
        tiles[1, 1], 0.5 + 0.5 * channel / np.abs(channel).max(), atol=1e-6)

  def test_default_layers_spread_from_input_to_torgb(self):
    module, _ = tiny.generator()
    self.assertEqual(internals.default_layers(module),
                     ["input", "L0_20_8", "L1_20_8", "L3_16_4", "L4_16_3"])

  def test_command_writes_the_grid(self):
    out = pathlib.Path(self.create_tempdir().full_path)
    internals.run(["internals", f"--network={tiny.checkpoint_dir()}",
                   "--seed=1", "--layers=0,L2,-1", "--channels=0-2",
                   "--translate=0.1,0", f"--outdir={out}"])
    with Image.open(out / "internals.png") as png:
      # (1.6 in per tile + margins) x 100 dpi, 3 x 3 tiles.
      self.assertEqual(png.size, (560, 520))
    with self.assertRaisesRegex(ValueError, "channels: expected e.g."):
      internals.run(["internals", f"--network={tiny.checkpoint_dir()}",
                     "--channels=a", f"--outdir={out}"])

  def test_official_pickle_loads_as_the_checkpoint(self):
    out = pathlib.Path(self.create_tempdir().full_path)
    pkl = _write_tiny_pkl(out / "network-snapshot-000000.pkl")
    module, variables = checkpoints.load_generator(pkl)
    expected_module, expected = checkpoints.load_generator(
        tiny.checkpoint_dir())
    self.assertEqual(module, expected_module)
    jax.tree.map(np.testing.assert_array_equal, variables, expected)
    internals.run(["internals", f"--network={pkl}", "--layers=0",
                   "--channels=0", f"--outdir={out}"])
    self.assertTrue((out / "internals.png").exists())


if __name__ == "__main__":
  absltest.main()
