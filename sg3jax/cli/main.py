"""The `sg3jax` console script: `sg3jax <command> [flags]`.

Only the chosen command's module is imported (absl flags are global).
`python -m sg3jax.<command>` runs the same module: `CommandFinder`
(installed by `sg3jax/__init__.py`) finds `sg3jax.<command>`, and
`sg3jax.<command>.__main__` where the command shares a package's name
(metrics, convert), as the command's file in sg3jax/cli, so no module per
command sits at the package root.
"""

import importlib
import importlib.abc
import importlib.util
import pathlib
import sys

COMMANDS = {
    "convert": "sg3jax.cli.convert",
    "dataset": "sg3jax.cli.dataset",
    "demo": "sg3jax.cli.demo",
    "generate": "sg3jax.cli.generate",
    "metrics": "sg3jax.cli.metrics",
    "plan": "sg3jax.cli.plan",
    "project": "sg3jax.cli.project",
    "train": "sg3jax.cli.train",
    "eqmaps": "sg3jax.cli.eqmaps",
    "export": "sg3jax.cli.export",
    "internals": "sg3jax.cli.internals",
    "spectrum": "sg3jax.cli.spectrum",
    "sticking": "sg3jax.cli.sticking",
    "sweep": "sg3jax.cli.sweep",
    "video": "sg3jax.cli.video",
    "visualize": "sg3jax.cli.visualize",
}


class CommandFinder(importlib.abc.MetaPathFinder):
  """Import hook: `sg3jax.<command>[.__main__]` -> sg3jax/cli/<command>.py.

  Consulted after the ordinary finders, so real modules always win.
  """

  def find_spec(self, fullname, path, target=None):
    del path, target
    parts = fullname.split(".")
    if parts[0] != "sg3jax" or len(parts) not in (2, 3):
      return None
    if len(parts) == 3 and parts[2] != "__main__":
      return None
    command = parts[1]
    if command not in COMMANDS:
      return None
    source = pathlib.Path(__file__).with_name(f"{command}.py")
    return importlib.util.spec_from_file_location(fullname, source)


def run(argv: list[str] | None = None) -> None:
  argv = sys.argv if argv is None else argv
  if len(argv) < 2 or argv[1] not in COMMANDS:
    names = ", ".join(sorted(COMMANDS))
    sys.exit(f"usage: sg3jax <command> [--flags]\ncommands: {names}")
  module = importlib.import_module(COMMANDS[argv[1]])
  module.run([f"sg3jax {argv[1]}"] + argv[2:])


if __name__ == "__main__":
  run()
