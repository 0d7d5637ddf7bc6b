"""Image datasets for training: folders, zips, tfds array_record, the demo.

`open_dataset(path)` returns an `ImageDataset`: a random-access source
(grain's `RandomAccessDataSource` protocol) of `{"image": uint8 [H, W, C],
"label": float32 [label_dim]}` items, with the official loader's semantics
(training/dataset.py): `max_size` keeps a fixed-seed subset, `mirror`
appends the horizontal flips (xflip), integer class labels become one-hot.

Folder and zip datasets are checked eagerly: `open_dataset` reads every
image header (PIL reads no pixels for that) and raises a `ValueError`
naming the first bad file, so a bad dataset fails before training starts.
Pixel data that cannot be decoded is reported, with the file, when read.
"""

import io
import json
import operator
import os
import threading
import zipfile
from collections.abc import Sequence

import numpy as np
from PIL import Image

from sg3jax.data import demo
from sg3jax.resolution import format_resolution
from sg3jax.resolution import image_shape
from sg3jax.resolution import parse_resolution
from sg3jax.resolution import Resolution

# PIL modes the loader accepts and their channel counts; `sg3jax dataset`
# converts anything else (palette, CMYK, 16-bit) to L or RGB.
_MODE_CHANNELS = {"L": 1, "RGB": 3, "RGBA": 4}
LABELS_FILE = "dataset.json"  # labels of the official dataset format
_TFDS_PREFIX = "tfds:"
_DEMO_PREFIX = "demo"
_DEFAULT_TFDS_SPLIT = "train"
_OPEN_LOCK = threading.Lock()  # guards opening a zip in a new process


def is_image_file(fname: str) -> bool:
  """Whether `fname` has an extension PIL reads (the official test)."""
  return os.path.splitext(fname)[1].lower() in Image.registered_extensions()


def list_folder_images(root: str) -> list[str]:
  """Image files under `root`, recursively: sorted '/'-separated paths."""
  names = []
  for folder, _, files in os.walk(root):
    for fname in files:
      rel = os.path.relpath(os.path.join(folder, fname), root)
      names.append(rel.replace(os.sep, "/"))
  return sorted(name for name in names if is_image_file(name))


def list_zip_images(zf: zipfile.ZipFile) -> list[str]:
  """Image members of an open zip: sorted archive names."""
  return sorted(name for name in zf.namelist()
                if not name.endswith("/") and is_image_file(name))


def parse_source(path: str, *,
                 argument: str = "path") -> tuple[str, str, str | None]:
  """Splits a dataset path into (kind, location, option).

  kinds: "demo" (option: the resolution or None), "tfds" (location: the
  prepared version directory, option: the split), "zip", "dir". Errors name
  `argument`.
  """
  if path == _DEMO_PREFIX or path.startswith(_DEMO_PREFIX + ":"):
    return "demo", _DEMO_PREFIX, path.partition(":")[2] or None
  if path.startswith(_TFDS_PREFIX):
    rest = path[len(_TFDS_PREFIX):]
    # The split follows the first ':' after the last '/', so a split such
    # as 'train[:80%]' stays whole.
    colon = rest.find(":", rest.rfind("/") + 1)
    if colon < 0:
      return "tfds", rest, _DEFAULT_TFDS_SPLIT
    return "tfds", rest[:colon], rest[colon + 1:] or _DEFAULT_TFDS_SPLIT
  if os.path.isdir(path):
    return "dir", path, None
  if os.path.isfile(path) and path.lower().endswith(".zip"):
    return "zip", path, None
  if not os.path.exists(path):
    raise ValueError(f"{argument}: {path} not found (expected a folder, a "
                     ".zip, 'tfds:DIR[:SPLIT]' or 'demo[:RESOLUTION]')")
  raise ValueError(f"{argument}: {path}: expected a folder, a .zip, "
                   "'tfds:DIR[:SPLIT]' or 'demo[:RESOLUTION]'")


def _is_power_of_two(n: int) -> bool:
  return n >= 1 and n & (n - 1) == 0


def _describe(height: int, width: int) -> str:
  """A size in messages: "8x8" (square), "32x64 (height x width)"."""
  if height == width:
    return f"{width}x{height}"
  return f"{height}x{width} (height x width)"


