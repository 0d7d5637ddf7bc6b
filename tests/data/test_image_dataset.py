"""open_dataset: folders, zips, tfds, labels, mirror, max_size, bad data."""

import json
import pathlib
import pickle

import numpy as np
from absl.testing import absltest
from absl.testing import parameterized
from PIL import Image

from sg3jax import data
from tests.data import images as test_images

# Sorted '/'-separated names, as the dataset lists them; one in a subfolder.
_NAMES = ("a.png", "b.png", "c.png", "sub/d.png", "sub/e.png")


class ImageDatasetTest(parameterized.TestCase):

  def setUp(self):
    super().setUp()
    self.root = pathlib.Path(self.create_tempdir().full_path)
    self.pixels = test_images.random_images(len(_NAMES))
    self.folder = test_images.write_folder(
        self.root / "set", dict(zip(_NAMES, self.pixels)),
        labels=[[name, i % 3] for i, name in enumerate(_NAMES)])
    self.zip = test_images.zip_folder(self.folder, self.root / "set.zip")

  def _items(self, ds):
    return [ds[i] for i in range(len(ds))]

  @parameterized.parameters("folder", "zip")
  def test_items_are_the_images_in_name_order(self, kind):
    ds = data.open_dataset(str(getattr(self, kind)))
    self.assertLen(ds, len(_NAMES))
    self.assertEqual((ds.name, ds.resolution, ds.num_channels, ds.label_dim,
                      ds.has_labels), ("set", 8, 3, 0, False))
    for item, pixels in zip(self._items(ds), self.pixels):
      self.assertEqual(item["image"].dtype, np.uint8)
      np.testing.assert_array_equal(item["image"], pixels)
      self.assertEqual(item["label"].shape, (0,))
      self.assertEqual(item["label"].dtype, np.float32)

  def test_folder_and_zip_give_the_same_items(self):
    folder = data.open_dataset(str(self.folder), use_labels=True)
    zipped = data.open_dataset(str(self.zip), use_labels=True)
    for a, b in zip(self._items(folder), self._items(zipped), strict=True):
      np.testing.assert_array_equal(a["image"], b["image"])
      np.testing.assert_array_equal(a["label"], b["label"])

  @parameterized.parameters("folder", "zip")
  def test_int_class_labels_are_one_hot(self, kind):
    ds = data.open_dataset(str(getattr(self, kind)), use_labels=True)
    self.assertEqual((ds.label_dim, ds.has_labels), (3, True))
    labels = np.stack([item["label"] for item in self._items(ds)])
    np.testing.assert_array_equal(labels,
                                  np.eye(3, dtype=np.float32)[[0, 1, 2, 0, 1]])

  @parameterized.parameters("folder", "zip", "demo")
  def test_get_label_equals_the_items_label(self, kind):
    path = "demo:8" if kind == "demo" else str(getattr(self, kind))
    ds = data.open_dataset(path, use_labels=True, mirror=True)
    for index in (0, 1, 4, len(ds) - 1):
      np.testing.assert_array_equal(ds.get_label(index), ds[index]["label"])
    unlabelled = data.open_dataset(path)
    self.assertEqual(unlabelled.get_label(0).shape, (0,))

  def test_float_vector_labels(self):
    vectors = np.arange(10, dtype=np.float32).reshape(5, 2) / 4
    (self.folder / "dataset.json").write_text(json.dumps(
        {"labels": [[n, v.tolist()] for n, v in zip(_NAMES, vectors)]}))
    ds = data.open_dataset(str(self.folder), use_labels=True)
    self.assertEqual(ds.label_dim, 2)
    np.testing.assert_array_equal(
        np.stack([item["label"] for item in self._items(ds)]), vectors)

  @parameterized.parameters("folder", "zip")
  def test_mirror_appends_flips(self, kind):
    ds = data.open_dataset(str(getattr(self, kind)), mirror=True,
                           use_labels=True)
    self.assertLen(ds, 2 * len(_NAMES))
    for i, pixels in enumerate(self.pixels):
      np.testing.assert_array_equal(ds[i]["image"], pixels)
      np.testing.assert_array_equal(ds[i + len(_NAMES)]["image"],
                                    pixels[:, ::-1])
      np.testing.assert_array_equal(ds[i + len(_NAMES)]["label"],
                                    ds[i]["label"])

  def test_max_size_keeps_the_official_subset(self):
    # The official rule: the first max_size of a seed-0 permutation, sorted.
    order = np.arange(len(_NAMES))
    np.random.RandomState(0).shuffle(order)
    kept = np.sort(order[:3])
    ds = data.open_dataset(str(self.zip), max_size=3, mirror=True)
    self.assertLen(ds, 6)
    for i, index in enumerate(kept):
      np.testing.assert_array_equal(ds[i]["image"], self.pixels[index])
      np.testing.assert_array_equal(ds[i + 3]["image"],
                                    self.pixels[index][:, ::-1])
    self.assertLen(data.open_dataset(str(self.zip), max_size=99), 5)

  def test_grayscale_and_requested_resolution(self):
    gray = test_images.random_images(2, size=16, channels=1)
    folder = test_images.write_folder(self.root / "gray",
                                      {"0.png": gray[0], "1.png": gray[1]})
    ds = data.open_dataset(str(folder), resolution=16)
    self.assertEqual(ds.num_channels, 1)
    np.testing.assert_array_equal(ds[1]["image"], gray[1][:, :, None])

  def test_zip_dataset_pickles_and_reopens(self):
    ds = data.open_dataset(str(self.zip), use_labels=True)
    ds[0]  # opens the zip in this process
    copy = pickle.loads(pickle.dumps(ds))
    np.testing.assert_array_equal(copy[4]["image"], self.pixels[4])
    np.testing.assert_array_equal(copy[4]["label"], ds[4]["label"])

  def test_index_out_of_range(self):
    ds = data.open_dataset(str(self.folder))
    with self.assertRaisesRegex(IndexError, "index"):
      ds[len(_NAMES)]

  def test_tfds_source_gives_the_folders_images(self):
    # Name each image by its index, stored as the ClassLabel, to match the
    # records (tfds shuffles them) with the folder's files.
    folder = test_images.write_folder(
        self.root / "by_index",
        {f"{i}_img.png": pixels for i, pixels in enumerate(self.pixels)})
    version_dir = test_images.prepare_tfds(folder, self.root / "tfds",
                                           num_classes=len(_NAMES))
    ds = data.open_dataset(f"tfds:{version_dir}", use_labels=True)
    self.assertLen(ds, len(_NAMES))
    self.assertEqual((ds.resolution, ds.num_channels, ds.label_dim),
                     (8, 3, len(_NAMES)))
    seen = []
    for item in self._items(ds):
      index = int(np.argmax(item["label"]))
      np.testing.assert_array_equal(item["label"],
                                    np.eye(len(_NAMES))[index])
      np.testing.assert_array_equal(item["image"], self.pixels[index])
      seen.append(index)
    self.assertCountEqual(seen, range(len(_NAMES)))
    # get_label reads the label without decoding the image.
    for i in range(len(ds)):
      np.testing.assert_array_equal(ds.get_label(i), ds[i]["label"])
    self.assertIsInstance(ds._backend._get_label_source()[0]["image"], bytes)
    unlabelled = data.open_dataset(f"tfds:{version_dir}:train", mirror=True)
    self.assertEqual(unlabelled.get_label(len(_NAMES)).shape, (0,))
    self.assertEqual(unlabelled[0]["label"].shape, (0,))
    np.testing.assert_array_equal(unlabelled[len(_NAMES)]["image"],
                                  unlabelled[0]["image"][:, ::-1])
    with self.assertRaisesRegex(ValueError, "split 'test'"):
      data.open_dataset(f"tfds:{version_dir}:test")


