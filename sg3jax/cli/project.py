"""Projects target images into a generator's W space (StyleGAN2-ADA's
projector.py; see sg3jax.projector).

    sg3jax project --network=CKPT_OR_PKL --target=img.png \\
        --vgg16=vgg16.npz --outdir=out/proj [--num-steps=1000] [--seed=303]

Each target is center-cropped to a square and resized (Lanczos) to the
generator's resolution, as official. Writes `target.png`, `proj.png` (the
last step's render), `projected_w.npz` (`w` `[1, num_ws, w_dim]`, read by
`sg3jax generate --projected-w`) and, with `--save-video` (the default),
`proj.mp4`: target and render side by side at every step. Several
comma-separated targets are projected together (one batch, independent
runs), each into `outdir/<file stem>/`. `--vgg16` is NVIDIA's vgg16.pkl
or vgg16.pt, or its state dict as .npz (see sg3jax.metrics.vgg16). Flags keep the official
spelling (`--num-steps`, `--save-video`).
"""

import pathlib
import sys

from absl import flags
import numpy as np
from PIL import Image
import tqdm

from sg3jax import projector
from sg3jax.cli import common
from sg3jax.cli import command
from sg3jax.cli import video
from sg3jax.metrics import vgg16
from sg3jax.networks import synthesis_network
from sg3jax.resolution import crop_size
from sg3jax.resolution import image_shape
from sg3jax.resolution import Resolution
from sg3jax.training import checkpoints

# Flags of this command only (the sg3jax script imports several commands).
FLAGS = flags.FlagValues()
_NETWORK = common.define_network_flag(FLAGS)
_TARGET = flags.DEFINE_list("target", None, "target image file(s)",
                            required=True, flag_values=FLAGS)
_VGG16 = flags.DEFINE_string("vgg16", None, "VGG16 LPIPS weights (vgg16.pkl,"
                             " vgg16.pt or an .npz of its state dict)",
                             required=True,
                             flag_values=FLAGS)
_OUTDIR = flags.DEFINE_string("outdir", "out/projection", "where to write",
                              flag_values=FLAGS)
_NUM_STEPS = flags.DEFINE_integer("num-steps", 1000, "optimisation steps",
                                  lower_bound=1, flag_values=FLAGS)
_SEED = flags.DEFINE_integer("seed", 303, "random seed", flag_values=FLAGS)
_CLASS = flags.DEFINE_integer("class", None, "class label (conditional G)",
                              flag_values=FLAGS)
_SAVE_VIDEO = flags.DEFINE_bool("save-video", True, "write proj.mp4",
                                flag_values=FLAGS)


def load_target(path: str | pathlib.Path, resolution: Resolution,
                channels: int) -> np.ndarray:
  """uint8 `[H, W, channels]` ((H, W) = `resolution`, an int for a
  square): the image center-cropped to the largest region of aspect W / H
  and Lanczos-resized, as the official run_projection does for squares."""
  try:
    image = Image.open(path)
  except (OSError, ValueError) as e:
    raise ValueError(f"target: cannot read {path}: {e}") from None
  with image:
    image = image.convert("RGB" if channels == 3 else "L")
  out_h, out_w = image_shape(resolution)
  w, h = image.size
  crop_h, crop_w = crop_size(h, w, out_h, out_w)
  image = image.crop(((w - crop_w) // 2, (h - crop_h) // 2,
                      (w + crop_w) // 2, (h + crop_h) // 2))
  image = image.resize((out_w, out_h), Image.LANCZOS)
  return np.asarray(image, np.uint8).reshape(out_h, out_w, channels)


def output_dirs(targets: list[str], outdir: str) -> list[pathlib.Path]:
  """`outdir` for one target, else `outdir/<stem>` for each."""
  outdir = pathlib.Path(outdir)
  if len(targets) == 1:
    return [outdir]
  stems = [pathlib.Path(t).stem for t in targets]
  if len(set(stems)) != len(stems):
    raise ValueError(f"target: expected distinct file names, got {targets}")
  return [outdir / stem for stem in stems]


def main(argv: list[str]) -> None:
  del argv
  module, variables = checkpoints.load_generator(_NETWORK.value)
  vgg, vgg_variables = vgg16.load_vgg16(_VGG16.value)
  dirs = output_dirs(_TARGET.value, _OUTDIR.value)
  targets = np.stack([load_target(t, module.img_resolution,
                                  module.img_channels)
                      for t in _TARGET.value])
  schedule = projector.Schedule(num_steps=_NUM_STEPS.value)
  with tqdm.tqdm(total=schedule.num_steps, desc="project") as bar:
    def progress(step, dist):
      del step
      bar.set_postfix(dist=f"{float(np.max(dist)):.4f}")
      bar.update()
    result = projector.project(module, variables, targets, vgg,
                               vgg_variables, schedule=schedule,
                               seed=_SEED.value, class_idx=_CLASS.value,
                               callback=progress)
  num_ws = synthesis_network(module).num_ws
  for i, (target, outdir) in enumerate(zip(targets, dirs)):
    write_outputs(result.target(i), module, variables, target, outdir,
                  num_ws=num_ws, save_video=_SAVE_VIDEO.value)


def write_outputs(result: projector.Projection, module, variables: dict,
                  target: np.ndarray, outdir: pathlib.Path, *, num_ws: int,
                  save_video: bool) -> None:
  """target.png, proj.png, projected_w.npz and proj.mp4 of one target."""
  common.write_png(target, outdir / "target.png")
  common.write_png(result.images(module, variables)[0],
                      outdir / "proj.png")
  np.savez(outdir / "projected_w.npz", w=result.ws(num_ws))
  if save_video:
    frames = (np.concatenate([target, result.images(module, variables,
                                                    step)[0]], axis=1)
              for step in range(len(result.w_steps)))
    video.write_mp4(frames, outdir / "proj.mp4", fps=10)
  print(f"wrote {outdir} (final LPIPS distance "
        f"{float(result.dist_steps[-1, 0]):.4f})")


def run(argv: list[str]) -> None:
  command.run(FLAGS, main, argv)


if __name__ == "__main__":
  run(sys.argv)
