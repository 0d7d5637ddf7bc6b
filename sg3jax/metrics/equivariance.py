"""Equivariance metrics EQ-T, EQ-T_frac and EQ-R (paper Sec. 3, Appx. E).

The image operators follow the official `metrics/equivariance.py` number for
number, but on NHWC images and with every shift, crop and mask written with
traced-friendly operations (iota comparisons, gathers, one-hot transfer
matrices), so that they run under `jax.jit` and differentiate w.r.t. the
image and the transform (translation, angle):

* `apply_integer_translation`: T_x with integer pixel shifts (Appx. E.1);
* `apply_fractional_translation`: T_x with a Lanczos (a=3) interpolator
  (Appx. E.2);
* `construct_affine_bandlimit_filter`: the oriented low-pass filter that
  band-limits w.r.t. the input and output of an affine map;
* `apply_fractional_rotation`: R_alpha, 4x band-limited upsampling then
  bilinear resampling (Appx. E.3);
* `apply_fractional_pseudo_rotation`: R*_alpha, the same band limit without
  the rotation.

`eq_terms` and `eq_squared_error` render a generator's reference and
transformed images through its input transform and compare them exactly as
the official `compute_equivariance_metrics` does; `compute_equivariance`
is the batched, device-sharded sampling loop behind `eqt50k_int`,
`eqt50k_frac` and `eqr50k` (see `sg3jax.metrics.metric_main`).

Non-square images (H != W, see `sg3jax.resolution`): a generator's input
transform moves content in units of the short side S on both axes (its
pixels are square), so `eq_terms` takes translations in units of S and
hands the operators fractions of the width and height (t S / W, t S / H);
`apply_affine_transformation` reads `mat` in square-pixel coordinates and
conjugates it into the sampling grid's per-axis normalized coordinates, so
a rotation rotates (rather than shears) a non-square image. Square images
take exactly the official path.
"""

import functools
import math
from collections.abc import Mapping
from typing import Any

import flax
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import PartitionSpec as P

from sg3jax.metrics import metric_utils
from sg3jax.ops import grid_sample
from sg3jax.resolution import Resolution
from sg3jax.resolution import short_side


KINDS = ("int", "frac", "rot")
DATA_AXIS = "data"
# The official metrics draw one transform per batch of 4 on each GPU.
OFFICIAL_GROUP_SIZE = 4

# Transfer-matrix products must stay in float32 (GPU default is TF32).
_HIGHEST = jax.lax.Precision.HIGHEST


# ---------------------------------------------------------------------------
# Utilities.


def sinc(x: jax.typing.ArrayLike) -> jax.Array:
  """Normalised sinc sin(pi x) / (pi x), 1 at 0, with finite gradients."""
  x = jnp.asarray(x)
  y = jnp.abs(x * np.pi)
  # The official clamps the denominator at 1e-30 and selects 1 below it; the
  # safe denominator also keeps the unused branch's gradient finite.
  small = y < 1e-30
  y_safe = jnp.where(small, 1.0, y)
  return jnp.where(small, 1.0, jnp.sin(y_safe) / y_safe)


def lanczos_window(x: jax.typing.ArrayLike, a: int) -> jax.Array:
  """sinc(x / a) inside |x| < a, else 0."""
  x = jnp.abs(jnp.asarray(x)) / a
  return jnp.where(x < 1, sinc(x), 0.0)


def rotation_matrix(angle: jax.typing.ArrayLike,
                    dtype: Any = None) -> jax.Array:
  """The official 3x3 `[[cos, sin, 0], [-sin, cos, 0], [0, 0, 1]]`."""
  angle = jnp.asarray(angle, dtype if dtype is not None else jnp.result_type(
      float))
  c, s = jnp.cos(angle), jnp.sin(angle)
  zero, one = jnp.zeros_like(angle), jnp.ones_like(angle)
  return jnp.stack([jnp.stack([c, s, zero]), jnp.stack([-s, c, zero]),
                    jnp.stack([zero, zero, one])])


def _check_image(x: jax.typing.ArrayLike) -> jax.Array:
  x = jnp.asarray(x)
  if x.ndim != 4 or not jnp.issubdtype(x.dtype, jnp.floating):
    raise ValueError(f"x: expected floating images [N, H, W, C], got "
                     f"{x.dtype} {x.shape}")
  return x


def _check_a(a: int) -> int:
  if not isinstance(a, (int, np.integer)) or a < 1:
    raise ValueError(f"a: expected an int >= 1 (Lanczos lobes), got {a!r}")
  return int(a)


def _scaled(t: jax.typing.ArrayLike, size: int, dtype) -> jax.Array:
  """t * size in pixels. A Python float is multiplied in float64 before the
  cast, a traced value in its own dtype (as torch.as_tensor(t * W))."""
  return jnp.asarray(t * size).astype(dtype)


