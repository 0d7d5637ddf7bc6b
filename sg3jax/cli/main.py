"""The `sg3jax` console script: `sg3jax <command> [flags]`.

Only the chosen command's module is imported (absl flags are global).
"""

import importlib
import sys

COMMANDS = {
    "convert": "sg3jax.cli.convert",
    "dataset": "sg3jax.cli.dataset",
    "demo": "sg3jax.cli.demo",
    "generate": "sg3jax.cli.generate",
    "metrics": "sg3jax.cli.metrics",
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


def run(argv: list[str] | None = None) -> None:
  argv = sys.argv if argv is None else argv
  if len(argv) < 2 or argv[1] not in COMMANDS:
    names = ", ".join(sorted(COMMANDS))
    sys.exit(f"usage: sg3jax <command> [--flags]\ncommands: {names}")
  module = importlib.import_module(COMMANDS[argv[1]])
  module.run([f"sg3jax {argv[1]}"] + argv[2:])


if __name__ == "__main__":
  run()
