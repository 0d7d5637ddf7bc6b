"""Safe reader of official network pickles: values, numpy, security, errors.

The pickles are written here in the official format: stand-ins for the
official globals live in fake `torch`, `torch_utils` and `dnnlib` modules
that exist only while pickling, and each storage is PyTorch's legacy
serialization written byte by byte. The reader runs without them.
"""

import io
import os
import pickle
import re
import sys
import tempfile

import numpy as np
from absl.testing import absltest
from absl.testing import parameterized

from sg3jax.convert import pickle_reader
from tests.convert.pickle_writer import _dumps
from tests.convert.pickle_writer import _Evil
from tests.convert.pickle_writer import _Module
from tests.convert.pickle_writer import _param
from tests.convert.pickle_writer import _Storage
from tests.convert.pickle_writer import _Tensor
from tests.convert.pickle_writer import _tensor
from tests.convert.pickle_writer import EasyDict
from tests.convert.pickle_writer import PAYLOADS

def _fc(arrays, prefix, attrs=None):
  return _Module("FullyConnectedLayer", params=dict(
      weight=_param(arrays[f"{prefix}.weight"]),
      bias=_param(arrays[f"{prefix}.bias"])), attrs=attrs)


def _generator_arrays(seed: int) -> dict[str, np.ndarray]:
  """Official state dict of a tiny G, in torch order (float16 weight)."""
  rng = np.random.default_rng(seed)
  f32 = lambda *shape: rng.standard_normal(shape).astype(np.float32)
  return {
      "synthesis.input.weight": f32(4, 4),
      "synthesis.input.transform": np.eye(3, dtype=np.float32),
      "synthesis.input.freqs": f32(4, 2),
      "synthesis.input.affine.weight": f32(4, 4),
      "synthesis.input.affine.bias": f32(4),
      "synthesis.L0_36_64.weight": f32(4, 4, 3, 3).astype(np.float16),
      "synthesis.L0_36_64.bias": f32(4),
      "synthesis.L0_36_64.magnitude_ema": np.float32(0.5).reshape(()),
      "synthesis.L0_36_64.down_filter": f32(6),
      "synthesis.L0_36_64.affine.weight": f32(4, 4),
      "synthesis.L0_36_64.affine.bias": f32(4),
      "mapping.w_avg": f32(4),
      "mapping.fc0.weight": f32(4, 4),
      "mapping.fc0.bias": f32(4),
      "mapping.fc1.weight": f32(4, 4),
      "mapping.fc1.bias": f32(4),
  }


G_KWARGS = dict(z_dim=4, c_dim=0, w_dim=4, img_resolution=16, img_channels=3,
                channel_base=32768, channel_max=512,
                magnitude_ema_beta=0.999, conv_kernel=1,
                use_radial_filters=True)


def _generator(a: dict[str, np.ndarray], state_type=dict) -> _Module:
  """A G-like object over `a` (names from `_generator_arrays`)."""
  s = "synthesis.input"
  synthesis_input = _Module("SynthesisInput", params=dict(
      weight=_param(a[f"{s}.weight"])), buffers=dict(
          transform=_tensor(a[f"{s}.transform"]),
          freqs=_tensor(a[f"{s}.freqs"])), modules=dict(
              affine=_fc(a, f"{s}.affine")))
  s = "synthesis.L0_36_64"
  layer = _Module("SynthesisLayer", params=dict(
      weight=_param(a[f"{s}.weight"]), bias=_param(a[f"{s}.bias"])),
      buffers=dict(magnitude_ema=_tensor(a[f"{s}.magnitude_ema"]),
                   up_filter=None,
                   down_filter=_tensor(a[f"{s}.down_filter"])),
      modules=dict(affine=_fc(a, f"{s}.affine")))
  synthesis = _Module("SynthesisNetwork", modules=dict(
      input=synthesis_input, L0_36_64=layer))
  mapping = _Module("MappingNetwork", buffers=dict(
      w_avg=_tensor(a["mapping.w_avg"])), modules=dict(
          fc0=_fc(a, "mapping.fc0", attrs=dict(weight_gain=np.float64(0.5))),
          fc1=_fc(a, "mapping.fc1")))
  kwargs = dict(G_KWARGS, mapping_kwargs=EasyDict(num_layers=2))
  return _Module(
      "Generator", modules=dict(synthesis=synthesis, mapping=mapping),
      init_kwargs=kwargs, state_type=state_type, attrs=dict(
          z_dim=4, img_resolution=16, num_ws=3, layer_names=["L0_36_64"]))