def _broadcast_mask(rows: jax.Array, cols: jax.Array, x: jax.Array
                    ) -> jax.Array:
  """Mask `[N, H, W, C]` in x.dtype from row `[H]` and column `[W]` flags."""
  mask = (rows[:, None] & cols[None, :]).astype(x.dtype)
  return jnp.broadcast_to(mask[None, :, :, None], x.shape)


# ---------------------------------------------------------------------------
# Translation.


def apply_integer_translation(x: jax.typing.ArrayLike,
                              tx: jax.typing.ArrayLike,
                              ty: jax.typing.ArrayLike
                              ) -> tuple[jax.Array, jax.Array]:
  """Integer translation T_x (Appx. E.1) and its validity mask.

  The shift is round(tx * W) pixels right and round(ty * H) pixels down
  (round half to even, as torch); pixels shifted in from outside are zero.

  Args:
    x: images `[N, H, W, C]`, floating point.
    tx: horizontal shift as a fraction of the width; may be traced.
    ty: vertical shift as a fraction of the height; may be traced.

  Returns:
    (translated images `[N, H, W, C]`, mask `[N, H, W, C]`: 1 where the
    output pixel came from inside the input, else 0), both in x.dtype.
  """
  x = _check_image(x)
  _, h, w, _ = x.shape
  ix = jnp.round(_scaled(tx, w, x.dtype)).astype(jnp.int32)
  iy = jnp.round(_scaled(ty, h, x.dtype)).astype(jnp.int32)
  # Output pixel (Y, X) reads input (Y - iy, X - ix) when that is inside.
  rows = jnp.arange(h) - iy
  cols = jnp.arange(w) - ix
  mask = _broadcast_mask((rows >= 0) & (rows < h), (cols >= 0) & (cols < w),
                         x)
  # roll wraps around; the mask zeroes exactly the wrapped pixels (and all
  # of them when |shift| >= size, as the official).
  shifted = jnp.roll(x, (iy, ix), axis=(1, 2))
  return jnp.where(mask > 0, shifted, jnp.zeros_like(x)), mask


def _lanczos_taps(frac: jax.Array, a: int) -> jax.Array:
  """Normalised Lanczos interpolation taps `[2a]` at offsets k - (a-1)."""
  taps = np.arange(a * 2) - (a - 1)
  d = taps - frac
  f = sinc(d) * sinc(d / a)
  return f / jnp.sum(f)


def _shift_matrix(size: int, shift: jax.Array, taps: jax.Array, a: int
                  ) -> jax.Array:
  """`[size, size]` matrix T with (T v)[Y] = sum_k taps[k] v[Y - shift - k +
  a - 1], zero-extended: the official filter2d + crop + paste as one map."""
  offset = (np.arange(size)[:, None] - np.arange(size)[None, :] + (a - 1)
            - shift)  # tap index k for output Y, input s
  inside = (offset >= 0) & (offset < 2 * a)
  return jnp.where(inside, taps[jnp.clip(offset, 0, 2 * a - 1)],
                   jnp.zeros((), taps.dtype))


def apply_fractional_translation(x: jax.typing.ArrayLike,
                                 tx: jax.typing.ArrayLike,
                                 ty: jax.typing.ArrayLike, a: int = 3
                                 ) -> tuple[jax.Array, jax.Array]:
  """Fractional translation T_x with a Lanczos interpolator (Appx. E.2).

  Output pixel Y is sum_k h(k - f) x[Y - i - k] over the 2a taps
  k = -(a-1)..a, where t = i + f (i = floor) is the shift in pixels and h the
  Lanczos kernel normalised to sum 1; first along x, then along y. Written as
  two one-hot transfer-matrix products, so that the integer part may be
  traced; gradients flow to x and to the fractional part of the shift.

  Args:
    x: images `[N, H, W, C]`, floating point.
    tx: horizontal shift as a fraction of the width; may be traced.
    ty: vertical shift as a fraction of the height; may be traced.
    a: Lanczos lobes (static).

  Returns:
    (translated images `[N, H, W, C]`, mask `[N, H, W, C]`: 1 where every
    tap read a pixel inside the input, else 0).
  """
  x = _check_image(x)
  a = _check_a(a)
  _, h, w, _ = x.shape
  tx = _scaled(tx, w, x.dtype)
  ty = _scaled(ty, h, x.dtype)
  ix = jnp.floor(tx)
  iy = jnp.floor(ty)
  mat_x = _shift_matrix(w, ix.astype(jnp.int32), _lanczos_taps(tx - ix, a), a)
  mat_y = _shift_matrix(h, iy.astype(jnp.int32), _lanczos_taps(ty - iy, a), a)
  y = jnp.einsum("Xs,nrsc->nrXc", mat_x, x, precision=_HIGHEST)
  y = jnp.einsum("Yr,nrXc->nYXc", mat_y, y, precision=_HIGHEST)
  # Valid where the taps read x[Y - i + a - 1 .. Y - i - a] all inside.
  rows = jnp.arange(h) - iy.astype(jnp.int32)
  cols = jnp.arange(w) - ix.astype(jnp.int32)
  mask = _broadcast_mask((rows >= a) & (rows < h - (a - 1)),
                         (cols >= a) & (cols < w - (a - 1)), x)
  return y, mask


