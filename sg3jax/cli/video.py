"""Latent interpolation video of a generator (the official gen_video.py).

    sg3jax video --network=CKPT_OR_PKL --seeds=0-31 --grid=4x2 \\
        --w_frames=120 --outdir=out/video

Each grid cell loops through its keyframes (the seeds, dealt out cell by
cell as gen_video.py does, optionally shuffled) along a periodic cubic
spline in w space (after truncation), `--w_frames` frames per transition.
`--format=mp4` writes `video.mp4` (H.264 by the ffmpeg that imageio-ffmpeg
bundles, `--fps`); `--format=png` writes
`video.png`, `--png_frames` evenly spaced frames side by side.
"""

import contextlib
import pathlib
import re
import subprocess
import sys
from collections.abc import Iterable

from absl import flags
import imageio_ffmpeg
import numpy as np
import tqdm

from sg3jax import analysis
from sg3jax.cli import common
from sg3jax.cli import command
from sg3jax.training import checkpoints

# Flags of this command only (the sg3jax script imports several commands).
FLAGS = flags.FlagValues()
_NETWORK = common.define_network_flag(FLAGS)
_LATENT = common.define_latent_flags(
    FLAGS, seeds="0-3", seeds_help="keyframe seeds, e.g. '0,1,4-6'")
_SHUFFLE = flags.DEFINE_integer("shuffle_seed", None,
                                "seed to shuffle the keyframe order",
                                flag_values=FLAGS)
_GRID = flags.DEFINE_string("grid", "1x1", "grid 'WxH' of videos",
                            flag_values=FLAGS)
_KEYFRAMES = flags.DEFINE_integer(
    "num_keyframes", None, "keyframes per cell (default: seeds / cells)",
    lower_bound=1, flag_values=FLAGS)
_W_FRAMES = flags.DEFINE_integer("w_frames", 120,
                                 "frames from one keyframe to the next",
                                 lower_bound=1, flag_values=FLAGS)
_KIND = flags.DEFINE_enum("kind", "cubic", analysis.video.KINDS,
                          "interpolation in w space", flag_values=FLAGS)
_FORMAT = flags.DEFINE_enum("format", "mp4", ("mp4", "png"),
                            "video.mp4, or video.png (a strip of frames)",
                            flag_values=FLAGS)
_FPS = flags.DEFINE_integer("fps", 60, "MP4 frames per second",
                            lower_bound=1, flag_values=FLAGS)
_PNG_FRAMES = flags.DEFINE_integer("png_frames", 8,
                                   "frames in the PNG strip", lower_bound=1,
                                   flag_values=FLAGS)
_BATCH = flags.DEFINE_integer("batch", 8, "images per generator call",
                              lower_bound=1, flag_values=FLAGS)
_OUTDIR = flags.DEFINE_string("outdir", "out/video", "where to write",
                              flag_values=FLAGS)


def parse_grid(text: str) -> tuple[int, int]:
  """'4x2' or '4,2' -> (width 4, height 2)."""
  match = re.fullmatch(r"\s*(\d+)\s*[x,]\s*(\d+)\s*", text)
  if match is None:
    raise ValueError(f"grid: expected 'WxH', got {text!r}")
  return int(match[1]), int(match[2])


def interpolation_ws(module, variables: dict, seeds: list[int], *,
                     grid: tuple[int, int] = (1, 1),
                     num_keyframes: int | None = None,
                     shuffle_seed: int | None = None,
                     w_frames: int = 120, kind: str = "cubic",
                     truncation_psi: float = 1.0,
                     class_idx: int | None = None) -> np.ndarray:
  """ws `[grid_h, grid_w, num_keyframes * w_frames, num_ws, w_dim]`."""
  cells = analysis.keyframe_seeds(seeds, grid=grid,
                                  num_keyframes=num_keyframes,
                                  shuffle_seed=shuffle_seed)
  flat = cells.reshape(-1).tolist()
  ws = np.asarray(analysis.seed_ws(module, variables, flat,
                                   truncation_psi=truncation_psi,
                                   class_idx=class_idx))
  ws = ws.reshape(*cells.shape, *ws.shape[1:])
  return np.stack([np.stack([
      analysis.interpolate_loop(cell, w_frames, kind=kind) for cell in row])
                   for row in ws])


