"""Renders images from an sg3jax checkpoint, a run directory or an official
.pkl.

    sg3jax generate --network=CKPT --seeds=0-3,7 --trunc=0.7 \\
        --translate=0.1,-0.05 --rotate=12 --outdir=out/images

Latents are drawn as the official gen_images.py draws them
(`np.random.RandomState(seed).randn(1, z_dim)`), so a seed gives the image
the official code gives for the same weights. Uses G_ema when present.
"""

import functools
import pathlib
import sys
from collections.abc import Sequence

from absl import flags
import flax
import jax
import numpy as np

from sg3jax import analysis
from sg3jax.cli import command
from sg3jax.cli import common
from sg3jax.networks import make_transform
from sg3jax.networks import synthesis_network
from sg3jax.training import checkpoints

# Flags of this command only (the sg3jax script imports several commands).
FLAGS = flags.FlagValues()
_NETWORK = common.define_network_flag(FLAGS)
_LATENT = common.define_latent_flags(FLAGS, seeds="0-3")
_TRANSLATE = flags.DEFINE_string("translate", "0,0", "translate XY, 'x,y'",
                                 flag_values=FLAGS)
_ROTATE = flags.DEFINE_float("rotate", 0.0, "rotation angle in degrees",
                             flag_values=FLAGS)
_OUTDIR = flags.DEFINE_string("outdir", "out/images", "where to write PNGs",
                              flag_values=FLAGS)
_PROJECTED_W = flags.DEFINE_string(
    "projected-w", None, "render the ws of a projected_w.npz (sg3jax "
    "project) as proj00.png, ... instead of seeds", flag_values=FLAGS)


def with_transform(variables: dict, translate: tuple[float, float],
                   rotate: float) -> dict:
  """Variables whose input transform moves the output as gen_images does."""
  transform = np.linalg.inv(make_transform(translate, rotate))
  buffers = flax.core.unfreeze(variables["buffers"])
  buffers["synthesis"]["input"]["transform"] = np.asarray(transform,
                                                          np.float32)
  return {**variables, "buffers": buffers}


def generate_images(module, variables: dict, seeds: Sequence[int], *,
                    truncation_psi: float = 1.0,
                    class_idx: int | None = None,
                    translate: tuple[float, float] = (0.0, 0.0),
                    rotate: float = 0.0) -> np.ndarray:
  """uint8 images `[len(seeds), H, W, C]` as gen_images.py writes them."""
  c = analysis.class_labels(module.c_dim, 1, class_idx)
  if translate != (0.0, 0.0) or rotate != 0.0:
    variables = with_transform(variables, translate, rotate)
  render = jax.jit(functools.partial(module.apply,
                                     truncation_psi=truncation_psi))
  images = []
  for seed in seeds:
    z = np.random.RandomState(seed).randn(1, module.z_dim).astype(np.float32)
    img = np.asarray(render(variables, z, c))[0]
    images.append(np.clip(img * 127.5 + 128, 0, 255).astype(np.uint8))
  return np.stack(images)


def projected_images(module, variables: dict,
                     path: str | pathlib.Path) -> np.ndarray:
  """uint8 images `[N, H, W, C]` of the ws `[N, num_ws, w_dim]` stored as
  `w` in a projected_w.npz (official generate.py --projected-w)."""
  with np.load(path) as npz:
    if "w" not in npz:
      raise ValueError(f"projected-w: {path} has no 'w' array")
    ws = npz["w"]
  expected = (synthesis_network(module).num_ws, module.w_dim)
  if ws.ndim != 3 or ws.shape[1:] != expected:
    raise ValueError(f"projected-w: expected w [N, {expected[0]}, "
                     f"{expected[1]}] in {path}, got {ws.shape}")
  render = jax.jit(functools.partial(module.apply, method=module.synthesize))
  return np.concatenate([analysis.to_uint8(render(variables, w[None]))
                         for w in ws])


def write_pngs(images: np.ndarray, names: Sequence[str],
               outdir: str | pathlib.Path) -> list[pathlib.Path]:
  """`outdir/<name>.png` for each image."""
  return [common.write_png(image, pathlib.Path(outdir) / f"{name}.png")
          for image, name in zip(images, names)]


def main(argv: list[str]) -> None:
  del argv
  try:
    module, variables = checkpoints.load_generator(_NETWORK.value)
  except ValueError as e:
    sys.exit(str(e))
  if _PROJECTED_W.value is not None:
    images = projected_images(module, variables, _PROJECTED_W.value)
    names = [f"proj{i:02d}" for i in range(len(images))]
  else:
    seeds = _LATENT.seed_list()
    images = generate_images(module, variables, seeds,
                             truncation_psi=_LATENT.trunc.value,
                             class_idx=_LATENT.class_idx.value,
                             translate=common.parse_vec2(_TRANSLATE.value),
                             rotate=_ROTATE.value)
    names = [f"seed{seed:04d}" for seed in seeds]
  for path in write_pngs(images, names, _OUTDIR.value):
    print(f"wrote {path}")


def run(argv: list[str]) -> None:
  command.run(FLAGS, main, argv)


if __name__ == "__main__":
  run(sys.argv)
