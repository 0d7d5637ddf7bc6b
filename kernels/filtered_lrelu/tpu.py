"""The fused filtered_lrelu as Mosaic TPU kernels (forward and backward).

Memory model: a program owns one output tile (rows x columns) of one block
of channels of one image. Channels sit in the 128 lanes, columns in
sublanes, rows in the leading (untiled) dimension. The pipeline DMAs each
input window (the tile plus its halo) into VMEM, double-buffered; the
kernel places it into a zero-padded float32 window and runs the stages
there, VMEM ref to VMEM ref:

  forward:  x (+ bias) -> up W -> up H -> activation -> down W -> down H -> y
  backward: x (+ bias) -> up W -> up H = v      (recomputed, for the branch)
            dy -> down-adjoint W -> down-adjoint H -> * act'(v)
               -> up-adjoint W -> up-adjoint H -> dx

Loading windows: Mosaic sets up a block's DMA only at offsets it can prove
are multiples of the native tile along the tiled dimensions (columns: 8
sublanes for 32-bit, 16 for bfloat16; channels: 128 lanes). A window's
rows (untiled) start anywhere, but its columns start at `j * step +
offset`, clipped at the borders: not provably aligned. So each window's
columns are loaded as a few `pl.Element` blocks of S columns starting at
multiples of S (S a multiple of the sublane tile that divides the
window's step; the same array is passed once per block), and the kernel
cuts the halo'd window out of them in VMEM, masking the columns outside
the array to zero. This keeps Pallas' own double-buffered pipeline and
reads each window plus less than 2 S columns (`ColumnBlocks`). Manual DMA
(`pl.ANY` inputs, `make_async_copy`) is no way around it: Mosaic also
refuses DMA slices of HBM arrays at unaligned column offsets (bfloat16, and
float32 with several lane tiles of channels), and it would need its own
buffering. Column tiles are chosen so that output tiles and window steps
are multiples of the sublane tile.

Every polyphase phase is a sum of strided ref reads (`ref[pl.ds(start,
size, stride)]`), stored interleaved with a strided ref write: no value is
sliced with a stride (Mosaic refuses strided `vector.extract_strided_slice`)
and no multiply touches an inserted zero. Two-dimensional filters (the
radial down filter of StyleGAN3-R) run as one 2-D stage. Rows are
processed in chunks small enough to stay in vector registers. A block of
channels is 128 lanes, or all of them when they do not split into 128s;
the stages then run over lane groups of at most 128, so that the scratch
buffers stay 128 lanes wide. Scratch buffers are reused once dead.
"""

import dataclasses
import functools
import math

import jax
import jax.numpy as jnp
from jax.experimental import pallas as pl
from jax.experimental.pallas import tpu as pltpu

from kernels.filtered_lrelu import plan as planning
from kernels.filtered_lrelu import stages
from kernels.filtered_lrelu.common import KernelConfig
from kernels.filtered_lrelu.common import Tiling
from kernels.filtered_lrelu.common import block_start
from kernels.filtered_lrelu.common import Unsupported
from kernels.filtered_lrelu.common import cost_estimate

# VMEM one program may use (blocks double-buffered, plus scratch).
VMEM_BUDGET_BYTES = 12 * 2 ** 20
# Mosaic's own VMEM besides those (internal scratch, which varies with the
# kernel: 12-132 KiB measured at the real layers with libtpu 0.0.42). The
# kernel asks for exactly its blocks and scratch plus this as its scoped
# VMEM limit, 13 MiB at most: under the default limit of every generation.
MOSAIC_INTERNAL_BYTES = 2 ** 20
_LANES, _SUBLANES = 128, 8
# Most column blocks one input window is loaded in (kernel operands).
_MAX_COLUMN_BLOCKS = 8
# Vector registers' worth of one chunk's accumulator (64 on the chip).
_CHUNK_VREGS = 16


