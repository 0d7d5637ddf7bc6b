"""Network checkpoints: Orbax round trip, safe overwrite, clear errors."""

import ast
import functools
import pathlib
import tempfile
from unittest import mock

import jax
import numpy as np
from absl.testing import absltest

from sg3jax import checkpoint
from sg3jax import convert
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


class CheckpointTest(absltest.TestCase):

  def setUp(self):
    super().setUp()
    self.root = pathlib.Path(self.create_tempdir().full_path)

  def _save(self, directory, **kwargs):
    module, variables, init_kwargs, _ = converted_generator()
    del module
    return checkpoint.save_networks(
        directory, {"G_ema": checkpoint.Network("Generator", init_kwargs,
                                                variables)},
        extras={"augment_pipe": {"p": np.float32(0.25)}}, **kwargs)

  def test_round_trip_renders_the_same_image(self):
    module, variables, init_kwargs, arrays = converted_generator()
    path = self._save(self.root / "ckpt")
    loaded = checkpoint.load_networks(path)
    restored_module, restored = loaded["G_ema"]
    self.assertEqual(restored_module, module)
    jax.tree.map(np.testing.assert_array_equal, restored, variables)
    z = arrays["psi1.0/z"]
    render = jax.jit(module.apply)
    np.testing.assert_array_equal(render(restored, z), render(variables, z))
    self.assertEqual(checkpoint.read_network_meta(path)["G_ema"], {
        "class_name": "Generator", "init_kwargs": init_kwargs})
    self.assertEqual(checkpoint.read_extras(path),
                     {"augment_pipe": {"p": 0.25}})

  def test_existing_checkpoint_is_not_overwritten_by_default(self):
    path = self._save(self.root / "ckpt")
    with self.assertRaisesRegex(ValueError, "already exists"):
      self._save(path)
    self._save(path, overwrite=True)
    self.assertIn("G_ema", checkpoint.load_networks(path))

  def test_crash_mid_save_keeps_the_last_good_checkpoint(self):
    path = self._save(self.root / "ckpt")
    with mock.patch.object(checkpoint.ocp.Checkpointer, "save",
                           side_effect=KeyboardInterrupt("killed")):
      with self.assertRaises(KeyboardInterrupt):
        self._save(path, overwrite=True)
    self.assertEqual(sorted(p.name for p in self.root.iterdir()), ["ckpt"])
    _, variables, _, _ = converted_generator()
    restored = checkpoint.load_networks(path)["G_ema"][1]
    jax.tree.map(np.testing.assert_array_equal, restored, variables)

  def test_not_a_checkpoint(self):
    with self.assertRaisesRegex(ValueError, "not an sg3jax network checkpoint"):
      checkpoint.load_networks(tempfile.mkdtemp(dir=self.root))

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

  def test_convert_and_run_checkpoints_sit_below_checkpoint(self):
    # convert/ <- training/checkpoints.py <- checkpoint.py: no cycle.
    package = pathlib.Path(checkpoint.__file__).parent
    lower = sorted((package / "convert").glob("*.py")) + [
        package / "training" / "checkpoints.py"]
    for path in lower:
      imports = sg3jax_imports(path)
      self.assertNotIn("sg3jax.checkpoint", imports, path)
      self.assertFalse([n for n in imports if n.startswith(
          "sg3jax.training")], path)
    tree = ast.parse((package / "checkpoint.py").read_text())
    nested = [n for f in tree.body if isinstance(f, ast.FunctionDef)
              for n in ast.walk(f) if isinstance(n, (ast.Import,
                                                     ast.ImportFrom))]
    self.assertEqual(nested, [])  # no import deferred to break a cycle


if __name__ == "__main__":
  absltest.main()
