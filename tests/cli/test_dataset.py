"""sg3jax dataset: folders, zips and the demo → the official dataset format."""

import json
import os
import pathlib
import subprocess
import sys
import zipfile

import numpy as np
from absl.testing import absltest
from absl.testing import parameterized
from PIL import Image

from sg3jax import data
from sg3jax.cli import dataset
from sg3jax.cli import main as console
from sg3jax.data import tool
from tests.data import images as test_images


def _lanczos(image: np.ndarray, width: int, height: int) -> np.ndarray:
  return np.asarray(Image.fromarray(image).resize((width, height),
                                                  Image.Resampling.LANCZOS))


class DatasetCommandTest(parameterized.TestCase):

  def setUp(self):
    super().setUp()
    self.root = pathlib.Path(self.create_tempdir().full_path)
    # Non-square sources (12 wide, 8 high) with int class labels.
    self.pixels = np.random.default_rng(0).integers(0, 256, (3, 8, 12, 3),
                                                    dtype=np.uint8)
    names = ("x.png", "sub/y.png", "z.jpg.png")
    self.source = test_images.write_folder(
        self.root / "photos", dict(zip(names, self.pixels)),
        labels=[[name, i] for i, name in enumerate(names)])
    # Sorted order: sub/y.png, x.png, z.jpg.png.
    self.order = [1, 0, 2]

  def test_folder_to_zip_center_crop_round_trip(self):
    dest = self.root / "out" / "photos.zip"
    dataset.run(["dataset", f"--source={self.source}", f"--dest={dest}",
                 "--transform=center-crop", "--resolution=8"])
    with zipfile.ZipFile(dest) as zf:
      names = sorted(zf.namelist())
      self.assertTrue(all(info.compress_type == zipfile.ZIP_STORED
                          for info in zf.infolist()))
      meta = json.loads(zf.read("dataset.json"))
    expected_names = [f"00000/img{i:08d}.png" for i in range(3)]
    self.assertEqual(names, expected_names + ["dataset.json"])
    self.assertEqual(meta, {"labels": [[name, label] for name, label in
                                       zip(expected_names, self.order)]})
    ds = data.open_dataset(str(dest), use_labels=True)
    self.assertEqual((len(ds), ds.resolution, ds.num_channels, ds.label_dim),
                     (3, 8, 3, 3))
    for i, source_index in enumerate(self.order):
      # The centred 8x8 square: columns 2..9; no resize needed.
      np.testing.assert_array_equal(ds[i]["image"],
                                    self.pixels[source_index][:, 2:10])
      np.testing.assert_array_equal(ds[i]["label"], np.eye(3)[source_index])

  def test_resize_and_max_images_into_a_folder(self):
    square = test_images.write_folder(
        self.root / "square",
        {f"{i}.png": image for i, image in
         enumerate(test_images.random_images(3, size=16))})
    dest = self.root / "small"
    dest.mkdir()  # an empty destination folder is fine
    dataset.run(["dataset", f"--source={square}", f"--dest={dest}",
                 "--resolution=4", "--max-images=2"])
    self.assertEqual(sorted(p.relative_to(dest).as_posix()
                            for p in dest.rglob("*") if p.is_file()),
                     ["00000/img00000000.png", "00000/img00000001.png",
                      "dataset.json"])
    self.assertEqual(json.loads((dest / "dataset.json").read_text()),
                     {"labels": None})
    ds = data.open_dataset(str(dest))
    with Image.open(square / "1.png") as png:
      expected = _lanczos(np.asarray(png), 4, 4)
    np.testing.assert_array_equal(ds[1]["image"], expected)

  def test_center_crop_wide(self):
    wide = test_images.write_folder(
        self.root / "wide",
        {"w.png": test_images.random_images(1, size=16)[0][:8]})  # 16x8
    dest = self.root / "wide.zip"
    tool.convert_dataset(str(wide), str(dest), resolution=(8, 4),
                         transform="center-crop-wide", progress=False)
    image = data.open_dataset(str(dest))[0]["image"]
    with Image.open(wide / "w.png") as png:
      source = np.asarray(png)
    # The official rule: the centre round(8 * 8 / 16) = 4 rows, resized to
    # 8x4, on a black 8x8 canvas.
    expected = np.zeros((8, 8, 3), np.uint8)
    expected[2:6] = _lanczos(source[2:6], 8, 4)
    np.testing.assert_array_equal(image, expected)

  def test_demo_source_keeps_classes(self):
    dest = self.root / "demo.zip"
    dataset.run(["dataset", "--source=demo:16", f"--dest={dest}",
                 "--max-images=6"])
    ds = data.open_dataset(str(dest), use_labels=True)
    reference = data.open_dataset("demo:16", use_labels=True)
    self.assertLen(ds, 6)
    for i in range(6):
      np.testing.assert_array_equal(ds[i]["image"], reference[i]["image"])
      # Only the classes present are counted (label_dim = max class + 1).
      np.testing.assert_array_equal(
          ds[i]["label"].argmax(), reference[i]["label"].argmax())

  def test_grayscale_among_rgb_is_named(self):
    Image.fromarray(np.zeros((8, 12), np.uint8)).save(self.source / "zz.png")
    dest = self.root / "out.zip"
    with self.assertRaises(SystemExit) as exit_info:
      dataset.run(["dataset", f"--source={self.source}", f"--dest={dest}",
                   "--transform=center-crop", "--resolution=8"])
    self.assertRegex(str(exit_info.exception.code),
                     r"zz\.png: expected height, width, channels \(8, 8, 3\)")
    self.assertFalse(dest.exists())  # nothing half-written is left
    self.assertEqual([p.name for p in self.root.iterdir()
                      if p.name.startswith(".")], [])

  def test_non_square_without_transform(self):
    with self.assertRaisesRegex(ValueError,
                                r"sub/y\.png: expected a square image.*12x8"):
      tool.convert_dataset(str(self.source), str(self.root / "o.zip"),
                           progress=False)

  @parameterized.parameters("zip", "folder")
  def test_existing_destination(self, kind):
    dest = self.root / ("taken.zip" if kind == "zip" else "taken")
    if kind == "zip":
      dest.write_bytes(b"PK")
    else:
      dest.mkdir()
      (dest / "keep.txt").write_text("mine")
    with self.assertRaises(SystemExit) as exit_info:
      dataset.run(["dataset", f"--source={self.source}", f"--dest={dest}",
                   "--transform=center-crop", "--resolution=8"])
    self.assertIn(f"dest: {dest} already exists", exit_info.exception.code)

  def test_missing_source(self):
    missing = self.root / "nothing_here"
    with self.assertRaises(SystemExit) as exit_info:
      dataset.run(["dataset", f"--source={missing}",
                   f"--dest={self.root / 'o.zip'}"])
    self.assertIn(f"source: {missing} not found", exit_info.exception.code)

  def test_bad_flags(self):
    for flag, message in (("--resolution=big", "resolution: expected"),
                          ("--transform=stretch", "transform")):
      with self.assertRaises(SystemExit) as exit_info:
        dataset.run(["dataset", f"--source={self.source}",
                     f"--dest={self.root / 'o.zip'}", flag])
      self.assertIn(message, str(exit_info.exception.code))
    with self.assertRaisesRegex(ValueError, "resolution: required"):
      tool.convert_dataset(str(self.source), str(self.root / "o.zip"),
                           transform="center-crop")

  def test_console_script_and_module_entry(self):
    dest = self.root / "console.zip"
    console.run(["sg3jax", "dataset", "--source=demo:8", f"--dest={dest}",
                 "--max-images=2"])
    self.assertLen(data.open_dataset(str(dest)), 2)
    dest = self.root / "module.zip"
    completed = subprocess.run(
        [sys.executable, "-m", "sg3jax.dataset", "--source=demo:8",
         f"--dest={dest}", "--max-images=3"],
        capture_output=True, text=True, check=False,
        cwd=pathlib.Path(__file__).parents[2],
        env={**os.environ, "JAX_PLATFORMS": "cpu"})
    self.assertEqual(completed.returncode, 0, completed.stderr)
    self.assertIn(f"wrote 3 images to {dest}", completed.stdout)
    self.assertLen(data.open_dataset(str(dest)), 3)


if __name__ == "__main__":
  absltest.main()
