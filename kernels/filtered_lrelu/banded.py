"""Static planning of the GPU kernel's banded, row-streaming formulation.

Plain Python on static shapes (no arrays, no tracing), used by `gpu.py`.

Along either spatial axis the op meets the upsampled ("mid") signal in two
relations, each a band of taps between mid samples m and the samples r of
an outer signal:

  up:   up * r = m + t - pad0     (r: x samples, t < Ku)
  down: down * r = m - t         (r: y samples, t < Kd)

`Relation` holds one of them. Along columns, a relation on the windows of
one tile is a banded matrix of taps (`tap_indices`): the kernel multiplies
rows `[W, C]` by it (zero insertion and decimation folded in). Along rows,
the kernel streams: a loop over mid rows, `period = lcm(up, down)` per step,
in which the outer rows of a relation sit at fixed offsets from a base that
advances by `period / factor` per step (`RowSchedule`).
"""

import dataclasses
import math

from kernels.filtered_lrelu import plan as planning


def next_pow2(n: int) -> int:
  return 1 << max(n - 1, 0).bit_length()


@dataclasses.dataclass(frozen=True)
class Relation:
  """factor * r = m + sign * t + offset for taps t < taps."""
  factor: int
  sign: int
  offset: int
  taps: int

  def outer(self, m: int, t: int) -> int | None:
    """The outer sample that mid sample m meets through tap t, if any."""
    num = m + self.sign * t + self.offset
    return num // self.factor if num % self.factor == 0 else None

  def _tap_span(self) -> tuple[int, int]:
    return tuple(sorted((0, self.sign * (self.taps - 1))))

  def outer_range(self, m_lo: int, m_hi: int) -> tuple[int, int]:
    """[first, last] outer samples that mid samples [m_lo, m_hi] meet."""
    lo, hi = self._tap_span()
    return (-((-(m_lo + self.offset + lo)) // self.factor),
            (m_hi + self.offset + hi) // self.factor)

  def mid_range(self, r_lo: int, r_hi: int) -> tuple[int, int]:
    """[first, last] mid samples that outer samples [r_lo, r_hi] meet."""
    lo, hi = self._tap_span()
    return (self.factor * r_lo - self.offset - hi,
            self.factor * r_hi - self.offset - lo)


def up_relation(g: planning.OpGeometry, axis: int) -> Relation:
  """axis 0 = rows (H), 1 = columns (W)."""
  stage = g.up_stage(axis)
  return Relation(g.up, 1, -stage.pad0, stage.taps)


def down_relation(g: planning.OpGeometry, axis: int) -> Relation:
  return Relation(g.down, -1, 0, g.down_stage(axis).taps)


def tap_indices(rel: Relation, m_start: int, m_count: int, r_start: int,
                r_count: int) -> list[list[int]]:
  """[m_count][r_count] tap index joining mid sample m_start + i and outer
  sample r_start + j, -1 where none (the band of a banded matrix)."""
  index = [[-1] * r_count for _ in range(m_count)]
  for i in range(m_count):
    for t in range(rel.taps):
      r = rel.outer(m_start + i, t)
      if r is not None and 0 <= r - r_start < r_count:
        index[i][r - r_start] = t
  return index


@dataclasses.dataclass(frozen=True)
class RowSchedule:
  """A relation along rows, on the mid-row clock m = period * s + j.

  At step s, mid row j (< period) meets outer rows base(s) + delta for
  (tap, delta) in `pairs[j]`, where base(s) = advance * s + base and
  lo <= delta <= hi.
  """
  advance: int
  base: int
  lo: int
  hi: int
  pairs: tuple[tuple[tuple[int, int], ...], ...]

  @property
  def span(self) -> int:
    """Outer rows a step meets (the ring of rows a kernel keeps)."""
    return self.hi - self.lo + 1

  @property
  def warmup(self) -> int:
    """Steps before a pushed row's first complete store: a row stored at
    step s (delta < lo + advance) was first met at step s - warmup."""
    return (self.hi - self.lo) // self.advance


def row_schedule(rel: Relation, period: int) -> RowSchedule:
  """The schedule of `rel` for `period` mid rows per step (a multiple of
  rel.factor)."""
  residue, base = rel.offset % rel.factor, rel.offset // rel.factor
  pairs = []
  for j in range(period):
    row = []
    for t in range(rel.taps):
      num = residue + j + rel.sign * t
      if num % rel.factor == 0:
        row.append((t, num // rel.factor))
    pairs.append(tuple(row))
  deltas = [d for row in pairs for _, d in row]
  return RowSchedule(period // rel.factor, base, min(deltas), max(deltas),
                     tuple(pairs))


@dataclasses.dataclass(frozen=True)
class Segment:
  """How a program streams a segment of `rows` output rows starting at
  segment * rows: steps s = segment * steps_per_segment + first_step + i,
  i < num_steps (the first `push.warmup` of them only warm up)."""
  rows: int
  num_segments: int
  steps_per_segment: int
  first_step: int
  num_steps: int


def segment(push: RowSchedule, rows: int, total_rows: int) -> Segment:
  """The steps that store output rows [k * rows, (k + 1) * rows) of a
  pushed relation, rows a multiple of push.advance."""
  assert rows % push.advance == 0, (rows, push.advance)
  # Step s stores rows advance * s + base + lo + [0, advance).
  first_store = (-(push.base + push.lo)) // push.advance
  start = push.advance * first_store + push.base + push.lo  # <= 0
  stores = planning.cdiv(rows - start, push.advance)
  return Segment(rows, planning.cdiv(total_rows, rows),
                 rows // push.advance, first_store - push.warmup,
                 stores + push.warmup)


@dataclasses.dataclass(frozen=True)
class Window:
  """Samples [step * i + start, + count) of an axis for tile i, padded to
  `padded` (a power of two >= 16) in the kernel."""
  start: int
  step: int
  count: int
  padded: int


def window(lo: int, hi: int, step: int) -> Window:
  count = hi - lo + 1
  return Window(lo, step, count, max(16, next_pow2(count)))


@dataclasses.dataclass(frozen=True)
class ColumnPlan:
  """Column tiles of `tile` outputs: the windows of the outer signals
  (x, and dy in the backward), of mid and of the output, per tile."""
  tile: int
  num_tiles: int
  x: Window
  dy: Window | None
  mid: Window
  out: Window


def forward_columns(g: planning.OpGeometry, tile: int) -> ColumnPlan:
  up, down = up_relation(g, 1), down_relation(g, 1)
  mid_lo, mid_hi = down.mid_range(0, tile - 1)
  x_lo, x_hi = up.outer_range(mid_lo, mid_hi)
  mid_step = tile * g.down
  assert mid_step % g.up == 0, (tile, g.up, g.down)
  return ColumnPlan(tile, planning.cdiv(g.out_hw[1], tile),
                    window(x_lo, x_hi, mid_step // g.up), None,
                    window(mid_lo, mid_hi, mid_step), window(0, tile - 1, tile))


def backward_columns(g: planning.OpGeometry, tile: int) -> ColumnPlan:
  up, down = up_relation(g, 1), down_relation(g, 1)
  mid_lo, mid_hi = up.mid_range(0, tile - 1)
  x_lo, x_hi = up.outer_range(mid_lo, mid_hi)
  dy_lo, dy_hi = down.outer_range(mid_lo, mid_hi)
  mid_step = tile * g.up
  assert mid_step % g.down == 0, (tile, g.up, g.down)
  return ColumnPlan(tile, planning.cdiv(g.in_hw[1], tile),
                    window(x_lo, x_hi, tile), window(dy_lo, dy_hi,
                                                     mid_step // g.down),
                    window(mid_lo, mid_hi, mid_step), window(0, tile - 1, tile))


def period(g: planning.OpGeometry) -> int:
  """Mid rows per streaming step: lcm(up, down)."""
  return math.lcm(g.up, g.down)
