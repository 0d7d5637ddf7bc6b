"""upfirdn2d: official parity, a literal NumPy oracle, VJPs of any order."""

import jax
import jax.numpy as jnp
import numpy as np
from absl.testing import absltest
from absl.testing import parameterized
from jax import test_util as jtu

from sg3jax import ops
from tests import autodiff
from tests import official
from tests.ops import numpy_reference

UPFIRDN_CASES = [f"upfirdn{i}" for i in range(5)]


class OfficialParityTest(parameterized.TestCase):

  @parameterized.parameters(*UPFIRDN_CASES)
  def test_forward_and_input_gradient(self, name):
    arrays, cases = official.load("ops")
    c = cases[name]
    x = jnp.asarray(official.nhwc(arrays[f"{name}/x"]))

    def op(x):
      return ops.upfirdn2d(x, arrays[f"{name}/f"], up=c["up"], down=c["down"],
                           padding=c["padding"], flip_filter=c["flip_filter"],
                           gain=c["gain"])

    y, (dx,) = autodiff.value_and_pullback(
        op, (x,), jnp.asarray(official.nhwc(arrays[f"{name}/dy"])))
    # fp32 parity: 1e-5 of the output scale (observed ~3e-7; the official
    # reference is a grouped conv, ours polyphase shift-adds: same sums in
    # another order).
    self.assertLessEqual(
        official.max_rel_error(y, official.nhwc(arrays[f"{name}/y"])), 1e-5)
    self.assertLessEqual(
        official.max_rel_error(dx, official.nhwc(arrays[f"{name}/dx"])), 1e-5)


class NumpyOracleTest(parameterized.TestCase):

  @parameterized.parameters(
      dict(up=(1, 1), down=(1, 1), padding=(2, 1, 0, 3), taps=(5,)),
      dict(up=(3, 2), down=(1, 1), padding=(4, 4, 3, 2), taps=(6,)),
      dict(up=(1, 1), down=(3, 2), padding=(1, 2, 2, 1), taps=(7, 4)),
      dict(up=(2, 2), down=(3, 3), padding=(-2, 5, 3, -1), taps=(8,)),
      dict(up=(4, 3), down=(2, 2), padding=(5, 6, 4, 4), taps=(8, 9)),
      dict(up=(3, 3), down=(2, 2), padding=(0, 0, 0, 0), taps=(2,)),
      dict(up=(2, 2), down=(4, 4), padding=(3, 3, 3, 3), taps=(1,)),
  )
  def test_matches_literal_definition(self, up, down, padding, taps):
    rng = np.random.default_rng(sum(up + down + padding + taps))
    x = rng.normal(size=(2, 9, 11, 3)).astype(np.float32)
    f = rng.normal(size=taps).astype(np.float32)
    for flip in (False, True):
      y = ops.upfirdn2d(x, f, up=list(up), down=list(down),
                        padding=list(padding), flip_filter=flip, gain=1.7)
      expected = numpy_reference.upfirdn2d(x, f, up, down, padding, flip, 1.7)
      self.assertEqual(y.shape, expected.shape)
      np.testing.assert_allclose(y, expected, rtol=1e-5, atol=1e-5)

  def test_padding_forms_agree(self):
    x = np.random.default_rng(1).normal(size=(1, 8, 8, 2)).astype(np.float32)
    f = np.ones(4, np.float32) / 4
    np.testing.assert_array_equal(ops.upfirdn2d(x, f, padding=2),
                                  ops.upfirdn2d(x, f, padding=[2, 2, 2, 2]))
    np.testing.assert_array_equal(ops.upfirdn2d(x, f, padding=[1, 3]),
                                  ops.upfirdn2d(x, f, padding=[1, 1, 3, 3]))

  def test_identity_filter(self):
    x = np.random.default_rng(2).normal(size=(2, 5, 6, 3)).astype(np.float32)
    np.testing.assert_array_equal(ops.upfirdn2d(x, None), x)
    np.testing.assert_array_equal(ops.upfirdn2d(x, None, down=2),
                                  x[:, ::2, ::2])


