"""batches (grain): values, shards, seeds, checkpoints; global_batch."""

import grain
import jax
import numpy as np
import orbax.checkpoint as ocp
from absl.testing import absltest
from absl.testing import parameterized
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

from sg3jax import data


class IndexSource:
  """Item i: an image filled with i and the label [i, -i] (n <= 128)."""

  def __init__(self, size: int, resolution: int = 4):
    self.size, self.resolution = size, resolution

  def __len__(self) -> int:
    return self.size

  def __getitem__(self, index: int) -> dict[str, np.ndarray]:
    image = np.full((self.resolution, self.resolution, 3), index, np.uint8)
    return {"image": image, "label": np.float32([index, -index])}


def _indices(batch: dict[str, np.ndarray]) -> list[int]:
  return batch["label"][:, 0].astype(int).tolist()


def _take(iterator, count: int) -> list[dict[str, np.ndarray]]:
  return [next(iterator) for _ in range(count)]


class BatchesTest(parameterized.TestCase):

  def test_batch_values_shapes_and_range(self):
    ds = data.open_dataset("demo:8", use_labels=True, max_size=20,
                           mirror=True)
    items = [ds[i] for i in range(len(ds))]
    batch = next(data.batches(ds, batch_size=6, seed=0, num_threads=2))
    self.assertEqual(batch["image"].shape, (6, 8, 8, 3))
    self.assertEqual(batch["label"].shape, (6, 3))
    self.assertEqual(batch["image"].dtype, np.uint8)
    self.assertEqual(batch["label"].dtype, np.float32)
    # Each image is one of the dataset's, with its label.
    for image, label in zip(batch["image"], batch["label"]):
      matches = [i for i, item in enumerate(items)
                 if np.array_equal(image, item["image"])]
      self.assertNotEmpty(matches)
      np.testing.assert_array_equal(label, items[matches[0]]["label"])

  def test_scale_images_maps_pixels_to_minus_one_one(self):
    pixels = np.arange(256, dtype=np.uint8).reshape(1, 16, 16, 1)
    # The official float32 division, bit for bit, on the host and on device.
    expected = pixels.astype(np.float32) / np.float32(127.5) - 1
    for scaled in (data.scale_images(pixels),
                   jax.jit(data.scale_images)(pixels)):
      self.assertEqual(scaled.dtype, np.float32)
      np.testing.assert_array_equal(scaled, expected)
      self.assertEqual((scaled.min(), scaled.max()), (-1.0, 1.0))

  def test_every_epoch_is_a_permutation(self):
    iterator = data.batches(IndexSource(12), batch_size=4, seed=1,
                            num_threads=2)
    epochs = np.reshape(sum((_indices(b) for b in _take(iterator, 9)), []),
                        (3, 12))
    for epoch in epochs:
      self.assertCountEqual(epoch, range(12))
    self.assertFalse(np.array_equal(epochs[0], epochs[1]))  # reshuffled

  def test_same_seed_same_batches(self):
    def indices(seed):
      it = data.batches(IndexSource(30), batch_size=5, seed=seed,
                        num_threads=4)
      return [_indices(b) for b in _take(it, 8)]
    self.assertEqual(indices(3), indices(3))
    self.assertNotEqual(indices(3), indices(4))

  @parameterized.parameters(2, 3)
  def test_shards_are_disjoint_within_an_epoch(self, shard_count):
    size, batch_size = 24, 4
    per_shard = size // shard_count // batch_size  # batches per epoch
    seen = []
    for shard_index in range(shard_count):
      it = data.batches(IndexSource(size), batch_size=batch_size, seed=5,
                        shard_index=shard_index, shard_count=shard_count,
                        num_threads=2)
      seen.append(sum((_indices(b) for b in _take(it, per_shard)), []))
    self.assertCountEqual(sum(seen, []), range(size))

  def test_get_state_set_state_resumes(self):
    it = data.batches(IndexSource(20), batch_size=3, seed=0, num_threads=4)
    _take(it, 2)
    state = it.get_state()
    expected = [_indices(b) for b in _take(it, 5)]
    it.set_state(state)
    self.assertEqual([_indices(b) for b in _take(it, 5)], expected)
    # A fresh iterator resumes from the state too.
    fresh = data.batches(IndexSource(20), batch_size=3, seed=0)
    fresh.set_state(state)
    self.assertEqual([_indices(b) for b in _take(fresh, 5)], expected)

  def test_orbax_checkpoint_manager_restores_the_position(self):
    ds = data.open_dataset("demo:8", use_labels=True, max_size=16)
    it = data.batches(ds, batch_size=4, seed=2, num_threads=2)
    _take(it, 3)
    directory = self.create_tempdir().full_path
    with ocp.CheckpointManager(directory) as manager:
      manager.save(3, args=ocp.args.Composite(
          data=grain.checkpoint.CheckpointSave(it)))
      manager.wait_until_finished()
      expected = _take(it, 6)  # crosses an epoch boundary
      manager.restore(3, args=ocp.args.Composite(
          data=grain.checkpoint.CheckpointRestore(it)))
      for got, want in zip(_take(it, 6), expected, strict=True):
        np.testing.assert_array_equal(got["image"], want["image"])
        np.testing.assert_array_equal(got["label"], want["label"])

  @parameterized.named_parameters(
      ("batch_size", {"batch_size": 0}, "batch_size: expected >= 1, got 0"),
      ("shard_index", {"shard_index": 2, "shard_count": 2},
       r"shard_index: expected 0 <= shard_index < 2, got 2"),
      ("shard_count", {"shard_count": 0}, "shard_count: expected >= 1"),
      ("num_threads", {"num_threads": -1}, "num_threads: expected >= 0"),
  )
  def test_bad_arguments(self, kwargs, message):
    kwargs = {"batch_size": 2, "seed": 0, **kwargs}
    with self.assertRaisesRegex(ValueError, message):
      data.batches(IndexSource(4), **kwargs)


class GlobalBatchTest(absltest.TestCase):

  def test_arrays_are_sharded_over_the_data_axis(self):
    mesh = jax.make_mesh((jax.device_count(),), ("data",),
                         axis_types=(jax.sharding.AxisType.Auto,))
    sharding = NamedSharding(mesh, P("data"))
    batch_size = 2 * jax.device_count()
    ds = data.open_dataset("demo:8", max_size=8)
    local = next(data.batches(ds, batch_size=batch_size, seed=0))
    arrays = data.global_batch(local, sharding)
    self.assertEqual(set(arrays), {"image", "label"})
    self.assertEqual(arrays["image"].shape, (batch_size, 8, 8, 3))
    self.assertEqual(arrays["label"].shape, (batch_size, 0))
    for key in ("image", "label"):
      self.assertEqual(arrays[key].sharding, sharding)
      np.testing.assert_array_equal(np.asarray(arrays[key]), local[key])

  def test_batch_dimensions_must_agree(self):
    mesh = jax.make_mesh((1,), ("data",),
                         axis_types=(jax.sharding.AxisType.Auto,),
                         devices=jax.devices()[:1])
    with self.assertRaisesRegex(ValueError, "local_batch: .*same leading"):
      data.global_batch({"image": np.zeros((4, 2, 2, 3)),
                         "label": np.zeros((3, 1))},
                        NamedSharding(mesh, P("data")))


if __name__ == "__main__":
  absltest.main()
