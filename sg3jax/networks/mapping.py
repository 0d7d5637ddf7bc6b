"""The StyleGAN3 mapping network z (+ c) -> w, with w_avg and truncation."""

import flax.linen as nn
import jax
import jax.numpy as jnp

from sg3jax.networks.layers import cross_device_mean
from sg3jax.networks.layers import FullyConnected


def normalize_2nd_moment(x: jax.Array, eps: float = 1e-8) -> jax.Array:
  """x / RMS(x) over the last axis."""
  return x * jax.lax.rsqrt(jnp.mean(jnp.square(x), axis=-1, keepdims=True)
                           + eps)


def _at_least_float32(dtype):
  """float32, or float64 when given float64 (x64 numerics checks)."""
  return jnp.promote_types(dtype, jnp.float32)


def lerp(a, b, t):
  """a + t (b - a), as torch.lerp."""
  return a + t * (b - a)


class MappingNetwork(nn.Module):
  """z [N, z_dim] (and c [N, c_dim]) -> ws [N, num_ws, w_dim].

  `w_avg` (the moving average of w used for truncation) lives in the
  "stats" collection and is updated only with `update_emas=True` and
  `mutable=["stats"]`, by w_avg <- lerp(mean_n(w), w_avg, w_avg_beta).
  Inside `shard_map`, `stats_axis_name` names the mesh axis over which the
  batch mean is taken, so that every device sees the global batch's mean.
  """
  z_dim: int
  c_dim: int  # 0 = unconditional
  w_dim: int
  num_ws: int
  num_layers: int = 2
  lr_multiplier: float = 0.01
  w_avg_beta: float = 0.998
  stats_axis_name: str | None = None

  @nn.compact
  def __call__(self, z: jax.Array, c: jax.Array | None = None, *,
               truncation_psi: float = 1.0,
               truncation_cutoff: int | None = None,
               update_emas: bool = False) -> jax.Array:
    if z.shape[-1] != self.z_dim:
      raise ValueError(f"z: expected [N, {self.z_dim}], got {z.shape}")
    dtype = _at_least_float32(z.dtype)
    x = normalize_2nd_moment(z.astype(dtype))
    if self.c_dim > 0:
      if c is None or c.shape != (z.shape[0], self.c_dim):
        got = None if c is None else c.shape
        raise ValueError(f"c: expected [{z.shape[0]}, {self.c_dim}], got {got}")
      y = FullyConnected(self.w_dim, name="embed")(c.astype(dtype))
      x = jnp.concatenate([x, normalize_2nd_moment(y)], axis=1)
    for idx in range(self.num_layers):
      x = FullyConnected(self.w_dim, activation="lrelu",
                         lr_multiplier=self.lr_multiplier, name=f"fc{idx}")(x)

    w_avg = self.variable("stats", "w_avg", jnp.zeros, (self.w_dim,))
    if update_emas and self.is_mutable_collection("stats"):
      batch_mean = cross_device_mean(
          jnp.mean(jax.lax.stop_gradient(x), axis=0), self.stats_axis_name)
      w_avg.value = lerp(batch_mean, w_avg.value, self.w_avg_beta)

    ws = jnp.broadcast_to(x[:, None, :], (x.shape[0], self.num_ws, self.w_dim))
    if not (isinstance(truncation_psi, (int, float)) and truncation_psi == 1):
      cutoff = self.num_ws if truncation_cutoff is None else truncation_cutoff
      truncated = jnp.arange(self.num_ws)[None, :, None] < cutoff
      ws = jnp.where(truncated, lerp(w_avg.value, ws, truncation_psi), ws)
    return ws