# ---------------------------------------------------------------------------
# Rotation.


def construct_affine_bandlimit_filter(mat: jax.typing.ArrayLike, *, a: int = 3,
                                      amax: int = 16, aflt: int = 64,
                                      up: int = 4, cutoff_in: float = 1,
                                      cutoff_out: float = 1) -> jax.Array:
  """Oriented low-pass filter for the affine map `mat` (official semantics).

  1. On a periodic grid of 2 * aflt * up - 1 taps per axis (spacing 1/up),
     circularly convolve the separable sinc band limits of the input and of
     the output coordinates (xo, yo) = mat[:2, :2] (xi, yi) through FFTs.
  2. Window with the likewise convolved 2-D Lanczos windows (a lobes).
  3. Crop to 2 * amax * up - 1 taps and normalise each of the up x up
     polyphase components to sum 1 / up**2.

  Args:
    mat: affine matrix `[3, 3]` (only `[:2, :2]` is used); may be traced.
    a: Lanczos lobes.
    amax: half-size of the kept filter in input pixels.
    aflt: half-size of the design grid in input pixels.
    up: upsampling factor the filter is designed for.
    cutoff_in: input band limit (cycles per pixel x 2).
    cutoff_out: output band limit.

  Returns:
    taps `[2 * amax * up - 1, 2 * amax * up - 1]` in mat's float dtype.
  """
  a = _check_a(a)
  if not a <= amax < aflt:
    raise ValueError(f"amax: expected a <= amax < aflt, got a={a}, "
                     f"amax={amax}, aflt={aflt}")
  mat = jnp.asarray(mat)
  if mat.shape != (3, 3):
    raise ValueError(f"mat: expected [3, 3], got {mat.shape}")
  mat = mat.astype(jnp.promote_types(mat.dtype, jnp.float32))
  dtype = mat.dtype
  n = aflt * up * 2 - 1
  # Tap positions (k + 1) / up - aflt (multiples of 1/up, exact), rotated so
  # that position 0 sits at index 0 of the periodic grid.
  taps = np.roll((np.arange(n) + 1) / up - aflt, 1 - aflt * up)
  yi, xi = (jnp.asarray(v, dtype) for v in np.meshgrid(taps, taps,
                                                       indexing="ij"))
  xo = xi * mat[0, 0] + yi * mat[0, 1]
  yo = xi * mat[1, 0] + yi * mat[1, 1]

  def circular_convolution(u, v):
    return jnp.fft.ifftn(jnp.fft.fftn(u) * jnp.fft.fftn(v)).real

  f = circular_convolution(sinc(xi * cutoff_in) * sinc(yi * cutoff_in),
                           sinc(xo * cutoff_out) * sinc(yo * cutoff_out))
  window = circular_convolution(
      lanczos_window(xi, a) * lanczos_window(yi, a),
      lanczos_window(xo, a) * lanczos_window(yo, a))
  f = f * window
  c = (aflt - amax) * up
  f = jnp.roll(f, (aflt * up - 1,) * 2, axis=(0, 1))[c:-c, c:-c]
  f = jnp.pad(f, ((0, 1), (0, 1))).reshape(amax * 2, up, amax * 2, up)
  f = f / jnp.sum(f, axis=(0, 2), keepdims=True) / (up ** 2)
  return f.reshape(amax * 2 * up, amax * 2 * up)[:-1, :-1].astype(dtype)


