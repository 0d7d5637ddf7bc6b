"""The fused filtered_lrelu as Triton kernels for NVIDIA GPUs.

Why Triton and not Mosaic GPU (the default Pallas GPU backend): the
polyphase FIR reads its inputs at arbitrary offsets and strides and writes
phases interleaved. Triton expresses that as pointer arithmetic on any
power-of-two block, with masks at the image borders. Mosaic GPU keeps
arrays in warpgroup register layouts, loads whole shared-memory refs and
copies with TMA, whose alignment rules (16-byte rows, 128-thread multiples)
the 12-tap windows of odd-sized StyleGAN3 layers do not meet.

Memory model: Triton has no explicit shared memory, so each program gets a
slot of scratch buffers in global memory (small enough to stay in L2) and
synchronizes its threads with a barrier after each pass. Programs are
persistent: a grid of `num_slots` programs loops over the work items
(image, channel block, row tile, column tile), so the scratch stays
bounded whatever the layer size. Per item:

  forward:  x window (+ bias, zero padding) -> up W -> up H -> activation
            -> down W -> down H -> y tile (masked store)
  backward: x window -> up W -> up H = v; dy window -> down-adjoint W -> H
            -> * act'(v) -> up-adjoint W -> H -> dx tile

Every access has power-of-two extents (Triton's rule): phases and chunks
are rounded up into padded buffers, and the extra samples land in padding
that no valid output reads (`stages.stage_extents` sizes the buffers).
"""

import dataclasses
import functools

import jax
import jax.numpy as jnp
from jax.experimental import pallas as pl
from jax.experimental.pallas import triton as pltriton

from kernels.filtered_lrelu import plan as planning
from kernels.filtered_lrelu import stages
from kernels.filtered_lrelu.common import KernelConfig
from kernels.filtered_lrelu.common import Tiling
from kernels.filtered_lrelu.common import block_start
from kernels.filtered_lrelu.common import Unsupported
from kernels.filtered_lrelu.common import cost_estimate

CHANNEL_BLOCK = 16  # channels per work item (a power of two)
MAX_SLOTS = 512  # persistent programs (about 4 per SM of an H100)
SLOT_BUDGET_BYTES = 1 << 20  # scratch of one program
_REGISTER_ELEMENTS = 4096  # elements of one chunk value (32 per thread)
_MAX_COLS = 256  # widest power-of-two row of a chunk
_NUM_WARPS = 4


