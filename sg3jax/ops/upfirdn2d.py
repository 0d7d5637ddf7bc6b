"""Upsample, FIR-filter and downsample a batch of NHWC images (polyphase).

The official op inserts zeros, pads, convolves and throws samples away. Here
each output sample is computed directly from the input samples that reach it:
output position m of an axis with factors (up, down) and leading pad p0 sees
tap t only when (m * down + t - p0) is a multiple of up. Grouping outputs by
m mod P, with P = up / gcd(up, down), every group ("phase") is a short FIR
over the input read at stride down / gcd(up, down). So no multiply touches an
inserted zero and no dropped sample is ever computed; the phases are then
interleaved.
"""

import dataclasses
import functools
import itertools
import math
from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np

from sg3jax.ops import _validate

Padding = tuple[int, int, int, int]


def setup_filter(
    f: jax.typing.ArrayLike | None,
    *,
    normalize: bool = True,
    flip_filter: bool = False,
    gain: float = 1.0,
    separable: bool | None = None,
) -> np.ndarray:
  """Prepares FIR taps for `upfirdn2d` as the official `setup_filter`.

  Args:
    f: taps `[K]`, `[Kh, Kw]`, a scalar (impulse) or None (identity).
    normalize: divide by the sum so a constant signal keeps its magnitude.
    flip_filter: reverse the taps along every axis.
    gain: overall signal gain, spread as gain ** (ndim / 2) over the taps.
    separable: return 1-D taps; by default when `f` is 1-D with >= 8 taps,
      otherwise a 1-D `f` becomes its outer product.

  Returns:
    float32 taps `[K]` (separable) or `[Kh, Kw]`.
  """
  f = np.asarray(1.0 if f is None else f, dtype=np.float32)
  if f.ndim > 2 or f.size == 0:
    raise ValueError(f"f: expected a scalar, [K] or [Kh, Kw] taps, got shape "
                     f"{f.shape}")
  f = f.reshape(-1) if f.ndim == 0 else f
  if separable is None:
    separable = f.ndim == 1 and f.size >= 8
  if f.ndim == 1 and not separable:
    f = np.outer(f, f)
  if separable and f.ndim != 1:
    raise ValueError(f"f: a separable filter must be 1-D, got shape {f.shape}")
  if normalize:
    f = f / f.sum()
  if flip_filter:
    f = np.flip(f)
  return (f * gain ** (f.ndim / 2)).astype(np.float32)


def parse_padding(padding: int | Sequence[int]) -> Padding:
  """Official padding forms: p, [px, py] or [px0, px1, py0, py1] (x = W)."""
  if isinstance(padding, (int, np.integer)):
    return (int(padding),) * 4
  padding = tuple(padding)
  if not all(isinstance(p, (int, np.integer)) for p in padding):
    raise ValueError(f"padding: expected ints, got {padding!r}")
  if len(padding) == 2:
    return (int(padding[0]),) * 2 + (int(padding[1]),) * 2
  if len(padding) == 4:
    return tuple(int(p) for p in padding)
  raise ValueError("padding: expected an int, [x, y] or [x0, x1, y0, y1], got "
                   f"{len(padding)} values {padding!r}")


def parse_scaling(name: str, factor: int | Sequence[int]) -> tuple[int, int]:
  """An up/down factor as (x, y); each an int >= 1."""
  pair = (factor, factor) if isinstance(factor, (int, np.integer)) else tuple(
      factor)
  if len(pair) != 2 or not all(
      isinstance(v, (int, np.integer)) and v >= 1 for v in pair):
    raise ValueError(f"{name}: expected an int >= 1 or [x, y] of them, got "
                     f"{factor!r}")
  return int(pair[0]), int(pair[1])


def upfirdn2d(
    x: jax.typing.ArrayLike,
    f: jax.typing.ArrayLike | None,
    up: int | Sequence[int] = 1,
    down: int | Sequence[int] = 1,
    padding: int | Sequence[int] = 0,
    flip_filter: bool = False,
    gain: float = 1.0,
    spatial_axes: tuple[int, int] = (1, 2),
) -> jax.Array:
  """Pads, upsamples, filters and downsamples images (official semantics).

  For each channel:
    1. upsample by inserting `up - 1` zeros after each pixel;
    2. pad with zeros (`padding`; negative values crop);
    3. convolve with `f`, keeping outputs whose footprint is inside the image;
    4. keep every `down`-th pixel.
  Computed polyphase and strided (see the module docstring), with a custom
  VJP that is itself an `upfirdn2d` (so gradients of any order work) and
  that differentiates w.r.t. `f` only when `f` is being differentiated.

  Args:
    x: images `[N, H, W, C]`, floating point.
    f: taps `[K]` (separable), `[Kh, Kw]`, or None (identity).
    up: upsampling factor, int or [x, y].
    down: downsampling factor, int or [x, y].
    padding: int, [x, y] or [x0, x1, y0, y1], w.r.t. the upsampled image.
    flip_filter: False = convolution, True = correlation.
    gain: overall scaling of the signal magnitude.
    spatial_axes: the (H, W) axes of x; (2, 3) filters planes-first images
      (`[N, C, H, W]` or `[C, N, H, W]`), whose minor axis is W. TPUs tile
      the two minor axes of an array by (8, 128), so an NHWC array with 3
      channels takes about 42x its size there.

  Returns:
    `[N, out_h, out_w, C]`, with out_w = ceil((W * up_x + px0 + px1 - Kw + 1)
    / down_x) and likewise out_h (the other axes of x as they are).
  """
  x = _validate.image(x)
  f = _validate.taps("f", f, x.dtype)
  spatial_axes = tuple(spatial_axes)
  if spatial_axes not in ((1, 2), (2, 3)):
    raise ValueError(f"spatial_axes: expected (1, 2) or (2, 3), got "
                     f"{spatial_axes}")
  plan = make_plan(x.shape, f.shape, parse_scaling("up", up),
               parse_scaling("down", down), parse_padding(padding),
               bool(flip_filter), float(gain), spatial_axes)
  return apply_plan(plan, x, f)