class _ShapeCheck:
  """Checks that images have one valid resolution (a power-of-two square,
  or a non-square `sg3jax.resolution`) and channel count, naming files."""

  def __init__(self, resolution: Resolution | None):
    self.resolution = resolution
    self.shape = None  # [H, W, C] of the first image
    self.first = None  # where the first image came from

  def __call__(self, where: str, shape: Sequence[int]) -> None:
    height, width, channels = shape
    if self.resolution is not None and (
        (height, width) != image_shape(self.resolution)):
      raise ValueError(f"{where}: expected resolution "
                       f"{_describe(*image_shape(self.resolution))} (the "
                       f"requested resolution), got {_describe(height, width)}")
    if self.shape is None:
      if height != width:
        parse_resolution((height, width), what=where)
      elif not _is_power_of_two(height):
        raise ValueError(f"{where}: expected a power-of-two resolution, "
                         f"got {width}x{height}")
      self.shape, self.first = tuple(shape), where
      return
    first_h, first_w = self.shape[:2]
    if (height, width) != (first_h, first_w):
      kind = "square" if first_h == first_w else "non-square"
      raise ValueError(f"{where}: expected {_describe(first_h, first_w)} "
                       f"like {self.first} (a {kind} image), got "
                       f"{_describe(height, width)}")
    if channels != self.shape[2]:
      raise ValueError(f"{where}: expected {self.shape[2]} channels like "
                       f"{self.first}, got {channels}")


def _channels_of_mode(where: str, mode: str) -> int:
  if mode not in _MODE_CHANNELS:
    raise ValueError(f"{where}: expected an L, RGB or RGBA image, got PIL "
                     f"mode {mode!r} (`sg3jax dataset` converts it)")
  return _MODE_CHANNELS[mode]


# What PIL raises for files it cannot identify or decode.
PIL_ERRORS = (OSError, SyntaxError, ValueError, Image.DecompressionBombError)


def _decode(where: str, data: bytes) -> np.ndarray:
  """Decodes image bytes: uint8 `[H, W, C]`."""
  try:
    with Image.open(io.BytesIO(data)) as img:
      mode = img.mode
      image = np.array(img)
  except PIL_ERRORS as e:
    raise ValueError(f"{where}: cannot decode the image: {e}") from e
  channels = _channels_of_mode(where, mode)
  return image.reshape(image.shape[0], image.shape[1], channels)


def _class_count(classes: np.ndarray, where: str) -> int:
  """Checks integer classes; returns the label dimension (max + 1)."""
  if np.any(classes < 0):
    raise ValueError(f"{where}: expected class labels >= 0, got "
                     f"{int(classes.min())}")
  return int(classes.max()) + 1


class _Backend:
  """Raw images and labels of one storage format (no max_size/mirror)."""

  name: str
  image_shape: tuple[int, int, int]  # [H, W, C]
  label_dim: int  # 0 unless labels were requested

  def __len__(self) -> int:
    raise NotImplementedError

  def read(self, raw_idx: int) -> tuple[np.ndarray, np.ndarray]:
    """uint8 image `[H, W, C]` and float32 label `[label_dim]`."""
    raise NotImplementedError

  def read_label(self, raw_idx: int) -> np.ndarray:
    """The float32 label `[label_dim]` alone, without decoding the image."""
    raise NotImplementedError


