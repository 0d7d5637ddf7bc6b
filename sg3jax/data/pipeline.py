"""Training batches from an `ImageDataset`: grain iterator and global arrays.

    it = batches(ds, batch_size=32, seed=0, shard_index=jax.process_index(),
                 shard_count=jax.process_count())
    batch = global_batch(next(it), NamedSharding(mesh, P("data")))
    images = scale_images(batch["image"])  # on device, in [-1, 1]

The iterator is infinite and checkpointable: `it.get_state()` and
`it.set_state(state)`, or `grain.checkpoint.CheckpointSave(it)` /
`CheckpointRestore(it)` inside an Orbax `CheckpointManager`.
"""

import grain
import jax
import jax.numpy as jnp
import numpy as np


# x / 127.5 - 1 in float32 for every uint8 x, as the official loop scales
# pixels. A lookup keeps these exact values under jit, where XLA would
# multiply by 1/127.5 instead (off by an ulp; 255 → 1.0000001).
_PIXEL_VALUES = np.arange(256, dtype=np.float32) / np.float32(127.5) - 1


def scale_images(images):
  """uint8 pixels → float32 in [-1, 1] (x / 127.5 - 1, the official
  scaling); numpy arrays or jax arrays (on device) `[..., H, W, C]`."""
  if isinstance(images, np.ndarray):
    return _PIXEL_VALUES[images]
  return jnp.asarray(_PIXEL_VALUES)[images]


def _item(item: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
  return {"image": np.asarray(item["image"], np.uint8),
          "label": np.asarray(item["label"], np.float32)}


def batches(ds, *, batch_size: int, seed: int, shard_index: int = 0,
            shard_count: int = 1, num_threads: int = 16,
            prefetch: int = 2) -> grain.DatasetIterator:
  """An infinite, checkpointable iterator of shuffled batches.

  Every epoch is a new seeded shuffle of `ds` (grain's
  `MapDataset.shuffle().repeat()`); process `shard_index` of `shard_count`
  takes every `shard_count`-th item of that stream, so processes see
  disjoint items within an epoch. Images are decoded by `num_threads`
  threads, which keep `prefetch` batches ahead. They stay uint8 (a quarter
  of float32's bytes to the devices); `scale_images` scales them there.

  Args:
    ds: a random-access source of `{"image": uint8 [H, W, C], "label":
      float32 [label_dim]}` items (an `ImageDataset`).
    batch_size: images per batch B, per process.
    seed: the shuffle seed (the same seed gives the same batches).
    shard_index: this process's index, in [0, shard_count).
    shard_count: the number of processes reading.
    num_threads: reader threads (0 reads in the calling thread).
    prefetch: batches read ahead (0: none).

  Returns:
    A grain `DatasetIterator` of `{"image": uint8 [B, H, W, C], "label":
    float32 [B, label_dim]}`.
  """
  if batch_size < 1:
    raise ValueError(f"batch_size: expected >= 1, got {batch_size}")
  if shard_count < 1:
    raise ValueError(f"shard_count: expected >= 1, got {shard_count}")
  if not 0 <= shard_index < shard_count:
    raise ValueError(f"shard_index: expected 0 <= shard_index < "
                     f"{shard_count}, got {shard_index}")
  if num_threads < 0:
    raise ValueError(f"num_threads: expected >= 0, got {num_threads}")
  if prefetch < 0:
    raise ValueError(f"prefetch: expected >= 0, got {prefetch}")
  if len(ds) == 0:
    raise ValueError("ds: expected at least one item, got an empty dataset")
  items = grain.MapDataset.source(ds).seed(seed).shuffle().repeat()
  items = items[shard_index::shard_count].map(_item)
  # Prefetch items rather than whole batches, so that all the threads
  # decode images at once (a prefetched batch is read by a single thread).
  read_options = grain.ReadOptions(num_threads=num_threads,
                                   prefetch_buffer_size=prefetch * batch_size)
  stream = items.to_iter_dataset(read_options)
  return iter(stream.batch(batch_size, drop_remainder=True))


def global_batch(local_batch: dict[str, np.ndarray],
                 sharding: jax.sharding.NamedSharding) -> dict[str, jax.Array]:
  """This process's batch as global arrays sharded over the data axis.

  Args:
    local_batch: arrays `[B_local, ...]` (e.g. from `batches`), all with the
      same leading (batch) dimension.
    sharding: e.g. `NamedSharding(mesh, P("data"))`: how each global array
      `[B_local * num_processes, ...]` is laid out.

  Returns:
    The same keys, as `jax.Array`s built with
    `jax.make_array_from_process_local_data`.
  """
  sizes = {key: np.shape(value)[:1] for key, value in local_batch.items()}
  if len(set(sizes.values())) > 1 or () in sizes.values():
    raise ValueError(f"local_batch: expected arrays with the same leading "
                     f"(batch) dimension, got shapes "
                     f"{ {k: np.shape(v) for k, v in local_batch.items()} }")
  return {key: jax.make_array_from_process_local_data(sharding, value)
          for key, value in local_batch.items()}
