"""The StyleGAN2 ResNet discriminator that official StyleGAN3 training uses,
and the StyleGAN2 resampling convolutions that its generator shares.

Official `training/networks_stylegan2.py` semantics in NHWC/HWIO; module
and parameter names are the official ones (`b64.conv1.weight`, `b4.fc.bias`,
`mapping.fc0.weight`). The resampling filter is a NumPy constant, not a
variable.
"""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from sg3jax import ops
from sg3jax.networks.layers import FullyConnected
from sg3jax.networks.mapping import normalize_2nd_moment
from sg3jax.resolution import image_shape
from sg3jax.resolution import parse_resolution
from sg3jax.resolution import Resolution
from sg3jax.resolution import short_side

RESAMPLE_FILTER = (1, 3, 3, 1)


def _at_least_float32(dtype):
  """float32, or float64 when given float64 (x64 numerics checks)."""
  return jnp.promote_types(dtype, jnp.float32)


def resample_filter() -> np.ndarray:
  """The official `setup_filter([1, 3, 3, 1])`: `[4, 4]`, sums to 1."""
  return ops.setup_filter(RESAMPLE_FILTER)


class Conv2dLayer(nn.Module):
  """Equalized-lr conv, optional 2x blur-up/downsampling, bias_act, clamp."""
  out_channels: int
  kernel_size: int
  use_bias: bool = True
  activation: str = "linear"
  down: int = 1  # 1 or 2
  up: int = 1  # 1 or 2
  conv_clamp: float | None = None

  @nn.compact
  def __call__(self, x: jax.Array, gain: float = 1.0) -> jax.Array:
    """`[N, H, W, I]` -> `[N, H * up / down, W * up / down, out_channels]`."""
    in_channels = x.shape[-1]
    k = self.kernel_size
    weight = self.param("weight", nn.initializers.normal(1.0),
                        (k, k, in_channels, self.out_channels))
    w = (weight * (1 / np.sqrt(in_channels * k * k))).astype(x.dtype)
    if self.up == 2:
      x = conv_up2(x, w)
    elif self.down == 2:
      x = _conv_down2(x, w, k)
    else:
      x = ops.conv2d(x, w, (k // 2, k // 2))
    b = None
    if self.use_bias:
      b = self.param("bias", nn.initializers.zeros, (self.out_channels,))
      b = b.astype(x.dtype)
    act_gain = ops.bias_act_activations()[self.activation].def_gain * gain
    clamp = None if self.conv_clamp is None else self.conv_clamp * gain
    return ops.bias_act(x, b, act=self.activation, gain=act_gain, clamp=clamp)


def upsample2d(x: jax.Array) -> jax.Array:
  """The official `upfirdn2d.upsample2d` with [1, 3, 3, 1]: `[N, 2H, 2W, C]`."""
  return ops.upfirdn2d(x, resample_filter(), up=2, padding=(2, 1, 2, 1),
                       gain=4)


def conv_up2(x: jax.Array, w: jax.Array) -> jax.Array:
  """Official `conv2d_resample(up=2, padding=k // 2)`: `[N, 2H, 2W, O]`.

  A stride-2 transposed convolution (kernel `w` `[k, k, I, O]`), then the
  [1, 3, 3, 1] blur with gain 4, as the official code orders them.
  """
  k = w.shape[0]
  if k == 1:
    return ops.upfirdn2d(ops.conv2d(x, w, (0, 0)), resample_filter(), up=2,
                         padding=(2, 1, 2, 1), gain=4)
  x = jax.lax.conv_general_dilated(
      x, jnp.flip(w, (0, 1)), window_strides=(1, 1),
      padding=[(k - 1, k - 1)] * 2, lhs_dilation=(2, 2),
      dimension_numbers=("NHWC", "HWIO", "NHWC"))  # [N, 2H + k - 2, ...]
  pad = (k // 2 + 2) - (k - 1)
  pad_hi = (k // 2 + 1) - (k - 2)
  return ops.upfirdn2d(x, resample_filter(),
                       padding=(pad, pad_hi, pad, pad_hi), gain=4)


def _conv_down2(x: jax.Array, w: jax.Array, k: int) -> jax.Array:
  """Blur with [1, 3, 3, 1] and conv at stride 2 (official conv2d_resample).

  1x1: blur-downsample, then conv; kxk: blur (padded), then strided conv.
  """
  f = resample_filter()
  fw = f.shape[-1]
  pad0 = k // 2 + (fw - 2 + 1) // 2
  pad1 = k // 2 + (fw - 2) // 2
  padding = (pad0, pad1, pad0, pad1)
  if k == 1:
    return ops.conv2d(ops.upfirdn2d(x, f, down=2, padding=padding), w, (0, 0))
  x = ops.upfirdn2d(x, f, padding=padding)
  return jax.lax.conv_general_dilated(
      x, w, window_strides=(2, 2), padding="VALID",
      dimension_numbers=("NHWC", "HWIO", "NHWC"))


def minibatch_stddev(x: jax.Array, group_size: int | None,
                     num_channels: int = 1) -> jax.Array:
  """Appends the official minibatch-stddev features: `[N, H, W, C + F]`.

  Sample n is in group n mod (N / G) (the official reshape [G, n, ...]);
  channels split into F = num_channels groups. Computed within the batch
  given, i.e. per device under data parallelism, as official per GPU.
  """
  n, h, w, c = x.shape
  g = n if group_size is None else min(group_size, n)
  if n % g:
    raise ValueError(f"x: batch {n} is not a multiple of the minibatch-std "
                     f"group size {g}")
  f = num_channels
  y = x.astype(_at_least_float32(x.dtype))
  y = y.reshape(g, n // g, h, w, f, c // f)
  y = jnp.mean(jnp.square(y - jnp.mean(y, axis=0)), axis=0)  # [n/G,H,W,F,c]
  y = jnp.mean(jnp.sqrt(y + 1e-8), axis=(1, 2, 4))  # [n/G, F]
  y = jnp.tile(y, (g, 1)).astype(x.dtype)  # [N, F]
  y = jnp.broadcast_to(y[:, None, None, :], (n, h, w, f))
  return jnp.concatenate([x, y], axis=-1)


class DiscriminatorBlock(nn.Module):
  """One resolution: [fromrgb], conv0, conv1 (down 2) [+ skip (down 2)]."""
  tmp_channels: int
  out_channels: int
  first: bool  # the highest resolution: starts from the image
  architecture: str = "resnet"  # "resnet" or "orig"
  activation: str = "lrelu"
  conv_clamp: float | None = None
  dtype: jnp.dtype = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array | None, img: jax.Array) -> jax.Array:
    if self.first:
      x = Conv2dLayer(self.tmp_channels, 1, activation=self.activation,
                      conv_clamp=self.conv_clamp, name="fromrgb")(
                          img.astype(self.dtype))
    x = x.astype(self.dtype)
    if self.architecture == "resnet":
      y = Conv2dLayer(self.out_channels, 1, use_bias=False, down=2,
                      name="skip")(x, gain=np.sqrt(0.5))
      x = Conv2dLayer(self.tmp_channels, 3, activation=self.activation,
                      conv_clamp=self.conv_clamp, name="conv0")(x)
      x = Conv2dLayer(self.out_channels, 3, activation=self.activation,
                      down=2, conv_clamp=self.conv_clamp, name="conv1")(
                          x, gain=np.sqrt(0.5))
      return y + x
    x = Conv2dLayer(self.tmp_channels, 3, activation=self.activation,
                    conv_clamp=self.conv_clamp, name="conv0")(x)
    return Conv2dLayer(self.out_channels, 3, activation=self.activation,
                       down=2, conv_clamp=self.conv_clamp, name="conv1")(x)


class MappingNetwork(nn.Module):
  """The StyleGAN2 mapping network as D uses it: c -> cmap `[N, w_dim]`.

  (z_dim 0, no broadcast, no w_avg: the conditioning-label embedding.)
  """
  c_dim: int
  w_dim: int
  num_layers: int = 8
  embed_features: int | None = None
  layer_features: int | None = None
  activation: str = "lrelu"
  lr_multiplier: float = 0.01

  @nn.compact
  def __call__(self, c: jax.Array) -> jax.Array:
    embed = self.w_dim if self.embed_features is None else self.embed_features
    hidden = self.w_dim if self.layer_features is None else self.layer_features
    x = normalize_2nd_moment(FullyConnected(embed, name="embed")(
        c.astype(_at_least_float32(c.dtype))))
    for idx in range(self.num_layers):
      features = self.w_dim if idx == self.num_layers - 1 else hidden
      x = FullyConnected(features, activation=self.activation,
                         lr_multiplier=self.lr_multiplier, name=f"fc{idx}")(x)
    return x


class DiscriminatorEpilogue(nn.Module):
  """4x4: minibatch stddev, conv, fc, out, conditional projection."""
  in_channels: int
  cmap_dim: int  # 0 = unconditional
  mbstd_group_size: int | None = 4
  mbstd_num_channels: int = 1
  activation: str = "lrelu"
  conv_clamp: float | None = None

  @nn.compact
  def __call__(self, x: jax.Array, cmap: jax.Array | None) -> jax.Array:
    x = x.astype(_at_least_float32(x.dtype))
    if self.mbstd_num_channels > 0:
      x = minibatch_stddev(x, self.mbstd_group_size, self.mbstd_num_channels)
    x = Conv2dLayer(self.in_channels, 3, activation=self.activation,
                    conv_clamp=self.conv_clamp, name="conv")(x)
    # Flatten in the official NCHW order so `fc.weight` keeps its layout.
    x = x.transpose(0, 3, 1, 2).reshape(x.shape[0], -1)
    x = FullyConnected(self.in_channels, activation=self.activation,
                       name="fc")(x)
    x = FullyConnected(1 if self.cmap_dim == 0 else self.cmap_dim,
                       name="out")(x)
    if self.cmap_dim > 0:
      x = jnp.sum(x * cmap, axis=1, keepdims=True) / np.sqrt(self.cmap_dim)
    return x


class Discriminator(nn.Module):
  """images `[N, H, W, img_channels]`, c `[N, c_dim]` -> logits `[N, 1]`.

  `img_resolution` is an int (square, official) or `(H, W)`: a non-square
  D has the blocks (names, channels) of the square D of the short side S,
  each on a canvas of the image's aspect, down to a non-square epilogue
  (4 x 8 for 32x64) whose `fc` takes its C x 4 x 8 features, as the
  rectangular forks of StyleGAN2-ADA do.

  Fields and defaults are the official constructor's; `block_kwargs`,
  `mapping_kwargs` and `epilogue_kwargs` go to the blocks, the label
  mapping network and the epilogue. `mixed_precision` computes the blocks
  of the `num_fp16_res` highest resolutions in bfloat16 (the official code
  uses float16 there on CUDA); the epilogue is always float32. `remat`
  recomputes each block in the backward pass instead of keeping its
  intermediates (jax.checkpoint): less memory, one more forward.
  """
  c_dim: int
  img_resolution: Resolution
  img_channels: int
  architecture: str = "resnet"
  channel_base: int = 32768
  channel_max: int = 512
  num_fp16_res: int = 4
  conv_clamp: float | None = 256
  cmap_dim: int | None = None
  block_kwargs: dict | None = None
  mapping_kwargs: dict | None = None
  epilogue_kwargs: dict | None = None
  mixed_precision: bool = False
  remat: bool = False

  def channels(self, res: int) -> int:
    return min(self.channel_base // res, self.channel_max)

  @property
  def block_resolutions(self) -> list[int]:
    """Block names' resolutions: the short side S ... 8."""
    log2 = int(np.log2(short_side(self.img_resolution)))
    return [2 ** i for i in range(log2, 2, -1)]

  @nn.compact
  def __call__(self, img: jax.Array, c: jax.Array | None = None) -> jax.Array:
    n = img.shape[0]
    res = short_side(parse_resolution(self.img_resolution,
                                      what="img_resolution"))
    expected = (*image_shape(self.img_resolution), self.img_channels)
    if img.ndim != 4 or img.shape[1:] != expected:
      raise ValueError(f"img: expected [N, {', '.join(map(str, expected))}], "
                       f"got {img.shape}")
    if self.architecture not in ("resnet", "orig"):
      raise ValueError("architecture: expected 'resnet' or 'orig', got "
                       f"{self.architecture!r}")
    fp16_resolution = max(2 ** (int(np.log2(res)) + 1 -
                                self.num_fp16_res), 8)
    block_class = (nn.remat(DiscriminatorBlock) if self.remat
                   else DiscriminatorBlock)
    x = None
    for block_res in self.block_resolutions:
      dtype = jnp.bfloat16 if (self.mixed_precision and
                               block_res >= fp16_resolution) else (
                                   _at_least_float32(img.dtype))
      x = block_class(
          self.channels(block_res), self.channels(block_res // 2),
          first=block_res == res, architecture=self.architecture,
          conv_clamp=self.conv_clamp, dtype=dtype,
          **dict(self.block_kwargs or {}), name=f"b{block_res}")(x, img)
    cmap_dim = 0 if self.c_dim == 0 else (
        self.channels(4) if self.cmap_dim is None else self.cmap_dim)
    cmap = None
    if self.c_dim > 0:
      if c is None or c.shape != (n, self.c_dim):
        got = None if c is None else c.shape
        raise ValueError(f"c: expected [{n}, {self.c_dim}], got {got}")
      cmap = MappingNetwork(self.c_dim, cmap_dim,
                            **dict(self.mapping_kwargs or {}),
                            name="mapping")(c)
    return DiscriminatorEpilogue(
        self.channels(4), cmap_dim, conv_clamp=self.conv_clamp,
        **dict(self.epilogue_kwargs or {}), name="b4")(x, cmap)


def frozen_layer_names(D: Discriminator, freeze_layers: int) -> list[str]:
  """Official Freeze-D (`--freezed`): the first `freeze_layers` layers
  counted from the image, as "b<res>.<layer>" names.

  The official counts each block's layers from the highest resolution
  down: fromrgb (first block), conv0, conv1, skip (resnet); the epilogue
  (b4) and the label mapping are never frozen.
  """
  if not isinstance(freeze_layers, (int, np.integer)) or freeze_layers < 0:
    raise ValueError(f"freeze_layers: expected an int >= 0, got "
                     f"{freeze_layers!r}")
  layers = []
  for res in D.block_resolutions:
    names = (["fromrgb"] if res == short_side(D.img_resolution) else []) + [
        "conv0", "conv1"] + (["skip"] if D.architecture == "resnet" else [])
    layers += [f"b{res}.{name}" for name in names]
  return layers[:freeze_layers]
