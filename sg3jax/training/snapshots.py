"""Image grids of a run: reals.png, fakes_init.png, fakes<kimg>.png.

The grid follows the official setup_snapshot_image_grid: gw x gh cells
(clip(7680 // W, 7, 32) x clip(4320 // H, 4, 32) unless given), real
images in a seeded random order, or grouped by label for conditional data
(each row one label); the fakes use the grid's labels and fixed latents.
"""

import functools
import pathlib

import jax
import jax.numpy as jnp
import numpy as np
from PIL import Image


def grid_shape(image_size: tuple[int, int],
               grid: tuple[int, int] | None = None) -> tuple[int, int]:
  """(gw, gh) for images of `image_size` (H, W): the official size (from
  the width and the height) unless `grid` is given."""
  if grid:
    return grid
  height, width = image_size
  return (int(np.clip(7680 // width, 7, 32)),
          int(np.clip(4320 // height, 4, 32)))


def grid_indices(labels: np.ndarray, gw: int, gh: int, seed: int
                 ) -> np.ndarray:
  """Dataset indices `[gh * gw]` laid out as the official grid.

  Unlabelled: a seeded shuffle of the dataset, repeated to fill the grid.
  Labelled: row y shows the y-th label group (cycling), groups ordered as
  the official code orders raw labels (by the reversed label vector; for
  one-hot classes that is class order); each group is shuffled once and
  each of its rows continues where its previous row stopped.

  Args:
    labels: `[n, label_dim]` of the dataset.
  """
  rnd = np.random.RandomState(seed)
  n = labels.shape[0]
  if labels.shape[1] == 0:
    order = np.arange(n)
    rnd.shuffle(order)
    return np.resize(order, gw * gh)
  groups: dict[tuple, list[int]] = {}
  for idx in range(n):
    groups.setdefault(tuple(labels[idx][::-1]), []).append(idx)
  keys = sorted(groups)
  for key in keys:
    rnd.shuffle(groups[key])
  rows = []
  for y in range(gh):
    members = groups[keys[y % len(keys)]]
    rows.append([members[x % len(members)] for x in range(gw)])
    shift = gw % len(members)  # the next row's turn
    members[:] = members[shift:] + members[:shift]
  return np.asarray(rows).reshape(-1)


def save_grid(images: np.ndarray, path: str | pathlib.Path,
              grid: tuple[int, int]) -> None:
  """Writes `[gh * gw, H, W, C]` images in [-1, 1] as one PNG."""
  gw, gh = grid
  n, h, w, c = images.shape
  if n != gw * gh:
    raise ValueError(f"images: expected {gw * gh} for a {gw}x{gh} grid, got "
                     f"{n}")
  img = np.rint((np.asarray(images, np.float32) + 1) * 127.5)
  img = np.clip(img, 0, 255).astype(np.uint8)
  img = img.reshape(gh, gw, h, w, c).transpose(0, 2, 1, 3, 4)
  img = img.reshape(gh * h, gw * w, c)
  Image.fromarray(img[:, :, 0] if c == 1 else img,
                  "L" if c == 1 else "RGB").save(path)


@functools.lru_cache(maxsize=2)
def make_renderer(G, batch: int):
  """A jitted `render(variables, z, c)` for grids, `batch` at a time (the
  same one for an equal G and batch: a later training in this process
  reuses its compiled program)."""
  apply = jax.jit(lambda v, z, c: G.apply(v, z, c))

  def render(variables, z: np.ndarray, c: np.ndarray) -> np.ndarray:
    out = [np.asarray(apply(variables, jnp.asarray(z[i:i + batch]),
                            jnp.asarray(c[i:i + batch])))
           for i in range(0, z.shape[0], batch)]
    return np.concatenate(out)

  return render
