"""Writes training datasets: images → an uncompressed zip (or folder) of PNGs.

The output is the official dataset format (dataset_tool.py):
`00000/img00000000.png`, `00000/img00000001.png`, ..., `00001/img00001000.png`
(the folder is the first five of the eight digits: 1000 images to a folder),
uncompressed PNGs in a stored (uncompressed) zip, plus `dataset.json` at the
root holding
`{"labels": [[fname, label], ...]}`, or `{"labels": null}` when any source
image has no label. Images are optionally cropped and resized with Pillow's
LANCZOS filter; the result must be square, power-of-two, L or RGB, and the
same for every image.
"""

import dataclasses
import io
import itertools
import json
import os
import re
import shutil
import tempfile
import zipfile
from collections.abc import Callable, Iterator

import numpy as np
from PIL import Image
import tqdm

from sg3jax.data import demo
from sg3jax.data import image_dataset
from sg3jax import resolution as resolution_lib

TRANSFORMS = ("center-crop", "center-crop-wide")


@dataclasses.dataclass(frozen=True)
class SourceImage:
  where: str  # the source file (or record), for messages
  image: np.ndarray  # uint8 [H, W] (L) or [H, W, 3] (RGB)
  label: object  # the JSON label (int class or list of floats) or None


def parse_resolution(text: str) -> tuple[int, int]:
  """'256' → (256, 256); '512x384' or '512,384' → (512, 384) (W, H)."""
  match = re.fullmatch(r"\s*(\d+)\s*(?:[x,]\s*(\d+)\s*)?", text)
  if match is None or int(match[1]) < 1 or int(match[2] or 1) < 1:
    raise ValueError(f"resolution: expected 'N' or 'WxH' with positive "
                     f"sizes, got {text!r}")
  width = int(match[1])
  return width, int(match[2] or width)


def _as_l_or_rgb(img: Image.Image) -> np.ndarray:
  """uint8 `[H, W]` for grayscale sources, `[H, W, 3]` for the rest."""
  if img.mode not in ("L", "RGB"):
    # Alpha is dropped; palette, CMYK, etc. become RGB.
    img = img.convert("L" if img.mode in ("1", "LA", "La") else "RGB")
  return np.array(img)


def _load_labels(where: str, data: bytes) -> dict[str, object]:
  try:
    labels = json.loads(data)["labels"]
  except (ValueError, KeyError, TypeError) as e:
    raise ValueError(f"{where}: expected {{\"labels\": [[fname, label], "
                     f"...]}}: {e!r}") from e
  if labels is None:
    return {}
  try:
    return {fname.replace("\\", "/"): label for fname, label in labels}
  except (ValueError, TypeError, AttributeError) as e:
    raise ValueError(f"{where}: 'labels': expected [fname, label] entries: "
                     f"{e}") from e


def _decode(where: str, data: bytes) -> np.ndarray:
  try:
    with Image.open(io.BytesIO(data)) as img:
      return _as_l_or_rgb(img)
  except image_dataset.PIL_ERRORS as e:
    raise ValueError(f"{where}: cannot read the image: {e}") from e


def _iterate_folder(root: str, fnames: list[str]) -> Iterator[SourceImage]:
  labels = {}
  meta = os.path.join(root, image_dataset.LABELS_FILE)
  if os.path.isfile(meta):
    with open(meta, "rb") as f:
      labels = _load_labels(meta, f.read())
  for fname in fnames:
    where = os.path.join(root, fname)
    with open(where, "rb") as f:
      data = f.read()
    yield SourceImage(where, _decode(where, data), labels.get(fname))


def _iterate_zip(path: str, fnames: list[str]) -> Iterator[SourceImage]:
  with zipfile.ZipFile(path) as zf:
    labels = {}
    if image_dataset.LABELS_FILE in zf.namelist():
      labels = _load_labels(os.path.join(path, image_dataset.LABELS_FILE),
                            zf.read(image_dataset.LABELS_FILE))
    for fname in fnames:
      where = os.path.join(path, fname)
      yield SourceImage(where, _decode(where, zf.read(fname)),
                        labels.get(fname))


def _iterate_demo(resolution: resolution_lib.Resolution
                  ) -> Iterator[SourceImage]:
  images, classes = demo.demo_images(resolution)
  for i, (image, cls) in enumerate(zip(images, classes)):
    yield SourceImage(
        f"demo:{resolution_lib.format_resolution(resolution)} image {i}",
                      image, int(cls))


def _iterate_tfds(directory: str, split: str) -> Iterator[SourceImage]:
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
  builder = tfds.builder_from_directory(directory)
  source = builder.as_data_source(split=split)
  has_label = "label" in builder.info.features
  for i in range(len(source)):
    record = source[i]
    image = np.asarray(record["image"])
    if image.ndim == 3 and image.shape[2] == 1:
      image = image[:, :, 0]
    label = None
    if has_label:
      label = np.asarray(record["label"]).tolist()
    yield SourceImage(f"tfds:{directory}:{split} record {i}", image, label)


