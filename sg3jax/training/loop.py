"""The training loop: `train(config, workdir)` (official training_loop).

Every process runs this function (multi-host: after
`jax.distributed.initialize`). Each loads its shard of the data; the
step runs over a mesh of all devices; only process 0 writes logs, stats
and images; all processes take part in checkpoints and training metrics.

The run directory holds `config.json`, `stats.jsonl`, TensorBoard events,
`reals.png`, `fakes_init.png`, `fakes<kimg>.png` and `checkpoints/`.
Calling `train` again on the same workdir resumes from the latest
checkpoint with the same batches and random numbers as an uninterrupted run.
On SIGTERM (a preempted job), every process stops at the same iteration,
writes a checkpoint there (mid-tick too: the tick's statistics so far are
saved with it) and raises `preemption.Preempted`; resuming gives the same
networks and statistics as a run that was never interrupted.
"""

import contextlib
import dataclasses
import functools
import json
import os
import pathlib
import time
from collections.abc import Callable
from typing import Any

import flax.linen as nn
import jax
import ml_collections
import numpy as np
import optax
import psutil
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

from sg3jax import convert
from sg3jax import data
from sg3jax.metrics import training_metrics
from sg3jax.networks import stylegan2
from sg3jax.training import augment as augment_lib
from sg3jax.training import checkpoints
from sg3jax.training import config as config_lib
from sg3jax.training import preemption
from sg3jax.training import snapshots
from sg3jax.training import stats as stats_lib
from sg3jax.training import step as step_lib


class TrainingDiverged(RuntimeError):
  """NaN or Inf appeared in a loss or gradient."""


@dataclasses.dataclass
class Counters:
  batch_idx: int = 0
  cur_nimg: int = 0
  cur_tick: int = 0


@dataclasses.dataclass(frozen=True)
class Networks:
  """`build_networks`: the modules, their init kwargs, `init()` ->
  (G variables, D variables) of a fresh run."""
  G: nn.Module
  D: nn.Module
  g_kwargs: dict[str, Any]
  d_kwargs: dict[str, Any]
  init: Callable[[], tuple[dict, dict]]


@dataclasses.dataclass(frozen=True)
class TrainResult:
  workdir: pathlib.Path
  counters: Counters
  last_stats: dict[str, Any]


def _log(message: str) -> None:
  if jax.process_index() == 0:
    print(message, flush=True)


def _batch_layout(cfg: ml_collections.ConfigDict) -> tuple[int, int]:
  """(batch_gpu, per-process batch), checked as official train.py does."""
  devices = jax.device_count()
  batch_gpu = cfg.batch_gpu or cfg.batch_size // devices
  if batch_gpu <= 0 or cfg.batch_size % (devices * batch_gpu):
    raise ValueError(f"batch_size {cfg.batch_size} must be a multiple of "
                     f"devices ({devices}) x batch_gpu ({batch_gpu})")
  if batch_gpu < cfg.D.mbstd_group_size:
    raise ValueError(f"batch_gpu {batch_gpu} cannot be smaller than "
                     f"D.mbstd_group_size {cfg.D.mbstd_group_size}")
  return batch_gpu, cfg.batch_size // jax.process_count()


AUGMENT_MODES = ("ada", "fixed", "noaug")


def _augment_settings(cfg) -> dict:
  """LossConfig's ADA fields for `cfg.augment` (official --aug/--p/--target):
  none for "noaug" or "fixed" at p 0 (the official loop builds no pipe)."""
  mode = cfg.augment.mode
  if mode not in AUGMENT_MODES:
    raise ValueError(f"config.augment.mode: expected one of {AUGMENT_MODES}, "
                     f"got {mode!r}")
  if mode == "noaug" or (mode == "fixed" and initial_augment_p(cfg) == 0):
    return {}
  return dict(augment=augment_lib.pipeline(cfg.augment.pipe),
              ada_target=cfg.augment.target if mode == "ada" else None,
              ada_interval=cfg.augment.interval, ada_kimg=cfg.augment.kimg)


