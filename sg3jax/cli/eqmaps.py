"""Equivariance error maps of a generator, side by side.

    sg3jax eqmaps --network=CKPT_OR_PKL --seeds=0-2 --kind=frac \\
        --translate=0.125,0.0625 --outdir=out/eqmaps
    sg3jax eqmaps --network=CKPT_OR_PKL --kind=rot --rotate=30

Writes `eqmaps.png`, one row per seed: the image; the image rendered with
the input translated by `--translate` (fractions of the image size; whole
pixels for `--kind=int`) or rotated by `--rotate` degrees (`--kind=rot`)
through the input transform; that output moved back by the official
image operators (integer, Lanczos or band-limited rotation); and
|difference| from the image (band-limited alike for rotations) under the
operators' mask (grey outside). Each row's label gives the official EQ
PSNR of that sample and transform (see sg3jax.metrics.equivariance).
"""

import sys

from absl import flags
import numpy as np

from sg3jax import analysis
from sg3jax.analysis import figures
from sg3jax.cli import common
from sg3jax.cli import command
from sg3jax.resolution import Resolution
from sg3jax.resolution import short_side
from sg3jax.training import checkpoints

# Flags of this command only (the sg3jax script imports several commands).
FLAGS = flags.FlagValues()
_NETWORK = common.define_network_flag(FLAGS)
_LATENT = common.define_latent_flags(FLAGS, seeds="0-2",
                                     seeds_help="seeds (one row each)")
_KIND = flags.DEFINE_enum("kind", "frac", analysis.eqmaps.KINDS,
                          "int / frac translation, or rot", flag_values=FLAGS)
_TRANSLATE = flags.DEFINE_string("translate", "0.125,0.0625",
                                 "translation 'x,y' (fractions of the image)",
                                 flag_values=FLAGS)
_ROTATE = flags.DEFINE_float("rotate", 30.0, "rotation in degrees (rot)",
                             flag_values=FLAGS)
_OUTDIR = flags.DEFINE_string("outdir", "out/eqmaps",
                              "where to write the PNG", flag_values=FLAGS)


def transform_value(kind: str, translate: tuple[float, float],
                    rotate_deg: float, img_resolution: Resolution
                    ) -> np.ndarray:
  """The metric's value: t (rounded to whole pixels of the short side for
  'int', see `equivariance.sample_transform`) or radians."""
  if kind == "rot":
    return np.float32(np.deg2rad(rotate_deg))
  t = np.asarray(translate, np.float64)
  if kind == "int":
    res = short_side(img_resolution)
    t = np.round(t * res) / res
  return t.astype(np.float32)


def error_maps(module, variables: dict, seeds: list[int], kind: str,
               value: np.ndarray, *, truncation_psi: float = 1.0,
               class_idx: int | None = None
               ) -> tuple[dict[str, np.ndarray], np.ndarray]:
  """(`equivariance_maps` of the seeds as NumPy, official PSNRs `[N]`)."""
  ws = analysis.seed_ws(module, variables, seeds,
                       truncation_psi=truncation_psi, class_idx=class_idx)
  maps = analysis.equivariance_maps(module, variables, ws, kind, value)
  psnrs = analysis.official_psnr(module, variables, ws, kind, value)
  return ({k: np.asarray(v) for k, v in maps.items()},
          np.asarray(psnrs))


def main(argv: list[str]) -> None:
  del argv
  module, variables = checkpoints.load_generator(_NETWORK.value)
  seeds = _LATENT.seed_list()
  kind = _KIND.value
  value = transform_value(kind, common.parse_vec2(_TRANSLATE.value),
                          _ROTATE.value, module.img_resolution)
  maps, psnrs = error_maps(module, variables, seeds, kind, value,
                           truncation_psi=_LATENT.trunc.value,
                           class_idx=_LATENT.class_idx.value)
  if kind == "rot":
    moved = f"input rotated by {_ROTATE.value:g}\u00b0"
  else:
    moved = f"input translated by ({value[0]:g}, {value[1]:g})"
  columns = ("image", moved, "output moved back", "|difference| (masked)")
  rows = [{k: maps[k][i] for k in ("original", "transformed", "back",
                                   "error")} for i in range(len(seeds))]
  titles = [f"seed {s}\nEQ PSNR {p:.1f} dB" for s, p in zip(seeds, psnrs)]
  path = figures.save_figure(figures.equivariance_figure(rows, titles,
                                                         columns),
                             f"{_OUTDIR.value}/eqmaps.png")
  print(f"wrote {path}")
  for s, p in zip(seeds, psnrs):
    print(f"seed {s}: EQ-{kind} PSNR {p:.2f} dB")


def run(argv: list[str]) -> None:
  command.run(FLAGS, main, argv)


if __name__ == "__main__":
  run(sys.argv)
