"""Safe readers of PyTorch weight files: state dicts and TorchScript modules.

Three containers hold the weights sg3jax reads from PyTorch files:

* a zip archive `<name>/data.pkl` + `<name>/data/<key>` (+ `version`,
  `byteorder`, ...): what `torch.save` writes since PyTorch 1.6, and what
  `torch.jit.save` writes for a TorchScript module (which adds `code/`
  sources and `constants.pkl`, neither read here). `data.pkl` is a pickle
  whose tensors are `torch._utils._rebuild_tensor_v2(storage, offset, size,
  stride, ...)` over storages named by persistent ids `('storage',
  torch.<T>Storage, key, location, numel)`; the raw little-endian elements
  of storage `key` are the archive member `<name>/data/<key>`. A
  TorchScript module's objects are `__torch__.<class>` instances built by
  NEWOBJ + BUILD from their attribute dicts (parameters, buffers and
  submodules are attributes alike);
* the legacy `torch.save` stream (pytorch-fid's weights): pickles of the
  magic number, the protocol version and sys info, then the object (persistent
  ids `('storage', torch.<T>Storage, key, location, numel, view)`), then the
  list of storage keys, then per key an int64 element count and the raw
  elements;
* a pickle that carries one such zip archive as a bytes literal (the
  official metrics' detector `.pkl` files wrap their TorchScript archive
  so). The archive is found by walking the pickle's opcodes
  (`pickletools.genops`), which decodes without building any object.

Nothing in a file is run: every unpickler allows only the globals of these
formats, each mapped to a data-only stand-in, and rejects any other with
`UnsafePickleError` before it could be called. TorchScript code is never
read. Tensors come back as NumPy arrays; PyTorch is not needed.
"""

import io
import os
import pickle
import pickletools
import struct
import zipfile
from typing import Any

import numpy as np

from sg3jax.convert import pickle_reader
from sg3jax.convert.pickle_reader import UnsafePickleError

_ZIP_MAGIC = b"PK\x03\x04"
_SCRIPT_PREFIX = "__torch__"

# Opcodes whose argument may hold an embedded archive: bytes literals, and
# the latin-1 strings that protocol 2 writes bytes as (_codecs.encode).
_BYTES_OPCODES = frozenset({"BINBYTES", "SHORT_BINBYTES", "BINBYTES8",
                            "BYTEARRAY8"})
_STRING_OPCODES = frozenset({"BINUNICODE", "SHORT_BINUNICODE",
                             "BINUNICODE8", "UNICODE"})


class ScriptObject:
  """A TorchScript object (`__torch__.<class>`) of an archive, as data.

  Attributes:
    qualified_name: e.g. '__torch__.torch.nn.modules.conv.Conv2d'.
    attributes: its attribute dict as the archive stores it (tensors as
      arrays, submodules as ScriptObjects, plain values).
  """

  qualified_name = ""

  def __init__(self):
    self.attributes = {}

  def __setstate__(self, state: Any) -> None:
    if not isinstance(state, dict):
      raise ValueError(f"{self.qualified_name}: expected an attribute dict, "
                       f"got {type(state).__name__}")
    self.attributes = state

  def __repr__(self) -> str:
    return f"<{self.qualified_name}>"


def _script_class(qualified_name: str) -> type:
  """A ScriptObject subclass standing for the class `qualified_name`."""
  return type("ScriptObject", (ScriptObject,),
              {"qualified_name": qualified_name, "__slots__": ()})


class _OrderedDict(dict):
  """`collections.OrderedDict` of a state dict; the BUILD that torch.save
  writes after it sets `_metadata` (module versions), dropped here."""

  def __setstate__(self, state: Any) -> None:
    if not isinstance(state, dict):
      raise ValueError(f"OrderedDict: unexpected state {state!r}")


def _first(value: Any, *unused: Any) -> Any:
  """`torch.jit._pickle.restore_type_tag(value, type)` and the typed-list
  builders: the value itself."""
  del unused
  return value


_JIT_PICKLE_HELPERS = ("restore_type_tag", "build_intlist", "build_doublelist",
                       "build_boollist", "build_tensorlist")


