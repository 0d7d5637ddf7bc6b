"""Writes network pickles in the official format, without torch (tests only).

Stand-ins for the official globals live in fake `torch`, `torch_utils` and
`dnnlib` modules that exist only while pickling, and each storage is
PyTorch's legacy serialization written byte by byte (the format of
../shared/notes/pkl_format.md). The reader under test runs without them.
"""

import contextlib
import io
import pickle
import struct
import sys
import types
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any
from unittest import mock

import numpy as np

MAGIC_NUMBER = 0x1950A86A20F9469CFC6C
PROTOCOL_VERSION = 1001

STORAGE_TYPES = {
    np.dtype("float32"): "FloatStorage",
    np.dtype("float16"): "HalfStorage",
    np.dtype("float64"): "DoubleStorage",
    np.dtype("int64"): "LongStorage",
    np.dtype("int32"): "IntStorage",
    np.dtype("int16"): "ShortStorage",
    np.dtype("int8"): "CharStorage",
    np.dtype("uint8"): "ByteStorage",
    np.dtype("bool"): "BoolStorage",
}

# Dangerous globals and their arguments; `{}` is the sentinel file's path.
PAYLOADS = {
    "os.system": ("touch {}",),
    "builtins.eval": ("open({!r}, 'w').close()",),
    "subprocess.Popen": (["touch", "{}"],),
}


def _stand_in(module: str, name: str):
  """A function that pickles as the global `module.name`."""
  def fn(*args):
    raise AssertionError(f"stand-in {module}.{name}{args} called")
  fn.__module__, fn.__name__, fn.__qualname__ = module, name, name
  return fn


def _placeholder(target: str) -> tuple[str, str]:
  """A fake global as long as `target`, so bytes can be swapped in place."""
  module, name = target.rsplit(".", 1)
  return "Q" * len(module), "P" * len(name)


class EasyDict(dict):
  """Stands for `dnnlib.util.EasyDict` (a dict subclass)."""


EasyDict.__module__ = "dnnlib.util"

_RECONSTRUCT = _stand_in("torch_utils.persistence",
                         "_reconstruct_persistent_obj")
_REBUILD_TENSOR = _stand_in("torch._utils", "_rebuild_tensor_v2")
_REBUILD_PARAMETER = _stand_in("torch._utils", "_rebuild_parameter")
_LOAD_FROM_BYTES = _stand_in("torch.storage", "_load_from_bytes")
_STAND_INS = {target: _stand_in(*_placeholder(target)) for target in PAYLOADS}


def _fake_modules() -> dict[str, types.ModuleType]:
  """sys.modules entries that let pickle find every stand-in global."""
  modules = {}
  def add(module_name, **attrs):
    modules[module_name] = types.ModuleType(module_name)
    vars(modules[module_name]).update(attrs)
  storage_names = [*STORAGE_TYPES.values(), "BFloat16Storage",
                   "ComplexFloatStorage"]
  add("torch", **{n: type(n, (), {"__module__": "torch"})
                  for n in storage_names})
  add("torch._utils", _rebuild_tensor_v2=_REBUILD_TENSOR,
      _rebuild_parameter=_REBUILD_PARAMETER)
  add("torch.storage", _load_from_bytes=_LOAD_FROM_BYTES)
  add("torch_utils")
  add("torch_utils.persistence", _reconstruct_persistent_obj=_RECONSTRUCT)
  add("dnnlib")
  add("dnnlib.util", EasyDict=EasyDict)
  for target, fn in _STAND_INS.items():
    add(_placeholder(target)[0], **{_placeholder(target)[1]: fn})
  return modules


_FAKE_MODULES = _fake_modules()


@contextlib.contextmanager
def _official_globals():
  """Makes the official globals picklable, and only for the duration."""
  with mock.patch.dict(sys.modules, _FAKE_MODULES):
    yield


class _PidPickler(pickle.Pickler):
  """Writes `pid` as the persistent id of `_PID`, as torch writes storages."""
  _PID = object()

  def __init__(self, file, pid):
    super().__init__(file, protocol=2)
    self.pid = pid

  def persistent_id(self, obj):
    return self.pid if obj is self._PID else None


def _legacy_bytes(type_name: str, raw: bytes, numel: int, *,
                  magic=MAGIC_NUMBER, little_endian=True, view=None,
                  stored_numel=None, sys_info_extra=None, cut=0) -> bytes:
  """PyTorch's legacy serialization of one storage (the notes' 6 parts).

  The keyword arguments break the format on purpose.
  """
  key = "94431234567"  # torch writes the storage's address.
  storage_type = getattr(sys.modules["torch"], type_name)
  sys_info = dict(protocol_version=PROTOCOL_VERSION,
                  little_endian=little_endian,
                  type_sizes=dict(short=2, int=4, long=4),
                  **(sys_info_extra or {}))
  f = io.BytesIO()
  for obj in (magic, PROTOCOL_VERSION, sys_info):
    pickle.dump(obj, f, protocol=2)
  pid = ("storage", storage_type, key, "cuda:0", numel, view)
  _PidPickler(f, pid).dump(_PidPickler._PID)
  pickle.dump([key], f, protocol=2)
  f.write(struct.pack("<q", numel if stored_numel is None else stored_numel))
  f.write(raw)
  return f.getvalue()[:len(f.getvalue()) - cut]