def _sublane_tile(itemsize: int) -> int:
  """Rows of a native (sublanes, 128) tile: 8 for 32-bit, 16 for bf16."""
  return _SUBLANES * 4 // itemsize


def _padded_bytes(rows: int, cols: int, channels: int, itemsize: int) -> int:
  """VMEM bytes of a [rows, cols, channels] buffer in native tiles."""
  return (rows * planning.round_up(cols, _sublane_tile(itemsize)) *
          planning.round_up(channels, _LANES) * itemsize)


@dataclasses.dataclass(frozen=True)
class ColumnBlocks:
  """An input window's columns as `count` aligned blocks of `size` columns.

  Mosaic places a block only at column offsets that are provable multiples
  of the sublane tile, so a window [j * step + offset, + window size) is
  not loaded as one block: tile j loads the array's column blocks
  `j * stride + first + k`, k < count (block index clamped to the array;
  the columns outside it are masked to zero), each `size` columns at
  array column `size * index`. Block k covers window columns
  [(first + k) * size - offset, + size), the same for every tile.
  """
  size: int
  count: int
  first: int
  stride: int
  num_blocks: int

  def window_start(self, window: planning.AxisWindow, k: int) -> int:
    return (self.first + k) * self.size - window.offset

  def block_index(self, j, k: int):
    """Array column block of block k of (traced) tile j, clamped."""
    return jnp.clip(j * self.stride + self.first + k, 0, self.num_blocks - 1)


def column_blocks(window: planning.AxisWindow, tile: int
                  ) -> ColumnBlocks | None:
  """The fewest columns loaded for `window`, in at most
  `_MAX_COLUMN_BLOCKS` blocks whose size is a multiple of `tile` and
  divides the window's step (or, for a single tile, one block of the
  whole axis); None if no such blocks exist."""
  if window.num_tiles == 1:
    return ColumnBlocks(window.extent, 1, 0, 0, 1)
  best = None
  for size in range(tile, window.step + 1, tile):
    if window.step % size:
      continue
    first = window.offset // size
    count = planning.cdiv(window.offset + window.size, size) - first
    if count <= _MAX_COLUMN_BLOCKS and (
        best is None or count * size < best.count * best.size):
      best = ColumnBlocks(size, count, first, window.step // size,
                          planning.cdiv(window.extent, size))
  return best


