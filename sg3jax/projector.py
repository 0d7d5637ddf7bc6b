"""Projection of images into a generator's W space (StyleGAN2-ADA's
projector.py).

`project` runs the official algorithm: start from w_avg (the mean w of
10000 latents drawn by `np.random.RandomState(123)`); each step adds
Gaussian noise to w (scale w_std x 0.05 x (1 - t / 0.75)^2, ramping to
0), renders with `noise_mode='const'`, and takes an Adam step (betas 0.9,
0.999) on the squared distance of the VGG16 LPIPS features of target and
render (both at most 256^2, area-downsampled) plus, for StyleGAN2, 1e5
times the noise-map autocorrelation penalty; the learning rate ramps up
over the first 5% of the steps and down (cosine) over the last 25%.
StyleGAN2's per-layer noise maps are optimised too and renormalised after
every step. Random numbers come from JAX, so runs are not the official
ones number for number. Several targets are projected at once, each with
its own w and noise maps, as independent runs.
"""

import dataclasses
import functools
from collections.abc import Callable

import flax
import jax
import jax.numpy as jnp
import numpy as np
import optax

from sg3jax import analysis
from sg3jax.networks import Generator
from sg3jax.networks import StyleGAN2Generator
from sg3jax.networks import synthesis_network
from sg3jax.resolution import image_shape
from sg3jax.resolution import Resolution


@dataclasses.dataclass(frozen=True)
class Schedule:
  """The official projector's hyperparameters (its keyword defaults)."""
  num_steps: int = 1000
  w_avg_samples: int = 10000
  initial_learning_rate: float = 0.1
  initial_noise_factor: float = 0.05
  lr_rampdown_length: float = 0.25
  lr_rampup_length: float = 0.05
  noise_ramp_length: float = 0.75
  regularize_noise_weight: float = 1e5

  def learning_rate(self, step: int) -> float:
    t = step / self.num_steps
    ramp = min(1.0, (1.0 - t) / self.lr_rampdown_length)
    ramp = 0.5 - 0.5 * np.cos(ramp * np.pi)
    ramp = ramp * min(1.0, t / self.lr_rampup_length)
    return self.initial_learning_rate * ramp

  def w_noise_factor(self, step: int) -> float:
    """The w noise scale in units of w_std."""
    t = step / self.num_steps
    return self.initial_noise_factor * max(
        0.0, 1.0 - t / self.noise_ramp_length) ** 2


@dataclasses.dataclass(frozen=True)
class Projection:
  """What `project` returns."""
  w_steps: np.ndarray  # [num_steps, B, w_dim]: w after each step
  dist_steps: np.ndarray  # [num_steps, B]: LPIPS distance at each step
  # StyleGAN2's optimised noise maps {variable path: [B, H, W]}, kept on
  # the device (`images` renders every step of a video with them); {} for
  # StyleGAN3.
  noise: dict[tuple[str, ...], jax.Array]

  def ws(self, num_ws: int, step: int = -1) -> np.ndarray:
    """ws `[B, num_ws, w_dim]` of `step` (default: the last)."""
    w = self.w_steps[step]
    return np.repeat(w[:, None], num_ws, axis=1)

  def target(self, index: int) -> "Projection":
    """The projection of target `index` alone (B = 1)."""
    keep = slice(index, index + 1)
    return Projection(
        w_steps=self.w_steps[:, keep], dist_steps=self.dist_steps[:, keep],
        noise={p: v[keep] for p, v in self.noise.items()})

  def images(self, module: Generator, variables: dict, step: int = -1
             ) -> np.ndarray:
    """uint8 renders `[B, H, W, C]` of `step` with the optimised noise."""
    return analysis.to_uint8(synthesize(
        variables, self.w_steps[step], self.noise, module=module))


def w_stats(module: Generator, variables: dict, *, num_samples: int = 10000,
            class_idx: int | None = None) -> tuple[np.ndarray, float]:
  """(w_avg `[w_dim]`, w_std) of `num_samples` latents of RandomState(123).

  w_std is the root mean squared distance of the samples' w to w_avg,
  summed over the w dimensions (as official).
  """
  z = np.random.RandomState(123).randn(num_samples, module.z_dim)
  c = analysis.class_labels(module.c_dim, num_samples, class_idx)
  w = np.asarray(analysis.map_latents(variables, z.astype(np.float32), c,
                                      module=module))[:, 0]
  w_avg = w.mean(axis=0)
  return w_avg, float(np.sqrt(np.sum((w - w_avg) ** 2) / num_samples))


