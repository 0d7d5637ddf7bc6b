"""Internal representations: channels of synthesis layers as a grid PNG.

    sg3jax internals --network=CKPT_OR_PKL --seed=0 --layers=0,L3,-1 \\
        --channels=0-3 --outdir=out/internals

Writes `internals.png`: one row per layer (`--layers`: names such as
'L3_52_512', prefixes such as 'L3', or indices with 0 = the Fourier input
and -1 = ToRGB; default: five layers evenly spread from input to ToRGB),
one column per channel (`--channels`), each tile the channel's output
(margins included) scaled by its own maximum magnitude, red positive and
blue negative. `--translate`/`--rotate` move the input as in `generate`.
"""

import sys

from absl import flags
import numpy as np

from sg3jax import analysis
from sg3jax.analysis import figures
from sg3jax.cli import common
from sg3jax.cli import command
from sg3jax.training import checkpoints

# Flags of this command only (the sg3jax script imports several commands).
FLAGS = flags.FlagValues()
_NETWORK = common.define_network_flag(FLAGS)
_SEED = flags.DEFINE_integer("seed", 0, "seed of the latent",
                             flag_values=FLAGS)
_LATENT = common.define_latent_flags(FLAGS)
_LAYERS = flags.DEFINE_list("layers", None, "layer names, prefixes or "
                            "indices (default: 5 spread out)",
                            flag_values=FLAGS)
_CHANNELS = flags.DEFINE_string("channels", "0-3", "channels, e.g. '0-3,7'",
                                flag_values=FLAGS)
_SIZE = flags.DEFINE_integer("size", None, "tile size in pixels (default: "
                             "the largest layer's)", lower_bound=1,
                             flag_values=FLAGS)
_TRANSLATE = flags.DEFINE_string("translate", "0,0", "translate XY, 'x,y'",
                                 flag_values=FLAGS)
_ROTATE = flags.DEFINE_float("rotate", 0.0, "rotation angle in degrees",
                             flag_values=FLAGS)
_OUTDIR = flags.DEFINE_string("outdir", "out/internals",
                              "where to write the PNG", flag_values=FLAGS)


def default_layers(module, num: int = 5) -> list[str]:
  """`num` layers evenly spread from the input to ToRGB."""
  names = analysis.layer_names(module)
  picks = np.unique(np.rint(np.linspace(0, len(names) - 1, num)).astype(int))
  return [names[i] for i in picks]


def internal_tiles(module, variables: dict, seed: int, *,
                   layers: list[str] | None = None,
                   channels: list[int] = (0, 1, 2, 3),
                   size: int | None = None, truncation_psi: float = 1.0,
                   class_idx: int | None = None,
                   translate: tuple[float, float] = (0.0, 0.0),
                   rotate: float = 0.0) -> tuple[np.ndarray, list[str]]:
  """(tiles `[L, K, size, size]`, layer names) of one seed's layers."""
  layers = (default_layers(module) if layers is None
            else analysis.resolve_layers(module, layers))
  ws = analysis.seed_ws(module, variables, [seed],
                       truncation_psi=truncation_psi, class_idx=class_idx)
  acts = analysis.capture_layers(
      variables, ws, analysis.input_transform(translate, np.deg2rad(rotate)),
      module=module, layers=tuple(layers))
  tiles = analysis.channel_tiles([np.asarray(acts[n])[0] for n in layers],
                                 channels, size=size)
  return tiles, layers


def main(argv: list[str]) -> None:
  del argv
  module, variables = checkpoints.load_generator(_NETWORK.value)
  channels = common.parse_ints(_CHANNELS.value, "channels")
  tiles, layers = internal_tiles(
      module, variables, _SEED.value, layers=_LAYERS.value,
      channels=channels, size=_SIZE.value,
      truncation_psi=_LATENT.trunc.value, class_idx=_LATENT.class_idx.value,
      translate=common.parse_vec2(_TRANSLATE.value),
      rotate=_ROTATE.value)
  path = figures.save_figure(figures.internals_figure(tiles, layers, channels),
                             f"{_OUTDIR.value}/internals.png")
  print(f"wrote {path}")


def run(argv: list[str]) -> None:
  command.run(FLAGS, main, argv)


if __name__ == "__main__":
  run(sys.argv)