class _LabelTable:
  """Labels of a folder or zip: one-hot int classes or float vectors."""

  def __init__(self, where: str, meta, fnames: Sequence[str]):
    if not isinstance(meta, dict) or "labels" not in meta:
      raise ValueError(f"{where}: expected {{\"labels\": [[fname, label], "
                       f"...]}}, got {type(meta).__name__} without 'labels'")
    entries = meta["labels"]
    if entries is None:
      raise ValueError(f"{where}: labels were requested (use_labels=True) "
                       "but 'labels' is null")
    if not isinstance(entries, list):
      raise ValueError(f"{where}: 'labels': expected a list of [fname, "
                       f"label], got {type(entries).__name__}")
    table = {}
    for entry in entries:
      if (not isinstance(entry, (list, tuple)) or len(entry) != 2
          or not isinstance(entry[0], str)):
        raise ValueError(f"{where}: 'labels': expected [fname, label] "
                         f"entries, got {entry!r}")
      table[entry[0].replace("\\", "/")] = entry[1]
    values = []
    for fname in fnames:
      if fname not in table:
        raise ValueError(f"{where}: no label for image {fname}")
      values.append(table[fname])
    self.classes = self.vectors = None
    if _is_class(values[0]):
      for fname, value in zip(fnames, values):
        if not _is_class(value):
          raise ValueError(f"{where}: label of {fname}: expected an int "
                           f"class like {fnames[0]}, got {value!r}")
      self.classes = np.asarray(values, np.int64)
      self.dim = _class_count(self.classes, where)
      return
    if not isinstance(values[0], list):
      raise ValueError(f"{where}: label of {fnames[0]}: expected an int "
                       f"class or a list of floats, got {values[0]!r}")
    dim = len(values[0])
    for fname, value in zip(fnames, values):
      if (not isinstance(value, list) or len(value) != dim
          or not all(_is_number(v) for v in value)):
        raise ValueError(f"{where}: label of {fname}: expected a list of "
                         f"{dim} floats like {fnames[0]}, got {value!r}")
    self.vectors = np.asarray(values, np.float32).reshape(len(values), dim)
    self.dim = dim

  def __getitem__(self, raw_idx: int) -> np.ndarray:
    if self.vectors is not None:
      return self.vectors[raw_idx].copy()
    label = np.zeros([self.dim], np.float32)
    label[self.classes[raw_idx]] = 1
    return label


def _is_number(value) -> bool:
  return isinstance(value, (int, float)) and not isinstance(value, bool)


def _is_class(value) -> bool:
  if isinstance(value, float):
    return value.is_integer()
  return isinstance(value, int) and not isinstance(value, bool)


class _FileBackend(_Backend):
  """A folder of images or an uncompressed zip of them (dataset_tool's).

  The zip is opened lazily, once per process (a forked or unpickled copy
  reopens it), and its members are read under a lock so that grain's reader
  threads can share it; decoding happens outside the lock.
  """

  def __init__(self, path: str, kind: str, *,
               resolution: Resolution | None,
               use_labels: bool):
    self._path = path
    self._kind = kind
    self._zip = None
    self._zip_pid = None
    self._lock = None
    self.name = os.path.splitext(os.path.basename(os.path.normpath(path)))[0]
    if kind == "zip":
      try:
        names = self._get_zip().namelist()
        self._fnames = list_zip_images(self._zip)
      except (OSError, zipfile.BadZipFile) as e:
        raise ValueError(f"path: {path}: cannot read the zip: {e}") from e
      has_meta = LABELS_FILE in names
    else:
      self._fnames = list_folder_images(path)
      has_meta = os.path.isfile(os.path.join(path, LABELS_FILE))
    if not self._fnames:
      raise ValueError(f"path: {path}: expected image files, found none")
    self.image_shape = self._scan(resolution)
    self._labels = None
    self.label_dim = 0
    if use_labels:
      where = self._where(LABELS_FILE)
      if not has_meta:
        raise ValueError(f"{where}: labels were requested (use_labels=True) "
                         "but the file does not exist")
      try:
        meta = json.loads(self._read_bytes(LABELS_FILE))
      except (OSError, ValueError) as e:
        raise ValueError(f"{where}: cannot read the labels: {e}") from e
      self._labels = _LabelTable(where, meta, self._fnames)
      self.label_dim = self._labels.dim

  def _where(self, fname: str) -> str:
    return os.path.join(self._path, fname)

  def _get_zip(self) -> zipfile.ZipFile:
    """This process's zip handle (a forked child must not share a file
    offset with its parent, so it opens its own), with a fresh lock."""
    if self._zip_pid != os.getpid():
      with _OPEN_LOCK:
        if self._zip_pid != os.getpid():
          self._zip = zipfile.ZipFile(self._path)
          self._lock = threading.Lock()
          self._zip_pid = os.getpid()
    return self._zip

  def _open(self, fname: str):
    if self._kind == "zip":
      return self._get_zip().open(fname)
    return open(self._where(fname), "rb")

  def _read_bytes(self, fname: str) -> bytes:
    if self._kind == "zip":
      zf = self._get_zip()
      with self._lock:
        return zf.read(fname)
    with open(self._where(fname), "rb") as f:
      return f.read()

  def _scan(self, resolution: Resolution | None) -> tuple[int, int, int]:
    """Reads every image header; returns the common shape `[H, W, C]`."""
    check = _ShapeCheck(resolution)
    for fname in self._fnames:
      where = self._where(fname)
      try:
        with self._open(fname) as f, Image.open(f) as img:
          size, mode = img.size, img.mode
      except PIL_ERRORS as e:
        raise ValueError(f"{where}: cannot read the image: {e}") from e
      check(where, (size[1], size[0], _channels_of_mode(where, mode)))
    return check.shape

  def __len__(self) -> int:
    return len(self._fnames)

  def read(self, raw_idx: int) -> tuple[np.ndarray, np.ndarray]:
    fname = self._fnames[raw_idx]
    where = self._where(fname)
    try:
      data = self._read_bytes(fname)
    except OSError as e:
      raise ValueError(f"{where}: cannot read the image: {e}") from e
    image = _decode(where, data)
    if image.shape != self.image_shape:
      raise ValueError(f"{where}: expected an image of shape "
                       f"{list(self.image_shape)}, got {list(image.shape)}")
    return image, self.read_label(raw_idx)

  def read_label(self, raw_idx: int) -> np.ndarray:
    if self._labels is None:
      return np.zeros([0], np.float32)
    return self._labels[raw_idx]

  def __getstate__(self):
    return dict(self.__dict__, _zip=None, _zip_pid=None, _lock=None)