def area_downsample(images: jax.Array, size: Resolution) -> jax.Array:
  """`[N, H, W, C]` -> `[N, h, w, C]` ((h, w) = `size`, an int for a
  square) by averaging blocks (torch `F.interpolate(mode='area')` for H, W
  multiples of h, w)."""
  n, h, w, c = images.shape
  out_h, out_w = image_shape(size)
  if h % out_h or w % out_w:
    raise ValueError(f"images: expected H, W multiples of {out_h}, {out_w}, "
                     f"got {images.shape}")
  return images.reshape(n, out_h, h // out_h, out_w, w // out_w, c).mean(
      (2, 4))


def vgg_input(images: jax.Array) -> jax.Array:
  """Generator output in [-1, 1] -> [0, 255], the short side S at most 256
  (official: 256^2 for its square images; a non-square image keeps its
  aspect, averaged over S / 256 blocks along both axes)."""
  images = (images + 1) * (255 / 2)
  h, w = images.shape[1:3]
  s = min(h, w)
  return area_downsample(images, (h * 256 // s, w * 256 // s)) if (
      s > 256) else images


def noise_paths(variables: dict) -> list[tuple[str, ...]]:
  """Paths of StyleGAN2's `noise_const` maps in `variables` (none for
  StyleGAN3)."""
  flat = flax.traverse_util.flatten_dict(flax.core.unfreeze(variables))
  return [path for path in flat if path[-1] == "noise_const"]


def _with_noise(variables: dict, noise: dict[tuple[str, ...], jax.Array]
                ) -> dict:
  flat = flax.traverse_util.flatten_dict(flax.core.unfreeze(variables))
  return flax.traverse_util.unflatten_dict({**flat, **noise})


def noise_regularization(noise: dict[tuple[str, ...], jax.Array]
                         ) -> jax.Array:
  """Official penalty of one target's noise maps `{path: [H, W]}`: squared
  mean products with the one-pixel-shifted map in x and y, at every
  2x2-average-pooled scale down to 8^2."""
  total = jnp.float32(0)
  for v in noise.values():
    while True:
      total += jnp.mean(v * jnp.roll(v, 1, axis=1)) ** 2
      total += jnp.mean(v * jnp.roll(v, 1, axis=0)) ** 2
      if v.shape[0] <= 8:
        break
      h, w = v.shape
      v = v.reshape(h // 2, 2, w // 2, 2).mean((1, 3))
  return total


def _synthesize_one(module: Generator, variables: dict, w: jax.Array,
                    noise: dict) -> jax.Array:
  """w `[w_dim]` and noise maps -> image `[H, W, C]` (noise_mode const)."""
  ws = jnp.broadcast_to(w, (1, synthesis_network(module).num_ws,
                            module.w_dim))
  kwargs = ({"noise_mode": "const"}
            if isinstance(module, StyleGAN2Generator) else {})
  return module.apply(_with_noise(variables, noise), ws,
                      method=module.synthesize, **kwargs)[0]


@functools.partial(jax.jit, static_argnames=("module",))
def synthesize(variables: dict, w: jax.Array, noise: dict, *,
               module: Generator) -> jax.Array:
  """w `[B, w_dim]` (broadcast to every layer) and each target's noise
  maps `{path: [B, H, W]}` -> images `[B, H, W, C]` in [-1, 1]."""
  return jax.vmap(functools.partial(_synthesize_one, module, variables)
                  )(w, noise)


@functools.partial(jax.jit, static_argnames=("vgg",))
def lpips_features(vgg, vgg_variables: dict, images: jax.Array
                   ) -> jax.Array:
  """Images `[N, H, W, C]` in [-1, 1] -> LPIPS features `[N, D]`."""
  return vgg.apply(vgg_variables, vgg_input(images), return_lpips=True)


@functools.partial(jax.jit, static_argnames=("module", "vgg",
                                             "noise_weight"))
def _step(params: dict, opt_state, target_features: jax.Array,
          variables: dict, vgg_variables: dict, w_keys: jax.Array,
          step: jax.Array, learning_rate: jax.Array,
          w_noise_scale: jax.Array, *, module: Generator, vgg,
          noise_weight: float):
  """One Adam step of every target; returns (params, state, dist `[B]`).

  `w_keys` `[B]`: each target's key of its w noise (folded with `step`).
  """
  def loss_fn(params):
    w_noise = jax.vmap(lambda k: jax.random.normal(
        jax.random.fold_in(k, step), (module.w_dim,)))(w_keys)
    w = params["w"] + w_noise * w_noise_scale
    images = synthesize(variables, w, params["noise"], module=module)
    features = lpips_features(vgg, vgg_variables, images)
    dist = jnp.sum(jnp.square(target_features - features), axis=1)
    reg = jax.vmap(noise_regularization, axis_size=len(w))(params["noise"])
    return jnp.sum(dist + reg * noise_weight), dist

  grads, dist = jax.grad(loss_fn, has_aux=True)(params)
  updates, opt_state = optax.scale_by_adam(b1=0.9, b2=0.999).update(
      grads, opt_state)
  params = jax.tree.map(lambda p, u: p - learning_rate * u, params, updates)

  def normalize(v):  # [H, W] per target, to zero mean and unit variance
    v = v - jnp.mean(v)
    return v * jax.lax.rsqrt(jnp.mean(jnp.square(v)))
  noise = {k: jax.vmap(normalize)(v) for k, v in params["noise"].items()}
  return {"w": params["w"], "noise": noise}, opt_state, dist


def project(module: Generator, variables: dict, targets: np.ndarray,
            vgg, vgg_variables: dict, *, schedule: Schedule = Schedule(),
            seed: int = 0, class_idx: int | None = None,
            callback: Callable[[int, np.ndarray], None] | None = None
            ) -> Projection:
  """Projects uint8 targets `[B, H, W, C]` (see the module docstring).

  `vgg(images in [0, 255], return_lpips=True)` gives the LPIPS features
  (`sg3jax.metrics.vgg16`); `callback(step, dist [B])` runs after each
  step (a progress bar).
  """
  targets = np.asarray(targets)
  h, w = image_shape(module.img_resolution)
  if targets.ndim != 4 or targets.shape[1:] != (h, w, module.img_channels):
    raise ValueError(f"targets: expected [B, {h}, {w}, "
                     f"{module.img_channels}], got {targets.shape}")
  if targets.dtype != np.uint8:
    raise ValueError(f"targets: expected uint8, got {targets.dtype}")
  num = len(targets)
  w_avg, w_std = w_stats(module, variables,
                         num_samples=schedule.w_avg_samples,
                         class_idx=class_idx)
  target_features = lpips_features(
      vgg, vgg_variables, jnp.asarray(targets, jnp.float32) / 127.5 - 1)
  # Target i draws from key (seed, i) alone: a batch gives each target
  # the run it would have alone.
  keys = jax.vmap(jax.random.fold_in, (None, 0))(jax.random.key(seed),
                                                  jnp.arange(num))
  flat = flax.traverse_util.flatten_dict(flax.core.unfreeze(variables))
  noise = {}
  for j, path in enumerate(noise_paths(variables)):
    draw = functools.partial(jax.random.normal, shape=flat[path].shape)
    noise[path] = jax.vmap(draw)(jax.vmap(jax.random.fold_in, (0, None))(
        keys, j))
  params = {"w": jnp.tile(jnp.asarray(w_avg), (num, 1)), "noise": noise}
  opt_state = optax.scale_by_adam(b1=0.9, b2=0.999).init(params)
  w_keys = jax.vmap(lambda k: jax.random.fold_in(k, len(noise)))(keys)
  w_steps, dist_steps = [], []
  for step in range(schedule.num_steps):
    params, opt_state, dist = _step(
        params, opt_state, target_features, variables, vgg_variables,
        w_keys, jnp.int32(step), jnp.float32(schedule.learning_rate(step)),
        jnp.float32(w_std * schedule.w_noise_factor(step)),
        module=module, vgg=vgg,
        noise_weight=schedule.regularize_noise_weight)
    w_steps.append(np.asarray(params["w"]))
    dist_steps.append(np.asarray(dist))
    if callback is not None:
      callback(step, dist_steps[-1])
  return Projection(
      w_steps=np.stack(w_steps), dist_steps=np.stack(dist_steps),
      noise=dict(params["noise"]))
