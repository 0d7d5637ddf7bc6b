"""Fused filtered leaky ReLU as one Pallas kernel, forward and backward.

Each program of the grid owns one image and one block of channels and does,
in on-chip memory, the whole chain for that tile (as the official CUDA
kernel does per output tile):

  forward:  x -> up-FIR (polyphase) -> lrelu * gain, clamp -> FIR-down
            (strided); writes y and an int8 branch code per upsampled sample
  backward: dy -> adjoint of FIR-down (polyphase up) -> * d act / dv (from
            the code) -> adjoint of up-FIR (strided down); writes dx

Both passes are the same kernel: an upfirdn stage, a pointwise op, another
upfirdn stage. A stage never multiplies inserted zeros and never computes
samples that are dropped: output m of an axis with factors (up, down) and
leading pad p0 uses tap t only when (m * down + t - p0) % up == 0, so the
outputs split into up / gcd(up, down) phases, each a short FIR read at
stride down / gcd(up, down), interleaved afterwards.

Lowering notes (only interpret mode runs on CPU; no accelerator was
available to compile it): the block's last dimension is channels (TPU
lanes, NHWC); taps are kernel inputs read as scalars (a kernel may not
close over arrays); all slicing is static. The tile is a whole image plane
per channel block, which fits TPU VMEM for StyleGAN3 layer sizes with the
default channel block; GPU (Triton) lowering additionally needs
power-of-two blocks and row tiling of large planes, which this version
does not do.

The reference is `sg3jax.ops.filtered_lrelu(impl="xla")`.
"""

import dataclasses
import functools
import itertools
import math

import jax
import jax.numpy as jnp
import numpy as np
from jax.experimental import pallas as pl

Padding = tuple[int, int, int, int]  # (x0, x1, y0, y1)

_CLAMPED, _NEGATIVE, _POSITIVE = 0, 1, 2


@dataclasses.dataclass(frozen=True)
class BlockSizes:
  """Channels per program (the lane dimension on TPU)."""
  channels: int

  def __post_init__(self):
    if self.channels < 1:
      raise ValueError(f"block_sizes.channels: expected >= 1, got "
                       f"{self.channels}")

  @classmethod
  def get_default(cls, num_channels: int) -> "BlockSizes":
    """128 lanes (or all channels when fewer)."""
    return cls(channels=min(num_channels, 128))


@dataclasses.dataclass(frozen=True)
class _Stage:
  """One static upfirdn along H and W: sizes, factors, padding, taps."""
  in_hw: tuple[int, int]
  out_hw: tuple[int, int]
  filter_shape: tuple[int, ...]  # (K,) separable or (Kh, Kw)
  up: int
  down: int
  padding: Padding
  flip_filter: bool
  gain: float

  @property
  def filter_hw(self) -> tuple[int, int]:
    shape = self.filter_shape
    return (shape[0], shape[0]) if len(shape) == 1 else shape

  def adjoint(self) -> "_Stage":
    """The transposed stage (maps out_hw back to in_hw)."""
    kh, kw = self.filter_hw
    (ih, iw), (oh, ow) = self.in_hw, self.out_hw
    px0, _, py0, _ = self.padding
    padding = (kw - px0 - 1, iw * self.up - ow * self.down + px0 - self.up + 1,
               kh - py0 - 1, ih * self.up - oh * self.down + py0 - self.up + 1)
    return _Stage(self.out_hw, self.in_hw, self.filter_shape, self.down,
                  self.up, padding, not self.flip_filter, self.gain)


