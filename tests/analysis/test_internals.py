"""sg3jax.analysis.internals: captured layers and channel tiles."""

import numpy as np
from absl.testing import absltest

from sg3jax import analysis
from tests.analysis import tiny

LAYERS = ("input", "L0_20_8", "L2_20_6", "L4_16_3")


class LayersTest(absltest.TestCase):

  def test_names_and_resolution(self):
    module, _ = tiny.generator()
    self.assertEqual(analysis.layer_names(module),
                     ["input", "L0_20_8", "L1_20_8", "L2_20_6", "L3_16_4",
                      "L4_16_3"])
    self.assertEqual(
        analysis.resolve_layers(module, ["0", "L2", "-1", "L1_20_8"]),
        ["input", "L2_20_6", "L4_16_3", "L1_20_8"])
    with self.assertRaisesRegex(ValueError, "layers: expected one of"):
      analysis.resolve_layers(module, ["L9"])
    with self.assertRaisesRegex(ValueError,
                                "layers: expected an index in -6..5, got 6"):
      analysis.resolve_layers(module, ["6"])

  def test_capture_shapes_and_torgb_is_the_image(self):
    module, variables = tiny.generator()
    z = analysis.seed_latents([0, 1], module.z_dim)
    ws = analysis.map_latents(variables, z, analysis.class_labels(0, 2, None),
                              module=module)
    acts = analysis.capture_layers(variables, ws, np.eye(3, dtype=np.float32),
                                   module=module, layers=LAYERS)
    self.assertEqual({k: v.shape for k, v in acts.items()},
                     {"input": (2, 20, 20, 8), "L0_20_8": (2, 20, 20, 8),
                      "L2_20_6": (2, 20, 20, 6), "L4_16_3": (2, 16, 16, 3)})
    images = analysis.render_ws(module, variables, ws, batch_size=tiny.BATCH)
    # The image is the ToRGB output times output_scale 0.25.
    np.testing.assert_allclose(np.asarray(acts["L4_16_3"]) * 0.25, images,
                               atol=1e-6)


class TilesTest(absltest.TestCase):

  def test_grid_shape_scaling_and_missing_channels(self):
    big = np.zeros((4, 4, 3))
    big[1, 2, 0] = -2.0
    big[3, 3, 0] = 1.0
    small = np.arange(8, dtype=np.float32).reshape(2, 2, 2)
    tiles = analysis.channel_tiles([big, small], [0, 1, 2])
    self.assertEqual(tiles.shape, (2, 3, 4, 4))
    # Scaled by max |value| (2): -2 -> 0, 1 -> 0.75, 0 -> 0.5.
    self.assertEqual(tiles[0, 0, 1, 2], 0.0)
    self.assertEqual(tiles[0, 0, 3, 3], 0.75)
    self.assertEqual(tiles[0, 0, 0, 0], 0.5)
    np.testing.assert_array_equal(tiles[0, 1], 0.5)  # all-zero channel
    # 2x2 -> 4x4 nearest: each pixel a 2x2 block.
    expected = 0.5 + 0.5 * small[:, :, 1] / 7
    np.testing.assert_allclose(tiles[1, 1],
                               np.kron(expected, np.ones((2, 2))))
    self.assertTrue(np.isnan(tiles[1, 2]).all())  # only 2 channels
    self.assertEqual(analysis.channel_tiles([big], [0], size=6).shape,
                     (1, 1, 6, 6))

  def test_bad_arguments(self):
    with self.assertRaisesRegex(ValueError, r"expected \[h, w, C\] each"):
      analysis.channel_tiles([np.zeros((4, 4))], [0])
    with self.assertRaisesRegex(ValueError, "channels: expected indices >= 0"):
      analysis.channel_tiles([np.zeros((4, 4, 1))], [-1])


if __name__ == "__main__":
  absltest.main()
