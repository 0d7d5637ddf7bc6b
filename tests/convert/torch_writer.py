"""Writes PyTorch weight files without torch (tests only).

The formats `sg3jax.convert.torch_reader` reads: torch.save zip archives,
legacy torch.save streams, TorchScript archives (`__torch__.<class>`
objects built by NEWOBJ + BUILD, tensors over `data/<key>` storages), and
pickles carrying a TorchScript archive as the official detector `.pkl`
files do. The stand-in globals are pickle_writer's fake torch modules, plus
fake `__torch__.*` modules that exist only while pickling.
"""

import contextlib
import io
import pickle
import struct
import sys
import types
import zipfile
from collections import OrderedDict
from collections.abc import Mapping
from unittest import mock

import numpy as np

from tests.convert import pickle_writer


class _Storage:
  """A storage of an archive or legacy stream (a persistent id)."""

  def __init__(self, key: str, array: np.ndarray):
    self.key = key
    self.array = np.ascontiguousarray(array).ravel()


class _StoragePickler(pickle.Pickler):
  """Writes `_Storage`s as torch's persistent ids (5-tuples in archives,
  6-tuples in legacy streams)."""

  def __init__(self, file, *, legacy: bool):
    super().__init__(file, protocol=2)
    self.legacy = legacy

  def persistent_id(self, obj):
    if not isinstance(obj, _Storage):
      return None
    storage_type = getattr(sys.modules["torch"],
                           pickle_writer.STORAGE_TYPES[obj.array.dtype])
    pid = ("storage", storage_type, obj.key, "cpu", obj.array.size)
    return pid + (None,) if self.legacy else pid


def _tensors(state_dict: Mapping[str, np.ndarray], legacy: bool = False):
  """{name: tensor stand-in} and the storages they use, in order."""
  tensors, storages = OrderedDict(), []
  for i, (name, value) in enumerate(state_dict.items()):
    array = np.array(value, order="C")
    storage = _Storage(str(1000 + i) if legacy else str(i), array)
    strides = [s // array.itemsize for s in array.strides]
    tensors[name] = pickle_writer._Tensor(storage, 0, array.shape, strides)  # pylint: disable=protected-access
    storages.append(storage)
  return tensors, storages


@contextlib.contextmanager
def _script_modules(classes: Mapping[str, type]):
  """Fake `__torch__.*` modules holding `classes` while pickling."""
  modules = {}
  for qualified, cls in classes.items():
    module_name, name = qualified.rsplit(".", 1)
    modules.setdefault(module_name, types.ModuleType(module_name))
    setattr(modules[module_name], name, cls)
  with pickle_writer._official_globals(), mock.patch.dict(sys.modules,  # pylint: disable=protected-access
                                                          modules):
    yield


def _dump(obj, *, legacy: bool = False) -> bytes:
  f = io.BytesIO()
  _StoragePickler(f, legacy=legacy).dump(obj)
  return f.getvalue()


def _zip(prefix: str, data_pkl: bytes, storages, extra: Mapping[str, bytes]
         ) -> bytes:
  f = io.BytesIO()
  with zipfile.ZipFile(f, "w", zipfile.ZIP_STORED) as z:
    z.writestr(f"{prefix}/data.pkl", data_pkl)
    for name, content in extra.items():
      z.writestr(f"{prefix}/{name}", content)
    for storage in storages:
      z.writestr(f"{prefix}/data/{storage.key}",
                 storage.array.astype(storage.array.dtype.newbyteorder("<"))
                 .tobytes())
    z.writestr(f"{prefix}/version", "3\n")
    z.writestr(f"{prefix}/byteorder", "little")
  return f.getvalue()


def torch_save_zip(state_dict: Mapping[str, np.ndarray]) -> bytes:
  """`torch.save(state_dict)` as PyTorch >= 1.6 writes it."""
  tensors, storages = _tensors(state_dict)
  with _script_modules({}):
    data_pkl = _dump(tensors)
  return _zip("archive", data_pkl, storages, {})


def torch_save_legacy(state_dict: Mapping[str, np.ndarray]) -> bytes:
  """`torch.save(state_dict, _use_new_zipfile_serialization=False)`."""
  tensors, storages = _tensors(state_dict, legacy=True)
  f = io.BytesIO()
  for obj in (pickle_writer.MAGIC_NUMBER, pickle_writer.PROTOCOL_VERSION,
              dict(protocol_version=pickle_writer.PROTOCOL_VERSION,
                   little_endian=True,
                   type_sizes=dict(short=2, int=4, long=4))):
    pickle.dump(obj, f, protocol=2)
  with _script_modules({}):
    f.write(_dump(tensors, legacy=True))
  pickle.dump([s.key for s in storages], f, protocol=2)
  for storage in storages:
    f.write(struct.pack("<q", storage.array.size))
    f.write(storage.array.astype(storage.array.dtype.newbyteorder("<"))
            .tobytes())
  return f.getvalue()


def _script_tree(state_dict: Mapping[str, np.ndarray]) -> dict:
  tree = {}
  for name, value in state_dict.items():
    *path, leaf = name.split(".")
    node = tree
    for part in path:
      node = node.setdefault(part, {})
    node[leaf] = value
  return tree


def torchscript_archive(state_dict: Mapping[str, np.ndarray], *,
                        root_class: str = "__torch__.Module") -> bytes:
  """A `torch.jit.save` archive of a module holding `state_dict`: one
  `__torch__` object per module path, tensors as attributes, `training`
  flags, `code/` and `constants.pkl` members as TorchScript writes them."""
  tensors, storages = _tensors(state_dict)
  classes = {}

  def build(qualified, subtree):
    if qualified not in classes:
      module_name, name = qualified.rsplit(".", 1)
      classes[qualified] = type(name, (), {"__module__": module_name,
                                          "__qualname__": name})
    obj = classes[qualified].__new__(classes[qualified])
    obj.training = False
    for key, value in subtree.items():
      if isinstance(value, dict):
        setattr(obj, key, build(f"__torch__.{key.title().replace('_', '')}",
                                value))
      else:
        setattr(obj, key, value)
    return obj

  tree = _script_tree(dict(tensors))
  root = build(root_class, tree)
  with _script_modules(classes):
    data_pkl = _dump(root)
  code = {f"code/{q.replace('.', '/')}.py": "# TorchScript source\n"
          for q in classes}
  return _zip("archive", data_pkl, storages,
              {"constants.pkl": pickle.dumps((), protocol=2), **code})


def _jit_load(*args):
  raise AssertionError(f"stand-in torch.jit.load{args} called")


_jit_load.__module__, _jit_load.__name__ = "torch.jit", "load"
_jit_load.__qualname__ = "load"


def detector_pickle(archive: bytes, *, protocol: int = 4) -> bytes:
  """A pickle that rebuilds a TorchScript module from `archive` when
  unpickled by torch (`torch.jit.load` of the bytes)."""

  class Wrapper:
    def __reduce__(self):
      return _jit_load, (archive,)

  jit = types.ModuleType("torch.jit")
  jit.load = _jit_load
  with pickle_writer._official_globals(), mock.patch.dict(  # pylint: disable=protected-access
      sys.modules, {"torch.jit": jit}):
    return pickle.dumps(Wrapper(), protocol=protocol)
