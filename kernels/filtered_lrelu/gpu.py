"""The fused filtered_lrelu as Triton kernels for NVIDIA GPUs.

Formulation: every intermediate lives in registers (and the shared memory
Triton stages dot operands in); global memory holds only the inputs, the
output and the small banded matrices below (L1/L2 resident).

Triton cannot slice, stride or shift a register value, so neither the
polyphase taps of a row nor the interleaving of phases can be written
elementwise on values. The kernel uses two things it can do instead:

* Columns: a stage along W on one row `[W_in, C]` is a banded matrix
  product `A @ row`, where `A [W_out, W_in]` holds the taps
  (`banded.tap_indices`: zero insertion and decimation are folded into
  which tap sits where), built by XLA from the taps outside the kernel,
  as a `tl.dot` in float32 ("ieee": float32 FMAs, exact float32). One
  TF32 tensor-core pass (~5e-4 of sum |a||b|) is not accurate enough;
  TF32x3 (three passes of split operands, 4.6e-7 emulated) is, but needed
  more registers than ptxas gives without spilling (`DOT_PRECISION`). The
  zeros of the band cost multiply cycles, not memory traffic, and no
  access is strided or unaligned.
* Rows: whole rows are separate values, so a stage along H is a sum of
  rows times scalar taps. A program streams down a strip of columns, mid
  (upsampled) row by mid row, `period = lcm(up, down)` mid rows a step;
  at every step the outer rows (x, dy, y, dx) a mid row meets sit at the
  same offsets from a base that advances by a fixed amount
  (`banded.RowSchedule`), so the loops have static bodies.
  - Pulled signals (x, and dy in the backward): the rows a mid row reads
    are loaded per tap (L1/L2 hits: the rows of the last steps) and
    combined with the scalar taps, then one column dot (for a separable
    filter the H and W stages commute). Keeping them in a ring of rows in
    registers instead spilled at the backward layers.
  - Pushed signals (y, or dx in the backward): each mid row adds its
    terms into stacked accumulators `[slots, W_out, C]` (output row r in
    slot r mod slots, updated by masks: no value is sliced); a row is
    stored once complete, its slot zeroed.
  Only one mid row is live at a time (95-190 registers per thread).

A 2-D (non-separable) filter `f [Kh, Kw]` (StyleGAN3-R's radial down
filter) is exact, with no low-rank approximation: one banded matrix per
filter row, `row_out = sum_t A_t @ row_in(t)`, a dot per (mid row, tap
row) pair instead of scalar taps and one dot. (A truncated SVD would need
its rank fixed statically, while the filter is a runtime input; the radial
filters need 4-5 terms for float32 accuracy anyway, against Kh / down = 6
dots per mid row exactly.)

Forward, per mid row m:  mid = A_up @ sum_t fu[t] (x + b)[row(m, t)]
                         y[row(m, t')] += fd[t'] * (A_down @ act(mid))
Backward, per mid row m: v as mid above; dmid = A_dT @ sum_t fd[t] dy[...]
                         dx[row(m, t)] += fu[t] * (A_uT @ (dmid * act'(v)))

Each program is one (image, 16 channels, column tile, row segment); the
first `RowSchedule.warmup` steps of a segment only start its accumulators
(their rows belong to the segment above). `work` and `hbm_bytes` give the
FLOPs and global-memory bytes of a call.
"""

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np
from jax.experimental import pallas as pl
from jax.experimental.pallas import triton as pltriton

from kernels.filtered_lrelu import banded
from kernels.filtered_lrelu import plan as planning
from kernels.filtered_lrelu.common import KernelConfig
from kernels.filtered_lrelu.common import Tiling
from kernels.filtered_lrelu.common import Unsupported

