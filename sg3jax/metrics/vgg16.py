"""VGG16 LPIPS features: the network of NVIDIA's `vgg16.pt`.

The StyleGAN2-ADA projector and the PPL metric use NVIDIA's TorchScript
VGG16 (`vgg16.pt`, ported from Kynkaanniemi et al.'s TensorFlow model):
`vgg16(images, resize_images=False, return_lpips=True)` gives, per image,
a vector whose squared distance to another image's vector is the LPIPS
distance (Zhang et al. 2018, VGG variant): at each of the five feature
stages (conv1_2, conv2_2, conv3_3, conv4_3, conv5_3, after ReLU), every
pixel's channel vector divided by its norm (+1e-10), scaled by the square
root of the stage's LPIPS channel weights and by 1/sqrt(H W), flattened
and concatenated.

`load_vgg16(path)` reads the file's state dict saved as `.npz` under the
TorchScript's names: `layers.conv1.weight` [64, 3, 3, 3] (OIHW) ...
`layers.conv13.bias`, and the LPIPS weights `lpips0` [64] ... `lpips4`
[512]. Reading the TorchScript file itself belongs to the metrics code.
"""

import pathlib

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

# (output channels of each 3x3 conv) per stage; a 2x2 max pool between.
STAGES = ((64, 64), (128, 128), (256, 256, 256), (512, 512, 512),
          (512, 512, 512))
# ImageNet statistics the VGG16 input is normalized with (RGB, [0, 1]).
_MEAN = np.array([0.485, 0.456, 0.406], np.float32)
_STD = np.array([0.229, 0.224, 0.225], np.float32)


def _conv_names() -> list[tuple[int, int, str]]:
  """(stage, index in stage, official name 'convN') of the 13 convs."""
  names, n = [], 0
  for stage, widths in enumerate(STAGES):
    for i in range(len(widths)):
      n += 1
      names.append((stage, i, f"conv{n}"))
  return names


class VGG16(nn.Module):
  """images `[N, H, W, 3]` in [0, 255] -> LPIPS features `[N, D]`.

  H and W must be multiples of 16 (four pools before the last stage).
  """

  @nn.compact
  def __call__(self, images: jax.Array, *, return_lpips: bool = True
               ) -> jax.Array:
    if not return_lpips:
      raise ValueError("return_lpips: this VGG16 computes LPIPS features "
                       "only (no classifier layers); expected True")
    if (images.ndim != 4 or images.shape[-1] != 3 or images.shape[1] % 16
        or images.shape[2] % 16):
      raise ValueError(f"images: expected [N, H, W, 3] with H, W multiples "
                       f"of 16, got {images.shape}")
    x = (images.astype(jnp.float32) / 255 - _MEAN) / _STD
    features, num_convs = [], 0
    for stage, widths in enumerate(STAGES):
      if stage:
        x = nn.max_pool(x, (2, 2), strides=(2, 2))
      for width in widths:
        num_convs += 1
        x = nn.relu(nn.Conv(width, (3, 3), padding=1,
                            name=f"conv{num_convs}")(x))
      weight = self.param(f"lpips{stage}", nn.initializers.ones, (width,))
      norm = jnp.sqrt(jnp.sum(jnp.square(x), axis=-1, keepdims=True))
      scale = jnp.sqrt(weight / (x.shape[1] * x.shape[2]))
      features.append((x / (norm + 1e-10) * scale).reshape(len(x), -1))
    return jnp.concatenate(features, axis=1)


def variables_from_state_dict(state_dict: dict[str, np.ndarray]) -> dict:
  """Flax variables of `VGG16` from the official state dict (see module
  docstring); a ValueError names missing or mis-shaped entries."""
  params, problems = {}, []

  def take(name: str, shape: tuple[int, ...]) -> np.ndarray | None:
    if name not in state_dict:
      problems.append(f"missing {name}")
      return None
    value = np.asarray(state_dict[name], np.float32)
    if value.shape != shape:
      problems.append(f"{name}: expected {list(shape)}, got "
                      f"{list(value.shape)}")
      return None
    return value

  in_channels = 3
  for stage, i, name in _conv_names():
    width = STAGES[stage][i]
    weight = take(f"layers.{name}.weight", (width, in_channels, 3, 3))
    bias = take(f"layers.{name}.bias", (width,))
    if weight is not None and bias is not None:
      params[name] = {"kernel": weight.transpose(2, 3, 1, 0), "bias": bias}
    in_channels = width
  for stage, widths in enumerate(STAGES):
    weight = take(f"lpips{stage}", (widths[-1],))
    if weight is not None:
      params[f"lpips{stage}"] = weight
  if problems:
    raise ValueError("vgg16 state dict: " + "; ".join(problems))
  return {"params": params}


def state_dict_from_variables(variables: dict) -> dict[str, np.ndarray]:
  """The official state dict of `VGG16` variables (inverse of
  `variables_from_state_dict`)."""
  params = variables["params"]
  state = {}
  for _, _, name in _conv_names():
    state[f"layers.{name}.weight"] = np.asarray(
        params[name]["kernel"]).transpose(3, 2, 0, 1)
    state[f"layers.{name}.bias"] = np.asarray(params[name]["bias"])
  for stage in range(len(STAGES)):
    state[f"lpips{stage}"] = np.asarray(params[f"lpips{stage}"])
  return state


def load_vgg16(path: str | pathlib.Path) -> tuple[VGG16, dict]:
  """(module, variables) of the VGG16 state dict in `path` (`.npz`)."""
  path = pathlib.Path(path)
  if path.suffix != ".npz":
    raise ValueError(f"vgg16: expected an .npz of the vgg16.pt state dict, "
                     f"got {path}")
  if not path.is_file():
    raise ValueError(f"vgg16: no such file {path}")
  with np.load(path) as npz:
    state = {k: npz[k] for k in npz.files}
  try:
    return VGG16(), variables_from_state_dict(state)
  except ValueError as e:
    raise ValueError(f"{path}: {e}") from None