def _chunk_rows(cols: int, channels: int) -> int:
  vregs_per_row = planning.cdiv(cols, _SUBLANES) * planning.cdiv(
      channels, _LANES)
  return max(1, _CHUNK_VREGS // vregs_per_row)


def _place_window(blocks, window: stages.View, *,
                  row_window: planning.AxisWindow,
                  col_window: planning.AxisWindow, col_blocks: ColumnBlocks,
                  lane_start, bias=None) -> None:
  """Zero-padded float32 `window` <- the input's column `blocks` (+ bias),
  channels [lane_start, + window.lanes) of the block.

  Rows: the blocks hold the window's rows clipped to the array (one
  static placement per run of tiles). Columns: block k holds window
  columns from `col_blocks.window_start(k)`; those outside the array
  (left of 0, right of its extent: clamped or partial blocks) become 0.
  """
  window.ref[...] = jnp.zeros(window.ref.shape, window.dtype)
  lanes = pl.ds(lane_start, window.shape[2])
  i, j = pl.program_id(2), pl.program_id(3)
  col_start = j * col_window.step + col_window.offset
  for rp in row_window.placements():
    @pl.when((i >= rp.first) & (i <= rp.last))
    def _(rp=rp):
      for k, block in enumerate(blocks):
        start = col_blocks.window_start(col_window, k)
        lo, hi = max(start, 0), min(start + col_blocks.size, window.shape[1])
        if lo >= hi:
          continue
        values = block[pl.ds(rp.src, rp.length), pl.ds(lo - start, hi - lo),
                       lanes].astype(jnp.float32)
        if bias is not None:
          values = values + bias[0, lanes].astype(jnp.float32)
        cols = col_start + lo + jax.lax.broadcasted_iota(
            jnp.int32, values.shape, 1)
        inside = (cols >= 0) & (cols < col_window.extent)
        window[pl.ds(rp.dst, rp.length), pl.ds(lo, hi - lo), :] = jnp.where(
            inside, values, 0.0)


def _over_lane_groups(channels: int, group) -> None:
  """group(lane_start, lanes) over the block's channels in groups of at
  most 128 lanes (the scratch width): a loop over the full groups, then
  the rest."""
  if channels <= _LANES:
    group(0, channels)
    return
  full, rest = divmod(channels, _LANES)
  if full == 1:
    group(0, _LANES)
  else:
    def step(g, carry):
      group(pl.multiple_of(g * _LANES, _LANES), _LANES)
      return carry
    jax.lax.fori_loop(0, full, step, 0)
  if rest:
    group(full * _LANES, rest)


_MEMORY = stages.Memory(chunk_rows=_chunk_rows)


def _window_placer(blocks, tiles: "Tiles", index: int, lane_start,
                   bias=None):
  """`_place_window` of kernel input `index`'s window (0: x, 1: dy)."""
  return functools.partial(_place_window, blocks,
                           row_window=tiles.rows.windows[index],
                           col_window=tiles.cols.windows[index],
                           col_blocks=tiles.col_blocks[index],
                           lane_start=lane_start, bias=bias)


def _forward_kernel(*refs, cfg: KernelConfig, tiles: "Tiles"):
  """refs: the x column blocks, b, fu, fd, then y, then the scratch."""
  num_x = tiles.col_blocks[0].count
  x_blocks, (b_ref, fu_ref, fd_ref, y_ref) = (refs[:num_x],
                                              refs[num_x:num_x + 4])
  scratch = refs[num_x + 4:]
  rows, cols = tiles.rows, tiles.cols

  def group(lane_start, lanes):
    place_x = _window_placer(x_blocks, tiles, 0, lane_start, bias=b_ref)
    stages.forward_passes(
        _MEMORY, cfg, rows, cols,
        _views(cfg, rows, cols, scratch, lanes, backward=False), fu_ref,
        fd_ref, stages.View(y_ref, lanes=lanes, lane_start=lane_start),
        place_x)

  _over_lane_groups(y_ref.shape[-1], group)


def _backward_kernel(*refs, cfg: KernelConfig, tiles: "Tiles"):
  """refs: the x column blocks, the dy column blocks, b, fu, fd, then dx,
  then the scratch."""
  num_x, num_dy = (blocks.count for blocks in tiles.col_blocks)
  x_blocks = refs[:num_x]
  dy_blocks = refs[num_x:num_x + num_dy]
  b_ref, fu_ref, fd_ref, dx_ref = refs[num_x + num_dy:num_x + num_dy + 4]
  scratch = refs[num_x + num_dy + 4:]
  rows, cols = tiles.rows, tiles.cols

  def group(lane_start, lanes):
    place_x = _window_placer(x_blocks, tiles, 0, lane_start, bias=b_ref)
    place_dy = _window_placer(dy_blocks, tiles, 1, lane_start)
    stages.backward_passes(
        _MEMORY, cfg, rows, cols,
        _views(cfg, rows, cols, scratch, lanes, backward=True), fu_ref,
        fd_ref, stages.View(dx_ref, lanes=lanes, lane_start=lane_start),
        place_x, place_dy)

  _over_lane_groups(dx_ref.shape[-1], group)


# ---------------------------------------------------------------------------
# Tiling and pallas_call wrappers.


@dataclasses.dataclass(frozen=True)
class Tiles:
  """A tiling of one kernel: lanes per program, the row and column plans,
  and how each input window's columns are loaded."""
  channels: int
  rows: planning.AxisPlan
  cols: planning.AxisPlan
  col_blocks: tuple[ColumnBlocks, ...]  # one per kernel input image


def _channel_block(channels: int) -> int:
  """128 lanes, or every channel when they do not split into 128s (the
  kernel then runs its stages over groups of at most 128 lanes)."""
  return _LANES if channels % _LANES == 0 else channels


def _tile_size(out_size: int, num_tiles: int, multiple: int) -> int:
  if num_tiles == 1:
    return out_size
  return planning.round_up(planning.cdiv(out_size, num_tiles), multiple)


# The buffers of each kernel, and which VMEM scratch buffer holds each: a
# buffer reuses the space of one that is dead by the time it is written
# (see the pass order in the kernels).
_FORWARD_BUFFERS = dict(x_win=0, up_cols=1, mid=2, down_cols=0)
_BACKWARD_BUFFERS = dict(x_win=0, up_cols=1, v=2, dy_win=0, adjoint_cols=1,
                         dmid=3, dx_cols=1)


def _scratch_shapes(cfg: KernelConfig, rows, cols, backward: bool
                    ) -> list[tuple[int, int]]:
  """[rows, cols] of each VMEM scratch buffer: the largest buffer it holds."""
  slots = _BACKWARD_BUFFERS if backward else _FORWARD_BUFFERS
  shapes = [(1, 1)] * (max(slots.values()) + 1)
  for name, (r, c) in stages.buffer_extents(cfg, rows, cols, backward).items():
    slot = slots[name]
    shapes[slot] = (max(shapes[slot][0], r), max(shapes[slot][1], c))
  return shapes


def _views(cfg: KernelConfig, rows, cols, scratch, lanes: int,
           backward: bool) -> dict[str, stages.View]:
  """Each buffer as a view of its scratch buffer: its data extent and the
  first `lanes` channels."""
  slots = _BACKWARD_BUFFERS if backward else _FORWARD_BUFFERS
  return {name: stages.View(scratch[slots[name]], extent=extent, lanes=lanes)
          for name, extent in stages.buffer_extents(cfg, rows, cols,
                                                     backward).items()}


def _vmem_bytes(cfg: KernelConfig, tiles: Tiles, itemsize: int,
                backward: bool) -> int:
  """VMEM of one program: every pipelined block twice (the input column
  blocks, the output tile, the bias), plus the float32 scratch."""
  rows, cols, channels = tiles.rows, tiles.cols, tiles.channels
  blocks = [(w.block, b.size) for w, b in zip(rows.windows, tiles.col_blocks)
            for _ in range(b.count)]
  blocks += [(rows.tile, cols.tile), (1, 1)]  # the output, the bias
  pipelined = sum(2 * _padded_bytes(h, w, channels, itemsize)
                  for h, w in blocks)
  scratch = sum(_padded_bytes(h, w, min(channels, _LANES), 4)
                for h, w in _scratch_shapes(cfg, rows, cols, backward))
  return pipelined + scratch


def _column_multiple(g: planning.OpGeometry, itemsize: int, *,
                     backward: bool) -> int:
  """Column tiles are multiples of this: of the phase period, and such
  that the output tile and every input window's step are multiples of the
  sublane tile (so that column blocks can tile the steps)."""
  sublanes = _sublane_tile(itemsize)
  multiple = planning.tile_multiple(g.up, g.down, backward=backward)
  base = multiple * sublanes // math.gcd(multiple, sublanes)
  # Input samples per output sample along an axis, per input window.
  ratios = ((1, 1), (g.up, g.down)) if backward else ((g.down, g.up),)
  tile = base
  while any(tile * num % den or tile * num // den % sublanes
            for num, den in ratios):
    tile += base
  return tile


def _tiles(g: planning.OpGeometry, channels: int, tile_h: int, tile_w: int,
           itemsize: int, backward: bool) -> Tiles | None:
  """The tiling with these tile edges; None where a window's columns do not
  split into few enough aligned blocks."""
  rows = g.axis_plan(0, tile_h, backward=backward)
  cols = g.axis_plan(1, tile_w, backward=backward, align=_SUBLANES)
  col_blocks = tuple(column_blocks(w, _sublane_tile(itemsize))
                     for w in cols.windows)
  if None in col_blocks:
    return None
  return Tiles(channels, rows, cols, col_blocks)


@functools.lru_cache(maxsize=None)
def plan_tiles(cfg: KernelConfig, dtype, *, backward: bool,
               tiling: Tiling = Tiling()) -> Tiles:
  """The largest tiles (edges <= `tiling.max_tile` if given) whose kernel
  fits `VMEM_BUDGET_BYTES`.

  Raises:
    Unsupported: naming the shape and the budget, when even the smallest
      tiles do not fit.
  """
  g = cfg.geometry
  channels = _channel_block(g.channels)
  itemsize = jnp.dtype(dtype).itemsize
  size_hw = g.in_hw if backward else g.out_hw
  multiple = planning.tile_multiple(g.up, g.down, backward=backward)
  col_multiple = _column_multiple(g, itemsize, backward=backward)
  smallest = None
  for num_tiles in range(1, max(size_hw) + 1):
    tile_h = _tile_size(size_hw[0], num_tiles, multiple)
    tile_w = _tile_size(size_hw[1], num_tiles, col_multiple)
    if tiling.max_tile and max(tile_h, tile_w) > tiling.max_tile and (
        tile_h > multiple or tile_w > col_multiple):
      continue
    tiles = _tiles(g, channels, tile_h, tile_w, itemsize, backward)
    if tiles is not None:
      vmem = _vmem_bytes(cfg, tiles, itemsize, backward)
      if vmem <= VMEM_BUDGET_BYTES:
        return tiles
      smallest = vmem
    if tile_h <= multiple and tile_w <= col_multiple:
      break
  pass_name = "backward" if backward else "forward"
  limit = (f"no tile loads its windows in at most {_MAX_COLUMN_BLOCKS} "
           f"aligned column blocks" if smallest is None else
           f"the smallest tile needs {smallest} bytes of VMEM, over the "
           f"budget of {VMEM_BUDGET_BYTES} bytes")
  raise Unsupported(
      f"filtered_lrelu TPU kernel ({pass_name}): input [N, {g.in_hw[0]}, "
      f"{g.in_hw[1]}, {g.channels}] {jnp.dtype(dtype).name}, up {g.up}, "
      f"down {g.down}, filters {g.fu_shape}/{g.fd_shape}: {limit}")


def _channel_start(tiles: Tiles, c):
  """First channel of channel block c: a multiple of 128 Mosaic can prove,
  or 0 where the block holds every channel (a single block)."""
  return c * _LANES if tiles.channels == _LANES else 0


def _window_specs(tiles: Tiles, index: int) -> list[pl.BlockSpec]:
  """The column blocks of input `index`'s window (0: x, 1: dy) of program
  (n, c, i, j): the window's rows clipped to the array, `size` columns
  from a multiple of `size`, a block of channels (offsets in elements:
  rows are not in blocks)."""
  row_window = tiles.rows.windows[index]
  col_blocks = tiles.col_blocks[index]

  def spec(k):
    def index_map(n, c, i, j):
      return (n, block_start(row_window, i),
              col_blocks.block_index(j, k) * col_blocks.size,
              _channel_start(tiles, c))
    return pl.BlockSpec((pl.Squeezed(), pl.Element(row_window.block),
                         pl.Element(col_blocks.size),
                         pl.Element(tiles.channels)), index_map)
  return [spec(k) for k in range(col_blocks.count)]


def _tile_spec(tiles: Tiles) -> pl.BlockSpec:
  return pl.BlockSpec((None, tiles.rows.tile, tiles.cols.tile,
                       tiles.channels), lambda n, c, i, j: (n, i, j, c))


def _common_specs(tiles: Tiles) -> list[pl.BlockSpec]:
  """Bias `[1, C]` block, then the two tap arrays in SMEM."""
  return [pl.BlockSpec((1, tiles.channels), lambda n, c, i, j: (0, c)),
          pl.BlockSpec(memory_space=pltpu.SMEM),
          pl.BlockSpec(memory_space=pltpu.SMEM)]


def _call(kernel, tiles: Tiles, cfg: KernelConfig, out_shape, in_specs,
          batch: int, cost: pl.CostEstimate, interpret, name: str,
          backward: bool):
  """The pallas_call of `kernel`, one program per (image, channel block,
  row tile, column tile)."""
  grid = (batch, cfg.geometry.channels // tiles.channels,
          tiles.rows.num_tiles, tiles.cols.num_tiles)
  scratch = [pltpu.VMEM((h, w, min(tiles.channels, _LANES)), jnp.float32)
             for h, w in _scratch_shapes(cfg, tiles.rows, tiles.cols,
                                         backward)]
  return pl.pallas_call(
      functools.partial(kernel, cfg=cfg, tiles=tiles),
      out_shape=out_shape, grid=grid, in_specs=in_specs,
      out_specs=_tile_spec(tiles), scratch_shapes=scratch,
      compiler_params=pltpu.CompilerParams(
          dimension_semantics=("parallel",) * 4,
          vmem_limit_bytes=_vmem_bytes(cfg, tiles, out_shape.dtype.itemsize,
                                       backward) + MOSAIC_INTERNAL_BYTES),
      cost_estimate=cost, interpret=interpret, name=name)


def forward(cfg: KernelConfig, x: jax.Array, fu: jax.Array, fd: jax.Array,
            b: jax.Array, *, tiling: Tiling = Tiling(),
            interpret=False) -> jax.Array:
  """y `[N, out_h, out_w, C]` of x `[N, H, W, C]`; taps already prepared
  (`KernelConfig.correlation_taps`), b `[C]`."""
  tiles = plan_tiles(cfg, x.dtype, backward=False, tiling=tiling)
  g = cfg.geometry
  n = x.shape[0]
  in_specs = _window_specs(tiles, 0) + _common_specs(tiles)
  cost = cost_estimate(cfg, n, x.dtype.itemsize, backward=False)
  x_blocks = [x] * tiles.col_blocks[0].count
  return _call(_forward_kernel, tiles, cfg,
               jax.ShapeDtypeStruct((n,) + g.out_hw + (g.channels,), x.dtype),
               in_specs, n, cost, interpret, "filtered_lrelu_fwd_tpu",
               backward=False)(*x_blocks, b.reshape(1, -1), fu, fd)


def backward(cfg: KernelConfig, x: jax.Array, dy: jax.Array, fu: jax.Array,
             fd: jax.Array, b: jax.Array, *, tiling: Tiling = Tiling(),
             interpret=False) -> jax.Array:
  """dx `[N, H, W, C]` of the cotangent dy `[N, out_h, out_w, C]`."""
  tiles = plan_tiles(cfg, x.dtype, backward=True, tiling=tiling)
  n = x.shape[0]
  in_specs = (_window_specs(tiles, 0) + _window_specs(tiles, 1) +
              _common_specs(tiles))
  cost = cost_estimate(cfg, n, x.dtype.itemsize, backward=True)
  blocks = ([x] * tiles.col_blocks[0].count +
            [dy] * tiles.col_blocks[1].count)
  return _call(_backward_kernel, tiles, cfg,
               jax.ShapeDtypeStruct(x.shape, x.dtype), in_specs, n, cost,
               interpret, "filtered_lrelu_bwd_tpu", backward=True)(
                   *blocks, b.reshape(1, -1), fu, fd)
