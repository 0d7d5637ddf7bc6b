"""Polyphase upfirdn stages on kernel refs (the TPU kernel's VMEM passes).

A stage reads a `[rows, cols, C]` ref and writes another: each output phase
is a sum of strided ref reads times scalar taps, stored interleaved with a
strided ref write (`ref[pl.ds(start, size, stride)]`), one chunk of rows at
a time. Values are never sliced: Mosaic refuses strided value slices.
`Memory` says how many rows a chunk holds. (The GPU kernel keeps its
intermediates in registers instead: `gpu.py`.)
"""

import dataclasses
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
from jax.experimental import pallas as pl

from kernels.filtered_lrelu import plan as planning

Tap = Callable[[tuple[int, ...]], jax.Array]


@dataclasses.dataclass(frozen=True)
class Memory:
  """How a kernel addresses its buffers.

  chunk_rows(cols, channels): rows per chunk of a pass.
  """
  chunk_rows: Callable[[int, int], int]

  def in_chunks(self, count: int, chunk: int,
                body: Callable[[jax.Array | int, int], None]) -> None:
    """body(start, size) over rows [0, count): a loop over full chunks, and
    an exact remainder."""
    full, rest = divmod(count, chunk)
    if full == 1:
      body(0, chunk)
    elif full > 1:
      def step(k, carry):
        body(k * chunk, chunk)
        return carry
      jax.lax.fori_loop(0, full, step, 0)
    if rest:
      body(full * chunk, rest)


@dataclasses.dataclass(frozen=True)
class View:
  """A `[rows, cols, C]` buffer `ref`; `extent` (rows, cols) bounds the
  samples that carry data (default: the whole ref); `lanes` channels from
  `lane_start` (may be traced) stand for the channel axis (default: all
  of it)."""
  ref: Any
  extent: tuple[int, int] | None = None
  lanes: int | None = None
  lane_start: Any = 0

  @property
  def dtype(self):
    return self.ref.dtype

  @property
  def shape(self) -> tuple[int, int, int]:
    rows, cols = self.extent or self.ref.shape[:2]
    return rows, cols, self.lanes or self.ref.shape[-1]

  def _index(self, index) -> tuple:
    if self.lanes is not None:
      rows, cols, lanes = index
      assert lanes == slice(None), "a view's lanes are its whole channel axis"
      index = (rows, cols, pl.ds(self.lane_start, self.lanes))
    return index

  def __getitem__(self, index):
    return self.ref[self._index(index)]

  def __setitem__(self, index, value):
    self.ref[self._index(index)] = value


def _ds(start, size, stride=1):
  return pl.ds(start, size, stride) if stride > 1 else pl.ds(start, size)


def run_stage(mem: Memory, src: View, dst: View, tap: Tap,
              row_stage: planning.Polyphase | None,
              col_stage: planning.Polyphase | None) -> None:
  """dst = one upfirdn stage of src along rows and/or columns;
  `tap((t_row, t_col))` gives a tap (an axis that is not filtered passes
  no index)."""
  channels = dst.shape[2]
  out_cols = col_stage.num_out if col_stage else src.shape[1]
  chunk = mem.chunk_rows(out_cols, channels)
  for row_phase in row_stage.phases if row_stage else (None,):
    for col_phase in col_stage.phases if col_stage else (None,):
      if (row_phase and not row_phase.count) or (col_phase and
                                                 not col_phase.count):
        continue
      num_rows = row_phase.count if row_phase else src.shape[0]
      num_cols = col_phase.count if col_phase else src.shape[1]

      def phase_chunk(k0, size, row_phase=row_phase, col_phase=col_phase,
                      num_cols=num_cols):
        def add_row_tap(acc, t_row, o_row):
          """acc + the terms of one row tap (all column taps)."""
          rows = (_ds(o_row + k0 * row_stage.stride, size, row_stage.stride)
                  if row_phase else pl.ds(k0, size))
          for t_col, o_col in col_phase.taps if col_phase else ((None, 0),):
            cols = (_ds(o_col, num_cols, col_stage.stride) if col_phase
                    else pl.ds(0, num_cols))
            index = tuple(t for t in (t_row, t_col) if t is not None)
            term = src[rows, cols, :] * tap(index)
            acc = term if acc is None else acc + term
          return acc

        row_taps = row_phase.taps if row_phase else ((None, 0),)
        if row_phase and col_phase and len(row_taps) > 1:
          # A 2-D filter loops over its row taps (t, offset advance by
          # (step, 1) within a phase) rather than unrolling K x K terms.
          (t0, o0), (t1, _) = row_taps[:2]
          acc = jax.lax.fori_loop(
              0, len(row_taps),
              lambda q, acc: add_row_tap(acc, t0 + q * (t1 - t0), o0 + q),
              jnp.zeros((size, num_cols, channels), jnp.float32))
        else:
          acc = None
          for t_row, o_row in row_taps:
            acc = add_row_tap(acc, t_row, o_row)
        if acc is None:  # a phase that no tap reaches is zero
          acc = jnp.zeros((size, num_cols, channels), jnp.float32)
        out_rows = (_ds(row_phase.index + k0 * row_stage.period, size,
                        row_stage.period) if row_phase else pl.ds(k0, size))
        out_cols = (_ds(col_phase.index, num_cols, col_stage.period)
                    if col_phase else pl.ds(0, num_cols))
        dst[out_rows, out_cols, :] = acc.astype(dst.dtype)

      mem.in_chunks(num_rows, chunk, phase_chunk)


