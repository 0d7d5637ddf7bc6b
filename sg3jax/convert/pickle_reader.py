"""Safe reader of NVIDIA's official StyleGAN3 network pickles.

An official `network-snapshot-*.pkl` (and the NGC `stylegan3-*.pkl`, and
the StyleGAN2-ADA pickles of the same form) is one pickle of a plain dict
`{'G', 'D', 'G_ema', 'augment_pipe', 'training_set_kwargs'}`. Each network
is a *persistent object*: a call `_reconstruct_persistent_obj(meta)` whose
`meta` holds the class name, the source of its Python module (never run
here) and the object's `__dict__` (`_init_kwargs`, `_parameters`,
`_buffers`, `_modules`, plain attributes). Each tensor is
`_rebuild_tensor_v2(storage, offset, size, stride, ...)` over a storage
`_load_from_bytes(b)`, where `b` is PyTorch's legacy serialization of one
storage (see `_read_storage`).

The reader calls nothing from the file: `find_class` allows only the globals
of that format, each mapped to a data-only function of this module, and
rejects any other global with `UnsafePickleError` when the unpickler meets
it, before it can be called. Tensors come back as NumPy arrays; neither
PyTorch nor NVIDIA's code is needed.
"""

import contextlib
import dataclasses
import io
import math
import os
import pickle
import struct
from collections.abc import Callable
from typing import Any, BinaryIO

import numpy as np

# Top-level keys every network pickle has; `augment_pipe` and
# `training_set_kwargs` may be absent (NGC files) and then read as None.
_NETWORK_KEYS = ("G", "D", "G_ema")
_OPTIONAL_KEYS = ("augment_pipe", "training_set_kwargs")

# The legacy torch serialization of a storage starts with these two pickles.
TORCH_MAGIC_NUMBER = 0x1950A86A20F9469CFC6C
TORCH_PROTOCOL_VERSION = 1001

# torch.<Name>Storage -> little-endian element dtype as stored in the file
# (bfloat16 as its bits, see `bfloat16_to_float32`).
_STORAGE_DTYPES = {
    "torch.FloatStorage": np.dtype("<f4"),
    "torch.HalfStorage": np.dtype("<f2"),
    "torch.DoubleStorage": np.dtype("<f8"),
    "torch.BFloat16Storage": np.dtype("<u2"),
    "torch.LongStorage": np.dtype("<i8"),
    "torch.IntStorage": np.dtype("<i4"),
    "torch.ShortStorage": np.dtype("<i2"),
    "torch.CharStorage": np.dtype("i1"),
    "torch.ByteStorage": np.dtype("u1"),
    "torch.BoolStorage": np.dtype("?"),
}

# Errors that decoding a truncated or corrupt pickle can raise.
_CORRUPT_ERRORS = (pickle.UnpicklingError, EOFError, ValueError, TypeError,
                   KeyError, IndexError, AttributeError, struct.error,
                   OverflowError, RecursionError)


class UnsafePickleError(ValueError):
  """A pickle references a global outside the network-pickle allow-list."""


@dataclasses.dataclass(frozen=True)
class PersistentRecord:
  """One official persistent object (a network or a submodule), as data.

  Attributes:
    class_name: the official class, e.g. 'Generator', 'AugmentPipe'.
    module_name: the module name from `meta` if it has one, else ''.
    version: the `torch_utils.persistence` format version (6 now).
    init_args: the constructor's positional arguments (`_init_args`).
    init_kwargs: the constructor's keyword arguments (`_init_kwargs`);
      EasyDicts read as plain dicts.
    state_dict: official dotted name (`mapping.fc0.weight`) -> array, as
      `torch.nn.Module.state_dict()` orders it: own parameters, own
      persistent buffers, then each submodule's entries.
    attributes: the object's other plain attributes (`img_resolution`,
      `layer_names`, ...), without torch bookkeeping (`training`, `_*`).
  """
  class_name: str
  module_name: str
  version: int
  init_args: tuple
  init_kwargs: dict
  state_dict: dict[str, np.ndarray]
  attributes: dict


