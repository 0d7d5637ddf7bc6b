"""One training iteration with the official phases, data-parallel.

The official training loop runs, per iteration, a list of phases (G main,
G reg, D main, D reg; "both" when a network has no lazy regularization).
Each phase accumulates gradients over `batch_gpu`-sized micro-batches
("rounds"), sums them over rounds (every round's loss is a mean times the
phase interval), averages them over devices, replaces NaN/Inf, and takes an
Adam step. The G and D optimizers are shared by their main and reg phases;
with lazy regularization their learning rate and betas are rescaled by
interval / (interval + 1). After the phases G_ema follows G.

Here each phase is its own jitted program, as the official loop runs each
phase on its own, and a last small program ("finish") moves G_ema and the
ADA probability; each donates the state to the next, so a device holds one
phase's intermediates at a time. Inside a phase, `jax.shard_map` over a
mesh axis "data" runs it on each device's slice of the global batch;
gradients are `pmean`-ed and the optimizer update is computed identically
on every device, so the state stays replicated. The generator's
EMA statistics (w_avg, magnitude_ema; updated in the D-main G forward, where
the official loss updates them) use the global batch's statistics through
`stats_axis_name`, so the result does not depend on the device count.
"""

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

import flax
import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.sharding import PartitionSpec as P

from sg3jax import data
from sg3jax.resolution import image_shape
from sg3jax.training import augment as augment_lib
from sg3jax.training import losses

DATA_AXIS = "data"

# Everything a step can report, as official training_stats names.
REPORT_NAMES = (
    "Loss/scores/fake", "Loss/signs/fake", "Loss/G/loss", "Loss/pl_penalty",
    "Loss/G/reg", "Loss/scores/real", "Loss/signs/real", "Loss/D/loss",
    "Loss/r1_penalty", "Loss/D/reg")


@dataclasses.dataclass(frozen=True)
class LossConfig:
  """Official StyleGAN2Loss and training_loop hyperparameters."""
  r1_gamma: float
  style_mixing_prob: float = 0.0
  pl_weight: float = 0.0
  pl_batch_shrink: int = 2
  pl_decay: float = 0.01
  blur_init_sigma: float = 0.0
  blur_fade_kimg: float = 0.0
  G_reg_interval: int | None = None  # pylint: disable=invalid-name
  D_reg_interval: int | None = 16  # pylint: disable=invalid-name
  # ADA: the pipeline applied to every image D sees (None: no
  # augmentation); with `ada_target`, p follows the official heuristic
  # every `ada_interval` iterations, else it stays fixed.
  augment: augment_lib.AugmentSpec | None = None
  ada_target: float | None = None
  ada_interval: int = 4
  ada_kimg: float = 500.0

  @property
  def max_blur_size(self) -> int:
    return int(np.floor(self.blur_init_sigma * 3))

  def blur_sigma(self, cur_nimg: int) -> float:
    """The official blur fade-in: sigma at `cur_nimg` images."""
    if self.blur_fade_kimg <= 0:
      return 0.0
    fade = max(1 - cur_nimg / (self.blur_fade_kimg * 1e3), 0)
    return fade * self.blur_init_sigma


@dataclasses.dataclass(frozen=True)
class Phase:
  name: str  # "Gmain", "Greg", "Gboth", "Dmain", "Dreg" or "Dboth"
  interval: int


def official_phases(loss: LossConfig) -> tuple[Phase, ...]:
  """The training_loop phase list; phases without work are dropped.

  ("Greg" without path-length weight and "Dreg" without R1 are no-ops in
  the official loss, as is the reg part of "both".)
  """
  phases = []
  for net, interval, has_reg in (("G", loss.G_reg_interval,
                                  loss.pl_weight > 0),
                                 ("D", loss.D_reg_interval,
                                  loss.r1_gamma > 0)):
    if interval is None:
      phases.append(Phase(f"{net}both" if has_reg else f"{net}main", 1))
    else:
      phases.append(Phase(f"{net}main", 1))
      if has_reg:
        phases.append(Phase(f"{net}reg", interval))
  return tuple(phases)


