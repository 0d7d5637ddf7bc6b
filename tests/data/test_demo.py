"""The embedded demo dataset: deterministic, labelled, shapes that differ."""

import numpy as np
from absl.testing import absltest
from absl.testing import parameterized

from sg3jax import data
from sg3jax.data import demo


def _pixel_values(images: np.ndarray, points: np.ndarray) -> np.ndarray:
  """Max-channel value in [0, 1] at `points` `[N, 2]` (x, y image units);
  NaN where a point is outside the image."""
  resolution = images.shape[1]
  cols, rows = np.floor(points * resolution).astype(int).T
  inside = (cols >= 0) & (cols < resolution) & (rows >= 0) & (
      rows < resolution)
  cols, rows = np.clip(cols, 0, resolution - 1), np.clip(rows, 0,
                                                          resolution - 1)
  values = images[np.arange(len(images)), rows, cols].max(-1) / 255
  return np.where(inside, values, np.nan)


class DemoTest(parameterized.TestCase):

  @parameterized.parameters(16, 32, 64)
  def test_shapes_range_and_balanced_classes(self, resolution):
    ds = data.open_dataset(f"demo:{resolution}", use_labels=True)
    self.assertLen(ds, demo.NUM_IMAGES)
    self.assertEqual((ds.name, ds.resolution, ds.num_channels, ds.label_dim),
                     (f"demo{resolution}", resolution, 3, 3))
    item = ds[7]
    self.assertEqual(item["image"].shape, (resolution, resolution, 3))
    self.assertEqual(item["image"].dtype, np.uint8)
    labels = np.stack([ds[i]["label"] for i in range(len(ds))])
    np.testing.assert_array_equal(labels.sum(-1), 1)  # one-hot
    classes = labels.argmax(-1)
    np.testing.assert_array_equal(classes, demo.draw_parameters()["classes"])
    self.assertLessEqual(np.ptp(np.bincount(classes, minlength=3)), 1)

  def test_deterministic(self):
    first, first_classes = demo.demo_images(16)
    again, again_classes = demo.demo_images(16)
    np.testing.assert_array_equal(first, again)
    np.testing.assert_array_equal(first_classes, again_classes)
    np.testing.assert_array_equal(data.open_dataset("demo:16")[5]["image"],
                                  first[5])
    # The default resolution is 32, or the requested one.
    self.assertEqual(data.open_dataset("demo").resolution, 32)
    self.assertEqual(data.open_dataset("demo", resolution=64).resolution, 64)

  def test_images_are_not_flat(self):
    images, _ = demo.demo_images(32)
    # A bright saturated shape on a dim background in every image.
    self.assertTrue(np.all(images.max(axis=(1, 2, 3)) >= 200))
    self.assertTrue(np.all(images.reshape(len(images), -1).std(-1) > 10))

  def test_classes_differ_where_the_shapes_differ(self):
    images, classes = demo.demo_images(64)
    params = demo.draw_parameters()
    np.testing.assert_array_equal(classes, params["classes"])
    center, radius = params["center"], params["radius"][:, None]
    # At the centre a disc or a square shows its colour (value >= 0.8); a
    # ring shows the dim background (value <= 0.6).
    at_center = _pixel_values(images, center)
    means = [np.nanmean(at_center[classes == k]) for k in range(3)]
    self.assertGreater(min(means[0], means[1]), 0.75)
    self.assertLess(means[2], 0.6)
    # 1.1 radius out along a square's diagonals lies inside the square
    # (corners at 1.23 radius) and outside the disc.
    corner_values = []
    for k in range(4):
      angle = params["angle"] + np.pi / 4 + k * np.pi / 2
      direction = np.stack([np.cos(angle), np.sin(angle)], axis=-1)
      corner_values.append(_pixel_values(images,
                                         center + 1.1 * radius * direction))
    corners = np.nanmean(np.stack(corner_values), axis=0)
    disc, square = (np.nanmean(corners[classes == k]) for k in (0, 1))
    self.assertGreater(square - disc, 0.25)

  @parameterized.parameters("demo:12", "demo:4", "demo:x")
  def test_bad_resolution(self, path):
    with self.assertRaisesRegex(ValueError, "resolution|demo:x"):
      data.open_dataset(path)

  def test_resolution_disagrees_with_path(self):
    with self.assertRaisesRegex(ValueError,
                                "resolution: expected 32 .*, got 64"):
      data.open_dataset("demo:32", resolution=64)


if __name__ == "__main__":
  absltest.main()
