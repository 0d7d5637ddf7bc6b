"""Latents, ws and images of a Generator, as the analyses need them.

One compilation per (module, batch shape): the generator module is a
static argument of the jitted functions (Flax modules hash by their
fields), the input transform is a traced 3x3 array, and `render_ws` pads
the last batch to the batch size.
"""

import functools
from collections.abc import Iterator
from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np

from sg3jax.metrics.equivariance import with_input_transform
from sg3jax.networks import Generator
from sg3jax.networks import make_transform


def seed_latents(seeds: Sequence[int], z_dim: int) -> np.ndarray:
  """z `[len(seeds), z_dim]` float32, drawn as the official scripts draw them.

  Each row is `np.random.RandomState(seed).randn(z_dim)` (gen_images.py,
  gen_video.py), so a seed names the same latent as in the official code.
  """
  if not seeds:
    raise ValueError("seeds: expected at least one seed, got []")
  return np.stack([np.random.RandomState(seed).randn(z_dim)
                   for seed in seeds]).astype(np.float32)


def official_samples(seeds: Sequence[int], z_dim: int, c_dim: int
                     ) -> tuple[np.ndarray, np.ndarray]:
  """(z `[N, z_dim]`, c `[N, c_dim]`) as avg_spectra.py samples generators.

  For each seed, `rnd = np.random.RandomState(seed)` draws z, then (when
  conditional) a random class `rnd.randint(c_dim)`, one-hot in c.
  """
  if not seeds:
    raise ValueError("seeds: expected at least one seed, got []")
  z = np.zeros((len(seeds), z_dim), np.float32)
  c = np.zeros((len(seeds), c_dim), np.float32)
  for i, seed in enumerate(seeds):
    rnd = np.random.RandomState(seed)
    z[i] = rnd.randn(z_dim)
    if c_dim > 0:
      c[i, rnd.randint(c_dim)] = 1
  return z, c


def class_labels(c_dim: int, num: int, class_idx: int | None) -> np.ndarray:
  """One-hot labels `[num, c_dim]` (all zero and `[num, 0]` if c_dim is 0)."""
  if c_dim > 0 and class_idx is None:
    raise ValueError("class: the network is conditional; pass a class label")
  if c_dim == 0 and class_idx is not None:
    raise ValueError("class: the network is unconditional; drop the label")
  c = np.zeros((num, c_dim), np.float32)
  if class_idx is not None:
    if not 0 <= class_idx < c_dim:
      raise ValueError(f"class: expected 0..{c_dim - 1}, got {class_idx}")
    c[:, class_idx] = 1
  return c


def input_transform(translate: tuple[float, float] = (0.0, 0.0),
                    angle: float = 0.0) -> np.ndarray:
  """The input's `transform` buffer `[3, 3]` that moves the output image.

  The image content moves by `translate` (fractions of the image size,
  x then y) and rotates by `angle` (radians), as in the official
  equivariance metric (`M[:2, 2] = -t`, `M = rotation_matrix(-angle)`) and
  gen_images.py.
  """
  return np.linalg.inv(make_transform(translate, np.rad2deg(angle))
                       ).astype(np.float32)


@functools.partial(jax.jit, static_argnames=("module", "truncation_psi"))
def map_latents(variables: dict, z: jax.Array, c: jax.Array, *,
                module: Generator, truncation_psi: float = 1.0
                ) -> jax.Array:
  """z `[N, z_dim]`, c `[N, c_dim]` -> ws `[N, num_ws, w_dim]`."""
  return module.apply(variables, z, c if module.c_dim else None,
                      truncation_psi=truncation_psi, method=module.map)


def seed_ws(module: Generator, variables: dict, seeds: Sequence[int], *,
            truncation_psi: float = 1.0, class_idx: int | None = None
            ) -> jax.Array:
  """ws `[len(seeds), num_ws, w_dim]` of `seeds` (`seed_latents`), with the
  one-hot `class_idx` for a conditional generator (`class_labels`)."""
  z = seed_latents(seeds, module.z_dim)
  c = class_labels(module.c_dim, len(seeds), class_idx)
  return map_latents(variables, z, c, module=module,
                     truncation_psi=truncation_psi)


@functools.partial(jax.jit, static_argnames=("module",))
def synthesize(variables: dict, ws: jax.Array, transform: jax.Array, *,
               module: Generator) -> jax.Array:
  """ws `[N, num_ws, w_dim]` -> images `[N, H, W, C]` (about [-1, 1]).

  `transform` `[3, 3]` is the input transform buffer to use (see
  `input_transform`).
  """
  return module.apply(with_input_transform(variables, transform), ws,
                      method=module.synthesize)


def render_ws(module: Generator, variables: dict, ws: jax.typing.ArrayLike, *,
              transform: jax.typing.ArrayLike | None = None,
              batch_size: int = 8) -> np.ndarray:
  """Images `[N, H, W, C]` float32 of ws `[N, num_ws, w_dim]`, in batches.

  Every batch has `batch_size` rows (the last one padded by repeating its
  last row), so any N reuses one compilation.
  """
  ws = np.asarray(ws, np.float32)
  if ws.ndim != 3 or len(ws) == 0:
    raise ValueError(f"ws: expected [N >= 1, num_ws, w_dim], got {ws.shape}")
  if batch_size < 1:
    raise ValueError(f"batch_size: expected >= 1, got {batch_size}")
  transform = jnp.asarray(np.eye(3, dtype=np.float32) if transform is None
                          else transform, jnp.float32)
  images = []
  for start in range(0, len(ws), batch_size):
    batch = ws[start:start + batch_size]
    pad = batch_size - len(batch)
    if pad:
      batch = np.concatenate([batch, np.repeat(batch[-1:], pad, 0)])
    out = synthesize(variables, batch, transform, module=module)
    images.append(np.asarray(out)[:batch_size - pad])
  return np.concatenate(images)


def to_uint8(images: jax.typing.ArrayLike) -> np.ndarray:
  """Generator output in [-1, 1] -> uint8, as gen_images.py quantizes it."""
  return np.clip(np.asarray(images) * 127.5 + 128, 0, 255).astype(np.uint8)


def seed_image_batches(module: Generator, variables: dict,
                       seeds: Sequence[int], *, truncation_psi: float = 1.0,
                       batch_size: int = 8) -> Iterator[np.ndarray]:
  """Yields uint8 images `[n <= batch_size, H, W, C]` of `seeds`, in order.

  Latents and (for a conditional G) random classes as `official_samples`
  draws them; images quantized as gen_images.py does.
  """
  z, c = official_samples(seeds, module.z_dim, module.c_dim)
  # Padded to whole batches: one compilation of the mapping too.
  pad = -len(seeds) % batch_size
  z = np.concatenate([z, np.zeros((pad, z.shape[1]), z.dtype)])
  c = np.concatenate([c, np.zeros((pad, c.shape[1]), c.dtype)])
  for start in range(0, len(seeds), batch_size):
    num = min(batch_size, len(seeds) - start)
    ws = map_latents(variables, z[start:start + batch_size],
                     c[start:start + batch_size], module=module,
                     truncation_psi=truncation_psi)
    yield to_uint8(render_ws(module, variables, ws[:num],
                             batch_size=batch_size))
