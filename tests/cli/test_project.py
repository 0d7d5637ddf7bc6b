"""sg3jax project: a target rendered from a known w is recovered (LPIPS <
0.1, w moves toward the true w); the outputs and generate --projected-w."""

import pathlib
import shutil
import tempfile

import imageio_ffmpeg
import jax.numpy as jnp
import numpy as np
from absl.testing import absltest
from PIL import Image

from sg3jax import analysis
from sg3jax import projector
from sg3jax.cli import generate
from sg3jax.cli import project
from sg3jax.metrics import vgg16
from tests.analysis import tiny
from tests.metrics.test_vgg16 import random_state_dict

NUM_STEPS = 30  # the official schedule, compressed: seconds on a CPU


def read_png(path: pathlib.Path) -> np.ndarray:
  with Image.open(path) as image:
    return np.asarray(image)


class ProjectTest(absltest.TestCase):

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    cls.root = pathlib.Path(tempfile.mkdtemp())
    cls.addClassCleanup(shutil.rmtree, cls.root)
    # LPIPS weights 10x the random default, so that the distance of
    # w_avg's image to the target is above the 0.1 threshold (it must bite).
    np.savez(cls.root / "vgg16.npz", **random_state_dict(lpips_scale=10.0))
    module, variables = tiny.generator()
    z = analysis.seed_latents([5], module.z_dim)
    cls.w_true = np.asarray(analysis.map_latents(
        variables, z, np.zeros((1, 0), np.float32), module=module))
    cls.target = analysis.to_uint8(analysis.render_ws(
        module, variables, cls.w_true, batch_size=1))[0]
    Image.fromarray(cls.target).save(cls.root / "target_in.png")
    project.run(["project", f"--network={tiny.checkpoint_dir()}",
                 f"--target={cls.root / 'target_in.png'}",
                 f"--vgg16={cls.root / 'vgg16.npz'}",
                 f"--outdir={cls.root / 'out'}", f"--num-steps={NUM_STEPS}"])

  def test_projection_recovers_the_target(self):
    out = self.root / "out"
    np.testing.assert_array_equal(read_png(out / "target.png"), self.target)
    module, variables = tiny.generator()
    start = np.asarray(projector.w_stats(module, variables)[0])
    start_image = analysis.to_uint8(projector.synthesize(
        variables, start[None], {}, module=module))[0]
    vgg, vgg_variables = vgg16.load_vgg16(self.root / "vgg16.npz")
    images = np.stack([self.target, read_png(out / "proj.png"), start_image])
    features = np.asarray(projector.lpips_features(
        vgg, vgg_variables, jnp.asarray(images, jnp.float32) / 127.5 - 1))
    lpips = np.sum((features[0] - features[1:]) ** 2, axis=1)
    self.assertGreater(lpips[1], 0.1)  # w_avg's image: the threshold bites
    self.assertLess(lpips[0], 0.1)
    with np.load(out / "projected_w.npz") as npz:
      ws = npz["w"]
    self.assertEqual(ws.shape, self.w_true.shape)
    np.testing.assert_array_equal(ws, np.repeat(ws[:, :1], ws.shape[1], 1))
    true = self.w_true[0, 0]
    self.assertLess(np.linalg.norm(ws[0, 0] - true),
                    0.75 * np.linalg.norm(start - true))

  def test_video_has_a_frame_per_step(self):
    frames, _ = imageio_ffmpeg.count_frames_and_secs(
        str(self.root / "out" / "proj.mp4"))
    self.assertEqual(frames, NUM_STEPS)

  def test_generate_renders_the_projected_w(self):
    outdir = self.root / "generated"
    generate.run(["generate", f"--network={tiny.checkpoint_dir()}",
                  f"--projected-w={self.root / 'out' / 'projected_w.npz'}",
                  f"--outdir={outdir}"])
    np.testing.assert_array_equal(read_png(outdir / "proj00.png"),
                                  read_png(self.root / "out" / "proj.png"))

  def test_bad_inputs_are_named(self):
    with self.assertRaisesRegex(ValueError, "target: cannot read"):
      project.load_target(self.root / "vgg16.npz", 16, 3)
    with self.assertRaisesRegex(ValueError, "distinct file names"):
      project.output_dirs(["a/x.png", "b/x.png"], "out")
    bad = self.root / "bad_w.npz"
    np.savez(bad, w=np.zeros((1, 3, 8), np.float32))
    module, variables = tiny.generator()
    with self.assertRaisesRegex(ValueError, r"expected w \[N, 6, 8\]"):
      generate.projected_images(module, variables, bad)


if __name__ == "__main__":
  absltest.main()