CHANNEL_BLOCK = 16  # channels per program: the N of every dot (>= 16)
# Warps of the forward and backward kernels (by `backward`) and the dots'
# precision, chosen from ptxas's register counts at every real layer:
# ptxas caps a kernel that needs slightly more than 128 registers at 128
# and spills a few bytes. With float32 FMA dots ("ieee") the forward needs
# ~95 registers on two warps, the backward ~95-115 on four; TF32x3 on
# tensor cores needed ~125-190 and spilled at some layers of each.
NUM_WARPS = {False: 2, True: 4}
DOT_PRECISION = jax.lax.DotAlgorithmPreset.F32_F32_F32
# Float32 values a program may keep live (accumulator slots, the rows of
# one mid row): 64 threads x REGISTERS_PER_THREAD, half the 255 registers
# a thread can address, the rest for addresses, masks and dot staging.
REGISTERS_PER_THREAD = 128
REGISTER_BUDGET = 2 * 32 * REGISTERS_PER_THREAD  # at the fewest warps
SHARED_MEMORY_BYTES = 227 * 1024  # per block on an H100
MAX_WIDTH = 32  # widest padded row (the dots' M and K)
SEGMENT_ROWS = 64  # output rows a program streams (default)
# Cost of a dot multiply-add relative to an elementwise FMA, for choosing
# tiles (float32 FMA dots; their operands come from registers).
DOT_WEIGHT = 1.0


@dataclasses.dataclass(frozen=True)
class AxisTiles:
  """Tiles of `tile` outputs along one axis, `num_tiles` of them."""
  tile: int
  num_tiles: int


@dataclasses.dataclass(frozen=True)
class Tiles:
  """A tiling of one kernel: channels per program, row segments and
  column tiles (with their windows), the row schedules of the relations
  (pulled ones in kernel order, then the pushed one) and the segment."""
  channels: int
  rows: AxisTiles
  cols: AxisTiles
  columns: banded.ColumnPlan
  pulls: tuple[banded.RowSchedule, ...]
  push: banded.RowSchedule
  segment: banded.Segment

  @property
  def num_programs_per_image(self) -> int:
    return self.rows.num_tiles * self.cols.num_tiles


def _relations(cfg: KernelConfig, backward: bool):
  """(pulled row relations, pushed row relation, separable flags of the
  pulled filters, of the pushed one)."""
  g = cfg.geometry
  up, down = banded.up_relation(g, 0), banded.down_relation(g, 0)
  up_sep, down_sep = len(g.fu_shape) == 1, len(g.fd_shape) == 1
  if backward:
    return (up, down), up, (up_sep, down_sep), up_sep
  return (up,), down, (up_sep,), down_sep


def _mid_width(columns: banded.ColumnPlan) -> int:
  return columns.mid.padded


def _pull_widths(columns: banded.ColumnPlan, backward: bool):
  return (columns.x, columns.dy) if backward else (columns.x,)


def _live_floats(columns, push, channels, backward) -> int:
  """Float32 values a program keeps live: the stacked output accumulators
  and the working rows of one mid row (pulled rows, mid rows)."""
  rows = 3 * _mid_width(columns) + sum(
      w.padded for w in _pull_widths(columns, backward))
  return (banded.next_pow2(push.span) * columns.out.padded + rows) * channels


def _dot_shapes(columns, channels, backward):
  """(M, K, N) of the kernel's dots."""
  mid, out = _mid_width(columns), columns.out.padded
  shapes = [(out, mid, channels)]
  for win in _pull_widths(columns, backward):
    shapes.append((mid, win.padded, channels))
  return shapes


def _shared_bytes(columns, channels, backward) -> int:
  """Shared memory of the largest dot's operands (staged, double)."""
  return max(2 * 4 * (m * k + k * n)
             for m, k, n in _dot_shapes(columns, channels, backward))


def _step_work(cfg, columns, pulls, push, channels, backward):
  """(FMAs, dot multiply-adds) of one step of a program (padded sizes)."""
  _, _, pull_sep, push_sep = _relations(cfg, backward)
  mid, out = _mid_width(columns), columns.out.padded
  period = len(push.pairs)
  slots = banded.next_pow2(push.span)
  fma = dots = 0
  for sched, sep, win in zip(pulls, pull_sep,
                             _pull_widths(columns, backward)):
    terms = sum(len(p) for p in sched.pairs)
    if sep:
      dots += period * mid * win.padded * channels
      fma += terms * win.padded * channels
    else:
      dots += terms * mid * win.padded * channels
  terms = sum(len(p) for p in push.pairs)
  if push_sep:
    dots += period * out * mid * channels
  else:
    dots += terms * out * mid * channels
  fma += terms * slots * out * channels  # into the stacked slots
  fma += period * mid * channels * (2 if backward else 1)  # activation
  return fma, dots