class _TfdsBackend(_Backend):
  """A prepared tfds dataset in array_record format (no TensorFlow).

  Features: `image` (uint8 `[H, W, C]`) and, for labels, `label`: a
  ClassLabel (one-hot) or a float vector.
  """

  def __init__(self, directory: str, split: str, *,
               resolution: Resolution | None,
               use_labels: bool):
    import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
    self._where = f"{_TFDS_PREFIX}{directory}:{split}"
    if not os.path.isdir(directory):
      raise ValueError(f"path: {self._where}: {directory} not found "
                       "(expected a prepared tfds version directory)")
    try:
      builder = tfds.builder_from_directory(directory)
    except Exception as e:  # tfds raises several types for bad directories.
      raise ValueError(f"path: {self._where}: cannot open the tfds "
                       f"dataset: {e}") from e
    features = builder.info.features
    self.name = builder.info.name
    self._directory, self._split = directory, split
    self._source = self._label_source = None
    if "image" not in features:
      raise ValueError(f"{self._where}: expected an 'image' feature, got "
                       f"{sorted(features.keys())}")
    self.label_dim = 0
    self._num_classes = None
    if use_labels:
      if "label" not in features:
        raise ValueError(f"{self._where}: labels were requested "
                         "(use_labels=True) but there is no 'label' feature "
                         f"(features: {sorted(features.keys())})")
      label = features["label"]
      if isinstance(label, tfds.features.ClassLabel):
        self._num_classes = self.label_dim = label.num_classes
      elif len(label.shape) == 1 and label.shape[0] is not None:
        self.label_dim = label.shape[0]
      else:
        raise ValueError(f"{self._where}: 'label': expected a ClassLabel or a "
                         f"vector, got {type(label).__name__} of shape "
                         f"{label.shape}")
    try:
      size = len(self._get_source())
    except (ValueError, KeyError) as e:
      raise ValueError(f"path: {self._where}: cannot open split "
                       f"{split!r}: {e}") from e
    if size == 0:
      raise ValueError(f"path: {self._where}: expected images, found none")
    self._size = size
    # tfds checked the declared shape of every image when it was prepared;
    # an undeclared (None) size is checked on the first record here and on
    # every record when read.
    shape = tuple(features["image"].shape)
    if None in shape:
      shape = self._get_source()[0]["image"].shape
      shape = shape if len(shape) == 3 else (*shape, 1)
    check = _ShapeCheck(resolution)
    check(f"{self._where} record 0", shape)
    self.image_shape = tuple(int(n) for n in shape)

  def _open_source(self, *, decode_images: bool):
    import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
    builder = tfds.builder_from_directory(self._directory)
    decoders = None if decode_images else {
        "image": tfds.decode.SkipDecoding()}
    return builder.as_data_source(split=self._split, decoders=decoders)

  def _get_source(self):
    if self._source is None:
      self._source = self._open_source(decode_images=True)
    return self._source

  def _get_label_source(self):
    """The records with their images left encoded (labels read fast)."""
    if self._label_source is None:
      self._label_source = self._open_source(decode_images=False)
    return self._label_source

  def __len__(self) -> int:
    return self._size

  def read(self, raw_idx: int) -> tuple[np.ndarray, np.ndarray]:
    record = self._get_source()[raw_idx]
    image = np.asarray(record["image"])
    if image.ndim == 2:
      image = image[:, :, None]
    if image.shape != self.image_shape or image.dtype != np.uint8:
      raise ValueError(f"{self._where} record {raw_idx}: expected uint8 "
                       f"{list(self.image_shape)}, got {image.dtype} "
                       f"{list(image.shape)}")
    return image, self._label(record)

  def read_label(self, raw_idx: int) -> np.ndarray:
    if self.label_dim == 0:
      return np.zeros([0], np.float32)
    return self._label(self._get_label_source()[raw_idx])

  def _label(self, record: dict) -> np.ndarray:
    """The float32 label `[label_dim]` of a record (one-hot for classes)."""
    if self.label_dim == 0:
      return np.zeros([0], np.float32)
    if self._num_classes is not None:
      label = np.zeros([self.label_dim], np.float32)
      label[int(record["label"])] = 1
      return label
    return np.asarray(record["label"], np.float32)

  def __getstate__(self):
    return dict(self.__dict__, _source=None, _label_source=None)


