"""The fused filtered_lrelu kernels against the XLA path.

`InterpretTest` runs the TPU kernel in the TPU interpreter
(`pltpu.InterpretParams`: TPU memory semantics on the CPU) and the GPU
kernel in the Pallas interpreter, on CPU in CI, at reduced shapes that still
have several tiles with halos on both axes. `CompiledTest` runs the same
cases compiled, on a GPU or TPU only. Lowering for the devices is in
`test_lowering.py`.
"""

import importlib
import math
from unittest import mock

import jax
import jax.numpy as jnp
import numpy as np
from absl.testing import absltest
from absl.testing import parameterized
from jax.experimental.pallas import tpu as pltpu

from kernels import filtered_lrelu as fused
from kernels.filtered_lrelu import banded
from kernels.filtered_lrelu import plan as planning
from kernels.filtered_lrelu import tpu
from sg3jax import ops
from tests import autodiff

# Small tiles, so that these images split into several tiles per axis.
CASES = (
    dict(name="up2_sep", up=2, down=2, fu=(12,), fd=(12,),
         padding=(11, 10, 11, 10), clamp=None, flip=False, hw=(21, 19),
         batch=2, channels=3, max_tile=8),
    dict(name="up4_radial", up=4, down=2, fu=(24,), fd=(12, 12),
         padding=(-2, -5, -2, -5), clamp=0.5, flip=True, hw=(12, 24),
         batch=1, channels=3, max_tile=3),
    dict(name="odd_factors_2d_up", up=3, down=2, fu=(5, 4), fd=(7,),
         padding=(2, 5, 3, 1), clamp=1.0, flip=False, hw=(9, 19),
         batch=1, channels=130, max_tile=6),
)
BACKENDS = ("tpu", "gpu")
# The module (sg3jax.ops.filtered_lrelu names the function).
filtered_lrelu_module = importlib.import_module("sg3jax.ops.filtered_lrelu")


def _arrays(case, seed, dtype=np.float32):
  rng = np.random.default_rng(seed)
  x = rng.normal(size=(case["batch"],) + case["hw"] + (case["channels"],))
  b = rng.normal(size=case["channels"])
  # Random taps with unit L1 norm keep outputs of order 1, so that fp32
  # rounding of long sums stays below the 1e-6 absolute tolerance.
  fu, fd = (rng.normal(size=case[k]) for k in ("fu", "fd"))
  fu, fd = ((f / np.abs(f).sum()).astype(np.float32) for f in (fu, fd))
  return (jnp.asarray(x, dtype), fu, fd, jnp.asarray(b, dtype))


def _op_args(case):
  return dict(up=case["up"], down=case["down"], padding=case["padding"],
              gain=1.3, slope=0.25, clamp=case["clamp"],
              flip_filter=case["flip"])


def _reference(case, x, fu, fd, b):
  return ops.filtered_lrelu(x, fu, fd, b, impl="xla", **_op_args(case))


def _tiling(case):
  return fused.Tiling(max_tile=case["max_tile"])


def _kernel(case, backend, interpret, x, fu, fd, b):
  """The public fused op (custom VJP) with the case's small tiles."""
  return fused.filtered_lrelu_pallas(
      x, fu, fd, b, backend=backend, interpret=interpret,
      tiling=_tiling(case), **_op_args(case))


