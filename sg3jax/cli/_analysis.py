"""What the analysis commands share: the --network flag and the PNG writer.

The commands (sticking, eqmaps, spectrum, internals, video) all take
`--network`, read by `sg3jax.checkpoint.load_generator`: an sg3jax
checkpoint, a training run directory or an official .pkl (read safely,
never executed); G_ema when present, else G.
"""

import pathlib

from absl import flags
import numpy as np
from PIL import Image

from sg3jax.cli import generate


def define_network_flag(flag_values: flags.FlagValues) -> flags.FlagHolder:
  return flags.DEFINE_string(
      "network", None, "sg3jax checkpoint, run directory or official .pkl",
      required=True, flag_values=flag_values)


def parse_ints(text: str, name: str) -> list[int]:
  """'0,3-5' -> [0, 3, 4, 5]; a ValueError names the flag `name`."""
  try:
    return generate.parse_range(text)
  except ValueError:
    raise ValueError(f"{name}: expected e.g. '0,1,4-6', got {text!r}"
                     ) from None


def zoom(image: np.ndarray, factor: int) -> np.ndarray:
  """`[H, W, C]` -> `[factor H, factor W, C]`, each pixel a square."""
  if factor < 1:
    raise ValueError(f"zoom: expected >= 1, got {factor}")
  return np.repeat(np.repeat(image, factor, axis=0), factor, axis=1)


def output_path(outdir: str | pathlib.Path, name: str) -> pathlib.Path:
  """`outdir / name`, creating `outdir`."""
  outdir = pathlib.Path(outdir)
  outdir.mkdir(parents=True, exist_ok=True)
  return outdir / name


def write_png(image: np.ndarray, path: str | pathlib.Path) -> pathlib.Path:
  """Writes uint8 `[H, W, C]` (C = 1 as greyscale) to `path`."""
  path = pathlib.Path(path)
  path.parent.mkdir(parents=True, exist_ok=True)
  Image.fromarray(image[..., 0] if image.shape[-1] == 1 else image).save(path)
  return path
