"""A tiny StyleGAN3-T run on the embedded demo dataset, for a CPU.

    sg3jax train --config=experiments/quickstart.py --workdir=out/quickstart

32x32 procedural shapes (no download), 2 kimg, small networks (32
channels, 8 synthesis layers instead of 14), fp32, a stats line every 0.25
kimg and a checkpoint + image grid every 2 ticks, no augmentation (ADA's
p would stay near 0 over 2 kimg while its resampling costs CPU time).
Everything else is the official StyleGAN3-T recipe (R1 with lazy
regularization, G EMA with ramp-up, magnitude EMAs, Adam betas (0, 0.99)).
"""

from sg3jax.training import config as config_lib


def get_config(arg: str | None = None):
  del arg
  c = config_lib.base_config("stylegan3-t")
  c.data = "demo:32"
  c.batch_size = 16
  c.total_kimg = 2.0
  c.tick_kimg = 0.25
  c.snapshot_ticks = 2
  c.grid = (8, 4)
  c.G.z_dim = 32
  c.G.w_dim = 32
  c.G.num_layers = 8
  c.cbase = 4096
  c.cmax = 32
  c.G.num_fp16_res = 0
  c.D.num_fp16_res = 0
  c.loss.r1_gamma = 0.05
  c.ema_kimg = 1.0
  c.augment.mode = "noaug"
  return c
