"""Internal representations: channels of synthesis layers as images.

Each synthesis layer's output (margins included) is captured with Flax's
`capture_intermediates` (paper Fig. 6 shows such feature maps: in
StyleGAN3 they carry the coordinate systems that details attach to).
"""

import functools
from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np

from sg3jax.metrics.equivariance import with_input_transform
from sg3jax.networks import Generator
from sg3jax.networks import synthesis_network


def layer_names(module: Generator) -> list[str]:
  """Synthesis layers in order: 'input', then 'L0_<size>_<channels>'..."""
  return ["input"] + synthesis_network(module).layer_names


def resolve_layers(module: Generator, layers: Sequence[str]) -> list[str]:
  """Layer names from names, name prefixes ('L3') or indices ('0' = input).

  Index i > 0 is layer `L{i-1}`; negative indices count from the end
  ('-1' = the ToRGB layer).
  """
  names = layer_names(module)
  resolved = []
  for item in layers:
    item = item.strip()
    if item.lstrip("-").isdigit():
      idx = int(item)
      if not -len(names) <= idx < len(names):
        raise ValueError(f"layers: expected an index in -{len(names)}.."
                         f"{len(names) - 1}, got {idx}")
      resolved.append(names[idx])
      continue
    matches = [n for n in names if n == item or n.split("_")[0] == item]
    if len(matches) != 1:
      raise ValueError(f"layers: expected one of {names} (or an index, or "
                       f"a prefix such as 'L0'), got {item!r}")
    resolved.append(matches[0])
  return resolved


@functools.partial(jax.jit, static_argnames=("module", "layers"))
def capture_layers(variables: dict, ws: jax.Array, transform: jax.Array, *,
                   module: Generator, layers: tuple[str, ...]
                   ) -> dict[str, jax.Array]:
  """The outputs of synthesis `layers` for ws `[N, num_ws, w_dim]`.

  Args:
    variables: generator variables.
    ws: `[N, num_ws, w_dim]`.
    transform: input transform buffer `[3, 3]` (see `input_transform`).
    module: the generator.
    layers: layer names (see `resolve_layers`).

  Returns:
    {name: `[N, size, size, channels]` float32}, margins included.
  """
  wanted = set(layers)

  def keep(mdl, method_name):
    return method_name == "__call__" and mdl.name in wanted

  _, state = module.apply(with_input_transform(variables, transform), ws,
                          method=module.synthesize,
                          capture_intermediates=keep)
  captured = state["intermediates"]["synthesis"]
  return {name: captured[name]["__call__"][0].astype(jnp.float32)
          for name in layers}


def _resize_nearest(x: np.ndarray, size: int) -> np.ndarray:
  """`[h, w]` -> `[size, size]`, nearest neighbour (pixel centres)."""
  rows = ((np.arange(size) + 0.5) * x.shape[0] / size).astype(int)
  cols = ((np.arange(size) + 0.5) * x.shape[1] / size).astype(int)
  return x[rows][:, cols]


def channel_tiles(activations: Sequence[np.ndarray],
                  channels: Sequence[int], *, size: int | None = None
                  ) -> np.ndarray:
  """Channels of layer outputs as a grid of tiles in [0, 1].

  Each tile is one channel of one layer, resized (nearest neighbour) to
  `size` and scaled by its own maximum magnitude to [0, 1] with 0.5 = zero,
  so a tile shows sign and shape; an all-zero channel is 0.5 everywhere,
  and a channel index past a layer's channel count gives a NaN tile.

  Args:
    activations: per layer, one sample `[h, w, C]`.
    channels: channel indices, >= 0.
    size: tile size (default: the largest layer's).

  Returns:
    `[len(activations), len(channels), size, size]` float32.
  """
  if not activations:
    raise ValueError("activations: expected at least one layer, got none")
  acts = [np.asarray(a, np.float32) for a in activations]
  for a in acts:
    if a.ndim != 3:
      raise ValueError(f"activations: expected [h, w, C] each, got {a.shape}")
  if any(ch < 0 for ch in channels):
    raise ValueError(f"channels: expected indices >= 0, got {list(channels)}")
  if size is None:
    size = max(max(a.shape[:2]) for a in acts)
  tiles = np.full((len(acts), len(channels), size, size), np.nan, np.float32)
  for i, a in enumerate(acts):
    for j, ch in enumerate(channels):
      if ch >= a.shape[2]:
        continue
      x = _resize_nearest(a[:, :, ch], size)
      scale = np.abs(x).max()
      tiles[i, j] = 0.5 + 0.5 * (x / scale if scale > 0 else x)
  return tiles
