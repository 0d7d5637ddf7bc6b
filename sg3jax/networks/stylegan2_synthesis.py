"""The StyleGAN2 synthesis network (official `networks_stylegan2.py`).

Used by the official `--cfg=stylegan2` baseline: a learned 4x4 constant,
modulated 3x3 convolutions with weight demodulation and per-pixel noise,
2x upsampling by transposed convolution and the [1, 3, 3, 1] blur, and
ToRGB outputs summed over resolutions ("skip"), a residual variant
("resnet") or only the last ToRGB ("orig"). NHWC/HWIO; module and
parameter names are the official ones (`b8.conv0.affine.weight`,
`b4.const`, `b16.conv1.noise_strength`).

Noise: `noise_mode` "random" draws fresh per-pixel noise from the "noise"
RNG stream (training), "const" uses each layer's fixed `noise_const`
buffer, "none" adds nothing. The default (None) is "random" when the
caller passes a "noise" RNG (`apply(..., rngs={"noise": key})`), else
"const", so inference without RNGs is deterministic (gen_images.py's
default).

Non-square images (`img_resolution=(H, W)`, see `sg3jax.resolution`), as
the rectangular forks of StyleGAN2-ADA do: every block keeps the name,
channel count and layers of the square network of the short side S =
min(H, W) (`b4` ... `bS`), and its feature maps are (r H / S) x (r W / S)
for block `br`: the learned constant is 4 x 8 for a 32x64 network, the
noise buffers have the block's shape, and upsampling doubles both axes.
"""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from sg3jax import ops
from sg3jax.networks.layers import FullyConnected
from sg3jax.networks.stylegan2 import Conv2dLayer
from sg3jax.networks.stylegan2 import conv_up2
from sg3jax.networks.stylegan2 import upsample2d
from sg3jax.resolution import image_shape
from sg3jax.resolution import parse_resolution
from sg3jax.resolution import Resolution
from sg3jax.resolution import scaled_shape
from sg3jax.resolution import short_side

NOISE_MODES = ("random", "const", "none")
ARCHITECTURES = ("orig", "skip", "resnet")


