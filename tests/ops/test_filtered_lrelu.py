"""filtered_lrelu: official parity and properties, for both implementations.

`impl="pallas"` runs the fused kernel in interpret mode on CPU.
"""

import jax
import jax.numpy as jnp
import numpy as np
from absl.testing import absltest
from absl.testing import parameterized
from jax import test_util as jtu

from sg3jax import filters
from sg3jax import ops
from tests import autodiff
from tests import official
from tests.ops import numpy_reference

FLRELU_CASES = [f"flrelu{i}" for i in range(6)]
IMPLS = ("xla", "pallas")


def _official_call(name, impl):
  arrays, cases = official.load("ops")
  c = cases[name]

  def op(x, b):
    return ops.filtered_lrelu(
        x, arrays.get(f"{name}/fu"), arrays.get(f"{name}/fd"), b, up=c["up"],
        down=c["down"], padding=c["padding"], gain=c["gain"],
        slope=c["slope"], clamp=c["clamp"], flip_filter=c["flip_filter"],
        impl=impl)

  return op, arrays


class OfficialParityTest(parameterized.TestCase):

  @parameterized.product(name=FLRELU_CASES, impl=IMPLS)
  def test_forward_and_gradients(self, name, impl):
    op, arrays = _official_call(name, impl)
    x = jnp.asarray(official.nhwc(arrays[f"{name}/x"]))
    b = jnp.asarray(arrays[f"{name}/b"])
    y, (dx, db) = autodiff.value_and_pullback(
        op, (x, b), jnp.asarray(official.nhwc(arrays[f"{name}/dy"])))
    # fp32 parity at 1e-5 of each tensor's scale (observed <= 4e-7 for
    # impl="xla"): the same sums as official, accumulated in another order.
    for actual, key in ((y, "y"), (dx, "dx"), (db, "db")):
      expected = arrays[f"{name}/{key}"]
      expected = official.nhwc(expected) if expected.ndim == 4 else expected
      self.assertEqual(actual.shape, expected.shape, key)
      self.assertLessEqual(official.max_rel_error(actual, expected), 1e-5,
                           key)


class PropertyTest(parameterized.TestCase):

  @parameterized.product(
      impl=IMPLS,
      config=[dict(up=2, down=2, shift=3), dict(up=1, down=2, shift=4),
              dict(up=4, down=2, shift=2), dict(up=2, down=1, shift=1)])
  def test_integer_translation_equivariance(self, impl, config):
    # Shifting the input by s pixels shifts the output by s * up / down
    # pixels; compare away from the borders, where zero padding enters.
    up, down, shift = config["up"], config["down"], config["shift"]
    fu = filters.design_lowpass_filter(6 * up, 3.0, 4.0, 8.0 * up)
    fd = filters.design_lowpass_filter(6 * down, 3.0, 4.0, 8.0 * up) if (
        down > 1) else None
    rng = np.random.default_rng(up * 10 + down)
    x = rng.normal(size=(1, 24 + shift, 24 + shift, 3)).astype(np.float32)
    b = rng.normal(size=3).astype(np.float32)
    kwargs = dict(up=up, down=down, padding=len(fu) // 2, clamp=1.5,
                  impl=impl)
    op = jax.jit(lambda x: ops.filtered_lrelu(x, fu, fd, b, **kwargs))
    y = op(x[:, shift:, shift:])
    y_shifted_input = op(x)
    out_shift = shift * up // down
    margin = 6
    inner = slice(margin, y.shape[1] - margin)
    inner_shifted = slice(margin + out_shift, y.shape[1] - margin + out_shift)
    np.testing.assert_allclose(y[:, inner, inner],
                               y_shifted_input[:, inner_shifted,
                                               inner_shifted],
                               rtol=1e-5, atol=1e-5)

  @parameterized.parameters(*IMPLS)
  def test_check_grads(self, impl):
    rng = np.random.default_rng(5)
    fu = filters.design_lowpass_filter(4, 1.0, 1.0, 4.0)
    fd = filters.design_lowpass_filter(4, 1.0, 1.0, 4.0, radial=True)
    x = jnp.asarray(rng.normal(size=(1, 5, 6, 2)), jnp.float32)
    b = jnp.asarray(rng.normal(size=2), jnp.float32)
    op = jax.jit(lambda x, b: ops.filtered_lrelu(
        x, fu, fd, b, up=2, down=2, padding=[3, 2, 2, 3], clamp=0.8,
        impl=impl))
    # float32 central differences with eps 1e-3 against the custom VJP; the
    # lrelu kink and the clamp make larger steps unreliable.
    jtu.check_grads(op, (x, b), order=1, modes=("rev",), eps=1e-3, atol=2e-2,
                    rtol=2e-2)

  @parameterized.parameters(*IMPLS)
  def test_matches_numpy_oracle_on_random_config(self, impl):
    rng = np.random.default_rng(6)
    fu = rng.normal(size=(5, 4)).astype(np.float32)
    fd = rng.normal(size=7).astype(np.float32)
    x = rng.normal(size=(2, 7, 9, 3)).astype(np.float32)
    b = rng.normal(size=3).astype(np.float32)
    args = dict(up=3, down=2, padding=[4, 2, 1, 5], gain=1.1, slope=0.3,
                clamp=2.0, flip_filter=True)
    y = jax.jit(lambda x: ops.filtered_lrelu(x, fu, fd, b, impl=impl,
                                             **args))(x)
    expected = numpy_reference.filtered_lrelu(x, fu, fd, b, **args)
    np.testing.assert_allclose(y, expected, rtol=1e-5, atol=1e-5)


