"""Exports G_ema as a serving artifact (`jax.export`, no sg3jax needed).

    sg3jax export --network=CKPT_OR_PKL --outdir=out/export \\
        [--platforms=cpu,cuda,tpu]

Writes `generator.jax` (StableHLO of z, c, psi -> uint8 images, any batch
size, for each platform), `weights.npz`, `manifest.json` and `loader.py`,
which runs it with jax and NumPy alone:
`python out/export/loader.py out/export --seeds=0,1 --psi=0.7`.
"""

import sys

from absl import flags

from sg3jax import serving
from sg3jax.cli import common
from sg3jax.cli import command
from sg3jax.training import checkpoints

# Flags of this command only (the sg3jax script imports several commands).
FLAGS = flags.FlagValues()
_NETWORK = common.define_network_flag(FLAGS)
_OUTDIR = flags.DEFINE_string("outdir", "out/export", "where to write",
                              flag_values=FLAGS)
_PLATFORMS = flags.DEFINE_list("platforms", list(serving.PLATFORMS),
                               "platforms to lower for (cpu, cuda, rocm, "
                               "tpu)", flag_values=FLAGS)


def main(argv: list[str]) -> None:
  del argv
  module, variables = checkpoints.load_generator(_NETWORK.value)
  path = serving.write_export(module, variables, _OUTDIR.value,
                              platforms=tuple(_PLATFORMS.value),
                              source=_NETWORK.value)
  print(f"wrote {path} (platforms: {', '.join(_PLATFORMS.value)})")


def run(argv: list[str]) -> None:
  command.run(FLAGS, main, argv)


if __name__ == "__main__":
  run(sys.argv)