def initial_augment_p(cfg) -> float:
  """p at the start of a run: `augment.p`, else 0.2 (fixed, official --p)
  or 0 (ADA)."""
  if cfg.augment.p is not None:
    return float(cfg.augment.p)
  return 0.2 if cfg.augment.mode == "fixed" else 0.0


def loss_config(cfg) -> step_lib.LossConfig:
  """The step's loss settings (losses, regularizers, ADA) for `cfg`."""
  return step_lib.LossConfig(
      **_augment_settings(cfg),
      r1_gamma=cfg.loss.r1_gamma, style_mixing_prob=cfg.loss.style_mixing_prob,
      pl_weight=cfg.loss.pl_weight, pl_batch_shrink=cfg.loss.pl_batch_shrink,
      pl_decay=cfg.loss.pl_decay, blur_init_sigma=cfg.loss.blur_init_sigma,
      blur_fade_kimg=cfg.loss.blur_fade_kimg,
      G_reg_interval=cfg.optim.G_reg_interval,
      D_reg_interval=cfg.optim.D_reg_interval)


def _network_kwargs(cfg, ds) -> tuple[dict, dict]:
  """(G, D) init kwargs as saved: official ones plus a non-default design."""
  shape = dict(resolution=ds.resolution, channels=ds.num_channels,
               label_dim=ds.label_dim)
  g_kwargs = config_lib.generator_kwargs(cfg, **shape)
  if cfg.cfg != "stylegan2" and cfg.G.filter_design != "kaiser":
    g_kwargs["filter_design"] = cfg.G.filter_design
  return g_kwargs, config_lib.discriminator_kwargs(cfg, **shape)


def open_training_set(cfg: ml_collections.ConfigDict) -> data.ImageDataset:
  """The dataset `cfg.data` names, with the config's resolution/mirror."""
  if not cfg.data:
    raise ValueError("config.data: expected a dataset (--config.data=PATH: "
                     "a folder, a .zip, tfds:DIR[:SPLIT] or demo[:RES]), "
                     "got nothing")
  return data.open_dataset(os.path.expanduser(cfg.data),
                           resolution=cfg.resolution,
                           use_labels=cfg.use_labels, max_size=cfg.max_size,
                           mirror=cfg.mirror)


def build_networks(cfg: ml_collections.ConfigDict, ds: data.ImageDataset
                   ) -> Networks:
  """G and D for a config and dataset, and the variables a fresh run of
  that config starts from (seeded by `cfg.seed`, as `train` seeds them)."""
  g_kwargs, d_kwargs = _network_kwargs(cfg, ds)
  G = convert.generator_from_kwargs(
      g_kwargs, class_name=config_lib.generator_class(cfg),
      **config_lib.generator_overrides(cfg))
  D = convert.discriminator_from_kwargs(d_kwargs,
                                        mixed_precision=cfg.mixed_precision,
                                        remat=cfg.remat)
  init_key, _ = jax.random.split(jax.random.key(cfg.seed))
  g_init, d_init = jax.random.split(init_key)
  z = np.zeros((1, G.z_dim), np.float32)
  c = np.zeros((1, ds.label_dim), np.float32)
  img = np.zeros((1, *ds.image_shape), np.float32)
  return Networks(G=G, D=D, g_kwargs=g_kwargs, d_kwargs=d_kwargs,
                  init=lambda: (jax.jit(G.init)(g_init, z, c),
                                jax.jit(D.init)(d_init, img, c)))


def optimizers(cfg: ml_collections.ConfigDict, D: nn.Module
               ) -> tuple[optax.GradientTransformation,
                          optax.GradientTransformation]:
  """G's and D's Adam (lazy-regularization corrected), D's with the
  Freeze-D layers held."""
  return _optimizers(cfg.optim, cfg.D.freeze_layers, D)


