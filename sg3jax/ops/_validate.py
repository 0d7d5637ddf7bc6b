"""Argument checks shared by the public ops (clear errors at the boundary)."""

import jax
import jax.numpy as jnp
import numpy as np


def image(x: jax.typing.ArrayLike, name: str = "x") -> jax.Array:
  """`x` as a floating `[N, H, W, C]` array, or a ValueError saying why not."""
  x = jnp.asarray(x)
  if x.ndim != 4:
    raise ValueError(f"{name}: expected rank 4 [N, H, W, C], got shape "
                     f"{x.shape}")
  if not jnp.issubdtype(x.dtype, jnp.floating):
    raise ValueError(f"{name}: expected a floating dtype, got {x.dtype}")
  return x


def taps(name: str, f: jax.typing.ArrayLike | None, dtype) -> jax.Array:
  """FIR taps `[K]` or `[Kh, Kw]` in `dtype`; None becomes the 1x1 identity."""
  if f is None:
    return jnp.ones((1, 1), dtype)
  f = jnp.asarray(f)
  if f.ndim not in (1, 2) or f.size == 0:
    raise ValueError(f"{name}: expected taps of shape [K] or [Kh, Kw], got "
                     f"shape {f.shape}")
  if not jnp.issubdtype(f.dtype, jnp.floating):
    raise ValueError(f"{name}: expected floating taps, got {f.dtype}")
  return f.astype(dtype)


def bias(b: jax.typing.ArrayLike | None, channels: int, dtype) -> jax.Array:
  """Bias `[C]` in `dtype`; None becomes zeros."""
  if b is None:
    return jnp.zeros((channels,), dtype)
  b = jnp.asarray(b)
  if b.shape != (channels,):
    raise ValueError(f"b: expected shape [{channels}] (the channel axis of x), "
                     f"got {b.shape}")
  return b.astype(dtype)


def instantiate_zeros(ct):
  """A custom_vjp cotangent as an array (symbolic zeros become zeros)."""
  if isinstance(ct, jax.custom_derivatives.SymbolicZero):
    return jnp.zeros(ct.shape, ct.dtype)
  return ct


def positive_float(name: str, value, *, allow_zero: bool) -> float:
  """`value` as a Python float, > 0 (or >= 0 with allow_zero)."""
  try:
    value = float(value)
  except (TypeError, ValueError):
    raise ValueError(f"{name}: expected a number, got {value!r}") from None
  if not (value >= 0 if allow_zero else value > 0) or not np.isfinite(value):
    bound = ">= 0" if allow_zero else "> 0"
    raise ValueError(f"{name}: expected a finite number {bound}, got {value}")
  return value
