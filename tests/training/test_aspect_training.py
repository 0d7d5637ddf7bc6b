"""Non-square training end to end: 32x64 StyleGAN3-T and StyleGAN2 from the
non-square demo dataset (mirror and ADA on), the checkpoint's kwargs, the
`--config.resolution=HxW` flag, and the tools on the runs: `sg3jax
generate`, `video`, `export` (reloaded by its loader), the visualizer's
renderer.

Two iterations (two ticks) per config of experiments/tiny.py; the
networks learn nothing, the shapes and the plumbing are what is tested.
"""

import importlib.util
import json
import pathlib
import shutil
import tempfile

import jax
import numpy as np
from absl import flags
from absl.testing import absltest
from ml_collections import config_flags
from PIL import Image

from sg3jax.cli import export
from sg3jax.cli import generate
from sg3jax.cli import video
from sg3jax.training import checkpoints
from sg3jax.training import loop
from sg3jax.visualizer import render
from tests.serving.test_export import expected_images
from tests.training import tiny

RESOLUTION = "32x64"


def _config(variant: str):
  cfg = tiny.load_experiment("tiny.py", variant)
  cfg.data = f"demo:{RESOLUTION}"
  cfg.resolution = RESOLUTION
  cfg.total_kimg = 0.016  # 2 iterations of batch 8, one per tick
  cfg.mirror = True
  cfg.augment.mode = "fixed"
  cfg.augment.p = 0.5
  return cfg


class NonSquareTrainingTest(absltest.TestCase):

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    cls.root = pathlib.Path(tempfile.mkdtemp(prefix="sg3jax-aspect-test-"))
    cls.runs = {}
    for variant in ("stylegan3-t", "stylegan2"):
      cls.runs[variant] = cls.root / variant
      loop.train(_config(variant), cls.runs[variant])

  @classmethod
  def tearDownClass(cls):
    shutil.rmtree(cls.root, ignore_errors=True)
    super().tearDownClass()

  def test_runs_train_two_ticks_and_save_non_square_networks(self):
    for variant, run in self.runs.items():
      stats = [json.loads(line) for line in
               (run / "stats.jsonl").read_text().splitlines()]
      self.assertLen(stats, 2, variant)
      self.assertTrue(np.isfinite(stats[-1]["Loss/D/loss"]["mean"]), variant)
      self.assertEqual(stats[-1]["Progress/augment"]["mean"], 0.5, variant)
      # A 2x2 grid of 32x64 images.
      with Image.open(run / "fakes_init.png") as png:
        self.assertEqual(np.asarray(png).shape, (64, 128, 3), variant)
      self.assertEqual(json.loads((run / "config.json").read_text())[
          "resolution"], RESOLUTION)
      networks = checkpoints.load_networks(run)
      for name in ("G", "G_ema", "D"):
        self.assertEqual(networks[name][0].img_resolution, (32, 64),
                         (variant, name))
      G, variables = networks["G_ema"]
      img = jax.jit(G.apply)(variables, np.zeros((1, G.z_dim), np.float32))
      self.assertEqual(img.shape, (1, 32, 64, 3))

  def test_generate_writes_32x64_images(self):
    for variant, run in self.runs.items():
      out = self.root / f"images-{variant}"
      generate.run(["generate", f"--network={run}", "--seeds=0-1",
                    f"--outdir={out}"])
      for seed in (0, 1):
        with Image.open(out / f"seed{seed:04d}.png") as png:
          self.assertEqual(np.asarray(png).shape, (32, 64, 3), variant)

  def test_video_export_and_visualizer_render_32x64(self):
    run = self.runs["stylegan3-t"]
    out = self.root / "tools"
    video.run(["video", f"--network={run}", "--seeds=0,1", "--w_frames=2",
               "--format=png", "--png_frames=2", f"--outdir={out}"])
    with Image.open(out / "video.png") as png:
      self.assertEqual(np.asarray(png).shape, (32, 128, 3))
    G, variables = checkpoints.load_generator(str(run))
    export.run(["export", f"--network={run}", "--platforms=cpu",
                f"--outdir={out / 'export'}"])
    manifest = json.loads((out / "export" / "manifest.json").read_text())
    self.assertEqual(manifest["img_resolution"], [32, 64])
    spec = importlib.util.spec_from_file_location(
        "exported_loader", out / "export" / "loader.py")
    loader = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(loader)
    z = np.random.RandomState(0).randn(2, G.z_dim).astype(np.float32)
    images = loader.load(out / "export")(z)
    np.testing.assert_array_equal(images,
                                  expected_images(G, variables, z, 1.0))
    frame = render.Renderer(G, variables).frame(render.View(),
                                                render.Controls())
    self.assertEqual(frame.shape, (32, 64, 3))


class NonSquareConfigTest(absltest.TestCase):

  def test_resolution_flag_takes_h_x_w(self):
    config = f"--config={tiny.EXPERIMENTS / 'tiny.py'}"
    for flag, expected in (("32x64", "32x64"), ("64", 64)):
      argv = ["train", config, f"--config.resolution={flag}"]
      values = flags.FlagValues()
      # (Overrides are read from sys.argv unless given, as `sg3jax train`.)
      config_flags.DEFINE_config_file("config", flag_values=values,
                                      sys_argv=argv)
      values(argv)
      self.assertEqual(values.config.resolution, expected)

  def test_dataset_of_another_resolution_is_named(self):
    cfg = _config("stylegan3-t")
    cfg.resolution = "64x32"
    with self.assertRaisesRegex(ValueError, "expected 32x64 for 'demo:32x64'"
                                ".*got 64x32"):
      loop.open_training_set(cfg)
    cfg.resolution = "32x60"
    with self.assertRaisesRegex(ValueError, "resolution: the long side of "
                                "32x60 must be a multiple of 8"):
      loop.open_training_set(cfg)


if __name__ == "__main__":
  absltest.main()
