"""Improved precision and recall (Kynkäänniemi et al. 2019), as the
official `precision_recall.py` computes them.

Features are rounded to float16 and distances returned in float16, as the
official does on the GPU (it holds the features in float16). Distances are
computed in row x column blocks on the device, so no N x N matrix exists:
first each manifold point's radius (distance to its k-th nearest neighbour,
itself excluded), then for each probe whether it falls within any radius.
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np

_HIGHEST = jax.lax.Precision.HIGHEST


def _distances(x: jax.Array, y: jax.Array) -> jax.Array:
  """Euclidean distances `[Nx, Ny]` as torch.cdist's matrix-product path
  (|x|^2 + |y|^2 - 2 x.y, clamped at 1e-30), returned in float16."""
  x = x.astype(jnp.float32)
  y = y.astype(jnp.float32)
  d2 = (jnp.sum(x * x, axis=1)[:, None] + jnp.sum(y * y, axis=1)[None, :]
        - 2 * jnp.dot(x, y.T, precision=_HIGHEST))
  return jnp.sqrt(jnp.maximum(d2, 1e-30)).astype(jnp.float16)


@functools.partial(jax.jit, static_argnames="k")
def _smallest(best: jax.Array, rows: jax.Array, cols: jax.Array, *, k: int
              ) -> jax.Array:
  """The k smallest of `best` `[R, k]` and the block's distances."""
  d = jnp.concatenate([best, _distances(rows, cols)], axis=1)
  return -jax.lax.top_k(-d.astype(jnp.float32), k)[0].astype(jnp.float16)


@jax.jit
def _within(hit: jax.Array, probes: jax.Array, cols: jax.Array,
            radii: jax.Array) -> jax.Array:
  return hit | jnp.any(_distances(probes, cols) <= radii[None, :], axis=1)


def _blocks(n: int, size: int):
  return [(i, min(i + size, n)) for i in range(0, n, size)]


def _fraction_within(manifold: jax.Array, probes: jax.Array, *,
                     nhood_size: int, row_batch_size: int,
                     col_batch_size: int) -> float:
  """Fraction of probes within the k-NN radius of some manifold point."""
  k = nhood_size + 1  # the point itself is its nearest neighbour
  cols = _blocks(manifold.shape[0], col_batch_size)
  radii = []
  for r0, r1 in _blocks(manifold.shape[0], row_batch_size):
    rows = manifold[r0:r1]
    best = jnp.full((r1 - r0, k), jnp.inf, jnp.float16)
    for c0, c1 in cols:
      best = _smallest(best, rows, manifold[c0:c1], k=k)
    radii.append(best[:, -1])
  radii = jnp.concatenate(radii)
  hits = []
  for r0, r1 in _blocks(probes.shape[0], row_batch_size):
    rows = probes[r0:r1]
    hit = jnp.zeros(r1 - r0, bool)
    for c0, c1 in cols:
      hit = _within(hit, rows, manifold[c0:c1], radii[c0:c1])
    hits.append(np.asarray(hit))
  return float(np.concatenate(hits).astype(np.float32).mean())


def precision_recall(real: np.ndarray, gen: np.ndarray, *,
                     nhood_size: int = 3, row_batch_size: int = 10000,
                     col_batch_size: int = 10000) -> tuple[float, float]:
  """(precision, recall) of features `real` `[Nr, D]` and `gen` `[Ng, D]`.

  Precision: fraction of generated features inside the real manifold
  (union of balls reaching each real feature's k-th neighbour); recall:
  the same with the roles swapped. k = nhood_size (official pr50k3: 3).
  """
  real = np.asarray(real)
  gen = np.asarray(gen)
  if real.ndim != 2 or gen.ndim != 2 or real.shape[1] != gen.shape[1]:
    raise ValueError(f"features: expected [N, D] arrays of one D, got "
                     f"{real.shape} and {gen.shape}")
  if min(len(real), len(gen)) <= nhood_size:
    raise ValueError(f"features: need more than nhood_size={nhood_size} "
                     f"of each, got {len(real)} real, {len(gen)} generated")
  real16 = jnp.asarray(real.astype(np.float16))
  gen16 = jnp.asarray(gen.astype(np.float16))
  kwargs = dict(nhood_size=nhood_size, row_batch_size=row_batch_size,
                col_batch_size=col_batch_size)
  return (_fraction_within(real16, gen16, **kwargs),
          _fraction_within(gen16, real16, **kwargs))
