"""Runs an ablation sweep: variants of a training config, their
equivariance at init and after a short training run, one table.

    sg3jax sweep --config=experiments/filter_sweep.py --workdir=out/sweep
    sg3jax sweep --config=experiments/filter_sweep.py:tiny \\
        --workdir=out/sweep_tiny --config.only=baseline,no_filter

Writes `results.jsonl`, `sweep.md`, `sweep.json`, `sweep.png` and one
training run per variant under `runs/`; the same command on the same
workdir resumes (see sg3jax.analysis.sweep). On SIGTERM (preemption), the
variant in training writes a checkpoint and the command exits with status
0; the same command resumes it.
"""

import sys

from absl import flags
from ml_collections import config_flags

from sg3jax.cli import command

FLAGS = flags.FlagValues()
_CONFIG = config_flags.DEFINE_config_file(
    "config", None, "sweep config file[:argument]", lock_config=True,
    flag_values=FLAGS)
_WORKDIR = flags.DEFINE_string("workdir", None, "sweep directory",
                               required=True, flag_values=FLAGS)


def main(argv: list[str]) -> None:
  del argv
  if _CONFIG.value is None:
    sys.exit("sg3jax sweep: --config is required, e.g. "
             "--config=experiments/filter_sweep.py")
  # pylint: disable=g-import-not-at-top
  from sg3jax.analysis import sweep
  from sg3jax.training import preemption
  # pylint: enable=g-import-not-at-top
  try:
    sweep.run_sweep(_CONFIG.value, _WORKDIR.value)
  except (ValueError, FileNotFoundError) as e:
    sys.exit(f"sg3jax sweep: {e}")
  except preemption.Preempted as e:
    print(f"sg3jax sweep: {e}", flush=True)
    return
  print(f"wrote {_WORKDIR.value}/sweep.md, sweep.json, sweep.png")


def run(argv: list[str]) -> None:
  command.run(FLAGS, main, argv)


if __name__ == "__main__":
  run(sys.argv)