class InterpretTest(parameterized.TestCase):
  COMPILED = False

  def setUp(self):
    super().setUp()
    device = jax.default_backend()
    if self.COMPILED and device not in BACKENDS:
      self.skipTest("compiled Pallas needs a GPU or TPU")

  def _interpret(self, backend):
    if self.COMPILED:
      if backend != jax.default_backend():
        self.skipTest(f"the {backend} kernel compiles on a {backend} only")
      return False
    return pltpu.InterpretParams() if backend == "tpu" else True

  @parameterized.product(case=tuple(range(len(CASES))), backend=BACKENDS)
  def test_forward_and_gradients_match_xla(self, case, backend):
    case = CASES[case]
    interpret = self._interpret(backend)
    x, fu, fd, b = _arrays(case, 0)
    cfg = fused.make_config(x.shape, fu.shape, fd.shape, **_op_args(case))
    module = fused.BACKENDS[backend]
    for backward in (False, True):  # several tiles per axis: halos cross
      t = module.plan_tiles(cfg, x.dtype, backward=backward,
                            tiling=_tiling(case))
      self.assertGreater(t.rows.num_tiles, 1)
      self.assertGreater(t.cols.num_tiles, 1)

    reference = lambda x, b: _reference(case, x, fu, fd, b)
    dy = jnp.asarray(np.random.default_rng(1).normal(
        size=jax.eval_shape(reference, x, b).shape), jnp.float32)
    y, grads = autodiff.value_and_pullback(
        lambda x, b: _kernel(case, backend, interpret, x, fu, fd, b), (x, b),
        dy)
    y_ref, grads_ref = autodiff.value_and_pullback(reference, (x, b), dy)
    self.assertEqual(y.shape, y_ref.shape)
    np.testing.assert_allclose(y, y_ref, rtol=1e-5, atol=1e-6)
    for ours, ref in zip(grads, grads_ref):
      np.testing.assert_allclose(ours, ref, rtol=1e-5, atol=1e-5)

  @parameterized.parameters(*BACKENDS)
  def test_bfloat16(self, backend):
    case = CASES[0]
    interpret = self._interpret(backend)
    x, fu, fd, b = _arrays(case, 2, jnp.bfloat16)
    kernel = lambda x, b: _kernel(case, backend, interpret, x, fu, fd, b)
    dy = jnp.asarray(np.random.default_rng(3).normal(
        size=jax.eval_shape(kernel, x, b).shape)).astype(jnp.bfloat16)
    y, (dx, _) = autodiff.value_and_pullback(kernel, (x, b), dy)
    self.assertEqual(y.dtype, jnp.bfloat16)
    # The kernel computes in float32 from the bf16 input; only its output
    # is rounded to bf16 (8 mantissa bits: relative error <= 2^-8).
    x32, b32 = x.astype(jnp.float32), b.astype(jnp.float32)
    y_ref, (dx_ref, _) = autodiff.value_and_pullback(
        lambda x, b: _reference(case, x, fu, fd, b), (x32, b32),
        dy.astype(jnp.float32))
    np.testing.assert_allclose(np.asarray(y, np.float32), y_ref,
                               rtol=2 ** -8, atol=1e-6)
    np.testing.assert_allclose(np.asarray(dx, np.float32), dx_ref,
                               rtol=2 ** -8, atol=1e-5)


class CompiledTest(InterpretTest):
  COMPILED = True


