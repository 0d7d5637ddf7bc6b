"""StyleGAN3 synthesis network: Fourier-feature input and alias-free layers.

Paper Sec. 3 and Appx. F; the official `networks_stylegan3.py` defines the
numbers. Layout NHWC; conv weights HWIO; FC weights `[in, out]`.

Variable collections:
* "params": trainable weights.
* "stats": moving averages updated only with `update_emas=True` and
  `mutable=["stats"]`: each layer's `magnitude_ema`.
* "buffers": fixed arrays drawn at init: the input's `freqs`, `phases` and
  the user-settable inverse `transform` (3x3) that rotates/translates the
  output (see `make_transform`).
The low-pass filters are NumPy constants designed at trace time from the
layer's static configuration, never variables.

Non-square images (`img_resolution=(H, W)`, see `sg3jax.resolution`): the
continuous signal lives on a plane whose unit is the short side S =
min(H, W); the official square network is the case H = W = S. Choices:

* Isotropic, as on a square: the frequency band (every layer's cutoff f_c,
  stopband f_t, half-width f_h), the sampling rate s (samples per unit,
  the same along both axes, so pixels stay square) and the low-pass
  filters (the same separable or radial taps along x and y). The paper's
  alias-free argument is about the band per unit length, and a rotation
  (config R, EQ-R) needs the same band in every direction, so nothing in
  the spectrum may depend on the axis.
* Per axis: only the canvas. Layer i covers S_y = s_i H / S and S_x =
  s_i W / S samples plus the same `margin_size` on every side (the margin
  absorbs the filters' transients, which do not depend on the image
  extent); the last two layers have exactly H x W samples (no margin),
  which is the crop to H x W. Paddings of `filtered_lrelu` follow from
  these sizes per axis (Appx. C.3 applied to each axis).
* The schedule (f_c, f_t, s per layer, channel counts, the fp16 layers) is
  the official one of a square network of resolution S: a 256x512
  network has the layers of a 256x256 one on a twice-wider canvas.
* The Fourier input is sampled on the non-square grid: pixel centres at
  the same spacing 1/s on both axes, centred on the origin, with the same
  frequencies (a disc of radius f_c,0) and phases.
"""

import dataclasses

import flax
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from sg3jax import filters
from sg3jax import ops
from sg3jax.networks.layers import cross_device_mean
from sg3jax.networks.layers import FullyConnected
from sg3jax.networks.mapping import lerp
from sg3jax.resolution import aspect
from sg3jax.resolution import format_resolution
from sg3jax.resolution import image_shape
from sg3jax.resolution import parse_resolution
from sg3jax.resolution import Resolution
from sg3jax.resolution import short_side


def make_transform(translate: tuple[float, float], angle_deg: float
                   ) -> np.ndarray:
  """The 3x3 rotation+translation of gen_images.py; its inverse goes into
  the input's `transform` buffer to move the generated image."""
  s, c = np.sin(np.deg2rad(angle_deg)), np.cos(np.deg2rad(angle_deg))
  return np.array([[c, s, translate[0]], [-s, c, translate[1]],
                   [0.0, 0.0, 1.0]])


@dataclasses.dataclass(frozen=True)
class Schedule:
  """Per-layer numbers of the synthesis network, index 0 = input."""
  cutoffs: np.ndarray  # f_c[i]
  stopbands: np.ndarray  # f_t[i]
  sampling_rates: np.ndarray  # s[i]
  half_widths: np.ndarray  # f_h[i]
  sizes: np.ndarray  # `[num_layers + 1, 2]`: (height, width) incl. margins
  channels: np.ndarray

  def size(self, idx: int) -> Resolution:
    """Layer `idx`'s canvas: an int if square, else `(height, width)`."""
    h, w = (int(v) for v in self.sizes[idx])
    return h if h == w else (h, w)


