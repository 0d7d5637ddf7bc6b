"""grid_sample: the planes-first sampler is the NHWC one, transposed."""

import jax
import numpy as np
from absl.testing import absltest

from sg3jax.ops import grid_sample


class PlanesFirstSampleTest(absltest.TestCase):

  def test_values_and_gradients_are_the_transposed_nhwc_ones(self):
    rng = np.random.default_rng(0)
    n, hu, wu, c = 3, 7, 9, 2
    y = rng.normal(size=(n, hu, wu, c)).astype(np.float32)
    # Pixel coordinates [N, 5, 6], some outside the image (zero padding).
    px = rng.uniform(-2, wu + 1, size=(n, 5, 6)).astype(np.float32)
    py = rng.uniform(-2, hu + 1, size=(n, 5, 6)).astype(np.float32)
    self.assertTrue(np.any(px < 0) and np.any(py >= hu))

    def nhwc(y):
      return grid_sample.bilinear_sample(y, px, py)

    def planes(y):
      return grid_sample.bilinear_sample_planes(
          y.transpose(3, 0, 1, 2), px, py).transpose(1, 2, 3, 0)

    expected, nhwc_pullback = jax.vjp(nhwc, y)
    got, planes_pullback = jax.vjp(planes, y)
    self.assertEqual(got.shape, (n, 5, 6, c))
    np.testing.assert_array_equal(got, expected)
    dy = rng.normal(size=expected.shape).astype(np.float32)
    np.testing.assert_allclose(planes_pullback(dy)[0], nhwc_pullback(dy)[0],
                               rtol=1e-6, atol=1e-6)


if __name__ == "__main__":
  absltest.main()