def modulated_conv2d(x: jax.Array, weight: jax.Array, styles: jax.Array, *,
                     demodulate: bool = True, up: int = 1,
                     noise: jax.Array | None = None) -> jax.Array:
  """The official StyleGAN2 `modulated_conv2d`, unfused form.

  Args:
    x: `[N, H, W, I]`.
    weight: `[k, k, I, O]` (effective, unscaled: demodulation normalizes).
    styles: `[N, I]`.
    demodulate: scale each output channel to unit expected variance.
    up: 1, or 2 for `conv_up2`.
    noise: added after demodulation, broadcastable to the output.

  Returns:
    `[N, H * up, W * up, O]`: conv(x * styles, weight) * dcoefs + noise,
    where dcoefs = rsqrt(sum_{k,k,I} (weight * styles)^2 + 1e-8), computed
    as styles^2 @ sum_kk(weight^2) without forming per-sample weights.
  """
  k = weight.shape[0]
  x = x * styles[:, None, None, :].astype(x.dtype)
  w = weight.astype(x.dtype)
  x = conv_up2(x, w) if up == 2 else ops.conv2d(x, w, (k // 2, k // 2))
  if demodulate:
    weight_energy = jnp.sum(jnp.square(weight), axis=(0, 1))  # [I, O]
    dcoefs = jax.lax.rsqrt(jnp.square(styles) @ weight_energy + 1e-8)
    x = x * dcoefs[:, None, None, :].astype(x.dtype)
  if noise is not None:
    x = x + noise.astype(x.dtype)
  return x


def resolve_noise_mode(module: nn.Module, noise_mode: str | None) -> str:
  """`noise_mode`, or the default: "random" with a "noise" RNG, else "const"."""
  if noise_mode is None:
    return "random" if module.has_rng("noise") else "const"
  if noise_mode not in NOISE_MODES:
    raise ValueError(f"noise_mode: expected one of {NOISE_MODES}, got "
                     f"{noise_mode!r}")
  return noise_mode


class SynthesisLayer(nn.Module):
  """Modulated 3x3 conv [up 2] + noise + bias/lrelu/clamp."""
  out_channels: int
  resolution: Resolution  # output size: int (square) or (H, W)
  kernel_size: int = 3
  up: int = 1
  use_noise: bool = True
  activation: str = "lrelu"
  conv_clamp: float | None = None

  @nn.compact
  def __call__(self, x: jax.Array, w: jax.Array, *, noise_mode: str,
               gain: float = 1.0) -> jax.Array:
    """x `[N, H / up, W / up, I]`, w `[N, w_dim]` -> `[N, H, W, O]`, where
    (H, W) = `resolution`."""
    in_channels = x.shape[-1]
    k = self.kernel_size
    styles = FullyConnected(in_channels, bias_init=1.0, name="affine")(w)
    weight = self.param("weight", nn.initializers.normal(1.0),
                        (k, k, in_channels, self.out_channels))
    noise = None
    if self.use_noise:
      noise_const = self.variable(
          "buffers", "noise_const", lambda: jax.random.normal(
              self.make_rng("params"), image_shape(self.resolution)))
      strength = self.param("noise_strength", nn.initializers.zeros, ())
      if noise_mode == "random":
        noise = jax.random.normal(
            self.make_rng("noise"),
            (x.shape[0], *image_shape(self.resolution), 1)) * strength
      elif noise_mode == "const":
        noise = (noise_const.value * strength)[None, :, :, None]
    x = modulated_conv2d(x, weight, styles, up=self.up, noise=noise)
    bias = self.param("bias", nn.initializers.zeros, (self.out_channels,))
    act_gain = ops.bias_act_activations()[self.activation].def_gain * gain
    clamp = None if self.conv_clamp is None else self.conv_clamp * gain
    return ops.bias_act(x, bias.astype(x.dtype), act=self.activation,
                        gain=act_gain, clamp=clamp)


class ToRGBLayer(nn.Module):
  """Modulated 1x1 conv without demodulation, bias, clamp."""
  out_channels: int
  conv_clamp: float | None = None

  @nn.compact
  def __call__(self, x: jax.Array, w: jax.Array) -> jax.Array:
    """x `[N, H, W, I]`, w `[N, w_dim]` -> `[N, H, W, out_channels]`."""
    in_channels = x.shape[-1]
    styles = FullyConnected(in_channels, bias_init=1.0, name="affine")(w)
    weight = self.param("weight", nn.initializers.normal(1.0),
                        (1, 1, in_channels, self.out_channels))
    x = modulated_conv2d(x, weight, styles / np.sqrt(in_channels),
                         demodulate=False)
    bias = self.param("bias", nn.initializers.zeros, (self.out_channels,))
    return ops.bias_act(x, bias.astype(x.dtype), clamp=self.conv_clamp)


class SynthesisBlock(nn.Module):
  """One resolution: [const | conv0 (up 2)], conv1, [torgb], [skip]."""
  in_channels: int  # 0 = the first block (4x4 constant input)
  out_channels: int
  resolution: Resolution  # int (square) or (H, W) of this block
  img_channels: int
  is_last: bool
  architecture: str = "skip"
  conv_clamp: float | None = 256
  use_noise: bool = True
  dtype: jnp.dtype = jnp.float32

  @property
  def num_conv(self) -> int:
    return 1 if self.in_channels == 0 else 2

  @property
  def num_torgb(self) -> int:
    return int(self.is_last or self.architecture == "skip")

  @nn.compact
  def __call__(self, x: jax.Array | None, img: jax.Array | None,
               ws: jax.Array, *, noise_mode: str
               ) -> tuple[jax.Array, jax.Array | None]:
    """x `[N, H/2, W/2, in]`, img `[N, H/2, W/2, img_channels]`, ws
    `[N, num_conv + num_torgb, w_dim]` -> (x `[N, H, W, out]`, img), where
    (H, W) = `resolution`."""
    layer = dict(resolution=self.resolution, use_noise=self.use_noise,
                 conv_clamp=self.conv_clamp)
    ws = ws.astype(self.dtype)
    if self.in_channels == 0:
      const = self.param("const", nn.initializers.normal(1.0), (
          self.out_channels, *image_shape(self.resolution)))  # official CHW
      x = jnp.broadcast_to(const.transpose(1, 2, 0)[None].astype(self.dtype),
                           (ws.shape[0],) + const.shape[1:] + const.shape[:1])
      x = SynthesisLayer(self.out_channels, **layer, name="conv1")(
          x, ws[:, 0], noise_mode=noise_mode)
    else:
      x = x.astype(self.dtype)
      y = None
      if self.architecture == "resnet":
        y = Conv2dLayer(self.out_channels, 1, use_bias=False, up=2,
                        name="skip")(x, gain=np.sqrt(0.5))
      x = SynthesisLayer(self.out_channels, up=2, **layer, name="conv0")(
          x, ws[:, 0], noise_mode=noise_mode)
      x = SynthesisLayer(self.out_channels, **layer, name="conv1")(
          x, ws[:, 1], noise_mode=noise_mode,
          gain=np.sqrt(0.5) if y is not None else 1.0)
      if y is not None:
        x = y + x
    if img is not None:
      img = upsample2d(img)
    if self.num_torgb:
      y = ToRGBLayer(self.img_channels, conv_clamp=self.conv_clamp,
                     name="torgb")(x, ws[:, self.num_conv])
      y = y.astype(jnp.promote_types(y.dtype, jnp.float32))
      img = y if img is None else img + y
    return x, img


class SynthesisNetwork(nn.Module):
  """ws `[N, num_ws, w_dim]` -> images `[N, H, W, img_channels]`.

  `img_resolution` is an int (square) or (H, W) (see the module docstring).
  Fields and defaults are the official constructor's (`block_kwargs` such
  as `architecture`, `conv_clamp`, `use_noise` go to every block;
  `fused_modconv_default` and `fp16_channels_last` are accepted for
  official kwargs and change nothing here). `mixed_precision` computes the
  `num_fp16_res` highest resolutions in bfloat16 (the official fp16 on
  CUDA); the images are float32.
  """
  w_dim: int
  img_resolution: Resolution
  img_channels: int
  channel_base: int = 32768
  channel_max: int = 512
  num_fp16_res: int = 4
  architecture: str = "skip"
  conv_clamp: float | None = 256
  use_noise: bool = True
  fused_modconv_default: bool | str = True
  fp16_channels_last: bool = False
  mixed_precision: bool = False

  def channels(self, res: int) -> int:
    return min(self.channel_base // res, self.channel_max)

  @property
  def block_resolutions(self) -> list[int]:
    """Block names' resolutions: 4 ... the short side."""
    return [2 ** i for i in
            range(2, int(np.log2(short_side(self.img_resolution))) + 1)]

  def block_kwargs(self) -> dict[str, dict]:
    """{official block name: SynthesisBlock fields}, lowest resolution first."""
    res_max = short_side(self.img_resolution)
    log2 = int(np.log2(res_max))
    fp16_resolution = max(2 ** (log2 + 1 - self.num_fp16_res), 8)
    return {f"b{res}": dict(
        in_channels=self.channels(res // 2) if res > 4 else 0,
        out_channels=self.channels(res),
        resolution=scaled_shape(self.img_resolution, res),
        img_channels=self.img_channels, is_last=res == res_max,
        architecture=self.architecture, conv_clamp=self.conv_clamp,
        use_noise=self.use_noise,
        dtype=jnp.bfloat16 if (self.mixed_precision and
                               res >= fp16_resolution) else jnp.float32)
            for res in self.block_resolutions}

  @property
  def num_ws(self) -> int:
    blocks = [SynthesisBlock(**kwargs) for kwargs in
              self.block_kwargs().values()]
    return sum(b.num_conv for b in blocks) + blocks[-1].num_torgb

  @nn.compact
  def __call__(self, ws: jax.Array, *, update_emas: bool = False,
               noise_mode: str | None = None) -> jax.Array:
    """`update_emas` is accepted for a uniform generator interface (the
    StyleGAN2 synthesis network has no moving averages)."""
    del update_emas
    if self.architecture not in ARCHITECTURES:
      raise ValueError(f"architecture: expected one of {ARCHITECTURES}, got "
                       f"{self.architecture!r}")
    res = short_side(parse_resolution(self.img_resolution,
                                      what="img_resolution"))
    if 2 ** int(np.log2(res)) != res or res < 4:
      raise ValueError(f"img_resolution: expected a power of 2 >= 4, got "
                       f"{self.img_resolution}")
    if ws.ndim != 3 or ws.shape[1:] != (self.num_ws, self.w_dim):
      raise ValueError(f"ws: expected [N, {self.num_ws}, {self.w_dim}], got "
                       f"{ws.shape}")
    noise_mode = resolve_noise_mode(self, noise_mode)
    ws = ws.astype(jnp.promote_types(ws.dtype, jnp.float32))
    x = img = None
    w_idx = 0
    for name, kwargs in self.block_kwargs().items():
      block = SynthesisBlock(**kwargs, name=name)
      block_ws = ws[:, w_idx:w_idx + block.num_conv + block.num_torgb]
      x, img = block(x, img, block_ws, noise_mode=noise_mode)
      w_idx += block.num_conv
    return img
