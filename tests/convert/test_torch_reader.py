"""The safe PyTorch weight-file reader: files PyTorch wrote, the torch-free
writer's files in every container, and corrupt or unsafe files.

Fixtures: tests/official_extra/torch_files/ (written by torch.save, zip and
legacy, and torch.jit.save) and the arrays they hold, metrics.npz
`torch_files/*`.
"""

import pathlib
import pickle

import numpy as np
from absl.testing import absltest
from absl.testing import parameterized

from sg3jax.convert import torch_reader
from sg3jax.convert import UnsafePickleError
from tests import official
from tests.convert import torch_writer

FILES = official.EXTRA_DIR / "torch_files"


def expected_arrays() -> dict[str, np.ndarray]:
  data, _ = official.load_extra("metrics")
  prefix = "torch_files/"
  return {k[len(prefix):]: v for k, v in data.items() if k.startswith(prefix)}


def assert_same(test, actual, expected):
  test.assertEqual(sorted(actual), sorted(expected))
  for name, value in expected.items():
    test.assertEqual(actual[name].dtype, value.dtype, name)
    np.testing.assert_array_equal(actual[name], value, err_msg=name)


class TorchWrittenFilesTest(parameterized.TestCase):

  @parameterized.parameters("state_dict_zip.pth", "state_dict_legacy.pth")
  def test_state_dicts(self, name):
    assert_same(self, torch_reader.load_state_dict(FILES / name),
                expected_arrays())

  def test_torchscript_module(self):
    expected = {k: v for k, v in expected_arrays().items()
                if not k.startswith("extra.")}
    obj = torch_reader.read_torch_file(FILES / "torchscript.pt")
    self.assertIsInstance(obj, torch_reader.ScriptObject)
    self.assertEqual(obj.qualified_name.rsplit(".", 1)[-1], "Net")
    assert_same(self, torch_reader.script_state_dict(obj), expected)


class WriterRoundTripTest(parameterized.TestCase):

  STATE = {"a.b.weight": np.arange(24, dtype=np.float32).reshape(2, 3, 4),
           "a.c": np.linspace(0, 1, 3), "x": np.arange(5),
           "h": np.array([1.5, -2], np.float16)}

  @parameterized.named_parameters(
      ("zip", torch_writer.torch_save_zip),
      ("legacy", torch_writer.torch_save_legacy),
      ("torchscript", torch_writer.torchscript_archive),
      ("detector_pickle", lambda s: torch_writer.detector_pickle(
          torch_writer.torchscript_archive(s))),
      ("detector_pickle_protocol2", lambda s: torch_writer.detector_pickle(
          torch_writer.torchscript_archive(s), protocol=2)))
  def test_round_trip(self, write):
    path = pathlib.Path(self.create_tempfile().full_path)
    path.write_bytes(write(self.STATE))
    assert_same(self, torch_reader.load_state_dict(path), self.STATE)


class BadFilesTest(absltest.TestCase):

  def write(self, data: bytes) -> pathlib.Path:
    path = pathlib.Path(self.create_tempfile("w.pth").full_path)
    path.write_bytes(data)
    return path

  def test_truncated_legacy(self):
    data = torch_writer.torch_save_legacy({"w": np.ones(100, np.float32)})
    with self.assertRaisesRegex(ValueError, r"w\.pth: cannot read.*storage"):
      torch_reader.load_state_dict(self.write(data[:-8]))

  def test_missing_storage_member(self):
    data = torch_writer.torch_save_zip({"w": np.ones(3, np.float32)})
    data = data.replace(b"archive/data/0", b"archive/data/9")
    with self.assertRaisesRegex(ValueError, r"no member archive/data/0"):
      torch_reader.load_state_dict(self.write(data))

  def test_unsafe_global_in_state_dict(self):
    data = torch_writer.torchscript_archive({"w": np.zeros(2)},
                                            root_class="__main__.Evil")
    with self.assertRaisesRegex(UnsafePickleError, "__main__.Evil"):
      torch_reader.load_state_dict(self.write(data))

  def test_two_archives(self):
    data = pickle.dumps((torch_writer.torchscript_archive({"w": np.zeros(2)}),
                         torch_writer.torchscript_archive({"v": np.ones(2)})),
                        protocol=4)
    with self.assertRaisesRegex(ValueError, "carrying one.*found 2"):
      torch_reader.load_state_dict(self.write(data))

  def test_corrupt_zip(self):
    with self.assertRaisesRegex(ValueError, r"w\.pth: cannot read.*Zip"):
      torch_reader.load_state_dict(self.write(b"PK\x03\x04" + bytes(100)))


if __name__ == "__main__":
  absltest.main()