class _Sealed:
  """Base of the objects `find_class` hands out: BUILD on them is refused.

  BUILD (`inst.__setstate__(state)`) is the one opcode that can mutate an
  object the unpickler did not create; refusing it keeps this module's
  allow-list objects as they are.
  """
  __slots__ = ()

  def __setstate__(self, state: Any) -> None:
    raise ValueError(f"pickle sets the state of {self!r}")


class _Global(_Sealed):
  """An allowed callable global, standing for a data-only function here."""
  __slots__ = ("name", "fn")

  def __init__(self, name: str, fn: Callable[..., Any]):
    self.name = name
    self.fn = fn

  def __call__(self, *args: Any) -> Any:
    return self.fn(*args)

  def __repr__(self) -> str:
    return f"<global {self.name}>"


class _ClassRef(_Sealed):
  """An allowed class global that the format only passes as an argument.

  `numpy.ndarray` (to `_reconstruct`) and `torch.*Storage` (in a storage's
  persistent id); `dtype` is the storage's element dtype, else None.
  """
  __slots__ = ("name", "dtype")

  def __init__(self, name: str, dtype: np.dtype | None = None):
    self.name = name
    self.dtype = dtype

  def __repr__(self) -> str:
    return f"<class {self.name}>"


def _int_tuple(value: Any, what: str) -> tuple[int, ...]:
  """`value` as a tuple of non-negative ints, else ValueError."""
  if not isinstance(value, (tuple, list)) or not all(
      isinstance(v, int) and v >= 0 for v in value):
    raise ValueError(f"{what}: expected non-negative ints, got {value!r}")
  return tuple(value)


def _rebuild_tensor_v2(storage: Any, storage_offset: Any, size: Any,
                       stride: Any, requires_grad: Any,
                       backward_hooks: Any, metadata: Any = None
                       ) -> np.ndarray:
  """`torch._utils._rebuild_tensor_v2`: a strided view of a flat storage.

  Element `idx` of the tensor is `storage[storage_offset + sum(idx * stride)]`
  (offset and strides in elements). `requires_grad`, `backward_hooks` and
  `metadata` carry no data and are ignored.

  Returns:
    a C-contiguous copy `[*size]` of the storage's dtype.
  """
  del requires_grad, backward_hooks, metadata
  if not isinstance(storage, np.ndarray) or storage.ndim != 1:
    raise ValueError(f"tensor storage: expected a storage, got {storage!r}")
  (offset,) = _int_tuple((storage_offset,), "tensor storage_offset")
  shape = _int_tuple(size, "tensor size")
  strides = _int_tuple(stride, "tensor stride")
  if len(shape) != len(strides):
    raise ValueError(f"tensor: size {shape} and stride {strides} differ in "
                     "length")
  if math.prod(shape) == 0:
    return np.empty(shape, storage.dtype)
  # as_strided does not check bounds: check the last element read here.
  last = offset + sum((n - 1) * s for n, s in zip(shape, strides))
  if last >= storage.size:
    raise ValueError(f"tensor: size {shape}, stride {strides}, offset "
                     f"{offset} reads past a storage of {storage.size} "
                     "elements")
  view = np.lib.stride_tricks.as_strided(
      storage[offset:], shape, [s * storage.itemsize for s in strides],
      writeable=False)
  return view.copy()


def _rebuild_parameter(data: Any, requires_grad: Any,
                       backward_hooks: Any) -> np.ndarray:
  """`torch._utils._rebuild_parameter`: a parameter is its tensor `data`."""
  del requires_grad, backward_hooks
  if not isinstance(data, np.ndarray):
    raise ValueError(f"parameter: expected a tensor, got {data!r}")
  return data


@dataclasses.dataclass(frozen=True)
class _StorageRef:
  """A storage's persistent id, before its data is read."""
  dtype_name: str
  dtype: np.dtype
  key: str
  numel: int


