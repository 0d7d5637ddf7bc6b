"""The visualizer's frames: one jitted function of the page's controls.

Everything a slider moves (seed position, truncation, style mixing,
translation, rotation, channel, gain, FFT range) is a traced array, so
sliders never recompile; only the layer and the view (`View`) are static,
each combination compiled once and cached by `jax.jit`.
"""

import dataclasses
import threading

import jax
import jax.numpy as jnp
import numpy as np

from sg3jax import analysis
from sg3jax.networks import Generator
from sg3jax.networks import StyleGAN2Generator
from sg3jax.networks import synthesis_network

OUTPUT = "output"
MODES = ("rgb", "fft", "eq")


@dataclasses.dataclass(frozen=True)
class View:
  """What is shown (static: a new combination compiles once)."""
  layer: str = OUTPUT  # OUTPUT or a synthesis layer name ('L3_36_512')
  mode: str = "rgb"  # channels as RGB, their 2-D FFT, or the EQ error
  rotated: bool = False  # eq: error of the rotation, else the translation


@dataclasses.dataclass(frozen=True)
class Controls:
  """The page's numbers for one frame."""
  seed: float = 0.0  # between two integer seeds: their ws interpolated
  psi: float = 1.0  # truncation psi
  cutoff: int | None = None  # truncate ws [0, cutoff) (None: all)
  mix_seed: int = 0  # style mixing source
  mix_layers: tuple[int, ...] = ()  # ws indices taken from mix_seed
  class_idx: int | None = None
  translate: tuple[float, float] = (0.0, 0.0)  # fractions of the image
  rotate: float = 0.0  # degrees
  channel: int = 0  # first of the (up to) 3 channels shown
  gain_db: float = 0.0  # brightness of layer channels and EQ errors
  fft_range_db: float = 50.0  # dynamic range of the FFT view


def input_transform(translate: jax.Array, angle_deg: jax.Array
                    ) -> jax.Array:
  """`[3, 3]` input transform moving the output by `translate` and
  rotating it by `angle_deg` (traced; `analysis.input_transform`)."""
  a = jnp.deg2rad(angle_deg)
  s, c = jnp.sin(a), jnp.cos(a)
  motion = jnp.array([[c, s, translate[0]], [-s, c, translate[1]],
                      [0.0, 0.0, 1.0]])
  return jnp.linalg.inv(motion)


def _gray_to_rgb(x: jax.Array) -> jax.Array:
  return jnp.repeat(x[..., None], 3, axis=-1)


def _channels_rgb(x: jax.Array, channel: jax.Array) -> jax.Array:
  """`[H, W, C]` -> `[H, W, 3]`: channels channel.. channel+2 (clamped to
  the last three; one channel as grey)."""
  if x.shape[-1] < 3:
    return _gray_to_rgb(x[..., 0])
  start = jnp.clip(channel, 0, x.shape[-1] - 3)
  return jax.lax.dynamic_slice_in_dim(x, start, 3, axis=-1)


def _to_uint8(x: jax.Array) -> jax.Array:
  """[-1, 1] -> uint8 as gen_images.py quantizes."""
  return jnp.clip(x * 127.5 + 128, 0, 255).astype(jnp.uint8)


def _fft_image(x: jax.Array, range_db: jax.Array) -> jax.Array:
  """`[H, W, C]` -> grey `[H, W, 3]` uint8: log power of the 2-D FFT
  summed over channels, DC centred, the top `range_db` dB shown."""
  power = jnp.sum(jnp.square(jnp.abs(jnp.fft.fft2(x, axes=(0, 1)))), -1)
  db = 10 * jnp.log10(jnp.fft.fftshift(power) + 1e-20)
  level = (db - (db.max() - range_db)) / range_db
  return _gray_to_rgb(jnp.clip(level * 255, 0, 255).astype(jnp.uint8))


