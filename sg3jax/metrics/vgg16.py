"""VGG16 of the official metrics (precision/recall, PPL, projector), NHWC.

The official `vgg16.pkl` (StyleGAN3; `vgg16.pt` in StyleGAN2-ADA-PyTorch)
is a TorchScript VGG16 with LPIPS channel weights, called on images
`[N, 3, H, W]` in [0, 255]:

* `vgg16(uint8 images, return_features=True)` -> `[N, 4096]`
  (precision/recall);
* `vgg16(images, resize_images=False, return_lpips=True)` -> `[N, D]`
  whose squared distances `(a - b).square().sum(1)` are LPIPS distances
  (PPL, projector).

`VGG16` computes, for images `[N, H, W, 3]`:

1. resize to 224 x 224 as the Inception detector resizes (TensorFlow 1
   bilinear; `sg3jax.metrics.resize`), unless `resize_images` is False;
2. ImageNet normalization: `(x / 255 - mean) / std` per RGB channel;
3. torchvision's VGG16 layers: 13 3x3 convolutions (padding 1) each with a
   ReLU, 2x2 max pools between the five stages;
4. `return_lpips`: at each stage's last ReLU (conv1_2, conv2_2, conv3_3,
   conv4_3, conv5_3), every pixel's channel vector divided by its norm
   (+1e-10), times sqrt(w_c / (H W)) with w the stage's LPIPS weights,
   flattened (NHWC order) and concatenated, so that the squared distance
   of two vectors is sum over stages of mean over pixels of
   sum_c w_c (n1 - n2)^2: LPIPS (Zhang et al. 2018, VGG, v0.1);
5. else: the last max pool (7 x 7 x 512 at 224^2), flattened in the
   official (C, H, W) order, fc1 + ReLU, fc2 + ReLU -> the features
   (`return_features`), or fc3 and the 1000-way softmax.

What was verified and what was inferred. The TorchScript code of the
official file is not public (nor available here). From public code:
the call conventions above (official metrics/precision_recall.py,
perceptual_path_length.py, projector.py); the tensor names
`layers.conv1 .. layers.conv13`, `layers.fc1 .. layers.fc3` (`.weight`,
`.bias`, torch layouts) and `lpips0 .. lpips4` (genforce's
perceptual_model.py, which loads vgg16.pt into a plain PyTorch VGG16);
ReLUs inside the conv/fc1/fc2 modules and a `layers.softmax` (public
feature extractors built from `vgg16.layers`); and that its LPIPS
distances equal, to 1e-5, those of torchvision's VGG16 with ImageNet
normalization of the [0, 255] input and Zhang's LPIPS v0.1 weights
(torch-fidelity's test against vgg16.pt), which fixes steps 2-4 up to
float rounding. The features being fc2 after ReLU is supported by
torch-fidelity's precision/recall (torchvision VGG16 fc2 + ReLU at 224^2)
matching the official pr50k3 to 1e-2 in its tests. Inferred: the resize of step 1 (the TF-1 resize both
public re-implementations use for this network, and what the official
Inception detector does); the float order of steps 2 and 4 (any
arrangement gives the same distances up to float32 rounding); the
storage shape [C, 1, 1] of `lpipsN` (genforce unsqueezes it to a
[1, C, 1, 1] conv weight; any shape holding C values is accepted); that
without flags the output is the softmax; that features need a 224^2
input (no adaptive pooling). `tests/metrics/test_vgg16.py` checks this
network against a PyTorch module built to that description
(`tests/official_extra/make_metrics_fixtures.py`), not against the
official file.

`load_vgg16(path)` reads the official file (data only, never run; see
`sg3jax.convert.torch_reader`) or its state dict saved as `.npz`.
"""

import os
from collections.abc import Mapping

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from sg3jax.convert import torch_reader
from sg3jax.metrics import resize

# Output channels of each 3x3 conv, per stage (a 2x2 max pool between).
STAGES = ((64, 64), (128, 128), (256, 256, 256), (512, 512, 512),
          (512, 512, 512))
RESOLUTION = 224
POOLED = RESOLUTION // 32  # the last max pool's output size at 224^2
NUM_FEATURES = 4096
NUM_CLASSES = 1000
LPIPS_EPS = 1e-10
# ImageNet statistics of RGB in [0, 1], the normalization of step 2.
_MEAN = np.array([0.485, 0.456, 0.406], np.float32)
_STD = np.array([0.229, 0.224, 0.225], np.float32)
_HIGHEST = jax.lax.Precision.HIGHEST

OFFICIAL_URL = ("https://api.ngc.nvidia.com/v2/models/nvidia/research/"
                "stylegan3/versions/1/files/metrics/vgg16.pkl")
ADA_URL = ("https://nvlabs-fi-cdn.nvidia.com/stylegan2-ada-pytorch/"
           "pretrained/metrics/vgg16.pt")


