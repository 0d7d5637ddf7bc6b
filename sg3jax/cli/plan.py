"""Plans a training run for a TPU slice or GPUs, from any host.

    sg3jax plan --config=experiments/stylegan3_t.py:256 --target=v5e:2x4
    sg3jax plan --config=experiments/stylegan3_r.py:512 --target=h100 \\
        --batch_gpu=8 --max_batch --json=out/plan.json

Compiles the config's real training step (every phase; one program per
phase and a finish program, as training runs it) for the target's
compile-only devices with the whole compiler (`make aot-setup` installs
it), in a worker with a time and memory limit, and prints per device, for
the step (its largest program) and each program: argument, output, temp
and total bytes against the chip's HBM, whether it fits, XLA's time
estimate on TPU, and the largest per-device batch that fits (--max_batch,
one step compile per batch tried). Targets: v4, v5e, v5p, v6e (a few
chips), <generation>:<topology> (e.g. v5e:2x4, v4:2x2x1), h100 (one GPU),
h100x8 (eight GPUs).
A full 256² step takes about 20 minutes to compile for TPU on two CPU
cores (4 for the H100).
"""

import json
import os
import sys

from absl import flags
from ml_collections import config_flags

from sg3jax.cli import command

FLAGS = flags.FlagValues()
_CONFIG = config_flags.DEFINE_config_file(
    "config", None, "experiment config file[:argument]", lock_config=True,
    flag_values=FLAGS)
_TARGET = flags.DEFINE_string(
    "target", "v5e:2x4", "v4, v5e, v5p, v6e, <generation>:<topology> (e.g. "
    "v5e:2x4), h100 or h100x8", flag_values=FLAGS)
_BATCH_GPU = flags.DEFINE_integer(
    "batch_gpu", None, "per-device batch (default: the config's batch_gpu, "
    "or batch_size over the devices); global batch = this x devices",
    lower_bound=1, flag_values=FLAGS)
_MAX_BATCH = flags.DEFINE_boolean(
    "max_batch", False, "find the largest per-device batch that fits by "
    "compiling (doubling, then bisection)", flag_values=FLAGS)
_TIMEOUT = flags.DEFINE_float("timeout_s", 3600.0,
                              "seconds allowed per step compile",
                              lower_bound=1.0, flag_values=FLAGS)
_MAX_GIB = flags.DEFINE_float(
    "max_gib", 48.0, "address space allowed per compile worker, GiB",
    lower_bound=1.0, flag_values=FLAGS)
_JSON = flags.DEFINE_string("json", None, "also write the plan as JSON here",
                            flag_values=FLAGS)


def main(argv: list[str]) -> None:
  del argv
  if _CONFIG.value is None:
    sys.exit("sg3jax plan: --config is required, e.g. "
             "--config=experiments/stylegan3_t.py:256")
  from sg3jax import aot  # pylint: disable=g-import-not-at-top
  from sg3jax.training import plan  # pylint: disable=g-import-not-at-top
  limits = plan.Limits(timeout_s=_TIMEOUT.value,
                       max_bytes=int(_MAX_GIB.value * aot.GIB))
  try:
    result = plan.plan(_CONFIG.value, _TARGET.value,
                       batch_gpu=_BATCH_GPU.value,
                       search_max_batch=_MAX_BATCH.value, limits=limits)
  except (ValueError, FileNotFoundError, plan.PlanError) as e:
    sys.exit(f"sg3jax plan: {e}")
  print(plan.format_plan(result), flush=True)
  if _JSON.value:
    os.makedirs(os.path.dirname(_JSON.value) or ".", exist_ok=True)
    with open(_JSON.value, "w") as f:
      json.dump(result.to_json(), f, indent=1)


def run(argv: list[str]) -> None:
  command.run(FLAGS, main, argv)


if __name__ == "__main__":
  run(sys.argv)
