"""The sg3jax script's command table and `python -m sg3jax.<command>`."""

import importlib.util
import pathlib
import subprocess
import sys

from absl.testing import absltest

from sg3jax.cli import main  # importing sg3jax installs CommandFinder

CLI = pathlib.Path(main.__file__).parent


class CommandModulesTest(absltest.TestCase):

  def test_every_command_is_found_as_its_cli_module(self):
    for command in main.COMMANDS:
      name = f"sg3jax.{command}"
      if importlib.util.find_spec(name).submodule_search_locations:
        name += ".__main__"  # a package of the same name (metrics)
      self.assertEqual(pathlib.Path(importlib.util.find_spec(name).origin),
                       CLI / f"{command}.py", name)
    self.assertIsNone(importlib.util.find_spec("sg3jax.nonexistent"))
    self.assertIsNone(importlib.util.find_spec("sg3jax.metrics.other"))

  def test_python_m_runs_the_command(self):
    for command in ("metrics", "export"):  # a package's name, a plain one
      result = subprocess.run([sys.executable, "-m", f"sg3jax.{command}"],
                              capture_output=True, text=True, check=False)
      self.assertEqual(result.returncode, 1, result.stderr)
      self.assertIn("Flag --network must have a value", result.stderr)

  def test_unknown_command_lists_the_commands(self):
    with self.assertRaisesRegex(SystemExit, "commands: convert, dataset"):
      main.run(["sg3jax", "nope"])


if __name__ == "__main__":
  absltest.main()
