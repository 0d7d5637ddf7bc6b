"""StyleGAN3-T with the official recommended settings (docs/configs.md).

    sg3jax train --config=experiments/stylegan3_t.py:256,8 \\
        --config.data=~/datasets/afhqv2-256x256.zip --config.mirror=True \\
        --workdir=runs/afhq256

The argument is RESOLUTION[,GPUS] (default 256,8): it picks R1 gamma,
batch_gpu and the snapshot interval from the official table for that
resolution and device count (batch 32 always). Any option can be
overridden with --config.KEY=VALUE (see sg3jax/training/config.py).
"""

from sg3jax.training import config as config_lib


def get_config(arg: str | None = None):
  resolution, gpus = config_lib.parse_table_arg(arg)
  return config_lib.recommended("stylegan3-t", resolution, gpus)