def _num_programs(cfg: KernelConfig, tiles: Tiles, batch: int) -> int:
  return (batch * planning.cdiv(cfg.geometry.channels, tiles.channels) *
          tiles.num_programs_per_image)


def work(cfg: KernelConfig, tiles: Tiles, batch: int, *,
         backward: bool) -> tuple[int, int]:
  """(elementwise FMAs, dot multiply-adds) of one kernel call as it runs
  (padding and warm-up steps included; the dots run as float32 FMAs)."""
  fma, dots = _step_work(cfg, tiles.columns, tiles.pulls, tiles.push,
                         tiles.channels, backward)
  steps = tiles.segment.num_steps * _num_programs(cfg, tiles, batch)
  return fma * steps, dots * steps


def _clipped(start: int, count: int, extent: int) -> int:
  return max(0, min(start + count, extent) - max(start, 0))


def _matrix_floats(cfg: KernelConfig, columns: banded.ColumnPlan,
                   backward: bool) -> int:
  """Float32 entries of a call's banded matrices (pulled, then pushed)."""
  _, _, pull_sep, push_sep = _relations(cfg, backward)
  g, mid = cfg.geometry, _mid_width(columns)
  rows = [g.fu_shape[0]] + ([g.fd_shape[0]] if backward else [])
  floats = sum((1 if sep else k) * mid * win.padded
               for sep, k, win in zip(pull_sep, rows,
                                      _pull_widths(columns, backward)))
  push_rows = (g.fu_shape if backward else g.fd_shape)[0]
  return floats + (1 if push_sep else push_rows) * columns.out.padded * mid


def hbm_bytes(cfg: KernelConfig, tiles: Tiles, batch: int, itemsize: int,
              *, backward: bool) -> int:
  """Bytes one call reads and writes in global memory: every program's
  input windows (halos included; neighbours' halos often hit in L2, so
  this bounds the HBM traffic from above), the output once, the matrices
  once (L2 resident)."""
  g = cfg.geometry
  seg, cols = tiles.segment, tiles.columns
  out_hw = g.in_hw if backward else g.out_hw
  inputs = [(cols.x, g.in_hw)] + ([(cols.dy, g.out_hw)] if backward else [])
  elements = 0
  for sched, (win, (rows, width)) in zip(tiles.pulls, inputs):
    for k in range(seg.num_segments):
      first = (k * seg.steps_per_segment + seg.first_step) * sched.advance
      first += sched.base + sched.lo
      count = sched.advance * seg.num_steps + sched.span - sched.advance
      row_count = _clipped(first, count, rows)
      for j in range(cols.num_tiles):
        elements += row_count * _clipped(win.start + win.step * j,
                                         win.count, width)
  elements *= batch * g.channels
  elements += batch * g.channels * out_hw[0] * out_hw[1]
  return elements * itemsize + 4 * _matrix_floats(cfg, cols, backward)


def _candidates(cfg: KernelConfig, backward: bool, tiling: Tiling):
  g = cfg.geometry
  multiple = planning.tile_multiple(g.up, g.down, backward=backward)
  limit = max(tiling.max_tile or 64, multiple)
  columns = banded.backward_columns if backward else banded.forward_columns
  for tile in range(multiple, limit + 1, multiple):
    yield columns(g, tile)


