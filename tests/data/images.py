"""Tiny image datasets written in tests: folders, zips, a tfds builder."""

import json
import os
import pathlib
import zipfile

import numpy as np
from PIL import Image


def random_images(count: int, size: int = 8, channels: int = 3,
                  seed: int = 0) -> np.ndarray:
  """uint8 `[count, size, size, channels]` (channels 1 → `[.., size]`)."""
  rng = np.random.default_rng(seed)
  shape = (count, size, size) + ((channels,) if channels > 1 else ())
  return rng.integers(0, 256, shape, dtype=np.uint8)


def write_folder(root, images: dict[str, np.ndarray],
                 labels: list | None = None) -> pathlib.Path:
  """PNGs at root/fname (subfolders made), plus dataset.json if labels."""
  root = pathlib.Path(root)
  for fname, image in images.items():
    path = root / fname
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(image).save(path)
  if labels is not None:
    (root / "dataset.json").write_text(json.dumps({"labels": labels}))
  return root


def zip_folder(root, dest) -> pathlib.Path:
  """An uncompressed zip of every file under root, names relative to it."""
  root, dest = pathlib.Path(root), pathlib.Path(dest)
  with zipfile.ZipFile(dest, "w", zipfile.ZIP_STORED) as zf:
    for folder, _, files in os.walk(root):
      for fname in files:
        path = pathlib.Path(folder) / fname
        zf.write(path, path.relative_to(root).as_posix())
  return dest


def prepare_tfds(root, data_dir, num_classes: int) -> pathlib.Path:
  """A tfds array_record dataset of the PNGs under root (split 'train').

  Features: `image` (the PNG's bytes, copied) and `label`, a ClassLabel read
  from the file name `.../<label>_*.png`. Returns the version directory.
  """
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
  from etils import epath  # pylint: disable=g-import-not-at-top

  files = sorted(pathlib.Path(root).rglob("*.png"))
  size = np.asarray(Image.open(files[0])).shape

  class TinyImages(tfds.core.GeneratorBasedBuilder, skip_registration=True):
    """The PNGs of one folder."""
    VERSION = tfds.core.Version("1.0.0")
    pkg_dir_path = epath.Path(__file__).parent
    # tfds infers this from the module through importlib_resources, which
    # is not installed; give it (the checksums file would sit beside it).
    code_path = epath.Path(__file__)

    def _info(self):
      return self.dataset_info_from_configs(
          features=tfds.features.FeaturesDict({
              "image": tfds.features.Image(shape=size),
              "label": tfds.features.ClassLabel(num_classes=num_classes)}))

    def _split_generators(self, dl_manager):
      del dl_manager
      return {"train": self._generate_examples()}

    def _generate_examples(self):
      for path in files:
        yield path.name, {"image": os.fspath(path),
                          "label": int(path.name.split("_")[0])}

  builder = TinyImages(data_dir=os.fspath(data_dir),
                       file_format="array_record")
  builder.download_and_prepare()
  return pathlib.Path(builder.data_dir)
