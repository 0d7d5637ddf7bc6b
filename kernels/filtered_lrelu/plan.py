"""Static planning of the fused filtered_lrelu kernels, shared by backends.

Everything here is plain Python on static shapes: no arrays, no tracing.
The TPU and GPU kernels differ in their memory model, not in this math.

The op, per spatial axis (rows and columns alike), is a chain of 1-D
upfirdn stages: the up stage (x -> the upsampled "mid" signal), the
pointwise activation, the down stage (mid -> y). The backward chain is the
down stage's adjoint (dy -> d mid), the activation's derivative, and the up
stage's adjoint (d mid -> dx); it recomputes mid from x instead of storing
it (see `kernels/filtered_lrelu/__init__.py`).

A kernel program computes one output tile. `AxisStage.window` says which
input samples a run of outputs reads; chaining windows backwards from the
output tile gives the windows (tile plus halo) that the program loads, and
`AxisStage.polyphase` splits each stage on its window into phases: output
m uses tap t only when (m * down + t - pad0) % up == 0, so no multiply
touches an inserted zero and no dropped sample is computed.
"""

import dataclasses
import math


def cdiv(a: int, b: int) -> int:
  return -(-a // b)


@dataclasses.dataclass(frozen=True)
class Phase:
  """Outputs m = period * k + index, k < count, of one stage on a window.

  Output k reads input `k * stride + offset` for each (tap, offset).
  """
  index: int
  count: int
  taps: tuple[tuple[int, int], ...]


@dataclasses.dataclass(frozen=True)
class Polyphase:
  """One stage along one axis on a window: `num_out` outputs in phases."""
  period: int
  stride: int
  num_out: int
  phases: tuple[Phase, ...]


@dataclasses.dataclass(frozen=True)
class AxisStage:
  """A 1-D upfirdn: zero-insert by `up`, pad `pad0` in front, correlate
  with `taps` taps, keep every `down`-th sample (official semantics)."""
  up: int
  down: int
  taps: int
  pad0: int
  in_size: int
  out_size: int

  def window(self, out_start: int, count: int) -> tuple[int, int, int]:
    """(in_start, in_count, local_pad0) that outputs [out_start, +count) read.

    Output m reads input k where k * up = m * down + t - pad0 for a tap t;
    `local_pad0` is the pad0 of the same stage on the window alone.
    """
    first = out_start * self.down - self.pad0
    last = (out_start + count - 1) * self.down + self.taps - 1 - self.pad0
    in_start = cdiv(first, self.up)
    in_count = last // self.up + 1 - in_start
    return in_start, in_count, in_start * self.up - first

  def adjoint(self) -> "AxisStage":
    """The transposed stage, mapping cotangents of outputs to inputs."""
    pad0 = self.taps - self.pad0 - 1
    return AxisStage(self.down, self.up, self.taps, pad0, self.out_size,
                     self.in_size)


def polyphase(up: int, down: int, taps: int, pad0: int, num_in: int,
              num_out: int) -> Polyphase:
  """The phases of a stage computing `num_out` outputs from `num_in` inputs.

  Raises ValueError if an output would read outside [0, num_in).
  """
  common = math.gcd(up, down)
  period, stride = up // common, down // common
  phases = []
  for j in range(period):
    used = tuple((t, (j * down + t - pad0) // up) for t in range(taps)
                 if (j * down + t - pad0) % up == 0)
    count = len(range(j, num_out, period))
    if count and used:
      lo = min(o for _, o in used)
      hi = max(o for _, o in used) + (count - 1) * stride
      if lo < 0 or hi >= num_in:
        raise ValueError(f"polyphase: outputs of phase {j} read inputs "
                         f"[{lo}, {hi}] outside [0, {num_in})")
    phases.append(Phase(j, count, used))
  return Polyphase(period, stride, num_out, tuple(phases))


@dataclasses.dataclass(frozen=True)
class Placement:
  """How the loaded block of tiles [first, last] maps into the window.

  The block (the window clipped to the array) starts at array index
  `clip(i * step + offset, 0, extent - block)`; its samples
  [src, src + length) go to window positions [dst, dst + length); the
  rest of the window is zero padding.
  """
  first: int
  last: int
  src: int
  dst: int
  length: int


@dataclasses.dataclass(frozen=True)
class AxisWindow:
  """The window of one input that tile i loads along one axis:
  [i * step + offset, + size) of an array axis of length `extent`."""
  size: int
  step: int
  offset: int
  extent: int
  num_tiles: int

  @property
  def block(self) -> int:
    """Samples actually loaded per tile (the window, clipped)."""
    return min(self.size, self.extent)

  def block_start(self, i: int) -> int:
    return min(max(i * self.step + self.offset, 0), self.extent - self.block)

  def placements(self) -> tuple[Placement, ...]:
    """Runs of tiles sharing one (src, dst, length); windows fully outside
    the array (length <= 0) are left out: their window is all padding."""
    runs = []
    for i in range(self.num_tiles):
      start = i * self.step + self.offset
      lo, hi = max(start, 0), min(start + self.size, self.extent)
      key = (lo - self.block_start(i), lo - start, hi - lo)
      if runs and runs[-1][1:] == key and runs[-1][0][1] == i - 1:
        runs[-1] = ((runs[-1][0][0], i),) + key
      else:
        runs.append(((i, i),) + key)
    return tuple(Placement(first, last, src, dst, length)
                 for (first, last), src, dst, length in runs if length > 0)


@dataclasses.dataclass(frozen=True)
class AxisPlan:
  """One spatial axis of a tiled kernel: tiles of `tile` outputs, the
  windows each tile loads, and the stages it runs on them."""
  tile: int
  num_tiles: int
  windows: tuple[AxisWindow, ...]  # one per kernel input image
  stages: tuple[Polyphase, ...]  # in the order the kernel runs them
  mid: int  # window length of the upsampled signal


def _chain_window(stage: AxisStage, out_step: int, out_offset: int,
                  count: int, num_tiles: int) -> tuple[int, int, int, int]:
  """(step, offset, size, local_pad0) of the inputs that tile i's outputs
  [i * out_step + out_offset, + count) read; the same size and pad0 for
  every tile."""
  start0, size, pad0 = stage.window(out_offset, count)
  if num_tiles == 1:
    return 0, start0, size, pad0
  start1, size1, pad1 = stage.window(out_step + out_offset, count)
  if (size1, pad1) != (size, pad0) or (
      (start1 - start0) * stage.up != out_step * stage.down):
    raise ValueError(f"step {out_step}: windows of {stage} are not uniform")
  return start1 - start0, start0, size, pad0


def round_up(n: int, multiple: int) -> int:
  return cdiv(n, multiple) * multiple


def forward_axis(up_stage: AxisStage, down_stage: AxisStage, tile: int,
                 align: int = 1) -> AxisPlan:
  """x window -> up stage -> mid window -> down stage -> `tile` outputs.

  Input windows are loaded in lengths that are multiples of `align`.
  """
  num_tiles = cdiv(down_stage.out_size, tile)
  mid_step, mid_offset, mid, down_pad0 = _chain_window(
      down_stage, tile, 0, tile, num_tiles)
  x_step, x_offset, x_size, up_pad0 = _chain_window(
      up_stage, mid_step, mid_offset, mid, num_tiles)
  x_window = AxisWindow(round_up(x_size, align), x_step, x_offset,
                        up_stage.in_size, num_tiles)
  stages = (
      polyphase(up_stage.up, 1, up_stage.taps, up_pad0, x_size, mid),
      polyphase(1, down_stage.down, down_stage.taps, down_pad0, mid, tile))
  return AxisPlan(tile, num_tiles, (x_window,), stages, mid)


def backward_axis(up_stage: AxisStage, down_stage: AxisStage, tile: int,
                  align: int = 1) -> AxisPlan:
  """dx tile <- up adjoint <- mid window, which the kernel recomputes from
  an x window (up stage) and gets from a dy window (down adjoint); input
  windows are loaded in lengths that are multiples of `align`."""
  up_adjoint, down_adjoint = up_stage.adjoint(), down_stage.adjoint()
  num_tiles = cdiv(up_stage.in_size, tile)
  mid_step, mid_offset, mid, adjoint_pad0 = _chain_window(
      up_adjoint, tile, 0, tile, num_tiles)
  x_step, x_offset, x_size, up_pad0 = _chain_window(
      up_stage, mid_step, mid_offset, mid, num_tiles)
  dy_step, dy_offset, dy_size, down_pad0 = _chain_window(
      down_adjoint, mid_step, mid_offset, mid, num_tiles)
  windows = (
      AxisWindow(round_up(x_size, align), x_step, x_offset,
                 up_stage.in_size, num_tiles),
      AxisWindow(round_up(dy_size, align), dy_step, dy_offset,
                 down_stage.out_size, num_tiles))
  stages = (
      polyphase(up_stage.up, 1, up_stage.taps, up_pad0, x_size, mid),
      polyphase(down_adjoint.up, 1, down_stage.taps, down_pad0, dy_size,
                mid),
      polyphase(1, up_adjoint.down, up_stage.taps, adjoint_pad0, mid, tile))
  return AxisPlan(tile, num_tiles, windows, stages, mid)


def tile_multiple(up: int, down: int, *, backward: bool) -> int:
  """Tiles must be multiples of this for every tile to see the same
  window (the same phases): tile * down % up == 0 forward, tile * up %
  down == 0 backward."""
  a, b = (down, up) if backward else (up, down)
  return a // math.gcd(a, b)


@dataclasses.dataclass(frozen=True)
class OpGeometry:
  """The static configuration of one filtered_lrelu call."""
  in_hw: tuple[int, int]
  channels: int
  up: int
  down: int
  fu_shape: tuple[int, ...]  # (K,) separable or (Kh, Kw)
  fd_shape: tuple[int, ...]
  padding: tuple[int, int, int, int]  # (x0, x1, y0, y1)

  def __post_init__(self):
    for name, shape in (("fu", self.fu_shape), ("fd", self.fd_shape)):
      if len(shape) not in (1, 2) or min(shape) < 1:
        raise ValueError(f"{name}: expected taps [K] or [Kh, Kw], got shape "
                         f"{shape}")
    if self.mid_hw[0] < 1 or self.mid_hw[1] < 1 or min(self.out_hw) < 1:
      raise ValueError(
          f"filtered_lrelu: the padded, upsampled image of {self.in_hw} "
          f"(padding {self.padding}) is smaller than the filters "
          f"{self.fu_shape}, {self.fd_shape}")

  @staticmethod
  def _taps_hw(shape) -> tuple[int, int]:
    return (shape[0], shape[0]) if len(shape) == 1 else tuple(shape)

  def up_stage(self, axis: int) -> AxisStage:
    """axis 0 = rows (H), 1 = columns (W)."""
    k = self._taps_hw(self.fu_shape)[axis]
    pad0, pad1 = self.padding[2:] if axis == 0 else self.padding[:2]
    n = self.in_hw[axis]
    return AxisStage(self.up, 1, k, pad0, n, n * self.up + pad0 + pad1 - k + 1)

  def down_stage(self, axis: int) -> AxisStage:
    k = self._taps_hw(self.fd_shape)[axis]
    n = self.up_stage(axis).out_size
    return AxisStage(1, self.down, k, 0, n, cdiv(n - k + 1, self.down))

  @property
  def mid_hw(self) -> tuple[int, int]:
    return tuple(self.up_stage(a).out_size for a in (0, 1))

  @property
  def out_hw(self) -> tuple[int, int]:
    return tuple(self.down_stage(a).out_size for a in (0, 1))

  def axis_plan(self, axis: int, tile: int, *, backward: bool,
                align: int = 1) -> AxisPlan:
    make = backward_axis if backward else forward_axis
    return make(self.up_stage(axis), self.down_stage(axis), tile, align)

  def bytes_moved(self, batch: int, itemsize: int) -> dict[str, int]:
    """HBM bytes of the forward and backward passes, fused and unfused.

    fused: forward reads x and writes y; backward reads x and dy and
    writes dx (mid is recomputed on chip). xla: the unfused path also
    writes and reads the upsampled (mid) tensor between its stages, in
    float32 (its separable filters add one more mid-sized round trip per
    stage), and keeps an int8 code of mid for the backward.
    """
    c = batch * self.channels
    x = math.prod(self.in_hw) * c
    y = math.prod(self.out_hw) * c
    mid = math.prod(self.mid_hw) * c
    up_rows = self.in_hw[0] * self.mid_hw[1] * c  # after the W up-pass
    down_rows = self.mid_hw[0] * self.out_hw[1] * c  # after the W down-pass
    fused_fwd = (x + y) * itemsize
    fused_bwd = (2 * x + y) * itemsize
    xla_fwd = (x + y) * itemsize + 4 * (2 * up_rows + 2 * mid +
                                         2 * down_rows) + mid
    xla_bwd = (x + y) * itemsize + 4 * (2 * down_rows + 2 * mid +
                                         2 * up_rows) + mid
    return dict(fused_forward=fused_fwd, fused_backward=fused_bwd,
                xla_forward=xla_fwd, xla_backward=xla_bwd)