class Renderer:
  """Frames of one generator; `traces` counts compilations."""

  def __init__(self, module: Generator, variables: dict):
    if isinstance(module, StyleGAN2Generator) or not isinstance(
        module, Generator):
      raise ValueError("network: the visualizer needs a StyleGAN3 "
                       "Generator (its input transform moves the image), "
                       f"got a {type(module).__name__}")
    self.module = module
    self.variables = variables
    self.num_ws = synthesis_network(module).num_ws
    self.layers = analysis.layer_names(module)
    self.traces = 0
    self._lock = threading.Lock()
    self._frame = jax.jit(self._frame_fn, static_argnames=("view",))

  def _frame_fn(self, variables, z, c, psi, cutoff, frac, mix_mask,
                translate, angle, channel, gain_db, fft_range_db, *,
                view: View):
    """uint8 `[H, W, 3]`; z, c `[3, ...]` = seeds floor, floor + 1, mix."""
    self.traces += 1  # Python runs this line once per trace
    module = self.module
    ws = module.apply(variables, z, c if module.c_dim else None,
                      truncation_psi=psi, truncation_cutoff=cutoff,
                      method=module.map)
    w = ws[0] + (ws[1] - ws[0]) * frac
    ws = jnp.where(mix_mask[:, None], ws[2], w)[None]
    transform = input_transform(translate, angle)
    gain = 10 ** (gain_db / 20)
    if view.mode == "eq":
      kind, value = (("rot", jnp.deg2rad(angle)) if view.rotated
                     else ("frac", translate))
      error = analysis.equivariance_maps(module, variables, ws, kind,
                                         value)["error"][0]
      shown = jnp.clip(error * 127.5 * gain, 0, 255).astype(jnp.uint8)
      masked = jnp.array([64, 0, 0], jnp.uint8)
      return jnp.where(jnp.isnan(error)[..., None], masked,
                       _gray_to_rgb(shown))
    if view.layer == OUTPUT:
      x = analysis.synthesize(variables, ws, transform, module=module)[0]
    else:
      x = analysis.capture_layers(variables, ws, transform, module=module,
                                  layers=(view.layer,))[view.layer][0]
    if view.mode == "fft":
      return _fft_image(x, fft_range_db)
    if view.layer == OUTPUT:
      return _to_uint8(_channels_rgb(x, channel))
    rgb = _channels_rgb(x, channel)
    rgb = rgb / jnp.maximum(jnp.max(jnp.abs(rgb)), 1e-8)
    return _to_uint8(rgb * gain)

  def check(self, view: View, controls: Controls) -> None:
    """ValueError naming a control the generator cannot take."""
    if view.layer != OUTPUT and view.layer not in self.layers:
      raise ValueError(f"layer: expected {OUTPUT} or one of {self.layers}, "
                       f"got {view.layer!r}")
    if view.mode not in MODES:
      raise ValueError(f"mode: expected one of {MODES}, got {view.mode!r}")
    if view.mode == "eq" and view.layer != OUTPUT:
      raise ValueError("mode: the equivariance error is of the output "
                       "image; choose layer 'output'")
    bad = [i for i in controls.mix_layers if not 0 <= i < self.num_ws]
    if bad:
      raise ValueError(f"mix_layers: expected indices 0..{self.num_ws - 1}, "
                       f"got {bad}")

  def frame(self, view: View, controls: Controls) -> np.ndarray:
    """uint8 `[H, W, 3]` of `controls` (see `Controls`, `View`)."""
    self.check(view, controls)
    module = self.module
    low = int(np.floor(controls.seed))
    seeds = [low % 2**32, (low + 1) % 2**32, controls.mix_seed % 2**32]
    z = analysis.seed_latents(seeds, module.z_dim)
    c = analysis.class_labels(module.c_dim, 3, controls.class_idx)
    mix_mask = np.zeros(self.num_ws, bool)
    mix_mask[list(controls.mix_layers)] = True
    cutoff = self.num_ws if controls.cutoff is None else controls.cutoff
    with self._lock:
      return np.asarray(self._frame(
          self.variables, z, c, np.float32(controls.psi), np.int32(cutoff),
          np.float32(controls.seed - low), mix_mask,
          np.asarray(controls.translate, np.float32),
          np.float32(controls.rotate), np.int32(controls.channel),
          np.float32(controls.gain_db), np.float32(controls.fft_range_db),
          view=view))
