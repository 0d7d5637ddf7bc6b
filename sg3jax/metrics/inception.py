"""Inception-v3 of the official metrics (FID, KID, IS), NHWC, in Flax.

The official detector `inception-2015-12-05.pkl` is a TorchScript
translation of TensorFlow's 2015-12-05 Inception graph (the network of the
original FID and IS code). Its forward pass:

1. images `[N, 3, H, W]` (uint8 or float in [0, 255]) -> float32;
2. resized to 299 x 299 with `affine_grid` + `grid_sample` (bilinear,
   border padding, align_corners False) and the theta shift
   `theta[0, 2] += 1/W - 1/299`, `theta[1, 2] += 1/H - 1/299`, which turns
   grid_sample's half-pixel sampling into TensorFlow's legacy resize
   (source pixel = output pixel * W / 299);
3. `(x - 128) / 128`;
4. the Inception layers (conv + batch norm without scale, eps 1e-3, ReLU;
   TensorFlow's average pools, which do not count padding; max pooling in
   the last block), an 8 x 8 average pool -> pool3 features `[N, 2048]`;
5. `return_features=True`: the features; else softmax over 1008 logits
   (`no_output_bias=True` drops the logit bias, as IS uses it).

`InceptionV3` takes NHWC images and does all five steps; `load_inception`
reads the official detector (TorchScript, read as data, never run) or
pytorch-fid's `pt_inception-2015-12-05-*.pth` state dict (the same weights
under torchvision's names, with the batch-norm scale explicit).
"""

import os
from collections.abc import Mapping, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from sg3jax.convert import torch_reader
from sg3jax.metrics import resize

RESOLUTION = 299
NUM_FEATURES = 2048
NUM_CLASSES = 1008
BN_EPS = 1e-3
_HIGHEST = jax.lax.Precision.HIGHEST

# ---------------------------------------------------------------------------
# Preprocessing.


def resize_official(images: jax.typing.ArrayLike) -> jax.Array:
  """Steps 1-3: `[N, H, W, 3]` in [0, 255] -> `[N, 299, 299, 3]`, about
  [-1, 1], as the official detector preprocesses."""
  return (resize.tf_bilinear(images, RESOLUTION) - 128) / 128


# ---------------------------------------------------------------------------
# Layers.


def _pad(padding) -> tuple[tuple[int, int], tuple[int, int]]:
  ph, pw = (padding, padding) if isinstance(padding, int) else padding
  return (ph, ph), (pw, pw)


class ConvBN(nn.Module):
  """Conv (no bias) -> batch norm (inference) -> ReLU, the detector's
  `Conv2dLayer`. Params: `weight` HWIO, `scale` (1 in the detector),
  `beta`, `mean`, `var`."""
  features: int
  kernel: tuple[int, int] = (1, 1)
  stride: int = 1
  padding: int | tuple[int, int] = 0

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    cin = x.shape[-1]
    weight = self.param("weight", nn.initializers.lecun_normal(),
                        (*self.kernel, cin, self.features))
    scale = self.param("scale", nn.initializers.ones, (self.features,))
    beta = self.param("beta", nn.initializers.zeros, (self.features,))
    mean = self.param("mean", nn.initializers.zeros, (self.features,))
    var = self.param("var", nn.initializers.ones, (self.features,))
    y = jax.lax.conv_general_dilated(
        x, weight, (self.stride, self.stride), _pad(self.padding),
        dimension_numbers=("NHWC", "HWIO", "NHWC"), precision=_HIGHEST)
    y = (y - mean) * (jax.lax.rsqrt(var + BN_EPS) * scale) + beta
    return jax.nn.relu(y)


class Tower(nn.Module):
  """ConvBN layers applied in order (a `Sequential` of the detector)."""
  layers: Sequence[tuple]  # (name, features, kernel, stride, padding)

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    for name, features, kernel, stride, padding in self.layers:
      x = ConvBN(features, kernel, stride, padding, name=name)(x)
    return x