def _make_stage(in_hw, filter_shape, up, down, padding, flip_filter,
                gain) -> _Stage:
  shape = tuple(filter_shape)
  kh, kw = (shape[0], shape[0]) if len(shape) == 1 else shape
  px0, px1, py0, py1 = padding
  out_h = -(-(in_hw[0] * up + py0 + py1 - kh + 1) // down)
  out_w = -(-(in_hw[1] * up + px0 + px1 - kw + 1) // down)
  if out_h < 1 or out_w < 1:
    raise ValueError(f"filtered_lrelu: the padded image is smaller than the "
                     f"filter {shape} (input {in_hw}, padding {padding})")
  return _Stage(tuple(in_hw), (out_h, out_w), shape, up, down, tuple(padding),
                flip_filter, gain)


# ---------------------------------------------------------------------------
# Polyphase FIR on values inside the kernel.


@dataclasses.dataclass(frozen=True)
class _Phase:
  count: int  # outputs in this phase
  taps: tuple[tuple[int, int], ...]  # (tap, input offset)


def _axis_phases(num_in, num_taps, up, down, pad0, pad1):
  """(period, stride, num_out, phases) of one axis of one stage."""
  common = math.gcd(up, down)
  period, stride = up // common, down // common
  num_out = -(-(num_in * up + pad0 + pad1 - num_taps + 1) // down)
  phases = []
  for j in range(period):
    taps = tuple((t, (j * down + t - pad0) // up) for t in range(num_taps)
                 if (j * down + t - pad0) % up == 0)
    phases.append(_Phase(len(range(j, num_out, period)), taps))
  return period, stride, num_out, phases


def _fir(v, tap, taps_shape, axes):
  """Correlates v `[H, W, C]` with taps along `axes` (polyphase).

  `tap(index)` returns the (flipped, scaled) tap at a static index tuple;
  `axes` lists (axis, up, down, pad0, pad1), one per filter dimension.
  """
  plans = [_axis_phases(v.shape[a], taps_shape[i], up, down, p0, p1)
           for i, (a, up, down, p0, p1) in enumerate(axes)]
  widths = [(0, 0)] * v.ndim
  for (a, *_), (_, stride, _, phases) in zip(axes, plans):
    offsets = [o for p in phases for _, o in p.taps] or [0]
    longest = max(p.count for p in phases)
    widths[a] = (max(0, -min(offsets)),
                 max(0, (longest - 1) * stride + max(offsets) + 1 - v.shape[a]))
  padded = jnp.pad(v, widths)

  def phase_output(combo):
    acc = None
    for tap_combo in itertools.product(*(p.taps for p in combo)):
      start, limit, strides = [0] * v.ndim, list(padded.shape), [1] * v.ndim
      for (a, *_), (_, stride, _, _), phase, (_, offset) in zip(
          axes, plans, combo, tap_combo):
        start[a] = widths[a][0] + offset
        limit[a] = start[a] + (phase.count - 1) * stride + 1
        strides[a] = stride
      term = jax.lax.slice(padded, start, limit, strides) * tap(
          tuple(t for t, _ in tap_combo))
      acc = term if acc is None else acc + term
    if acc is None:
      shape = list(v.shape)
      for (a, *_), phase in zip(axes, combo):
        shape[a] = phase.count
      acc = jnp.zeros(shape, v.dtype)
    return acc

  def assemble(level, chosen):
    if level == len(axes):
      return phase_output(chosen)
    period, _, num_out, phases = plans[level]
    parts = [assemble(level + 1, chosen + (p,)) for p in phases]
    return _interleave(parts, axes[level][0], period, num_out)

  return assemble(0, ())


def _interleave(parts, axis, period, num_out):
  """out[period * k + j] = parts[j][k] along `axis`."""
  if period == 1:
    return parts[0]
  longest = max(p.shape[axis] for p in parts)
  padded = []
  for p in parts:
    widths = [(0, 0)] * p.ndim
    widths[axis] = (0, longest - p.shape[axis])
    padded.append(jnp.pad(p, widths))
  merged = jnp.stack(padded, axis=axis + 1)
  shape = list(parts[0].shape)
  shape[axis] = longest * period
  return jax.lax.slice_in_dim(merged.reshape(shape), 0, num_out, axis=axis)


def _apply_stage(v, f_ref, stage: _Stage):
  """One upfirdn stage on v `[H, W, C]`, taps read from `f_ref`."""
  px0, px1, py0, py1 = stage.padding
  y_axis = (0, stage.up, stage.down, py0, py1)
  x_axis = (1, stage.up, stage.down, px0, px1)
  if len(stage.filter_shape) == 1:
    k = stage.filter_shape[0]
    scale = stage.gain ** 0.5
    tap = lambda idx: f_ref[idx[0] if stage.flip_filter else k - 1 - idx[0]
                            ] * scale
    v = _fir(v, tap, (k,), [x_axis])
    return _fir(v, tap, (k,), [y_axis])
  kh, kw = stage.filter_shape
  def tap(idx):
    i, j = idx
    if not stage.flip_filter:
      i, j = kh - 1 - i, kw - 1 - j
    return f_ref[i, j] * stage.gain
  return _fir(v, tap, (kh, kw), [y_axis, x_axis])


# ---------------------------------------------------------------------------
# Kernels and pallas_call wrappers.


def _forward_kernel(x_ref, fu_ref, fd_ref, y_ref, code_ref, *, up_stage,
                    down_stage, gain, slope, clamp):
  """x `[1, H, W, bc]` (bias added) -> y `[1, Ho, Wo, bc]`, code."""
  v = _apply_stage(x_ref[0].astype(jnp.float32), fu_ref, up_stage)
  a = jnp.where(v > 0, v, v * slope) * gain
  code = jnp.where(v > 0, _POSITIVE, _NEGATIVE)
  if clamp is not None:
    code = jnp.where(jnp.abs(a) > clamp, _CLAMPED, code)
    a = jnp.clip(a, -clamp, clamp)
  code_ref[0] = code.astype(code_ref.dtype)
  y_ref[0] = _apply_stage(a, fd_ref, down_stage).astype(y_ref.dtype)


def _backward_kernel(dy_ref, code_ref, fd_ref, fu_ref, dx_ref, *,
                     down_adjoint, up_adjoint, gain, slope):
  """dy `[1, Ho, Wo, bc]`, code -> dx `[1, H, W, bc]`."""
  da = _apply_stage(dy_ref[0].astype(jnp.float32), fd_ref, down_adjoint)
  code = code_ref[0]
  dv = da * jnp.where(code == _POSITIVE, gain,
                      jnp.where(code == _NEGATIVE, gain * slope, 0.0))
  dx_ref[0] = _apply_stage(dv, fu_ref, up_adjoint).astype(dx_ref.dtype)


def _image_spec(hw, channels):
  return pl.BlockSpec((1, hw[0], hw[1], channels),
                      lambda n, c: (n, 0, 0, c))


def _filter_spec(f):
  return pl.BlockSpec(f.shape, lambda n, c: (0,) * f.ndim)


@dataclasses.dataclass(frozen=True)
class _Config:
  """Static configuration of one filtered_lrelu_pallas call."""
  up_stage: _Stage
  down_stage: _Stage
  gain: float
  slope: float
  clamp: float | None
  block_channels: int
  interpret: bool


def _grid(x_shape, block_channels):
  return (x_shape[0], x_shape[3] // block_channels)


def _pad_channels(x, block_channels):
  extra = -x.shape[-1] % block_channels
  return jnp.pad(x, ((0, 0),) * 3 + ((0, extra),)) if extra else x


def _forward(cfg: _Config, x, fu, fd, b):
  channels = x.shape[-1]
  xb = _pad_channels(x + b.astype(x.dtype), cfg.block_channels)
  bc = cfg.block_channels
  mid_hw, out_hw = cfg.up_stage.out_hw, cfg.down_stage.out_hw
  y, code = pl.pallas_call(
      functools.partial(_forward_kernel, up_stage=cfg.up_stage,
                        down_stage=cfg.down_stage, gain=cfg.gain,
                        slope=cfg.slope, clamp=cfg.clamp),
      out_shape=(jax.ShapeDtypeStruct((xb.shape[0],) + out_hw +
                                      (xb.shape[3],), x.dtype),
                 jax.ShapeDtypeStruct((xb.shape[0],) + mid_hw +
                                      (xb.shape[3],), jnp.int8)),
      grid=_grid(xb.shape, bc),
      in_specs=[_image_spec(cfg.up_stage.in_hw, bc), _filter_spec(fu),
                _filter_spec(fd)],
      out_specs=(_image_spec(out_hw, bc), _image_spec(mid_hw, bc)),
      interpret=cfg.interpret, name="filtered_lrelu_fwd",
  )(xb, fu.astype(jnp.float32), fd.astype(jnp.float32))
  return y[..., :channels], code


def _backward(cfg: _Config, dy, code, fu, fd, channels):
  bc = cfg.block_channels
  dy = _pad_channels(dy, bc)
  down_adjoint = cfg.down_stage.adjoint()
  up_adjoint = cfg.up_stage.adjoint()
  dx = pl.pallas_call(
      functools.partial(_backward_kernel, down_adjoint=down_adjoint,
                        up_adjoint=up_adjoint, gain=cfg.gain,
                        slope=cfg.slope),
      out_shape=jax.ShapeDtypeStruct(
          (dy.shape[0],) + cfg.up_stage.in_hw + (dy.shape[3],), dy.dtype),
      grid=_grid(dy.shape, bc),
      in_specs=[_image_spec(cfg.down_stage.out_hw, bc),
                _image_spec(cfg.up_stage.out_hw, bc), _filter_spec(fd),
                _filter_spec(fu)],
      out_specs=_image_spec(cfg.up_stage.in_hw, bc),
      interpret=cfg.interpret, name="filtered_lrelu_bwd",
  )(dy, code, fd.astype(jnp.float32), fu.astype(jnp.float32))
  return dx[..., :channels]


@functools.partial(jax.custom_vjp, nondiff_argnums=(0,))
def _filtered_lrelu(cfg: _Config, x, fu, fd, b):
  return _forward(cfg, x, fu, fd, b)[0]


def _filtered_lrelu_fwd(cfg, x, fu, fd, b):
  if fu.perturbed or fd.perturbed:
    raise ValueError("filtered_lrelu impl='pallas' cannot differentiate "
                     "w.r.t. fu/fd; use impl='xla'")
  y, code = _forward(cfg, x.value, fu.value, fd.value, b.value)
  return y, (code, fu.value, fd.value, b.value)


def _filtered_lrelu_bwd(cfg, residuals, dy):
  code, fu, fd, b = residuals
  if isinstance(dy, jax.custom_derivatives.SymbolicZero):
    dy = jnp.zeros(dy.shape, dy.dtype)
  dx = _backward(cfg, dy, code, fu, fd, dy.shape[-1])
  return dx, None, None, jnp.sum(dx, axis=(0, 1, 2)).astype(b.dtype)


_filtered_lrelu.defvjp(_filtered_lrelu_fwd, _filtered_lrelu_bwd,
                       symbolic_zeros=True)


def filtered_lrelu_pallas(
    x: jax.Array,
    fu: jax.Array,
    fd: jax.Array,
    b: jax.Array,
    *,
    up: int,
    down: int,
    padding: Padding,
    gain: float,
    slope: float,
    clamp: float | None,
    flip_filter: bool,
    block_sizes: BlockSizes | None = None,
    interpret: bool = False,
) -> jax.Array:
  """Fused filtered leaky ReLU (official semantics; see module docstring).

  Args:
    x: `[N, H, W, C]` floating point (computed in float32 inside).
    fu, fd: up/down taps `[K]` (separable) or `[Kh, Kw]`; `ones([1])` for
      identity.
    b: bias `[C]`.
    up, down: integer factors >= 1.
    padding: (x0, x1, y0, y1) w.r.t. the upsampled image.
    gain, slope, clamp, flip_filter: as `sg3jax.ops.filtered_lrelu`.
    block_sizes: channels per program; default `BlockSizes.get_default`.
    interpret: run the Pallas interpreter (required on CPU).

  Returns:
    `[N, out_h, out_w, C]` in the dtype of x; differentiable w.r.t. x and b
    (custom VJP whose residual is an int8 branch code).
  """
  x, fu, fd, b = (jnp.asarray(a) for a in (x, fu, fd, b))
  if x.ndim != 4:
    raise ValueError(f"x: expected rank 4 [N, H, W, C], got shape {x.shape}")
  if not jnp.issubdtype(x.dtype, jnp.floating):
    raise ValueError(f"x: expected a floating dtype, got {x.dtype}")
  for name, f in (("fu", fu), ("fd", fd)):
    if f.ndim not in (1, 2):
      raise ValueError(f"{name}: expected taps of shape [K] or [Kh, Kw], got "
                       f"shape {f.shape}")
  if b.shape != (x.shape[-1],):
    raise ValueError(f"b: expected shape [{x.shape[-1]}], got {b.shape}")
  for name, factor in (("up", up), ("down", down)):
    if not isinstance(factor, (int, np.integer)) or factor < 1:
      raise ValueError(f"{name}: expected an int >= 1, got {factor!r}")
  if len(padding) != 4:
    raise ValueError(f"padding: expected (x0, x1, y0, y1), got {padding!r}")
  up_stage = _make_stage(x.shape[1:3], fu.shape, up, 1, tuple(padding),
                         flip_filter, float(up * up))
  down_stage = _make_stage(up_stage.out_hw, fd.shape, 1, down, (0, 0, 0, 0),
                           flip_filter, 1.0)
  blocks = block_sizes or BlockSizes.get_default(x.shape[-1])
  cfg = _Config(up_stage, down_stage, float(gain), float(slope),
                None if clamp is None else float(clamp), blocks.channels,
                interpret)
  return _filtered_lrelu(cfg, x, fu, fd, b)