def adam(lr: float, betas: tuple[float, float], eps: float,
         reg_interval: int | None) -> optax.GradientTransformation:
  """torch.optim.Adam as official lazy regularization configures it."""
  ratio = 1.0 if reg_interval is None else reg_interval / (reg_interval + 1)
  return optax.adam(lr * ratio, b1=betas[0] ** ratio, b2=betas[1] ** ratio,
                    eps=eps)


def freeze(tx: optax.GradientTransformation, params: Any,
           frozen: Sequence[str]) -> optax.GradientTransformation:
  """`tx` for every parameter but those under the dotted module names in
  `frozen` (e.g. "b64.conv0"), which never change (official Freeze-D: their
  weights are buffers, outside the optimizer)."""
  def label(path, _):
    name = ".".join(str(k.key) for k in path)
    return "frozen" if any(name.startswith(f + ".") for f in frozen) else (
        "trained")
  labels = jax.tree_util.tree_map_with_path(label, params)
  return optax.multi_transform({"trained": tx, "frozen": optax.set_to_zero()},
                               labels)


@flax.struct.dataclass
class TrainState:
  """Everything a step updates (replicated over the mesh).

  `g_state` holds G's non-parameter collections ("stats": w_avg and the
  magnitude EMAs; "buffers": the Fourier features and input transform).
  `reports` accumulates `[count, sum, sum of squares]` per REPORT_NAMES
  entry until the host reads and resets it; `nonfinite` latches when any
  loss or gradient was NaN/Inf. `augment_p` is the ADA strength and
  `ada_signs` the `[count, sum]` of sign(D(reals)) since its last update.
  """
  g_params: Any
  g_state: Any
  d_params: Any
  g_ema: Any  # full variables of G_ema
  g_opt: optax.OptState
  d_opt: optax.OptState
  pl_mean: jax.Array
  reports: dict[str, jax.Array]
  nonfinite: jax.Array
  augment_p: jax.Array
  ada_signs: jax.Array


def empty_reports() -> dict[str, jax.Array]:
  return {name: jnp.zeros((3,), jnp.float32) for name in REPORT_NAMES}


def init_state(g_variables: Mapping, d_variables: Mapping,
               g_ema_variables: Mapping,
               g_tx: optax.GradientTransformation,
               d_tx: optax.GradientTransformation,
               augment_p: float = 0.0) -> TrainState:
  """A fresh TrainState from network variables (G_ema starts as given).

  Every array is copied, so that the state can be donated to the step.
  """
  g_variables, d_variables, g_ema_variables = jax.tree.map(
      jnp.array, (dict(g_variables), dict(d_variables), dict(g_ema_variables)))
  g_params = g_variables["params"]
  g_state = {k: v for k, v in g_variables.items() if k != "params"}
  return TrainState(
      g_params=g_params, g_state=g_state, d_params=d_variables["params"],
      g_ema=g_ema_variables, g_opt=g_tx.init(g_params),
      d_opt=d_tx.init(d_variables["params"]),
      pl_mean=jnp.zeros((), jnp.float32), reports=empty_reports(),
      nonfinite=jnp.zeros((), jnp.bool_),
      augment_p=jnp.asarray(augment_p, jnp.float32),
      ada_signs=jnp.zeros((2,), jnp.float32))


@flax.struct.dataclass
class StepScalars:
  """Per-iteration values the host computes (see `step_scalars`)."""
  batch_idx: jax.Array  # int32: selects the iteration's random numbers
  ema_beta: jax.Array  # G_ema decay this iteration
  blur_sigma: jax.Array
  blur_size: jax.Array  # int32 floor(3 sigma)
  ada_step: jax.Array  # size of this iteration's ADA adjustment; 0: none


def step_scalars(batch_idx: int, cur_nimg: int, batch_size: int,
                 ema_kimg: float, ema_rampup: float | None,
                 loss: LossConfig) -> StepScalars:
  """The official per-iteration schedule values at `cur_nimg` images."""
  ema_nimg = ema_kimg * 1000
  if ema_rampup is not None:
    ema_nimg = min(ema_nimg, cur_nimg * ema_rampup)
  ema_beta = 0.5 ** (batch_size / max(ema_nimg, 1e-8))
  sigma = loss.blur_sigma(cur_nimg)
  # The official loop adjusts p after every ada_interval-th iteration.
  adjusts = (loss.ada_target is not None and
             (batch_idx + 1) % loss.ada_interval == 0)
  ada_step = batch_size * loss.ada_interval / (loss.ada_kimg * 1000)
  return StepScalars(
      batch_idx=np.int32(batch_idx), ema_beta=np.float32(ema_beta),
      blur_sigma=np.float32(sigma), blur_size=np.int32(np.floor(sigma * 3)),
      ada_step=np.float32(ada_step if adjusts else 0.0))


