"""The embedded demo dataset: soft-edged coloured shapes, drawn procedurally.

Each image shows one disc, square or ring (its class) in a saturated colour,
lit from the top left, on a dim two-colour linear gradient. Every random
parameter is drawn in image units from a fixed seed, independently of the
resolution, so `demo:16` shows the same shapes as `demo:64` at a lower
sampling rate (with edges no sharper than about a pixel). Nothing is
downloaded or written: `open_dataset("demo:32")` draws the images in memory
(about a second at 64² on 2 cores).

Non-square (`demo:32x64`, see `sg3jax.resolution`): the unit is the short
side; the canvas extends symmetrically along the long axis, the shapes'
centres spread over it (a centre's offset from the middle scales with the
aspect ratio); shapes and the background gradient keep their size per
unit, so shapes stay round.
"""

import numpy as np

from sg3jax.resolution import aspect
from sg3jax.resolution import image_shape
from sg3jax.resolution import parse_resolution
from sg3jax.resolution import Resolution

CLASS_NAMES = ("disc", "square", "ring")
DEFAULT_RESOLUTION = 32
NUM_IMAGES = 2000
SEED = 0
MIN_RESOLUTION = 8
MAX_RESOLUTION = 128
_CHUNK = 256  # images drawn at once (bounds the float32 temporaries)


def _hsv_to_rgb(h: np.ndarray, s: np.ndarray, v: np.ndarray) -> np.ndarray:
  """Vectorised HSV → RGB, all in [0, 1]: `[N]` ×3 → `[N, 3]`."""
  k = np.stack([(5 + h * 6) % 6, (3 + h * 6) % 6, (1 + h * 6) % 6], axis=-1)
  ramp = np.clip(np.minimum(k, 4 - k), 0, 1)
  return v[:, None] * (1 - s[:, None] * ramp)


def draw_parameters(num_images: int = NUM_IMAGES,
                    seed: int = SEED) -> dict[str, np.ndarray]:
  """The parameters behind each demo image, in image units ([0, 1]²).

  Returns:
    `classes` int `[N]` (0 disc, 1 square, 2 ring); `center` `[N, 2]` (x,
    y); `radius` `[N]` (of the disc and the ring's outside; a square's half
    side is 0.87 radius); `angle` `[N]` (square rotation, radians);
    `thickness` `[N]` (ring width / radius); `color` `[N, 3]` (RGB in [0, 1],
    before the lighting); `bg_angle` `[N]`, `bg_from`, `bg_to` `[N, 3]` (the
    background gradient).
  """
  rng = np.random.default_rng(seed)
  n = num_images
  return {
      # Balanced classes in random order.
      "classes": rng.permutation(np.arange(n) % len(CLASS_NAMES)),
      "center": rng.uniform(0.3, 0.7, (n, 2)),
      "radius": rng.uniform(0.17, 0.3, n),
      "angle": rng.uniform(0, np.pi / 2, n),  # square rotation
      "thickness": rng.uniform(0.35, 0.5, n),  # ring width / radius
      "color": _hsv_to_rgb(rng.uniform(0, 1, n), rng.uniform(0.6, 1.0, n),
                           rng.uniform(0.8, 1.0, n)),
      "bg_angle": rng.uniform(0, 2 * np.pi, n),
      "bg_from": _hsv_to_rgb(rng.uniform(0, 1, n), rng.uniform(0.2, 0.6, n),
                             rng.uniform(0.1, 0.3, n)),
      "bg_to": _hsv_to_rgb(rng.uniform(0, 1, n), rng.uniform(0.2, 0.6, n),
                           rng.uniform(0.35, 0.6, n)),
  }


def _axis(n: int, unit: int, stretch: float) -> np.ndarray:
  """Pixel centres `[n]` along an axis of `n` pixels, in units of `unit`
  pixels, centred on 0.5 (a square's [0, 1] when n == unit)."""
  coords = (np.arange(n, dtype=np.float32) + 0.5) / unit
  if stretch != 1:
    coords = coords - np.float32((stretch - 1) / 2)
  return coords


def _spread(centres: np.ndarray, stretch: float) -> np.ndarray:
  """Shape centres `[N]` spread along an axis `stretch` times the unit."""
  return centres if stretch == 1 else 0.5 + (centres - 0.5) * stretch


