"""sg3jax.analysis.video: looping interpolation, seed layout, frames."""

import numpy as np
from absl.testing import absltest
from absl.testing import parameterized

from sg3jax import analysis
from tests.analysis import tiny


class InterpolateTest(parameterized.TestCase):

  @parameterized.parameters("cubic", "linear")
  def test_passes_through_keyframes_and_loops(self, kind):
    keys = np.random.default_rng(0).normal(size=(3, 2, 4))
    curve = analysis.interpolate_loop(keys, 10, kind=kind)
    self.assertEqual(curve.shape, (30, 2, 4))
    self.assertEqual(curve.dtype, np.float32)
    np.testing.assert_allclose(curve[::10], keys, rtol=1e-6, atol=1e-6)

  def test_linear_midpoints(self):
    keys = np.array([[0.0], [1.0], [3.0]])
    curve = analysis.interpolate_loop(keys, 2, kind="linear")
    np.testing.assert_allclose(curve[:, 0], [0, 0.5, 1, 2, 3, 1.5])

  def test_cubic_is_smooth_across_the_loop(self):
    keys = np.random.default_rng(1).normal(size=(4, 3))
    curve = analysis.interpolate_loop(keys, 50)
    # Periodic spline: the second difference at the seam (frames -1, 0, 1)
    # is as small as anywhere else, i.e. O(step^2), no kink.
    second = np.diff(np.concatenate([curve[-1:], curve, curve[:1]]), 2,
                     axis=0)
    step = np.abs(np.diff(curve, axis=0)).max()
    self.assertLess(np.abs(second[0]).max(), 0.1 * step)
    self.assertLess(np.abs(second).max(), 0.1 * step)

  def test_one_keyframe_is_constant(self):
    curve = analysis.interpolate_loop(np.ones((1, 2)), 3)
    np.testing.assert_array_equal(curve, np.ones((3, 2)))

  def test_bad_arguments(self):
    with self.assertRaisesRegex(ValueError, "kind: expected one of"):
      analysis.interpolate_loop(np.ones((2, 2)), 3, kind="quadratic")
    with self.assertRaisesRegex(ValueError,
                                "frames_per_transition: expected >= 1, got 0"):
      analysis.interpolate_loop(np.ones((2, 2)), 0)


class LayoutTest(absltest.TestCase):

  def test_keyframe_seeds_as_gen_video(self):
    cells = analysis.keyframe_seeds([1, 2, 3, 4, 5, 6], grid=(3, 1))
    np.testing.assert_array_equal(cells, [[[1, 2], [3, 4], [5, 6]]])
    cells = analysis.keyframe_seeds([7, 8], grid=(1, 2), num_keyframes=3)
    np.testing.assert_array_equal(cells, [[[7, 8, 7]], [[8, 7, 8]]])
    shuffled = analysis.keyframe_seeds([1, 2, 3, 4], shuffle_seed=5)
    expected = np.array([1, 2, 3, 4])
    np.random.RandomState(5).shuffle(expected)
    np.testing.assert_array_equal(shuffled[0, 0], expected)
    with self.assertRaisesRegex(ValueError,
                                "seeds: expected a multiple of the 4 grid "
                                "cells, got 3 seeds"):
      analysis.keyframe_seeds([1, 2, 3], grid=(2, 2))

  def test_layout_grid_row_major(self):
    images = np.arange(6)[:, None, None, None] * np.ones((6, 2, 3, 1))
    grid = analysis.layout_grid(images, (3, 2))
    self.assertEqual(grid.shape, (4, 9, 1))
    np.testing.assert_array_equal(grid[::2, ::3, 0], [[0, 1, 2], [3, 4, 5]])
    with self.assertRaisesRegex(ValueError, r"images: expected \[6, H, W, C"):
      analysis.layout_grid(images[:5], (3, 2))

  def test_frame_strip(self):
    frames = np.arange(10)[:, None, None, None] * np.ones((10, 2, 3, 1))
    strip = analysis.frame_strip(frames, 4)
    self.assertEqual(strip.shape, (2, 12, 1))
    np.testing.assert_array_equal(strip[0, ::3, 0], [0, 2, 5, 7])


class RenderFramesTest(absltest.TestCase):

  def test_frames_are_the_grid_of_each_cells_image(self):
    module, variables = tiny.generator()
    z = analysis.seed_latents([0, 1, 2, 3], module.z_dim)
    ws = np.asarray(analysis.map_latents(
        variables, z, analysis.class_labels(0, 4, None), module=module))
    # grid 2x1, 2 keyframes each, 3 frames per transition: 6 frames.
    curves = np.stack([analysis.interpolate_loop(ws[:2], 3),
                       analysis.interpolate_loop(ws[2:], 3)])[None]
    frames = list(analysis.render_frames(module, variables, curves,
                                         batch_size=tiny.BATCH))
    self.assertLen(frames, 6)
    self.assertEqual(frames[0].shape, (16, 32, 3))
    self.assertEqual(frames[0].dtype, np.uint8)
    cells = analysis.to_uint8(analysis.render_ws(
        module, variables, np.stack([curves[0, 0, 4], curves[0, 1, 4]]),
        batch_size=tiny.BATCH))
    # Same ws in other batch slots: equal up to 1 LSB of rounding.
    np.testing.assert_allclose(
        frames[4].astype(int),
        analysis.layout_grid(cells, (2, 1)).astype(int), atol=1)


if __name__ == "__main__":
  absltest.main()
