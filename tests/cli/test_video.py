"""sg3jax video: MP4 and PNG strip of a latent interpolation."""

import pathlib
import subprocess

import imageio_ffmpeg
import numpy as np
from absl.testing import absltest
from PIL import Image

from sg3jax import analysis
from sg3jax.cli import main as cli_main
from sg3jax.cli import video
from sg3jax.training import checkpoints
from tests.analysis import tiny


def _decode_mp4(path: pathlib.Path, height: int, width: int) -> np.ndarray:
  """All frames `[T, H, W, 3]` uint8, decoded by the bundled ffmpeg."""
  raw = subprocess.run(
      [imageio_ffmpeg.get_ffmpeg_exe(), "-v", "error", "-i", str(path),
       "-f", "rawvideo", "-pix_fmt", "rgb24", "-"],
      check=True, capture_output=True).stdout
  return np.frombuffer(raw, np.uint8).reshape(-1, height, width, 3)


def _expected_frames(seeds, grid, w_frames):
  module, variables = checkpoints.load_generator(tiny.checkpoint_dir())
  ws = video.interpolation_ws(module, variables, seeds, grid=grid,
                              w_frames=w_frames)
  return np.stack(list(analysis.render_frames(module, variables, ws,
                                              batch_size=tiny.BATCH)))


class VideoTest(absltest.TestCase):

  def test_parse_grid(self):
    self.assertEqual(video.parse_grid("4x2"), (4, 2))
    self.assertEqual(video.parse_grid("3,1"), (3, 1))
    with self.assertRaisesRegex(ValueError, "grid: expected 'WxH'"):
      video.parse_grid("4")

  def test_interpolation_ws_layout(self):
    module, variables = tiny.generator()
    ws = video.interpolation_ws(module, variables, [0, 1, 2, 3],
                                grid=(2, 1), w_frames=3)
    self.assertEqual(ws.shape, (1, 2, 6, 6, 8))  # num_ws = 4 layers + 2
    z = analysis.seed_latents([2, 3], module.z_dim)
    keys = analysis.map_latents(variables, z,
                                analysis.class_labels(0, 2, None),
                                module=module)
    # Cell (0, 1) holds seeds 2 and 3: frames 0 and 3.
    np.testing.assert_allclose(ws[0, 1, ::3], keys, atol=1e-6)

  def test_mp4_frame_count_size_and_content(self):
    out = pathlib.Path(self.create_tempdir().full_path)
    cli_main.run(["sg3jax", "video", f"--network={tiny.checkpoint_dir()}",
                  "--seeds=0-3", "--grid=2x1", "--w_frames=4", "--fps=10",
                  f"--outdir={out}"])
    frames = _decode_mp4(out / "video.mp4", 16, 32)
    self.assertEqual(frames.shape, (8, 16, 32, 3))
    expected = _expected_frames([0, 1, 2, 3], (2, 1), 4)
    # H.264 is lossy: frames agree on average to a few levels of 255.
    self.assertLess(np.abs(frames.astype(float) - expected).mean(), 4)

  def test_write_mp4_pads_odd_sizes(self):
    path = pathlib.Path(self.create_tempdir().full_path) / "odd.mp4"
    frames = [np.full((15, 21, 3), 40 * i, np.uint8) for i in range(3)]
    self.assertEqual(video.write_mp4(frames, path, fps=5), 3)
    decoded = _decode_mp4(path, 16, 22)
    self.assertEqual(decoded.shape, (3, 16, 22, 3))
    np.testing.assert_allclose(decoded[:, :15, :21].mean(axis=(1, 2, 3)),
                               [0, 40, 80], atol=2)
    with self.assertRaisesRegex(ValueError, r"frames: expected \[15, 21, 3\]"):
      video.write_mp4(frames + [np.zeros((16, 21, 3), np.uint8)], path)

  def test_png_strip(self):
    out = pathlib.Path(self.create_tempdir().full_path)
    video.run(["video", f"--network={tiny.checkpoint_dir()}", "--seeds=5,6",
               "--w_frames=4", "--format=png", "--png_frames=4",
               f"--outdir={out}"])
    with Image.open(out / "video.png") as png:
      strip = np.asarray(png)
    self.assertEqual(strip.shape, (16, 64, 3))
    expected = analysis.frame_strip(_expected_frames([5, 6], (1, 1), 4), 4)
    np.testing.assert_array_equal(strip, expected)


if __name__ == "__main__":
  absltest.main()
