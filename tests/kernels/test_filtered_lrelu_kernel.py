"""The fused Pallas filtered_lrelu kernel against the XLA path.

`FilteredLreluKernelTest` runs compiled on an accelerator and is skipped
elsewhere; `FilteredLreluKernelInterpretTest` runs the same tests in the
Pallas interpreter, on CPU in CI.
"""

import jax
import jax.numpy as jnp
import numpy as np
from absl.testing import absltest
from absl.testing import parameterized
from jax import test_util as jtu

from kernels.filtered_lrelu import BlockSizes
from kernels.filtered_lrelu import filtered_lrelu_pallas
from sg3jax import filters
from sg3jax import ops

CASES = (
    dict(up=2, down=2, fu=(12,), fd=(12,), padding=(11, 10, 11, 10),
         clamp=None, flip=False, channels=3),
    dict(up=4, down=2, fu=(24,), fd=(12, 12), padding=(23, 22, 21, 20),
         clamp=0.5, flip=True, channels=5),
    dict(up=1, down=2, fu=(1,), fd=(6,), padding=(-1, 3, 2, 0),
         clamp=None, flip=False, channels=4),
    dict(up=2, down=1, fu=(5, 4), fd=(1,), padding=(4, 4, 3, 3),
         clamp=1.0, flip=False, channels=2),
    dict(up=3, down=2, fu=(7,), fd=(5,), padding=(2, 5, 3, 1),
         clamp=None, flip=True, channels=3),
)


def _case_arrays(case, seed):
  rng = np.random.default_rng(seed)
  x = rng.normal(size=(2, 9, 11, case["channels"])).astype(np.float32)
  b = rng.normal(size=case["channels"]).astype(np.float32)
  # Random taps with unit L1 norm keep outputs of order 1, so that fp32
  # rounding of long sums stays below the 1e-6 absolute tolerance.
  fu, fd = (rng.normal(size=case[k]) for k in ("fu", "fd"))
  fu, fd = ((f / np.abs(f).sum()).astype(np.float32) for f in (fu, fd))
  return x, b, fu, fd


class FilteredLreluKernelTest(parameterized.TestCase):
  INTERPRET = False

  def setUp(self):
    super().setUp()
    if not self.INTERPRET and jax.default_backend() not in ("gpu", "tpu"):
      self.skipTest("compiled Pallas needs a GPU or TPU")

  def _kernel(self, x, fu, fd, b, case, block_channels=None):
    blocks = None if block_channels is None else BlockSizes(block_channels)
    return filtered_lrelu_pallas(
        x, fu, fd, b, up=case["up"], down=case["down"],
        padding=case["padding"], gain=1.3, slope=0.25, clamp=case["clamp"],
        flip_filter=case["flip"], block_sizes=blocks,
        interpret=self.INTERPRET)

  def _reference(self, x, fu, fd, b, case):
    return ops.filtered_lrelu(
        x, fu, fd, b, up=case["up"], down=case["down"],
        padding=case["padding"], gain=1.3, slope=0.25, clamp=case["clamp"],
        flip_filter=case["flip"], impl="xla")

  @parameterized.parameters(*range(len(CASES)))
  def test_forward_and_gradient_match_xla(self, index):
    case = CASES[index]
    x, b, fu, fd = _case_arrays(case, index)
    y, pullback = jax.vjp(lambda x, b: self._kernel(x, fu, fd, b, case), x, b)
    y_ref, pullback_ref = jax.vjp(
        lambda x, b: self._reference(x, fu, fd, b, case), x, b)
    np.testing.assert_allclose(y, y_ref, rtol=1e-5, atol=1e-6)
    dy = np.random.default_rng(100 + index).normal(size=y.shape).astype(
        np.float32)
    for ours, ref in zip(pullback(dy), pullback_ref(dy)):
      np.testing.assert_allclose(ours, ref, rtol=1e-5, atol=1e-5)

  def test_channel_blocks_smaller_than_channels(self):
    case = CASES[1]  # 5 channels in blocks of 2: padded to 6 inside
    x, b, fu, fd = _case_arrays(case, 7)
    np.testing.assert_allclose(self._kernel(x, fu, fd, b, case, 2),
                               self._reference(x, fu, fd, b, case),
                               rtol=1e-5, atol=1e-6)

  def test_check_grads(self):
    case = CASES[0]
    fu = filters.design_lowpass_filter(12, 2.0, 3.0, 16.0)
    x = jnp.asarray(np.random.default_rng(3).normal(size=(1, 6, 5, 2)),
                    jnp.float32)
    b = jnp.asarray([0.1, -0.2], jnp.float32)
    jtu.check_grads(
        lambda x, b: self._kernel(x, fu, fu, b, case), (x, b), order=1,
        modes=("rev",), eps=1e-3, atol=2e-2, rtol=2e-2)

  def test_bfloat16_input(self):
    case = CASES[0]
    x, b, fu, fd = _case_arrays(case, 9)
    y = self._kernel(jnp.asarray(x, jnp.bfloat16), fu, fd, b, case)
    self.assertEqual(y.dtype, jnp.bfloat16)
    reference = self._reference(x, fu, fd, b, case)
    # bf16 input rounding (8 mantissa bits) and output rounding.
    np.testing.assert_allclose(np.asarray(y, np.float32), reference,
                               atol=5e-2 * float(np.abs(reference).max()))

  def test_bad_input(self):
    case = CASES[0]
    x, b, fu, fd = _case_arrays(case, 0)
    bad = [
        (dict(x=x[0]), "x: expected rank 4"),
        (dict(x=x.astype(np.int32)), "x: expected a floating"),
        (dict(fu=np.ones((2, 2, 2))), "fu: expected taps"),
        (dict(b=b[:2]), r"b: expected shape \[3\]"),
    ]
    for change, message in bad:
      args = dict(x=x, fu=fu, fd=fd, b=b) | change
      with self.assertRaisesRegex(ValueError, message):
        self._kernel(args["x"], args["fu"], args["fd"], args["b"], case)
    with self.assertRaisesRegex(ValueError, "up: expected an int >= 1"):
      self._kernel(x, fu, fd, b, dict(case, up=0))
    with self.assertRaisesRegex(ValueError, "padding: expected"):
      self._kernel(x, fu, fd, b, dict(case, padding=(1, 2)))
    with self.assertRaisesRegex(ValueError, "block_sizes.channels"):
      BlockSizes(0)


class FilteredLreluKernelInterpretTest(FilteredLreluKernelTest):
  INTERPRET = True


if __name__ == "__main__":
  absltest.main()