def max_pool(x: jax.Array, size: int, stride: int, padding: int = 0
             ) -> jax.Array:
  pad = ((0, 0), (padding, padding), (padding, padding), (0, 0))
  return jax.lax.reduce_window(x, -jnp.inf, jax.lax.max, (1, size, size, 1),
                               (1, stride, stride, 1), pad)


def avg_pool_exclusive(x: jax.Array) -> jax.Array:
  """3 x 3, stride 1, padding 1, averaging only the pixels inside the image
  (TensorFlow's SAME average pool; torch `count_include_pad=False`)."""
  pad = ((0, 0), (1, 1), (1, 1), (0, 0))
  total = jax.lax.reduce_window(x, 0.0, jax.lax.add, (1, 3, 3, 1),
                                (1, 1, 1, 1), pad)
  ones = jnp.ones((1, *x.shape[1:3], 1), x.dtype)
  count = jax.lax.reduce_window(ones, 0.0, jax.lax.add, (1, 3, 3, 1),
                                (1, 1, 1, 1), pad)
  return total / count


def _c(name, features, kernel=1, stride=1, padding=0):
  kernel = (kernel, kernel) if isinstance(kernel, int) else kernel
  return (name, features, kernel, stride, padding)


class InceptionA(nn.Module):
  pool_features: int

  @nn.compact
  def __call__(self, x):
    return jnp.concatenate([
        ConvBN(64, name="conv")(x),
        Tower((_c("conv", 48), _c("conv_1", 64, 5, padding=2)),
              name="tower")(x),
        Tower((_c("conv", 64), _c("conv_1", 96, 3, padding=1),
               _c("conv_2", 96, 3, padding=1)), name="tower_1")(x),
        Tower((_c("conv", self.pool_features),), name="tower_2")(
            avg_pool_exclusive(x)),
    ], axis=-1)


class InceptionB(nn.Module):

  @nn.compact
  def __call__(self, x):
    return jnp.concatenate([
        ConvBN(384, (3, 3), 2, name="conv")(x),
        Tower((_c("conv", 64), _c("conv_1", 96, 3, padding=1),
               _c("conv_2", 96, 3, stride=2)), name="tower")(x),
        max_pool(x, 3, 2),
    ], axis=-1)


class InceptionC(nn.Module):
  channels_7x7: int

  @nn.compact
  def __call__(self, x):
    c = self.channels_7x7
    return jnp.concatenate([
        ConvBN(192, name="conv")(x),
        Tower((_c("conv", c), _c("conv_1", c, (1, 7), padding=(0, 3)),
               _c("conv_2", 192, (7, 1), padding=(3, 0))), name="tower")(x),
        Tower((_c("conv", c), _c("conv_1", c, (7, 1), padding=(3, 0)),
               _c("conv_2", c, (1, 7), padding=(0, 3)),
               _c("conv_3", c, (7, 1), padding=(3, 0)),
               _c("conv_4", 192, (1, 7), padding=(0, 3))),
              name="tower_1")(x),
        Tower((_c("conv", 192),), name="tower_2")(avg_pool_exclusive(x)),
    ], axis=-1)


class InceptionD(nn.Module):

  @nn.compact
  def __call__(self, x):
    return jnp.concatenate([
        Tower((_c("conv", 192), _c("conv_1", 320, 3, stride=2)),
              name="tower")(x),
        Tower((_c("conv", 192), _c("conv_1", 192, (1, 7), padding=(0, 3)),
               _c("conv_2", 192, (7, 1), padding=(3, 0)),
               _c("conv_3", 192, 3, stride=2)), name="tower_1")(x),
        max_pool(x, 3, 2),
    ], axis=-1)


