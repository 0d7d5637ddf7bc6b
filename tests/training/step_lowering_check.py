"""The whole training step over 8 devices lowers for CUDA and for TPU.

Run as `python -m tests.training.step_lowering_check`; it forces 8 host
devices before importing jax, builds the tiny StyleGAN3-T training step
with impl="auto" and every phase and option on (Gmain, Greg = path length,
Dmain, Dreg = R1, ADA with the bgc pipeline, blur fade-in), traces each of
its programs once with kernel branches for CUDA and TPU, lowers them for
CUDA and for each TPU generation, and prints JSON: per program and target,
how many fused-kernel calls and collectives the lowered module has.
"""

import json
import os

from tests import host_devices

os.environ["XLA_FLAGS"] = host_devices.xla_flags(8)

import jax  # pylint: disable=g-import-not-at-top,wrong-import-position
import jax.numpy as jnp  # pylint: disable=g-import-not-at-top,wrong-import-position
from jax.sharding import NamedSharding  # pylint: disable=g-import-not-at-top,wrong-import-position
from jax.sharding import PartitionSpec as P  # pylint: disable=g-import-not-at-top,wrong-import-position

from sg3jax import convert  # pylint: disable=g-import-not-at-top,wrong-import-position
from sg3jax.training import config as config_lib  # pylint: disable=g-import-not-at-top,wrong-import-position
from sg3jax.training import loop  # pylint: disable=g-import-not-at-top,wrong-import-position
from sg3jax.training import step as step_lib  # pylint: disable=g-import-not-at-top,wrong-import-position
from tests.kernels import targets  # pylint: disable=g-import-not-at-top,wrong-import-position
from tests.training import tiny  # pylint: disable=g-import-not-at-top,wrong-import-position

RESOLUTION = 16


def step_config():
  cfg = tiny.tiny_config()
  cfg.G.filtered_lrelu_impl = "auto"
  cfg.mixed_precision = True
  cfg.G.num_fp16_res = 2
  cfg.loss.pl_weight = 2.0
  cfg.optim.G_reg_interval = 4
  cfg.loss.blur_init_sigma = 10.0
  cfg.loss.blur_fade_kimg = 100.0
  cfg.augment.mode = "ada"
  cfg.augment.pipe = "bgc"
  return cfg


def main():
  cfg = step_config()
  shape = dict(resolution=RESOLUTION, channels=3, label_dim=0)
  G = convert.generator_from_kwargs(config_lib.generator_kwargs(cfg, **shape),
                                    **config_lib.generator_overrides(cfg))
  D = convert.discriminator_from_kwargs(
      config_lib.discriminator_kwargs(cfg, **shape),
      mixed_precision=cfg.mixed_precision)
  mesh = jax.make_mesh((8,), ("data",),
                       axis_types=(jax.sharding.AxisType.Auto,))
  g_tx, d_tx = loop.optimizers(cfg, D)
  loss = loop.loss_config(cfg)
  builder = step_lib.StepBuilder(G, D, g_tx, d_tx, loss, mesh, batch_gpu=1)
  phases = builder.active_phases(0)

  z = jnp.zeros((1, G.z_dim))
  c = jnp.zeros((1, 0))
  img = jnp.zeros((1, RESOLUTION, RESOLUTION, 3))
  replicated = NamedSharding(mesh, P())
  sharded = NamedSharding(mesh, P("data"))

  def placed(tree, sharding):
    return jax.tree.map(
        lambda a: jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=sharding),
        tree)

  state = placed(jax.eval_shape(
      lambda: step_lib.init_state(
          G.init(jax.random.key(0), z, c), D.init(jax.random.key(1), img, c),
          G.init(jax.random.key(0), z, c), g_tx, d_tx)), replicated)
  batch = cfg.batch_size
  args = (
      state, placed(jax.eval_shape(lambda: jax.random.key(0)), replicated),
      jax.ShapeDtypeStruct((batch, RESOLUTION, RESOLUTION, 3), jnp.uint8,
                           sharding=sharded),
      jax.ShapeDtypeStruct((batch, 0), jnp.float32, sharding=sharded),
      jax.ShapeDtypeStruct((batch, len(builder.phases), 0), jnp.float32,
                           sharding=sharded),
      step_lib.step_scalars(0, 0, batch, cfg.ema_kimg, cfg.ema_rampup, loss))
  programs = {}
  for name, program in builder.programs(phases, blur=True):
    lowered = targets.lower_for_targets(program, *args, num_devices=8)
    programs[name] = {
        "kernels": {t: targets.kernel_calls(t, text)
                    for t, text in lowered.items()},
        "all_reduces": {t: text.count("all_reduce")
                        for t, text in lowered.items()},
    }
  print(json.dumps({"phases": [p.name for p in phases],
                    "programs": programs}))


if __name__ == "__main__":
  main()