class GradientTest(parameterized.TestCase):

  @parameterized.parameters(
      dict(up=2, down=1, taps=(4,)), dict(up=1, down=2, taps=(3, 4)),
      dict(up=3, down=2, taps=(6,)))
  def test_check_grads_x_and_filter_second_order(self, up, down, taps):
    rng = np.random.default_rng(3)
    with jax.enable_x64(True):
      x = jnp.asarray(rng.normal(size=(1, 5, 6, 2)))
      f = jnp.asarray(rng.normal(size=taps))
      jtu.check_grads(
          jax.jit(lambda x, f: ops.upfirdn2d(x, f, up=up, down=down,
                                             padding=[2, 1])),
          (x, f), order=2, modes=("rev",), atol=1e-6, rtol=1e-6)

  def test_filter_not_differentiated_when_constant(self):
    x = jnp.ones((1, 6, 6, 1))
    f = np.array([1.0, 2.0, 1.0], np.float32)
    dy = jnp.ones((1, 10, 10, 1))
    # With f not differentiated, the VJP must not compute a filter gradient,
    # whose per-tap sums over the image would show up as reductions.
    jaxpr = jax.make_jaxpr(
        lambda x, dy: jax.vjp(lambda x: ops.upfirdn2d(x, f, up=2), x)[1](dy))(
            x, dy)
    self.assertNotIn("reduce_sum", str(jaxpr))
    jaxpr = jax.make_jaxpr(
        lambda x, f, dy: jax.vjp(lambda f: ops.upfirdn2d(x, f, up=2), f)[1](
            dy))(x, f, dy)
    self.assertIn("reduce_sum", str(jaxpr))

  def test_jit_and_vmap(self):
    x = np.random.default_rng(4).normal(size=(3, 2, 7, 7, 2)).astype(
        np.float32)
    f = np.ones(4, np.float32) / 4
    batched = jax.jit(jax.vmap(lambda x: ops.upfirdn2d(x, f, up=2,
                                                       padding=1)))(x)
    for i in range(3):
      np.testing.assert_allclose(batched[i],
                                 ops.upfirdn2d(x[i], f, up=2, padding=1),
                                 rtol=1e-6)


class PlanesFirstTest(parameterized.TestCase):
  """spatial_axes=(2, 3): the same filtering of `[N, C, H, W]` images."""

  @parameterized.parameters(
      dict(up=2, down=1, padding=(6, 5, 6, 5), taps=(12,)),
      dict(up=1, down=2, padding=(-1, 0, 1, -2), taps=(5, 4)),
      dict(up=(3, 2), down=(1, 2), padding=(2, 1, 3, 0), taps=(6,)))
  def test_values_and_gradients_are_the_transposed_nhwc_ones(
      self, up, down, padding, taps):
    rng = np.random.default_rng(5)
    x = rng.normal(size=(2, 9, 11, 3)).astype(np.float32)
    f = rng.normal(size=taps).astype(np.float32)

    def nhwc(x):
      return ops.upfirdn2d(x, f, up=up, down=down, padding=padding, gain=2)

    def planes(x):  # [N, H, W, C] -> [N, C, H', W'] -> [N, H', W', C]
      y = ops.upfirdn2d(x.transpose(0, 3, 1, 2), f, up=up, down=down,
                        padding=padding, gain=2, spatial_axes=(2, 3))
      return y.transpose(0, 2, 3, 1)

    expected, nhwc_pullback = jax.vjp(nhwc, x)
    got, planes_pullback = jax.vjp(planes, x)
    np.testing.assert_array_equal(got, expected)
    dy = rng.normal(size=expected.shape).astype(np.float32)
    np.testing.assert_array_equal(planes_pullback(dy)[0],
                                  nhwc_pullback(dy)[0])

  def test_bad_axes(self):
    with self.assertRaisesRegex(ValueError,
                                r"spatial_axes: expected \(1, 2\) or "
                                r"\(2, 3\), got \(1, 3\)"):
      ops.upfirdn2d(np.zeros((1, 8, 8, 2), np.float32), None,
                    spatial_axes=(1, 3))


class SetupFilterTest(parameterized.TestCase):

  def test_official_semantics(self):
    np.testing.assert_allclose(ops.setup_filter([1, 3, 3, 1]),
                               np.outer([1, 3, 3, 1], [1, 3, 3, 1]) / 64)
    f8 = np.arange(1, 9, dtype=np.float32)
    sep = ops.setup_filter(f8, flip_filter=True, gain=4)
    np.testing.assert_allclose(sep, f8[::-1] / f8.sum() * 2, rtol=1e-6)
    np.testing.assert_array_equal(ops.setup_filter(None), [[1.0]])

  def test_bad_rank(self):
    with self.assertRaisesRegex(ValueError, r"f: .*shape \(2, 2, 2\)"):
      ops.setup_filter(np.ones((2, 2, 2)))


class BadInputTest(parameterized.TestCase):

  def test_messages(self):
    x = np.zeros((1, 8, 8, 2), np.float32)
    f = np.ones(4, np.float32)
    cases = [
        (lambda: ops.upfirdn2d(x[0], f), r"x: expected rank 4"),
        (lambda: ops.upfirdn2d(x.astype(np.int32), f), r"x: .*floating"),
        (lambda: ops.upfirdn2d(x, np.ones((2, 2, 2))), r"f: expected taps"),
        (lambda: ops.upfirdn2d(x, f, up=0), r"up: expected an int >= 1"),
        (lambda: ops.upfirdn2d(x, f, down=[2, 0]), r"down: expected"),
        (lambda: ops.upfirdn2d(x, f, padding=[1, 2, 3]),
         r"padding: expected .* 3 values"),
        (lambda: ops.upfirdn2d(x, np.ones(12), padding=-2),
         r"smaller than the filter"),
    ]
    for call, message in cases:
      with self.assertRaisesRegex(ValueError, message):
        call()


if __name__ == "__main__":
  absltest.main()