def open_source(source: str) -> tuple[int, Iterator[SourceImage]]:
  """The number of images in `source` and an iterator over them.

  Args:
    source: a folder of images (recursive; labels from its `dataset.json`),
      a `.zip` of them, `demo[:RESOLUTION]`, or `tfds:DIR[:SPLIT]`.
  """
  kind, location, option = image_dataset.parse_source(source,
                                                      argument="source")
  if kind == "demo":
    try:
      resolution = resolution_lib.parse_resolution(
          option or demo.DEFAULT_RESOLUTION)
    except ValueError:
      raise ValueError(f"source: expected 'demo', 'demo:RESOLUTION' or "
                       f"'demo:HxW', got {source!r}") from None
    return demo.NUM_IMAGES, _iterate_demo(resolution)
  if kind == "tfds":
    if not os.path.isdir(location):
      raise ValueError(f"source: {location} not found (expected a prepared "
                       "tfds version directory)")
    import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
    count = len(tfds.builder_from_directory(location).as_data_source(
        split=option))
    return count, _iterate_tfds(location, option)
  if kind == "zip":
    try:
      with zipfile.ZipFile(location) as zf:
        fnames = image_dataset.list_zip_images(zf)
    except (OSError, zipfile.BadZipFile) as e:
      raise ValueError(f"source: {location}: cannot read the zip: {e}") from e
    return len(fnames), _iterate_zip(location, fnames)
  fnames = image_dataset.list_folder_images(location)
  return len(fnames), _iterate_folder(location, fnames)


def _resize(img: np.ndarray, width: int, height: int) -> np.ndarray:
  if img.shape[1] == width and img.shape[0] == height:
    return img
  return np.array(Image.fromarray(img).resize((width, height),
                                              Image.Resampling.LANCZOS))


def make_transform(transform: str | None,
                   resolution: tuple[int, int] | None
                   ) -> Callable[[np.ndarray], np.ndarray | None]:
  """The crop and resize applied to every image (None drops the image).

  Args:
    transform: None (resize to `resolution`, if given), 'center-crop' (the
      largest centred region of the output's aspect W / H, a square for a
      square output, resized to `resolution`) or
      'center-crop-wide' (as the official tool: the centre round(W * h / w)
      rows of a w x h source, resized to W x H and centred on a black W x W
      canvas; sources narrower than W or with fewer than H such rows are
      dropped).
    resolution: output (W, H), or None to keep the size (no transform only).
  """
  if transform is not None and transform not in TRANSFORMS:
    raise ValueError(f"transform: expected one of {TRANSFORMS} or None, got "
                     f"{transform!r}")
  if transform is not None and resolution is None:
    raise ValueError(f"resolution: required with transform={transform!r}")
  if transform is None:
    if resolution is None:
      return lambda img: img
    return lambda img: _resize(img, *resolution)
  width, height = resolution

  def center_crop(img: np.ndarray) -> np.ndarray:
    crop_h, crop_w = resolution_lib.crop_size(*img.shape[:2], height, width)
    top, left = (img.shape[0] - crop_h) // 2, (img.shape[1] - crop_w) // 2
    return _resize(img[top:top + crop_h, left:left + crop_w], width, height)

  def center_crop_wide(img: np.ndarray) -> np.ndarray | None:
    rows = int(np.round(width * img.shape[0] / img.shape[1]))
    if img.shape[1] < width or rows < height:
      return None
    top = (img.shape[0] - rows) // 2
    img = _resize(img[top:top + rows], width, height)
    canvas = np.zeros((width, width) + img.shape[2:], np.uint8)
    top = (width - height) // 2
    canvas[top:top + height] = img
    return canvas

  return center_crop if transform == "center-crop" else center_crop_wide