class _StorageUnpickler(pickle.Unpickler):
  """Reads the pickles inside a legacy storage serialization.

  The only globals there are the storage types, and the only persistent id
  is the storage's `('storage', storage_type, key, location, numel,
  view_metadata)`.
  """

  def find_class(self, module: str, name: str) -> _ClassRef:
    full_name = f"{module}.{name}"
    if full_name in _STORAGE_DTYPES:
      return _ClassRef(full_name, _STORAGE_DTYPES[full_name])
    if module == "torch" and name.endswith("Storage"):
      raise ValueError(f"unsupported storage type {full_name} (supported: "
                       f"{', '.join(_STORAGE_DTYPES)})")
    raise UnsafePickleError(f"global {full_name} is not allowed in a "
                            "network pickle's storage")

  def persistent_load(self, pid: Any) -> _StorageRef:
    if not (isinstance(pid, tuple) and len(pid) == 6 and pid[0] == "storage"):
      raise ValueError(f"storage: unexpected persistent id {pid!r}")
    _, storage_type, key, location, numel, view_metadata = pid
    if not isinstance(storage_type, _ClassRef) or storage_type.dtype is None:
      raise ValueError(f"storage: expected a storage type, got "
                       f"{storage_type!r}")
    if not isinstance(key, str) or not isinstance(location, str):
      raise ValueError(f"storage: bad key {key!r} or location {location!r}")
    if view_metadata is not None:
      raise ValueError(f"storage {key}: storage views are not supported "
                       f"(view_metadata {view_metadata!r})")
    (numel,) = _int_tuple((numel,), f"storage {key} numel")
    return _StorageRef(storage_type.name, storage_type.dtype, key, numel)


def bfloat16_to_float32(bits: np.ndarray) -> np.ndarray:
  """bfloat16 bit patterns `[n]` uint16 -> the same values, float32.

  bfloat16 is the top half of a float32, so this is exact.
  """
  return (bits.astype("<u4") << 16).view("<f4")


def _read_storage(blob: Any) -> np.ndarray:
  """`torch.storage._load_from_bytes`: one storage from its legacy bytes.

  `blob` is PyTorch's legacy (non-zip) serialization of a storage, the
  concatenation of:
    1. pickle: the magic number 0x1950a86a20f9469cfc6c;
    2. pickle: the protocol version 1001;
    3. pickle: sys info, a dict with `little_endian`;
    4. pickle: the storage as a persistent id (`_StorageUnpickler`);
    5. pickle: the list of storage keys, here just that storage's key;
    6. per key: the element count as int64 little-endian, then the raw
       little-endian elements.

  Returns:
    the storage's elements `[numel]` in its dtype (float32 for bfloat16).
  """
  if not isinstance(blob, bytes):
    raise ValueError(f"storage: expected bytes, got {type(blob).__name__}")
  stream = io.BytesIO(blob)

  def load() -> Any:
    return _StorageUnpickler(stream).load()

  if load() != TORCH_MAGIC_NUMBER:
    raise ValueError("storage: bad magic number")
  if load() != TORCH_PROTOCOL_VERSION:
    raise ValueError("storage: unsupported protocol version")
  sys_info = load()
  if not (isinstance(sys_info, dict)
          and sys_info.get("little_endian") is True):
    raise ValueError(f"storage: only little-endian storages are supported, "
                     f"sys info {sys_info!r}")
  ref = load()
  if not isinstance(ref, _StorageRef):
    raise ValueError(f"storage: expected one storage, got {ref!r}")
  keys = load()
  if keys != [ref.key]:
    raise ValueError(f"storage: keys {keys!r}, expected [{ref.key!r}]")
  (count,) = struct.unpack("<q", stream.read(8))
  if count != ref.numel:
    raise ValueError(f"storage {ref.key}: {count} elements stored, "
                     f"{ref.numel} declared")
  raw = stream.read(count * ref.dtype.itemsize)
  if len(raw) != count * ref.dtype.itemsize:
    raise ValueError(f"storage {ref.key}: data truncated")
  array = np.frombuffer(raw, ref.dtype)
  if ref.dtype_name == "torch.BFloat16Storage":
    return bfloat16_to_float32(array)
  return array


