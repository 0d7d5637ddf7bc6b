"""What the TPU and GPU kernels share besides planning: the static op
configuration, the activation and its derivative, and filter taps."""

import dataclasses

import math

import jax
import jax.numpy as jnp
from jax.experimental import pallas as pl

from kernels.filtered_lrelu import plan as planning


def block_start(window: planning.AxisWindow, i: jax.Array) -> jax.Array:
  """`window.block_start` of a traced tile index."""
  return jnp.clip(i * window.step + window.offset, 0,
                  window.extent - window.block)


class Unsupported(ValueError):
  """The kernel cannot serve this call (shape, dtype or on-chip budget)."""


@dataclasses.dataclass(frozen=True)
class Tiling:
  """Limits on the kernels' own choice of tiles, for tests and tuning.

  max_tile: largest output tile edge (default: the largest that fits).
  """
  max_tile: int | None = None


@dataclasses.dataclass(frozen=True)
class KernelConfig:
  """Static configuration of one fused filtered_lrelu call (hashable)."""
  geometry: planning.OpGeometry
  gain: float
  slope: float
  clamp: float | None
  flip_filter: bool

  def activation(self, v: jax.Array) -> jax.Array:
    """clamp(lrelu(v, slope) * gain), as the XLA path computes it."""
    a = jnp.where(v > 0, v, v * self.slope) * self.gain
    return a if self.clamp is None else jnp.clip(a, -self.clamp, self.clamp)

  def derivative(self, v: jax.Array) -> jax.Array:
    """d activation / d v, 0 where the clamp is active (as the XLA path's
    branch code: |lrelu(v) * gain| > clamp)."""
    d = jnp.where(v > 0, self.gain, self.gain * self.slope)
    if self.clamp is not None:
      a = jnp.where(v > 0, v, v * self.slope) * self.gain
      d = jnp.where(jnp.abs(a) > self.clamp, 0.0, d)
    return d

  def correlation_taps(self, fu: jax.Array, fd: jax.Array
                       ) -> tuple[jax.Array, jax.Array]:
    """float32 taps that the stages correlate with: flipped unless
    flip_filter, the up filter times up**2 (up per axis if separable)."""
    up = self.geometry.up
    def prepare(f, gain):
      f = f.astype(jnp.float32)
      f = f if self.flip_filter else jnp.flip(f)
      return f * (gain ** (0.5 if f.ndim == 1 else 1.0))
    return prepare(fu, float(up * up)), prepare(fd, 1.0)


def _macs_per_channel(g: planning.OpGeometry) -> int:
  """Multiply-adds of the forward pass, per image and channel (polyphase:
  up stage K / up taps per output, down stage K taps per kept output)."""
  (in_h, _), (mid_h, mid_w), (out_h, out_w) = g.in_hw, g.mid_hw, g.out_hw
  up_taps = math.prod(g.fu_shape) / g.up ** len(g.fu_shape)
  if len(g.fu_shape) == 1:
    up = (in_h + mid_h) * mid_w * up_taps
  else:
    up = mid_h * mid_w * up_taps
  if len(g.fd_shape) == 1:
    down = (mid_h + out_h) * out_w * g.fd_shape[0]
  else:
    down = out_h * out_w * math.prod(g.fd_shape)
  return int(up + down)


def cost_estimate(cfg: KernelConfig, batch: int, itemsize: int, *,
                  backward: bool) -> pl.CostEstimate:
  """What one kernel call computes and moves, for XLA's scheduler (the
  backward recomputes the up stage and runs both adjoints: ~2x)."""
  g = cfg.geometry
  flops = 2 * _macs_per_channel(g) * batch * g.channels
  moved = g.bytes_moved(batch, itemsize)
  if backward:
    return pl.CostEstimate(flops=2 * flops, transcendentals=0,
                           bytes_accessed=moved["fused_backward"])
  return pl.CostEstimate(flops=flops, transcendentals=0,
                         bytes_accessed=moved["fused_forward"])