def _max_pool(x: jax.Array) -> jax.Array:
  """2x2, stride 2, odd edges dropped (torch MaxPool2d(2, 2))."""
  return nn.max_pool(x, (2, 2), strides=(2, 2), padding="VALID")


def _lpips_term(x: jax.Array, weight: jax.Array) -> jax.Array:
  """Step 4 for one stage: `[N, H, W, C]` -> `[N, H * W * C]`."""
  norm = jnp.sqrt(jnp.sum(jnp.square(x), axis=-1, keepdims=True))
  scale = jnp.sqrt(weight / (x.shape[1] * x.shape[2]))
  return (x / (norm + LPIPS_EPS) * scale).reshape(len(x), -1)


class VGG16(nn.Module):
  """The official VGG16 detector (module docstring), NHWC.

  Params: `conv1` ... `conv13` (`kernel` HWIO, `bias`), `lpips0` ...
  `lpips4` `[C]`, `fc1` ... `fc3` (`kernel` `[in, out]`, fc1's rows in
  NHWC flatten order, `bias`). The widths default to the official ones;
  other widths come only from test weight files.
  """
  stages: tuple[tuple[int, ...], ...] = STAGES
  num_features: int = NUM_FEATURES
  num_classes: int = NUM_CLASSES

  @nn.compact
  def __call__(self, images: jax.typing.ArrayLike, *,
               resize_images: bool | None = None,
               return_features: bool = False,
               return_lpips: bool = False) -> jax.Array:
    """Features `[N, num_features]`, LPIPS vectors `[N, D]` or class
    probabilities `[N, num_classes]` of images `[N, H, W, 3]` in [0, 255].

    Args:
      images: uint8 or float, any H, W (resized to 224^2 when resizing;
        without it 224^2 for features and probabilities, at least 16^2 for
        LPIPS).
      resize_images: resize to 224^2 first. Default (None): resize unless
        `return_lpips`, the way every official caller uses it (the
        official default is True; PPL and the projector pass False).
      return_features: the 4096-d fc2 features (after ReLU).
      return_lpips: the LPIPS vectors (step 4).
    """
    images = jnp.asarray(images)
    if images.ndim != 4 or images.shape[-1] != 3:
      raise ValueError(f"images: expected [N, H, W, 3], got {images.shape}")
    if return_features and return_lpips:
      raise ValueError("return_features and return_lpips: expected at most "
                       "one, got both")
    if resize_images is None:
      resize_images = not return_lpips
    x = images.astype(jnp.float32)
    if resize_images:
      x = resize.tf_bilinear(x, RESOLUTION)
    _check_size(x.shape, return_lpips)
    x = (x / 255 - _MEAN) / _STD
    lpips, n = [], 0
    for stage, widths in enumerate(self.stages):
      if stage:
        x = _max_pool(x)
      for width in widths:
        n += 1
        x = nn.relu(nn.Conv(width, (3, 3), padding=1, precision=_HIGHEST,
                            name=f"conv{n}")(x))
      weight = self.param(f"lpips{stage}", nn.initializers.ones, (width,))
      if return_lpips:
        lpips.append(_lpips_term(x, weight))
    if return_lpips:
      return jnp.concatenate(lpips, axis=1)
    x = _max_pool(x).reshape(len(x), -1)
    x = nn.relu(nn.Dense(self.num_features, precision=_HIGHEST,
                         name="fc1")(x))
    x = nn.relu(nn.Dense(self.num_features, precision=_HIGHEST,
                         name="fc2")(x))
    if return_features:
      return x
    logits = nn.Dense(self.num_classes, precision=_HIGHEST, name="fc3")(x)
    return jax.nn.softmax(logits, axis=-1)


def _check_size(shape: tuple[int, ...], lpips: bool) -> None:
  _, h, w, _ = shape
  if lpips and min(h, w) < 16:
    raise ValueError(f"images: expected H, W >= 16 for LPIPS (four 2x2 "
                     f"pools), got {shape}")
  if not lpips and (h, w) != (RESOLUTION, RESOLUTION):
    raise ValueError(f"images: expected {RESOLUTION} x {RESOLUTION} for "
                     f"features or probabilities without resizing "
                     f"(resize_images=False), got {shape}")


# ---------------------------------------------------------------------------
# Weights.


def _conv_names(stages) -> list[tuple[int, str]]:
  """(stage, official name 'convN') of the convolutions, in order."""
  stage_of_conv = [s for s, widths in enumerate(stages) for _ in widths]
  return [(stage, f"conv{i}") for i, stage in enumerate(stage_of_conv, 1)]