def _np_dtype(spec: Any, align: Any = False, copy: Any = False) -> np.dtype:
  """`numpy.dtype(spec, align, copy)`, for a type string `spec` only.

  Always a copy (whatever `copy` says): the BUILD that follows in a numpy
  pickle sets the dtype's state, which must not touch numpy's singletons.
  """
  del copy
  if not isinstance(spec, str) or not isinstance(align, int):
    raise ValueError(f"numpy.dtype: expected a type string, got {spec!r}")
  return np.dtype(spec, align=bool(align), copy=True)


def _np_scalar(dtype: Any, data: Any) -> np.generic:
  """`numpy.core.multiarray.scalar(dtype, data)`: a scalar from its bytes."""
  if (not isinstance(dtype, np.dtype) or dtype.hasobject
      or not isinstance(data, bytes) or len(data) != dtype.itemsize):
    raise ValueError(f"numpy scalar: expected a dtype and its bytes, got "
                     f"{dtype!r}, {data!r}")
  return np.frombuffer(data, dtype)[0]


def _np_reconstruct(subtype: Any, shape: Any, dtype: Any) -> np.ndarray:
  """`numpy.core.multiarray._reconstruct`: an empty array to BUILD into.

  The BUILD that follows calls `ndarray.__setstate__` with the array's
  shape, dtype and data.
  """
  if not (isinstance(subtype, _ClassRef) and subtype.name == "numpy.ndarray"
          and isinstance(dtype, bytes)):
    raise ValueError(f"numpy array: unexpected arguments {subtype!r}, "
                     f"{dtype!r}")
  return np.empty(_int_tuple(shape, "numpy array shape"),
                  np.dtype(dtype.decode("ascii")))


def _np_frombuffer(data: Any, dtype: Any, shape: Any,
                   order: Any) -> np.ndarray:
  """`numpy.core.numeric._frombuffer`: an array, in protocol 5 pickles.

  `data` holds the elements of an array `shape` of `dtype` in `order`
  ('C' or 'F').
  """
  if not (isinstance(data, (bytes, bytearray)) and isinstance(dtype, np.dtype)
          and order in ("C", "F")):
    raise ValueError(f"numpy array: unexpected arguments {dtype!r}, "
                     f"{order!r}")
  return np.frombuffer(data, dtype).reshape(
      _int_tuple(shape, "numpy array shape"), order=order)


def _set(items: Any) -> set:
  """`builtins.set(items)`: protocol 3 pickles (StyleGAN2-ADA) write sets so."""
  if not isinstance(items, list):
    raise ValueError(f"set: expected a list, got {items!r}")
  return set(items)


def _mapping(state: dict, key: str) -> dict:
  """`state[key]` if it is a dict (an OrderedDict in the file), else {}."""
  value = state.get(key, {})
  if not isinstance(value, dict):
    raise ValueError(f"{key}: expected a dict, got {type(value).__name__}")
  return value


def _state_dict(state: dict) -> dict[str, np.ndarray]:
  """The official state dict of an object with `__dict__` `state`.

  Own parameters, own buffers (not None, not in
  `_non_persistent_buffers_set`), then each submodule's entries prefixed
  with its name, as `torch.nn.Module.state_dict()`.
  """
  non_persistent = state.get("_non_persistent_buffers_set", set())
  tensors = dict(_mapping(state, "_parameters"))
  tensors.update((name, tensor)
                 for name, tensor in _mapping(state, "_buffers").items()
                 if name not in non_persistent)
  result = {}
  for name, tensor in tensors.items():
    if tensor is None:
      continue
    if not isinstance(tensor, np.ndarray):
      raise ValueError(f"{name}: expected a tensor, got {tensor!r}")
    result[name] = tensor
  for name, child in _mapping(state, "_modules").items():
    if child is None:
      continue
    if not isinstance(child, PersistentRecord):
      raise ValueError(f"{name}: expected a persistent module, got {child!r}")
    result.update((f"{name}.{k}", v) for k, v in child.state_dict.items())
  return result


