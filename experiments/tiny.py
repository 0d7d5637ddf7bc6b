"""The smallest training runs, for tests and quick checks.

    sg3jax train --config=experiments/tiny.py[:stylegan2] --workdir=out/tiny

StyleGAN3-T by default, or StyleGAN2 (`:stylegan2`, with style mixing and
path length every 2 iterations). 16x16 demo shapes, 16 channels, 4 layers
(StyleGAN3), batch 8, 4 iterations of one step per tick, lazy R1 every 2
iterations (so every phase program runs), no augmentation, fp32, the XLA
filtered_lrelu.
Seconds of compute on a CPU; the networks learn nothing useful.
"""

import ml_collections

from sg3jax.training import config as config_lib


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  variants = ("stylegan3-t", "stylegan2")
  cfg = arg or "stylegan3-t"
  if cfg not in variants:
    raise ValueError(f"config argument: expected one of {variants}, got "
                     f"{arg!r}")
  c = config_lib.base_config(cfg)
  c.data = "demo:16"
  c.data_threads = 2
  c.batch_size = 8
  c.total_kimg = 0.032  # 4 iterations
  c.tick_kimg = 0.008
  c.snapshot_ticks = 1
  c.image_snapshot_ticks = 100
  c.grid = (2, 2)
  c.G.z_dim = 16
  c.G.w_dim = 16
  c.cbase = 512
  c.cmax = 16
  c.G.num_layers = 4
  c.G.num_fp16_res = 0
  c.D.num_fp16_res = 0
  c.G.filtered_lrelu_impl = "xla"
  c.loss.r1_gamma = 1.0
  c.optim.D_reg_interval = 2
  c.augment.mode = "noaug"
  if cfg == "stylegan2":
    c.G.map_depth = 2
    c.optim.G_reg_interval = 2
  return c