AUGMENT_KWARGS = dict(xflip=1, rotate90=1, xint=1, scale=1, rotate=1, aniso=1,
                      xfrac=1, brightness=1, contrast=1, lumaflip=1, hue=1,
                      saturation=1)
D_STEP = np.array([2**40 + 3], dtype=np.int64)
HZ_GEOM = np.linspace(-1, 1, 12, dtype=np.float32)


def _network_pickle(protocol=4, evil_target=None, **changes) -> bytes:
  """An official-format snapshot; `changes` replace top-level entries.

  `...` drops an entry; `evil_target` as in `_dumps`.
  """
  d = _Module("Discriminator", init_kwargs=dict(c_dim=0, img_resolution=16),
              modules=dict(b4=_Module("DiscriminatorEpilogue", params=dict(
                  bias=_param(np.ones(4, np.float32))), buffers=dict(
                      step=_tensor(D_STEP)))))
  augment_pipe = _Module(
      "AugmentPipe", init_kwargs=dict(AUGMENT_KWARGS), buffers=dict(
          p=_tensor(np.float32(0.25).reshape(())),
          Hz_geom=_tensor(HZ_GEOM)),
      attrs={k: float(v) for k, v in AUGMENT_KWARGS.items()})
  defaults = dict(
      G=_generator(_generator_arrays(0)), D=d,
      G_ema=_generator(_generator_arrays(1), state_type=EasyDict),
      augment_pipe=augment_pipe,
      training_set_kwargs=dict(
          class_name="training.dataset.ImageFolderDataset", path="data.zip",
          use_labels=False, max_size=70000, xflip=False, resolution=16,
          random_seed=0))
  # The keys of `changes` come first: an added entry is the first read.
  data = changes | {k: v for k, v in defaults.items() if k not in changes}
  return _dumps({k: v for k, v in data.items() if v is not ...}, protocol,
                evil_target)


class _TempDirTest(parameterized.TestCase):
  """Gives each test a temporary directory."""

  def setUp(self):
    super().setUp()
    self.tmp = self.enter_context(tempfile.TemporaryDirectory())

  def write(self, data: bytes, name="network.pkl") -> str:
    path = os.path.join(self.tmp, name)
    with open(path, "wb") as f:
      f.write(data)
    return path

  def read(self, data: bytes) -> dict:
    return pickle_reader.read_network_pickle(self.write(data))


