"""Random-weight feature detectors in the official file formats (tests).

`random_weight(name, shape)` draws one tensor from a generator seeded by
its name, so that tests and `tests/official_extra/make_metrics_fixtures.py`
(which fills pytorch-fid's network and a VGG16 in PyTorch) build identical
weights without sharing files. Only NumPy is needed.
"""

import re
import zlib

import numpy as np

SEED = 2015


def random_weight(name: str, shape, seed: int = SEED) -> np.ndarray:
  """A tensor for the pytorch-fid / torchvision parameter `name`, scaled so
  that activations keep their size through the network (He-initialised
  convs, batch-norm statistics near (0, 1), unit batch-norm scale as the
  official detector has)."""
  rng = np.random.default_rng([seed, zlib.crc32(name.encode())])
  shape = tuple(shape)
  if name.startswith("lpips"):  # LPIPS channel weights are >= 0
    return rng.uniform(0, 0.2, shape).astype(np.float32)
  if name.endswith("num_batches_tracked"):
    return np.zeros(shape, np.int64)
  if name.endswith("bn.weight"):
    return np.ones(shape, np.float32)
  if name.endswith("running_var"):
    return rng.uniform(0.5, 1.5, shape).astype(np.float32)
  if len(shape) >= 2:
    fan_in = int(np.prod(shape[1:]))
    return (rng.standard_normal(shape) * np.sqrt(2 / fan_in)).astype(
        np.float32)
  return (rng.standard_normal(shape) * 0.1).astype(np.float32)


# The official VGG16's conv widths per stage, written out independently of
# sg3jax.metrics.vgg16 (the converter under test).
VGG16_STAGES = ((64, 64), (128, 128), (256, 256, 256), (512, 512, 512),
                (512, 512, 512))


def vgg16_shapes(*, stages=VGG16_STAGES, num_features: int = 4096,
                 num_classes: int = 1000) -> list[tuple[str, tuple]]:
  """(name, shape) of every tensor of the official VGG16 detector:
  `layers.convN` OIHW, `lpipsS` [C, 1, 1], `layers.fcN` [out, in]."""
  shapes, cin, n = [], 3, 0
  for stage, widths in enumerate(stages):
    for width in widths:
      n += 1
      shapes += [(f"layers.conv{n}.weight", (width, cin, 3, 3)),
                 (f"layers.conv{n}.bias", (width,))]
      cin = width
    shapes.append((f"lpips{stage}", (cin, 1, 1)))
  fc_in = (cin * 7 * 7, num_features, num_features)
  fc_out = (num_features, num_features, num_classes)
  for i, (n_in, n_out) in enumerate(zip(fc_in, fc_out), 1):
    shapes += [(f"layers.fc{i}.weight", (n_out, n_in)),
               (f"layers.fc{i}.bias", (n_out,))]
  return shapes


def vgg16_state_dict(**kwargs) -> dict[str, np.ndarray]:
  """Random official VGG16 tensors (`vgg16_shapes` kwargs)."""
  return {name: random_weight(name, shape)
          for name, shape in vgg16_shapes(**kwargs)}


def fid_state_dict(keys_and_shapes) -> dict[str, np.ndarray]:
  """pytorch-fid state dict for `[(name, shape), ...]`."""
  return {name: random_weight(name, shape) for name, shape in keys_and_shapes}


# pytorch-fid -> official detector names, written out independently of
# sg3jax.metrics.inception (the converter under test).
_DETECTOR_BLOCKS = [
    ("Conv2d_1a_3x3", "conv"), ("Conv2d_2a_3x3", "conv_1"),
    ("Conv2d_2b_3x3", "conv_2"), ("Conv2d_3b_1x1", "conv_3"),
    ("Conv2d_4a_3x3", "conv_4"), ("Mixed_5b", "mixed"),
    ("Mixed_5c", "mixed_1"), ("Mixed_5d", "mixed_2"), ("Mixed_6a", "mixed_3"),
    ("Mixed_6b", "mixed_4"), ("Mixed_6c", "mixed_5"), ("Mixed_6d", "mixed_6"),
    ("Mixed_6e", "mixed_7"), ("Mixed_7a", "mixed_8"), ("Mixed_7b", "mixed_9"),
    ("Mixed_7c", "mixed_10")]
_DETECTOR_BRANCHES = [
    # Inception A (Mixed_5*), B (6a), C (6b-e), D (7a), E (7b, 7c).
    (r"Mixed_5.", {"branch1x1": "conv", "branch5x5_1": "tower.conv",
                   "branch5x5_2": "tower.conv_1",
                   "branch3x3dbl_1": "tower_1.conv",
                   "branch3x3dbl_2": "tower_1.conv_1",
                   "branch3x3dbl_3": "tower_1.conv_2",
                   "branch_pool": "tower_2.conv"}),
    (r"Mixed_6a", {"branch3x3": "conv", "branch3x3dbl_1": "tower.conv",
                   "branch3x3dbl_2": "tower.conv_1",
                   "branch3x3dbl_3": "tower.conv_2"}),
    (r"Mixed_6[b-e]", {"branch1x1": "conv", "branch7x7_1": "tower.conv",
                       "branch7x7_2": "tower.conv_1",
                       "branch7x7_3": "tower.conv_2",
                       "branch7x7dbl_1": "tower_1.conv",
                       "branch7x7dbl_2": "tower_1.conv_1",
                       "branch7x7dbl_3": "tower_1.conv_2",
                       "branch7x7dbl_4": "tower_1.conv_3",
                       "branch7x7dbl_5": "tower_1.conv_4",
                       "branch_pool": "tower_2.conv"}),
    (r"Mixed_7a", {"branch3x3_1": "tower.conv", "branch3x3_2": "tower.conv_1",
                   "branch7x7x3_1": "tower_1.conv",
                   "branch7x7x3_2": "tower_1.conv_1",
                   "branch7x7x3_3": "tower_1.conv_2",
                   "branch7x7x3_4": "tower_1.conv_3"}),
    (r"Mixed_7[bc]", {"branch1x1": "conv", "branch3x3_1": "tower_conv",
                      "branch3x3_2a": "tower_mixed_conv",
                      "branch3x3_2b": "tower_mixed_conv_1",
                      "branch3x3dbl_1": "tower_1_conv",
                      "branch3x3dbl_2": "tower_1_conv_1",
                      "branch3x3dbl_3a": "tower_1_mixed_conv",
                      "branch3x3dbl_3b": "tower_1_mixed_conv_1",
                      "branch_pool": "tower_2_conv"}),
]
_DETECTOR_TENSORS = {"conv.weight": "weight", "bn.bias": "beta",
                     "bn.running_mean": "mean", "bn.running_var": "var"}


def detector_state_dict(fid: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
  """The official detector's tensors holding pytorch-fid weights `fid`
  (whose batch-norm scales must be 1: the detector has none)."""
  blocks = dict(_DETECTOR_BLOCKS)
  result = {}
  for name, value in fid.items():
    if name.startswith("fc."):
      result["output." + name[3:]] = value
      continue
    block, *layer, module, leaf = name.split(".")
    tensor = f"{module}.{leaf}"
    if tensor == "bn.weight":
      assert np.all(value == 1), name
      continue
    if tensor == "bn.num_batches_tracked":
      continue
    path = blocks[block]
    if block.startswith("Mixed"):
      branches = next(b for pattern, b in _DETECTOR_BRANCHES
                      if re.fullmatch(pattern, block))
      path = f"{path}.{branches[layer[0]]}"
    result[f"layers.{path}.{_DETECTOR_TENSORS[tensor]}"] = value
  return result
