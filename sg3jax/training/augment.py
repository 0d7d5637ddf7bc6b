"""ADA: the adaptive discriminator augmentation pipeline (official
`training/augment.py`, "Training Generative Adversarial Networks with
Limited Data", Karras et al. 2020), as pure functions on NHWC images.

Split in two so that the randomness is explicit:
* `draw(key, spec, images.shape)` draws every random number the official
  pipeline draws, in its order, as a dict of named arrays;
* `augment(images, draws, spec, p)` is deterministic and differentiable in
  the images (R1 differentiates through it) and in `p` only through the
  probability gates (not at all).
Each transform is applied with probability (multiplier * p); `p` may be
traced, so one compiled step serves every ADA strength.

Geometric transforms run at static shapes: the official code reflect-pads
by a margin computed from the batch's transforms; here the images are
reflect-padded by the largest margin (size - 1) and everything past the
batch's margin is zeroed, which is what the official upsampling and
grid_sample see beyond their smaller canvas. The cost is that canvas: 3x
the image per side before the 2x upsampling.
"""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np

from sg3jax import ops
from sg3jax.ops import grid_sample

# Orthogonal wavelets (Daubechies / symlet filter taps).
SYM2 = (-0.12940952255092145, 0.22414386804185735, 0.836516303737469,
        0.48296291314469025)
SYM6 = (0.015404109327027373, 0.0034907120842174702, -0.11799011114819057,
        -0.048311742585633, 0.4910559419267466, 0.787641141030194,
        0.3379294217276218, -0.07263752278646252, -0.021060292512300564,
        0.04472490177066578, 0.0017677118642428036, -0.007800708325034148)


@dataclasses.dataclass(frozen=True)
class AugmentSpec:
  """Probability multipliers and ranges (official AugmentPipe kwargs)."""
  xflip: float = 0
  rotate90: float = 0
  xint: float = 0
  xint_max: float = 0.125
  scale: float = 0
  rotate: float = 0
  aniso: float = 0
  xfrac: float = 0
  scale_std: float = 0.2
  rotate_max: float = 1
  aniso_std: float = 0.2
  xfrac_std: float = 0.125
  brightness: float = 0
  contrast: float = 0
  lumaflip: float = 0
  hue: float = 0
  saturation: float = 0
  brightness_std: float = 0.2
  contrast_std: float = 0.5
  hue_max: float = 1
  saturation_std: float = 1
  imgfilter: float = 0
  imgfilter_bands: tuple[float, ...] = (1, 1, 1, 1)
  imgfilter_std: float = 1
  noise: float = 0
  cutout: float = 0
  noise_std: float = 0.1
  cutout_size: float = 0.5

  @property
  def geometric(self) -> bool:
    return any(getattr(self, k) > 0 for k in (
        "xflip", "rotate90", "xint", "scale", "rotate", "aniso", "xfrac"))

  @property
  def color(self) -> bool:
    return any(getattr(self, k) > 0 for k in (
        "brightness", "contrast", "lumaflip", "hue", "saturation"))


_BLIT = dict(xflip=1, rotate90=1, xint=1)
_GEOM = dict(scale=1, rotate=1, aniso=1, xfrac=1)
_COLOR = dict(brightness=1, contrast=1, lumaflip=1, hue=1, saturation=1)
# The official named pipelines (StyleGAN2-ADA `--augpipe`; StyleGAN3's
# train.py always uses "bgc").
PIPELINES = {
    "blit": _BLIT, "geom": _GEOM, "color": _COLOR,
    "filter": dict(imgfilter=1), "noise": dict(noise=1),
    "cutout": dict(cutout=1),
    "bg": {**_BLIT, **_GEOM},
    "bgc": {**_BLIT, **_GEOM, **_COLOR},
    "bgcf": {**_BLIT, **_GEOM, **_COLOR, "imgfilter": 1},
    "bgcfn": {**_BLIT, **_GEOM, **_COLOR, "imgfilter": 1, "noise": 1},
    "bgcfnc": {**_BLIT, **_GEOM, **_COLOR, "imgfilter": 1, "noise": 1,
               "cutout": 1},
}


def pipeline(name: str) -> AugmentSpec:
  """The AugmentSpec of an official pipeline name ("bgc", ...)."""
  if name not in PIPELINES:
    raise ValueError(f"augment pipeline: expected one of {sorted(PIPELINES)}, "
                     f"got {name!r}")
  return AugmentSpec(**PIPELINES[name])