def _optimizers(optim, freeze_layers: int, D: nn.Module
                ) -> tuple[optax.GradientTransformation,
                           optax.GradientTransformation]:
  """`optimizers` from `cfg.optim` and `cfg.D.freeze_layers`."""
  g_tx = step_lib.adam(optim.G_lr, optim.betas, optim.eps,
                       optim.G_reg_interval)
  d_tx = step_lib.adam(optim.D_lr, optim.betas, optim.eps,
                       optim.D_reg_interval)
  if freeze_layers:
    d_tx = step_lib.freeze(
        d_tx, convert.discriminator.abstract_variables(D)["params"],
        stylegan2.frozen_layer_names(D, freeze_layers))
  return g_tx, d_tx


def step_of(cfg: ml_collections.ConfigDict, G: nn.Module, D: nn.Module,
            mesh: jax.sharding.Mesh, batch_gpu: int
            ) -> tuple[optax.GradientTransformation,
                       optax.GradientTransformation, step_lib.StepBuilder]:
  """(G's optimizer, D's optimizer, the step) of a training of `cfg` with
  these networks on `mesh`: the ones of an earlier training in this process
  when everything they are built from is equal."""
  return _step(G, D, loss_config(cfg), ml_collections.FrozenConfigDict(
      cfg.optim), cfg.D.freeze_layers, mesh, batch_gpu)


# The steps of the last two trainings in this process, by what each is built
# from: a training with the same networks, optimizers, losses, mesh and
# micro-batch (a resumed run, a sweep over seeds, tests) reuses the traced
# and compiled programs.
@functools.lru_cache(maxsize=2)
def _step(G: nn.Module, D: nn.Module, loss: step_lib.LossConfig,
          optim: ml_collections.FrozenConfigDict, freeze_layers: int,
          mesh: jax.sharding.Mesh, batch_gpu: int):
  g_tx, d_tx = _optimizers(optim, freeze_layers, D)
  return g_tx, d_tx, step_lib.StepBuilder(G, D, g_tx, d_tx, loss, mesh,
                                          batch_gpu)


def _check_resume(name: str, expected, got, source: str):
  """`got` if it has `expected`'s structure and shapes, else ValueError."""
  want = {jax.tree_util.keystr(k): v.shape
          for k, v in jax.tree_util.tree_leaves_with_path(expected)}
  have = {jax.tree_util.keystr(k): np.shape(v)
          for k, v in jax.tree_util.tree_leaves_with_path(got)}
  problems = [f"missing {k}" for k in want if k not in have]
  problems += [f"unexpected {k}" for k in have if k not in want]
  problems += [f"{k}: expected shape {want[k]}, got {have[k]}"
               for k in want if k in have and want[k] != have[k]]
  if problems:
    count = f"{len(problems)} problem" + ("s" if len(problems) > 1 else "")
    raise ValueError(f"resume {source}: {name} does not match the config "
                     f"({count}): " + "; ".join(problems[:8]))
  return jax.tree.map(lambda e, g: np.asarray(g, e.dtype), expected, got)


def _label_table(ds) -> np.ndarray:
  """Every item's label `[len(ds), label_dim]` (official get_label)."""
  return np.stack([ds.get_label(i) for i in range(len(ds))]) if (
      ds.label_dim) else np.zeros((len(ds), 0), np.float32)


def _local(tree):
  """Host copies of replicated arrays (usable by one process alone)."""
  return jax.tree.map(lambda x: np.asarray(x.addressable_data(0)), tree)


