"""Filter designs: official parity, the jnp form and its gradients."""

import jax
import jax.numpy as jnp
import numpy as np
from absl.testing import absltest
from absl.testing import parameterized

from sg3jax import filters
from tests import official

DESIGN_CASES = [f"design{i}" for i in range(7)]


def _case(name):
  arrays, cases = official.load("ops")
  c = cases[name]
  return c, arrays.get(f"{name}/f")


class KaiserParityTest(parameterized.TestCase):

  @parameterized.parameters(*DESIGN_CASES)
  def test_numpy_design_matches_official(self, name):
    c, expected = _case(name)
    f = filters.design_lowpass_filter(c["numtaps"], c["cutoff"], c["width"],
                                      c["fs"], c["radial"])
    if c["identity"]:
      self.assertIsNone(f)
      return
    self.assertEqual(f.dtype, np.float32)
    self.assertEqual(f.shape, expected.shape)
    # Same float64 formula as scipy.signal.firwin / the official jinc, cast
    # to float32: at most one float32 rounding step apart.
    np.testing.assert_allclose(f, expected, rtol=1e-6, atol=0)

  @parameterized.parameters(*DESIGN_CASES)
  def test_jnp_design_matches_official(self, name):
    c, expected = _case(name)
    f = filters.design_lowpass_filter_jnp(c["numtaps"], c["cutoff"],
                                          c["width"], c["fs"], c["radial"])
    if c["identity"]:
      self.assertIsNone(f)
      return
    # float32 evaluation (and the rational J1 for radial filters): 1e-5 of
    # the largest tap.
    self.assertLessEqual(official.max_rel_error(f, expected), 1e-5)


class DifferentiableDesignTest(parameterized.TestCase):

  @parameterized.product(radial=[False, True], design=["kaiser", "lanczos"])
  def test_gradient_matches_finite_differences(self, radial, design):
    # Sinc design: the width gives atten 29 dB (mid Kaiser branch); jinc:
    # atten 77 dB (high branch): both branches of kaiser_beta are exercised.
    numtaps, fs = (12, 32.0) if not radial else (24, 64.0)
    cutoff, width = (3.0, 4.0) if not radial else (8.0, 8.6)
    probe = np.random.default_rng(0).normal(
        size=(numtaps,) * (2 if radial else 1))

    def loss(cutoff, width):
      f = filters.design_lowpass_filter_jnp(numtaps, cutoff, width, fs,
                                            radial, design=design)
      return jnp.sum(f * probe)

    with jax.enable_x64(True):
      grads = jax.grad(loss, argnums=(0, 1))(cutoff, width)
      eps = 1e-5
      for i, g in enumerate(grads):
        hi = [cutoff, width]
        lo = [cutoff, width]
        hi[i] += eps
        lo[i] -= eps
        numeric = (loss(*hi) - loss(*lo)) / (2 * eps)
        np.testing.assert_allclose(g, numeric, rtol=1e-5, atol=1e-9)
    self.assertTrue(np.all(np.isfinite(np.asarray(grads, np.float32))))

  def test_jittable(self):
    design = jax.jit(lambda c: filters.design_lowpass_filter_jnp(
        12, c, 4.2, 32.0))
    np.testing.assert_allclose(
        design(2.0), filters.design_lowpass_filter(12, 2.0, 4.2, 32),
        rtol=1e-5, atol=1e-7)

  def test_odd_radial_centre_is_finite(self):
    f = filters.design_lowpass_filter(7, 1.0, 2.0, 8.0, radial=True)
    self.assertTrue(np.all(np.isfinite(f)))
    np.testing.assert_allclose(f.sum(), 1.0, rtol=1e-6)
    self.assertEqual(np.unravel_index(np.argmax(f), f.shape), (3, 3))


class RegistryTest(parameterized.TestCase):

  def test_available(self):
    self.assertContainsSubset({"kaiser", "lanczos"},
                              filters.available_filter_designs())

  def test_unknown_design_names_choices(self):
    with self.assertRaisesRegex(ValueError, "unknown filter design 'boxcar'.*"
                                "kaiser"):
      filters.design_lowpass_filter(12, 2.0, 4.2, 32, design="boxcar")

  def test_duplicate_registration_refused(self):
    with self.assertRaisesRegex(ValueError, "already registered"):
      filters.register_filter_design("kaiser")(filters.kaiser_design)

  def test_bad_numtaps(self):
    with self.assertRaisesRegex(ValueError, "numtaps"):
      filters.design_lowpass_filter(0, 2.0, 4.2, 32)

  @parameterized.parameters(False, True)
  def test_lanczos_is_a_lowpass(self, radial):
    fs, cutoff = 32.0, 4.0
    f = filters.design_lowpass_filter(24, cutoff, 4.0, fs, radial,
                                      design="lanczos")
    np.testing.assert_allclose(f.sum(), 1.0, rtol=1e-6)
    taps = f if not radial else f.sum(axis=0)  # a 1-D slice of the response
    response = np.abs(np.fft.rfft(taps, 512))
    freqs = np.fft.rfftfreq(512, d=1 / fs)
    self.assertGreater(response[freqs <= cutoff / 2].min(), 0.9)
    self.assertLess(response[freqs >= 2 * cutoff].max(), 0.05)


if __name__ == "__main__":
  absltest.main()
