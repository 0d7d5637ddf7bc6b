"""Modulated convolution (StyleGAN2/3 weight modulation and demodulation)."""

import jax
import jax.numpy as jnp

from sg3jax.ops import _validate


def modulated_conv2d(
    x: jax.typing.ArrayLike,
    w: jax.typing.ArrayLike,
    s: jax.typing.ArrayLike,
    demodulate: bool = True,
    padding: int | tuple[int, int] = 0,
    input_gain: jax.typing.ArrayLike | None = None,
) -> jax.Array:
  """The official `networks_stylegan3.modulated_conv2d`, NHWC/HWIO.

  Official form: per-sample weights w'[n] = w * s[n] (over input channels),
  demodulated by 1 / ||w'[n]|| per output channel, then a grouped conv.
  Computed here as the equivalent "scale the activations, one shared conv,
  scale the outputs", which XLA runs far faster than a grouped conv:
    y = conv(x * s * input_gain, w) * dcoefs,
    dcoefs[n, o] = rsqrt(sum_i s[n, i]^2 * sum_hw w[:, :, i, o]^2 + 1e-8).
  With `demodulate`, w and s are first pre-normalised by their RMS (w per
  output channel, s over the whole batch), as official.

  Args:
    x: activations `[N, H, W, I]`.
    w: weights `[kh, kw, I, O]` (HWIO).
    s: styles `[N, I]`.
    demodulate: apply weight demodulation.
    padding: zero padding, int or (pad_h, pad_w).
    input_gain: per-input-channel scale: scalar, `[I]` or `[N, I]`.

  Returns:
    `[N, H + 2 pad_h - kh + 1, W + 2 pad_w - kw + 1, O]`.
  """
  x = _validate.image(x)
  w = jnp.asarray(w)
  s = jnp.asarray(s)
  n, _, _, in_ch = x.shape
  if w.ndim != 4 or w.shape[2] != in_ch:
    raise ValueError(f"w: expected [kh, kw, {in_ch}, O] (HWIO), got {w.shape}")
  if s.shape != (n, in_ch):
    raise ValueError(f"s: expected [{n}, {in_ch}], got {s.shape}")
  pad_h, pad_w = (padding, padding) if isinstance(padding, int) else padding

  if demodulate:
    w = w * jax.lax.rsqrt(jnp.mean(jnp.square(w), axis=(0, 1, 2),
                                   keepdims=True))
    s = s * jax.lax.rsqrt(jnp.mean(jnp.square(s)))
  scale = s
  if input_gain is not None:
    scale = scale * jnp.broadcast_to(jnp.asarray(input_gain, s.dtype),
                                     (n, in_ch))
  y = jax.lax.conv_general_dilated(
      x * scale[:, None, None, :].astype(x.dtype), w.astype(x.dtype),
      window_strides=(1, 1), padding=((pad_h, pad_h), (pad_w, pad_w)),
      dimension_numbers=("NHWC", "HWIO", "NHWC"))
  if demodulate:
    weight_energy = jnp.sum(jnp.square(w), axis=(0, 1))  # [I, O]
    dcoefs = jax.lax.rsqrt(jnp.square(s) @ weight_energy + 1e-8)  # [N, O]
    y = y * dcoefs[:, None, None, :].astype(y.dtype)
  return y
