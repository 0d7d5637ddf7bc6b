"""Texture sticking figures (paper Fig. 1) of a generator.

    sg3jax sticking --network=CKPT_OR_PKL --seed=0 --outdir=out/sticking

Writes two PNGs (pixels as rendered, each pixel a `--zoom` square):
* `sticking_average.png`: the image of `--seed` and, to its right, the
  average of `--num` images whose latents are `--radius`-sized Gaussian
  perturbations of its z. Uniformly blurry = details move with the
  content; sharp details = texture sticking.
* `sticking_strip.png`: the vertical segment `--rows` of pixel column
  `--column` of every frame of a looping w-space interpolation through
  the seeds `--interp_seeds` (default: the seed and the next),
  `--frames_per_transition` frames a step, stacked left to right.
  Slanted, changing patterns = details move; horizontal streaks =
  sticking.
"""

import sys

from absl import flags
import numpy as np

from sg3jax import analysis
from sg3jax.cli import common
from sg3jax.cli import command
from sg3jax.resolution import image_shape
from sg3jax.training import checkpoints

# Flags of this command only (the sg3jax script imports several commands).
FLAGS = flags.FlagValues()
_NETWORK = common.define_network_flag(FLAGS)
_SEED = flags.DEFINE_integer("seed", 0, "seed of the central latent",
                             flag_values=FLAGS)
_LATENT = common.define_latent_flags(FLAGS)
_NUM = flags.DEFINE_integer("num", 64, "images averaged (incl. the centre)",
                            lower_bound=1, flag_values=FLAGS)
_RADIUS = flags.DEFINE_float("radius", 0.25, "std of the z perturbations",
                             lower_bound=0, flag_values=FLAGS)
_INTERP_SEEDS = flags.DEFINE_string(
    "interp_seeds", None, "keyframe seeds of the strip's interpolation "
    "(default: seed, seed+1)", flag_values=FLAGS)
_FRAMES = flags.DEFINE_integer("frames_per_transition", 64,
                               "strip frames from one keyframe to the next",
                               lower_bound=1, flag_values=FLAGS)
_COLUMN = flags.DEFINE_integer("column", None,
                               "pixel column of the strip (default: middle)",
                               flag_values=FLAGS)
_ROWS = flags.DEFINE_string("rows", None, "strip rows 'start:stop' "
                            "(default: the middle half)", flag_values=FLAGS)
_ZOOM = flags.DEFINE_integer("zoom", 1, "PNG pixels per image pixel",
                             lower_bound=1, flag_values=FLAGS)
_BATCH = flags.DEFINE_integer("batch", 8, "images per generator call",
                              lower_bound=1, flag_values=FLAGS)
_OUTDIR = flags.DEFINE_string("outdir", "out/sticking",
                              "where to write the PNGs", flag_values=FLAGS)


def parse_rows(text: str) -> tuple[int, int]:
  """'8:24' -> (8, 24)."""
  parts = text.split(":")
  try:
    start, stop = (int(p) for p in parts)
  except ValueError:
    raise ValueError(f"rows: expected 'start:stop', got {text!r}") from None
  return start, stop


def sticking_images(module, variables: dict, seed: int, *,
                    truncation_psi: float = 1.0,
                    class_idx: int | None = None, num: int = 64,
                    radius: float = 0.25,
                    interp_seeds: list[int] | None = None,
                    frames_per_transition: int = 64,
                    column: int | None = None,
                    rows: tuple[int, int] | None = None,
                    batch_size: int = 8) -> tuple[np.ndarray, np.ndarray]:
  """(centre | average `[H, 2W, C]`, strip `[rows, T, C]`), uint8."""
  height, width = image_shape(module.img_resolution)
  column = width // 2 if column is None else column
  rows = analysis.default_segment(height) if rows is None else rows
  interp_seeds = [seed, seed + 1] if interp_seeds is None else interp_seeds

  z = analysis.seed_latents([seed], module.z_dim)[0]
  zs = analysis.neighbourhood_latents(z, num, radius=radius, seed=seed)
  c = analysis.class_labels(module.c_dim, num, class_idx)
  ws = analysis.map_latents(variables, zs, c, module=module,
                            truncation_psi=truncation_psi)
  images = analysis.render_ws(module, variables, ws, batch_size=batch_size)
  average = analysis.to_uint8(analysis.average_image(images))
  pair = np.concatenate([analysis.to_uint8(images[0]), average], axis=1)

  keyframes = analysis.seed_ws(module, variables, interp_seeds,
                              truncation_psi=truncation_psi,
                              class_idx=class_idx)
  curve = analysis.interpolate_loop(np.asarray(keyframes),
                                    frames_per_transition)
  frames = analysis.render_ws(module, variables, curve, batch_size=batch_size)
  strip = analysis.pixel_strip(analysis.to_uint8(frames), column=column,
                               rows=rows)
  return pair, strip


def main(argv: list[str]) -> None:
  del argv
  module, variables = checkpoints.load_generator(_NETWORK.value)
  interp_seeds = _INTERP_SEEDS.value
  if interp_seeds is not None:
    interp_seeds = common.parse_ints(interp_seeds, "interp_seeds")
  pair, strip = sticking_images(
      module, variables, _SEED.value, truncation_psi=_LATENT.trunc.value,
      class_idx=_LATENT.class_idx.value, num=_NUM.value, radius=_RADIUS.value,
      interp_seeds=interp_seeds,
      frames_per_transition=_FRAMES.value, column=_COLUMN.value,
      rows=None if _ROWS.value is None else parse_rows(_ROWS.value),
      batch_size=_BATCH.value)
  for name, image in (("sticking_average.png", pair),
                      ("sticking_strip.png", strip)):
    path = common.write_png(common.zoom(image, _ZOOM.value),
                               f"{_OUTDIR.value}/{name}")
    print(f"wrote {path}")


def run(argv: list[str]) -> None:
  command.run(FLAGS, main, argv)


if __name__ == "__main__":
  run(sys.argv)
