"""torch's `affine_grid` / `grid_sample` arithmetic (bilinear, zero padding,
align_corners=False), for ports that must match it to float32 rounding."""

import jax
import jax.numpy as jnp
import numpy as np


def torch_linspace(n: int) -> np.ndarray:
  """float32 torch.linspace(-1, 1, n): start + i * step for the first half,
  end - (n - 1 - i) * step for the rest."""
  if n == 1:
    return np.zeros(1, np.float32)
  step = np.float32(2) / np.float32(n - 1)
  i = np.arange(n)
  first = np.float32(-1) + step * i.astype(np.float32)
  second = np.float32(1) - step * (n - 1 - i).astype(np.float32)
  return np.where(i < n // 2, first, second).astype(np.float32)


def affine_grid_base(n: int, dtype=jnp.float32) -> jax.Array:
  """affine_grid's base coordinates along an axis of n pixels
  (align_corners=False): linspace(-1, 1, n) * (n - 1) / n, `[n]`."""
  return jnp.asarray(torch_linspace(n), dtype) * (n - 1) / n


def rounded(x: jax.Array) -> jax.Array:
  """x itself, rounded to its dtype before any later add.

  XLA contracts a multiply feeding an add into one fused multiply-add (a
  single rounding) inside fused kernels; torch rounds the product first.
  The sampling coordinates are sensitive to that (one ulp of a coordinate
  moves the output by ~1e-6 of its scale), so products that feed adds go
  through this select, which the contraction cannot see through.
  """
  return jnp.where(jnp.isnan(x), jnp.full_like(x, jnp.nan), x)


def unnormalize(coord: jax.Array, size: int) -> jax.Array:
  """grid_sample's [-1, 1] -> pixel map, align_corners=False (torch CPU)."""
  return rounded((coord + 1) * (size / 2)) - 0.5


def _corners(px: jax.Array, py: jax.Array
             ) -> list[tuple[jax.Array, jax.Array, jax.Array]]:
  """(row, column, weight) of the four corners of each sample at pixel
  coordinates px, py, in torch's summation order: nw, ne, sw, se."""
  x0 = jnp.floor(px)
  y0 = jnp.floor(py)
  wx = px - x0
  ex = 1 - wx
  wy = py - y0
  ey = 1 - wy
  x0 = x0.astype(jnp.int32)
  y0 = y0.astype(jnp.int32)
  return [(y0, x0, ey * ex), (y0, x0 + 1, ey * wx), (y0 + 1, x0, wy * ex),
          (y0 + 1, x0 + 1, wy * wx)]


def _sample_one(y: jax.Array, px: jax.Array, py: jax.Array) -> jax.Array:
  """y `[N, Hu, Wu, C]` at pixel coordinates px, py `[H, W]`."""
  _, hu, wu, _ = y.shape
  out = None
  for yy, xx, weight in _corners(px, py):
    valid = (xx >= 0) & (xx < wu) & (yy >= 0) & (yy < hu)
    value = y[:, jnp.clip(yy, 0, hu - 1), jnp.clip(xx, 0, wu - 1), :]
    weight = jnp.where(valid, weight, jnp.zeros((), weight.dtype))
    term = value * weight[None, :, :, None]
    out = term if out is None else out + term
  return out


def bilinear_sample(y: jax.Array, px: jax.Array, py: jax.Array) -> jax.Array:
  """grid_sample(y, mode='bilinear', padding_mode='zeros') at pixel
  coordinates px, py: `[H, W]` shared by all images or `[N, H, W]` per
  image. y `[N, Hu, Wu, C]` -> `[N, H, W, C]`."""
  if px.ndim == 2:
    return _sample_one(y, px, py)
  return jax.vmap(lambda yi, xi, yi_: _sample_one(yi[None], xi, yi_)[0])(
      y, px, py)


def bilinear_sample_planes(y: jax.Array, px: jax.Array,
                           py: jax.Array) -> jax.Array:
  """`bilinear_sample` of planes-first images: y `[C, N, Hu, Wu]` at pixel
  coordinates px, py `[N, H, W]` -> `[C, N, H, W]`, the same arithmetic.

  Each corner is one gather from the flattened `[C, N * Hu * Wu]` planes
  with indices `[N, H, W]`: no index array has a minor axis of 2 or C,
  which TPUs would pad to 128 lanes (see `upfirdn2d`'s `spatial_axes`).
  """
  c, n, hu, wu = y.shape
  planes = y.reshape(c, n * hu * wu)
  image_start = (jnp.arange(n, dtype=jnp.int32) * (hu * wu))[:, None, None]
  out = None
  for yy, xx, weight in _corners(px, py):
    valid = (xx >= 0) & (xx < wu) & (yy >= 0) & (yy < hu)
    index = (image_start + jnp.clip(yy, 0, hu - 1) * wu
             + jnp.clip(xx, 0, wu - 1))
    value = jnp.take(planes, index, axis=1, mode="clip")
    weight = jnp.where(valid, weight, jnp.zeros((), weight.dtype))
    term = value * weight[None]
    out = term if out is None else out + term
  return out
