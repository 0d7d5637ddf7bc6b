"""Modulated convolution (StyleGAN2/3 weight modulation and demodulation)."""

import functools

import jax
import jax.numpy as jnp

from sg3jax.ops import _validate


@functools.partial(jax.custom_vjp, nondiff_argnums=(2,))
def conv2d(x: jax.Array, w: jax.Array, padding: tuple[int, int]) -> jax.Array:
  """Stride-1 NHWC/HWIO convolution with zero `padding` (pad_h, pad_w) >= 0.

  The values of `lax.conv_general_dilated`. Lowered for the CPU, they are
  arranged for XLA:CPU, which otherwise runs (measured on 2 cores, batch 2):
  * the weight-gradient convolution ~100x slower than the forward (14 s vs
    0.13 s for 3x3, 512 channels at 36x36): there it is one
    [N*H*W, I]^T @ [N*H*W, O] product per kernel tap;
  * unpadded convolutions with kernels larger than 1x1 ~3x slower than
    padded ones (0.67 s vs 0.15 s for 3x3, 256 -> 362 channels at 86x86):
    those are computed with one more pixel of padding and cropped. The input
    gradient (an unpadded convolution for the usual padding k - 1) gains
    most.
  Lowered for GPUs and TPUs (`jax.lax.platform_dependent`) it is the plain
  convolution and its own weight gradient: the per-tap products would
  hold a shifted copy of the input per tap (at 532² and 144 channels, 313
  MiB each in bf16). On every platform, a 1x1 convolution without padding
  is a product (`_pointwise`).
  Differentiable to any order (the VJP is built of `conv2d` again).
  """
  return jax.lax.platform_dependent(
      x, w, cpu=functools.partial(_conv_cpu, padding=padding),
      default=functools.partial(_conv, padding=padding))


def _conv(x, w, padding):
  if w.shape[:2] == (1, 1) and not any(padding):
    return _pointwise(x, w)
  return jax.lax.conv_general_dilated(
      x, w, window_strides=(1, 1), padding=[(p, p) for p in padding],
      dimension_numbers=("NHWC", "HWIO", "NHWC"))


def _pointwise(x, w):
  """A 1x1 convolution as the product [N*H*W, I] @ [I, O]. XLA TPU lowers
  the weight gradient of a 1x1 convolution with few input channels (the
  discriminator's fromrgb: 3) into [H, N*W/64, 64, O, I]-shaped buffers
  whose minor I pads to 128 lanes (at 512², batch 4: 768 MiB each); the
  product's gradients are products too."""
  return jnp.einsum("nhwi,io->nhwo", x, w[0, 0])


def _conv_cpu(x, w, padding):
  """`_conv` with one more pixel of padding where XLA:CPU is slow without
  it, cropped."""
  kernel = w.shape[:2]
  extra = [int(p == 0 and k > 1) for p, k in zip(padding, kernel)]
  y = _conv(x, w, [p + e for p, e in zip(padding, extra)])
  return y[:, extra[0]:y.shape[1] - extra[0], extra[1]:y.shape[2] - extra[1]]


def _conv2d_fwd(x, w, padding):
  return conv2d(x, w, padding), (x, w)


def _conv2d_bwd(padding, residuals, dy):
  x, w = residuals
  kh, kw = w.shape[:2]
  pad_h, pad_w = padding
  # The input gradient is the "full" correlation of dy with the flipped,
  # in/out-transposed kernel: padding k - 1 - p, cropping where negative.
  crop_h, crop_w = max(pad_h - (kh - 1), 0), max(pad_w - (kw - 1), 0)
  dy_cropped = dy[:, crop_h:dy.shape[1] - crop_h, crop_w:dy.shape[2] - crop_w]
  w_transposed = jnp.flip(w, (0, 1)).transpose(0, 1, 3, 2)
  dx = conv2d(dy_cropped, w_transposed,
              (max(kh - 1 - pad_h, 0), max(kw - 1 - pad_w, 0)))
  dw = jax.lax.platform_dependent(
      x, dy, w, cpu=functools.partial(_weight_grad_cpu, padding=padding),
      default=functools.partial(_weight_grad, padding=padding))
  return dx, dw.astype(w.dtype)


def _weight_grad(x, dy, w, padding):
  """dL/dw of `_conv(x, w, padding)` given dy, by the compiler's own
  weight-gradient convolution."""
  _, vjp = jax.vjp(lambda w: _conv(x, w, padding), w)
  return vjp(dy)[0]


def _weight_grad_cpu(x, dy, w, padding):
  """`_weight_grad` as one [N*H*W, I]^T @ [N*H*W, O] product per tap."""
  kh, kw = w.shape[:2]
  pad_h, pad_w = padding
  out_h, out_w = dy.shape[1:3]
  x_padded = jnp.pad(x, ((0, 0), (pad_h, pad_h), (pad_w, pad_w), (0, 0)))
  dy_rows = dy.reshape(-1, dy.shape[-1])
  return jnp.stack([
      jnp.stack([
          x_padded[:, a:a + out_h, b:b + out_w].reshape(-1, x.shape[-1]).T
          @ dy_rows for b in range(kw)
      ]) for a in range(kh)
  ])


conv2d.defvjp(_conv2d_fwd, _conv2d_bwd)


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
  y = conv2d(x * scale[:, None, None, :].astype(x.dtype), w.astype(x.dtype),
             (pad_h, pad_w))
  if demodulate:
    weight_energy = jnp.sum(jnp.square(w), axis=(0, 1))  # [I, O]
    dcoefs = jax.lax.rsqrt(jnp.square(s) @ weight_energy + 1e-8)  # [N, O]
    y = y * dcoefs[:, None, None, :].astype(y.dtype)
  return y
