"""Network checkpoints: Orbax round trip, safe overwrite, checksums, clear
errors; the checkpoint modules' import layers. (A training run's
checkpoints are tested with the run, in test_loop.py.)"""

import ast
import functools
import hashlib
import pathlib
import tempfile
from unittest import mock

import jax
import numpy as np
import orbax.checkpoint as ocp
from absl.testing import absltest
from absl.testing import parameterized

from sg3jax import convert
from sg3jax.training import checkpoints
from sg3jax.training.checkpoints import checksums
from tests import official


@functools.cache
def converted_generator():
  """(module, variables, init_kwargs, arrays) of the g_t64 fixture."""
  arrays, cases = official.load("g_t64")
  state = {k[len("state/"):]: v for k, v in arrays.items()
           if k.startswith("state/")}
  kwargs = cases["state"]["init_kwargs"]
  module, variables = convert.generator_from_state_dict(state, kwargs)
  return module, variables, kwargs, arrays


def flip_byte_in_largest_file(item: pathlib.Path) -> pathlib.Path:
  """Flips the lowest bit of the middle byte of the largest file in a
  checkpoint item (an array chunk); returns the file."""
  path = max((p for p in item.rglob("*") if p.is_file()),
             key=lambda p: p.stat().st_size)
  data = bytearray(path.read_bytes())
  data[len(data) // 2] ^= 1
  path.write_bytes(bytes(data))
  return path


class CheckpointTest(parameterized.TestCase):

  def setUp(self):
    super().setUp()
    self.root = pathlib.Path(self.create_tempdir().full_path)

  def _save(self, directory, **kwargs):
    module, variables, init_kwargs, _ = converted_generator()
    del module
    return checkpoints.save_networks(
        directory, {"G_ema": checkpoints.Network("Generator", init_kwargs,
                                                variables)},
        extras={"augment_pipe": {"p": np.float32(0.25)}}, **kwargs)

  def test_round_trip_renders_the_same_image(self):
    module, variables, init_kwargs, arrays = converted_generator()
    path = self._save(self.root / "ckpt")
    loaded = checkpoints.load_networks(path)
    restored_module, restored = loaded["G_ema"]
    self.assertEqual(restored_module, module)
    jax.tree.map(np.testing.assert_array_equal, restored, variables)
    z = arrays["psi1.0/z"]
    render = jax.jit(module.apply)
    np.testing.assert_array_equal(render(restored, z), render(variables, z))
    self.assertEqual(checkpoints.read_network_meta(path)["G_ema"], {
        "class_name": "Generator", "init_kwargs": init_kwargs})
    self.assertEqual(checkpoints.read_extras(path),
                     {"augment_pipe": {"p": 0.25}})

  def test_existing_checkpoint_is_not_overwritten_by_default(self):
    path = self._save(self.root / "ckpt")
    with self.assertRaisesRegex(ValueError, "already exists"):
      self._save(path)
    self._save(path, overwrite=True)
    self.assertIn("G_ema", checkpoints.load_networks(path))

  @parameterized.named_parameters(
      ("writing_arrays", ocp.Checkpointer, "save"),
      ("writing_checksums", checksums, "write"))
  def test_crash_mid_save_keeps_the_last_good_checkpoint(self, target, name):
    path = self._save(self.root / "ckpt")
    with mock.patch.object(target, name,
                           side_effect=KeyboardInterrupt("killed")):
      with self.assertRaises(KeyboardInterrupt):
        self._save(path, overwrite=True)
    self.assertEqual(sorted(p.name for p in self.root.iterdir()), ["ckpt"])
    _, variables, _, _ = converted_generator()
    restored = checkpoints.load_networks(path)["G_ema"][1]
    jax.tree.map(np.testing.assert_array_equal, restored, variables)

  def test_checksums_list_every_file_of_the_items(self):
    path = self._save(self.root / "ckpt")
    sums = checksums.parse_sums((path / checksums.SUMS_FILE).read_text(),
                                path)
    files = sorted(p.relative_to(path).as_posix() for p in path.rglob("*")
                   if p.is_file() and p.parent != path)
    self.assertEqual(sorted(sums), files)
    self.assertTrue({"variables/manifest.ocdbt", "networks/metadata",
                     "extras/metadata"} <= set(sums))
    for name, digest in sums.items():
      self.assertEqual(digest, hashlib.sha256(
          (path / name).read_bytes()).hexdigest(), name)

  def test_a_flipped_byte_in_an_array_chunk_is_named(self):
    path = self._save(self.root / "ckpt")
    flipped = flip_byte_in_largest_file(path / "variables")
    name = flipped.relative_to(path).as_posix()
    self.assertStartsWith(name, "variables/ocdbt.process_0/d/")
    expected = checksums.parse_sums(
        (path / checksums.SUMS_FILE).read_text(), path)[name]
    got = hashlib.sha256(flipped.read_bytes()).hexdigest()
    self.assertNotEqual(got, expected)
    with self.assertRaisesRegex(
        ValueError, f"{path}: {name}: SHA-256 {got}, expected {expected}"):
      checkpoints.load_networks(path)

  def test_a_checkpoint_saved_before_checksums_loads_with_a_warning(self):
    _, variables, _, _ = converted_generator()
    path = self._save(self.root / "ckpt")
    (path / checksums.SUMS_FILE).unlink()
    with self.assertWarnsRegex(RuntimeWarning, f"{path}: no SHA256SUMS .* "
                               "reading extras, networks, variables "
                               "unverified"):
      restored = checkpoints.load_networks(path)["G_ema"][1]
    jax.tree.map(np.testing.assert_array_equal, restored, variables)

  def test_missing_and_unlisted_files_are_named(self):
    path = self._save(self.root / "ckpt")
    (path / "extras" / "metadata").rename(path / "extras" / "renamed")
    with self.assertRaisesRegex(
        ValueError, "extras/metadata: missing .*; extras/renamed: not "
        "listed in SHA256SUMS"):
      checkpoints.read_extras(path)
    self.assertIn("G_ema", checkpoints.read_network_meta(path))

  def test_mismatches(self):
    self.assertEqual(checksums.mismatches(
        {"a/x": "1" * 64, "a/y": "2" * 64, "a/z": "3" * 64},
        {"a/x": "1" * 64, "a/y": "f" * 64, "a/w": "4" * 64}), [
            "a/w: not listed in SHA256SUMS",
            f"a/y: SHA-256 {'f' * 64}, expected {'2' * 64} (SHA256SUMS)",
            "a/z: missing (listed in SHA256SUMS)"])

  def test_malformed_checksum_line_is_named(self):
    good = checksums.format_sums({"a/x": "0" * 64})
    self.assertEqual(good, f"{'0' * 64}  a/x\n")
    self.assertEqual(checksums.parse_sums(good, "sums"), {"a/x": "0" * 64})
    with self.assertRaisesRegex(
        ValueError, "sums: line 2: expected '<64 hex digits>  <path>', got "
        "'ab  a/y'"):
      checksums.parse_sums(good + "ab  a/y\n", "sums")

  def test_not_a_checkpoint(self):
    with self.assertRaisesRegex(ValueError, "not an sg3jax network checkpoint"):
      checkpoints.load_networks(tempfile.mkdtemp(dir=self.root))

  def test_unknown_class(self):
    with self.assertRaisesRegex(ValueError, "class_name: expected"):
      convert.build_module("Encoder", {})


def sg3jax_imports(path: pathlib.Path) -> set[str]:
  """The sg3jax modules a source file imports, at any depth."""
  names = set()
  for node in ast.walk(ast.parse(path.read_text())):
    if isinstance(node, ast.Import):
      names.update(a.name for a in node.names)
    elif isinstance(node, ast.ImportFrom) and node.module:
      names.update(f"{node.module}.{a.name}" for a in node.names)
  return {n for n in names if n.startswith("sg3jax")}


class ImportLayersTest(absltest.TestCase):

  def test_checkpoints_have_one_home_without_cycles(self):
    # convert/ <- checksums <- run <- networks, all in training/checkpoints/.
    package = pathlib.Path(checkpoints.__file__).parents[2]
    home = package / "training" / "checkpoints"
    self.assertFalse((package / "checkpoint.py").exists())
    for path in sorted((package / "convert").glob("*.py")):
      self.assertFalse([n for n in sg3jax_imports(path) if n.startswith(
          "sg3jax.training")], path)
    layers = {"checksums": set(), "run": {"checksums"},
              "networks": {"checksums", "run"}}
    for name, below in layers.items():
      imports = sg3jax_imports(home / f"{name}.py")
      own = {n.rsplit(".", 1)[1] for n in imports
             if n.startswith("sg3jax.training.checkpoints.")}
      self.assertEqual(own, below, name)
      # Nothing else of training/ (no loop, no steps) comes with them.
      self.assertFalse([n for n in imports if n.startswith("sg3jax.training")
                        and not n.startswith("sg3jax.training.checkpoints")],
                       name)
      tree = ast.parse((home / f"{name}.py").read_text())
      nested = [n for f in tree.body if isinstance(f, (ast.FunctionDef,
                                                       ast.ClassDef))
                for n in ast.walk(f) if isinstance(n, (ast.Import,
                                                       ast.ImportFrom))]
      self.assertEqual(nested, [], name)  # no import deferred for a cycle


if __name__ == "__main__":
  absltest.main()