def _is_plain(value: Any) -> bool:
  """Whether `value` is a scalar, string, array or container of those."""
  if isinstance(value, (list, tuple)):
    return all(_is_plain(v) for v in value)
  if isinstance(value, dict):
    return all(_is_plain(k) and _is_plain(v) for k, v in value.items())
  return isinstance(value, (type(None), bool, int, float, complex, str,
                            bytes, np.generic, np.ndarray))


def _attributes(state: dict) -> dict:
  """The plain attributes in `state`, without torch bookkeeping."""
  return {name: value for name, value in state.items()
          if isinstance(name, str) and not name.startswith("_")
          and name != "training" and _is_plain(value)}


def _persistent_record(meta: Any) -> PersistentRecord:
  """`torch_utils.persistence._reconstruct_persistent_obj(meta)`, as data.

  `meta` is a dict: `type` ('class'), `version` (int), `module_src` (the
  module's source; ignored, never run), `class_name` and `state` (the
  object's `__dict__`).
  """
  if not isinstance(meta, dict):
    raise ValueError(f"persistent object: expected a meta dict, got {meta!r}")
  class_name = meta.get("class_name")
  if meta.get("type") != "class":
    raise ValueError(f"persistent object {class_name!r}: meta type "
                     f"{meta.get('type')!r}, only 'class' is supported")
  state, version = meta.get("state"), meta.get("version")
  if not (isinstance(class_name, str) and isinstance(version, int)
          and isinstance(state, dict)):
    raise ValueError(f"persistent object {class_name!r}: meta needs "
                     "class_name, version and state")
  init_args = state.get("_init_args", ())
  init_kwargs = state.get("_init_kwargs", {})
  if not isinstance(init_args, tuple) or not isinstance(init_kwargs, dict):
    raise ValueError(f"persistent object {class_name!r}: bad _init_args "
                     "or _init_kwargs")
  return PersistentRecord(
      class_name=class_name,
      module_name=str(meta.get("module_name", "")),
      version=version,
      init_args=init_args,
      init_kwargs=init_kwargs,
      state_dict=_state_dict(state),
      attributes=_attributes(state))


# Every global a network pickle may reference -> what the unpickler gets.
# EasyDict and OrderedDict read as dicts (the builtin type: BUILD cannot
# change it). Besides the globals of the current files, pickles written with
# protocol 3 (Python 3.7: StyleGAN2-ADA) name `builtins.set`, and protocol 5
# (Python >= 3.14's default) writes numpy arrays with `_frombuffer`.
_NETWORK_GLOBALS = {
    "torch_utils.persistence._reconstruct_persistent_obj": _Global(
        "torch_utils.persistence._reconstruct_persistent_obj",
        _persistent_record),
    "dnnlib.util.EasyDict": dict,
    "collections.OrderedDict": dict,
    "builtins.set": _Global("builtins.set", _set),
    "torch._utils._rebuild_parameter": _Global(
        "torch._utils._rebuild_parameter", _rebuild_parameter),
    "torch._utils._rebuild_tensor_v2": _Global(
        "torch._utils._rebuild_tensor_v2", _rebuild_tensor_v2),
    "torch.storage._load_from_bytes": _Global(
        "torch.storage._load_from_bytes", _read_storage),
    "numpy.dtype": _Global("numpy.dtype", _np_dtype),
    "numpy.ndarray": _ClassRef("numpy.ndarray"),
    "numpy.core.multiarray.scalar": _Global(
        "numpy.core.multiarray.scalar", _np_scalar),
    "numpy._core.multiarray.scalar": _Global(
        "numpy._core.multiarray.scalar", _np_scalar),
    "numpy.core.multiarray._reconstruct": _Global(
        "numpy.core.multiarray._reconstruct", _np_reconstruct),
    "numpy._core.multiarray._reconstruct": _Global(
        "numpy._core.multiarray._reconstruct", _np_reconstruct),
    "numpy.core.numeric._frombuffer": _Global(
        "numpy.core.numeric._frombuffer", _np_frombuffer),
    "numpy._core.numeric._frombuffer": _Global(
        "numpy._core.numeric._frombuffer", _np_frombuffer),
}