class _Writer:
  """Writes into a temporary zip or folder beside `dest`; `commit` moves it
  into place, so a failed run leaves nothing at `dest`."""

  def __init__(self, dest: str):
    dest = os.path.normpath(dest)
    self._dest = dest
    self._is_zip = dest.lower().endswith(".zip")
    if os.path.isdir(dest) and (self._is_zip or os.listdir(dest)):
      raise ValueError(f"dest: {dest} already exists and is a non-empty "
                       "folder (expected a new or empty destination)")
    if os.path.isfile(dest) and (not self._is_zip or os.path.getsize(dest)):
      raise ValueError(f"dest: {dest} already exists (expected a new or "
                       "empty destination)")
    parent = os.path.dirname(os.path.abspath(dest))
    os.makedirs(parent, exist_ok=True)
    prefix = f".{os.path.basename(dest)}.partial-"
    if self._is_zip:
      fd, self._tmp = tempfile.mkstemp(dir=parent, prefix=prefix)
      os.close(fd)
      self._zip = zipfile.ZipFile(self._tmp, "w", zipfile.ZIP_STORED)
    else:
      self._tmp = tempfile.mkdtemp(dir=parent, prefix=prefix)

  def write(self, fname: str, data: bytes) -> None:
    if self._is_zip:
      self._zip.writestr(fname, data)
      return
    path = os.path.join(self._tmp, fname)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
      f.write(data)

  def commit(self) -> None:
    if self._is_zip:
      self._zip.close()
      os.replace(self._tmp, self._dest)
      return
    if os.path.isdir(self._dest):
      os.rmdir(self._dest)  # empty, checked above
    os.rename(self._tmp, self._dest)

  def abort(self) -> None:
    if self._is_zip:
      self._zip.close()
      os.remove(self._tmp)
    else:
      shutil.rmtree(self._tmp, ignore_errors=True)


def _check_attributes(where: str, img: np.ndarray,
                      first: tuple[str, tuple[int, ...]] | None, *,
                      non_square: bool) -> None:
  """Square and power-of-two (or, when `non_square` was asked for, a
  non-square `sg3jax.resolution`), L or RGB, and like the first image."""
  height, width = img.shape[:2]
  channels = img.shape[2] if img.ndim == 3 else 1
  if first is None:
    if width != height and non_square:
      resolution_lib.parse_resolution((height, width), what=where)
    elif width != height:
      raise ValueError(f"{where}: expected a square image after crop and "
                       f"resize, got {width}x{height} (use --transform or "
                       "--resolution, which may be non-square)")
    if channels not in (1, 3):
      raise ValueError(f"{where}: expected 1 or 3 channels, got {channels}")
    if width == height and width & (width - 1):
      raise ValueError(f"{where}: expected a power-of-two size after crop "
                       f"and resize, got {width}x{height} (use "
                       "--resolution)")
    return
  first_where, first_shape = first
  if (height, width, channels) != first_shape:
    raise ValueError(f"{where}: expected height, width, channels "
                     f"{first_shape} like {first_where}, got "
                     f"{(height, width, channels)}")


def convert_dataset(source: str, dest: str, *,
                    resolution: tuple[int, int] | int | None = None,
                    transform: str | None = None,
                    max_images: int | None = None,
                    progress: bool = True) -> int:
  """Writes `source`'s images into a dataset zip or folder at `dest`.

  Args:
    source: a folder of images, a `.zip` of them, `demo[:RESOLUTION]` or
      `tfds:DIR[:SPLIT]` (see `open_source`).
    dest: a `.zip` path (an uncompressed zip) or a folder; it must not exist
      or be empty.
    resolution: output size, N or (W, H) (official order; non-square: see
      `sg3jax.resolution`); None keeps the source size, which must then be
      a power-of-two square.
    transform: None, 'center-crop' or 'center-crop-wide' (see
      `make_transform`).
    max_images: read at most this many source images.
    progress: show a tqdm progress bar.

  Returns:
    The number of images written.
  """
  if not dest:
    raise ValueError("dest: expected a .zip path or a folder, got ''")
  if max_images is not None and max_images < 1:
    raise ValueError(f"max_images: expected >= 1 or None, got {max_images}")
  if isinstance(resolution, int):
    resolution = (resolution, resolution)
  transform_image = make_transform(transform, resolution)
  count, images = open_source(source)
  if max_images is not None:
    count = min(count, max_images)
    images = itertools.islice(images, max_images)
  if count == 0:
    raise ValueError(f"source: {source}: expected images, found none")
  writer = _Writer(dest)
  try:
    first, labels = None, []
    for item in tqdm.tqdm(images, total=count, unit="img",
                          disable=not progress):
      img = transform_image(item.image)
      if img is None:
        continue
      _check_attributes(item.where, img, first, non_square=(
          resolution is not None and resolution[0] != resolution[1]))
      if first is None:
        first = (item.where, (img.shape[0], img.shape[1],
                              img.shape[2] if img.ndim == 3 else 1))
      index = f"{len(labels):08d}"
      fname = f"{index[:5]}/img{index}.png"
      png = io.BytesIO()
      # Uncompressed PNG, as the official tool writes: fast to decode.
      Image.fromarray(img).save(png, format="png", compress_level=0)
      writer.write(fname, png.getvalue())
      labels.append([fname, item.label])
    if not labels:
      raise ValueError(f"source: {source}: the transform dropped every image")
    has_labels = all(label is not None for _, label in labels)
    writer.write(image_dataset.LABELS_FILE, json.dumps(
        {"labels": labels if has_labels else None}).encode())
  except BaseException:
    writer.abort()
    raise
  writer.commit()
  return len(labels)