class InceptionE(nn.Module):
  max_pool: bool  # the last block max-pools (a quirk of the TF graph)

  @nn.compact
  def __call__(self, x):
    a = ConvBN(384, name="tower_conv")(x)
    b = ConvBN(448, name="tower_1_conv")(x)
    b = ConvBN(384, (3, 3), padding=1, name="tower_1_conv_1")(b)
    pooled = max_pool(x, 3, 1, 1) if self.max_pool else avg_pool_exclusive(x)
    return jnp.concatenate([
        ConvBN(320, name="conv")(x),
        ConvBN(384, (1, 3), padding=(0, 1), name="tower_mixed_conv")(a),
        ConvBN(384, (3, 1), padding=(1, 0), name="tower_mixed_conv_1")(a),
        ConvBN(384, (1, 3), padding=(0, 1), name="tower_1_mixed_conv")(b),
        ConvBN(384, (3, 1), padding=(1, 0), name="tower_1_mixed_conv_1")(b),
        ConvBN(192, name="tower_2_conv")(pooled),
    ], axis=-1)


class InceptionV3(nn.Module):
  """The official detector, NHWC. Submodule names are the detector's
  (`layers.<name>` there, `output` the classifier)."""

  @nn.compact
  def __call__(self, images: jax.typing.ArrayLike, *,
               return_features: bool = False,
               no_output_bias: bool = False) -> jax.Array:
    """Pool3 features `[N, 2048]` or class probabilities `[N, 1008]` of
    images `[N, H, W, 3]` in [0, 255] (uint8 or float), any H, W."""
    images = jnp.asarray(images)
    if images.ndim != 4 or images.shape[-1] != 3:
      raise ValueError(f"images: expected [N, H, W, 3], got {images.shape}")
    x = resize_official(images)
    x = ConvBN(32, (3, 3), 2, name="conv")(x)
    x = ConvBN(32, (3, 3), name="conv_1")(x)
    x = ConvBN(64, (3, 3), padding=1, name="conv_2")(x)
    x = max_pool(x, 3, 2)
    x = ConvBN(80, name="conv_3")(x)
    x = ConvBN(192, (3, 3), name="conv_4")(x)
    x = max_pool(x, 3, 2)
    x = InceptionA(32, name="mixed")(x)
    x = InceptionA(64, name="mixed_1")(x)
    x = InceptionA(64, name="mixed_2")(x)
    x = InceptionB(name="mixed_3")(x)
    for i, c in enumerate((128, 160, 160, 192)):
      x = InceptionC(c, name=f"mixed_{4 + i}")(x)
    x = InceptionD(name="mixed_8")(x)
    x = InceptionE(False, name="mixed_9")(x)
    x = InceptionE(True, name="mixed_10")(x)
    features = jnp.mean(x, axis=(1, 2))  # the 8 x 8 average pool
    # Sown so that one pass can give probabilities and features
    # (`mutable=["intermediates"]`).
    self.sow("intermediates", "features", features)
    if return_features:
      return features
    kernel = self.param("output_kernel", nn.initializers.lecun_normal(),
                        (NUM_FEATURES, NUM_CLASSES))
    bias = self.param("output_bias", nn.initializers.zeros, (NUM_CLASSES,))
    logits = jnp.dot(features, kernel, precision=_HIGHEST)
    if not no_output_bias:
      logits = logits + bias
    return jax.nn.softmax(logits, axis=-1)


# ---------------------------------------------------------------------------
# Weights.