class _Storage:
  """A torch storage: `_load_from_bytes(legacy bytes)` of `elements`."""

  def __init__(self, elements: np.ndarray, type_name=None, **breakage):
    self.elements = elements.ravel()
    self.type_name = type_name or STORAGE_TYPES[elements.dtype]
    self.breakage = breakage

  def __reduce__(self):
    raw = self.elements.astype(self.elements.dtype.newbyteorder("<"))
    return _LOAD_FROM_BYTES, (_legacy_bytes(
        self.type_name, raw.tobytes(), self.elements.size, **self.breakage),)


class _Tensor:
  """A torch tensor: `_rebuild_tensor_v2` of a storage view."""

  def __init__(self, storage, offset, size, stride, *extra_args):
    self.args = (storage, offset, size, stride, False, OrderedDict(),
                 *extra_args)

  def __reduce__(self):
    return _REBUILD_TENSOR, self.args


class _Parameter:
  """A torch parameter: `_rebuild_parameter` of a tensor."""

  def __init__(self, tensor: _Tensor):
    self.tensor = tensor

  def __reduce__(self):
    return _REBUILD_PARAMETER, (self.tensor, True, OrderedDict())


def _tensor(array: np.ndarray) -> _Tensor:
  """A contiguous tensor with its own storage (of a C-ordered copy: the
  storage holds raw bytes, which must match the strides)."""
  array = np.array(array, order="C")  # (ascontiguousarray makes 0-d 1-d)
  strides = [s // array.itemsize for s in array.strides]
  return _Tensor(_Storage(array), 0, array.shape, strides)


def _param(array: np.ndarray) -> _Parameter:
  return _Parameter(_tensor(array))


class _Module:
  """A persistent object: `_reconstruct_persistent_obj(meta)`."""

  def __init__(self, class_name, *, params=None, buffers=None, modules=None,
               init_kwargs=None, attrs=None, meta_type="class",
               state_type=dict, module_src="pass\n"):
    self.class_name, self.meta_type = class_name, meta_type
    self.module_src = module_src
    self.state = state_type(
        training=False,
        _parameters=OrderedDict(params or {}),
        _buffers=OrderedDict(buffers or {}),
        _non_persistent_buffers_set=set(),
        _backward_hooks=OrderedDict(),
        _forward_hooks=OrderedDict(),
        _modules=OrderedDict(modules or {}),
        **(attrs or {}),
        _init_args=(),
        _init_kwargs=init_kwargs or {})

  def __reduce__(self):
    meta = dict(type=self.meta_type, version=6, module_src=self.module_src,
                class_name=self.class_name, state=self.state)
    return _RECONSTRUCT, (meta,)


class _Evil:
  """Calls `target(*args)` when unpickled by a plain pickle.load."""

  def __init__(self, target: str, sentinel: str):
    self.target = target
    self.args = tuple(
        [a.format(sentinel) for a in arg] if isinstance(arg, list)
        else arg.format(sentinel) for arg in PAYLOADS[target])

  def __reduce__(self):
    return _STAND_INS[self.target], self.args


def _dumps(obj, protocol=4, evil_target=None) -> bytes:
  """Pickles `obj`; `evil_target` swaps in that global for its stand-in."""
  with _official_globals():
    data = pickle.dumps(obj, protocol=protocol)
  if evil_target is None:
    return data
  module, name = _placeholder(evil_target)
  stand_in = f"c{module}\n{name}\n".encode()  # Protocols 2 and 3 only.
  assert data.count(stand_in) == 1, evil_target
  real_module, real_name = evil_target.rsplit(".", 1)
  return data.replace(stand_in, f"c{real_module}\n{real_name}\n".encode())


# Official buffer names (everything else in a state dict is a parameter).
BUFFER_NAMES = ("w_avg", "magnitude_ema", "up_filter", "down_filter",
                "transform", "freqs", "phases", "resample_filter", "p")


def network_object(class_name: str, state_dict: Mapping[str, np.ndarray],
                   init_kwargs: Mapping) -> "_Module":
  """A persistent network object holding `state_dict` (official names)."""
  tree = {}
  for name, array in state_dict.items():
    *path, leaf = name.split(".")
    node = tree
    for part in path:
      node = node.setdefault(part, {})
    node[leaf] = np.asarray(array)
  return _module_from_tree(class_name, tree, dict(init_kwargs))


def _module_from_tree(class_name, tree, init_kwargs=None):
  params, buffers, modules = {}, {}, {}
  for key, value in tree.items():
    if isinstance(value, dict):
      modules[key] = _module_from_tree("Module", value)
    elif key in BUFFER_NAMES:
      buffers[key] = _tensor(value)
    else:
      params[key] = _param(value)
  return _Module(class_name, params=params, buffers=buffers, modules=modules,
                 init_kwargs=init_kwargs)


def snapshot_bytes(networks: Mapping[str, tuple[Any, Mapping, Mapping]]
                   ) -> bytes:
  """An official-format snapshot pickle of sg3jax networks.

  `networks`: "G" / "D" / "G_ema" -> (module, variables, official init
  kwargs); missing names are None in the file, as is augment_pipe. Each
  network holds every official tensor, the computed filter buffers
  included.
  """
  # Imported here: the torch-free writer itself needs only NumPy.
  from sg3jax import convert  # pylint: disable=g-import-not-at-top
  data = {"G": None, "D": None, "G_ema": None, "augment_pipe": None,
          "training_set_kwargs": None}
  for name, (module, variables, init_kwargs) in networks.items():
    computed = (convert.discriminator._computed_buffers(module)
                if name == "D" else convert.generator._computed_buffers(module))
    state = dict(convert.state_dict_from_variables(variables))
    state.update({k: f for k, f in computed.items() if f is not None})
    data[name] = network_object(
        "Discriminator" if name == "D" else "Generator", state, init_kwargs)
  return _dumps(data, protocol=3)
