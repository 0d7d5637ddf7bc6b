"""Image grids: the official layout of grid indices, PNG writing."""

import numpy as np
from absl.testing import absltest
from PIL import Image

from sg3jax.training import snapshots


def _one_hot(classes) -> np.ndarray:
  return np.eye(int(max(classes)) + 1, dtype=np.float32)[classes]


def _shuffled_groups(groups: list[list[int]], seed: int) -> list[list[int]]:
  """Each group shuffled by one RandomState, in the given group order."""
  rnd = np.random.RandomState(seed)
  shuffled = []
  for members in groups:
    members = list(members)
    rnd.shuffle(members)
    shuffled.append(members)
  return shuffled


class GridIndicesTest(absltest.TestCase):

  def test_unlabelled_is_a_seeded_shuffle_repeated(self):
    order = np.arange(10)
    np.random.RandomState(3).shuffle(order)
    got = snapshots.grid_indices(np.zeros((10, 0)), gw=4, gh=3, seed=3)
    np.testing.assert_array_equal(got, np.resize(order, 12))

  def test_class_rows_in_class_order_continuing_per_class(self):
    # Class 2 has fewer images (3) than a row has cells (7).
    classes = np.array([1, 0, 2, 1, 0, 0, 1, 2, 0, 1, 2, 0, 1, 1, 0])
    gw, gh = 7, 6
    got = snapshots.grid_indices(_one_hot(classes), gw, gh, seed=5)
    rows = got.reshape(gh, gw)
    groups = _shuffled_groups(
        [np.flatnonzero(classes == k).tolist() for k in range(3)], seed=5)
    for y in range(gh):
      members = groups[y % 3]
      turn = y // 3  # this class's earlier rows
      expected = [members[(turn * gw + x) % len(members)]
                  for x in range(gw)]
      self.assertEqual(rows[y].tolist(), expected, f"row {y}")

  def test_vector_labels_order_by_the_reversed_vector(self):
    labels = np.array([[0.5, 1.0], [0.0, 2.0], [1.0, 1.0], [0.5, 1.0]],
                      np.float32)
    got = snapshots.grid_indices(labels, gw=2, gh=3, seed=0)
    # Reversed: (1, .5), (2, 0), (1, 1) -> groups {0, 3}, {2}, {1}.
    groups = _shuffled_groups([[0, 3], [2], [1]], seed=0)
    self.assertEqual(got.tolist(), groups[0] + groups[1] * 2 + groups[2] * 2)


class SaveGridTest(absltest.TestCase):

  def test_cells_land_row_by_row(self):
    # 6 images 2x3 (H x W), values -1..1 -> 0..255, on a 3 x 2 grid.
    images = np.stack([np.full((2, 3, 3), v, np.float32)
                       for v in np.linspace(-1, 1, 6)])
    path = self.create_tempdir().full_path + "/grid.png"
    snapshots.save_grid(images, path, (3, 2))
    png = np.asarray(Image.open(path))
    self.assertEqual(png.shape, (4, 9, 3))
    expected = np.rint((np.linspace(-1, 1, 6) + 1) * 127.5).reshape(2, 3)
    np.testing.assert_array_equal(png[::2, ::3, 0], expected)
    with self.assertRaisesRegex(ValueError, "expected 6 for a 3x2 grid, got "
                                "5"):
      snapshots.save_grid(images[:5], path, (3, 2))


if __name__ == "__main__":
  absltest.main()
