"""The official detectors' resize: TensorFlow 1's bilinear resize, as their
TorchScript translations compute it.

The Inception and VGG16 detectors resize with `affine_grid` + `grid_sample`
(bilinear, border padding, align_corners False) and the theta shift
`theta[0, 2] += 1/W - 1/out`, `theta[1, 2] += 1/H - 1/out`, which turns
grid_sample's half-pixel sampling into TensorFlow's legacy resize (source
pixel = output pixel * W / out). The sampling coordinates here follow
torch's float32 arithmetic step by step.
"""

import jax
import jax.numpy as jnp
import numpy as np

from sg3jax.ops import grid_sample


def _torch_linspace(n: int) -> np.ndarray:
  """float32 `torch.linspace(-1, 1, n)` as PyTorch's CPU kernel computes
  it: start + i * step for the first half, end - (n - 1 - i) * step for
  the rest, each a fused multiply-add (one rounding)."""
  step = np.float32(2) / np.float32(n - 1)
  i = np.arange(n, dtype=np.float64)
  first = i * np.float64(step) - 1
  second = 1 - (n - 1 - i) * np.float64(step)
  return np.where(i < n // 2, first, second).astype(np.float32)


def source_coordinates(size: int, out_size: int) -> np.ndarray:
  """Pixel coordinates `[out_size]` that output pixels read along an axis
  of `size` input pixels, in torch's float32 arithmetic, border-clamped.

  affine_grid: x = linspace(-1, 1, out) * (out - 1) / out + theta[0, 2],
  with theta[0, 2] = 1/size - 1/out; grid_sample: (x + 1) * (size / 2)
  - 0.5 (align_corners False), clamped to [0, size - 1] (border padding).
  """
  f32 = np.float32
  shift = f32(f32(1) / f32(size)) - f32(f32(1) / f32(out_size))
  base = _torch_linspace(out_size) * f32(out_size - 1) / f32(out_size)
  pixel = (base + shift + f32(1)) * f32(size / 2) - f32(0.5)
  return np.clip(pixel, 0, size - 1).astype(np.float32)


def tf_bilinear(images: jax.typing.ArrayLike, out_size: int) -> jax.Array:
  """`[N, H, W, C]` (any dtype) -> `[N, out_size, out_size, C]` float32,
  resized as the official detectors do (module docstring)."""
  x = jnp.asarray(images).astype(jnp.float32)
  _, h, w, _ = x.shape
  shape = (out_size, out_size)
  px = jnp.broadcast_to(
      jnp.asarray(source_coordinates(w, out_size))[None, :], shape)
  py = jnp.broadcast_to(
      jnp.asarray(source_coordinates(h, out_size))[:, None], shape)
  return grid_sample.bilinear_sample(x, px, py)