def _write_bad(root: pathlib.Path, case: str) -> str:
  """Writes a bad file into the dataset folder; returns its name."""
  rng = np.random.default_rng(1)
  arrays = {
      "not_square": rng.integers(0, 256, (8, 16, 3), np.uint8),
      "other_size": rng.integers(0, 256, (16, 16, 3), np.uint8),
      "grayscale": rng.integers(0, 256, (8, 8), np.uint8),
      "rgba": rng.integers(0, 256, (8, 8, 4), np.uint8),
  }
  path = root / f"z_{case}.png"  # sorts after the good images
  if case in arrays:
    Image.fromarray(arrays[case]).save(path)
  elif case == "corrupt":
    path.write_bytes(b"\x89PNG\r\n\x1a\n this is not an image")
  elif case == "palette":
    Image.fromarray(arrays["grayscale"]).convert("P").save(path)
  else:
    raise ValueError(case)
  return path.name


class BadDatasetTest(parameterized.TestCase):

  def setUp(self):
    super().setUp()
    self.root = pathlib.Path(self.create_tempdir().full_path)
    self.folder = test_images.write_folder(
        self.root / "set",
        dict(zip(_NAMES, test_images.random_images(len(_NAMES)))),
        labels=[[name, 1] for name in _NAMES])

  def _path(self, kind: str) -> str:
    if kind == "zip":
      return str(test_images.zip_folder(self.folder, self.root / "set.zip"))
    return str(self.folder)

  @parameterized.product(
      case=("not_square", "other_size", "grayscale", "rgba", "corrupt",
            "palette"),
      kind=("folder", "zip"))
  def test_bad_image_is_named(self, case, kind):
    fname = _write_bad(self.folder, case)
    expected = {"not_square": "square", "other_size": "expected 8x8",
                "grayscale": "expected 3 channels", "rgba": "expected 3 ch",
                "corrupt": "cannot read", "palette": "mode 'P'"}[case]
    with self.assertRaisesRegex(ValueError, f"{fname}: .*{expected}"):
      data.open_dataset(self._path(kind))

  def test_first_image_not_power_of_two(self):
    Image.fromarray(np.zeros((12, 12, 3), np.uint8)).save(
        self.folder / "0.png")
    with self.assertRaisesRegex(ValueError, r"0\.png: .*power-of-two.*12x12"):
      data.open_dataset(str(self.folder))

  @parameterized.parameters("folder", "zip")
  def test_resolution_other_than_requested(self, kind):
    with self.assertRaisesRegex(ValueError,
                                r"a\.png: expected resolution 16x16.*8x8"):
      data.open_dataset(self._path(kind), resolution=16)

  def test_truncated_image_is_named_when_read(self):
    # Its header is fine, so only decoding finds the damage.
    good = (self.folder / "c.png").read_bytes()
    (self.folder / "c.png").write_bytes(good[:len(good) // 2])
    ds = data.open_dataset(str(self.folder))
    with self.assertRaisesRegex(ValueError, r"c\.png: cannot decode"):
      ds[2]

  @parameterized.parameters("folder", "zip")
  def test_empty_dataset(self, kind):
    empty = self.root / "empty"
    empty.mkdir()
    (empty / "notes.txt").write_text("no images here")
    path = (str(test_images.zip_folder(empty, self.root / "empty.zip"))
            if kind == "zip" else str(empty))
    with self.assertRaisesRegex(ValueError, f"{path}: expected image files"):
      data.open_dataset(path)

  def test_missing_path(self):
    with self.assertRaisesRegex(ValueError, "nowhere.zip not found"):
      data.open_dataset(str(self.root / "nowhere.zip"))

  @parameterized.parameters("folder", "zip")
  def test_labels_requested_without_dataset_json(self, kind):
    (self.folder / "dataset.json").unlink()
    with self.assertRaisesRegex(ValueError, "dataset.json: labels were "
                                "requested.*does not exist"):
      data.open_dataset(self._path(kind), use_labels=True)
    self.assertEqual(data.open_dataset(self._path(kind)).label_dim, 0)

  @parameterized.parameters("folder", "zip")
  def test_image_missing_from_dataset_json(self, kind):
    (self.folder / "dataset.json").write_text(json.dumps(
        {"labels": [[name, 0] for name in _NAMES if name != "sub/d.png"]}))
    with self.assertRaisesRegex(ValueError,
                                "dataset.json: no label for image sub/d.png"):
      data.open_dataset(self._path(kind), use_labels=True)

  def test_null_and_mixed_labels(self):
    (self.folder / "dataset.json").write_text(json.dumps({"labels": None}))
    with self.assertRaisesRegex(ValueError, "dataset.json: .*null"):
      data.open_dataset(str(self.folder), use_labels=True)
    labels = [[name, 0] for name in _NAMES]
    labels[2][1] = [0.5, 1.0]
    (self.folder / "dataset.json").write_text(json.dumps({"labels": labels}))
    with self.assertRaisesRegex(ValueError, "label of c.png: expected an int"):
      data.open_dataset(str(self.folder), use_labels=True)

  def test_bad_arguments(self):
    with self.assertRaisesRegex(ValueError, "resolution: .*power of two.*12"):
      data.open_dataset(str(self.folder), resolution=12)
    with self.assertRaisesRegex(ValueError,
                                "max_size: expected >= 1 or None, got 0"):
      data.open_dataset(str(self.folder), max_size=0)
    with self.assertRaisesRegex(ValueError, "tfds version directory"):
      data.open_dataset(f"tfds:{self.root / 'missing'}")


if __name__ == "__main__":
  absltest.main()
