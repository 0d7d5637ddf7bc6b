"""Training throughput: s/kimg of full iterations, images/s of G and D phases.

    .venv/bin/python experiments/bench_training.py                # quickstart
    .venv/bin/python experiments/bench_training.py \\
        --config=experiments/stylegan3_t.py:256,1 --config.data=demo:256

The programs timed and the s/kimg definition are in
sg3jax/training/benchmark.py. Run on the machine you want numbers for;
nothing here runs in CI.
"""

import sys

from absl import app
from absl import flags
from ml_collections import config_flags

from sg3jax.training import benchmark

_CONFIG = config_flags.DEFINE_config_file(
    "config", "experiments/quickstart.py", "training config to time")
_REPS = flags.DEFINE_integer("reps", 5, "timed calls per program")


def main(argv):
  del argv
  cfg = _CONFIG.value
  result = benchmark.time_training(cfg, _REPS.value)
  print(f"{result['device']} x{result['devices']}, "
        f"{result['resolution']}^2, batch {result['batch']} (batch_gpu "
        f"{result['batch_gpu']}), cbase {cfg.cbase}, cmax {cfg.cmax}, "
        f"layers {cfg.G.num_layers}", file=sys.stderr)
  for name, seconds in result["seconds"].items():
    print(f"{name:14s} {seconds * 1e3:9.1f} ms  "
          f"{result['batch'] / seconds:8.1f} img/s")
  print(f"s/kimg         {result['s_per_kimg']:9.2f}")


if __name__ == "__main__":
  app.run(main)