class _ArrayBackend(_Backend):
  """Images and integer classes held in memory (the demo dataset)."""

  def __init__(self, name: str, images: np.ndarray, classes: np.ndarray, *,
               use_labels: bool):
    self.name = name
    self._images = images
    self._classes = classes
    self.image_shape = tuple(images.shape[1:])
    self.label_dim = _class_count(classes, name) if use_labels else 0

  def __len__(self) -> int:
    return len(self._images)

  def read(self, raw_idx: int) -> tuple[np.ndarray, np.ndarray]:
    return self._images[raw_idx].copy(), self.read_label(raw_idx)

  def read_label(self, raw_idx: int) -> np.ndarray:
    label = np.zeros([self.label_dim], np.float32)
    if self.label_dim:
      label[self._classes[raw_idx]] = 1
    return label


def _open_demo(option: str | None, *, resolution: Resolution | None,
               use_labels: bool) -> _ArrayBackend:
  size = demo.DEFAULT_RESOLUTION if resolution is None else resolution
  if option is not None:
    try:
      size = parse_resolution(option)
    except ValueError:
      raise ValueError(f"path: expected 'demo', 'demo:RESOLUTION' or "
                       f"'demo:HxW', got 'demo:{option}'") from None
    if resolution is not None and size != resolution:
      raise ValueError(f"resolution: expected {format_resolution(size)} for "
                       f"'demo:{option}' (or no resolution), got "
                       f"{format_resolution(resolution)}")
  images, classes = demo.demo_images(size)
  return _ArrayBackend(f"demo{format_resolution(size)}", images, classes,
                       use_labels=use_labels)


