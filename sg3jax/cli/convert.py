"""Converts an official StyleGAN3 network pickle to an sg3jax checkpoint.

    sg3jax convert network-snapshot-000000.pkl out/converted [--overwrite]

Reads the pickle without executing anything from it and without NVIDIA's
code; writes an Orbax checkpoint of G, D and G_ema with their init kwargs,
and the ADA state and training-set kwargs as JSON.
"""

import sys

from absl import flags

from sg3jax.cli import command
from sg3jax.training import checkpoints

# Flags of this command only (the sg3jax script imports several commands).
FLAGS = flags.FlagValues()
_OVERWRITE = flags.DEFINE_bool("overwrite", False,
                               "replace an existing output checkpoint",
                               flag_values=FLAGS)


def main(argv: list[str]) -> None:
  if len(argv) != 3:
    sys.exit("usage: sg3jax convert <pkl> <outdir> [--overwrite]")
  path = checkpoints.convert_official_pickle(argv[1], argv[2],
                                             overwrite=_OVERWRITE.value)
  print(f"wrote {path}")


def run(argv: list[str]) -> None:
  command.run(FLAGS, main, argv)


if __name__ == "__main__":
  run(sys.argv)