def _chunk_rows(cols: int, channels: int) -> int:
  rows = max(1, _REGISTER_ELEMENTS // (cols * channels))
  return min(8, 1 << (rows.bit_length() - 1))


def _memory(interpret) -> stages.Memory:
  """Barriers between passes when compiled (none in the interpreter)."""
  sync = None if interpret else pltriton.debug_barrier
  return stages.Memory(chunk_rows=_chunk_rows, pow2=True, sync=sync)


_PLANNING = _memory(interpret=True)  # sizes only; no barrier is traced


@dataclasses.dataclass(frozen=True)
class Tiles:
  """A tiling of one kernel: channels per item, the row and column plans,
  scratch buffers ((rows, cols) allocated and (rows, cols) holding data,
  in kernel argument order) and the number of persistent programs."""
  channels: int
  rows: planning.AxisPlan
  cols: planning.AxisPlan
  buffers: tuple[tuple[int, int], ...]
  extents: tuple[tuple[int, int], ...]
  num_slots: int


# The scratch buffers of each kernel, in kernel argument order.
_FORWARD_BUFFERS = ("x_win", "up_cols", "mid", "down_cols", "out")
_BACKWARD_BUFFERS = ("x_win", "up_cols", "v", "dy_win", "adjoint_cols",
                     "dmid", "dx_cols", "out")


def _passes(cfg: KernelConfig, rows, cols, backward: bool):
  """(buffer extents by name, [(src, dst, row stage, col stage)],
  elementwise buffers, buffers in kernel order, the placed windows)."""
  fu_sep = len(cfg.geometry.fu_shape) == 1
  fd_sep = len(cfg.geometry.fd_shape) == 1
  up_mid = "v" if backward else "mid"  # the upsampled x
  extents = stages.buffer_extents(cfg, rows, cols, backward)
  extents["out"] = (rows.tile, cols.tile)
  passes = []

  def add_filter(src, dst, scratch, separable, row_stage, col_stage):
    if separable:
      passes.append((src, scratch, None, col_stage))
      passes.append((scratch, dst, row_stage, None))
    else:
      passes.append((src, dst, row_stage, col_stage))

  up_r, up_c = rows.stages[0], cols.stages[0]
  add_filter("x_win", up_mid, "up_cols", fu_sep, up_r, up_c)
  if not backward:
    add_filter("mid", "out", "down_cols", fd_sep, rows.stages[1],
               cols.stages[1])
    return extents, passes, ["mid"], _FORWARD_BUFFERS, ["x_win"]
  add_filter("dy_win", "dmid", "adjoint_cols", fd_sep, rows.stages[1],
             cols.stages[1])
  add_filter("dmid", "out", "dx_cols", fu_sep, rows.stages[2],
             cols.stages[2])
  return (extents, passes, ["dmid", "v"], _BACKWARD_BUFFERS,
          ["x_win", "dy_win"])


def _buffer_shapes(cfg: KernelConfig, rows, cols, channels: int,
                   backward: bool):
  """(allocated, data) (rows, cols) of each scratch buffer in kernel order:
  large enough for every power-of-two access of the passes."""
  extents, passes, pointwise, order, placed = _passes(cfg, rows, cols,
                                                      backward)
  need = {name: [0, 0] for name in order}

  def grow(name, extent):
    need[name] = [max(a, b) for a, b in zip(need[name], extent)]

  used = set()
  for src, dst, row_stage, col_stage in passes:
    read, written = stages.stage_extents(_PLANNING, extents[src], channels,
                                         row_stage, col_stage)
    grow(src, read)
    grow(dst, written)
    used.update((src, dst))
  for name in pointwise + ["out"]:
    r, c = extents[name]
    c = stages.next_pow2(c)
    grow(name, (planning.round_up(r, 8), c))
  windows = (rows.windows, cols.windows)
  for name, row_window, col_window in zip(placed, *windows):
    grow(name, (max(p.dst + planning.round_up(p.length, 8)
                    for p in row_window.placements()),
                max(p.dst + stages.next_pow2(p.length)
                    for p in col_window.placements())))
    grow(name, (0, stages.next_pow2(need[name][1])))  # zero-filled whole
  allocated, data = [], []
  for name in order:
    if name not in used:
      allocated.append((1, 1))
      data.append((1, 1))
      continue
    r, c = need[name]
    allocated.append((planning.round_up(r, 8), c))
    data.append(extents[name])
  return tuple(allocated), tuple(data)


def _padded_work(cfg, rows, cols, channels: int, backward: bool) -> int:
  """Multiply-adds of one work item as the kernel runs it (padded)."""
  extents, passes, _, _, _ = _passes(cfg, rows, cols, backward)
  work = 0
  for src, _, row_stage, col_stage in passes:
    r, c = extents[src]
    for rp in row_stage.phases if row_stage else (None,):
      for cp in col_stage.phases if col_stage else (None,):
        count_r = rp.count if rp else r
        count_c = stages.next_pow2(cp.count if cp else c)
        taps = (len(rp.taps) if rp else 1) * (len(cp.taps) if cp else 1)
        work += count_r * count_c * taps
  return work * channels


@functools.lru_cache(maxsize=None)
def plan_tiles(cfg: KernelConfig, dtype, *, backward: bool,
               tiling: Tiling = Tiling()) -> Tiles:
  """The tile with the least padded work per output whose scratch fits
  `SLOT_BUDGET_BYTES` and whose rows fit `_MAX_COLS` (edges <=
  `tiling.max_tile` if given).

  Raises:
    Unsupported: naming the shape and the budget, when no tile fits.
  """
  del dtype  # computed in float32 whatever the input dtype
  g = cfg.geometry
  channels = min(CHANNEL_BLOCK, stages.next_pow2(g.channels))
  size_hw = g.in_hw if backward else g.out_hw
  multiple = planning.tile_multiple(g.up, g.down, backward=backward)
  best, smallest = None, None
  for tile in range(multiple, 65, multiple):
    tile_h, tile_w = (min(tile, size) for size in size_hw)
    if tiling.max_tile and tile > max(tiling.max_tile, multiple):
      break
    rows = g.axis_plan(0, tile_h, backward=backward)
    cols = g.axis_plan(1, tile_w, backward=backward)
    buffers, extents = _buffer_shapes(cfg, rows, cols, channels, backward)
    slot_bytes = sum(r * c for r, c in buffers) * channels * 4
    smallest = slot_bytes if smallest is None else min(smallest, slot_bytes)
    if slot_bytes > SLOT_BUDGET_BYTES or max(c for _, c in buffers) > (
        _MAX_COLS * 2):
      continue
    cost = _padded_work(cfg, rows, cols, channels, backward) / (
        tile_h * tile_w)
    if best is None or cost < best[0]:
      best = (cost, rows, cols, buffers, extents)
  if best is None:
    pass_name = "backward" if backward else "forward"
    raise Unsupported(
        f"filtered_lrelu GPU kernel ({pass_name}): input [N, {g.in_hw[0]}, "
        f"{g.in_hw[1]}, {g.channels}], up {g.up}, down {g.down}, filters "
        f"{g.fu_shape}/{g.fd_shape}: the smallest tile needs {smallest} "
        f"bytes of scratch per program, over the budget of "
        f"{SLOT_BUDGET_BYTES} bytes")
  _, rows, cols, buffers, extents = best
  return Tiles(channels, rows, cols, buffers, extents,
               tiling.max_programs or MAX_SLOTS)


# ---------------------------------------------------------------------------
# Kernels.


@dataclasses.dataclass(frozen=True)
class _Item:
  """One work item: image n, channel block c, row tile i, column tile j."""
  n: jax.Array
  c: jax.Array
  i: jax.Array
  j: jax.Array


def _num_items(batch: int, num_channels: int, tiles: Tiles) -> int:
  return (batch * planning.cdiv(num_channels, tiles.channels) *
          tiles.rows.num_tiles * tiles.cols.num_tiles)


def _decode(index, num_channels: int, tiles: Tiles) -> _Item:
  j = index % tiles.cols.num_tiles
  rest = index // tiles.cols.num_tiles
  i = rest % tiles.rows.num_tiles
  rest = rest // tiles.rows.num_tiles
  blocks = planning.cdiv(num_channels, tiles.channels)
  return _Item(rest // blocks, rest % blocks, i, j)


def _iota(size: int, axis: int) -> jax.Array:
  shape = [1, 1, 1]
  shape[axis] = size
  return jax.lax.broadcasted_iota(jnp.int32, tuple(shape), axis)


def _channel_mask(item: _Item, tiles: Tiles, num_channels: int) -> jax.Array:
  return item.c * tiles.channels + _iota(tiles.channels, 2) < num_channels


def _place_window(mem: stages.Memory, src_ref, window: stages.View, *,
                  row_window: planning.AxisWindow,
                  col_window: planning.AxisWindow, item: _Item,
                  tiles: Tiles, bias_ref=None) -> None:
  """Zero-padded float32 `window` <- the window of `src_ref` (+ bias)."""
  num_channels = src_ref.shape[3]
  rows, cols, _ = window.ref.shape[1:]
  chunk = mem.chunk_rows(cols, tiles.channels)

  def zero(start, size):
    window[pl.ds(start, size), pl.ds(0, cols), :] = jnp.zeros(
        (size, cols, tiles.channels), jnp.float32)

  mem.in_chunks(rows, chunk, zero)
  mem.end_pass()
  channels = pl.ds(item.c * tiles.channels, tiles.channels)
  in_channels = _channel_mask(item, tiles, num_channels)
  bias = 0.0
  if bias_ref is not None:
    bias = pltriton.load(bias_ref.at[channels], mask=in_channels[0, 0],
                         other=0.0).astype(jnp.float32)
  row_start = block_start(row_window, item.i)
  col_start = block_start(col_window, item.j)
  for rp in row_window.placements():
    for cp in col_window.placements():
      width = stages.next_pow2(cp.length)
      chunk = mem.chunk_rows(width, tiles.channels)

      @pl.when((item.i >= rp.first) & (item.i <= rp.last) &
               (item.j >= cp.first) & (item.j <= cp.last))
      def _(rp=rp, cp=cp, width=width, chunk=chunk):
        def copy(start, size):
          mask = ((start + _iota(size, 0) < rp.length) &
                  (_iota(width, 1) < cp.length) & in_channels)
          values = pltriton.load(
              src_ref.at[item.n, pl.ds(row_start + rp.src + start, size),
                         pl.ds(col_start + cp.src, width), channels],
              mask=mask, other=0.0)
          values = jnp.where(mask, values.astype(jnp.float32) + bias, 0.0)
          pltriton.store(window.ref.at[window.prefix + (
              pl.ds(rp.dst + start, size), pl.ds(cp.dst, width),
              pl.ds(0, tiles.channels))], values, mask=mask)
        mem.in_chunks(rp.length, chunk, copy)


def _store_tile(mem: stages.Memory, out: stages.View, dst_ref, item: _Item,
                tiles: Tiles) -> None:
  """dst_ref tile (i, j) <- out (masked to the tile and the array)."""
  out_h, out_w, num_channels = dst_ref.shape[1:]
  tile_h, tile_w = tiles.rows.tile, tiles.cols.tile
  width = stages.next_pow2(tile_w)
  in_channels = _channel_mask(item, tiles, num_channels)
  row0, col0 = item.i * tile_h, item.j * tile_w

  def copy(start, size):
    rows = start + _iota(size, 0)
    cols = _iota(width, 1)
    mask = ((rows < tile_h) & (row0 + rows < out_h) & (cols < tile_w) &
            (col0 + cols < out_w) & in_channels)
    values = out[pl.ds(start, size), pl.ds(0, width), :]
    pltriton.store(dst_ref.at[item.n, pl.ds(row0 + start, size),
                              pl.ds(col0, width),
                              pl.ds(item.c * tiles.channels, tiles.channels)],
                   values.astype(dst_ref.dtype), mask=mask)

  mem.in_chunks(tile_h, mem.chunk_rows(width, tiles.channels), copy)
  mem.end_pass()


def _persistent(num_items: int, tiles: Tiles, num_channels: int, work):
  """Runs work(item) for items slot, slot + num_slots, ... < num_items."""
  slot = pl.program_id(0)

  def step(k, carry):
    index = slot + k * tiles.num_slots

    @pl.when(index < num_items)
    def _():
      work(_decode(index, num_channels, tiles))
    return carry

  jax.lax.fori_loop(0, planning.cdiv(num_items, tiles.num_slots), step, 0)


def _views(scratch, tiles: Tiles, names) -> dict[str, stages.View]:
  """The program's slot of each scratch buffer, by name."""
  slot = pl.program_id(0)
  return {name: stages.View(ref, (slot,), extent)
          for name, ref, extent in zip(names, scratch, tiles.extents)}


def _forward_kernel(x_ref, b_ref, fu_ref, fd_ref, y_ref, *scratch,
                    cfg: KernelConfig, tiles: Tiles, batch: int, interpret):
  mem = _memory(interpret)
  bufs = _views(scratch, tiles, _FORWARD_BUFFERS)
  rows, cols = tiles.rows, tiles.cols

  def work(item):
    place_x = functools.partial(_place_window, mem, x_ref,
                                row_window=rows.windows[0],
                                col_window=cols.windows[0], item=item,
                                tiles=tiles, bias_ref=b_ref)
    stages.forward_passes(mem, cfg, rows, cols, bufs, fu_ref, fd_ref,
                          bufs["out"], place_x)
    _store_tile(mem, bufs["out"], y_ref, item, tiles)

  _persistent(_num_items(batch, x_ref.shape[3], tiles), tiles,
              x_ref.shape[3], work)


def _backward_kernel(x_ref, dy_ref, b_ref, fu_ref, fd_ref, dx_ref, *scratch,
                     cfg: KernelConfig, tiles: Tiles, batch: int, interpret):
  mem = _memory(interpret)
  bufs = _views(scratch, tiles, _BACKWARD_BUFFERS)
  rows, cols = tiles.rows, tiles.cols

  def work(item):
    place = functools.partial(_place_window, mem, item=item, tiles=tiles)
    place_x = functools.partial(place, x_ref, row_window=rows.windows[0],
                                col_window=cols.windows[0], bias_ref=b_ref)
    place_dy = functools.partial(place, dy_ref, row_window=rows.windows[1],
                                 col_window=cols.windows[1])
    stages.backward_passes(mem, cfg, rows, cols, bufs, fu_ref, fd_ref,
                           bufs["out"], place_x, place_dy)
    _store_tile(mem, bufs["out"], dx_ref, item, tiles)

  _persistent(_num_items(batch, x_ref.shape[3], tiles), tiles,
              x_ref.shape[3], work)


def _call(kernel, cfg: KernelConfig, tiles: Tiles, out_shape, batch: int,
          cost, interpret, name: str):
  num_items = _num_items(batch, cfg.geometry.channels, tiles)
  tiles = dataclasses.replace(tiles,
                              num_slots=min(tiles.num_slots, num_items))
  scratch = [jax.ShapeDtypeStruct((tiles.num_slots, r, c, tiles.channels),
                                  jnp.float32) for r, c in tiles.buffers]
  return pl.pallas_call(
      functools.partial(kernel, cfg=cfg, tiles=tiles, batch=batch,
                        interpret=interpret),
      out_shape=[out_shape] + scratch, grid=(tiles.num_slots,),
      compiler_params=pltriton.CompilerParams(num_warps=_NUM_WARPS,
                                              num_stages=1),
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
  cost = cost_estimate(cfg, n, x.dtype.itemsize, backward=False)
  return _call(_forward_kernel, cfg, tiles, out, n, cost, interpret,
               "filtered_lrelu_fwd_gpu")(x, b, fu, fd)[0]


def backward(cfg: KernelConfig, x: jax.Array, dy: jax.Array, fu: jax.Array,
             fd: jax.Array, b: jax.Array, *, tiling: Tiling = Tiling(),
             interpret=False) -> jax.Array:
  """dx `[N, H, W, C]` of the cotangent dy `[N, out_h, out_w, C]`."""
  tiles = plan_tiles(cfg, x.dtype, backward=True, tiling=tiling)
  n = x.shape[0]
  cost = cost_estimate(cfg, n, x.dtype.itemsize, backward=True)
  return _call(_backward_kernel, cfg, tiles,
               jax.ShapeDtypeStruct(x.shape, x.dtype), n, cost, interpret,
               "filtered_lrelu_bwd_gpu")(x, dy, b, fu, fd)[0]