class _Reader:
  """Takes tensors from a state dict, collecting every problem."""

  def __init__(self, state_dict: Mapping[str, np.ndarray]):
    self.state_dict = state_dict
    self.used = set()
    self.problems = []

  def take(self, name: str, shape: tuple[int, ...] | None = None,
           size: int | None = None) -> np.ndarray | None:
    """The tensor `name`, float32, checked against `shape` (or, for the
    LPIPS weights, its number of values); None after a problem."""
    if name not in self.state_dict:
      self.problems.append(f"missing {name}")
      return None
    self.used.add(name)
    value = np.asarray(self.state_dict[name], np.float32)
    if shape is not None and value.shape != shape:
      self.problems.append(f"{name}: expected {list(shape)}, got "
                           f"{list(value.shape)}")
      return None
    if size is not None and (value.size != size or
                             max(value.shape, default=1) != size):
      self.problems.append(f"{name}: expected [{size}, 1, 1] (any shape of "
                           f"{size} values), got {list(value.shape)}")
      return None
    return value


def _stages_of(state_dict: Mapping[str, np.ndarray]
               ) -> tuple[tuple[int, ...], ...]:
  """Per-stage conv widths: the official ones, or those of a test file
  (read from each stage's first conv)."""
  stages, n = [], 0
  for widths in STAGES:
    first = state_dict.get(f"layers.conv{n + 1}.weight")
    width = widths[0] if first is None or np.ndim(first) != 4 else int(
        np.shape(first)[0])
    stages.append((width,) * len(widths))
    n += len(widths)
  return tuple(stages)


def _head_sizes(state_dict: Mapping[str, np.ndarray]) -> tuple[int, int]:
  """(num_features, num_classes) from fc1 and fc3 (default official)."""
  def rows(name, default):
    value = state_dict.get(name)
    return int(np.shape(value)[0]) if np.ndim(value) == 2 else default
  return (rows("layers.fc1.weight", NUM_FEATURES),
          rows("layers.fc3.weight", NUM_CLASSES))


def vgg16_from_state_dict(state_dict: Mapping[str, np.ndarray], *,
                          source: str = "state dict"
                          ) -> tuple[VGG16, dict]:
  """(module, variables) from the official tensors (module docstring);
  a ValueError lists missing, mis-shaped and unknown tensors."""
  stages = _stages_of(state_dict)
  num_features, num_classes = _head_sizes(state_dict)
  reader = _Reader(state_dict)
  params = {}
  cin = 3
  for stage, name in _conv_names(stages):
    cout = stages[stage][0]
    weight = reader.take(f"layers.{name}.weight", (cout, cin, 3, 3))
    bias = reader.take(f"layers.{name}.bias", (cout,))
    if weight is not None and bias is not None:
      params[name] = {"kernel": weight.transpose(2, 3, 1, 0), "bias": bias}
    cin = cout
  for stage, widths in enumerate(stages):
    weight = reader.take(f"lpips{stage}", size=widths[-1])
    if weight is not None:
      params[f"lpips{stage}"] = weight.reshape(-1)
  fc_in = (cin * POOLED * POOLED, num_features, num_features)
  fc_out = (num_features, num_features, num_classes)
  for i, (n_in, n_out) in enumerate(zip(fc_in, fc_out), 1):
    weight = reader.take(f"layers.fc{i}.weight", (n_out, n_in))
    bias = reader.take(f"layers.fc{i}.bias", (n_out,))
    if weight is None or bias is None:
      continue
    if i == 1:  # rows (C, H, W) -> NHWC flatten order (H, W, C)
      weight = weight.reshape(n_out, cin, POOLED, POOLED).transpose(
          0, 2, 3, 1).reshape(n_out, n_in)
    params[f"fc{i}"] = {"kernel": weight.T, "bias": bias}
  unknown = sorted(set(state_dict) - reader.used)
  if unknown:
    reader.problems.append(f"unknown tensors {unknown[:8]}"
                           f"{' ...' if len(unknown) > 8 else ''}")
  if reader.problems:
    raise ValueError(f"{source}: not an official VGG16 detector: "
                     f"{'; '.join(reader.problems[:10])}")
  module = VGG16(stages=stages, num_features=num_features,
                 num_classes=num_classes)
  return module, {"params": params}


def load_vgg16(path: str | os.PathLike) -> tuple[VGG16, dict]:
  """(module, variables) of a VGG16 weight file, used as
  `module.apply(variables, images, return_features=True)` or
  `module.apply(variables, images, return_lpips=True)`.

  Args:
    path: the official `vgg16.pkl` (StyleGAN3) or `vgg16.pt`
      (StyleGAN2-ADA-PyTorch, a TorchScript archive), read as data
      (nothing in it runs), or an `.npz` of its state dict.

  Raises:
    FileNotFoundError: no such file; the message says where to get it.
    ValueError: not a VGG16 weight file (names the problem).
  """
  path = os.fspath(path)
  if not os.path.isfile(path):
    raise FileNotFoundError(
        f"VGG16 weights not found at {path}: download the official "
        f"detector from {OFFICIAL_URL} (or {ADA_URL}) into the directory "
        "given by --detector_dir or $SG3JAX_DETECTORS")
  if path.endswith(".npz"):
    with np.load(path) as npz:
      state_dict = {k: npz[k] for k in npz.files}
  else:
    state_dict = torch_reader.load_state_dict(path)
  return vgg16_from_state_dict(state_dict, source=path)
