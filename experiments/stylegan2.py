"""StyleGAN2 (official `--cfg=stylegan2`) with the official settings.

    sg3jax train --config=experiments/stylegan2.py:256,8 \\
        --config.data=~/datasets/ffhq-256x256.zip --config.mirror=True \\
        --workdir=runs/ffhq256-sg2

The argument is RESOLUTION[,GPUS] (default 256,8): batch, R1 gamma,
learning rates and cbase come from the StyleGAN2-ADA default table of the
official docs/configs.md (128/256/512/1024 on 1, 2, 4, 8 GPUs; mapping
depth 2), with style mixing 0.9 and path length (weight 2, lazy every 4
iterations) as train.py sets them for --cfg=stylegan2. Any option can be
overridden with --config.KEY=VALUE (see sg3jax/training/config.py), e.g.
the paper's FFHQ 1024 run: `:1024,8 --config.loss.r1_gamma=10
--config.G.map_depth=8`.
"""

from sg3jax.training import config as config_lib


def get_config(arg: str | None = None):
  resolution, gpus = config_lib.parse_table_arg(arg)
  return config_lib.recommended("stylegan2", resolution, gpus)
