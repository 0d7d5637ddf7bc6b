"""What the commands share: the --network flag, the latent flags (--seeds,
--trunc, --class) with their seeds -> ws step, value parsing and PNGs.

`--network` is read by `sg3jax.training.checkpoints.load_generator`: an
sg3jax checkpoint, a training run directory (its newest readable step) or
an official .pkl (read safely, never executed); G_ema when present, else
G.
"""

import dataclasses
import pathlib
import re

from absl import flags
import numpy as np
from PIL import Image



def define_network_flag(flag_values: flags.FlagValues) -> flags.FlagHolder:
  return flags.DEFINE_string(
      "network", None, "sg3jax checkpoint, run directory or official .pkl",
      required=True, flag_values=flag_values)


@dataclasses.dataclass(frozen=True)
class LatentFlags:
  """A command's --seeds (None where it takes one --seed), --trunc and
  --class."""
  seeds: flags.FlagHolder | None
  trunc: flags.FlagHolder
  class_idx: flags.FlagHolder

  def seed_list(self) -> list[int]:
    return parse_ints(self.seeds.value, "seeds")


def define_latent_flags(flag_values: flags.FlagValues, *,
                        seeds: str | None = None,
                        seeds_help: str = "seeds, e.g. '0,1,4-6'"
                        ) -> LatentFlags:
  """Defines --trunc, --class and, given its default `seeds`, --seeds."""
  seeds_flag = None if seeds is None else flags.DEFINE_string(
      "seeds", seeds, seeds_help, flag_values=flag_values)
  return LatentFlags(
      seeds=seeds_flag,
      trunc=flags.DEFINE_float("trunc", 1.0, "truncation psi",
                               flag_values=flag_values),
      class_idx=flags.DEFINE_integer("class", None,
                                     "class label (conditional G)",
                                     flag_values=flag_values))


def parse_ints(text: str, name: str) -> list[int]:
  """'0,3-5' -> [0, 3, 4, 5]; a ValueError names the flag `name`."""
  values = []
  for part in text.split(","):
    match = re.fullmatch(r"\s*(-?\d+)\s*(?:-\s*(-?\d+)\s*)?", part)
    if match is None:
      raise ValueError(f"{name}: expected e.g. '0,1,4-6', got {text!r}")
    start, stop = int(match[1]), int(match[2] or match[1])
    values.extend(range(start, stop + 1))
  return values


def parse_vec2(text: str, name: str = "translate") -> tuple[float, float]:
  """'0.1,-0.2' -> (0.1, -0.2); a ValueError names the flag `name`."""
  parts = text.split(",")
  try:
    if len(parts) != 2:
      raise ValueError
    return float(parts[0]), float(parts[1])
  except ValueError:
    raise ValueError(f"{name}: expected 'x,y', got {text!r}") from None


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