def synthesis_schedule(*, img_resolution: Resolution, img_channels: int,
                       channel_base: int, channel_max: int, num_layers: int,
                       num_critical: int, first_cutoff: float,
                       first_stopband: float, last_stopband_rel: float,
                       margin_size: int) -> Schedule:
  """Geometric progression of cutoffs and stopbands (paper Appx. F.1).

  The spectrum is that of a square network of the short side S; a
  non-square `(H, W)` scales each layer's canvas by (H / S, W / S) before
  the margins (see the module docstring)."""
  res = short_side(parse_resolution(img_resolution,
                                    what="img_resolution"))
  last_cutoff = res / 2
  last_stopband = last_cutoff * last_stopband_rel
  exponents = np.minimum(np.arange(num_layers + 1) /
                         (num_layers - num_critical), 1)
  cutoffs = first_cutoff * (last_cutoff / first_cutoff) ** exponents
  stopbands = first_stopband * (last_stopband / first_stopband) ** exponents
  sampling_rates = np.exp2(np.ceil(np.log2(np.minimum(stopbands * 2, res))))
  half_widths = np.maximum(stopbands, sampling_rates / 2) - cutoffs
  sizes = np.stack([sampling_rates * a + margin_size * 2
                    for a in aspect(img_resolution)], axis=1)
  sizes[-2:] = image_shape(img_resolution)
  channels = np.rint(np.minimum((channel_base / 2) / cutoffs, channel_max))
  channels[-1] = img_channels
  return Schedule(cutoffs, stopbands, sampling_rates, half_widths, sizes,
                  channels)


class SynthesisInput(nn.Module):
  """Fourier features [N, H, W, channels] rotated/translated by w."""
  w_dim: int
  channels: int
  size: Resolution  # int (square) or (H, W)
  sampling_rate: float
  bandwidth: float

  @nn.compact
  def __call__(self, w: jax.Array) -> jax.Array:
    """w `[N, w_dim]` -> `[N, H, W, channels]`."""
    # Drawn once at init (the lambdas run only when the variable is new).
    freqs = self.variable("buffers", "freqs", lambda: self._init_freqs(
        self.make_rng("params"))).value  # [C, 2] (x, y)
    phases = self.variable("buffers", "phases", lambda: self._init_phases(
        self.make_rng("params"))).value  # [C]
    user_transform = self.variable("buffers", "transform",
                                   lambda: jnp.eye(3)).value
    weight = self.param("weight", nn.initializers.normal(1.0),
                        (self.channels, self.channels))  # [in, out]

    t = FullyConnected(4, weight_init=0.0, bias_init=(1.0, 0.0, 0.0, 0.0),
                       name="affine")(w)  # (r_c, r_s, t_x, t_y)
    t = t / jnp.linalg.norm(t[:, :2], axis=1, keepdims=True)
    transforms = _learned_transform(t) @ user_transform  # [N, 3, 3]

    phases = phases + (freqs @ transforms[:, :2, 2:])[..., 0]  # [N, C]
    freqs = freqs @ transforms[:, :2, :2]  # [N, C, 2]
    # Dampen frequencies that the user transform pushed out of band.
    amplitudes = jnp.clip(1 - (jnp.linalg.norm(freqs, axis=2) - self.bandwidth)
                          / (self.sampling_rate / 2 - self.bandwidth), 0, 1)

    # Pixel centres of an align_corners=False grid, in units of 1/s, per
    # axis: the same spacing along both, each axis centred on 0.
    grid_y, grid_x = (jnp.asarray(((np.arange(n) + 0.5) / n * 2 - 1) * (
        0.5 * n / self.sampling_rate), freqs.dtype)
                      for n in image_shape(self.size))
    x = (grid_x[None, None, :, None] * freqs[:, None, None, :, 0] +
         grid_y[None, :, None, None] * freqs[:, None, None, :, 1])
    x = x + phases[:, None, None, :]
    x = jnp.sin(x * (np.pi * 2)) * amplitudes[:, None, None, :]
    return x @ (weight / np.sqrt(self.channels))

  def _init_freqs(self, key):
    """Frequencies from a uniform-ish 2-D disc of radius `bandwidth`."""
    freqs = jax.random.normal(key, (self.channels, 2))
    radii = jnp.linalg.norm(freqs, axis=1, keepdims=True)
    freqs = freqs / (radii * jnp.exp(jnp.square(radii)) ** 0.25)
    return freqs * self.bandwidth

  def _init_phases(self, key):
    return jax.random.uniform(jax.random.fold_in(key, 1),
                              (self.channels,)) - 0.5