@dataclasses.dataclass(frozen=True)
class UpfirdnPlan:
  """Static description of one upfirdn2d call (hashable, for custom_vjp)."""
  in_hw: tuple[int, int]
  out_hw: tuple[int, int]
  filter_shape: tuple[int, ...]
  up: tuple[int, int]  # (x, y)
  down: tuple[int, int]  # (x, y)
  padding: Padding  # (x0, x1, y0, y1)
  flip_filter: bool
  gain: float
  spatial_axes: tuple[int, int] = (1, 2)  # (H, W) axes of x

  def adjoint(self) -> "UpfirdnPlan":
    """The plan of the transposed op, mapping `[.., out_hw, ..]` back."""
    kh, kw = _filter_hw(self.filter_shape)
    (ih, iw), (oh, ow) = self.in_hw, self.out_hw
    (ux, uy), (dx, dy) = self.up, self.down
    px0, _, py0, _ = self.padding
    padding = (kw - px0 - 1, iw * ux - ow * dx + px0 - ux + 1,
               kh - py0 - 1, ih * uy - oh * dy + py0 - uy + 1)
    return UpfirdnPlan(self.out_hw, self.in_hw, self.filter_shape, self.down,
                 self.up, padding, not self.flip_filter, self.gain,
                 self.spatial_axes)


def _filter_hw(filter_shape: tuple[int, ...]) -> tuple[int, int]:
  return (filter_shape[0],) * 2 if len(filter_shape) == 1 else filter_shape