def train(cfg: ml_collections.ConfigDict, workdir: str | pathlib.Path, *,
          notice: preemption.PreemptionNotice | None = None) -> TrainResult:
  """Trains (or resumes) the run in `workdir`; see the module docstring.

  `notice`: an entered `PreemptionNotice` of the caller (a sweep running
  several trainings under one SIGTERM handler); default: one of its own.
  """
  cfg = config_lib.with_resume_settings(cfg)
  workdir = pathlib.Path(workdir).absolute()
  is_main = jax.process_index() == 0
  snapshot_metrics = training_metrics.SnapshotMetrics(cfg)
  if is_main:
    workdir.mkdir(parents=True, exist_ok=True)
  start_time = time.time()

  ds = open_training_set(cfg)
  _log(f"dataset {ds!r}")
  batch_gpu, local_batch = _batch_layout(cfg)
  mesh = jax.make_mesh((jax.device_count(),), (step_lib.DATA_AXIS,),
                       axis_types=(jax.sharding.AxisType.Auto,))
  replicated = NamedSharding(mesh, P())
  batch_sharding = NamedSharding(mesh, P(step_lib.DATA_AXIS))

  nets = build_networks(cfg, ds)
  G, D, g_kwargs, d_kwargs = nets.G, nets.D, nets.g_kwargs, nets.d_kwargs
  g_tx, d_tx, builder = step_of(cfg, G, D, mesh, batch_gpu)
  loss = builder.loss

  _, run_key = jax.random.split(jax.random.key(cfg.seed))
  fresh = {"G": convert.generator.abstract_variables(G),
           "D": convert.discriminator.abstract_variables(D)}
  fresh["G_ema"] = fresh["G"]

  iterator = data.batches(ds, batch_size=local_batch, seed=cfg.seed,
                          shard_index=jax.process_index(),
                          shard_count=jax.process_count(),
                          num_threads=cfg.data_threads)
  ckpts = checkpoints.RunCheckpoints(workdir,
                                     max_to_keep=cfg.max_checkpoints)
  counters = Counters()
  stats_lines = 0
  restored = ckpts.restore_latest(
      networks=fresh, optimizer=_abstract_optimizer(fresh, g_tx, d_tx),
      data_iterator=iterator, sharding=replicated)
  tick_start_nimg = 0
  if restored is not None:
    _, (networks, optimizer, meta) = restored
    counters = Counters(**meta["counters"])
    stats_lines = meta["stats_lines"]
    tick_start_nimg, reports = _tick_in_progress(meta, counters)
    state = _state_from(networks, optimizer, g_tx, d_tx).replace(
        reports=reports)
    _log(f"resumed {workdir} at kimg {counters.cur_nimg / 1e3:.1f} "
         f"(iteration {counters.batch_idx})")
  else:
    g_vars, d_vars = nets.init()
    networks = {"G": g_vars, "D": d_vars, "G_ema": g_vars}
    if cfg.resume:
      loaded = {name: variables for name, (_, variables) in
                checkpoints.load_any_networks(cfg.resume).items()}
      networks = {name: _check_resume(name, networks[name],
                                      loaded.get(name), cfg.resume)
                  for name in networks}
      _log(f"resuming networks from {cfg.resume}")
    state = step_lib.init_state(networks["G"], networks["D"],
                                networks["G_ema"], g_tx, d_tx,
                                augment_p=initial_augment_p(cfg))
  # (jit rather than device_put: multi-process device_put refuses typed
  # keys and non-addressable shardings.)
  state = jax.jit(lambda s: s, out_shardings=replicated)(state)

  labels = _label_table(ds)
  grid = snapshots.grid_shape(ds.image_shape[:2], tuple(cfg.grid) or None)
  grid_idx = snapshots.grid_indices(labels, *grid, seed=cfg.seed)
  grid_z = np.random.RandomState(cfg.seed).randn(
      grid[0] * grid[1], G.z_dim).astype(np.float32)
  grid_c = labels[grid_idx]
  render = snapshots.make_renderer(G, batch_gpu)

  log = None
  if is_main:
    (workdir / "config.json").write_text(
        json.dumps(cfg.to_dict(), indent=2, default=str))
    log = stats_lib.StatsLog(workdir, lines=stats_lines)
    if restored is None:
      reals = np.stack([ds[int(i)]["image"] for i in grid_idx])
      snapshots.save_grid(reals.astype(np.float32) / 127.5 - 1,
                          workdir / "reals.png", grid)
      snapshots.save_grid(render(_local(state.g_ema), grid_z, grid_c),
                          workdir / "fakes_init.png", grid)
  _log(f"training for {cfg.total_kimg} kimg on {jax.device_count()} devices "
       f"({jax.process_count()} processes), batch {cfg.batch_size}, "
       f"batch_gpu {batch_gpu}")

  network_meta = {
      name: {"class_name": class_name, "init_kwargs": kwargs}
      for name, class_name, kwargs in (
          ("G", config_lib.generator_class(cfg), g_kwargs),
          ("G_ema", config_lib.generator_class(cfg), g_kwargs),
          ("D", "Discriminator", d_kwargs))}
  num_phases = len(builder.phases)
  image_ticks = cfg.image_snapshot_ticks or cfg.snapshot_ticks
  tick_start_time = time.time()
  maintenance_time = tick_start_time - start_time
  last_stats: dict[str, Any] = {}
  reported: set[str] = set()  # names with values since this process began

  def check_finite():
    if bool(_local(state.nonfinite)):
      raise TrainingDiverged(
          f"NaN/Inf in a loss or gradient during tick {counters.cur_tick} "
          f"(kimg {tick_start_nimg / 1e3:.1f} to "
          f"{counters.cur_nimg / 1e3:.1f}); stopped without saving. The "
          f"last good checkpoint is step {ckpts.latest_step()} in "
          f"{ckpts.directory}")

  def save(tick_reports=None):
    """Checkpoint at this iteration; `tick_reports`: the moments of the
    tick in progress (saved mid-tick, on preemption)."""
    meta = {"counters": dataclasses.asdict(counters),
            "stats_lines": log.lines if log else 0,
            "networks": network_meta, "config": cfg.to_dict()}
    if tick_reports is not None:
      meta["tick"] = {"start_nimg": tick_start_nimg, "reports": {
          name: m.tolist() for name, m in tick_reports.items()}}
    ckpts.save(counters.batch_idx, networks=step_lib.variables_of(state),
               optimizer=_optimizer_of(state), meta=meta,
               data_iterator=iterator)

  def preempted_error():
    return preemption.Preempted(
        f"preempted: stopped at kimg {counters.cur_nimg / 1e3:.1f} "
        f"(iteration {counters.batch_idx}) with a checkpoint in "
        f"{ckpts.directory}; run the same command to resume")

  try:
    with (preemption.PreemptionNotice() if notice is None
          else contextlib.nullcontext(notice)) as notice:
      while counters.cur_nimg < cfg.total_kimg * 1000:  # else done already
        local = next(iterator)
        real = data.global_batch(
            {"image": local["image"], "label": local["label"]},
            batch_sharding)
        gen_c = data.global_batch(
            {"c": _gen_labels(labels, cfg, counters.batch_idx, num_phases)},
            batch_sharding)["c"]
        scalars = step_lib.step_scalars(
            counters.batch_idx, counters.cur_nimg, cfg.batch_size,
            cfg.ema_kimg, cfg.ema_rampup, loss)
        state = builder(state, run_key, real["image"], real["label"], gen_c,
                        scalars)
        counters.cur_nimg += cfg.batch_size
        counters.batch_idx += 1

        done = counters.cur_nimg >= cfg.total_kimg * 1000
        preempted = not done and notice.reached()
        if (not done and counters.cur_tick != 0 and counters.cur_nimg <
            tick_start_nimg + cfg.tick_kimg * 1000):
          if preempted:
            check_finite()
            save(tick_reports=_local(state.reports))
            raise preempted_error()
          continue

        # Tick: check, report, snapshot (reading the flag waits for the
        # dispatched iterations, so the tick's timing covers their compute).
        check_finite()
        tick_end_time = time.time()
        moments = _local(state.reports)
        state = step_lib.reset_reports(state)
        reported |= {name for name, m in moments.items() if m[0] > 0}
        tick_stats = stats_lib.summarize(moments, reported)
        tick_kimg = (counters.cur_nimg - tick_start_nimg) / 1e3
        tick_stats.update({
            "Progress/tick": stats_lib.scalar(counters.cur_tick),
            "Progress/kimg": stats_lib.scalar(counters.cur_nimg / 1e3),
            "Timing/total_sec": stats_lib.scalar(tick_end_time - start_time),
            "Timing/sec_per_tick": stats_lib.scalar(
                tick_end_time - tick_start_time),
            "Timing/sec_per_kimg": stats_lib.scalar(
                (tick_end_time - tick_start_time) / max(tick_kimg, 1e-8)),
            "Timing/maintenance_sec": stats_lib.scalar(maintenance_time),
            "Resources/cpu_mem_gb": stats_lib.scalar(
                psutil.Process(os.getpid()).memory_info().rss / 2 ** 30),
            "Progress/augment": stats_lib.scalar(
                float(_local(state.augment_p)) if loss.augment else 0.0),
            "Timing/total_hours": stats_lib.scalar(
                (tick_end_time - start_time) / 3600),
            "Timing/total_days": stats_lib.scalar(
                (tick_end_time - start_time) / 86400),
        })
        _log(stats_lib.tick_line(tick_stats))
        if is_main:
          if done or counters.cur_tick % image_ticks == 0:
            snapshots.save_grid(
                render(_local(state.g_ema), grid_z, grid_c),
                workdir / f"fakes{counters.cur_nimg // 1000:06d}.png", grid)
          log.write(tick_stats, cur_nimg=counters.cur_nimg,
                    walltime=tick_end_time - start_time)
        last_stats = tick_stats
        counters.cur_tick += 1
        tick_start_nimg = counters.cur_nimg
        if (done or preempted or
            (counters.cur_tick - 1) % cfg.snapshot_ticks == 0):
          save()
          if not preempted and snapshot_metrics.names:
            snapshot_metrics(G, state.g_ema, workdir,
                             ckpts.directory / str(counters.batch_idx))
        if preempted:
          raise preempted_error()
        tick_start_time = time.time()
        maintenance_time = tick_start_time - tick_end_time
        if done:
          break
  finally:
    ckpts.wait()
    ckpts.close()
    if log is not None:
      log.close()
  _log(f"done: {workdir}")
  return TrainResult(workdir, counters, last_stats)


