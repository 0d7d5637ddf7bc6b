"""Non-square datasets: the demo at HxW, folders of HxW images, the dataset
tool's non-square crop and resize, and what is rejected (named)."""

import pathlib

import numpy as np
from absl.testing import absltest
from PIL import Image

from sg3jax import data
from sg3jax.cli import dataset
from sg3jax.data import demo
from tests.data import images as test_images


class DemoTest(absltest.TestCase):

  def test_non_square_demo(self):
    images, classes = demo.demo_images((16, 32), num_images=6)
    self.assertEqual(images.shape, (6, 16, 32, 3))
    # The same drawn parameters (classes) as the square demo; the shape
    # centres spread along the long axis, so the wide images are not the
    # square ones padded left and right.
    square, square_classes = demo.demo_images(16, num_images=6)
    self.assertEqual(classes.tolist(), square_classes.tolist())
    self.assertFalse(np.array_equal(images[:, :, 8:24], square))
    ds = data.open_dataset("demo:16x32", mirror=True)
    self.assertEqual((ds.resolution, ds.image_shape), ((16, 32), (16, 32, 3)))
    np.testing.assert_array_equal(ds[len(ds) // 2]["image"],
                                  ds[0]["image"][:, ::-1])

  def test_bad_demo_resolutions_are_named(self):
    with self.assertRaisesRegex(ValueError, r"expected 16x32 for "
                                r"'demo:16x32' \(or no resolution\), got 32"):
      data.open_dataset("demo:16x32", resolution=32)
    with self.assertRaisesRegex(ValueError, "'demo:16x30'"):
      data.open_dataset("demo:16x30")
    with self.assertRaisesRegex(ValueError, "demo dataset, got"):
      demo.demo_images((8, 256))


class FolderTest(absltest.TestCase):

  def setUp(self):
    super().setUp()
    self.root = pathlib.Path(self.create_tempdir().full_path)
    rng = np.random.default_rng(0)
    self.wide = rng.integers(0, 256, (3, 8, 16, 3), np.uint8)

  def test_folder_of_h_x_w_images(self):
    folder = test_images.write_folder(
        self.root / "wide", {f"{i}.png": img for i, img in
                             enumerate(self.wide)})
    ds = data.open_dataset(str(folder), resolution="8x16")
    self.assertEqual(ds.resolution, (8, 16))
    np.testing.assert_array_equal(ds[1]["image"], self.wide[1])
    with self.assertRaisesRegex(ValueError, r"0\.png: expected resolution "
                                r"16x8 \(height x width\) \(the requested "
                                r"resolution\), got 8x16 \(height x width\)"):
      data.open_dataset(str(folder), resolution=(16, 8))

  def test_mixed_and_invalid_sizes_are_named(self):
    folder = test_images.write_folder(
        self.root / "mixed", {"a.png": self.wide[0],
                              "b.png": self.wide[1][:, :12]})
    with self.assertRaisesRegex(ValueError, r"b\.png: expected 8x16 \(height "
                                r"x width\) like .*a\.png \(a non-square "
                                r"image\), got 8x12"):
      data.open_dataset(str(folder))
    folder = test_images.write_folder(
        self.root / "odd", {"a.png": self.wide[0][:, :15]})
    with self.assertRaisesRegex(ValueError, r"a\.png: the long side of 8x15 "
                                "must be a multiple of 2"):
      data.open_dataset(str(folder))


class ToolTest(absltest.TestCase):

  def test_center_crop_to_a_non_square_resolution(self):
    root = pathlib.Path(self.create_tempdir().full_path)
    # 12 wide, 12 high: the centred 12 x 6 band, resized to 16 x 8 (W x H).
    pixels = np.random.default_rng(1).integers(0, 256, (2, 12, 12, 3),
                                               np.uint8)
    source = test_images.write_folder(
        root / "src", {f"{i}.png": p for i, p in enumerate(pixels)})
    dest = root / "wide.zip"
    dataset.run(["dataset", f"--source={source}", f"--dest={dest}",
                 "--transform=center-crop", "--resolution=16x8"])
    ds = data.open_dataset(str(dest))
    self.assertEqual(ds.resolution, (8, 16))
    expected = np.asarray(Image.fromarray(pixels[0][3:9]).resize(
        (16, 8), Image.Resampling.LANCZOS))
    np.testing.assert_array_equal(ds[0]["image"], expected)

  def test_demo_source_at_h_x_w(self):
    root = pathlib.Path(self.create_tempdir().full_path)
    dataset.run(["dataset", "--source=demo:8x16", f"--dest={root / 'd'}",
                 "--resolution=16x8",
                 "--max-images=3"])
    ds = data.open_dataset(str(root / "d"))
    np.testing.assert_array_equal(ds[2]["image"],
                                  demo.demo_images((8, 16))[0][2])


if __name__ == "__main__":
  absltest.main()