class _NetworkUnpickler(pickle.Unpickler):
  """Unpickles a network pickle with `_NETWORK_GLOBALS` as the only globals.

  It has no `persistent_load`: the outer pickle has no persistent ids.
  """

  def find_class(self, module: str, name: str) -> Any:
    full_name = f"{module}.{name}"
    if full_name not in _NETWORK_GLOBALS:
      raise UnsafePickleError(f"global {full_name} is not allowed in a "
                              "network pickle")
    return _NETWORK_GLOBALS[full_name]


def _source_name(path_or_fileobj: Any) -> str:
  """The file's name for messages."""
  if isinstance(path_or_fileobj, (str, os.PathLike)):
    return os.fspath(path_or_fileobj)
  return str(getattr(path_or_fileobj, "name",
                     f"<{type(path_or_fileobj).__name__}>"))


def _check_network_dict(data: Any, source: str) -> dict[str, Any]:
  """The top-level dict with its optional keys filled in, or ValueError."""
  if not isinstance(data, dict):
    raise ValueError(f"{source}: expected a dict at the top level, got "
                     f"{type(data).__name__}")
  missing = [key for key in _NETWORK_KEYS if key not in data]
  if missing:
    raise ValueError(f"{source}: missing top-level keys {missing} (has "
                     f"{list(data)})")
  result = dict.fromkeys(_OPTIONAL_KEYS) | data
  for key in (*_NETWORK_KEYS, "augment_pipe"):
    if not isinstance(result[key], (PersistentRecord, type(None))):
      raise ValueError(f"{source}: {key}: expected a persistent object, got "
                       f"{type(result[key]).__name__}")
  if not isinstance(result["training_set_kwargs"], (dict, type(None))):
    raise ValueError(f"{source}: training_set_kwargs: expected a dict, got "
                     f"{type(result['training_set_kwargs']).__name__}")
  return result


def read_network_pickle(
    path_or_fileobj: str | os.PathLike | BinaryIO) -> dict[str, Any]:
  """Reads an official network pickle without running anything from it.

  Args:
    path_or_fileobj: a path, or a binary file object positioned at the
      pickle (not closed here).

  Returns:
    `{'G', 'D', 'G_ema', 'augment_pipe'}` -> `PersistentRecord` or None,
    `'training_set_kwargs'` -> dict or None, and any other top-level key of
    the file as plain data.

  Raises:
    UnsafePickleError: the file references a global outside the format
      (e.g. `os.system`); raised before that global could be called.
    ValueError: the file is truncated or corrupt, uses an unsupported
      storage type or persistent-object type, or lacks G, D or G_ema; the
      message names the file.
  """
  source = _source_name(path_or_fileobj)
  if isinstance(path_or_fileobj, (str, os.PathLike)):
    opened = open(path_or_fileobj, "rb")
  else:
    opened = contextlib.nullcontext(path_or_fileobj)
  with opened as f:
    try:
      data = _NetworkUnpickler(f).load()
    except UnsafePickleError as e:
      raise UnsafePickleError(f"{source}: {e}") from None
    except _CORRUPT_ERRORS as e:
      raise ValueError(f"{source}: cannot read network pickle: "
                       f"{type(e).__name__}: {e}") from e
  return _check_network_dict(data, source)
