"""sg3jax.resolution: parsing N / HxW and the derived shapes."""

from absl.testing import absltest
from absl.testing import parameterized

from sg3jax import resolution


class ParseTest(parameterized.TestCase):

  @parameterized.parameters(
      (256, 256), ("256", 256), ("64x64", 64), ((32, 32), 32),
      ("256x512", (256, 512)), ("512X256", (512, 256)), ([32, 64], (32, 64)),
      ((512, 768), (512, 768)), ("64x80", (64, 80)), (" 32 x 64 ", (32, 64)))
  def test_values(self, value, expected):
    self.assertEqual(resolution.parse_resolution(value), expected)

  @parameterized.parameters(
      ("256x", "expected N or HxW"), ("axb", "expected N or HxW"),
      ("32x64x2", "expected N or HxW"), (2.5, "expected N or HxW"),
      ((32, 64, 3), "expected N or HxW"), (True, "expected N or HxW"),
      ("48x96", "the short side of 48x96 must be a power of two >= 4, got 48"),
      ("2x4", "the short side of 2x4 must be a power of two >= 4, got 2"),
      ("32x70", "the long side of 32x70 must be a multiple of 8 .*got 70"))
  def test_bad_values_are_named(self, value, message):
    with self.assertRaisesRegex(ValueError, f"res: {message}"):
      resolution.parse_resolution(value, what="res")

  def test_shapes(self):
    self.assertEqual(resolution.image_shape(16), (16, 16))
    self.assertEqual(resolution.image_shape((32, 64)), (32, 64))
    self.assertEqual(resolution.short_side((64, 32)), 32)
    self.assertEqual(resolution.aspect((32, 48)), (1.0, 1.5))
    self.assertEqual(resolution.scaled_shape((32, 48), 4), (4, 6))
    self.assertEqual(resolution.scaled_shape(32, 4), 4)
    self.assertEqual(resolution.format_resolution((32, 64)), "32x64")
    self.assertEqual(resolution.format_resolution(32), "32")

  def test_crop_size(self):
    # A square output crops the square of the short side, as official.
    self.assertEqual(resolution.crop_size(30, 40, 8, 8), (30, 30))
    self.assertEqual(resolution.crop_size(50, 40, 8, 8), (40, 40))
    # 2:1 outputs: the widest band of aspect 2 (H x W order everywhere).
    self.assertEqual(resolution.crop_size(30, 40, 8, 16), (20, 40))
    self.assertEqual(resolution.crop_size(10, 40, 8, 16), (10, 20))
    self.assertEqual(resolution.crop_size(40, 30, 16, 8), (40, 20))


if __name__ == "__main__":
  absltest.main()