class _RestrictedUnpickler(pickle.Unpickler):
  """The globals of torch's state-dict and TorchScript pickles, as data."""

  def __init__(self, file, storage_loader):
    super().__init__(file)
    self._storage_loader = storage_loader

  def find_class(self, module: str, name: str) -> Any:
    full_name = f"{module}.{name}"
    if module == _SCRIPT_PREFIX or module.startswith(_SCRIPT_PREFIX + "."):
      return _script_class(full_name)
    if full_name in pickle_reader._STORAGE_DTYPES:  # pylint: disable=protected-access
      return pickle_reader._ClassRef(  # pylint: disable=protected-access
          full_name, pickle_reader._STORAGE_DTYPES[full_name])  # pylint: disable=protected-access
    if module == "torch._utils" and name == "_rebuild_tensor_v2":
      return pickle_reader._rebuild_tensor_v2  # pylint: disable=protected-access
    if module == "torch._utils" and name == "_rebuild_parameter":
      return pickle_reader._rebuild_parameter  # pylint: disable=protected-access
    if full_name == "collections.OrderedDict":
      return _OrderedDict
    if module == "torch.jit._pickle" and name in _JIT_PICKLE_HELPERS:
      return _first
    raise UnsafePickleError(f"global {full_name} is not allowed in a torch "
                            "weight file")

  def persistent_load(self, pid: Any) -> np.ndarray:
    if not (isinstance(pid, tuple) and len(pid) in (5, 6)
            and pid[0] == "storage"):
      raise ValueError(f"unexpected persistent id {pid!r}")
    storage_type, key, numel = pid[1], pid[2], pid[4]
    if not (isinstance(storage_type, pickle_reader._ClassRef)  # pylint: disable=protected-access
            and storage_type.dtype is not None and isinstance(key, str)
            and isinstance(numel, int) and numel >= 0):
      raise ValueError(f"bad storage id {pid!r}")
    if len(pid) == 6 and pid[5] is not None:
      raise ValueError(f"storage {key}: storage views are not supported")
    return self._storage_loader(storage_type, key, numel)


def _elements(raw: bytes, storage_type, key: str, numel: int) -> np.ndarray:
  """Storage `key`'s `numel` elements from its raw little-endian bytes."""
  if len(raw) < numel * storage_type.dtype.itemsize:
    raise ValueError(f"storage {key}: {len(raw)} bytes hold fewer than "
                     f"{numel} {storage_type.name} elements")
  array = np.frombuffer(raw, storage_type.dtype, count=numel)
  if storage_type.name == "torch.BFloat16Storage":
    return pickle_reader.bfloat16_to_float32(array)
  return array


def _read_archive(data: bytes) -> Any:
  """The object in a torch zip archive (torch.save or torch.jit.save)."""
  archive = zipfile.ZipFile(io.BytesIO(data))
  pickles = [n for n in archive.namelist() if n.endswith("/data.pkl")
             and n.count("/") == 1]
  if len(pickles) != 1:
    raise ValueError(f"expected one <name>/data.pkl in the archive, found "
                     f"{pickles or 'none'}")
  prefix = pickles[0][:-len("data.pkl")]
  cache = {}

  def load_storage(storage_type, key, numel):
    if key not in cache:
      try:
        raw = archive.read(f"{prefix}data/{key}")
      except KeyError:
        raise ValueError(f"storage {key}: no member {prefix}data/{key}"
                         ) from None
      cache[key] = _elements(raw, storage_type, key, numel)
    return cache[key]

  with archive.open(pickles[0]) as f:
    return _RestrictedUnpickler(f, load_storage).load()


class _NoGlobals(pickle.Unpickler):
  """For the plain-data pickles of the legacy header."""

  def find_class(self, module: str, name: str) -> Any:
    raise UnsafePickleError(f"global {module}.{name} is not allowed here")