def _learned_transform(t: jax.Array) -> jax.Array:
  """Inverse rotation then inverse translation, `[N, 3, 3]`, from t'."""
  n = t.shape[0]
  zeros, ones = jnp.zeros((n,)), jnp.ones((n,))
  rotation = jnp.stack([
      jnp.stack([t[:, 0], -t[:, 1], zeros], -1),
      jnp.stack([t[:, 1], t[:, 0], zeros], -1),
      jnp.stack([zeros, zeros, ones], -1)], 1)
  translation = jnp.stack([
      jnp.stack([ones, zeros, -t[:, 2]], -1),
      jnp.stack([zeros, ones, -t[:, 3]], -1),
      jnp.stack([zeros, zeros, ones], -1)], 1)
  return rotation @ translation


@dataclasses.dataclass(frozen=True)
class LayerGeometry:
  """Static resampling configuration of one SynthesisLayer."""
  up_factor: int
  down_factor: int
  up_taps: int
  down_taps: int
  down_radial: bool
  tmp_sampling_rate: float
  conv_kernel: int
  padding: tuple[int, int, int, int]  # (x0, x1, y0, y1)


def layer_geometry(*, is_torgb: bool, is_critically_sampled: bool,
                   in_size: Resolution, out_size: Resolution,
                   in_sampling_rate: float,
                   out_sampling_rate: float, conv_kernel: int,
                   filter_size: int, lrelu_upsampling: int,
                   use_radial_filters: bool) -> LayerGeometry:
  """Up/down factors, filter lengths and padding (paper Appx. C.3, F);
  sizes are an int (square) or (height, width), padded per axis."""
  tmp_rate = max(in_sampling_rate, out_sampling_rate) * (
      1 if is_torgb else lrelu_upsampling)
  up = int(np.rint(tmp_rate / in_sampling_rate))
  down = int(np.rint(tmp_rate / out_sampling_rate))
  if in_sampling_rate * up != tmp_rate or out_sampling_rate * down != tmp_rate:
    raise ValueError(f"sampling rates {in_sampling_rate} -> "
                     f"{out_sampling_rate} are not integer ratios of "
                     f"{tmp_rate}")
  kernel = 1 if is_torgb else conv_kernel
  up_taps = filter_size * up if up > 1 and not is_torgb else 1
  down_taps = filter_size * down if down > 1 and not is_torgb else 1
  padding = []
  for n_in, n_out in zip(image_shape(in_size)[::-1],
                         image_shape(out_size)[::-1]):  # x, then y
    pad_total = (n_out - 1) * down + 1
    pad_total -= (n_in + kernel - 1) * up
    pad_total += up_taps + down_taps - 2
    pad_lo = (pad_total + up) // 2  # symmetric interpretation (Appx. C.3)
    padding += [int(pad_lo), int(pad_total - pad_lo)]
  return LayerGeometry(up, down, up_taps, down_taps,
                       use_radial_filters and not is_critically_sampled,
                       tmp_rate, kernel, tuple(padding))