def _render(p: dict[str, np.ndarray], resolution: Resolution) -> np.ndarray:
  """Draws the images of parameters `p`: float32 `[N, H, W, 3]` in [0, 1]."""
  height, width = image_shape(resolution)
  unit = min(height, width)
  stretch_y, stretch_x = aspect(resolution)
  x = _axis(width, unit, stretch_x)[None, None, :]  # [1, 1, W]
  y = _axis(height, unit, stretch_y)[None, :, None]  # [1, H, 1]
  f32 = lambda a: np.asarray(a, np.float32)[:, None, None]  # [N] → [N, 1, 1]
  # [N, 3] → [N, 1, 1, 3]
  rgb = lambda a: np.asarray(a, np.float32)[:, None, None, :]

  # Background: linear gradient across the image along bg_angle.
  ux, uy = f32(np.cos(p["bg_angle"])), f32(np.sin(p["bg_angle"]))
  t = np.clip(0.5 + (x - 0.5) * ux + (y - 0.5) * uy, 0, 1)[..., None]
  background = rgb(p["bg_from"]) + (rgb(p["bg_to"]) - rgb(p["bg_from"])) * t

  # Signed distance to each image's shape (negative inside), image units.
  dx = x - f32(_spread(p["center"][:, 0], stretch_x))
  dy = y - f32(_spread(p["center"][:, 1], stretch_y))
  radius = f32(p["radius"])
  dist = np.sqrt(dx * dx + dy * dy)
  cos, sin = f32(np.cos(p["angle"])), f32(np.sin(p["angle"]))
  # Half side 0.87 r: about the disc's area, so classes differ by shape.
  square = np.maximum(np.abs(dx * cos + dy * sin),
                      np.abs(dy * cos - dx * sin)) - 0.87 * radius
  width = f32(p["thickness"]) * radius
  ring = np.abs(dist - (radius - width / 2)) - width / 2
  cls = f32(p["classes"])
  sdf = np.where(cls == 0, dist - radius, np.where(cls == 1, square, ring))

  # Soft edge: a linear ramp about 3.5% of the image wide (never under 1.25
  # pixels, which anti-aliases the smallest resolutions).
  edge = max(0.035, 1.25 / unit)
  alpha = np.clip(0.5 - sdf / edge, 0, 1)[..., None]
  # Lit from the top left: brighter towards (-1, -1), darker away from it.
  shade = np.clip(1 - 0.35 * (dx + dy) / radius, 0.55, 1.3)[..., None]
  color = np.clip(rgb(p["color"]) * shade, 0, 1)
  return background * (1 - alpha) + color * alpha


def demo_images(resolution: Resolution = DEFAULT_RESOLUTION, *,
                num_images: int = NUM_IMAGES,
                seed: int = SEED) -> tuple[np.ndarray, np.ndarray]:
  """The demo images and their shape classes (0 disc, 1 square, 2 ring).

  Args:
    resolution: image size R, a power of two in [8, 128], or a non-square
      (H, W) whose sides are in [8, 128] (`sg3jax.resolution`).
    num_images: how many images N.
    seed: the random seed of the parameters (the dataset is deterministic).

  Returns:
    images: uint8 `[N, R, R, 3]` (`[N, H, W, 3]`).
    classes: int64 `[N]`, balanced over `CLASS_NAMES`.
  """
  shape = image_shape(parse_resolution(resolution))
  if (not all(MIN_RESOLUTION <= n <= MAX_RESOLUTION for n in shape)
      or min(shape) & (min(shape) - 1)):
    raise ValueError(
        f"resolution: expected a power of two in [{MIN_RESOLUTION}, "
        f"{MAX_RESOLUTION}] (or HxW with sides in that range) for the demo "
        f"dataset, got {resolution}")
  if num_images < 1:
    raise ValueError(f"num_images: expected >= 1, got {num_images}")
  params = draw_parameters(num_images, seed)
  images = np.empty((num_images, *shape, 3), np.uint8)
  for start in range(0, num_images, _CHUNK):
    chunk = {k: v[start:start + _CHUNK] for k, v in params.items()}
    images[start:start + _CHUNK] = np.round(_render(chunk, resolution) * 255)
  return images, params["classes"].astype(np.int64)
