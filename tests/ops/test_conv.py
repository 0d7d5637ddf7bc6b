"""modulated_conv2d: official parity and the grouped-conv definition."""

import jax
import jax.numpy as jnp
import numpy as np
from absl.testing import absltest
from absl.testing import parameterized
from jax import test_util as jtu

from sg3jax import ops
from sg3jax.ops import conv as conv_lib
from tests import official


def _grouped_reference(x, w, s, demodulate, padding, input_gain):
  """The official formulation, literally: per-sample weights, grouped conv."""
  n, _, _, in_ch = x.shape
  if demodulate:
    w = w * jax.lax.rsqrt(jnp.mean(w ** 2, axis=(0, 1, 2), keepdims=True))
    s = s * jax.lax.rsqrt(jnp.mean(s ** 2))
  wn = w[None] * s[:, None, None, :, None]  # [N, kh, kw, I, O]
  if demodulate:
    wn = wn * jax.lax.rsqrt(jnp.sum(wn ** 2, axis=(1, 2, 3), keepdims=True)
                            + 1e-8)
  if input_gain is not None:
    wn = wn * jnp.broadcast_to(input_gain, (n, in_ch))[:, None, None, :, None]
  out = []
  for i in range(n):
    out.append(jax.lax.conv_general_dilated(
        x[i:i + 1], wn[i], (1, 1), [(padding, padding)] * 2,
        dimension_numbers=("NHWC", "HWIO", "NHWC"),
        precision=jax.lax.Precision.HIGHEST))
  return jnp.concatenate(out)


class ModulatedConvTest(parameterized.TestCase):

  @parameterized.parameters("modconv0", "modconv1", "modconv2")
  def test_official_parity(self, name):
    arrays, cases = official.load("ops")
    c = cases[name]
    y = ops.modulated_conv2d(
        official.nhwc(arrays[f"{name}/x"]), official.hwio(arrays[f"{name}/w"]),
        arrays[f"{name}/s"], demodulate=c["demodulate"], padding=c["padding"],
        input_gain=c["input_gain"])
    # fp32 at 1e-5 of the output scale (observed <= 3e-7): demodulation is
    # applied to the output instead of the weights, same math.
    self.assertLessEqual(
        official.max_rel_error(y, official.nhwc(arrays[f"{name}/y"])), 1e-5)

  @parameterized.product(demodulate=[True, False],
                         input_gain=[None, "scalar", "per_sample"])
  def test_matches_grouped_definition(self, demodulate, input_gain):
    rng = np.random.default_rng(1)
    x = rng.normal(size=(3, 7, 6, 4)).astype(np.float32)
    w = rng.normal(size=(3, 3, 4, 5)).astype(np.float32)
    s = rng.normal(size=(3, 4)).astype(np.float32)
    gain = {None: None, "scalar": np.float32(0.7),
            "per_sample": rng.uniform(0.5, 2, size=(3, 4)).astype(
                np.float32)}[input_gain]
    y = jax.jit(lambda x, w, s: ops.modulated_conv2d(
        x, w, s, demodulate=demodulate, padding=1, input_gain=gain))(x, w, s)
    expected = _grouped_reference(x, w, s, demodulate, 1, gain)
    np.testing.assert_allclose(y, expected, rtol=1e-5, atol=1e-5)

  def test_gradients_match_grouped_definition(self):
    rng = np.random.default_rng(2)
    x = jnp.asarray(rng.normal(size=(2, 5, 5, 3)), jnp.float32)
    w = jnp.asarray(rng.normal(size=(3, 3, 3, 4)), jnp.float32)
    s = jnp.asarray(rng.normal(size=(2, 3)), jnp.float32)
    dy = jnp.asarray(rng.normal(size=(2, 5, 5, 4)), jnp.float32)
    ours = jax.grad(lambda *a: jnp.vdot(ops.modulated_conv2d(*a, padding=1),
                                        dy), argnums=(0, 1, 2))(x, w, s)
    ref = jax.grad(lambda *a: jnp.vdot(_grouped_reference(*a, True, 1, None),
                                       dy), argnums=(0, 1, 2))(x, w, s)
    for a, b in zip(ours, ref):
      np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)

  def test_bad_input(self):
    x = np.zeros((2, 5, 5, 3), np.float32)
    w = np.zeros((3, 3, 3, 4), np.float32)
    with self.assertRaisesRegex(ValueError, r"w: expected \[kh, kw, 3, O\]"):
      ops.modulated_conv2d(x, w[:, :, :2], np.zeros((2, 3)))
    with self.assertRaisesRegex(ValueError, r"s: expected \[2, 3\]"):
      ops.modulated_conv2d(x, w, np.zeros((2, 4)))


if __name__ == "__main__":
  absltest.main()


class Conv2dTest(parameterized.TestCase):

  @parameterized.parameters(((3, 3), (1, 1)), ((3, 3), (2, 2)),
                            ((3, 3), (0, 0)), ((3, 3), (3, 4)),
                            ((1, 1), (0, 0)), ((1, 1), (1, 0)),
                            ((3, 2), (1, 0)))
  def test_custom_vjp_matches_xla_conv(self, kernel, padding):
    rng = np.random.default_rng(4)
    x = jnp.asarray(rng.normal(size=(2, 6, 7, 3)), jnp.float32)
    w = jnp.asarray(rng.normal(size=kernel + (3, 4)), jnp.float32)

    def xla(x, w):
      return jax.lax.conv_general_dilated(
          x, w, (1, 1), [(p, p) for p in padding],
          dimension_numbers=("NHWC", "HWIO", "NHWC"))

    y = ops.conv2d(x, w, padding)
    np.testing.assert_allclose(y, xla(x, w), rtol=1e-5, atol=1e-5)
    dy = jnp.asarray(rng.normal(size=y.shape), jnp.float32)
    ours = jax.grad(lambda x, w: jnp.vdot(ops.conv2d(x, w, padding), dy),
                    argnums=(0, 1))(x, w)
    ref = jax.grad(lambda x, w: jnp.vdot(xla(x, w), dy), argnums=(0, 1))(x, w)
    for a, b in zip(ours, ref):
      np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4)
    with jax.enable_x64(True):
      jtu.check_grads(lambda x, w: ops.conv2d(x, w, padding),
                      (x.astype(jnp.float64), w.astype(jnp.float64)), order=2,
                      modes=("rev",))

  @parameterized.parameters(((3, 3), (2, 2)), ((3, 3), (0, 0)),
                            ((1, 1), (0, 0)), ((3, 2), (1, 0)))
  def test_accelerator_branch_matches_the_cpu_branch(self, kernel, padding):
    # conv2d lowers `_conv` and `_weight_grad` for GPUs and TPUs, the CPU
    # arrangement (`_conv_cpu`, `_weight_grad_cpu`) here: same values.
    rng = np.random.default_rng(5)
    x = jnp.asarray(rng.normal(size=(2, 6, 7, 3)), jnp.float32)
    w = jnp.asarray(rng.normal(size=kernel + (3, 4)), jnp.float32)
    y = conv_lib._conv(x, w, padding)
    np.testing.assert_allclose(y, conv_lib._conv_cpu(x, w, padding),
                               rtol=1e-5, atol=1e-5)
    dy = jnp.asarray(rng.normal(size=y.shape), jnp.float32)
    dw = conv_lib._weight_grad(x, dy, w, padding)
    self.assertEqual(dw.shape, w.shape)
    np.testing.assert_allclose(dw, conv_lib._weight_grad_cpu(x, dy, w,
                                                             padding),
                               rtol=1e-4, atol=1e-4)
