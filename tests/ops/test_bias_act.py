"""bias_act: official parity and each activation against NumPy."""

import jax
import numpy as np
from absl.testing import absltest
from absl.testing import parameterized

from sg3jax import ops
from tests import official


def _numpy_act(name, x, alpha):
  return {
      "linear": x, "relu": np.maximum(x, 0),
      "lrelu": np.where(x > 0, x, x * alpha), "tanh": np.tanh(x),
      "sigmoid": 1 / (1 + np.exp(-x)),
      "elu": np.where(x > 0, x, np.expm1(x)),
      "selu": 1.0507009873554805 * np.where(
          x > 0, x, 1.6732632423543772 * np.expm1(x)),
      "softplus": np.log1p(np.exp(x)), "swish": x / (1 + np.exp(-x)),
  }[name]


class BiasActTest(parameterized.TestCase):

  def test_official_parity(self):
    arrays, cases = official.load("ops")
    c = cases["bias_act0"]
    y = ops.bias_act(official.nhwc(arrays["bias_act0/x"]),
                     arrays["bias_act0/b"], act=c["act"], alpha=c["alpha"],
                     gain=c["gain"], clamp=c["clamp"])
    # Elementwise fp32: 1e-6 of the scale (observed exact).
    self.assertLessEqual(
        official.max_rel_error(y, official.nhwc(arrays["bias_act0/y"])), 1e-6)

  @parameterized.parameters("linear", "relu", "lrelu", "tanh", "sigmoid",
                            "elu", "selu", "softplus", "swish")
  def test_activation_defaults(self, act):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2, 3, 4, 5)).astype(np.float32)
    b = rng.normal(size=5).astype(np.float32)
    spec = ops.bias_act_activations()[act]
    expected = _numpy_act(act, x + b, spec.def_alpha) * spec.def_gain
    np.testing.assert_allclose(ops.bias_act(x, b, act=act), expected,
                               rtol=1e-5, atol=1e-6)
    clamped = jax.jit(lambda x: ops.bias_act(x, b, act=act, clamp=0.3))(x)
    np.testing.assert_allclose(clamped, np.clip(expected, -0.3, 0.3),
                               rtol=1e-5, atol=1e-6)

  def test_clamp_gradient_is_one_up_to_and_at_the_bound(self):
    # torch.clamp's gradient (the official reference path): 1 where
    # -clamp <= y <= clamp, the bounds included; 0 beyond.
    x = np.array([-0.5, -0.3, -0.1, 0.0, 0.2, 0.3, 0.7], np.float32)
    grad = jax.grad(lambda x: ops.bias_act(x, act="linear", clamp=0.3).sum())
    np.testing.assert_array_equal(grad(x), [0, 1, 1, 1, 1, 1, 0])
    np.testing.assert_array_equal(
        ops.bias_act(x, act="linear", clamp=0.3),
        np.float32([-0.3, -0.3, -0.1, 0.0, 0.2, 0.3, 0.3]))

  def test_default_gains_are_official(self):
    spec = ops.bias_act_activations()
    self.assertAlmostEqual(spec["lrelu"].def_gain, np.sqrt(2))
    self.assertAlmostEqual(spec["lrelu"].def_alpha, 0.2)
    self.assertEqual(spec["linear"].def_gain, 1.0)

  def test_bad_input(self):
    x = np.zeros((2, 4), np.float32)
    with self.assertRaisesRegex(ValueError, r"act: expected one of"):
      ops.bias_act(x, act="gelu")
    with self.assertRaisesRegex(ValueError, r"b: expected shape \[4\]"):
      ops.bias_act(x, np.zeros(3))
    with self.assertRaisesRegex(ValueError, r"x: .*floating"):
      ops.bias_act(x.astype(np.int32))


if __name__ == "__main__":
  absltest.main()
