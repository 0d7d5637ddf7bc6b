"""What the perceptual metrics and the projector feed their detectors for
non-square images: the short side reduced to 256, the aspect kept; square
images as before (official)."""

import jax.numpy as jnp
import numpy as np
from absl.testing import absltest
from PIL import Image

from sg3jax import projector
from sg3jax.cli import project
from sg3jax.metrics import ppl
from sg3jax.metrics import resize


def _blocks(x: np.ndarray, f: int) -> np.ndarray:
  n, h, w, c = x.shape
  return x.reshape(n, h // f, f, w // f, f, c).mean(axis=(2, 4))


class ReduceTest(absltest.TestCase):

  def test_vgg_and_lpips_inputs_keep_the_aspect(self):
    x = np.random.RandomState(0).uniform(-1, 1, (1, 512, 1024, 3)).astype(
        np.float32)
    expected = _blocks((x + 1) * 127.5, 2)
    for fn in (projector.vgg_input, ppl.lpips_input):
      y = np.asarray(fn(jnp.asarray(x)))
      self.assertEqual(y.shape, (1, 256, 512, 3))
      np.testing.assert_allclose(y, expected, rtol=1e-5, atol=1e-3)
      tall = np.asarray(fn(jnp.asarray(x.transpose(0, 2, 1, 3))))
      self.assertEqual(tall.shape, (1, 512, 256, 3))
    # Short side <= 256: unchanged (a 256x512 image is not squashed).
    self.assertEqual(projector.vgg_input(jnp.zeros((1, 256, 512, 3))).shape,
                     (1, 256, 512, 3))
    self.assertEqual(projector.vgg_input(jnp.zeros((1, 512, 512, 3))).shape,
                     (1, 256, 256, 3))

  def test_detector_resize_reads_each_axis_at_its_own_size(self):
    # A 32x64 image constant down its columns resizes to the 299^2 input
    # as the 64x64 image with the same columns: x reads W = 64 only.
    columns = np.random.RandomState(2).uniform(0, 255, (1, 1, 64, 3))
    wide = np.broadcast_to(columns, (1, 32, 64, 3)).astype(np.float32)
    square = np.broadcast_to(columns, (1, 64, 64, 3)).astype(np.float32)
    np.testing.assert_allclose(resize.tf_bilinear(wide, 299),
                               resize.tf_bilinear(square, 299), rtol=1e-6,
                               atol=1e-4)

  def test_projection_target_is_cropped_to_the_aspect(self):
    root = self.create_tempdir().full_path
    pixels = np.random.RandomState(1).randint(0, 256, (30, 40, 3)).astype(
        np.uint8)
    Image.fromarray(pixels).save(f"{root}/t.png")
    target = project.load_target(f"{root}/t.png", (8, 16), 3)
    expected = np.asarray(Image.fromarray(pixels[5:25]).resize(
        (16, 8), Image.LANCZOS))
    np.testing.assert_array_equal(target, expected)
    self.assertEqual(project.load_target(f"{root}/t.png", 8, 3).shape,
                     (8, 8, 3))


if __name__ == "__main__":
  absltest.main()