class ReadNetworkPickleTest(_TempDirTest):

  @parameterized.parameters(3, 4, 5)
  def test_generator_state_dict_bit_exact(self, protocol):
    g = self.read(_network_pickle(protocol))["G"]
    expected = _generator_arrays(0)
    self.assertIsInstance(g, pickle_reader.PersistentRecord)
    self.assertEqual(g.class_name, "Generator")
    self.assertEqual(g.version, 6)
    self.assertEqual(g.module_name, "")
    self.assertEqual(list(g.state_dict), list(expected))  # Torch order.
    for name, array in expected.items():
      actual = g.state_dict[name]
      self.assertEqual((actual.dtype, actual.shape),
                       (array.dtype, array.shape), name)
      self.assertEqual(actual.tobytes(), array.tobytes(), name)
    self.assertNotIn("synthesis.L0_36_64.up_filter", g.state_dict)

  def test_generator_kwargs_and_attributes(self):
    g = self.read(_network_pickle())["G"]
    self.assertEqual(g.init_args, ())
    self.assertEqual(g.init_kwargs,
                     dict(G_KWARGS, mapping_kwargs=dict(num_layers=2)))
    self.assertIs(type(g.init_kwargs["mapping_kwargs"]), dict)
    self.assertEqual(g.attributes, dict(z_dim=4, img_resolution=16, num_ws=3,
                                        layer_names=["L0_36_64"]))

  def test_g_ema_with_easydict_state(self):
    g_ema = self.read(_network_pickle())["G_ema"]
    for name, array in _generator_arrays(1).items():
      np.testing.assert_array_equal(g_ema.state_dict[name], array)

  def test_discriminator_and_augment_pipe(self):
    networks = self.read(_network_pickle())
    d, pipe = networks["D"], networks["augment_pipe"]
    self.assertEqual(d.class_name, "Discriminator")
    self.assertEqual(list(d.state_dict), ["b4.bias", "b4.step"])
    self.assertEqual(d.state_dict["b4.step"].dtype, np.int64)
    np.testing.assert_array_equal(d.state_dict["b4.step"], D_STEP)
    self.assertEqual(pipe.class_name, "AugmentPipe")
    self.assertEqual(pipe.init_kwargs, AUGMENT_KWARGS)
    self.assertEqual(pipe.attributes,
                     {k: float(v) for k, v in AUGMENT_KWARGS.items()})
    self.assertEqual(list(pipe.state_dict), ["p", "Hz_geom"])
    self.assertEqual(pipe.state_dict["p"].shape, ())
    self.assertEqual(pipe.state_dict["p"], np.float32(0.25))
    np.testing.assert_array_equal(pipe.state_dict["Hz_geom"], HZ_GEOM)

  def test_training_set_kwargs_and_other_keys(self):
    networks = self.read(_network_pickle(progress=dict(cur_nimg=4000)))
    self.assertEqual(networks["training_set_kwargs"]["max_size"], 70000)
    self.assertEqual(networks["training_set_kwargs"]["path"], "data.zip")
    self.assertEqual(networks["progress"], dict(cur_nimg=4000))

  def test_ngc_file_without_optional_keys(self):
    networks = self.read(_network_pickle(augment_pipe=...,
                                         training_set_kwargs=...))
    self.assertIsNone(networks["augment_pipe"])
    self.assertIsNone(networks["training_set_kwargs"])
    self.assertEqual(networks["D"].class_name, "Discriminator")

  def test_reads_a_file_object(self):
    networks = pickle_reader.read_network_pickle(
        io.BytesIO(_network_pickle()))
    self.assertEqual(networks["G"].class_name, "Generator")

  def test_needs_no_official_modules(self):
    data = _network_pickle()
    for module in ("torch", "torch_utils", "dnnlib"):
      self.assertNotIn(module, sys.modules)
    self.assertEqual(self.read(data)["G_ema"].class_name, "Generator")


class TensorTest(_TempDirTest):

  def read_buffers(self, **buffers) -> dict[str, np.ndarray]:
    """The state dict of a D holding `buffers`."""
    d = _Module("Discriminator", buffers=buffers)
    data = _dumps(dict(G=None, D=d, G_ema=None))
    return self.read(data)["D"].state_dict

  @parameterized.parameters(
      (np.array([1.5, -0.0, np.inf, 3e-8], np.float32),),
      (np.array([1.5, -2.0, 65504, 6e-8, np.nan], np.float16),),
      (np.array([np.pi, -1e300], np.float64),),
      (np.array([2**62 + 1, -(2**63)], np.int64),),
      (np.array([2**31 - 1, -7], np.int32),),
      (np.array([-32768, 12], np.int16),),
      (np.array([-128, 127], np.int8),),
      (np.array([0, 255], np.uint8),),
      (np.array([True, False, True], np.bool_),),
  )
  def test_storage_types_bit_exact(self, array):
    actual = self.read_buffers(x=_tensor(array.reshape(-1, 1)))["x"]
    self.assertEqual(actual.dtype, array.dtype)
    self.assertEqual(actual.shape, (array.size, 1))
    self.assertEqual(actual.tobytes(), array.tobytes())

  def test_bfloat16_reads_as_float32(self):
    bits = np.array([0x3FC0, 0xC000, 0x7F80, 0x0001], np.uint16)
    tensor = _Tensor(_Storage(bits, "BFloat16Storage"), 0, (4,), (1,))
    actual = self.read_buffers(x=tensor)["x"]
    expected = np.array([1.5, -2.0, np.inf, 2.0**-133], np.float32)
    self.assertEqual(actual.dtype, np.float32)
    self.assertEqual(actual.tobytes(), expected.tobytes())

  def test_shared_storage_with_offset_and_transposed_strides(self):
    flat = np.arange(12, dtype=np.float32) * 1.25
    storage = _Storage(flat)
    whole = _Tensor(storage, 0, (3, 4), (4, 1))
    view = _Tensor(storage, 2, (2, 3), (1, 3), {})  # With metadata.
    state = self.read_buffers(whole=whole, view=view)
    np.testing.assert_array_equal(state["whole"], flat.reshape(3, 4))
    expected = flat[2 + np.arange(2)[:, None] + 3 * np.arange(3)[None, :]]
    np.testing.assert_array_equal(state["view"], expected)
    self.assertTrue(state["view"].flags.c_contiguous)
    self.assertTrue(state["view"].flags.owndata)
    data = _dumps(dict(D=_Module("D", buffers=dict(a=whole, b=view))))
    self.assertEqual(data.count(flat.tobytes()), 1)  # Stored once.

  def test_parameter_and_empty_tensor(self):
    empty = _Tensor(_Storage(np.zeros(0, np.float32)), 0, (0, 3), (3, 1))
    state = self.read_buffers(
        p=_param(np.float32([[1, 2]])), e=empty)
    np.testing.assert_array_equal(state["p"], np.float32([[1, 2]]))
    self.assertEqual(state["e"].shape, (0, 3))

  def test_non_persistent_buffer_is_skipped(self):
    d = _Module("D", buffers=dict(kept=_tensor(np.ones(2, np.float32)),
                                  dropped=_tensor(np.ones(2, np.float32))))
    d.state["_non_persistent_buffers_set"] = {"dropped"}
    for protocol in (3, 4):  # Protocol 3 writes the set as builtins.set.
      networks = self.read(_dumps(dict(G=None, D=d, G_ema=None), protocol))
      self.assertEqual(list(networks["D"].state_dict), ["kept"])


