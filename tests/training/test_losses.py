"""loss_terms against the official StyleGAN2Loss terms (loss_t64)."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
from absl.testing import absltest
from absl.testing import parameterized

from sg3jax import convert
from sg3jax.training import losses
from tests import official


@functools.cache
def _setup():
  arrays, cases = official.load("loss_t64")
  g_state = {k[len("G_state/"):]: v for k, v in arrays.items()
             if k.startswith("G_state/")}
  d_state = {k[len("D_state/"):]: v for k, v in arrays.items()
             if k.startswith("D_state/")}
  G, g_variables = convert.generator_from_state_dict(
      g_state, cases["G_init_kwargs"], filtered_lrelu_impl="xla")
  D, d_variables = convert.discriminator_from_state_dict(
      d_state, cases["D_init_kwargs"])
  return G, g_variables, D, d_variables, arrays, cases


class LossTermsTest(parameterized.TestCase):

  @parameterized.parameters(0.0, 10.0)
  def test_per_sample_terms_match_official(self, blur_sigma):
    G, g_variables, D, d_variables, arrays, cases = _setup()
    terms = jax.jit(functools.partial(
        losses.loss_terms, G, D=D, r1_gamma=cases["r1_gamma"],
        blur_sigma=blur_sigma))(
            g_variables=g_variables, d_variables=d_variables,
            real_img=jnp.asarray(official.nhwc(arrays["real_img"])),
            real_c=arrays["real_c"], gen_z=arrays["gen_z"],
            gen_c=arrays["gen_c"])
    self.assertEqual(set(terms), {"G_main", "D_gen", "D_real", "R1"})
    for name, value in terms.items():
      expected = arrays[f"blur{int(blur_sigma)}/{name}"]
      self.assertEqual(value.shape, (4,))
      # fp32 at 1e-5 of each term's scale (observed <= 1.3e-6).
      self.assertLessEqual(official.max_rel_error(value, expected), 1e-5,
                           name)

  def test_blur_kernel_is_the_official_one(self):
    img = np.zeros((1, 65, 65, 1), np.float32)
    img[0, 32, 32, 0] = 1
    blurred = np.asarray(losses.blur_images(img, 2.0))[0, :, :, 0]
    taps = np.exp2(-np.square(np.arange(-6, 7) / 2.0))
    taps /= taps.sum()
    np.testing.assert_allclose(blurred[26:39, 26:39], np.outer(taps, taps),
                               rtol=1e-5, atol=1e-8)
    self.assertAlmostEqual(float(blurred.sum()), 1.0, places=5)
    np.testing.assert_array_equal(losses.blur_images(img, 0.3), img)


if __name__ == "__main__":
  absltest.main()
