"""Training throughput: s/kimg of full iterations, images/s of G and D phases.

    .venv/bin/python experiments/bench_training.py                # quickstart
    .venv/bin/python experiments/bench_training.py \\
        --config=experiments/stylegan3_t.py:256,1 --config.data=demo:256

Times, after a compile-and-warm-up call each (median of --reps):
  iteration       Gmain + Dmain (what 15 of 16 iterations run)
  iteration+reg   Gmain + Dmain + Dreg (lazy R1, every 16th)
  G phase         Gmain alone (forward G + D, backward into G, Adam)
  D phase         Dmain alone (G forward with EMA updates, D on fakes and
                  reals, backward into D, Adam)
s/kimg is the official definition: seconds per 1000 real images, with the
R1 iteration weighted 1/interval. Run on the machine you want numbers for;
nothing here runs in CI.
"""

import statistics
import sys
import time

from absl import app
from absl import flags
import jax
import numpy as np
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P
from ml_collections import config_flags

from sg3jax import convert
from sg3jax import data
from sg3jax.training import config as config_lib
from sg3jax.training import loop
from sg3jax.training import step as step_lib

_CONFIG = config_flags.DEFINE_config_file(
    "config", "experiments/quickstart.py", "training config to time")
_REPS = flags.DEFINE_integer("reps", 5, "timed calls per program")


def _time(fn, state, args, reps):
  state = fn(state, *args)  # compile + warm up
  jax.block_until_ready(state)
  times = []
  for _ in range(reps):
    start = time.perf_counter()
    state = fn(state, *args)
    jax.block_until_ready(state)
    times.append(time.perf_counter() - start)
  return statistics.median(times), state


def main(argv):
  del argv
  cfg = _CONFIG.value
  ds = data.open_dataset(cfg.data, resolution=cfg.resolution,
                         use_labels=cfg.use_labels)
  shape = dict(resolution=ds.resolution, channels=ds.num_channels,
               label_dim=ds.label_dim)
  G = convert.generator_from_kwargs(
      config_lib.generator_kwargs(cfg, **shape),
      **config_lib.generator_overrides(cfg))
  D = convert.discriminator_from_kwargs(
      config_lib.discriminator_kwargs(cfg, **shape),
      mixed_precision=cfg.mixed_precision)
  mesh = jax.make_mesh((jax.device_count(),), ("data",),
                       axis_types=(jax.sharding.AxisType.Auto,))
  batch = cfg.batch_size
  batch_gpu = cfg.batch_gpu or batch // jax.device_count()
  g_tx = step_lib.adam(cfg.optim.G_lr, cfg.optim.betas, cfg.optim.eps,
                       cfg.optim.G_reg_interval)
  d_tx = step_lib.adam(cfg.optim.D_lr, cfg.optim.betas, cfg.optim.eps,
                       cfg.optim.D_reg_interval)
  loss = loop.loss_config(cfg)
  builder = step_lib.StepBuilder(G, D, g_tx, d_tx, loss, mesh, batch_gpu)
  c = np.zeros((1, ds.label_dim), np.float32)
  g_vars = jax.jit(G.init)(jax.random.key(0), np.zeros((1, G.z_dim),
                                                       np.float32), c)
  d_vars = jax.jit(D.init)(jax.random.key(1), np.zeros(
      (1, ds.resolution, ds.resolution, ds.num_channels), np.float32), c)
  state = jax.device_put(
      step_lib.init_state(g_vars, d_vars, g_vars, g_tx, d_tx),
      NamedSharding(mesh, P()))
  sharded = NamedSharding(mesh, P("data"))
  reals = np.stack([ds[i % len(ds)]["image"] for i in range(batch)])
  args = (jax.random.key(0),
          jax.device_put(reals, sharded),
          jax.device_put(np.zeros((batch, ds.label_dim), np.float32),
                         sharded),
          jax.device_put(np.zeros((batch, len(builder.phases), ds.label_dim),
                                  np.float32), sharded),
          step_lib.step_scalars(1, 10_000, batch, cfg.ema_kimg,
                                cfg.ema_rampup, loss))
  by_name = {p.name: p for p in builder.phases}
  programs = {
      "iteration": builder.active_phases(1),
      "iteration+reg": builder.active_phases(0),
      "G phase": (by_name["Gmain"],),
      "D phase": (by_name["Dmain"],),
  }
  print(f"{jax.devices()[0].device_kind} x{jax.device_count()}, "
        f"{ds.resolution}^2, batch {batch} (batch_gpu {batch_gpu}), "
        f"cbase {cfg.cbase}, cmax {cfg.cmax}, layers {cfg.G.num_layers}",
        file=sys.stderr)
  seconds = {}
  for name, phases in programs.items():
    seconds[name], state = _time(builder.program(phases, blur=False), state,
                                 args, _REPS.value)
    print(f"{name:14s} {seconds[name] * 1e3:9.1f} ms  "
          f"{batch / seconds[name]:8.1f} img/s")
  interval = cfg.optim.D_reg_interval or 1
  per_iteration = (seconds["iteration"] * (interval - 1) +
                   seconds["iteration+reg"]) / interval
  print(f"s/kimg         {per_iteration / batch * 1000:9.2f}")


if __name__ == "__main__":
  app.run(main)