def _read_legacy(f) -> Any:
  """The object in a legacy (non-zip) torch.save stream, positioned after
  the magic number."""
  if _NoGlobals(f).load() != pickle_reader.TORCH_PROTOCOL_VERSION:
    raise ValueError("unsupported legacy protocol version")
  sys_info = _NoGlobals(f).load()
  if not (isinstance(sys_info, dict) and sys_info.get("little_endian")):
    raise ValueError(f"only little-endian files are supported, sys info "
                     f"{sys_info!r}")
  # The storages follow the object: a first pass learns their types (with
  # zeros for data), then the object is read again with the elements.
  start = f.tell()
  types = {}

  def record_type(storage_type, key, numel):
    types[key] = storage_type
    return np.zeros(numel, storage_type.dtype)

  _RestrictedUnpickler(f, record_type).load()
  keys = _NoGlobals(f).load()
  if not (isinstance(keys, list) and all(k in types for k in keys)):
    raise ValueError(f"storage keys {keys!r} do not match the object's "
                     f"storages {sorted(types)}")
  storages = {}
  for key in keys:
    (count,) = struct.unpack("<q", f.read(8))
    raw = f.read(count * types[key].dtype.itemsize)
    storages[key] = _elements(raw, types[key], key, count)

  def load_storage(storage_type, key, numel):
    if key not in storages or storages[key].size != numel:
      raise ValueError(f"storage {key}: {numel} elements declared, "
                       f"{storages.get(key, np.empty(0)).size} stored")
    return storages[key]

  f.seek(start)
  return _RestrictedUnpickler(f, load_storage).load()


def _embedded_archive(f) -> bytes:
  """The one torch zip archive that the pickle at f carries as a literal."""
  found = []
  for opcode, arg, _ in pickletools.genops(f):
    if opcode.name in _BYTES_OPCODES:
      blob = bytes(arg)
    elif opcode.name in _STRING_OPCODES and arg.startswith("PK\x03\x04"):
      blob = arg.encode("latin-1")
    else:
      continue
    if blob.startswith(_ZIP_MAGIC):
      found.append(blob)
  if len(found) != 1:
    raise ValueError(f"expected a pickle carrying one TorchScript or "
                     f"torch.save archive, found {len(found)}")
  return found[0]


def read_torch_file(path: str | os.PathLike) -> Any:
  """The object in a PyTorch weight file, read without running anything.

  Accepts a torch.save file (zip or legacy), a TorchScript archive
  (torch.jit.save), or a pickle that carries one of those archives (the
  official metrics' detector pickles).

  Returns:
    state dicts as dicts name -> array; TorchScript modules as
    `ScriptObject` trees (see `script_state_dict`).

  Raises:
    UnsafePickleError: a global outside these formats.
    ValueError: a truncated or corrupt file; the message names the file.
  """
  path = os.fspath(path)
  try:
    with open(path, "rb") as f:
      head = f.read(4)
      f.seek(0)
      if head == _ZIP_MAGIC:
        return _read_archive(f.read())
      try:
        magic = _NoGlobals(f).load()
      except UnsafePickleError:
        magic = None
      if magic == pickle_reader.TORCH_MAGIC_NUMBER:
        return _read_legacy(f)
      f.seek(0)
      return _read_archive(_embedded_archive(f))
  except UnsafePickleError as e:
    raise UnsafePickleError(f"{path}: {e}") from None
  except (zipfile.BadZipFile, *pickle_reader._CORRUPT_ERRORS) as e:  # pylint: disable=protected-access
    raise ValueError(f"{path}: cannot read torch weight file: "
                     f"{type(e).__name__}: {e}") from e


def script_state_dict(obj: ScriptObject) -> dict[str, np.ndarray]:
  """Every tensor of a TorchScript module tree by dotted attribute path
  (`layers.conv.weight`), as the module's `state_dict()` names them."""
  result = {}
  for name, value in obj.attributes.items():
    if isinstance(value, np.ndarray):
      result[name] = value
    elif isinstance(value, ScriptObject):
      result.update((f"{name}.{k}", v)
                    for k, v in script_state_dict(value).items())
  return result


def load_state_dict(path: str | os.PathLike) -> dict[str, np.ndarray]:
  """name -> array of a torch.save state dict or a TorchScript module file
  (`read_torch_file` formats)."""
  obj = read_torch_file(path)
  if isinstance(obj, ScriptObject):
    return script_state_dict(obj)
  if isinstance(obj, dict) and all(
      isinstance(k, str) and isinstance(v, np.ndarray)
      for k, v in obj.items()):
    return dict(obj)
  raise ValueError(f"{os.fspath(path)}: expected a state dict or a "
                   f"TorchScript module, got {type(obj).__name__}")