class NumpyValuesTest(_TempDirTest):

  KWARGS = dict(beta=np.float64(0.999), num=np.int64(3), half=np.float16(2),
                flag=np.bool_(True), size=np.array([16, 16]),
                table=np.arange(6, dtype=np.float32).reshape(2, 3),
                nested=EasyDict(lr=np.float32(0.002), betas=[0, 0.99]))

  def check(self, data: bytes):
    g = self.read(data)["G"]
    self.assertEqual(g.init_kwargs.keys(), self.KWARGS.keys())
    for name, value in g.init_kwargs.items():
      if name == "nested":
        continue
      expected = self.KWARGS[name]
      self.assertEqual((type(value), value.dtype), (type(expected),
                                                     expected.dtype), name)
      np.testing.assert_array_equal(value, expected, name)
    self.assertEqual(g.init_kwargs["nested"],
                     dict(lr=np.float32(0.002), betas=[0, 0.99]))
    self.assertIs(type(g.init_kwargs["nested"]), dict)
    self.assertIsInstance(g.init_kwargs["nested"]["lr"], np.float32)
    np.testing.assert_array_equal(g.attributes["in_size"], [36, 36])

  def pickle_with_numpy(self, protocol: int) -> bytes:
    g = _Module("Generator", init_kwargs=dict(self.KWARGS),
                attrs=dict(in_size=np.broadcast_to(np.asarray(36), [2])))
    return _dumps(dict(G=g, D=None, G_ema=None), protocol)

  @parameterized.parameters(3, 4, 5)
  def test_numpy_2_names(self, protocol):
    self.check(self.pickle_with_numpy(protocol))

  def test_numpy_1_names(self):
    data = self.pickle_with_numpy(3)  # Text GLOBALs: renaming is safe.
    self.assertIn(b"cnumpy._core.multiarray\n", data)
    self.check(data.replace(b"cnumpy._core.multiarray\n",
                            b"cnumpy.core.multiarray\n"))


