"""What the analysis commands share: the generator and the PNG writer.

The commands (sticking, eqmaps, spectrum, internals, video) all take
`--network`: an sg3jax network checkpoint directory or an official
`network-snapshot-*.pkl` / `stylegan3-*.pkl` (read safely, never
executed). They use G_ema when present, else G.
"""

import pathlib

from absl import flags
import numpy as np
from PIL import Image

from sg3jax import checkpoint
from sg3jax.cli import generate
from sg3jax.networks import Generator


def define_network_flag(flag_values: flags.FlagValues) -> flags.FlagHolder:
  return flags.DEFINE_string(
      "network", None, "sg3jax network checkpoint directory or official .pkl",
      required=True, flag_values=flag_values)


def load_generator(path: str | pathlib.Path) -> tuple[Generator, dict]:
  """(module, variables) of G_ema (else G) of a checkpoint or a .pkl."""
  path = pathlib.Path(path)
  if path.suffix == ".pkl":
    # Imported here: only .pkl sources need the pickle reader.
    from sg3jax import convert  # pylint: disable=g-import-not-at-top
    loaded = convert.load_official_pickle(path)
    networks = {name: loaded[name] for name in ("G_ema", "G")
                if loaded[name] is not None}
  else:
    networks = checkpoint.load_networks(path)
  name = "G_ema" if "G_ema" in networks else "G"
  if name not in networks:
    raise ValueError(f"network: expected a G or G_ema in {path}, got "
                     f"{sorted(networks)}")
  module, variables = networks[name]
  if not isinstance(module, Generator):
    raise ValueError(f"network: expected {name} to be a Generator, got "
                     f"{type(module).__name__}")
  return module, variables


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