class ImageDataset:
  """Random-access images and labels, as grain's data sources are.

  Items are `{"image": uint8 [H, W, C], "label": float32 [label_dim]}`
  (`label_dim` 0 gives labels of shape `[0]`). Items `0..n-1` are the kept
  images in storage order (sorted file names); with `mirror`, items
  `n..2n-1` are their horizontal flips. Picklable: a zip is reopened in
  each process.
  """

  def __init__(self, backend: _Backend, *, max_size: int | None = None,
               mirror: bool = False):
    self._backend = backend
    raw_idx = np.arange(len(backend), dtype=np.int64)
    if max_size is not None and raw_idx.size > max_size:
      # The official subset: the first max_size of a seed-0 shuffle, sorted.
      np.random.RandomState(0).shuffle(raw_idx)
      raw_idx = np.sort(raw_idx[:max_size])
    self._raw_idx = raw_idx
    self._mirror = mirror

  @property
  def name(self) -> str:
    return self._backend.name

  @property
  def image_shape(self) -> tuple[int, int, int]:
    """`[H, W, C]` of every image."""
    return self._backend.image_shape

  @property
  def resolution(self) -> Resolution:
    """The images' size: an int if square, else `(H, W)`."""
    return parse_resolution(self.image_shape[:2])

  @property
  def num_channels(self) -> int:
    return self.image_shape[2]

  @property
  def label_dim(self) -> int:
    return self._backend.label_dim

  @property
  def has_labels(self) -> bool:
    return self.label_dim > 0

  @property
  def mirror(self) -> bool:
    return self._mirror

  def __len__(self) -> int:
    return self._raw_idx.size * (2 if self._mirror else 1)

  def raw_index(self, index: int) -> tuple[int, bool]:
    """The storage index of item `index` and whether it is flipped."""
    index = operator.index(index)
    size = len(self)
    if not -size <= index < size:
      raise IndexError(f"index: expected -{size} <= index < {size}, got "
                       f"{index}")
    index %= size
    count = self._raw_idx.size
    return int(self._raw_idx[index % count]), index >= count

  def get_label(self, index: int) -> np.ndarray:
    """Item `index`'s float32 label `[label_dim]` (official get_label)."""
    return self._backend.read_label(self.raw_index(index)[0])

  def __getitem__(self, index: int) -> dict[str, np.ndarray]:
    raw_idx, flip = self.raw_index(index)
    image, label = self._backend.read(raw_idx)
    if flip:
      image = image[:, ::-1]
    return {"image": np.ascontiguousarray(image), "label": label}

  def __repr__(self) -> str:
    return (f"ImageDataset(name={self.name!r}, len={len(self)}, "
            f"image_shape={list(self.image_shape)}, "
            f"label_dim={self.label_dim}, mirror={self._mirror})")


def open_dataset(path: str, *, resolution: Resolution | str | None = None,
                 use_labels: bool = False, max_size: int | None = None,
                 mirror: bool = False) -> ImageDataset:
  """Opens an image dataset for training.

  Args:
    path: one of
      - a folder of images, searched recursively (every extension PIL
        reads), with an optional `dataset.json` at its root;
      - an uncompressed `.zip` of the same (the official dataset format,
        as `sg3jax dataset` and the official dataset_tool.py write it);
      - `tfds:DIR[:SPLIT]`: a prepared tfds version directory in
        array_record format (split default 'train'), with features `image`
        and optionally `label`;
      - `demo`, `demo:RESOLUTION` or `demo:HxW`: the embedded demo dataset
        (2000 RGB images of discs, squares and rings, the 3 classes;
        resolution 32 unless given).
      `dataset.json` holds `{"labels": [[fname, label], ...]}` with fname
      relative to the root; a label is an int class (made one-hot, label_dim
      = the largest class + 1) or a list of floats.
    resolution: the expected image size (N, "HxW" or (H, W), see
      `sg3jax.resolution`), or None to take the first image's. Images are
      never resized (see `sg3jax dataset`).
    use_labels: return the labels; False gives labels of shape `[0]`.
    max_size: keep at most this many images: the official subset (the first
      max_size of a seed-0 shuffle, in storage order). Applied before mirror.
    mirror: append the horizontal flip of every image (doubles the length).

  Returns:
    An `ImageDataset` of `{"image": uint8 [H, W, C], "label": float32
    [label_dim]}` items.

  Raises:
    ValueError: naming the file (or record) and what is wrong, with expected
      and actual values: path not found, no images, an image whose size is
      not a resolution (a power-of-two square or a valid non-square HxW),
      not the requested or the first image's resolution, with other channels than the first image, unreadable or
      corrupt; labels requested but missing, or an image without a label.
  """
  if resolution is not None:
    resolution = parse_resolution(resolution)
    if isinstance(resolution, int) and not _is_power_of_two(resolution):
      raise ValueError(f"resolution: expected a power of two, HxW or None, "
                       f"got {resolution}")
  if max_size is not None and max_size < 1:
    raise ValueError(f"max_size: expected >= 1 or None, got {max_size}")
  kind, location, option = parse_source(path)
  if kind == "demo":
    backend = _open_demo(option, resolution=resolution, use_labels=use_labels)
  elif kind == "tfds":
    backend = _TfdsBackend(location, option, resolution=resolution,
                           use_labels=use_labels)
  else:
    backend = _FileBackend(location, kind, resolution=resolution,
                           use_labels=use_labels)
  return ImageDataset(backend, max_size=max_size, mirror=mirror)