def _gen_labels(labels: np.ndarray, cfg, batch_idx: int, num_phases: int
                ) -> np.ndarray:
  """This process's labels for generated images, `[local_batch, P, c]`.

  Drawn from the dataset's labels (as official) with a generator seeded by
  (seed, batch_idx), so that a resumed run draws the same ones.
  """
  rng = np.random.default_rng((cfg.seed, batch_idx))
  idx = rng.integers(len(labels), size=(cfg.batch_size, num_phases))
  local = cfg.batch_size // jax.process_count()
  start = jax.process_index() * local
  return labels[idx[start:start + local]]


def _tick_in_progress(meta: dict, counters: Counters) -> tuple[int, dict]:
  """(cur_nimg at the tick's start, report moments so far) of the tick a
  checkpoint was saved in: those saved with it mid-tick (on preemption),
  else a tick starting at the checkpoint."""
  tick = meta.get("tick")
  if tick is None:
    return counters.cur_nimg, step_lib.empty_reports()
  return tick["start_nimg"], {
      name: np.asarray(tick["reports"].get(name, (0, 0, 0)), np.float32)
      for name in step_lib.empty_reports()}


def _optimizer_of(state: step_lib.TrainState) -> dict:
  return {"g_opt": state.g_opt, "d_opt": state.d_opt,
          "pl_mean": state.pl_mean, "augment_p": state.augment_p,
          "ada_signs": state.ada_signs}


def _abstract_optimizer(networks: dict, g_tx, d_tx) -> dict:
  return {"g_opt": jax.eval_shape(g_tx.init, networks["G"]["params"]),
          "d_opt": jax.eval_shape(d_tx.init, networks["D"]["params"]),
          "pl_mean": jax.ShapeDtypeStruct((), np.float32),
          "augment_p": jax.ShapeDtypeStruct((), np.float32),
          "ada_signs": jax.ShapeDtypeStruct((2,), np.float32)}


def _state_from(networks: dict, optimizer: dict, g_tx, d_tx
                ) -> step_lib.TrainState:
  state = step_lib.init_state(networks["G"], networks["D"],
                              networks["G_ema"], g_tx, d_tx)
  return state.replace(g_opt=optimizer["g_opt"], d_opt=optimizer["d_opt"],
                       pl_mean=optimizer["pl_mean"],
                       augment_p=optimizer["augment_p"],
                       ada_signs=optimizer["ada_signs"])
