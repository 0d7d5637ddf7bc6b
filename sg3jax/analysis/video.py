"""Latent interpolation videos (the official gen_video.py, NHWC)."""

from collections.abc import Iterator
from collections.abc import Sequence

import numpy as np
import scipy.interpolate

from sg3jax.analysis import render
from sg3jax.networks import Generator

KINDS = ("cubic", "linear")


def interpolate_loop(keyframes: np.ndarray, frames_per_transition: int, *,
                     kind: str = "cubic") -> np.ndarray:
  """Samples a closed curve through `keyframes`, `frames_per_transition` a
  step.

  Frame `i` sits at keyframe position `i / frames_per_transition`, so frame
  `k * frames_per_transition` is keyframe `k` exactly and the last frame
  leads back into the first (the video loops). `kind="cubic"` is a periodic
  cubic spline (C2 smooth, as gen_video.py's cubic interpolation over
  keyframes repeated on both sides, without its edge effects);
  `kind="linear"` goes in straight lines.

  Args:
    keyframes: `[K, ...]` points to pass through (e.g. ws `[K, num_ws,
      w_dim]`), K >= 1.
    frames_per_transition: frames from one keyframe to the next, >= 1.
    kind: "cubic" or "linear".

  Returns:
    `[K * frames_per_transition, ...]` float32.
  """
  keyframes = np.asarray(keyframes, np.float64)
  if keyframes.ndim < 1 or len(keyframes) < 1:
    raise ValueError(f"keyframes: expected [K >= 1, ...], got "
                     f"{keyframes.shape}")
  if frames_per_transition < 1:
    raise ValueError("frames_per_transition: expected >= 1, got "
                     f"{frames_per_transition}")
  if kind not in KINDS:
    raise ValueError(f"kind: expected one of {KINDS}, got {kind!r}")
  num = len(keyframes)
  t = np.arange(num * frames_per_transition) / frames_per_transition
  if num == 1:
    return np.repeat(keyframes, len(t), axis=0).astype(np.float32)
  closed = np.concatenate([keyframes, keyframes[:1]])
  x = np.arange(num + 1)
  if kind == "cubic":
    curve = scipy.interpolate.CubicSpline(x, closed, axis=0,
                                          bc_type="periodic")
    return curve(t).astype(np.float32)
  lo = np.floor(t).astype(int)
  frac = (t - lo).reshape((-1,) + (1,) * (keyframes.ndim - 1))
  return (closed[lo] * (1 - frac) + closed[lo + 1] * frac).astype(np.float32)


def keyframe_seeds(seeds: Sequence[int], *, grid: tuple[int, int] = (1, 1),
                   num_keyframes: int | None = None,
                   shuffle_seed: int | None = None) -> np.ndarray:
  """Seeds `[grid_h, grid_w, num_keyframes]` of each cell's keyframes.

  As gen_video.py: `seeds` repeat cyclically to fill `num_keyframes` per
  cell (default: len(seeds) / cells), then are optionally shuffled by
  `shuffle_seed`, and are dealt out cell by cell, row-major.
  """
  grid_w, grid_h = grid
  if grid_w < 1 or grid_h < 1:
    raise ValueError(f"grid: expected (width >= 1, height >= 1), got {grid}")
  if not seeds:
    raise ValueError("seeds: expected at least one seed, got []")
  cells = grid_w * grid_h
  if num_keyframes is None:
    if len(seeds) % cells:
      raise ValueError(f"seeds: expected a multiple of the {cells} grid "
                       f"cells, got {len(seeds)} seeds")
    num_keyframes = len(seeds) // cells
  if num_keyframes < 1:
    raise ValueError(f"num_keyframes: expected >= 1, got {num_keyframes}")
  all_seeds = np.array([seeds[i % len(seeds)]
                        for i in range(num_keyframes * cells)], np.int64)
  if shuffle_seed is not None:
    np.random.RandomState(shuffle_seed).shuffle(all_seeds)
  return all_seeds.reshape(grid_h, grid_w, num_keyframes)


def layout_grid(images: np.ndarray, grid: tuple[int, int]) -> np.ndarray:
  """Tiles `[grid_h * grid_w, H, W, C]` row-major into one
  `[grid_h * H, grid_w * W, C]` image."""
  grid_w, grid_h = grid
  images = np.asarray(images)
  if images.ndim != 4 or len(images) != grid_w * grid_h:
    raise ValueError(f"images: expected [{grid_w * grid_h}, H, W, C], got "
                     f"{images.shape}")
  _, h, w, c = images.shape
  return (images.reshape(grid_h, grid_w, h, w, c).transpose(0, 2, 1, 3, 4)
          .reshape(grid_h * h, grid_w * w, c))


def frame_strip(frames: np.ndarray, num: int) -> np.ndarray:
  """`num` evenly spaced frames of `[T, H, W, C]` side by side,
  `[H, num * W, C]` (frame `i * T // num` in place i)."""
  frames = np.asarray(frames)
  if frames.ndim != 4:
    raise ValueError(f"frames: expected [T, H, W, C], got {frames.shape}")
  if not 1 <= num <= len(frames):
    raise ValueError(f"num: expected 1..{len(frames)}, got {num}")
  picked = frames[np.arange(num) * len(frames) // num]
  return np.concatenate(list(picked), axis=1)


def render_frames(module: Generator, variables: dict, ws: np.ndarray, *,
                  batch_size: int = 8) -> Iterator[np.ndarray]:
  """Yields the video frames, uint8 `[grid_h * H, grid_w * W, C]`, in order.

  Args:
    module: the generator.
    variables: its variables.
    ws: `[grid_h, grid_w, T, num_ws, w_dim]`, each cell's ws per frame
      (e.g. `interpolate_loop` of its keyframes).
    batch_size: images per generator call (frames times cells).
  """
  ws = np.asarray(ws, np.float32)
  if ws.ndim != 5:
    raise ValueError("ws: expected [grid_h, grid_w, T, num_ws, w_dim], got "
                     f"{ws.shape}")
  grid_h, grid_w, num_frames = ws.shape[:3]
  cells = grid_h * grid_w
  # Frame-major: the cells of frame t are rows t * cells ... (t + 1) * cells.
  flat = ws.reshape(cells, num_frames, *ws.shape[3:]).swapaxes(0, 1)
  flat = flat.reshape(num_frames * cells, *ws.shape[3:])
  frames_per_call = max(1, batch_size // cells)
  for start in range(0, num_frames, frames_per_call):
    stop = min(start + frames_per_call, num_frames)
    images = render.to_uint8(render.render_ws(
        module, variables, flat[start * cells:stop * cells],
        batch_size=frames_per_call * cells))
    for t in range(stop - start):
      yield layout_grid(images[t * cells:(t + 1) * cells], (grid_w, grid_h))