class SecurityTest(_TempDirTest):

  def setUp(self):
    super().setUp()
    self.sentinel = os.path.join(self.tmp, "sentinel")

  def evil_pickle(self, target: str, where: str) -> bytes:
    """A network pickle calling `target` from `where` on a plain load."""
    evil = _Evil(target, self.sentinel)
    if where == "top":
      return _network_pickle(3, target, evil=evil)
    if where == "init_kwargs":
      g = _Module("Generator", init_kwargs=dict(z_dim=evil))
      return _network_pickle(3, target, G=g)
    storage = _Storage(np.ones(2, np.float32),
                       sys_info_extra=dict(evil=evil))
    d = _Module("D", buffers=dict(x=_Tensor(storage, 0, (2,), (1,))))
    return _network_pickle(3, target, D=d)

  @parameterized.parameters(*PAYLOADS)
  def test_payload_is_live_for_plain_pickle(self, target):
    result = pickle.loads(_dumps(_Evil(target, self.sentinel), 3, target))
    if target == "subprocess.Popen":
      self.assertEqual(result.wait(), 0)
    self.assertTrue(os.path.exists(self.sentinel))

  @parameterized.product(target=list(PAYLOADS),
                         where=["top", "init_kwargs", "storage"])
  def test_rejects_dangerous_global(self, target, where):
    data = self.evil_pickle(target, where)
    path = self.write(data)
    with self.assertRaisesRegex(pickle_reader.UnsafePickleError,
                                f"{re.escape(path)}: global {target} is"):
      pickle_reader.read_network_pickle(path)
    self.assertFalse(os.path.exists(self.sentinel))

  def test_module_source_is_not_run(self):
    src = f"open({self.sentinel!r}, 'w').close()\n"
    networks = self.read(_network_pickle(G=_Module("Generator",
                                                   module_src=src)))
    self.assertEqual(networks["G"].class_name, "Generator")
    self.assertFalse(os.path.exists(self.sentinel))

  def test_refuses_build_on_allowed_global(self):
    # GLOBAL torch._utils._rebuild_parameter, EMPTY_DICT, BUILD, STOP.
    data = b"\x80\x02ctorch._utils\n_rebuild_parameter\n}b."
    with self.assertRaisesRegex(ValueError, "sets the state"):
      self.read(data)

  def test_numpy_dtype_takes_only_strings(self):
    # numpy.dtype(builtins.set) as GLOBAL, GLOBAL, TUPLE1, REDUCE, STOP.
    data = b"\x80\x02cnumpy\ndtype\ncbuiltins\nset\n\x85R."
    with self.assertRaisesRegex(ValueError, "numpy.dtype: expected a type"):
      self.read(data)


class BadFileTest(_TempDirTest):

  @parameterized.parameters(0.0, 0.1, 0.5, 0.9, 0.999)
  def test_truncated_file(self, fraction):
    data = _network_pickle()
    path = self.write(data[:int(len(data) * fraction)])
    with self.assertRaisesRegex(ValueError, f"{re.escape(path)}: cannot read"):
      pickle_reader.read_network_pickle(path)

  def test_garbage(self):
    path = self.write(b"this is not a pickle")
    with self.assertRaisesRegex(ValueError, f"{re.escape(path)}: cannot read"):
      pickle_reader.read_network_pickle(path)

  @parameterized.named_parameters(
      ("bad_magic", dict(magic=1234), "bad magic number"),
      ("big_endian", dict(little_endian=False), "little-endian"),
      ("view", dict(view=("1", 0, 2)), "storage views are not supported"),
      ("count", dict(stored_numel=3), "3 elements stored, 4 declared"),
      ("unsupported_type", dict(type_name="ComplexFloatStorage"),
       "unsupported storage type torch.ComplexFloatStorage"),
      ("truncated", dict(cut=1), "data truncated"),
  )
  def test_bad_storage(self, breakage, message):
    storage = _Storage(np.ones(4, np.float32), **breakage)
    d = _Module("D", buffers=dict(x=_Tensor(storage, 0, (4,), (1,))))
    path = self.write(_network_pickle(D=d))
    with self.assertRaisesRegex(ValueError, f"{re.escape(path)}: .*{message}"):
      pickle_reader.read_network_pickle(path)

  def test_tensor_out_of_storage(self):
    storage = _Storage(np.ones(12, np.float32))
    d = _Module("D", buffers=dict(x=_Tensor(storage, 1, (3, 4), (4, 1))))
    with self.assertRaisesRegex(ValueError, "reads past a storage of 12"):
      self.read(_network_pickle(D=d))

  def test_meta_type_not_class(self):
    with self.assertRaisesRegex(ValueError, "meta type 'function'"):
      self.read(_network_pickle(G=_Module("G", meta_type="function")))

  def test_missing_top_level_keys(self):
    path = self.write(_network_pickle(D=..., G_ema=...))
    with self.assertRaisesRegex(
        ValueError, rf"{re.escape(path)}: missing .*\['D', 'G_ema'\]"):
      pickle_reader.read_network_pickle(path)

  def test_top_level_not_a_dict(self):
    with self.assertRaisesRegex(ValueError, "expected a dict at the top"):
      self.read(_dumps([1, 2]))


if __name__ == "__main__":
  absltest.main()