@functools.lru_cache(maxsize=None)
def plan_tiles(cfg: KernelConfig, dtype, *, backward: bool,
               tiling: Tiling = Tiling()) -> Tiles:
  """The column tile with the least work per output whose live values fit
  `REGISTER_BUDGET`, whose rows fit `MAX_WIDTH` and whose dots' operands
  fit `SHARED_MEMORY_BYTES`; row segments of `SEGMENT_ROWS` (or
  `tiling.max_tile`) outputs; the grid is one program per tile.

  Raises:
    Unsupported: naming the shape and the limits, when no tile fits.
  """
  del dtype  # computed in float32 whatever the input dtype
  g = cfg.geometry
  channels = CHANNEL_BLOCK
  pull_rels, push_rel, _, _ = _relations(cfg, backward)
  period = banded.period(g)
  pulls = tuple(banded.row_schedule(r, period) for r in pull_rels)
  push = banded.row_schedule(push_rel, period)
  out_rows = (g.in_hw if backward else g.out_hw)[0]
  seg_rows = tiling.max_tile or SEGMENT_ROWS
  seg_rows = max(push.advance, seg_rows // push.advance * push.advance)
  seg_rows = min(seg_rows, planning.round_up(out_rows, push.advance))
  segment = banded.segment(push, seg_rows, out_rows)
  best, narrowest = None, None
  for columns in _candidates(cfg, backward, tiling):
    live = _live_floats(columns, push, channels, backward)
    width = max([columns.mid.padded, columns.out.padded] + [
        w.padded for w in _pull_widths(columns, backward)])
    shared = _shared_bytes(columns, channels, backward)
    narrowest = narrowest or (width, live, shared)
    if (live > REGISTER_BUDGET or width > MAX_WIDTH or
        shared > SHARED_MEMORY_BYTES):
      continue
    fma, dots = _step_work(cfg, columns, pulls, push, channels, backward)
    cost = (fma + DOT_WEIGHT * dots) / columns.tile
    if best is None or cost < best[0]:
      best = (cost, columns)
  if best is None:
    pass_name = "backward" if backward else "forward"
    raise Unsupported(
        f"filtered_lrelu GPU kernel ({pass_name}): input [N, {g.in_hw[0]}, "
        f"{g.in_hw[1]}, {g.channels}], up {g.up}, down {g.down}, filters "
        f"{g.fu_shape}/{g.fd_shape}: the narrowest column tile needs rows "
        f"of {narrowest[0]} samples, {narrowest[1]} live float32 values and "
        f"{narrowest[2]} bytes of shared memory per program; the limits are "
        f"{MAX_WIDTH} samples, {REGISTER_BUDGET} values and "
        f"{SHARED_MEMORY_BYTES} bytes")
  columns = best[1]
  return Tiles(channels, AxisTiles(seg_rows, segment.num_segments),
               AxisTiles(columns.tile, columns.num_tiles), columns, pulls,
               push, segment)


# ---------------------------------------------------------------------------
# Banded matrices (built by XLA outside the kernel from the taps).


def _band_index(rel: banded.Relation, mid: banded.Window,
                outer: banded.Window) -> np.ndarray:
  """[mid.padded, outer.padded] tap indices (-1: zero) of tile 0."""
  index = np.full((mid.padded, outer.padded), -1, np.int32)
  index[:mid.count, :outer.count] = banded.tap_indices(
      rel, mid.start, mid.count, outer.start, outer.count)
  return index


def _band(taps: jax.Array, index: np.ndarray) -> jax.Array:
  """The banded matrix of `index` from 1-D taps `[K]` (`[R, C]`) or one
  per filter row from 2-D taps `[Kh, Kw]` (`[Kh, R, C]`)."""
  safe = np.maximum(index, 0)
  values = taps[safe] if taps.ndim == 1 else taps[:, safe]
  return jnp.where(index >= 0, values, 0.0).astype(jnp.float32)


def _matrices(cfg: KernelConfig, tiles: Tiles, fu, fd, backward: bool):
  """(pull matrices in kernel order, push matrix): mid <- outer for a pull
  `[mid, outer]`, outer <- mid for the push `[out, mid]`."""
  g, cols = cfg.geometry, tiles.columns
  up, down = banded.up_relation(g, 1), banded.down_relation(g, 1)
  pulls = [_band(fu, _band_index(up, cols.mid, cols.x))]
  if backward:
    pulls.append(_band(fd, _band_index(down, cols.mid, cols.dy)))
    push = _band(fu, _band_index(up, cols.mid, cols.out))
  else:
    push = _band(fd, _band_index(down, cols.mid, cols.out))
  return pulls, jnp.swapaxes(push, -1, -2)


# ---------------------------------------------------------------------------
# Kernels.


@dataclasses.dataclass(frozen=True)
class _Program:
  """The work of one program: image n, channel block c, column tile j,
  row segment k."""
  n: jax.Array
  c: jax.Array
  j: jax.Array
  k: jax.Array


def _decode(tiles: Tiles, num_channels: int) -> _Program:
  index = pl.program_id(0)
  k = index % tiles.rows.num_tiles
  rest = index // tiles.rows.num_tiles
  j = rest % tiles.cols.num_tiles
  rest = rest // tiles.cols.num_tiles
  blocks = planning.cdiv(num_channels, tiles.channels)
  return _Program(rest // blocks, rest % blocks, j, k)


def _iota(size: int, axis: int) -> jax.Array:
  shape = [1, 1]
  shape[axis] = size
  return jax.lax.broadcasted_iota(jnp.int32, tuple(shape), axis)


def _precision(interpret):
  """The kernel's dot precision (`DOT_PRECISION`); the interpreter's CPU
  dot at HIGHEST."""
  return jax.lax.Precision.HIGHEST if interpret else DOT_PRECISION


def _dot(a: jax.Array, b: jax.Array, precision) -> jax.Array:
  """a @ b in float32 accuracy."""
  return jnp.dot(a, b, precision=precision,
                 preferred_element_type=jnp.float32)


@dataclasses.dataclass(frozen=True)
class _Rows:
  """An outer signal `[N, H, W, C]` read (or written) one row
  `[window.padded, C block]` at a time by a program."""
  ref: object
  window: banded.Window
  program: _Program
  channels: int
  interpret: object

  def _mask(self, row: jax.Array) -> jax.Array:
    rows, width, num_channels = self.ref.shape[1:]
    local = _iota(self.window.padded, 0)
    cols = self.col0() + local
    lanes = self.program.c * self.channels + _iota(self.channels, 1)
    return ((row >= 0) & (row < rows) & (cols >= 0) & (cols < width) &
            (local < self.window.count) & (lanes < num_channels))

  def col0(self) -> jax.Array:
    return self.window.start + self.window.step * self.program.j

  def _at(self, row):
    """The ref at row, the window's columns and the channel block (the
    mask drops what lies outside the array). Compiled: contiguous slices,
    which Triton loads as vectors. Interpreted: indices clamped into the
    array, as the interpreter shifts slices that start out of bounds."""
    if not self.interpret:
      return self.ref.at[self.program.n, row,
                         pl.ds(self.col0(), self.window.padded),
                         pl.ds(self.program.c * self.channels, self.channels)]
    rows, width, num_channels = self.ref.shape[1:]
    cols = self.col0() + _iota(self.window.padded, 0)
    lanes = self.program.c * self.channels + _iota(self.channels, 1)
    return self.ref.at[self.program.n, jnp.clip(row, 0, rows - 1),
                       jnp.clip(cols, 0, width - 1),
                       jnp.minimum(lanes, num_channels - 1)]

  def load(self, row: jax.Array, bias: jax.Array | None) -> jax.Array:
    """float32 `[padded, C block]`, zero outside the array and window."""
    mask = self._mask(row)
    values = pltriton.load(self._at(row), mask=mask, other=0.0)
    values = values.astype(jnp.float32)
    if bias is not None:
      values = values + bias
    return jnp.where(mask, values, 0.0)

  def store(self, row: jax.Array, values: jax.Array,
            rows_lo: jax.Array, rows_hi: jax.Array) -> None:
    """Writes `values [padded, C block]` at row (a window starting at
    column >= 0), where row is in [rows_lo, rows_hi) and in the array."""
    mask = self._mask(row) & (row >= rows_lo) & (row < rows_hi)
    target = self.ref.at[self.program.n,
                         jnp.clip(row, 0, self.ref.shape[1] - 1),
                         pl.ds(self.col0(), self.window.padded),
                         pl.ds(self.program.c * self.channels, self.channels)]
    pltriton.store(target, values.astype(self.ref.dtype), mask=mask)


_NEVER = 1 << 30  # a loop count no loop reaches


def _select(index: jax.Array, values: list[int]) -> jax.Array:
  """values[index] of a static list, for a traced index."""
  out = jnp.int32(values[0])
  for k, value in enumerate(values[1:], 1):
    out = jnp.where(index == k, jnp.int32(value), out)
  return out


@dataclasses.dataclass(frozen=True)
class _TapRun:
  """Mid row j of a step meets outer row delta0 + q * d_delta through tap
  t0 + q * dt for q < count (count <= max_count; traced by j)."""
  t0: jax.Array
  dt: int
  delta0: jax.Array
  d_delta: int
  count: jax.Array
  max_count: int


@dataclasses.dataclass(frozen=True)
class _Stage:
  """One relation's filter in a kernel: its row schedule, its rows along H
  (scalar taps `taps_ref [K]` if separable) and its banded matrices
  (`[R, C]` if separable, `[Kh, R, C]` per filter row if not).

  `zero` offsets the separable matrix's reads: inside the loop over mid
  rows it is zero but depends on the mid row, so that the compiler keeps
  the load in the loop (an L1 hit) rather than hoisting the matrix (and
  its dot layout) into registers for the whole program.
  """
  schedule: banded.RowSchedule
  taps_ref: object
  mat_ref: object
  precision: object
  zero: object = 0

  @property
  def separable(self) -> bool:
    return len(self.taps_ref.shape) == 1

  def at(self, j: jax.Array) -> "_Stage":
    return dataclasses.replace(self, zero=(j >= _NEVER).astype(jnp.int32))

  def matrix(self) -> jax.Array:
    """The separable filter's matrix `[R, C]`."""
    rows, cols = self.mat_ref.shape
    return self.mat_ref[pl.ds(self.zero, rows), pl.ds(0, cols)]

  def term(self, t: jax.Array, rows: jax.Array) -> jax.Array:
    """Tap row t's term of rows `[C_in, C]`: the scalar tap times the rows
    (separable, `[C_in, C]`), or its matrix times them (2-D, `[R, C]`)."""
    if self.separable:
      return self.taps_ref[t] * rows
    return self.dot(self.mat_ref[t], rows)

  def dot(self, matrix: jax.Array, rows: jax.Array) -> jax.Array:
    return _dot(matrix, rows, self.precision)

  def tap_run(self, j: jax.Array) -> _TapRun:
    """The taps of mid row j of a step (j traced): along a run, the tap
    advances by the relation's factor and the outer row by its sign."""
    runs = []
    for pairs in self.schedule.pairs:
      t0, d0 = pairs[0] if pairs else (0, 0)
      runs.append((t0, d0, len(pairs)))
      steps = {(b[0] - a[0], b[1] - a[1]) for a, b in zip(pairs, pairs[1:])}
      assert len(steps) <= 1, pairs
    steps = {(b[0] - a[0], b[1] - a[1]) for pairs in self.schedule.pairs
             for a, b in zip(pairs, pairs[1:])}
    dt, dd = steps.pop() if steps else (0, 0)
    assert not steps, self.schedule
    t0s, d0s, counts = zip(*runs)
    return _TapRun(_select(j, list(t0s)), dt, _select(j, list(d0s)), dd,
                   _select(j, list(counts)), max(counts))


def _pulled(stage: _Stage, rows: _Rows, bias, base: jax.Array,
            j: jax.Array, shape) -> jax.Array:
  """Mid row j of a step `[mid, C]` from the outer rows it meets, read
  from global memory (L1 or L2 hits: rows of the last steps): a loop over
  the filter's row taps (separable: scalar taps, then one column-stage
  dot, as the stages along H and W commute; 2-D: a dot per tap row)."""
  run = stage.tap_run(j)

  def term(q, acc):
    t = jnp.minimum(run.t0 + q * run.dt, stage.taps_ref.shape[0] - 1)
    row = rows.load(base + run.delta0 + q * run.d_delta, bias)
    return acc + jnp.where(q < run.count, stage.term(t, row), 0.0)

  width = rows.window.padded if stage.separable else shape[0]
  acc = jax.lax.fori_loop(0, run.max_count, term,
                          jnp.zeros((width, shape[1]), jnp.float32))
  return stage.dot(stage.matrix(), acc) if stage.separable else acc


def _slots(size: int) -> jax.Array:
  return jax.lax.broadcasted_iota(jnp.int32, (size, 1, 1), 0)


def _pushed(stage: _Stage, acc: jax.Array, j: jax.Array, values: jax.Array,
            base: jax.Array) -> jax.Array:
  """The stacked accumulators `[slots, out, C]` (output row r in slot
  r mod slots) after mid row j `[mid, C]` of a step: a loop over the
  filter's row taps, each adding its term into its output row's slot
  (separable: scalar taps times one column-stage dot of the mid row;
  2-D: a dot per tap row)."""
  run = stage.tap_run(j)
  slots = _slots(acc.shape[0])
  if stage.separable:
    values = stage.dot(stage.matrix(), values)

  def term(q, acc):
    t = jnp.minimum(run.t0 + q * run.dt, stage.taps_ref.shape[0] - 1)
    slot = (base + run.delta0 + q * run.d_delta) & (acc.shape[0] - 1)
    here = (slots == slot) & (q < run.count)
    return acc + jnp.where(here, stage.term(t, values)[None], 0.0)

  return jax.lax.fori_loop(0, run.max_count, term, acc)


def _take_slot(acc: jax.Array, row: jax.Array):
  """(output row `row` `[out, C]`, the accumulators with its slot zeroed)."""
  slots = _slots(acc.shape[0])
  here = slots == (row & (acc.shape[0] - 1))
  return jnp.sum(jnp.where(here, acc, 0.0), axis=0), jnp.where(here, 0.0,
                                                                 acc)


def _stream(tiles: Tiles, pulls: list[tuple[_Stage, _Rows, object]],
            push: tuple[_Stage, _Rows], mid_row) -> None:
  """The row loop of a program: per step and mid row, the pulled signals'
  mid rows are combined by `mid_row(pulled rows) -> [mid, C]` and pushed
  into stacked output row accumulators; after each step the rows it
  completed are stored. Only one mid row is live at a time."""
  push_stage, out_rows = push
  seg = tiles.segment
  program = out_rows.program
  first_step = program.k * seg.steps_per_segment + seg.first_step
  rows_lo = program.k * seg.rows
  rows_hi = rows_lo + seg.rows
  mid_shape = (tiles.columns.mid.padded, tiles.channels)
  out_shape = (tiles.columns.out.padded, tiles.channels)
  sched = push_stage.schedule

  def base(schedule, step):
    return schedule.advance * step + schedule.base

  def step(i, acc):
    s = first_step + i
    out_base = base(sched, s)

    def one_mid_row(j, acc):
      pulled = [_pulled(stage.at(j), rows, bias, base(stage.schedule, s), j,
                        mid_shape)
                for stage, rows, bias in pulls]
      return _pushed(push_stage.at(j), acc, j, mid_row(*pulled), out_base)

    acc = jax.lax.fori_loop(0, len(sched.pairs), one_mid_row, acc)
    for d in range(sched.advance):
      row = out_base + sched.lo + d
      done, acc = _take_slot(acc, row)
      out_rows.store(row, done, rows_lo, rows_hi)
    return acc

  jax.lax.fori_loop(
      0, seg.num_steps, step,
      jnp.zeros((banded.next_pow2(sched.span),) + out_shape, jnp.float32))


def _bias(b_ref, program: _Program, channels: int) -> jax.Array:
  """`[1, C block]` of b `[C]` (zero past C)."""
  lanes = program.c * channels + jax.lax.broadcasted_iota(
      jnp.int32, (channels,), 0)
  return pltriton.load(b_ref.at[pl.ds(program.c * channels, channels)],
                       mask=lanes < b_ref.shape[0],
                       other=0.0).astype(jnp.float32)[None, :]


def _forward_kernel(x_ref, b_ref, fu_ref, fd_ref, up_ref, down_ref, y_ref, *,
                    cfg: KernelConfig, tiles: Tiles, interpret):
  program = _decode(tiles, x_ref.shape[3])
  cols, channels = tiles.columns, tiles.channels
  x_rows = _Rows(x_ref, cols.x, program, channels, interpret)
  precision = _precision(interpret)
  up = _Stage(tiles.pulls[0], fu_ref, up_ref, precision)
  down = _Stage(tiles.push, fd_ref, down_ref, precision)
  _stream(tiles, [(up, x_rows, _bias(b_ref, program, channels))],
          (down, _Rows(y_ref, cols.out, program, channels, interpret)),
          cfg.activation)


def _backward_kernel(x_ref, dy_ref, b_ref, fu_ref, fd_ref, up_ref, dyt_ref,
                     upt_ref, dx_ref, *, cfg: KernelConfig, tiles: Tiles,
                     interpret):
  program = _decode(tiles, x_ref.shape[3])
  cols, channels = tiles.columns, tiles.channels
  precision = _precision(interpret)
  up = _Stage(tiles.pulls[0], fu_ref, up_ref, precision)
  down_adjoint = _Stage(tiles.pulls[1], fd_ref, dyt_ref, precision)
  up_adjoint = _Stage(tiles.push, fu_ref, upt_ref, precision)
  _stream(tiles,
          [(up, _Rows(x_ref, cols.x, program, channels, interpret),
            _bias(b_ref, program, channels)),
           (down_adjoint, _Rows(dy_ref, cols.dy, program, channels,
                                interpret), None)],
          (up_adjoint, _Rows(dx_ref, cols.out, program, channels,
                             interpret)),
          lambda v, dmid: dmid * cfg.derivative(v))


def cost_estimate(cfg: KernelConfig, tiles: Tiles, batch: int,
                  itemsize: int, *, backward: bool) -> pl.CostEstimate:
  """FLOPs as run (an FMA or tensor-core multiply-add counts 2) and the
  global-memory bytes of `hbm_bytes`."""
  fma, dots = work(cfg, tiles, batch, backward=backward)
  return pl.CostEstimate(
      flops=2 * (fma + dots), transcendentals=0,
      bytes_accessed=hbm_bytes(cfg, tiles, batch, itemsize,
                               backward=backward))


def _call(kernel, cfg: KernelConfig, tiles: Tiles, out_shape, batch: int,
          cost, interpret, name: str, backward: bool):
  grid = (_num_programs(cfg, tiles, batch),)
  return pl.pallas_call(
      functools.partial(kernel, cfg=cfg, tiles=tiles, interpret=interpret),
      out_shape=out_shape, grid=grid,
      compiler_params=pltriton.CompilerParams(
          num_warps=NUM_WARPS[backward], num_stages=1),
      cost_estimate=cost, interpret=interpret, name=name)


def forward(cfg: KernelConfig, x: jax.Array, fu: jax.Array, fd: jax.Array,
            b: jax.Array, *, tiling: Tiling = Tiling(),
            interpret=False) -> jax.Array:
  """y `[N, out_h, out_w, C]` of x `[N, H, W, C]`; taps already prepared
  (`KernelConfig.correlation_taps`), b `[C]`."""
  tiles = plan_tiles(cfg, x.dtype, backward=False, tiling=tiling)
  g = cfg.geometry
  n = x.shape[0]
  out = jax.ShapeDtypeStruct((n,) + g.out_hw + (g.channels,), x.dtype)
  (up,), down = _matrices(cfg, tiles, fu, fd, backward=False)
  cost = cost_estimate(cfg, tiles, n, x.dtype.itemsize, backward=False)
  return _call(_forward_kernel, cfg, tiles, out, n, cost, interpret,
               "filtered_lrelu_fwd_gpu", backward=False)(x, b, fu, fd, up,
                                                         down)


def backward(cfg: KernelConfig, x: jax.Array, dy: jax.Array, fu: jax.Array,
             fd: jax.Array, b: jax.Array, *, tiling: Tiling = Tiling(),
             interpret=False) -> jax.Array:
  """dx `[N, H, W, C]` of the cotangent dy `[N, out_h, out_w, C]`."""
  tiles = plan_tiles(cfg, x.dtype, backward=True, tiling=tiling)
  n = x.shape[0]
  (up, down_adjoint), up_adjoint = _matrices(cfg, tiles, fu, fd,
                                             backward=True)
  cost = cost_estimate(cfg, tiles, n, x.dtype.itemsize, backward=True)
  return _call(_backward_kernel, cfg, tiles,
               jax.ShapeDtypeStruct(x.shape, x.dtype), n, cost, interpret,
               "filtered_lrelu_bwd_gpu", backward=True)(
                   x, dy, b, fu, fd, up, down_adjoint, up_adjoint)
