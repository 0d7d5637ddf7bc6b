"""sg3jax sticking: neighbourhood average and pixel strip PNGs."""

import pathlib

import numpy as np
from absl.testing import absltest
from PIL import Image

from sg3jax import analysis
from sg3jax.cli import sticking
from sg3jax.training import checkpoints
from tests.analysis import tiny


class StickingTest(absltest.TestCase):

  def test_zero_radius_average_is_the_centre_image(self):
    module, variables = tiny.generator()
    pair, strip = sticking.sticking_images(
        module, variables, 3, num=8, radius=0.0, frames_per_transition=4,
        column=5, rows=(2, 9), batch_size=tiny.BATCH)
    self.assertEqual(pair.shape, (16, 32, 3))
    np.testing.assert_array_equal(pair[:, :16], pair[:, 16:])
    self.assertEqual(strip.shape, (7, 8, 3))

  def test_strip_columns_are_interpolation_frames(self):
    module, variables = tiny.generator()
    _, strip = sticking.sticking_images(
        module, variables, 0, num=8, interp_seeds=[4, 9],
        frames_per_transition=4, batch_size=tiny.BATCH)
    z = analysis.seed_latents([4, 9], module.z_dim)
    ws = analysis.map_latents(variables, z, analysis.class_labels(0, 2, None),
                              module=module)
    # Frame 0 is keyframe seed 4, frame 4 is seed 9; middle half of rows
    # (4:12) of column 8.
    keys = analysis.to_uint8(analysis.render_ws(module, variables, ws,
                                                batch_size=tiny.BATCH))
    np.testing.assert_allclose(strip[:, 0].astype(int),
                               keys[0, 4:12, 8].astype(int), atol=1)
    np.testing.assert_allclose(strip[:, 4].astype(int),
                               keys[1, 4:12, 8].astype(int), atol=1)
    self.assertGreater(np.abs(np.diff(strip.astype(int), axis=1)).max(), 0)

  def test_command_writes_both_pngs(self):
    out = pathlib.Path(self.create_tempdir().full_path)
    sticking.run(["sticking", f"--network={tiny.checkpoint_dir()}",
                  "--seed=2", "--num=8", "--radius=0.5",
                  "--frames_per_transition=4", "--rows=3:11", "--column=7",
                  "--zoom=2", f"--outdir={out}"])
    module, variables = checkpoints.load_generator(tiny.checkpoint_dir())
    pair, strip = sticking.sticking_images(
        module, variables, 2, num=8, radius=0.5, frames_per_transition=4,
        column=7, rows=(3, 11), batch_size=tiny.BATCH)
    with Image.open(out / "sticking_average.png") as png:
      average = np.asarray(png)
    with Image.open(out / "sticking_strip.png") as png:
      stacked = np.asarray(png)
    self.assertEqual(average.shape, (32, 64, 3))
    self.assertEqual(stacked.shape, (16, 16, 3))
    np.testing.assert_array_equal(average[::2, ::2], pair)
    np.testing.assert_array_equal(stacked[::2, ::2], strip)
    # Perturbed latents: the average differs from the centre image.
    self.assertGreater(np.abs(pair[:, :16].astype(int)
                              - pair[:, 16:].astype(int)).max(), 0)

  def test_bad_rows_flag(self):
    with self.assertRaisesRegex(ValueError, "rows: expected 'start:stop'"):
      sticking.parse_rows("3-9")


if __name__ == "__main__":
  absltest.main()
