"""Perceptual path length (Karras et al. 2019), as the official
`perceptual_path_length.py` computes `ppl2_wend`.

W space, endpoint sampling, no crop: for each sample, z0, z1 ~ N(0, I)
are mapped to w0, w1 (truncation 1, the same label c), and the images of
w0 and of lerp(w0, w1, epsilon) are compared with LPIPS (the official
VGG16, `sg3jax.metrics.vgg16`): distance / epsilon^2. Images are
box-downsampled to 256^2 when larger and scaled to [0, 255] first;
StyleGAN2 generators synthesize with their noise buffers redrawn once per
batch (shared by both images of every pair), as official. The metric is
the mean of the distances between their 1st ('lower') and 99th
('higher') percentiles.

Generation and LPIPS run in one jitted `shard_map` per batch over a
`Mesh("data")`; latents come from `fold_in(key(seed), i)` for sample i.
"""

import flax
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from sg3jax.metrics import metric_utils
from sg3jax.networks import generator as generator_lib

EPSILON = 1e-4
LPIPS_RESOLUTION = 256


def lpips_input(img: jax.Array) -> jax.Array:
  """Generator images `[N, H, W, C]` in [-1, 1] -> `[N, h, w, 3]` in
  [0, 255]: box-averaged by S // 256 when the side S = min(H, W) (the
  official: H of its square images) exceeds 256, gray repeated."""
  n, h, w, c = img.shape
  factor = min(h, w) // LPIPS_RESOLUTION
  if factor > 1:
    img = img.reshape(n, h // factor, factor, w // factor, factor, c).mean(
        axis=(2, 4))
  img = (img + 1) * (255 / 2)
  return jnp.repeat(img, 3, axis=-1) if c == 1 else img


def with_random_noise(variables, key: jax.Array):
  """`variables` with every StyleGAN2 `noise_const` buffer redrawn from
  N(0, I) (official: `buf.copy_(torch.randn_like(buf))`)."""
  flat = flax.traverse_util.flatten_dict(flax.core.unfreeze(variables))
  paths = [p for p in flat if p[-1] == "noise_const"]
  for i, path in enumerate(paths):
    flat[path] = jax.random.normal(jax.random.fold_in(key, i),
                                   flat[path].shape, flat[path].dtype)
  return flax.traverse_util.unflatten_dict(flat)


def pair_distances(G: nn.Module, g_variables, vgg: nn.Module, vgg_variables,
                   z: jax.Array, c: jax.Array | None, *,
                   epsilon: float = EPSILON) -> jax.Array:
  """PPL distances `[N]` of latent pairs z `[N, 2, z_dim]` (z0, z1), labels
  c `[N, c_dim]` or None; StyleGAN2 uses the noise buffers in
  `g_variables` ("const" noise)."""
  n = z.shape[0]
  ws = G.apply(g_variables, jnp.concatenate([z[:, 0], z[:, 1]]),
               None if c is None else jnp.concatenate([c, c]), method=G.map)
  w0, w1 = ws[:n], ws[n:]
  # torch.lerp(w0, w1, epsilon) for epsilon < 0.5 (t = 0 at the endpoint).
  w_eps = w0 + epsilon * (w1 - w0)
  noise = ({"noise_mode": "const"}
           if isinstance(G, generator_lib.StyleGAN2Generator) else {})
  img = G.apply(g_variables, jnp.concatenate([w0, w_eps]),
                method=G.synthesize, **noise)
  lpips = vgg.apply(vgg_variables, lpips_input(img), resize_images=False,
                    return_lpips=True)
  return jnp.sum(jnp.square(lpips[:n] - lpips[n:]), axis=1) / epsilon ** 2


def filtered_mean(dist: np.ndarray) -> float:
  """The official outlier filter: mean of the distances between the 1st
  ('lower') and 99th ('higher') percentiles."""
  dist = np.asarray(dist)
  lo = np.percentile(dist, 1, method="lower")
  hi = np.percentile(dist, 99, method="higher")
  return float(np.extract(np.logical_and(dist >= lo, dist <= hi), dist)
               .mean())


@metric_utils.cached_step
def _ppl_step(G: nn.Module, vgg: nn.Module, mesh, epsilon: float):
  """The jitted generate + LPIPS step: (g_vars, vgg_vars, key,
  sample_idx, c) -> distances."""
  def per_device(g_vars, vgg_vars, key, sample_idx, c):
    z = metric_utils.latents(key, sample_idx, (2, G.z_dim))
    g_vars = with_random_noise(g_vars, metric_utils.batch_noise_key(
        key, sample_idx))
    return pair_distances(G, g_vars, vgg, vgg_vars, z,
                          c if G.c_dim else None, epsilon=epsilon)

  return metric_utils.sharded_generator_step(per_device, mesh)


def compute_ppl(G: nn.Module, g_variables, vgg: nn.Module, vgg_variables, *,
                num: int, epsilon: float = EPSILON, dataset=None,
                batch: int | None = None, seed: int = 0, mesh=None,
                progress: bool = True) -> tuple[float, np.ndarray]:
  """(PPL, distances `[num]`) of `num` samples; `dataset` gives the labels
  of a conditional G (random items, as official)."""
  mesh = metric_utils.data_mesh() if mesh is None else mesh
  step = _ppl_step(G, vgg, mesh, epsilon)
  dist = np.concatenate(list(metric_utils.generator_outputs(
      step, G, g_variables, vgg_variables, num=num, dataset=dataset,
      batch=batch, seed=seed, mesh=mesh, progress=progress,
      desc="ppl sampling")))[:num]
  return filtered_mean(dist), dist