def run_filter(mem: Memory, src: View, dst: View, scratch: View, tap: Tap,
               separable: bool,
               row_stage: planning.Polyphase,
               col_stage: planning.Polyphase) -> None:
  """A separable filter as a column pass into `scratch`, then a row pass
  (the official order: W first); a 2-D filter as one pass."""
  if separable:
    run_stage(mem, src, scratch, tap, None, col_stage)
    run_stage(mem, scratch, dst, tap, row_stage, None)
  else:
    run_stage(mem, src, dst, tap, row_stage, col_stage)


def elementwise(mem: Memory, views: list[View], fn) -> None:
  """views[0] = fn(*values of views), in row chunks (views of one shape)."""
  rows, cols, channels = views[0].shape

  def chunk(start, size):
    values = [v[pl.ds(start, size), pl.ds(0, cols), :] for v in views]
    views[0][pl.ds(start, size), pl.ds(0, cols), :] = fn(*values)

  mem.in_chunks(rows, mem.chunk_rows(cols, channels), chunk)


def taps(ref, reverse: bool) -> Tap:
  """Scalar taps read from `ref`; `reverse` reads them flipped (adjoint)."""
  def tap(index):
    if reverse:
      index = tuple(k - 1 - t for k, t in zip(ref.shape, index))
    return ref[index]
  return tap


def buffer_extents(cfg, rows: planning.AxisPlan, cols: planning.AxisPlan,
                   backward: bool) -> dict[str, tuple[int, int]]:
  """(rows, cols) holding data of each buffer of `forward_passes` or
  `backward_passes`; the column-pass buffers of a 2-D filter are unused
  (absent)."""
  fu_sep = len(cfg.geometry.fu_shape) == 1
  fd_sep = len(cfg.geometry.fd_shape) == 1
  x = (rows.windows[0].size, cols.windows[0].size)
  mid = (rows.mid, cols.mid)
  extents = dict(x_win=x, up_cols=(x[0], cols.mid) if fu_sep else None)
  if not backward:
    extents.update(mid=mid, down_cols=(rows.mid, cols.tile) if fd_sep
                   else None)
  else:
    dy = (rows.windows[1].size, cols.windows[1].size)
    extents.update(v=mid, dy_win=dy, dmid=mid,
                   adjoint_cols=(dy[0], cols.mid) if fd_sep else None,
                   dx_cols=(rows.mid, cols.tile) if fu_sep else None)
  return {name: e for name, e in extents.items() if e is not None}


def forward_passes(mem: Memory, cfg, rows: planning.AxisPlan,
                   cols: planning.AxisPlan, bufs: dict[str, View],
                   fu_ref, fd_ref, out: View,
                   place_x: Callable[[View], None]) -> None:
  """x window -> up (W, H) -> activation -> down (W, H) -> out.

  `bufs` names the buffers ("x_win", "up_cols", "mid", "down_cols"; the
  column buffer of a 2-D filter may be absent); `place_x` fills the
  zero-padded x window (+ bias)."""
  place_x(bufs["x_win"])
  run_filter(mem, bufs["x_win"], bufs["mid"], bufs.get("up_cols"),
             taps(fu_ref, False), len(fu_ref.shape) == 1, rows.stages[0],
             cols.stages[0])
  elementwise(mem, [bufs["mid"]], cfg.activation)
  run_filter(mem, bufs["mid"], out, bufs.get("down_cols"),
             taps(fd_ref, False), len(fd_ref.shape) == 1, rows.stages[1],
             cols.stages[1])


def backward_passes(mem: Memory, cfg, rows: planning.AxisPlan,
                    cols: planning.AxisPlan, bufs: dict[str, View],
                    fu_ref, fd_ref, out: View,
                    place_x: Callable[[View], None],
                    place_dy: Callable[[View], None]) -> None:
  """v = up(x window); dmid = down-adjoint(dy window) * act'(v);
  out = up-adjoint(dmid) (the tile of dx).

  `bufs`: "x_win", "up_cols", "v", "dy_win", "adjoint_cols", "dmid",
  "dx_cols" (column buffers of 2-D filters may be absent)."""
  fu_separable, fd_separable = len(fu_ref.shape) == 1, len(fd_ref.shape) == 1
  place_x(bufs["x_win"])
  run_filter(mem, bufs["x_win"], bufs["v"], bufs.get("up_cols"),
             taps(fu_ref, False), fu_separable, rows.stages[0],
             cols.stages[0])
  place_dy(bufs["dy_win"])
  run_filter(mem, bufs["dy_win"], bufs["dmid"], bufs.get("adjoint_cols"),
             taps(fd_ref, True), fd_separable, rows.stages[1],
             cols.stages[1])
  elementwise(mem, [bufs["dmid"], bufs["v"]],
              lambda d, v: d * cfg.derivative(v))
  run_filter(mem, bufs["dmid"], out, bufs.get("dx_cols"),
             taps(fu_ref, True), fu_separable, rows.stages[2],
             cols.stages[2])
