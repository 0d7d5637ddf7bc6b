"""sg3jax.analysis.sticking: neighbourhood average and pixel strips."""

import numpy as np
from absl.testing import absltest

from sg3jax import analysis


class NeighbourhoodTest(absltest.TestCase):

  def test_centre_first_then_perturbations(self):
    z = np.arange(6, dtype=np.float32)
    zs = analysis.neighbourhood_latents(z, 2001, radius=0.5, seed=3)
    self.assertEqual(zs.shape, (2001, 6))
    np.testing.assert_array_equal(zs[0], z)
    # 12000 draws of N(0, 0.25): the std is 0.5 within a few percent.
    self.assertAlmostEqual(float((zs[1:] - z).std()), 0.5, delta=0.02)
    np.testing.assert_array_equal(
        analysis.neighbourhood_latents(z, 3, radius=0.0), np.stack([z] * 3))

  def test_bad_arguments(self):
    with self.assertRaisesRegex(ValueError, r"z: expected \[z_dim\], got"):
      analysis.neighbourhood_latents(np.zeros((2, 3)), 4, radius=1)
    with self.assertRaisesRegex(ValueError, "radius: expected >= 0, got -1"):
      analysis.neighbourhood_latents(np.zeros(3), 4, radius=-1)


class AverageTest(absltest.TestCase):

  def test_average_of_identical_images_is_the_image(self):
    image = np.random.default_rng(0).uniform(-1, 1, (5, 7, 3))
    np.testing.assert_array_equal(
        analysis.average_image(np.stack([image] * 4)), image)

  def test_average_of_shifted_images_blurs(self):
    # A single bright pixel moving right: the average spreads it out.
    images = np.zeros((4, 1, 8, 1))
    for i in range(4):
      images[i, 0, i + 2] = 1
    np.testing.assert_array_equal(
        analysis.average_image(images)[0, :, 0],
        [0, 0, 0.25, 0.25, 0.25, 0.25, 0, 0])

  def test_bad_images(self):
    with self.assertRaisesRegex(ValueError, r"images: expected \[N >= 1"):
      analysis.average_image(np.zeros((0, 4, 4, 3)))


class StripTest(absltest.TestCase):

  def test_columns_are_the_frame_segments(self):
    frames = np.random.default_rng(1).integers(0, 256, (9, 16, 12, 3),
                                               dtype=np.uint8)
    strip = analysis.pixel_strip(frames, column=5, rows=(4, 10))
    self.assertEqual(strip.shape, (6, 9, 3))
    self.assertEqual(strip.dtype, np.uint8)
    for t in range(9):
      np.testing.assert_array_equal(strip[:, t], frames[t, 4:10, 5])

  def test_default_segment_is_the_middle_half(self):
    self.assertEqual(analysis.default_segment(16), (4, 12))

  def test_bad_segment(self):
    frames = np.zeros((2, 8, 8, 3))
    with self.assertRaisesRegex(ValueError, "column: expected 0..7, got 8"):
      analysis.pixel_strip(frames, column=8, rows=(0, 4))
    with self.assertRaisesRegex(ValueError,
                                r"rows: expected 0 <= start < stop <= 8, "
                                r"got \(4, 4\)"):
      analysis.pixel_strip(frames, column=0, rows=(4, 4))


if __name__ == "__main__":
  absltest.main()
