"""Training throughput of a config on this machine's devices.

`time_training(cfg)` builds the networks and the jitted programs of an
iteration as `sg3jax train` does (procedural or real data for the reals) and
times, after a compile-and-warm-up call each (median of `reps`):

  iteration       Gmain, Dmain, finish (what 15 of 16 iterations run)
  iteration+reg   Gmain, Dmain, Dreg, finish (lazy R1, every 16th)
  G phase         the Gmain program (forward G + D, backward into G, Adam)
  D phase         the Dmain program (G forward with EMA updates, D on fakes
                  and reals, backward into D, Adam)

s/kimg is the official definition: seconds per 1000 real images, with the
R1 iteration weighted 1/interval. Used by experiments/bench_training.py and
experiments/accelerator_check.py; nothing here runs in CI but the latter's
--smoke.
"""

import statistics
import time

import jax
import ml_collections
import numpy as np
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

from sg3jax.training import loop
from sg3jax.training import step as step_lib


def _run(programs, state, args):
  """The state after running `programs` (each donates its state) in order."""
  for program in programs:
    state = program(state, *args)
  return state


def _median_seconds(programs, state, args, reps: int):
  """(median seconds of running `programs` on (state, *args), the last
  state)."""
  state = _run(programs, state, args)  # compile + warm up
  jax.block_until_ready(state)
  times = []
  for _ in range(reps):
    start = time.perf_counter()
    state = _run(programs, state, args)
    jax.block_until_ready(state)
    times.append(time.perf_counter() - start)
  return statistics.median(times), state


def time_training(cfg: ml_collections.ConfigDict, reps: int = 5) -> dict:
  """Seconds per program (see the module docstring) and s/kimg of `cfg` on
  all local devices; also the setting (device, resolution, batch)."""
  ds = loop.open_training_set(cfg)
  nets = loop.build_networks(cfg, ds)
  G, D = nets.G, nets.D
  mesh = jax.make_mesh((jax.device_count(),), ("data",),
                       axis_types=(jax.sharding.AxisType.Auto,))
  batch = cfg.batch_size
  batch_gpu = cfg.batch_gpu or batch // jax.device_count()
  g_tx, d_tx = loop.optimizers(cfg, D)
  loss = loop.loss_config(cfg)
  builder = step_lib.StepBuilder(G, D, g_tx, d_tx, loss, mesh, batch_gpu)
  g_vars, d_vars = nets.init()
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

  def iteration(batch_idx):
    return [fn for _, fn in builder.programs(builder.active_phases(batch_idx),
                                             blur=False)]

  programs = {
      "iteration": iteration(1),
      "iteration+reg": iteration(0),
      "G phase": [builder.phase_program(by_name["Gmain"], blur=False)],
      "D phase": [builder.phase_program(by_name["Dmain"], blur=False)],
  }
  seconds = {}
  for name, fns in programs.items():
    seconds[name], state = _median_seconds(fns, state, args, reps)
  interval = cfg.optim.D_reg_interval or 1
  per_iteration = (seconds["iteration"] * (interval - 1) +
                   seconds["iteration+reg"]) / interval
  return dict(device=jax.devices()[0].device_kind,
              devices=jax.device_count(), resolution=ds.resolution,
              batch=batch, batch_gpu=batch_gpu, seconds=seconds,
              s_per_kimg=per_iteration / batch * 1000)