def draw_order(spec: AugmentSpec, image_shape: tuple[int, ...]
               ) -> list[tuple[str, str, tuple[int, ...]]]:
  """(name, "uniform" | "normal", shape) of every random array the
  official pipeline draws for images `[N, H, W, C]`, in its order."""
  n, h, w, c = image_shape
  order = []

  def add(name, kind, shape, gate_shape=None):
    order.append((name, kind, shape))
    order.append((name + "_gate", "uniform", gate_shape or shape))

  if spec.xflip > 0:
    add("xflip", "uniform", (n,))
  if spec.rotate90 > 0:
    add("rotate90", "uniform", (n,))
  if spec.xint > 0:
    add("xint", "uniform", (n, 2), (n, 1))
  if spec.scale > 0:
    add("scale", "normal", (n,))
  if spec.rotate > 0:
    add("rotate_pre", "uniform", (n,))
  if spec.aniso > 0:
    add("aniso", "normal", (n,))
  if spec.rotate > 0:
    add("rotate_post", "uniform", (n,))
  if spec.xfrac > 0:
    add("xfrac", "normal", (n, 2), (n, 1))
  if spec.brightness > 0:
    add("brightness", "normal", (n,))
  if spec.contrast > 0:
    add("contrast", "normal", (n,))
  if spec.lumaflip > 0:
    add("lumaflip", "uniform", (n,))
  if spec.hue > 0 and c > 1:
    add("hue", "uniform", (n,))
  if spec.saturation > 0 and c > 1:
    add("saturation", "normal", (n,))
  if spec.imgfilter > 0:
    for band in range(len(spec.imgfilter_bands)):
      add(f"imgfilter{band}", "normal", (n,))
  if spec.noise > 0:
    add("noise_sigma", "normal", (n,))
    order.append(("noise", "normal", (n, h, w, c)))
  if spec.cutout > 0:
    order.append(("cutout_gate", "uniform", (n,)))
    order.append(("cutout_center", "uniform", (n, 2)))
  return order


def draw(key: jax.Array, spec: AugmentSpec, image_shape: tuple[int, ...]
         ) -> dict[str, jax.Array]:
  """Fresh random numbers for `augment` (see `draw_order`)."""
  draws = {}
  for i, (name, kind, shape) in enumerate(draw_order(spec, image_shape)):
    sample = jax.random.uniform if kind == "uniform" else jax.random.normal
    draws[name] = sample(jax.random.fold_in(key, i), shape)
  return draws


# ---- 2-D and 3-D homogeneous matrices, batched `[N, k, k]` ----

def _matrix(rows, n: int) -> jax.Array:
  """A batch of matrices from rows of scalars or `[N]` arrays."""
  return jnp.stack([jnp.stack([jnp.broadcast_to(jnp.asarray(
      v, jnp.float32), (n,)) for v in row], -1) for row in rows], -2)


def _translate2d(tx, ty, n):
  return _matrix([[1, 0, tx], [0, 1, ty], [0, 0, 1]], n)


def _scale2d(sx, sy, n):
  return _matrix([[sx, 0, 0], [0, sy, 0], [0, 0, 1]], n)


def _rotate2d(theta, n):
  return _matrix([[jnp.cos(theta), jnp.sin(-theta), 0],
                  [jnp.sin(theta), jnp.cos(theta), 0], [0, 0, 1]], n)


def _translate3d(t, n):
  return _matrix([[1, 0, 0, t], [0, 1, 0, t], [0, 0, 1, t], [0, 0, 0, 1]], n)


def _scale3d(s, n):
  return _matrix([[s, 0, 0, 0], [0, s, 0, 0], [0, 0, s, 0], [0, 0, 0, 1]], n)


def _rotate3d(v, theta, n):
  vx, vy, vz = v[0], v[1], v[2]
  s, c = jnp.sin(theta), jnp.cos(theta)
  cc = 1 - c
  return _matrix([
      [vx * vx * cc + c, vx * vy * cc - vz * s, vx * vz * cc + vy * s, 0],
      [vy * vx * cc + vz * s, vy * vy * cc + c, vy * vz * cc - vx * s, 0],
      [vz * vx * cc - vy * s, vz * vy * cc + vx * s, vz * vz * cc + c, 0],
      [0, 0, 0, 1]], n)


def _gate(draws, name, probability, value, identity):
  """value where the gate draw < probability, else identity."""
  gate = draws[name + "_gate"]
  return jnp.where(gate < probability, value, identity)