# pytorch-fid (torchvision) module names -> the detector's.
_FID_BLOCKS = {
    "Conv2d_1a_3x3": "conv", "Conv2d_2a_3x3": "conv_1",
    "Conv2d_2b_3x3": "conv_2", "Conv2d_3b_1x1": "conv_3",
    "Conv2d_4a_3x3": "conv_4", "Mixed_5b": "mixed", "Mixed_5c": "mixed_1",
    "Mixed_5d": "mixed_2", "Mixed_6a": "mixed_3", "Mixed_6b": "mixed_4",
    "Mixed_6c": "mixed_5", "Mixed_6d": "mixed_6", "Mixed_6e": "mixed_7",
    "Mixed_7a": "mixed_8", "Mixed_7b": "mixed_9", "Mixed_7c": "mixed_10",
}
_FID_BRANCHES = {
    "A": {"branch1x1": "conv", "branch5x5_1": "tower.conv",
          "branch5x5_2": "tower.conv_1", "branch3x3dbl_1": "tower_1.conv",
          "branch3x3dbl_2": "tower_1.conv_1",
          "branch3x3dbl_3": "tower_1.conv_2", "branch_pool": "tower_2.conv"},
    "B": {"branch3x3": "conv", "branch3x3dbl_1": "tower.conv",
          "branch3x3dbl_2": "tower.conv_1", "branch3x3dbl_3": "tower.conv_2"},
    "C": {"branch1x1": "conv", "branch7x7_1": "tower.conv",
          "branch7x7_2": "tower.conv_1", "branch7x7_3": "tower.conv_2",
          **{f"branch7x7dbl_{i + 1}": f"tower_1.conv{'_' + str(i) if i else ''}"
             for i in range(5)},
          "branch_pool": "tower_2.conv"},
    "D": {"branch3x3_1": "tower.conv", "branch3x3_2": "tower.conv_1",
          **{f"branch7x7x3_{i + 1}": f"tower_1.conv{'_' + str(i) if i else ''}"
             for i in range(4)}},
    "E": {"branch1x1": "conv", "branch3x3_1": "tower_conv",
          "branch3x3_2a": "tower_mixed_conv",
          "branch3x3_2b": "tower_mixed_conv_1",
          "branch3x3dbl_1": "tower_1_conv", "branch3x3dbl_2": "tower_1_conv_1",
          "branch3x3dbl_3a": "tower_1_mixed_conv",
          "branch3x3dbl_3b": "tower_1_mixed_conv_1",
          "branch_pool": "tower_2_conv"},
}
_BLOCK_TYPES = {"mixed": "A", "mixed_1": "A", "mixed_2": "A", "mixed_3": "B",
                "mixed_4": "C", "mixed_5": "C", "mixed_6": "C", "mixed_7": "C",
                "mixed_8": "D", "mixed_9": "E", "mixed_10": "E"}
# Per-layer tensors: detector suffix, pytorch-fid suffix, sg3jax param.
_LAYER_TENSORS = (("weight", "conv.weight", "weight"),
                  (None, "bn.weight", "scale"),
                  ("beta", "bn.bias", "beta"),
                  ("mean", "bn.running_mean", "mean"),
                  ("var", "bn.running_var", "var"))

OFFICIAL_URL = ("https://api.ngc.nvidia.com/v2/models/nvidia/research/"
                "stylegan3/versions/1/files/metrics/inception-2015-12-05.pkl")
PYTORCH_FID_URL = ("https://github.com/mseitzer/pytorch-fid/releases/download/"
                   "fid_weights/pt_inception-2015-12-05-6726825d.pth")


def _layer_paths() -> dict[str, tuple[str, str]]:
  """{detector layer path: (pytorch-fid layer path, sg3jax path)} of every
  ConvBN."""
  paths = {}
  for fid_block, block in _FID_BLOCKS.items():
    if block not in _BLOCK_TYPES:
      paths[block] = (fid_block, block)
      continue
    for fid_branch, layer in _FID_BRANCHES[_BLOCK_TYPES[block]].items():
      paths[f"{block}.{layer}"] = (f"{fid_block}.{fid_branch}",
                                   f"{block}.{layer}")
  return paths


def _param_shapes() -> dict:
  variables = jax.eval_shape(
      lambda: InceptionV3().init(jax.random.key(0), jnp.zeros(
          (1, RESOLUTION, RESOLUTION, 3)), return_features=False))
  return variables["params"]


def _set(tree: dict, path: str, value: np.ndarray) -> None:
  *parents, leaf = path.split(".")
  for p in parents:
    tree = tree.setdefault(p, {})
  tree[leaf] = value