class SynthesisLayer(nn.Module):
  """Modulated conv -> filtered leaky ReLU (or the final ToRGB layer)."""
  w_dim: int
  is_torgb: bool
  is_critically_sampled: bool
  use_fp16: bool  # among the num_fp16_res highest resolutions
  in_channels: int
  out_channels: int
  in_size: Resolution  # int (square) or (height, width)
  out_size: Resolution
  in_sampling_rate: float  # s
  out_sampling_rate: float
  in_cutoff: float  # f_c
  out_cutoff: float
  in_half_width: float  # f_h
  out_half_width: float
  conv_kernel: int = 3
  filter_size: int = 6
  lrelu_upsampling: int = 2
  use_radial_filters: bool = False
  conv_clamp: float | None = 256
  magnitude_ema_beta: float = 0.999
  filter_design: str = "kaiser"
  filtered_lrelu_impl: str = "auto"
  mixed_precision: bool = False  # bf16 compute when use_fp16
  stats_axis_name: str | None = None  # mesh axis of the batch statistics

  @property
  def geometry(self) -> LayerGeometry:
    return layer_geometry(
        is_torgb=self.is_torgb,
        is_critically_sampled=self.is_critically_sampled,
        in_size=self.in_size, out_size=self.out_size,
        in_sampling_rate=self.in_sampling_rate,
        out_sampling_rate=self.out_sampling_rate,
        conv_kernel=self.conv_kernel, filter_size=self.filter_size,
        lrelu_upsampling=self.lrelu_upsampling,
        use_radial_filters=self.use_radial_filters)

  def lowpass_filters(self) -> tuple[np.ndarray | None, np.ndarray | None]:
    """(up_filter, down_filter) as the official buffers (None = identity)."""
    g = self.geometry
    up = filters.design_lowpass_filter(
        g.up_taps, self.in_cutoff, self.in_half_width * 2,
        g.tmp_sampling_rate, design=self.filter_design)
    down = filters.design_lowpass_filter(
        g.down_taps, self.out_cutoff, self.out_half_width * 2,
        g.tmp_sampling_rate, radial=g.down_radial, design=self.filter_design)
    return up, down

  def lowpass_filters_jnp(self, cutoff_scale: jax.typing.ArrayLike
                          ) -> tuple[jax.Array | None, jax.Array | None]:
    """`lowpass_filters` from the jnp design, both cutoffs f_c times the
    traced `cutoff_scale` (widths 2 f_h kept): differentiable w.r.t. it."""
    g = self.geometry
    up = filters.design_lowpass_filter_jnp(
        g.up_taps, self.in_cutoff * cutoff_scale, self.in_half_width * 2,
        g.tmp_sampling_rate, design=self.filter_design)
    down = filters.design_lowpass_filter_jnp(
        g.down_taps, self.out_cutoff * cutoff_scale, self.out_half_width * 2,
        g.tmp_sampling_rate, radial=g.down_radial, design=self.filter_design)
    return up, down

  @nn.compact
  def __call__(self, x: jax.Array, w: jax.Array, update_emas: bool = False,
               cutoff_scale: jax.typing.ArrayLike | None = None
               ) -> jax.Array:
    """x `[N, in_h, in_w, in_channels]`, w `[N, w_dim]` ->
    `[N, out_h, out_w, out_channels]` (`in_size` = (in_h, in_w), ...). A `cutoff_scale` (scalar, may
    be traced) designs the filters with `lowpass_filters_jnp`; None keeps
    the NumPy constants of `lowpass_filters`."""
    g = self.geometry
    magnitude_ema = self.variable("stats", "magnitude_ema", jnp.ones, ())
    if update_emas and self.is_mutable_collection("stats"):
      magnitude = cross_device_mean(jnp.mean(jnp.square(
          jax.lax.stop_gradient(x).astype(jnp.float32))), self.stats_axis_name)
      magnitude_ema.value = lerp(magnitude, magnitude_ema.value,
                                 self.magnitude_ema_beta)
    input_gain = jax.lax.rsqrt(magnitude_ema.value)

    styles = FullyConnected(self.in_channels, bias_init=1.0, name="affine")(w)
    if self.is_torgb:
      styles = styles / np.sqrt(self.in_channels * g.conv_kernel ** 2)
    weight = self.param(
        "weight", nn.initializers.normal(1.0),
        (g.conv_kernel, g.conv_kernel, self.in_channels, self.out_channels))
    bias = self.param("bias", nn.initializers.zeros, (self.out_channels,))

    dtype = jnp.bfloat16 if (self.mixed_precision and self.use_fp16) else (
        jnp.promote_types(x.dtype, jnp.float32))
    x = ops.modulated_conv2d(x.astype(dtype), weight, styles,
                             demodulate=not self.is_torgb,
                             padding=g.conv_kernel - 1, input_gain=input_gain)
    if cutoff_scale is None:
      up_filter, down_filter = self.lowpass_filters()
    else:
      up_filter, down_filter = self.lowpass_filters_jnp(cutoff_scale)
    return ops.filtered_lrelu(x, b=bias.astype(dtype),
                              **self.filtered_lrelu_args(up_filter,
                                                         down_filter))

  def filtered_lrelu_args(self, up_filter, down_filter) -> dict:
    """The layer's `ops.filtered_lrelu` arguments but x and b."""
    g = self.geometry
    return dict(fu=up_filter, fd=down_filter, up=g.up_factor,
                down=g.down_factor, padding=g.padding,
                gain=1.0 if self.is_torgb else np.sqrt(2),
                slope=1.0 if self.is_torgb else 0.2, clamp=self.conv_clamp,
                impl=self.filtered_lrelu_impl)

  def filtered_lrelu_input(self, batch: int) -> jax.ShapeDtypeStruct:
    """Shape and dtype of the layer's filtered_lrelu input (the modulated
    conv's output) for a batch of `batch`."""
    h, w = (n + self.geometry.conv_kernel - 1
            for n in image_shape(self.in_size))
    dtype = (jnp.bfloat16 if self.mixed_precision and self.use_fp16
             else jnp.float32)
    return jax.ShapeDtypeStruct((batch, h, w, self.out_channels), dtype)


