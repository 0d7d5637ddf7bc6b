"""sg3jax.analysis.spectrum against NumPy and known spectra."""

import numpy as np
from absl.testing import absltest
from absl.testing import parameterized

from sg3jax import analysis


def _numpy_spectrum(images, mean, std, beta, interp):
  """Literal NumPy of the official `calc` accumulation (float64)."""
  size = images.shape[1]
  w = np.kaiser(size, beta)
  w = w / np.sqrt(np.sum(w ** 2))
  window = np.outer(w, w)
  total = 0
  for image in images.astype(np.float64):
    x = (image - mean) / std * window[:, :, None]
    x = np.pad(x, ((0, size * (interp - 1)), (0, size * (interp - 1)),
                   (0, 0)))
    total = total + (np.abs(np.fft.fft2(x, axes=(0, 1))) ** 2).mean(axis=2)
  return total / len(images)


def _sinusoid(size, fx, fy):
  """`[1, size, size, 1]` cos wave, fx/fy cycles per image along x/y."""
  y, x = np.mgrid[:size, :size] / size
  return np.cos(2 * np.pi * (fx * x + fy * y))[None, :, :, None]


class StatsTest(absltest.TestCase):

  def test_mean_std_of_batches(self):
    rng = np.random.default_rng(0)
    batches = [rng.integers(0, 256, (n, 4, 4, 3), dtype=np.uint8)
               for n in (2, 3)]
    moments = sum(analysis.image_moments(b) for b in batches)
    everything = np.concatenate(batches).astype(np.float64)
    mean, std = analysis.mean_std(moments)
    self.assertAlmostEqual(mean, everything.mean(), places=9)
    self.assertAlmostEqual(std, everything.std(), places=9)
    with self.assertRaisesRegex(ValueError, "moments: expected a positive"):
      analysis.mean_std(np.zeros(3))

  def test_kaiser_window_unit_energy(self):
    window = analysis.kaiser_window(9, beta=8)
    self.assertAlmostEqual(float(np.square(window).sum()), 1.0, places=12)
    np.testing.assert_array_equal(window, window.T)
    self.assertEqual(np.unravel_index(window.argmax(), window.shape), (4, 4))

  def test_subset_indices(self):
    np.testing.assert_array_equal(analysis.subset_indices(5, None, 0),
                                  np.arange(5))
    picked = analysis.subset_indices(100, 10, 3)
    self.assertLen(np.unique(picked), 10)
    np.testing.assert_array_equal(picked, np.sort(picked))
    np.testing.assert_array_equal(picked, analysis.subset_indices(100, 10, 3))
    with self.assertRaisesRegex(ValueError, "num: expected 1..5"):
      analysis.subset_indices(5, 6, 0)


class SpectrumTest(parameterized.TestCase):

  @parameterized.parameters((1, 0.0), (4, 8.0), (2, 3.0))
  def test_matches_numpy(self, interp, beta):
    rng = np.random.default_rng(1)
    images = rng.integers(0, 256, (5, 12, 12, 3), dtype=np.uint8)
    batches = [images[:2], images[2:]]
    spectrum = analysis.average_power_spectrum(batches, mean=100.0, std=50.0,
                                               beta=beta, interp=interp)
    expected = _numpy_spectrum(images, 100.0, 50.0, beta, interp)
    self.assertEqual(spectrum.shape, (12 * interp, 12 * interp))
    # float32 FFT of values up to ~3: 1e-5 of the largest bin.
    np.testing.assert_allclose(spectrum, expected,
                               atol=1e-5 * expected.max())

  @parameterized.parameters((5, 0), (0, 3), (4, 4))
  def test_sinusoid_peaks_at_its_frequency(self, fx, fy):
    size, interp = 32, 4
    spectrum = analysis.average_power_spectrum(
        [_sinusoid(size, fx, fy)], mean=0.0, std=1.0, interp=interp)
    # Unshifted: a real cos at (fx, fy) puts equal peaks at +-(fx, fy)
    # cycles per image, bins (fy, fx) * interp modulo S.
    s = size * interp
    peaks = {tuple(np.unravel_index(i, spectrum.shape))
             for i in np.argsort(spectrum, axis=None)[-2:]}
    self.assertEqual(peaks, {(fy * interp % s, fx * interp % s),
                             (-fy * interp % s, -fx * interp % s)})
    # The heatmap centres DC: its 0-degree slice peaks at fx.
    if fy == 0:
      hmap = analysis.spectrum_heatmap(spectrum, size)
      freqs, values = analysis.spectrum_slices(hmap, size)["0"]
      self.assertAlmostEqual(freqs[values.argmax()], fx)

  def test_heatmap_layout(self):
    spectrum = np.ones((8, 8))
    spectrum[0, 0] = 100  # DC
    hmap = analysis.spectrum_heatmap(spectrum, 4)
    self.assertEqual(hmap.shape, (9, 9))
    self.assertEqual(hmap[4, 4], 20)  # 10 log10(100) dB, centred
    np.testing.assert_array_equal(hmap[8], hmap[0])
    np.testing.assert_array_equal(hmap[:, 8], hmap[:, 0])
    # Smoothing a constant changes nothing.
    np.testing.assert_allclose(
        analysis.spectrum_heatmap(np.full((8, 8), 10.0), 4, smooth=1.25), 10)
    slices = analysis.spectrum_slices(hmap, 4)
    np.testing.assert_allclose(slices["0"][0], [0, 0.5, 1, 1.5, 2])
    np.testing.assert_allclose(slices["45"][0][-1], 4 / np.sqrt(2))
    self.assertEqual(slices["0"][1][0], 20)

  def test_bad_arguments(self):
    with self.assertRaisesRegex(ValueError, "std: expected > 0, got 0"):
      analysis.average_power_spectrum([], mean=0, std=0)
    with self.assertRaisesRegex(ValueError, "expected at least one image"):
      analysis.average_power_spectrum([], mean=0, std=1)
    with self.assertRaisesRegex(ValueError, r"batches: expected square"):
      analysis.average_power_spectrum([np.zeros((1, 4, 5, 3))], mean=0,
                                      std=1)
    with self.assertRaisesRegex(ValueError, r"spectrum: expected \[S, S\]"):
      analysis.spectrum_heatmap(np.ones((4, 5)), 4)


if __name__ == "__main__":
  absltest.main()