def geometric_transform(draws: dict, spec: AugmentSpec, p, width: int,
                        height: int, n: int) -> jax.Array:
  """G_inv `[N, 3, 3]`: output pixel -> input pixel (centred coordinates)."""
  g = jnp.broadcast_to(jnp.eye(3), (n, 3, 3))
  if spec.xflip > 0:
    i = _gate(draws, "xflip", spec.xflip * p, jnp.floor(draws["xflip"] * 2),
              0.0)
    g = g @ _scale2d(1 / (1 - 2 * i), 1, n)
  if spec.rotate90 > 0:
    i = _gate(draws, "rotate90", spec.rotate90 * p,
              jnp.floor(draws["rotate90"] * 4), 0.0)
    g = g @ _rotate2d(np.pi / 2 * i, n)
  if spec.xint > 0:
    t = _gate(draws, "xint", spec.xint * p,
              (draws["xint"] * 2 - 1) * spec.xint_max, 0.0)
    g = g @ _translate2d(-jnp.round(t[:, 0] * width),
                         -jnp.round(t[:, 1] * height), n)
  if spec.scale > 0:
    s = _gate(draws, "scale", spec.scale * p,
              jnp.exp2(draws["scale"] * spec.scale_std), 1.0)
    g = g @ _scale2d(1 / s, 1 / s, n)
  p_rot = 1 - jnp.sqrt(jnp.clip(1 - spec.rotate * p, 0, 1))
  if spec.rotate > 0:
    theta = _gate(draws, "rotate_pre", p_rot, (draws["rotate_pre"] * 2 - 1)
                  * np.pi * spec.rotate_max, 0.0)
    g = g @ _rotate2d(theta, n)
  if spec.aniso > 0:
    s = _gate(draws, "aniso", spec.aniso * p,
              jnp.exp2(draws["aniso"] * spec.aniso_std), 1.0)
    g = g @ _scale2d(1 / s, s, n)
  if spec.rotate > 0:
    theta = _gate(draws, "rotate_post", p_rot, (draws["rotate_post"] * 2 - 1)
                  * np.pi * spec.rotate_max, 0.0)
    g = g @ _rotate2d(theta, n)
  if spec.xfrac > 0:
    t = _gate(draws, "xfrac", spec.xfrac * p,
              draws["xfrac"] * spec.xfrac_std, 0.0)
    g = g @ _translate2d(-t[:, 0] * width, -t[:, 1] * height, n)
  return g


