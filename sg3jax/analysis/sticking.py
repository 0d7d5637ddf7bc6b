"""Texture sticking visualisations (paper Sec. 1, Fig. 1).

1. The average of images generated from a small neighbourhood of a central
   latent: details that move with the content blur out (healthy); details
   that stick to pixel coordinates stay sharp.
2. The pixel strip: a short vertical segment of pixels taken from every
   frame of a latent interpolation and stacked horizontally: moving
   details draw slanted, time-varying patterns; sticking ones draw
   horizontal streaks.
"""

import numpy as np


def neighbourhood_latents(z: np.ndarray, num: int, *, radius: float,
                          seed: int = 0) -> np.ndarray:
  """z `[z_dim]` plus `num - 1` Gaussian perturbations of it.

  Args:
    z: the central latent `[z_dim]`.
    num: how many latents to return, >= 1; row 0 is `z` itself.
    radius: standard deviation of the perturbation, >= 0.
    seed: seed of the perturbations.

  Returns:
    `[num, z_dim]` float32.
  """
  z = np.asarray(z, np.float32)
  if z.ndim != 1:
    raise ValueError(f"z: expected [z_dim], got {z.shape}")
  if num < 1:
    raise ValueError(f"num: expected >= 1, got {num}")
  if radius < 0:
    raise ValueError(f"radius: expected >= 0, got {radius}")
  noise = np.random.RandomState(seed).randn(num - 1, z.shape[0])
  return np.concatenate([z[None], z[None] + radius * noise]).astype(
      np.float32)


def average_image(images: np.ndarray) -> np.ndarray:
  """Pixelwise mean `[H, W, C]` (float64) of images `[N, H, W, C]`."""
  images = np.asarray(images)
  if images.ndim != 4 or len(images) == 0:
    raise ValueError(f"images: expected [N >= 1, H, W, C], got "
                     f"{images.shape}")
  return images.mean(axis=0, dtype=np.float64)


def default_segment(height: int) -> tuple[int, int]:
  """The middle half of the rows, `(start, stop)`."""
  return height // 4, height - height // 4


def pixel_strip(frames: np.ndarray, *, column: int,
                rows: tuple[int, int]) -> np.ndarray:
  """The pixels `frames[t, rows[0]:rows[1], column]`, frame t in column t.

  Args:
    frames: `[T, H, W, C]` frames of a latent interpolation.
    column: the pixel column x, 0 <= x < W.
    rows: `(start, stop)` of the vertical segment, 0 <= start < stop <= H.

  Returns:
    `[stop - start, T, C]`, same dtype as `frames`.
  """
  frames = np.asarray(frames)
  if frames.ndim != 4:
    raise ValueError(f"frames: expected [T, H, W, C], got {frames.shape}")
  _, height, width, _ = frames.shape
  if not 0 <= column < width:
    raise ValueError(f"column: expected 0..{width - 1}, got {column}")
  start, stop = rows
  if not 0 <= start < stop <= height:
    raise ValueError(f"rows: expected 0 <= start < stop <= {height}, got "
                     f"{rows}")
  return frames[:, start:stop, column].transpose(1, 0, 2)
