"""Computes quality metrics of a network and writes official JSONL.

    sg3jax metrics --network=CKPT_OR_PKL \\
        --metrics=eqt50k_int,eqt50k_frac,eqr50k --num=50000 --batch=16 \\
        --outdir=runs/00000
    sg3jax metrics --network=runs/00000 --metrics=fid50k_full,kid50k_full \\
        --data=~/datasets/ffhq-256x256.zip --detector_dir=~/detectors

The dataset metrics (fid50k_full, kid50k_full, pr50k3_full, is50k,
fid50k, kid50k, pr50k3) need `--data` and an official detector in
`--detector_dir` or $SG3JAX_DETECTORS: inception-2015-12-05.pkl (FID, KID,
IS) or vgg16.pkl (precision/recall); ppl2_wend needs vgg16.pkl (and
`--data` for a conditional network's labels). Dataset statistics are
cached in $SG3JAX_CACHE (default ~/.cache/sg3jax).

`--network` is an sg3jax network checkpoint directory or an official
network pickle; G_ema is used when present, else G. Each metric appends one
line to `<outdir>/metric-<name>.jsonl` (default outdir: the directory that
holds the network, as the official calc_metrics.py). The batch is sharded
over all devices; latents and transforms come from `jax.random` with
`--seed` (the official draws them with torch's RNG, so figures agree in
distribution, not sample by sample).
"""

import pathlib
import sys

from absl import flags

from sg3jax.cli import command
from sg3jax.training import checkpoints

FLAGS = flags.FlagValues()
_NETWORK = flags.DEFINE_string(
    "network", None, "sg3jax network checkpoint dir or official .pkl",
    required=True, flag_values=FLAGS)
_METRICS = flags.DEFINE_list(
    "metrics", ["eqt50k_int", "eqt50k_frac", "eqr50k"],
    "comma-separated metric names", flag_values=FLAGS)
_NUM = flags.DEFINE_integer(
    "num", None, "generated samples per metric (default: the official "
    "50000); fid50k/kid50k/pr50k3 also use this many real images",
    flag_values=FLAGS)
_DATA = flags.DEFINE_string("data", None, "dataset of the dataset metrics",
                            flag_values=FLAGS)
_DETECTOR_DIR = flags.DEFINE_string(
    "detector_dir", None, "folder of the detector files (default "
    "$SG3JAX_DETECTORS)", flag_values=FLAGS)
_CACHE = flags.DEFINE_bool("cache", True, "cache dataset statistics",
                           flag_values=FLAGS)
_BATCH = flags.DEFINE_integer(
    "batch", None, "samples per step over all devices (multiple of "
    "4 * devices; default 4 * devices)", flag_values=FLAGS)
_SEED = flags.DEFINE_integer("seed", 0, "seed of latents and transforms",
                             flag_values=FLAGS)
_OUTDIR = flags.DEFINE_string(
    "outdir", None, "where metric-<name>.jsonl goes (default: the network's "
    "directory)", flag_values=FLAGS)
_PROGRESS = flags.DEFINE_bool("progress", True, "show a progress bar",
                              flag_values=FLAGS)


def main(argv: list[str]) -> None:
  del argv
  from sg3jax.metrics import metric_main  # pylint: disable=g-import-not-at-top
  bad = [m for m in _METRICS.value if not metric_main.is_valid_metric(m)]
  if bad:
    sys.exit(f"metrics: unknown {bad}; valid: "
             f"{', '.join(metric_main.list_valid_metrics())}")
  needing_data = [m for m in _METRICS.value if metric_main.needs_data(m)]
  if needing_data and not _DATA.value:
    sys.exit(f"metrics {needing_data} need --data")
  network = pathlib.Path(_NETWORK.value)
  if not network.exists():
    sys.exit(f"network: {network} does not exist")
  try:
    module, variables = checkpoints.load_generator(network)
  except ValueError as e:
    sys.exit(str(e))
  outdir = pathlib.Path(_OUTDIR.value) if _OUTDIR.value else (
      network.absolute().parent)
  outdir.mkdir(parents=True, exist_ok=True)
  for metric in _METRICS.value:
    try:
      result = metric_main.calc_metric(
          metric, module, variables, num=_NUM.value, batch=_BATCH.value,
          seed=_SEED.value, progress=_PROGRESS.value, data=_DATA.value,
          detector_dir=_DETECTOR_DIR.value, cache=_CACHE.value)
    except (ValueError, FileNotFoundError) as e:
      sys.exit(f"{metric}: {e}")
    metric_main.report_metric(result, run_dir=outdir,
                              snapshot_pkl=network.absolute())


def run(argv: list[str]) -> None:
  command.run(FLAGS, main, argv)


if __name__ == "__main__":
  run(sys.argv)
