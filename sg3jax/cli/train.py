"""Trains StyleGAN3 from an ml-collections config (official train.py).

    sg3jax train --config=experiments/quickstart.py --workdir=out/quickstart
    sg3jax train --config=experiments/stylegan3_t.py:256,8 \\
        --config.data=~/datasets/ffhq-256x256.zip --config.mirror=True \\
        --workdir=runs/ffhq256

Running the same command again on the same workdir resumes from its latest
checkpoint. On SIGTERM (preemption), the run writes a checkpoint and exits
with status 0; the same command resumes it. Multi-host: start one process per host with
`--coordinator_address=HOST:PORT --num_processes=N --process_id=I` (or
`--distributed=auto` where jax.distributed detects the cluster, e.g. SLURM
or Cloud TPU).
"""

import sys

from absl import flags
from ml_collections import config_flags

from sg3jax.cli import command

FLAGS = flags.FlagValues()
_CONFIG = config_flags.DEFINE_config_file(
    "config", None, "experiment config file[:argument]", lock_config=True,
    flag_values=FLAGS)
_WORKDIR = flags.DEFINE_string("workdir", None, "run directory",
                               required=True, flag_values=FLAGS)
_DISTRIBUTED = flags.DEFINE_enum(
    "distributed", "off", ["off", "auto", "explicit"],
    "multi-process set-up: off, auto (jax.distributed detects the cluster) "
    "or explicit (the three flags below); explicit is implied by "
    "--num_processes > 1", flag_values=FLAGS)
_COORDINATOR = flags.DEFINE_string(
    "coordinator_address", None, "HOST:PORT of process 0",
    flag_values=FLAGS)
_NUM_PROCESSES = flags.DEFINE_integer("num_processes", 1,
                                      "number of processes",
                                      flag_values=FLAGS)
_PROCESS_ID = flags.DEFINE_integer("process_id", 0, "this process's index",
                                   flag_values=FLAGS)
_CPU_DEVICES = flags.DEFINE_integer(
    "cpu_devices", None, "simulated CPU devices per process (testing data "
    "parallelism without accelerators)", flag_values=FLAGS)


def _initialize_jax() -> None:
  import jax  # pylint: disable=g-import-not-at-top
  if _CPU_DEVICES.value:
    jax.config.update("jax_num_cpu_devices", _CPU_DEVICES.value)
  if _DISTRIBUTED.value == "auto":
    jax.distributed.initialize()
  elif _DISTRIBUTED.value == "explicit" or _NUM_PROCESSES.value > 1:
    if not _COORDINATOR.value:
      sys.exit("sg3jax train: --coordinator_address is required with "
               f"--num_processes={_NUM_PROCESSES.value}")
    jax.distributed.initialize(coordinator_address=_COORDINATOR.value,
                               num_processes=_NUM_PROCESSES.value,
                               process_id=_PROCESS_ID.value)


def main(argv: list[str]) -> None:
  del argv
  if _CONFIG.value is None:
    sys.exit("sg3jax train: --config is required, e.g. "
             "--config=experiments/quickstart.py")
  _initialize_jax()
  # pylint: disable=g-import-not-at-top
  from sg3jax.training import loop
  from sg3jax.training import preemption
  # pylint: enable=g-import-not-at-top
  try:
    loop.train(_CONFIG.value, _WORKDIR.value)
  except loop.TrainingDiverged as e:
    sys.exit(f"sg3jax train: {e}")
  except preemption.Preempted as e:
    print(f"sg3jax train: {e}", flush=True)


def run(argv: list[str]) -> None:
  command.run(FLAGS, main, argv)


if __name__ == "__main__":
  run(sys.argv)