def make_plan(x_shape, filter_shape, up, down, padding, flip_filter,
              gain, spatial_axes=(1, 2)) -> UpfirdnPlan:
  """Checks sizes and computes the output size of one upfirdn2d call."""
  kh, kw = _filter_hw(filter_shape)
  h, w = (x_shape[axis] for axis in spatial_axes)
  px0, px1, py0, py1 = padding
  full_w = w * up[0] + px0 + px1
  full_h = h * up[1] + py0 + py1
  if full_w < kw or full_h < kh:
    raise ValueError(
        f"upfirdn2d: the upsampled, padded image ({full_h}x{full_w}) is "
        f"smaller than the filter ({kh}x{kw})")
  out_hw = (-(-(full_h - kh + 1) // down[1]), -(-(full_w - kw + 1) // down[0]))
  return UpfirdnPlan((h, w), out_hw, tuple(filter_shape), up, down, padding,
               flip_filter, gain, tuple(spatial_axes))


@functools.partial(jax.custom_vjp, nondiff_argnums=(0,))
def apply_plan(plan: UpfirdnPlan, x: jax.Array, f: jax.Array) -> jax.Array:
  """upfirdn2d of validated arguments, with the custom VJP."""
  return apply_plan_autodiff(plan, x, f)


def _apply_plan_fwd(plan, x, f):
  return apply_plan(plan, x.value, f.value), (x.value, f.value, f.perturbed)


def _apply_plan_bwd(plan, residuals, dy):
  x, f, f_perturbed = residuals
  dy = _validate.instantiate_zeros(dy)
  dx = apply_plan(plan.adjoint(), dy, f)
  df = None
  if f_perturbed:
    _, pullback = jax.vjp(lambda taps: apply_plan_autodiff(plan, x, taps), f)
    (df,) = pullback(dy)
  return dx, df


apply_plan.defvjp(_apply_plan_fwd, _apply_plan_bwd, symbolic_zeros=True)


def apply_plan_autodiff(plan: UpfirdnPlan, x: jax.Array,
                        f: jax.Array) -> jax.Array:
  """upfirdn2d differentiated by plain autodiff (used for the filter's VJP).

  Separable filters run along W then H (as official); 2-D filters jointly.
  """
  taps = f if plan.flip_filter else jnp.flip(f)
  (ux, uy), (dx, dy) = plan.up, plan.down
  px0, px1, py0, py1 = plan.padding
  h_axis, w_axis = plan.spatial_axes
  if f.ndim == 1:
    scale = plan.gain ** 0.5
    y = _polyphase_fir(x, taps * scale, [_AxisPlan(w_axis, ux, dx, px0, px1)])
    return _polyphase_fir(y, taps * scale,
                          [_AxisPlan(h_axis, uy, dy, py0, py1)])
  return _polyphase_fir(x, taps * plan.gain, [
      _AxisPlan(h_axis, uy, dy, py0, py1), _AxisPlan(w_axis, ux, dx, px0, px1)])


@dataclasses.dataclass(frozen=True)
class _AxisPlan:
  axis: int
  up: int
  down: int
  pad0: int
  pad1: int


@dataclasses.dataclass(frozen=True)
class _Phase:
  """Outputs m = period * k + index read input[k * stride + offset(t)]."""
  index: int
  count: int  # number of outputs in this phase
  taps: tuple[tuple[int, int], ...]  # (tap t, input offset) pairs


def _phases(a: _AxisPlan, num_in: int, num_taps: int) -> tuple[int, int, int,
                                                                 list[_Phase]]:
  """(period, stride, num_out, phases) of one axis."""
  common = math.gcd(a.up, a.down)
  period, stride = a.up // common, a.down // common
  num_out = -(-(num_in * a.up + a.pad0 + a.pad1 - num_taps + 1) // a.down)
  phases = []
  for j in range(period):
    taps = tuple((t, (j * a.down + t - a.pad0) // a.up)
                 for t in range(num_taps)
                 if (j * a.down + t - a.pad0) % a.up == 0)
    phases.append(_Phase(j, len(range(j, num_out, period)), taps))
  return period, stride, num_out, phases


def _polyphase_fir(x: jax.Array, g: jax.Array,
                   axes: list[_AxisPlan]) -> jax.Array:
  """Correlates x with g (one axis of g per entry of `axes`), polyphase.

  Computes y[m] = sum_t g[t] * u[m * down + t - pad0] along each listed axis,
  where u is x upsampled by zero insertion, without forming u.
  """
  plans = [_phases(a, x.shape[a.axis], g.shape[i]) for i, a in
           enumerate(axes)]
  # Zero-extend x so that every strided read below stays in bounds.
  pad = [(0, 0)] * x.ndim
  for a, (_, stride, _, phases) in zip(axes, plans):
    offsets = [o for p in phases for _, o in p.taps] or [0]
    longest = max(p.count for p in phases)
    lo = max(0, -min(offsets))
    hi = max(0, (longest - 1) * stride + max(offsets) + 1 - x.shape[a.axis])
    pad[a.axis] = (lo, hi)
  xp = jnp.pad(x, pad)

  def phase_output(combo: tuple[_Phase, ...]) -> jax.Array:
    acc = None
    for tap_combo in itertools.product(*(p.taps for p in combo)):
      start, limit, strides = [0] * x.ndim, list(xp.shape), [1] * x.ndim
      for a, (_, stride, _, _), phase, (_, offset) in zip(axes, plans, combo,
                                                        tap_combo):
        start[a.axis] = pad[a.axis][0] + offset
        limit[a.axis] = start[a.axis] + (phase.count - 1) * stride + 1
        strides[a.axis] = stride
      term = jax.lax.slice(xp, start, limit, strides) * g[tuple(
          t for t, _ in tap_combo)]
      acc = term if acc is None else acc + term
    if acc is None:  # a phase that no tap reaches is all zeros
      shape = list(x.shape)
      for a, phase in zip(axes, combo):
        shape[a.axis] = phase.count
      acc = jnp.zeros(shape, x.dtype)
    return acc

  # Build the output phase by phase, interleaving along one axis at a time.
  def assemble(level: int, chosen: tuple[_Phase, ...]) -> jax.Array:
    if level == len(axes):
      return phase_output(chosen)
    period, _, num_out, phases = plans[level]
    parts = [assemble(level + 1, chosen + (p,)) for p in phases]
    return _interleave(parts, axes[level].axis, period, num_out)

  return assemble(0, ())


def _interleave(parts: list[jax.Array], axis: int, period: int,
                num_out: int) -> jax.Array:
  """out[period * k + j] = parts[j][k] along `axis`; length num_out."""
  if period == 1:
    return parts[0]
  longest = max(p.shape[axis] for p in parts)
  padded = []
  for p in parts:
    widths = [(0, 0)] * p.ndim
    widths[axis] = (0, longest - p.shape[axis])
    padded.append(jnp.pad(p, widths))
  stacked = jnp.stack(padded, axis=axis + 1)
  shape = list(parts[0].shape)
  shape[axis] = longest * period
  merged = stacked.reshape(shape)
  return jax.lax.slice_in_dim(merged, 0, num_out, axis=axis)