def _phases(size: int, taps: int, up: int, pad_lo: int, pad_hi: int):
  """Polyphase plan of one axis of upfirdn (up, no down) with taps `taps`.

  Output m = up * i + r reads the flipped filter at taps k = k_r + up * q and
  the input at i + q + d_r. Returns (tap index `[up, Q]` into the flipped
  filter, -1 where unused; input offset D of tap q = 0; phase length A;
  output length)."""
  out = size * up + pad_lo + pad_hi - taps + 1
  k0 = [(pad_lo - r) % up for r in range(up)]
  d = [(r + k0[r] - pad_lo) // up for r in range(up)]
  n = [len(range(k0[r], taps, up)) for r in range(up)]
  offset = min(d)
  length = max(d[r] - offset + n[r] for r in range(up))
  index = np.full((up, length), -1)
  for r in range(up):
    for q in range(n[r]):
      index[r, d[r] - offset + q] = k0[r] + up * q
  return index, offset, -(-out // up), out


def upsample_conv(x: jax.typing.ArrayLike, f: jax.typing.ArrayLike, *,
                  up: int, padding: tuple[int, int, int, int],
                  gain: float = 1.0) -> jax.Array:
  """`upfirdn2d(x, f, up=up, padding=padding, gain=gain)` (no down) for a
  large non-separable traced filter, as one grouped convolution.

  `sg3jax.ops.upfirdn2d` unrolls every tap into a shift-add, which compiles
  slowly for the 47x47 band-limit filter; here the up x up polyphase
  components of the (flipped) filter become up**2 output channels of one
  depthwise `conv_general_dilated`, interleaved afterwards.

  Args:
    x: images `[N, H, W, C]`.
    f: taps `[Kh, Kw]`; may be traced (differentiable).
    up: upsampling factor (both axes).
    padding: (x0, x1, y0, y1) w.r.t. the upsampled image, official order.
    gain: overall gain.

  Returns:
    `[N, H * up + y0 + y1 - Kh + 1, W * up + x0 + x1 - Kw + 1, C]`.
  """
  x = _check_image(x)
  f = jnp.asarray(f, x.dtype)
  n, h, w, c = x.shape
  kh, kw = f.shape
  x0, x1, y0, y1 = padding
  idx_y, off_y, len_y, out_h = _phases(h, kh, up, y0, y1)
  idx_x, off_x, len_x, out_w = _phases(w, kw, up, x0, x1)
  g = jnp.flip(f) * gain  # convolution = correlation with the flipped taps
  rows = idx_y[:, None, :, None]  # [up_y, 1, Qy, 1]
  cols = idx_x[None, :, None, :]  # [1, up_x, 1, Qx]
  kernel = jnp.where((rows >= 0) & (cols >= 0),
                     g[np.maximum(rows, 0), np.maximum(cols, 0)],
                     jnp.zeros((), g.dtype))  # [up, up, Qy, Qx]
  qy, qx = kernel.shape[2:]
  kernel = kernel.reshape(up * up, qy, qx).transpose(1, 2, 0)
  kernel = jnp.tile(kernel[:, :, None, :], (1, 1, 1, c))  # [Qy, Qx, 1, C*P]
  kernel = kernel.reshape(qy, qx, 1, c, up * up).reshape(qy, qx, 1, -1)
  # Input rows i + off .. i + off + Q - 1 for phase rows i = 0 .. len - 1.
  xp = jax.lax.pad(x, jnp.zeros((), x.dtype), (
      (0, 0, 0), (-off_y, len_y + qy - 1 + off_y - h, 0),
      (-off_x, len_x + qx - 1 + off_x - w, 0), (0, 0, 0)))
  y = jax.lax.conv_general_dilated(
      xp, kernel, (1, 1), "VALID",
      dimension_numbers=("NHWC", "HWIO", "NHWC"), feature_group_count=c,
      precision=_HIGHEST)  # [N, len_y, len_x, C * up * up]
  y = y.reshape(n, len_y, len_x, c, up, up).transpose(0, 1, 4, 2, 5, 3)
  return y.reshape(n, len_y * up, len_x * up, c)[:, :out_h, :out_w]


def apply_affine_transformation(x: jax.typing.ArrayLike,
                                mat: jax.typing.ArrayLike, *, up: int = 4,
                                **filter_kwargs) -> tuple[jax.Array, jax.Array]:
  """Resamples images through the affine map `mat` (official semantics).

  1. Upsample `up`x with the band-limit filter of `mat`
     (`construct_affine_bandlimit_filter`), padded by its half-size p.
  2. Sample the upsampled image bilinearly (zeros outside) at the grid
     inv(mat) maps the output pixels to (torch `affine_grid` +
     `grid_sample`, align_corners=False).
  3. The mask is nearest sampling of the upsampled image's interior (a
     2p + 1 border removed).

  Args:
    x: images `[N, H, W, C]`.
    mat: `[3, 3]` affine map; may be traced. For H != W it acts on
      square-pixel coordinates in units of the short side (a rotation
      rotates), and is conjugated by diag(W, H) / S into the grid's
      normalized coordinates.
    up: upsampling factor (static).
    **filter_kwargs: `construct_affine_bandlimit_filter` keywords.

  Returns:
    (images `[N, H, W, C]`, mask `[N, H, W, C]`).
  """
  x = _check_image(x)
  _, h, w, _ = x.shape
  mat = jnp.asarray(mat, x.dtype)
  f = construct_affine_bandlimit_filter(mat, up=up, **filter_kwargs)
  p = f.shape[0] // 2

  theta = jnp.linalg.inv(mat)
  if h != w:
    to_square = jnp.asarray(np.diag([w / min(h, w), h / min(h, w), 1.0]),
                            x.dtype)
    theta = jnp.linalg.inv(to_square) @ theta @ to_square
  theta = theta.at[:2, 2].multiply(2)
  theta = theta.at[0, 2].add(1 / up / w).at[1, 2].add(1 / up / h)
  theta = theta.at[0, :].multiply(w / (w + p / up * 2))
  theta = theta.at[1, :].multiply(h / (h + p / up * 2))
  # affine_grid's base grid: linspace(-1, 1, n) * (n - 1) / n (float32
  # arithmetic, as torch).
  base_x = jnp.asarray(grid_sample.torch_linspace(w), x.dtype) * (w - 1) / w
  base_y = jnp.asarray(grid_sample.torch_linspace(h), x.dtype) * (h - 1) / h
  # The grid as torch's bmm with theta: products rounded, then summed.
  gx = (grid_sample.rounded(base_x[None, :] * theta[0, 0])
        + grid_sample.rounded(base_y[:, None] * theta[0, 1]) + theta[0, 2])  # [H, W]
  gy = (grid_sample.rounded(base_x[None, :] * theta[1, 0])
        + grid_sample.rounded(base_y[:, None] * theta[1, 1]) + theta[1, 2])

  # upsample2d(x, f, up, padding=p) of the official.
  y = upsample_conv(x, f, up=up, padding=(p + (f.shape[1] + up - 1) // 2,
                                          p + (f.shape[1] - up) // 2,
                                          p + (f.shape[0] + up - 1) // 2,
                                          p + (f.shape[0] - up) // 2),
                    gain=up * up)
  hu, wu = y.shape[1:3]
  px = grid_sample.unnormalize(gx, wu)
  py = grid_sample.unnormalize(gy, hu)
  z = grid_sample.bilinear_sample(y, px, py)

  c = p * 2 + 1
  nx = jnp.round(px).astype(jnp.int32)  # nearest: half to even, as torch
  ny = jnp.round(py).astype(jnp.int32)
  inside = (nx >= c) & (nx < wu - c) & (ny >= c) & (ny < hu - c)
  mask = jnp.broadcast_to(inside.astype(x.dtype)[None, :, :, None], z.shape)
  return z, mask


def apply_fractional_rotation(x: jax.typing.ArrayLike,
                              angle: jax.typing.ArrayLike, a: int = 3,
                              **filter_kwargs) -> tuple[jax.Array, jax.Array]:
  """Fractional rotation R_alpha by `angle` radians (Appx. E.3).

  Args:
    x: images `[N, H, W, C]`.
    angle: radians; may be traced.
    a: Lanczos lobes of the band-limit filter (amax = 2a).
    **filter_kwargs: other `construct_affine_bandlimit_filter` keywords.

  Returns:
    (rotated images `[N, H, W, C]`, mask `[N, H, W, C]`).
  """
  x = _check_image(x)
  a = _check_a(a)
  mat = rotation_matrix(angle, x.dtype)
  return apply_affine_transformation(x, mat, a=a, amax=a * 2, **filter_kwargs)


def apply_fractional_pseudo_rotation(x: jax.typing.ArrayLike,
                                     angle: jax.typing.ArrayLike, a: int = 3,
                                     **filter_kwargs
                                     ) -> tuple[jax.Array, jax.Array]:
  """R*_alpha: the band limit of a rotation by `angle`, without rotating
  (Appx. E.3): a same-size convolution with the up=1 band-limit filter of
  rotation_matrix(-angle).

  Args:
    x: images `[N, H, W, C]`.
    angle: radians; may be traced.
    a: Lanczos lobes (amax = 2a).
    **filter_kwargs: other `construct_affine_bandlimit_filter` keywords.

  Returns:
    (filtered images `[N, H, W, C]`, mask `[N, H, W, C]`: 0 within the
    filter's half-size of the border).
  """
  x = _check_image(x)
  a = _check_a(a)
  _, h, w, _ = x.shape
  mat = rotation_matrix(-jnp.asarray(angle, x.dtype), x.dtype)
  f = construct_affine_bandlimit_filter(mat, a=a, amax=a * 2, up=1,
                                        **filter_kwargs)
  kh, kw = f.shape
  # filter2d(x, f) of the official: a same-size convolution.
  y = upsample_conv(x, f, up=1, padding=(kw // 2, (kw - 1) // 2, kh // 2,
                                         (kh - 1) // 2))
  c = kh // 2
  rows = jnp.arange(h)
  cols = jnp.arange(w)
  mask = _broadcast_mask((rows >= c) & (rows < h - c),
                         (cols >= c) & (cols < w - c), y)
  return y, mask


# ---------------------------------------------------------------------------
# Equivariance of a generator.


def with_input_transform(variables: Mapping, transform: jax.typing.ArrayLike
                         ) -> dict:
  """`variables` with the synthesis input's `transform` buffer replaced.

  `transform` `[3, 3]` is the official `G.synthesis.input.transform` (the
  inverse of the motion applied to the output); it may be traced.
  """
  buffers = variables.get("buffers", {})
  synthesis = buffers.get("synthesis", {})
  if "input" not in synthesis:
    raise ValueError("equivariance needs a StyleGAN3 generator (its "
                     "synthesis.input.transform buffer moves the output); "
                     "these variables have no synthesis.input (a StyleGAN2 "
                     "generator?)")
  return {**variables, "buffers": {**buffers, "synthesis": {
      **synthesis, "input": {**synthesis["input"],
                             "transform": jnp.asarray(transform)}}}}


def _render(G: nn.Module, variables: Mapping, ws: jax.Array,
            transform: jax.Array, cutoff_scale) -> jax.Array:
  kwargs = {} if cutoff_scale is None else {"cutoff_scale": cutoff_scale}
  return G.apply(with_input_transform(variables, transform), ws,
                 method=G.synthesize, **kwargs)


def render_reference_and_moved(G: nn.Module, variables: Mapping,
                               ws: jax.Array, kind: str, value: jax.Array,
                               cutoff_scale=None
                               ) -> tuple[jax.Array, jax.Array]:
  """(image of the identity input transform, image of the motion's input
  transform), each `[N, H, W, C]`, as the official metric renders them:
  M = I with M[:2, 2] = -t for 'int' and 'frac', M = rotation_matrix(-angle)
  for 'rot' (`value`: see `eq_terms`).

  Both renders run one loop body, one after the other (the memory of one
  render), so an identity motion gives a bitwise equal image.
  """
  eye = jnp.eye(3, dtype=value.dtype)
  moved = (rotation_matrix(-value, value.dtype) if kind == "rot"
           else eye.at[:2, 2].set(-value))
  reference, image = jax.lax.map(
      lambda transform: _render(G, variables, ws, transform, cutoff_scale),
      jnp.stack([eye, moved]))
  return reference, image


def _check_kind(kind: str) -> None:
  if kind not in KINDS:
    raise ValueError(f"kind: expected one of {KINDS}, got {kind!r}")


def eq_terms(G: nn.Module, variables: Mapping, ws: jax.typing.ArrayLike,
             kind: str, value: jax.typing.ArrayLike, *,
             cutoff_scale: jax.typing.ArrayLike | None = None
             ) -> tuple[jax.Array, jax.Array]:
  """Per-sample masked squared error and mask size of one transform.

  As the official `compute_equivariance_metrics` for one batch: the
  reference image is rendered with the identity input transform, the
  transformed one with the input transform of the motion; then

  * 'int' (EQ-T): M = I with M[:2, 2] = -t; compare with
    `apply_integer_translation(reference, tx, ty)` under its mask;
  * 'frac' (EQ-T_frac): the same with `apply_fractional_translation`;
  * 'rot' (EQ-R): M = rotation_matrix(-angle); compare
    `apply_fractional_rotation(reference, angle)` with
    `apply_fractional_pseudo_rotation(image, angle)` under the product of
    their masks.

  Args:
    G: a `Generator` (its `synthesize` method is used).
    variables: G's variables; their input `transform` is replaced.
    ws: `[N, num_ws, w_dim]`.
    kind: 'int', 'frac' or 'rot' (static).
    value: `[2]` translation (tx, ty) as fractions of the image size
      (for 'int' already rounded to whole pixels, as the official metric
      rounds before use; for H != W in units of the short side S, the
      network's unit: t S pixels along both axes), or the angle in radians
      (scalar) for 'rot'. May be traced; one transform for the whole batch,
      as the official.
    cutoff_scale: optional traced scale of every layer's filter cutoff
      (`SynthesisLayer` designs its filters with the jnp design then).

  Returns:
    (sum of squared error times mask `[N]`, sum of mask `[N]`), each summed
    over H, W and C of one sample; the official accumulates their sums.
  """
  _check_kind(kind)
  ws = jnp.asarray(ws)
  if ws.ndim != 3:
    raise ValueError(f"ws: expected [N, num_ws, w_dim], got {ws.shape}")
  dtype = jnp.promote_types(ws.dtype, jnp.float32)
  value = jnp.asarray(value, dtype)
  expected = (2,) if kind != "rot" else ()
  if value.shape != expected:
    raise ValueError(f"value: expected shape {expected} for kind {kind!r}, "
                     f"got {value.shape}")
  reference, image = render_reference_and_moved(G, variables, ws, kind,
                                                value, cutoff_scale)
  if kind == "rot":
    ref, ref_mask = apply_fractional_rotation(reference, value)
    pseudo, pseudo_mask = apply_fractional_pseudo_rotation(image, value)
    diff, mask = ref - pseudo, ref_mask * pseudo_mask
  else:
    translate = (apply_integer_translation if kind == "int"
                 else apply_fractional_translation)
    ref, mask = translate(reference, *image_fractions(value,
                                                       reference.shape[1:3]))
    diff = ref - image
  return (jnp.sum(jnp.square(diff) * mask, axis=(1, 2, 3)),
          jnp.sum(mask, axis=(1, 2, 3)))


def image_fractions(value: jax.Array, size: tuple[int, int]
                    ) -> tuple[jax.Array, jax.Array]:
  """A translation `[2]` in units of the short side of images of `size`
  (H, W) -> (fraction of W, fraction of H), the operators' arguments."""
  h, w = size
  if h == w:
    return value[0], value[1]
  s = min(h, w)
  return value[0] * (s / w), value[1] * (s / h)


def eq_squared_error(G: nn.Module, variables: Mapping,
                     ws: jax.typing.ArrayLike, kind: str,
                     value: jax.typing.ArrayLike, *,
                     cutoff_scale: jax.typing.ArrayLike | None = None
                     ) -> tuple[jax.Array, jax.Array]:
  """(masked squared-error sum, mask sum) of a batch, as the official.

  The batch sums of `eq_terms` (see there for the arguments); the official
  adds these two numbers over all batches and reports
  PSNR = 20 log10(2) - 10 log10(error sum / mask sum). Pure: usable inside
  `jax.jit` and `jax.grad` (w.r.t. the variables, ws, value, cutoff_scale).
  """
  err, mask = eq_terms(G, variables, ws, kind, value,
                       cutoff_scale=cutoff_scale)
  return jnp.sum(err), jnp.sum(mask)


def psnr(err_sum: jax.typing.ArrayLike, mask_sum: jax.typing.ArrayLike
         ) -> jax.Array:
  """PSNR in dB with the official peak 2 (images in [-1, 1])."""
  return 20 * np.log10(2) - 10 * jnp.log10(jnp.asarray(err_sum) /
                                           jnp.asarray(mask_sum))


# ---------------------------------------------------------------------------
# Sampling (eqt50k_int, eqt50k_frac, eqr50k).


def sample_transform(key: jax.Array, kind: str, *,
                     img_resolution: Resolution,
                     translate_max: float = 0.125, rotate_max: float = 1.0
                     ) -> jax.Array:
  """One transform as the official draws it (its distribution, our RNG).

  'int': t ~ U[-1, 1)^2 * translate_max, rounded to whole pixels;
  'frac': the same unrounded; 'rot': angle ~ U[-1, 1) * rotate_max * pi.
  Translations are in units of the short side S (the image size of a
  square), so a non-square image moves by at most translate_max S pixels
  along either axis, as its square S x S counterpart.
  """
  _check_kind(kind)
  if kind == "rot":
    return (jax.random.uniform(key, ()) * 2 - 1) * (rotate_max * np.pi)
  t = (jax.random.uniform(key, (2,)) * 2 - 1) * translate_max
  if kind == "int":
    res = short_side(img_resolution)
    t = jnp.round(t * res) / res
  return t


def _force_fp32(G: nn.Module) -> nn.Module:
  """G with mixed precision off (the official passes force_fp32=True)."""
  kwargs = dict(G.synthesis_kwargs)
  if not kwargs.get("mixed_precision", False):
    return G
  kwargs["mixed_precision"] = False
  return G.clone(synthesis_kwargs=flax.core.FrozenDict(kwargs))


def make_equivariance_step(G: nn.Module, kind: str, *, mesh: jax.sharding.Mesh,
                           group_size: int = OFFICIAL_GROUP_SIZE):
  """Jitted `step(variables, key, group_idx, translate_max, rotate_max)`
  -> (err `[B]`, mask `[B]`), the per-sample `eq_terms` of B samples
  (on every device of the mesh).

  `group_idx` `[G]` (sharded over the mesh's "data" axis) numbers groups of
  `group_size` samples; sample i = g * group_size + j draws its latent (and
  label) from `fold_in(key, i)` and shares its group's transform, drawn from
  `fold_in(key, g)` (`sample_transform`). So every sample is the same
  whatever the batch size and device count. B = G * group_size. The steps
  of a hashable G (FrozenDict kwargs, as loaded) are cached, so that equal
  configurations share one compilation.
  """
  _check_kind(kind)
  try:
    return _cached_step(G, kind, mesh, group_size)
  except TypeError:  # unhashable module (dict kwargs): build afresh
    return _build_step(G, kind, mesh, group_size)


def _build_step(G: nn.Module, kind: str, mesh: jax.sharding.Mesh,
                group_size: int):
  z_tag, c_tag, t_tag = 0, 1, 2

  def per_device(variables, key, group_idx, translate_max, rotate_max):
    sample_idx = (group_idx[:, None] * group_size
                  + jnp.arange(group_size)).reshape(-1)
    z_key = jax.random.fold_in(key, z_tag)
    z = jax.vmap(lambda i: jax.random.normal(
        jax.random.fold_in(z_key, i), (G.z_dim,)))(sample_idx)
    c = None
    if G.c_dim:
      # Uniform one-hot labels (the official draws dataset labels).
      c_key = jax.random.fold_in(key, c_tag)
      labels = jax.vmap(lambda i: jax.random.randint(
          jax.random.fold_in(c_key, i), (), 0, G.c_dim))(sample_idx)
      c = jax.nn.one_hot(labels, G.c_dim)
    ws = G.apply(variables, z, c, method=G.map)
    ws = ws.reshape((group_idx.shape[0], group_size) + ws.shape[1:])
    t_key = jax.random.fold_in(key, t_tag)
    values = jax.vmap(lambda g: sample_transform(
        jax.random.fold_in(t_key, g), kind, img_resolution=G.img_resolution,
        translate_max=translate_max, rotate_max=rotate_max))(group_idx)
    err, mask = jax.vmap(
        lambda w, v: eq_terms(G, variables, w, kind, v))(ws, values)
    return err.reshape(-1), mask.reshape(-1)

  body = jax.shard_map(per_device, mesh=mesh,
                       in_specs=(P(), P(), P(DATA_AXIS), P(), P()),
                       out_specs=(P(DATA_AXIS), P(DATA_AXIS)))
  # (Outputs gathered on every device: every process reads them.)
  return jax.jit(body, out_shardings=jax.sharding.NamedSharding(mesh, P()))


_cached_step = functools.lru_cache(maxsize=16)(_build_step)


def compute_equivariance(G: nn.Module, variables: Mapping, kind: str, *,
                         num: int = 50000, batch: int | None = None,
                         group_size: int = OFFICIAL_GROUP_SIZE,
                         translate_max: float = 0.125,
                         rotate_max: float = 1.0, seed: int = 0,
                         devices: list[jax.Device] | None = None,
                         progress: bool = True) -> dict[str, float]:
  """EQ-T ('int'), EQ-T_frac ('frac') or EQ-R ('rot') of G over `num`
  samples, sharded over `devices` (default: all).

  Sampling follows the official metric: z ~ N(0, I), ws = G.map(z) (psi 1),
  one transform per group of `group_size` (official: 4 per GPU batch),
  translate_max 0.125 or rotate_max 1 (x pi), float32 rendering. Our RNG is
  `jax.random` with a fixed `seed`, so the figure is reproducible but not
  sample-for-sample the official one (that uses torch's RNG). Exactly `num`
  samples count: the last batch is padded and the padding discarded
  (the official rounds `num` up to whole batches).

  Args:
    G: a `Generator` with an input transform.
    variables: its variables.
    kind: 'int', 'frac' or 'rot'.
    num: number of samples (>= 1).
    batch: samples per step over all devices; a multiple of
      group_size * len(devices) (default: exactly that).
    group_size: samples sharing one transform.
    translate_max: maximum translation, fraction of the image size.
    rotate_max: maximum rotation, fraction of pi.
    seed: seed of latents, labels and transforms.
    devices: devices of the data-axis mesh; with those of several
      processes, every process calls with the same arguments.
    progress: show a tqdm progress bar.

  Returns:
    {'psnr', 'err_sum', 'mask_sum', 'num', 'num_devices'}: PSNR in dB and
    the float64 sums it comes from.
  """
  _check_kind(kind)
  devices = list(jax.devices() if devices is None else devices)
  per_step = group_size * len(devices)
  batch = per_step if batch is None else batch
  if not isinstance(num, (int, np.integer)) or num < 1:
    raise ValueError(f"num: expected an int >= 1, got {num!r}")
  if not isinstance(group_size, (int, np.integer)) or group_size < 1:
    raise ValueError(f"group_size: expected an int >= 1, got {group_size!r}")
  if (not isinstance(batch, (int, np.integer)) or batch < 1
      or batch % per_step):
    raise ValueError(
        f"batch: expected a positive multiple of group_size * devices = "
        f"{group_size} * {len(devices)} = {per_step}, got {batch!r}")
  G = _force_fp32(G)
  mesh = jax.sharding.Mesh(np.array(devices), (DATA_AXIS,))
  step = make_equivariance_step(G, kind, mesh=mesh, group_size=group_size)
  variables = metric_utils.replicated(variables, mesh)
  key = metric_utils.replicated_key(seed, mesh)
  groups_per_step = batch // group_size
  num_steps = math.ceil(num / batch)
  err_sum = mask_sum = 0.0
  bar = _progress_bar(num, kind, progress)
  for s in range(num_steps):
    group_idx = np.arange(s * groups_per_step, (s + 1) * groups_per_step,
                          dtype=np.int32)
    err, mask = step(variables, key, metric_utils.split(group_idx, mesh),
                     np.float32(translate_max), np.float32(rotate_max))
    sample_idx = s * batch + np.arange(batch)
    keep = sample_idx < num
    # Per-sample float32 sums, accumulated in float64 (the official sums the
    # float32 elements in float64).
    err_sum += float(np.sum(np.asarray(err, np.float64)[keep]))
    mask_sum += float(np.sum(np.asarray(mask, np.float64)[keep]))
    if bar is not None:
      bar.update(int(keep.sum()))
  if bar is not None:
    bar.close()
  # PSNR on the host in float64, as the official.
  value = 20 * np.log10(2) - 10 * np.log10(err_sum / mask_sum)
  return {"psnr": float(value),
          "err_sum": err_sum, "mask_sum": mask_sum, "num": int(num),
          "num_devices": len(devices)}


def _progress_bar(total: int, kind: str, enabled: bool):
  if not enabled:
    return None
  import tqdm  # pylint: disable=g-import-not-at-top
  return tqdm.tqdm(total=total, desc=f"eq sampling ({kind})", unit="img",
                   dynamic_ncols=True)

