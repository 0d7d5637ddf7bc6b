"""Image resolutions: a square `int` or a non-square `(H, W)`.

A network's `img_resolution` and a config's `resolution` are either one
int (square, exactly as before: official pickles, kwargs and checkpoints)
or a tuple `(H, W)` with H != W. A non-square resolution has

* a short side S = min(H, W) that is a power of two >= 4 (the StyleGAN2
  blocks halve it down to 4; StyleGAN3's sampling rates are powers of two
  up to S), and
* a long side that is a multiple of S / 4, so that the aspect ratio
  long / S is a multiple of 1/4 (2, 4, 3/2, 5/4, ...): the StyleGAN2 4x4
  base block becomes 4 x (4 long / S), and every StyleGAN3 sampling rate
  (>= 4) scales to whole pixels along the long axis.

`parse_resolution` turns "256", "256x512", 256, (256, 512) or [256, 512]
into that form (a square "64x64" becomes 64).
"""

import numbers
from typing import Any

Resolution = int | tuple[int, int]


def _is_power_of_two(n: int) -> bool:
  return n >= 1 and n & (n - 1) == 0


def parse_resolution(value: Any, *, what: str = "resolution") -> Resolution:
  """An int (square) or `(H, W)` (non-square) from a config or kwargs value.

  Args:
    value: an int, "N", "HxW", or a pair (H, W) (a JSON list too).
    what: the name in error messages.

  Returns:
    `N` for a square resolution, else `(H, W)`.

  Raises:
    ValueError: naming `value` if it is not N or HxW, or if a non-square
      short side is not a power of two >= 4 or the long side is not a
      multiple of a quarter of the short side.
  """
  if isinstance(value, bool):
    raise ValueError(f"{what}: expected N or HxW, got {value!r}")
  if isinstance(value, numbers.Integral):
    return int(value)
  if isinstance(value, str):
    parts = value.lower().split("x")
    if not all(p.strip().isdigit() for p in parts) or len(parts) not in (1, 2):
      raise ValueError(f"{what}: expected N or HxW (e.g. '256x512'), got "
                       f"{value!r}")
    sizes = tuple(int(p) for p in parts)
  elif isinstance(value, (tuple, list)) and len(value) == 2 and all(
      isinstance(v, numbers.Integral) and not isinstance(v, bool)
      for v in value):
    sizes = tuple(int(v) for v in value)
  else:
    raise ValueError(f"{what}: expected N or HxW, got {value!r}")
  if len(sizes) == 1 or sizes[0] == sizes[1]:
    return sizes[0]
  h, w = sizes
  short, long = min(h, w), max(h, w)
  if short < 4 or not _is_power_of_two(short):
    raise ValueError(f"{what}: the short side of {h}x{w} must be a power of "
                     f"two >= 4, got {short}")
  if (long * 4) % short:
    raise ValueError(f"{what}: the long side of {h}x{w} must be a multiple "
                     f"of {short // 4} (a quarter of the short side), got "
                     f"{long}")
  return (h, w)


def image_shape(resolution: Resolution) -> tuple[int, int]:
  """`(H, W)` of a resolution."""
  if isinstance(resolution, int):
    return (resolution, resolution)
  return tuple(resolution)


def short_side(resolution: Resolution) -> int:
  """S = min(H, W): the size the official square code calls resolution."""
  return min(image_shape(resolution))


def aspect(resolution: Resolution) -> tuple[float, float]:
  """`(H / S, W / S)`: (1, 1) for a square, e.g. (1, 2) for 32x64."""
  h, w = image_shape(resolution)
  s = min(h, w)
  return (h / s, w / s)


def scaled_shape(resolution: Resolution, size: int) -> Resolution:
  """The canvas of `size` (along the short side) at `resolution`'s aspect:
  `size` for a square, else `(size H / S, size W / S)`, whole pixels for
  any `size` that is a multiple of 4 (see the module docstring)."""
  if isinstance(resolution, int):
    return size
  h, w = image_shape(resolution)
  s = min(h, w)
  return (size * h // s, size * w // s)


def crop_size(height: int, width: int, out_height: int, out_width: int
              ) -> tuple[int, int]:
  """(h, w): the largest region of a height x width image with the aspect
  out_width / out_height (the square min(height, width) for a square
  output), for a centre crop before resizing."""
  if width * out_height >= height * out_width:  # wider than the output
    return height, height * out_width // out_height
  return width * out_height // out_width, width


def format_resolution(resolution: Resolution) -> str:
  """"N" for a square, "HxW" otherwise (file names, messages)."""
  if isinstance(resolution, int):
    return str(resolution)
  return f"{resolution[0]}x{resolution[1]}"
