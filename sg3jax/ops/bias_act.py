"""Bias, activation, gain and clamp in one elementwise op (NHWC)."""

import dataclasses
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np

from sg3jax.ops import _validate


@dataclasses.dataclass(frozen=True)
class Activation:
  func: Callable[[jax.Array, float], jax.Array]  # (x, alpha) -> y
  def_alpha: float
  def_gain: float


_ACTIVATIONS: dict[str, Activation] = {
    "linear": Activation(lambda x, _: x, 0.0, 1.0),
    "relu": Activation(lambda x, _: jax.nn.relu(x), 0.0, np.sqrt(2)),
    "lrelu": Activation(lambda x, a: jnp.where(x > 0, x, x * a), 0.2,
                        np.sqrt(2)),
    "tanh": Activation(lambda x, _: jnp.tanh(x), 0.0, 1.0),
    "sigmoid": Activation(lambda x, _: jax.nn.sigmoid(x), 0.0, 1.0),
    "elu": Activation(lambda x, _: jax.nn.elu(x), 0.0, 1.0),
    "selu": Activation(lambda x, _: jax.nn.selu(x), 0.0, 1.0),
    "softplus": Activation(lambda x, _: jax.nn.softplus(x), 0.0, 1.0),
    "swish": Activation(lambda x, _: jax.nn.sigmoid(x) * x, 0.0, np.sqrt(2)),
}


def activations() -> dict[str, Activation]:
  """The supported activations with their official default alpha and gain."""
  return dict(_ACTIVATIONS)


def bias_act(
    x: jax.typing.ArrayLike,
    b: jax.typing.ArrayLike | None = None,
    act: str = "linear",
    alpha: float | None = None,
    gain: float | None = None,
    clamp: float | None = None,
) -> jax.Array:
  """y = clamp(act(x + b, alpha) * gain), the official `bias_act`.

  Args:
    x: activations `[..., C]` (bias on the last axis, NHWC convention).
    b: bias `[C]` or None.
    act: one of `activations()` ("linear", "relu", "lrelu", "tanh", ...).
    alpha: activation parameter (lrelu slope); default per activation (0.2).
    gain: output scale; default per activation (sqrt(2) for relu/lrelu).
    clamp: clip the output to [-clamp, clamp]; None disables.

  Returns:
    Array of the shape and dtype of `x`.
  """
  x = jnp.asarray(x)
  if not jnp.issubdtype(x.dtype, jnp.floating):
    raise ValueError(f"x: expected a floating dtype, got {x.dtype}")
  if act not in _ACTIVATIONS:
    raise ValueError(
        f"act: expected one of {sorted(_ACTIVATIONS)}, got {act!r}")
  spec = _ACTIVATIONS[act]
  alpha = spec.def_alpha if alpha is None else float(alpha)
  gain = spec.def_gain if gain is None else float(gain)
  if b is not None:
    x = x + _validate.bias(b, x.shape[-1], x.dtype)
  x = spec.func(x, alpha)
  if gain != 1:
    x = x * gain
  if clamp is not None:
    clamp = _validate.positive_float("clamp", clamp, allow_zero=True)
    # Not jnp.clip: its gradient is 0.5 exactly at +-clamp; torch.clamp
    # (the official reference) and filtered_lrelu pass 1 there.
    x = jnp.where(jnp.abs(x) > clamp, jnp.sign(x) * clamp, x)
  return x