class PlanTest(absltest.TestCase):

  def test_windows_cover_what_the_outputs_read(self):
    stage = planning.AxisStage(up=2, down=1, taps=12, pad0=9, in_size=38,
                               out_size=67)
    start, count, pad0 = stage.window(10, 8)
    # Output m reads inputs k with 2k = m + t - 9, t < 12.
    needed = {k for m in range(10, 18) for t in range(12)
              if (m + t - 9) % 2 == 0 for k in [(m + t - 9) // 2]}
    self.assertEqual((start, start + count), (min(needed), max(needed) + 1))
    self.assertEqual(pad0, start * 2 - (10 - 9))

  def test_placements_of_clipped_windows(self):
    window = planning.AxisWindow(size=8, step=4, offset=-3, extent=13,
                                 num_tiles=4)
    placements = window.placements()
    # Tile 0 is clipped at the start, tiles 1-2 are whole, tile 3 is
    # clipped at the end (its block starts at 13 - 8 = 5).
    self.assertEqual([(p.first, p.last) for p in placements],
                     [(0, 0), (1, 2), (3, 3)])
    self.assertEqual((placements[0].src, placements[0].dst,
                      placements[0].length), (0, 3, 5))
    self.assertEqual((placements[2].src, placements[2].dst,
                      placements[2].length), (4, 0, 4))

  def test_polyphase_refuses_reads_outside_the_window(self):
    with self.assertRaisesRegex(ValueError, "outside"):
      planning.polyphase(up=2, down=1, taps=12, pad0=0, num_in=5, num_out=12)


class TpuColumnBlocksTest(parameterized.TestCase):
  """The TPU kernel loads each window's columns as blocks whose offsets are
  multiples of the sublane tile (Mosaic's rule) and that cover the
  window's columns inside the array."""

  def _check_tiles(self, tiles, dtype) -> bool:
    """Asserts the rule and the cover; whether some tile's block index is
    clamped (its window reaches past the array: masked to zero)."""
    sublanes = 16 if dtype == jnp.bfloat16 else 8
    clamped = False
    if tiles.cols.num_tiles > 1:
      self.assertEqual(tiles.cols.tile % sublanes, 0)
    for window, blocks in zip(tiles.cols.windows, tiles.col_blocks):
      if window.num_tiles > 1:
        self.assertEqual(blocks.size % sublanes, 0)
        self.assertEqual(window.step % blocks.size, 0)
      for j in range(window.num_tiles):
        start = j * window.step + window.offset
        covered = set()
        for k in range(blocks.count):
          unclamped = j * blocks.stride + blocks.first + k
          index = int(blocks.block_index(j, k))
          if index != unclamped:
            clamped = True
            continue
          self.assertEqual(index * blocks.size - start,
                           blocks.window_start(window, k))
          covered |= set(range(index * blocks.size, min(
              (index + 1) * blocks.size, window.extent)))
        needed = range(max(start, 0), min(start + window.size, window.extent))
        self.assertContainsSubset(needed, covered)
    return clamped

  @parameterized.parameters(*range(len(CASES)))
  def test_interpreted_cases_clamp_blocks(self, case):
    """InterpretTest's float32 tiles read past the array on both passes
    (clamped, masked blocks); bfloat16 tiles follow the rule too."""
    case = CASES[case]
    x, fu, fd, _ = _arrays(case, 0)
    cfg = fused.make_config(x.shape, fu.shape, fd.shape, **_op_args(case))
    for backward in (False, True):
      for dtype in (jnp.float32, jnp.bfloat16):
        tiles = tpu.plan_tiles(cfg, jnp.dtype(dtype), backward=backward,
                               tiling=_tiling(case))
        clamped = self._check_tiles(tiles, dtype)
        if dtype == jnp.float32:
          self.assertTrue(clamped)

  @parameterized.parameters(
      ((278, 278, 181), 2, (12,), (12,), (9, 8, 9, 8)),
      ((150, 150, 256), 4, (24,), (12,), (-6, -9, -6, -9)),
      ((148, 148, 645), 4, (24,), (12, 12), (-2, -5, -2, -5)),
      ((1044, 1044, 64), 2, (12,), (12,), (-9, -10, -9, -10)))
  def test_real_layers(self, hwc, up, fu, fd, padding):
    cfg = fused.make_config((2,) + hwc, fu, fd, up=up, down=2,
                            padding=padding, gain=1.0, slope=0.2,
                            clamp=256.0, flip_filter=False)
    for backward in (False, True):
      for dtype in (jnp.float32, jnp.bfloat16):
        self._check_tiles(tpu.plan_tiles(cfg, jnp.dtype(dtype),
                                         backward=backward), dtype)


class BandedPlanTest(parameterized.TestCase):
  """The GPU kernel's static schedules (`banded.py`)."""

  @parameterized.parameters(
      dict(up=2, down=2, taps=12, pad0=9, backward=False),
      dict(up=4, down=2, taps=24, pad0=-6, backward=False),
      dict(up=3, down=2, taps=5, pad0=3, backward=False),
      dict(up=2, down=2, taps=12, pad0=11, backward=True),
      dict(up=4, down=2, taps=24, pad0=-2, backward=True),
      dict(up=3, down=2, taps=4, pad0=2, backward=True),
  )
  def test_segments_store_every_row_once_complete(self, up, down, taps,
                                                   pad0, backward):
    # Pushed rows: y (down relation) forward, dx (up relation) backward.
    rel = (banded.Relation(up, 1, -pad0, taps) if backward else
           banded.Relation(down, -1, 0, taps))
    schedule = banded.row_schedule(rel, math.lcm(up, down))
    total = 23
    rows = schedule.advance * 3
    seg = banded.segment(schedule, rows, total)
    stored = {}
    for k in range(seg.num_segments):
      met = {}
      for i in range(seg.num_steps):
        s = k * seg.steps_per_segment + seg.first_step + i
        for j, pairs in enumerate(schedule.pairs):
          m = len(schedule.pairs) * s + j
          for t, delta in pairs:
            r = schedule.advance * s + schedule.base + delta
            self.assertEqual(rel.outer(m, t), r)
            met.setdefault(r, set()).add(t)
        for d in range(schedule.advance):
          r = schedule.advance * s + schedule.base + schedule.lo + d
          if k * rows <= r < min((k + 1) * rows, total):
            self.assertNotIn(r, stored)
            stored[r] = met.get(r, set())
    self.assertEqual(sorted(stored), list(range(total)))
    # Each output row meets each tap exactly once before it is stored.
    for r, met_taps in stored.items():
      self.assertEqual(met_taps, set(range(taps)), r)

  def test_tap_indices_are_the_band(self):
    rel = banded.Relation(2, 1, -9, 12)  # 2 r = m + t - 9
    index = np.asarray(banded.tap_indices(rel, 4, 10, 1, 9))
    for i, j in zip(*np.nonzero(index >= 0)):
      self.assertEqual(2 * (1 + j), 4 + i + index[i, j] - 9)
    # Every (m, r, t) of the relation in the windows is in the band.
    meetings = sum(1 for m in range(4, 14) for r in range(1, 10)
                   for t in range(12) if 2 * r == m + t - 9)
    self.assertEqual((index >= 0).sum(), meetings)
    # Zero insertion: each mid sample meets every other tap.
    self.assertTrue(np.all((index >= 0).sum(axis=1) <= 6))


class BadInputTest(absltest.TestCase):

  def _call(self, x, fu, fd, b, **kwargs):
    args = dict(up=2, down=2, padding=(11, 10, 11, 10), gain=1.0,
                slope=0.2, clamp=None, flip_filter=False, backend="tpu",
                interpret=True) | kwargs
    return fused.filtered_lrelu_pallas(x, fu, fd, b, **args)

  def test_messages(self):
    x, fu, fd, b = _arrays(CASES[0], 0)
    cases = [
        (dict(x=x[0]), "x: expected rank 4"),
        (dict(x=x.astype(jnp.int32)), "x: expected a floating"),
        (dict(fu=np.ones((2, 2, 2))), "fu: expected taps"),
        (dict(b=b[:2]), r"b: expected shape \[3\]"),
        (dict(up=0), "up: expected an int >= 1"),
        (dict(padding=(1, 2)), "padding: expected"),
        (dict(backend="rocm"), "backend: expected one of"),
        (dict(x=x.astype(jnp.float16)), "dtype float16 is not"),
    ]
    for change, message in cases:
      args = dict(x=x, fu=fu, fd=fd, b=b) | change
      with self.assertRaisesRegex(ValueError, message):
        self._call(**args)

  def test_unservable_shapes_name_the_budget(self):
    # 4000 channels do not split into 128 lanes: one program holds all of
    # them, and no tile fits in VMEM.
    x = jax.ShapeDtypeStruct((1, 40, 40, 4000), jnp.float32)
    cfg = fused.make_config(x.shape, (12,), (12,), up=2, down=2,
                            padding=(11, 10, 11, 10), gain=1.0, slope=0.2,
                            clamp=None, flip_filter=False)
    with self.assertRaisesRegex(
        ValueError, r"TPU kernel .*\[N, 40, 40, 4000\] float32.*"
        r"over the budget of 12582912 bytes"):
      fused.check_supported(cfg, x.dtype, "tpu")
    # A 200-tap up filter reads x rows of ~100 samples for the narrowest
    # GPU tile: wider than the kernel's rows.
    cfg = fused.make_config(x.shape, (200,), (12,), up=2, down=2,
                            padding=(199, 198, 199, 198), gain=1.0,
                            slope=0.2, clamp=None, flip_filter=False)
    with self.assertRaisesRegex(
        ValueError, r"GPU kernel .*filters \(200,\)/\(12,\).*rows of 128 "
        r"samples.*the limits are 32 samples"):
      fused.check_supported(cfg, x.dtype, "gpu")

  def test_filter_gradients_are_refused(self):
    x, fu, fd, b = _arrays(CASES[0], 0)
    with self.assertRaisesRegex(ValueError, "impl='xla'"):
      jax.grad(lambda f: self._call(x, f, fd, b).sum())(jnp.asarray(fu))


class AutoSelectionTest(absltest.TestCase):
  """impl="auto" picks a kernel per platform only where it can serve."""

  def _platform_kernels(self, x, fu, fd, platforms):
    with ops.kernel_platforms(platforms):
      jaxpr = jax.make_jaxpr(lambda x: ops.filtered_lrelu(
          x, fu, fd, up=2, down=2, padding=len(fu) - 1, impl="auto"))(x)
    return str(jaxpr).count("pallas_call")

  def test_kernels_where_they_fit(self):
    x = jnp.zeros((1, 12, 12, 8), jnp.float32)
    f = np.ones(12, np.float32) / 12
    self.assertEqual(self._platform_kernels(x, f, f, []), 0)
    self.assertEqual(self._platform_kernels(x, f, f, ["tpu"]), 1)
    self.assertEqual(self._platform_kernels(x, f, f, ["cuda", "tpu"]), 2)
    # float16 and over-budget filters stay on the XLA path everywhere.
    self.assertEqual(self._platform_kernels(
        x.astype(jnp.float16), f, f, ["cuda", "tpu"]), 0)
    long = np.ones(200, np.float32) / 200
    self.assertEqual(self._platform_kernels(x, long, f, ["cuda"]), 0)

  def test_traced_filters_use_xla(self):
    x = jnp.ones((1, 12, 12, 2), jnp.float32)

    def loss(scale):
      f = jnp.ones(12) * scale / 12
      with ops.kernel_platforms(["cuda", "tpu"]):
        return ops.filtered_lrelu(x, f, f, up=2, down=2, padding=11).sum()

    self.assertNotIn("pallas_call", str(jax.make_jaxpr(jax.grad(loss))(1.0)))

  def test_unknown_platform(self):
    with self.assertRaisesRegex(ValueError, "platforms: expected some of"):
      with ops.kernel_platforms(["metal"]):
        pass



class SecondOrderTest(absltest.TestCase):
  """The kernel's gradient is differentiable (the path-length penalty
  differentiates a gradient): the same second-order gradients as XLA."""

  def _second_order(self, impl):
    """d/d(x, scale) of |d <F(x), scale * n> / dx|^2 for CASES[0]."""
    case = CASES[0]
    x, fu, fd, b = _arrays(case, 4)
    args = dict(_op_args(case), flip_filter=False)
    y_shape = ops.filtered_lrelu(x, fu, fd, b, impl="xla", **args).shape
    cotangent = jnp.asarray(np.random.default_rng(5).normal(size=y_shape),
                            jnp.float32)

    def penalty(x, scale):
      # Differentiating it w.r.t. x runs the forward under an outer
      # derivative, w.r.t. scale the VJP's transpose.
      inner = jax.grad(lambda x: jnp.vdot(ops.filtered_lrelu(
          x, fu, fd, b, impl=impl, **args), scale * cotangent))(x)
      return jnp.sum(jnp.square(inner))

    scale = jnp.asarray([0.5, 1.5, -1.0])
    return jax.jit(jax.grad(penalty, argnums=(0, 1)))(x, scale)

  def test_gradient_of_gradient_norm_matches_xla(self):
    ours, ref = self._second_order("pallas"), self._second_order("xla")
    for a, r in zip(ours, ref):
      np.testing.assert_allclose(a, r, rtol=1e-5, atol=1e-5)

  def test_jvp_by_channel_groups_matches_xla(self):
    # Groups of one channel (CASES[0] has 3): the JVP loops over them.
    chosen, real = [], filtered_lrelu_module._channel_groups

    def channel_groups(*args):
      chosen.append(real(*args))
      return chosen[-1]
    with mock.patch.object(filtered_lrelu_module, "JVP_GROUP_BYTES", 1), \
        mock.patch.object(filtered_lrelu_module, "_channel_groups",
                          channel_groups):
      ours = self._second_order("pallas")
    self.assertEqual(set(chosen), {CASES[0]["channels"]})
    ref = self._second_order("xla")
    for a, r in zip(ours, ref):
      np.testing.assert_allclose(a, r, rtol=1e-5, atol=1e-5)

  def test_channel_groups(self):
    groups = filtered_lrelu_module._channel_groups
    self.assertEqual(groups(512, 100, 256), 1)
    self.assertEqual(groups(512, 1000, 256), 4)
    self.assertEqual(groups(6, 1000, 256), 6)
    self.assertEqual(groups(6, 700, 256), 3)


if __name__ == "__main__":
  absltest.main()