# update_emas is static: argument 3, counting the module.
_RematSynthesisLayer = nn.remat(SynthesisLayer, static_argnums=(3,))


def _run_layers(network: "SynthesisNetwork", x: jax.Array, ws: jax.Array,
                layers: tuple[tuple[int, str, flax.core.FrozenDict], ...],
                update_emas: bool, cutoff_scale) -> jax.Array:
  """`layers` ((index, name, `SynthesisLayer` fields), consecutive) of
  `network` on x `[N, H, W, C]`, ws `[N, num_ws, w_dim]`; with the
  network's `remat`, each layer is recomputed in the backward pass."""
  layer_class = _RematSynthesisLayer if network.remat else SynthesisLayer
  for idx, name, kwargs in layers:
    x = layer_class(**kwargs, name=name, parent=network)(
        x, ws[:, idx + 1], update_emas, cutoff_scale)
  return x


# The group's input is all its backward keeps: the group runs forward again
# in the backward pass (each layer recomputed on its own inside). layers and
# update_emas are static: arguments 3 and 4, counting the network.
_remat_run_layers = nn.remat(_run_layers, static_argnums=(3, 4))


class SynthesisNetwork(nn.Module):
  """ws `[N, num_ws, w_dim]` -> images `[N, H, W, img_channels]`.

  `img_resolution` is an int (square, official) or `(H, W)` (see the module
  docstring for what a non-square network keeps isotropic). Every layer's output is the `__call__` entry of its submodule in the
  "intermediates" collection when applied with `capture_intermediates=True`.
  """
  w_dim: int
  img_resolution: Resolution
  img_channels: int
  channel_base: int = 32768
  channel_max: int = 512
  num_layers: int = 14  # excluding the input and ToRGB
  num_critical: int = 2  # critically sampled layers at the end
  first_cutoff: float = 2  # f_{c,0}
  first_stopband: float = 2 ** 2.1  # f_{t,0}
  last_stopband_rel: float = 2 ** 0.3  # f_{t,N} / f_{c,N}
  margin_size: int = 10
  output_scale: float = 0.25
  num_fp16_res: int = 4
  conv_kernel: int = 3
  filter_size: int = 6
  lrelu_upsampling: int = 2
  use_radial_filters: bool = False
  conv_clamp: float | None = 256
  magnitude_ema_beta: float = 0.999
  filter_design: str = "kaiser"
  filtered_lrelu_impl: str = "auto"
  mixed_precision: bool = False
  # Recompute each layer in the backward pass instead of keeping its
  # intermediates (jax.checkpoint): less memory, one more forward.
  remat: bool = False
  # With remat, G's backward keeps only the input of every group of this
  # many consecutive layers, not of every layer, and runs each group's
  # forward once more (each layer is still recomputed on its own inside).
  remat_group_size: int = 1
  # Inside shard_map: the mesh axis over which the magnitude EMAs average
  # their batch statistics (the global batch's, whatever the device count).
  stats_axis_name: str | None = None

  @property
  def num_ws(self) -> int:
    return self.num_layers + 2

  @property
  def schedule(self) -> Schedule:
    return synthesis_schedule(
        img_resolution=self.img_resolution, img_channels=self.img_channels,
        channel_base=self.channel_base, channel_max=self.channel_max,
        num_layers=self.num_layers, num_critical=self.num_critical,
        first_cutoff=self.first_cutoff, first_stopband=self.first_stopband,
        last_stopband_rel=self.last_stopband_rel,
        margin_size=self.margin_size)

  @property
  def layer_names(self) -> list[str]:
    s = self.schedule
    return [f"L{i}_{format_resolution(s.size(i))}_{int(s.channels[i])}"
            for i in range(self.num_layers + 1)]

  def layer_kwargs(self) -> dict[str, dict]:
    """{official layer name: SynthesisLayer fields}, input to ToRGB order."""
    s = self.schedule
    layers = {}
    for idx, name in enumerate(self.layer_names):
      prev = max(idx - 1, 0)
      layers[name] = dict(
          w_dim=self.w_dim, is_torgb=idx == self.num_layers,
          is_critically_sampled=idx >= self.num_layers - self.num_critical,
          use_fp16=bool(s.sampling_rates[idx] * 2 ** self.num_fp16_res >
                        short_side(self.img_resolution)),
          in_channels=int(s.channels[prev]), out_channels=int(s.channels[idx]),
          in_size=s.size(prev), out_size=s.size(idx),
          in_sampling_rate=int(s.sampling_rates[prev]),
          out_sampling_rate=int(s.sampling_rates[idx]),
          in_cutoff=float(s.cutoffs[prev]), out_cutoff=float(s.cutoffs[idx]),
          in_half_width=float(s.half_widths[prev]),
          out_half_width=float(s.half_widths[idx]),
          conv_kernel=self.conv_kernel, filter_size=self.filter_size,
          lrelu_upsampling=self.lrelu_upsampling,
          use_radial_filters=self.use_radial_filters,
          conv_clamp=self.conv_clamp,
          magnitude_ema_beta=self.magnitude_ema_beta,
          filter_design=self.filter_design,
          filtered_lrelu_impl=self.filtered_lrelu_impl,
          mixed_precision=self.mixed_precision,
          stats_axis_name=self.stats_axis_name)
    return layers

  def filtered_lrelu_calls(self, batch: int
                           ) -> dict[str, tuple[jax.ShapeDtypeStruct, dict]]:
    """{layer name: (input, `ops.filtered_lrelu` args but x and b)} of the
    layers that filter (not ToRGB), for a batch of `batch`: the real
    shapes, for benchmarks and lowering tests."""
    calls = {}
    for name, kwargs in self.layer_kwargs().items():
      if kwargs["is_torgb"]:
        continue
      layer = SynthesisLayer(**kwargs, parent=None)
      calls[name] = (layer.filtered_lrelu_input(batch),
                     layer.filtered_lrelu_args(*layer.lowpass_filters()))
    return calls

  @nn.compact
  def __call__(self, ws: jax.Array, *, update_emas: bool = False,
               cutoff_scale: jax.typing.ArrayLike | None = None
               ) -> jax.Array:
    """`cutoff_scale`: see `SynthesisLayer.__call__` (every layer)."""
    if ws.ndim != 3 or ws.shape[1:] != (self.num_ws, self.w_dim):
      raise ValueError(f"ws: expected [N, {self.num_ws}, {self.w_dim}], got "
                       f"{ws.shape}")
    if self.remat_group_size < 1:
      raise ValueError(f"remat_group_size: expected >= 1, got "
                       f"{self.remat_group_size}")
    s = self.schedule
    dtype = jnp.promote_types(ws.dtype, jnp.float32)
    ws = ws.astype(dtype)
    x = SynthesisInput(self.w_dim, int(s.channels[0]), s.size(0),
                       float(s.sampling_rates[0]), float(s.cutoffs[0]),
                       name="input")(ws[:, 0])
    layers = tuple((idx, name, flax.core.FrozenDict(kwargs)) for idx, (
        name, kwargs) in enumerate(self.layer_kwargs().items()))
    size = self.remat_group_size if self.remat else len(layers)
    run = _remat_run_layers if self.remat and size > 1 else _run_layers
    for start in range(0, len(layers), size):
      x = run(self, x, ws, layers[start:start + size], update_emas,
              cutoff_scale)
    if self.output_scale != 1:
      x = x * self.output_scale
    return x.astype(dtype)