def write_mp4(frames: Iterable[np.ndarray], path: str | pathlib.Path, *,
              fps: int = 60, crf: int = 18) -> int:
  """Pipes uint8 frames `[H, W, 3]` to the bundled ffmpeg (H.264, yuv420p).

  An odd width or height is padded by one black pixel (yuv420p needs even
  sizes). ffmpeg runs in its own session, so Ctrl-C reaches only Python,
  which then stops it; no `preexec_fn`, so no fork handlers run in this
  multithreaded (JAX) process. Returns the number of frames written.
  """
  process = None
  count = 0
  try:
    for frame in frames:
      frame = np.ascontiguousarray(frame, np.uint8)
      if process is None:
        if frame.ndim != 3 or frame.shape[2] != 3:
          raise ValueError(f"frames: expected [H, W, 3], got {frame.shape}")
        height, width = frame.shape[:2]
        cmd = [imageio_ffmpeg.get_ffmpeg_exe(), "-y", "-v", "error",
               "-f", "rawvideo", "-pix_fmt", "rgb24", "-s",
               f"{width}x{height}", "-r", str(fps), "-i", "-", "-an",
               "-vf", "pad=ceil(iw/2)*2:ceil(ih/2)*2", "-c:v", "libx264",
               "-pix_fmt", "yuv420p", "-crf", str(crf), str(path)]
        process = subprocess.Popen(cmd, stdin=subprocess.PIPE,
                                   start_new_session=True)
      elif frame.shape != (height, width, 3):
        raise ValueError(f"frames: expected [{height}, {width}, 3] as the "
                         f"first frame, got {frame.shape}")
      process.stdin.write(frame.tobytes())
      count += 1
  except BaseException:
    if process is not None:
      process.kill()
      process.wait()
      # Closing flushes frames still buffered into the dead ffmpeg's pipe;
      # that BrokenPipeError must not hide the error being raised.
      with contextlib.suppress(BrokenPipeError):
        process.stdin.close()
    raise
  if process is None:
    raise ValueError("frames: expected at least one frame, got none")
  process.stdin.close()
  if process.wait() != 0:
    raise RuntimeError(f"ffmpeg failed (exit {process.returncode}): "
                       f"{' '.join(cmd)}")
  return count


def main(argv: list[str]) -> None:
  del argv
  module, variables = checkpoints.load_generator(_NETWORK.value)
  ws = interpolation_ws(
      module, variables, _LATENT.seed_list(),
      grid=parse_grid(_GRID.value), num_keyframes=_KEYFRAMES.value,
      shuffle_seed=_SHUFFLE.value, w_frames=_W_FRAMES.value,
      kind=_KIND.value, truncation_psi=_LATENT.trunc.value,
      class_idx=_LATENT.class_idx.value)
  num_frames = ws.shape[2]
  frames = tqdm.tqdm(analysis.render_frames(module, variables, ws,
                                            batch_size=_BATCH.value),
                     total=num_frames, desc="frames")
  if _FORMAT.value == "png":
    if _PNG_FRAMES.value > num_frames:
      raise ValueError(f"png_frames: expected 1..{num_frames}, got "
                       f"{_PNG_FRAMES.value}")
    num = _PNG_FRAMES.value
    picked = set((np.arange(num) * num_frames // num).tolist())
    kept = np.stack([f for t, f in enumerate(frames) if t in picked])
    path = common.write_png(analysis.frame_strip(kept, num),
                               f"{_OUTDIR.value}/video.png")
  else:
    path = common.output_path(_OUTDIR.value, "video.mp4")
    write_mp4(frames, path, fps=_FPS.value)
  print(f"wrote {path} ({num_frames} frames)")


def run(argv: list[str]) -> None:
  command.run(FLAGS, main, argv)


if __name__ == "__main__":
  run(sys.argv)