def _report(values: jax.Array) -> jax.Array:
  """[count, sum, sum of squares] of per-sample values `[n]`."""
  values = values.astype(jnp.float32)
  return jnp.stack([jnp.float32(values.size), jnp.sum(values),
                    jnp.sum(jnp.square(values))])


def _add_reports(total: dict, new: dict) -> dict:
  return {k: total[k] + new[k] if k in new else total[k] for k in total}


def _all_finite(tree) -> jax.Array:
  leaves = jax.tree.leaves(tree)
  return jnp.all(jnp.stack([jnp.all(jnp.isfinite(x)) for x in leaves]))


def _sanitize(grads):
  """The official nan_to_num(nan=0, posinf=1e5, neginf=-1e5)."""
  return jax.tree.map(
      lambda g: jnp.nan_to_num(g, nan=0.0, posinf=1e5, neginf=-1e5), grads)


class StepBuilder:
  """Builds the jitted training iteration for one set of networks.

  Args:
    G: the Generator (official init kwargs); it is cloned with
      `stats_axis_name="data"` for training.
    D: the Discriminator; with `remat` (config.remat) the step also
      recomputes the preprocessing of D's inputs (`_preprocess`) and, in
      G main, the fakes (`_g_main`).
    g_tx, d_tx: the optimizers (see `adam`).
    loss: loss hyperparameters.
    mesh: a mesh with a "data" axis; the global batch is split over it.
    batch_gpu: micro-batch per device; the per-device batch must be a
      multiple of it (the rest is gradient accumulation).
  """

  def __init__(self, G, D, g_tx, d_tx, loss: LossConfig,
               mesh: jax.sharding.Mesh, batch_gpu: int):
    self.G = G.with_stats_axis(DATA_AXIS)
    self.D = D
    self.remat = getattr(D, "remat", False)  # config.remat
    self.g_tx, self.d_tx = g_tx, d_tx
    self.loss = loss
    self.mesh = mesh
    self.batch_gpu = batch_gpu
    self.phases = official_phases(loss)
    self._compiled = {}

  def active_phases(self, batch_idx: int) -> tuple[Phase, ...]:
    return tuple(p for p in self.phases if batch_idx % p.interval == 0)

  def __call__(self, state: TrainState, key: jax.Array, real_img: jax.Array,
               real_c: jax.Array, gen_c: jax.Array, scalars: StepScalars
               ) -> TrainState:
    """One iteration.

    Args:
      state: replicated TrainState.
      key: the run's base PRNG key (random numbers of an iteration are
        derived from it and `scalars.batch_idx` alone).
      real_img: `[B, H, W, C]` global batch, sharded over "data": uint8
        pixels (scaled on device by `data.scale_images`, as the official
        loop scales them) or float32 in [-1, 1].
      real_c: `[B, c_dim]`.
      gen_c: `[B, num_phases, c_dim]` labels for the generated images, one
        batch per phase as the official loop draws them.
      scalars: from `step_scalars`.
    """
    phases = self.active_phases(int(scalars.batch_idx))
    for _, program in self.programs(phases,
                                    blur=bool(scalars.blur_size > 0)):
      state = program(state, key, real_img, real_c, gen_c, scalars)
    return state

  def programs(self, phases: Sequence[Phase], *, blur: bool
               ) -> tuple[tuple[str, jax.stages.Wrapped], ...]:
    """(name, jitted program) of an iteration running `phases`, in order:
    one per phase, then "finish" (cached; for benchmarks and `sg3jax plan`
    too). Each takes `__call__`'s arguments, donates the state and returns
    the next state."""
    return tuple((p.name, self.phase_program(p, blur=blur))
                 for p in phases) + (("finish", self.finish_program()),)

  def phase_program(self, phase: Phase, *, blur: bool) -> jax.stages.Wrapped:
    """The jitted program of one phase (cached): its rounds, the optimizer
    step, and its reports added to the state's."""
    if (phase, blur) not in self._compiled:
      self._compiled[(phase, blur)] = self._build_phase(phase, blur)
    return self._compiled[(phase, blur)]

  def finish_program(self) -> jax.stages.Wrapped:
    """The jitted end of an iteration (cached): G_ema follows G, and ADA
    adjusts p when `scalars.ada_step` > 0."""
    if "finish" not in self._compiled:
      self._compiled["finish"] = jax.jit(self._finish, donate_argnums=0)
    return self._compiled["finish"]

  # ---- per-round losses (run on one device's micro-batch) ----

  def _preprocess(self, blur: bool, scalars: StepScalars, augment_p):
    """`preprocess(img, key)`: what official run_D does to D's inputs:
    the blur fade-in, then the augmentation (fresh draws from `key`).
    With `config.remat` (D's `remat`) it is recomputed in the backward pass
    rather than kept: the augmentation's padded, upsampled images are the
    largest buffers of R1 (f32 [4, 6140, 6140, 3] at 1024²)."""
    spec = self.loss.augment

    def preprocess(img, key):
      if blur:
        img = losses.blur_images_traced(
            img, blur_sigma=scalars.blur_sigma, blur_size=scalars.blur_size,
            max_blur_size=self.loss.max_blur_size)
      if spec is not None:
        img = augment_lib.augment(
            img, augment_lib.draw(key, spec, img.shape), spec, augment_p)
      return img
    return jax.checkpoint(preprocess) if self.remat else preprocess

  def _apply_g(self, variables, *args, method, update_emas: bool,
               rngs=None):
    """G.apply returning (output, updated "stats" or {})."""
    if update_emas:
      return self.G.apply(variables, *args, update_emas=True, method=method,
                          mutable=["stats"], rngs=rngs)
    return self.G.apply(variables, *args, method=method, rngs=rngs), {}

  def _map_g(self, variables, z, c, key, update_emas: bool):
    """(ws, updated "stats" or {}) with official style mixing."""
    ws, new_stats = self._apply_g(variables, z, c, method=self.G.map,
                                  update_emas=update_emas)
    if self.loss.style_mixing_prob > 0:
      num_ws = ws.shape[1]
      k_cut, k_prob, k_z = jax.random.split(key, 3)
      cutoff = jax.random.randint(k_cut, (), 1, num_ws)
      mix = jax.random.uniform(k_prob, ()) < self.loss.style_mixing_prob
      cutoff = jnp.where(mix, cutoff, num_ws)
      ws_mix, _ = self._apply_g(
          variables, jax.random.normal(k_z, z.shape, z.dtype), c,
          method=self.G.map, update_emas=False)
      ws = jnp.where(jnp.arange(num_ws)[None, :, None] >= cutoff, ws_mix, ws)
    return ws, new_stats

  def _run_g(self, g_params, g_state, z, c, key, update_emas: bool):
    """(images, ws, new g_state): mapping with style mixing, synthesis
    with fresh noise (StyleGAN2); `key` fixes both."""
    k_map, k_noise = jax.random.split(key)
    variables = {"params": g_params, **g_state}
    ws, new_stats = self._map_g(variables, z, c, k_map, update_emas)
    variables = {**variables, **new_stats}
    img, new_stats = self._apply_g(variables, ws, method=self.G.synthesize,
                                   update_emas=update_emas,
                                   rngs={"noise": k_noise})
    return img, ws, {**g_state, **new_stats}

  def _d_logits(self, d_params, img, c, preprocess, key):
    return self.D.apply({"params": d_params}, preprocess(img, key), c)[:, 0]

  def _g_main(self, g_params, g_state, d_params, batch, key, gain, preprocess):
    """G's non-saturating loss on D's logits of fakes. With `config.remat`
    the fakes are generated again in the backward pass, after D's: G's
    saved layer inputs (1.15 GiB of StyleGAN3-T 512² at 4 per v5e chip)
    are not held while D's backward runs, for one more forward of G.
    That program's temp went from 3.93 to 3.48 GiB."""
    k_gen, k_aug = jax.random.split(key)

    def generate(g_params):
      img, _, _ = self._run_g(g_params, g_state, batch["z"], batch["c"],
                              k_gen, update_emas=False)
      return img
    img = (jax.checkpoint(generate) if self.remat else generate)(g_params)
    logits = self._d_logits(d_params, img, batch["c"], preprocess, k_aug)
    loss_g = jax.nn.softplus(-logits)
    reports = {"Loss/scores/fake": _report(logits),
               "Loss/signs/fake": _report(jnp.sign(logits)),
               "Loss/G/loss": _report(loss_g)}
    return jnp.mean(loss_g) * gain, (g_state, reports, loss_g)

  def _g_reg(self, g_params, g_state, pl_mean, batch, key):
    """Path-length penalty (official Gpl) on 1/pl_batch_shrink of z."""
    n = max(batch["z"].shape[0] // self.loss.pl_batch_shrink, 1)
    k_map, k_noise, k_pl = jax.random.split(key, 3)
    variables = {"params": g_params, **g_state}
    ws, _ = self._map_g(variables, batch["z"][:n], batch["c"][:n], k_map,
                        update_emas=False)

    def synthesize(ws):
      return self.G.apply(variables, ws, method=self.G.synthesize,
                          rngs={"noise": k_noise})

    pl_noise = losses.path_length_noise(
        k_pl, (n, *image_shape(self.G.img_resolution), self.G.img_channels),
        ws.dtype)
    pl_lengths = losses.path_lengths(synthesize, ws, pl_noise)
    penalty, new_pl_mean = losses.path_length_penalty(
        pl_lengths, pl_mean, pl_decay=self.loss.pl_decay,
        axis_name=DATA_AXIS)
    loss_pl = penalty * self.loss.pl_weight
    reports = {"Loss/pl_penalty": _report(penalty),
               "Loss/G/reg": _report(loss_pl)}
    return jnp.mean(loss_pl), (new_pl_mean, reports, loss_pl)

  def _d_phase(self, d_params, g_params, g_state, batch, key, gain,
               preprocess, main: bool, reg: bool):
    """Official Dmain / Dreg / Dboth on one micro-batch."""
    loss = jnp.zeros((), jnp.float32)
    reports, values = {}, []
    loss_gen = 0.0
    k_gen, k_aug_gen, k_aug_real = jax.random.split(key, 3)
    if main:
      img, _, g_state = self._run_g(g_params, g_state, batch["z"], batch["c"],
                                    k_gen, update_emas=True)
      logits = self._d_logits(d_params, jax.lax.stop_gradient(img),
                              batch["c"], preprocess, k_aug_gen)
      loss_gen = jax.nn.softplus(logits)
      loss = loss + jnp.mean(loss_gen)
      reports.update({"Loss/scores/fake": _report(logits),
                      "Loss/signs/fake": _report(jnp.sign(logits))})
      values.append(loss_gen)

    def real_logits_fn(x):
      return self._d_logits(d_params, x, batch["real_c"], preprocess,
                            k_aug_real)

    real_img = batch["real_img"]
    if reg:
      real_logits, vjp = jax.vjp(real_logits_fn, real_img)
      r1_grads, = vjp(jnp.ones_like(real_logits))
      r1_penalty = jnp.sum(jnp.square(r1_grads), axis=(1, 2, 3))
      loss_r1 = r1_penalty * (self.loss.r1_gamma / 2)
      reports.update({"Loss/r1_penalty": _report(r1_penalty),
                      "Loss/D/reg": _report(loss_r1)})
      values.append(loss_r1)
    else:
      real_logits = real_logits_fn(real_img)
      loss_r1 = 0.0
    reports.update({"Loss/scores/real": _report(real_logits),
                    "Loss/signs/real": _report(jnp.sign(real_logits))})
    loss_real = 0.0
    if main:
      loss_real = jax.nn.softplus(-real_logits)
      reports["Loss/D/loss"] = _report(loss_gen + loss_real)
      values.append(loss_real)
    loss = (loss + jnp.mean(loss_real + loss_r1)) * gain
    return loss, (g_state, reports, values)

  # ---- the iteration ----

  def _build_phase(self, phase: Phase, blur: bool):
    mesh = self.mesh
    index = [p.name for p in self.phases].index(phase.name)
    update = self._g_update if phase.name[0] == "G" else self._d_update

    def per_device(state: TrainState, key, real_img, real_c, gen_z, gen_c,
                   scalars: StepScalars):
      preprocess = self._preprocess(blur, scalars, state.augment_p)
      rounds = real_img.shape[0] // self.batch_gpu

      def split_rounds(x):  # [b, ...] -> [rounds, batch_gpu, ...]
        return x.reshape((rounds, self.batch_gpu) + x.shape[1:])

      device_key = jax.random.fold_in(key, jax.lax.axis_index(DATA_AXIS))
      batches = {"z": split_rounds(gen_z[:, index]),
                 "c": split_rounds(gen_c[:, index]),
                 "real_img": split_rounds(real_img),
                 "real_c": split_rounds(real_c)}
      round_keys = jax.random.split(jax.random.fold_in(device_key, index),
                                    rounds)
      state, reports, finite = update(state, phase, batches, round_keys,
                                      preprocess)
      reports = jax.lax.psum(_add_reports(empty_reports(), reports),
                             DATA_AXIS)
      all_finite = jax.lax.pmin(finite.astype(jnp.int32), DATA_AXIS) > 0
      ada_signs = state.ada_signs
      if self.loss.ada_target is not None:
        ada_signs = ada_signs + reports["Loss/signs/real"][:2]
      return state.replace(
          reports=jax.tree.map(jnp.add, state.reports, reports),
          nonfinite=state.nonfinite | ~all_finite, ada_signs=ada_signs)

    def step(state, key, real_img, real_c, gen_c, scalars):
      if real_img.dtype == jnp.uint8:
        real_img = data.scale_images(real_img)
      step_key = jax.random.fold_in(key, scalars.batch_idx)
      batch = real_img.shape[0]
      gen_z = jax.random.normal(
          step_key, (batch, len(self.phases), self.G.z_dim), jnp.float32)
      gen_z = jax.lax.with_sharding_constraint(
          gen_z, jax.sharding.NamedSharding(mesh, P(DATA_AXIS)))
      # check_vma=False: the ops' custom VJPs return per-device cotangents
      # for replicated weights; the explicit pmean of the grads averages.
      body = jax.shard_map(
          per_device, mesh=mesh,
          in_specs=(P(), P(), P(DATA_AXIS), P(DATA_AXIS), P(DATA_AXIS),
                    P(DATA_AXIS), P()),
          out_specs=P(), check_vma=False)
      return body(state, jax.random.fold_in(step_key, 1), real_img, real_c,
                  gen_z, gen_c, scalars)

    return jax.jit(step, donate_argnums=0)

  def _finish(self, state: TrainState, key, real_img, real_c, gen_c,
              scalars: StepScalars) -> TrainState:
    """G_ema after this iteration's G, and the ADA update; the batch
    arguments are unused (every program of an iteration takes the same)."""
    del key, real_img, real_c, gen_c
    g_ema_params = jax.tree.map(
        lambda p, p_ema: p + scalars.ema_beta * (p_ema - p),
        state.g_params, state.g_ema["params"])
    augment_p, ada_signs = self._ada_update(state.augment_p, state.ada_signs,
                                            scalars.ada_step)
    return state.replace(g_ema={"params": g_ema_params, **state.g_state},
                         augment_p=augment_p, ada_signs=ada_signs)

  def _ada_update(self, augment_p, ada_signs, ada_step):
    """The official ADA heuristic: (p, ada_signs) after this iteration.

    When `ada_step` > 0, p moves by ada_step towards making the mean of
    sign(D(reals)) since the last update equal `ada_target` (not below 0),
    and the sign statistics restart."""
    if self.loss.ada_target is None:
      return augment_p, ada_signs
    mean = ada_signs[1] / jnp.maximum(ada_signs[0], 1)
    adjust = jnp.sign(mean - self.loss.ada_target) * ada_step
    adjusting = ada_step > 0
    return (jnp.where(adjusting, jnp.maximum(augment_p + adjust, 0.0),
                      augment_p),
            jnp.where(adjusting, jnp.zeros_like(ada_signs), ada_signs))

  def _g_update(self, state: TrainState, phase: Phase, batches, round_keys,
                preprocess):
    """Gmain/Greg/Gboth: accumulate over rounds, pmean, Adam."""
    main = phase.name in ("Gmain", "Gboth")
    reg = phase.name in ("Greg", "Gboth")

    def round_loss(g_params, carry, batch, key):
      pl_mean, = carry
      loss, reports, values = 0.0, {}, []
      if main:
        loss, (_, reports, loss_g) = self._g_main(
            g_params, state.g_state, state.d_params, batch, key,
            phase.interval, preprocess)
        values.append(loss_g)
      if reg:
        reg_key = jax.random.fold_in(key, 1) if main else key
        loss_pl, (pl_mean, reg_reports, pl_values) = self._g_reg(
            g_params, state.g_state, pl_mean, batch, reg_key)
        loss = loss + loss_pl * phase.interval
        reports = {**reports, **reg_reports}
        values.append(pl_values)
      return loss, ((pl_mean,), reports, values)

    grads, (pl_mean,), reports, finite = _accumulate(
        round_loss, state.g_params, (state.pl_mean,), batches, round_keys)
    g_params, g_opt, grads_finite = _apply_update(
        self.g_tx, grads, state.g_opt, state.g_params)
    return (state.replace(g_params=g_params, g_opt=g_opt, pl_mean=pl_mean),
            reports, finite & grads_finite)

  def _d_update(self, state: TrainState, phase: Phase, batches, round_keys,
                preprocess):
    """Dmain/Dreg/Dboth: accumulate over rounds, pmean, Adam."""
    main = phase.name in ("Dmain", "Dboth")
    reg = phase.name in ("Dreg", "Dboth")

    def round_loss(d_params, carry, batch, key):
      g_state, = carry
      loss, (g_state, reports, values) = self._d_phase(
          d_params, state.g_params, g_state, batch, key, phase.interval,
          preprocess, main=main, reg=reg)
      return loss, ((g_state,), reports, values)

    grads, (g_state,), reports, finite = _accumulate(
        round_loss, state.d_params, (state.g_state,), batches, round_keys)
    d_params, d_opt, grads_finite = _apply_update(
        self.d_tx, grads, state.d_opt, state.d_params)
    return (state.replace(d_params=d_params, d_opt=d_opt, g_state=g_state),
            reports, finite & grads_finite)


def _accumulate(round_loss, params, carry, batches, round_keys):
  """Sums `grad(round_loss)` over the rounds (official accumulation).

  Returns (summed grads, final carry, reports summed over rounds, whether
  every loss value was finite).
  """
  def body(acc, xs):
    grads_sum, carry, reports, finite = acc
    batch, key = xs
    grads, (carry, new_reports, values) = jax.grad(
        round_loss, has_aux=True)(params, carry, batch, key)
    finite = finite & _all_finite(values)
    grads_sum = jax.tree.map(jnp.add, grads_sum, grads)
    reports = _add_reports(reports, new_reports)
    return (grads_sum, carry, reports, finite), None

  zeros = jax.tree.map(jnp.zeros_like, params)
  reports = empty_reports()
  (grads, carry, reports, finite), _ = jax.lax.scan(
      body, (zeros, carry, reports, jnp.ones((), jnp.bool_)),
      (batches, round_keys))
  return grads, carry, reports, finite


def _apply_update(tx, grads, opt_state, params):
  """pmean over devices, sanitize, Adam.

  Returns (params, opt_state, whether the grads and new params are finite).
  """
  grads = jax.lax.pmean(grads, DATA_AXIS)
  updates, opt_state = tx.update(_sanitize(grads), opt_state, params)
  params = optax.apply_updates(params, updates)
  return params, opt_state, _all_finite(grads) & _all_finite(params)


def variables_of(state: TrainState) -> dict[str, dict]:
  """{"G", "D", "G_ema"}: full Flax variables of the networks."""
  return {"G": {"params": state.g_params, **state.g_state},
          "D": {"params": state.d_params}, "G_ema": state.g_ema}


def reset_reports(state: TrainState) -> TrainState:
  return state.replace(reports=jax.tree.map(jnp.zeros_like, state.reports))