def _get(tree: Mapping, path: str):
  for p in path.split("."):
    tree = tree[p]
  return tree


def _variables_from(state_dict: Mapping[str, np.ndarray], *, source: str,
                    official: bool) -> dict:
  """sg3jax params from the detector's (`official`) or pytorch-fid's
  state dict; errors list unknown, missing and mis-shaped keys."""
  shapes = _param_shapes()
  params, used, problems = {}, set(), []

  def take(name, sg_path, transform=None):
    expected = _get(shapes, sg_path).shape
    if name not in state_dict:
      problems.append(f"missing {name}")
      return
    used.add(name)
    value = np.asarray(state_dict[name], np.float32)
    value = transform(value) if transform else value
    if value.shape != expected:
      problems.append(f"{name}: expected shape {expected} after "
                      f"conversion, got {value.shape}")
      return
    _set(params, sg_path, value)

  def conv_weight(w):  # OIHW -> HWIO
    return w.transpose(2, 3, 1, 0) if w.ndim == 4 else w

  for det_layer, (fid_layer, sg_layer) in _layer_paths().items():
    for det_suffix, fid_suffix, sg_name in _LAYER_TENSORS:
      sg_path = f"{sg_layer}.{sg_name}"
      transform = conv_weight if sg_name == "weight" else None
      if not official:
        take(f"{fid_layer}.{fid_suffix}", sg_path, transform)
      elif det_suffix is None:  # the detector's batch norm has no scale
        _set(params, sg_path, np.ones(_get(shapes, sg_path).shape,
                                      np.float32))
      else:
        take(f"layers.{det_layer}.{det_suffix}", sg_path, transform)
  head = "output" if official else "fc"
  take(f"{head}.weight", "output_kernel", lambda w: w.T)
  take(f"{head}.bias", "output_bias")
  ignored = {n for n in state_dict if n.endswith(".num_batches_tracked")}
  unknown = sorted(set(state_dict) - used - ignored)
  if unknown:
    problems.append(f"unknown keys {unknown[:8]}"
                    f"{' ...' if len(unknown) > 8 else ''}")
  if problems:
    raise ValueError(f"{source}: not an Inception-v3 "
                     f"{'detector' if official else 'pytorch-fid'} state "
                     f"dict: {'; '.join(problems[:10])}")
  return {"params": params}


def inception_from_state_dict(state_dict: Mapping[str, np.ndarray], *,
                              source: str = "state dict"
                              ) -> tuple[InceptionV3, dict]:
  """(module, variables) from the official detector's tensors
  (`layers.conv.weight`, ..., `output.bias`) or pytorch-fid's
  (`Conv2d_1a_3x3.conv.weight`, ..., `fc.bias`)."""
  official = any(name.startswith("layers.") for name in state_dict)
  return InceptionV3(), _variables_from(state_dict, source=source,
                                        official=official)


def load_inception(path: str | os.PathLike) -> tuple[InceptionV3, dict]:
  """(module, variables) of an Inception weight file, used as
  `module.apply(variables, images, return_features=True)`.

  Args:
    path: the official detector `inception-2015-12-05.pkl` (or the
      StyleGAN2-ADA `inception-2015-12-05.pt` TorchScript archive), or
      pytorch-fid's `pt_inception-2015-12-05-*.pth`. Read as data; nothing
      in it runs.

  Raises:
    FileNotFoundError: no such file; the message says where to get it.
    ValueError: not an Inception weight file (names the problem).
  """
  path = os.fspath(path)
  if not os.path.isfile(path):
    raise FileNotFoundError(
        f"Inception weights not found at {path}: download the official "
        f"detector from {OFFICIAL_URL} (or pytorch-fid's weights from "
        f"{PYTORCH_FID_URL}) into the directory given by --detector_dir or "
        "$SG3JAX_DETECTORS")
  return inception_from_state_dict(torch_reader.load_state_dict(path),
                                   source=path)
