"""sg3jax eqmaps: the side-by-side equivariance figure."""

import pathlib

import numpy as np
from absl.testing import absltest
from PIL import Image

from sg3jax.cli import eqmaps
from tests.analysis import tiny


class EqmapsTest(absltest.TestCase):

  def test_transform_value(self):
    # 'int' rounds to whole pixels: 0.1 * 16 = 1.6 -> 2 px.
    np.testing.assert_allclose(
        eqmaps.transform_value("int", (0.1, -0.02), 0, 16), [0.125, 0])
    np.testing.assert_allclose(
        eqmaps.transform_value("frac", (0.1, -0.02), 0, 16), [0.1, -0.02])
    self.assertAlmostEqual(
        float(eqmaps.transform_value("rot", (0, 0), 90, 16)), np.pi / 2,
        places=6)

  def test_identity_maps_are_zero(self):
    module, variables = tiny.generator()
    maps, psnrs = eqmaps.error_maps(module, variables, [0, 1], "int",
                                    np.zeros(2, np.float32))
    np.testing.assert_array_equal(maps["error"], 0)
    self.assertTrue(np.isinf(psnrs).all())

  def test_command_writes_the_figure(self):
    out = pathlib.Path(self.create_tempdir().full_path)
    eqmaps.run(["eqmaps", f"--network={tiny.checkpoint_dir()}",
                "--seeds=0-1", "--kind=int", "--translate=0.125,0",
                f"--outdir={out}"])
    with Image.open(out / "eqmaps.png") as png:
      # 4 panels of 2.4 in (+0.8 in colour bar) x 2 rows (+0.5 in), 100 dpi.
      self.assertEqual(png.size, (1040, 530))


if __name__ == "__main__":
  absltest.main()