def _geometric(images: jax.Array, g_inv: jax.Array) -> jax.Array:
  """Applies G_inv `[N, 3, 3]` to `[N, H, W, C]` (official pixel blitting
  and general geometric transformations, see the module docstring).

  The batch's margin comes first; then one channel of one image at a time
  (`lax.map` over images, then channels), so that one plane's canvas is
  live, not the batch's (at 512² a plane's canvas is 3068² floats, 36 MiB,
  and its gradient needs several). Canvases are `[1, 1, H, W]`: W is their
  minor axis, which TPUs tile by 128 lanes (with C = 3 minor, a canvas
  would take 42x its size there).
  """
  n, h, w, _ = images.shape
  hz = ops.setup_filter(np.asarray(SYM6, np.float32))
  hz_pad = len(SYM6) // 4
  # The official batch margin (x0, y0, x1, y1), from the transformed corners.
  cx, cy = (w - 1) / 2, (h - 1) / 2
  corners = jnp.asarray([[-cx, -cy, 1], [cx, -cy, 1], [cx, cy, 1],
                         [-cx, cy, 1]], jnp.float32)
  cp = g_inv @ corners.T  # [N, 3, 4]
  xy = cp[:, :2, :].transpose(1, 0, 2).reshape(2, -1)
  margin = jnp.max(jnp.concatenate([-xy, xy]), axis=1)
  margin = margin + jnp.asarray([hz_pad * 2 - cx, hz_pad * 2 - cy] * 2)
  margin = jnp.clip(margin, 0, jnp.asarray([w - 1, h - 1] * 2, jnp.float32))
  mx0, my0, mx1, my1 = jnp.ceil(margin).astype(jnp.int32)
  # Reflect-padding by the largest margin keeps these pixels: the batch's.
  cols = jnp.arange(3 * w - 2) - (w - 1)
  rows = jnp.arange(3 * h - 2) - (h - 1)
  keep = (((cols >= -mx0) & (cols < w + mx1))[None, :] &
          ((rows >= -my0) & (rows < h + my1))[:, None]).astype(images.dtype)

  # Output pixel -> upsampled-canvas pixel, as the official chain of
  # scale/translate matrices and affine_grid/grid_sample normalizations.
  hu, wu = 2 * (3 * h - 2), 2 * (3 * w - 2)  # the upsampled canvas
  g = _scale2d(2, 2, n) @ g_inv @ _scale2d(0.5, 0.5, n)
  g = _translate2d(-0.5, -0.5, n) @ g @ _translate2d(0.5, 0.5, n)
  ho, wo = (h + hz_pad * 2) * 2, (w + hz_pad * 2) * 2
  theta = _scale2d(2 / wu, 2 / hu, n) @ g @ _scale2d(wo / 2, ho / 2, n)
  base_x = grid_sample.affine_grid_base(wo)
  base_y = grid_sample.affine_grid_base(ho)

  def coordinate(row):  # theta[:, row] applied to the base grid: [N, Ho, Wo]
    return (grid_sample.rounded(base_x[None, None, :] * theta[:, row, 0,
                                                              None, None])
            + grid_sample.rounded(base_y[None, :, None] *
                                  theta[:, row, 1, None, None])
            + theta[:, row, 2, None, None])

  px = grid_sample.unnormalize(coordinate(0), wu)
  py = grid_sample.unnormalize(coordinate(1), hu)

  def transform_plane(plane, plane_px, plane_py):
    """One channel `[H, W]` sampled at px, py `[Ho, Wo]`."""
    planes = jnp.pad(plane[None, None], ((0, 0), (0, 0), (h - 1, h - 1),
                                         (w - 1, w - 1)), mode="reflect")
    planes = planes * keep
    planes = ops.upfirdn2d(
        planes, hz, up=2,
        padding=((len(SYM6) + 1) // 2, (len(SYM6) - 2) // 2) * 2, gain=4,
        spatial_axes=(2, 3))
    planes = grid_sample.bilinear_sample_planes(planes, plane_px[None],
                                                plane_py[None])
    planes = ops.upfirdn2d(planes, hz, down=2,
                           padding=-hz_pad * 2 + (len(SYM6) - 1) // 2,
                           flip_filter=True, spatial_axes=(2, 3))
    return planes[0, 0]

  def transform(args):
    """One image `[H, W, C]`, channel by channel."""
    image, image_px, image_py = args
    out = jax.lax.map(lambda plane: transform_plane(plane, image_px,
                                                    image_py),
                      image.transpose(2, 0, 1))
    return out.transpose(1, 2, 0)

  return jax.lax.map(transform, (images, px, py))


_LUMA = np.asarray([1, 1, 1, 0], np.float32) / np.sqrt(3)


def color_transform(draws: dict, spec: AugmentSpec, p, n: int,
                    num_channels: int) -> jax.Array:
  """C `[N, 4, 4]`: homogeneous RGB -> RGB."""
  eye = jnp.eye(4)
  vv = jnp.outer(_LUMA, _LUMA)
  color = jnp.broadcast_to(eye, (n, 4, 4))
  if spec.brightness > 0:
    b = _gate(draws, "brightness", spec.brightness * p,
              draws["brightness"] * spec.brightness_std, 0.0)
    color = _translate3d(b, n) @ color
  if spec.contrast > 0:
    s = _gate(draws, "contrast", spec.contrast * p,
              jnp.exp2(draws["contrast"] * spec.contrast_std), 1.0)
    color = _scale3d(s, n) @ color
  if spec.lumaflip > 0:
    i = _gate(draws, "lumaflip", spec.lumaflip * p,
              jnp.floor(draws["lumaflip"] * 2), 0.0)
    color = (eye - 2 * vv * i[:, None, None]) @ color
  if spec.hue > 0 and num_channels > 1:
    theta = _gate(draws, "hue", spec.hue * p,
                  (draws["hue"] * 2 - 1) * np.pi * spec.hue_max, 0.0)
    color = _rotate3d(_LUMA, theta, n) @ color
  if spec.saturation > 0 and num_channels > 1:
    s = _gate(draws, "saturation", spec.saturation * p,
              jnp.exp2(draws["saturation"] * spec.saturation_std), 1.0)
    color = (vv + (eye - vv) * s[:, None, None]) @ color
  return color


def _apply_color(images: jax.Array, color: jax.Array) -> jax.Array:
  n, h, w, c = images.shape
  flat = images.reshape(n, h * w, c)
  if c == 3:
    flat = flat @ jnp.swapaxes(color[:, :3, :3], 1, 2) + color[:, None, :3, 3]
  elif c == 1:
    mean = jnp.mean(color[:, :3, :], axis=1)  # [N, 4]
    flat = flat * jnp.sum(mean[:, :3], axis=1)[:, None, None] + (
        mean[:, None, 3:])
  else:
    raise ValueError(f"augment: color transforms need 1 or 3 channels, got "
                     f"{c}")
  return flat.reshape(n, h, w, c)


def filter_bank() -> np.ndarray:
  """The official imgfilter bank `[4, taps]`: four octave bands built from
  the sym2 wavelet."""
  lo = np.asarray(SYM2)
  hi = lo * (-1) ** np.arange(lo.size)
  lo2 = np.convolve(lo, lo[::-1]) / 2
  hi2 = np.convolve(hi, hi[::-1]) / 2
  bank = np.eye(4, 1)
  for i in range(1, bank.shape[0]):
    bank = np.dstack([bank, np.zeros_like(bank)]).reshape(bank.shape[0],
                                                          -1)[:, :-1]
    bank = np.stack([np.convolve(row, lo2) for row in bank])
    start = (bank.shape[1] - hi2.size) // 2
    bank[i, start:start + hi2.size] += hi2
  return bank.astype(np.float32)


def _image_filter(images: jax.Array, draws: dict, spec: AugmentSpec, p
                  ) -> jax.Array:
  n = images.shape[0]
  bank = filter_bank()
  num_bands = bank.shape[0]
  if len(spec.imgfilter_bands) != num_bands:
    raise ValueError(f"imgfilter_bands: expected {num_bands} values, got "
                     f"{spec.imgfilter_bands}")
  expected_power = jnp.asarray([10, 1, 1, 1], jnp.float32) / 13
  gains = jnp.ones((n, num_bands))
  for i, band_strength in enumerate(spec.imgfilter_bands):
    t_i = _gate(draws, f"imgfilter{i}", spec.imgfilter * p * band_strength,
                jnp.exp2(draws[f"imgfilter{i}"] * spec.imgfilter_std), 1.0)
    t = jnp.ones((n, num_bands)).at[:, i].set(t_i)
    t = t / jnp.sqrt(jnp.sum(expected_power * jnp.square(t), axis=-1,
                             keepdims=True))
    gains = gains * t
  taps = gains @ bank  # [N, K]
  k = taps.shape[1]
  pad = k // 2
  _, h, w, _ = images.shape
  x = jnp.pad(images, ((0, 0), (pad, pad), (pad, pad), (0, 0)),
              mode="reflect")
  x = sum(x[:, :, j:j + w, :] * taps[:, j, None, None, None]
          for j in range(k))  # along W
  return sum(x[:, j:j + h, :, :] * taps[:, j, None, None, None]
             for j in range(k))  # along H


def augment(images: jax.Array, draws: dict[str, jax.Array],
            spec: AugmentSpec, p: jax.typing.ArrayLike) -> jax.Array:
  """The official AugmentPipe forward on `[N, H, W, C]` images.

  Args:
    images: NHWC, usually in [-1, 1]; C is 1 or 3 for color transforms.
    draws: `draw(key, spec, images.shape)` (or recorded official draws).
    spec: which transforms, their multipliers and ranges.
    p: the augmentation strength in [0, 1] (may be traced).

  Returns:
    Augmented images, same shape.
  """
  n, h, w, c = images.shape
  p = jnp.asarray(p, jnp.float32)
  if spec.geometric:
    images = _geometric(images, geometric_transform(draws, spec, p, w, h, n))
  if spec.color:
    images = _apply_color(images, color_transform(draws, spec, p, n, c))
  if spec.imgfilter > 0:
    images = _image_filter(images, draws, spec, p)
  if spec.noise > 0:
    sigma = _gate(draws, "noise_sigma", spec.noise * p,
                  jnp.abs(draws["noise_sigma"]) * spec.noise_std, 0.0)
    images = images + draws["noise"] * sigma[:, None, None, None]
  if spec.cutout > 0:
    size = jnp.where(draws["cutout_gate"] < spec.cutout * p,
                     spec.cutout_size, 0.0)[:, None]  # [N, 1]
    center = draws["cutout_center"]  # [N, 2] (x, y)
    mask_x = jnp.abs((jnp.arange(w) + 0.5) / w - center[:, 0, None]) >= (
        size / 2)  # [N, W]
    mask_y = jnp.abs((jnp.arange(h) + 0.5) / h - center[:, 1, None]) >= (
        size / 2)  # [N, H]
    mask = mask_x[:, None, :] | mask_y[:, :, None]
    images = images * mask[..., None].astype(images.dtype)
  return images