class FilterGradientTest(absltest.TestCase):

  def test_gradient_wrt_filter_design_matches_autodiff(self):
    # impl="xla" differentiates through fu/fd (e.g. w.r.t. a cutoff); compare
    # with plain autodiff of the unfused official composition.
    rng = np.random.default_rng(7)
    x = jnp.asarray(rng.normal(size=(1, 8, 8, 2)), jnp.float32)
    dy = jnp.asarray(rng.normal(size=(1, 5, 5, 2)), jnp.float32)

    def fused(cutoff):
      fu = filters.design_lowpass_filter_jnp(8, cutoff, 2.0, 8.0)
      fd = filters.design_lowpass_filter_jnp(8, cutoff, 2.0, 8.0, radial=True)
      y = ops.filtered_lrelu(x, fu, fd, up=2, down=2, padding=[4, 3, 4, 3],
                             clamp=1.0, impl="xla")
      return jnp.vdot(y, dy)

    def unfused(cutoff):
      fu = filters.design_lowpass_filter_jnp(8, cutoff, 2.0, 8.0)
      fd = filters.design_lowpass_filter_jnp(8, cutoff, 2.0, 8.0, radial=True)
      v = ops.upfirdn2d(x, fu, up=2, padding=[4, 3, 4, 3], gain=4)
      a = ops.bias_act(v, act="lrelu", clamp=1.0)
      return jnp.vdot(ops.upfirdn2d(a, fd, down=2), dy)

    np.testing.assert_allclose(jax.jit(jax.grad(fused))(1.5),
                               jax.jit(jax.grad(unfused))(1.5),
                               rtol=1e-5)

  def test_pallas_refuses_filter_gradients(self):
    x = jnp.ones((1, 6, 6, 1))
    with self.assertRaisesRegex(ValueError, "impl='xla'"):
      jax.grad(lambda f: ops.filtered_lrelu(x, f, None, up=2, padding=1,
                                            impl="pallas").sum())(
                                                jnp.ones(4) / 4)


class BadInputTest(absltest.TestCase):

  def test_messages(self):
    x = np.zeros((1, 8, 8, 2), np.float32)
    f = np.ones(4, np.float32)
    cases = [
        (lambda: ops.filtered_lrelu(x[0]), r"x: expected rank 4"),
        (lambda: ops.filtered_lrelu(x.astype(np.int8)), r"x: .*floating"),
        (lambda: ops.filtered_lrelu(x, np.ones((2, 2, 2))), r"fu: expected"),
        (lambda: ops.filtered_lrelu(x, f, np.ones((2, 2, 2))),
         r"fd: expected"),
        (lambda: ops.filtered_lrelu(x, b=np.ones(3)), r"b: expected shape"),
        (lambda: ops.filtered_lrelu(x, up=0), r"up: expected an int >= 1"),
        (lambda: ops.filtered_lrelu(x, down=1.5), r"down: expected an int"),
        (lambda: ops.filtered_lrelu(x, padding=[1, 2, 3]), r"padding:"),
        (lambda: ops.filtered_lrelu(x, gain=0), r"gain: .* > 0"),
        (lambda: ops.filtered_lrelu(x, slope=-1), r"slope: .* >= 0"),
        (lambda: ops.filtered_lrelu(x, clamp=-1), r"clamp: .* >= 0"),
        (lambda: ops.filtered_lrelu(x, impl="cuda"), r"impl: expected"),
    ]
    for call, message in cases:
      with self.assertRaisesRegex(ValueError, message):
        call()


if __name__ == "__main__":
  absltest.main()
