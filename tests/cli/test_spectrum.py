"""sg3jax spectrum: generator and dataset spectra, heatmap and slices."""

import pathlib

import numpy as np
from absl.testing import absltest
from PIL import Image

from sg3jax import analysis
from sg3jax import data
from sg3jax.cli import spectrum
from sg3jax.training import checkpoints
from tests.analysis import tiny


def _png_size(path):
  with Image.open(path) as png:
    return png.size


class SpectrumCommandTest(absltest.TestCase):

  def test_generator_spectrum_with_measured_stats(self):
    out = pathlib.Path(self.create_tempdir().full_path)
    spectrum.run(["spectrum", f"--network={tiny.checkpoint_dir()}",
                  "--num=10", "--seed=3", "--interp=2", f"--outdir={out}"])
    module, variables = checkpoints.load_generator(tiny.checkpoint_dir())
    images = np.concatenate(list(analysis.seed_image_batches(
        module, variables, list(range(3, 13)), batch_size=tiny.BATCH)))
    mean, std = images.astype(np.float64).mean(), images.std()
    with np.load(out / "spectrum.npz") as npz:
      self.assertEqual(int(npz["image_size"]), 16)
      self.assertAlmostEqual(float(npz["mean"]), mean, places=6)
      self.assertAlmostEqual(float(npz["std"]), std, places=6)
      self.assertEqual(str(npz["label"]), "ckpt")
      expected = analysis.average_power_spectrum([images], mean=mean,
                                                 std=std, interp=2)
      np.testing.assert_allclose(npz["spectrum"], expected, rtol=1e-6)
    # Figure sizes in inches times 100 dpi.
    self.assertEqual(_png_size(out / "heatmap.png"), (600, 480))
    self.assertEqual(_png_size(out / "slices.png"), (1200, 460))

  def test_dataset_spectrum_compared_with_generator(self):
    root = pathlib.Path(self.create_tempdir().full_path)
    spectrum.run(["spectrum", "--dataset=demo:16", "--num=12", "--seed=1",
                  "--mean=100", "--std=50", "--interp=2", "--label=data",
                  f"--outdir={root / 'data'}"])
    source = data.open_dataset("demo:16")
    picked = analysis.subset_indices(len(source), 12, 1)
    images = np.stack([source[int(i)]["image"] for i in picked])
    with np.load(root / "data" / "spectrum.npz") as npz:
      np.testing.assert_allclose(
          npz["spectrum"],
          analysis.average_power_spectrum([images], mean=100, std=50,
                                          interp=2), rtol=1e-6)
    spectrum.run(["spectrum", f"--network={tiny.checkpoint_dir()}",
                  "--num=8", "--mean=100", "--std=50", "--interp=2",
                  f"--compare={root / 'data' / 'spectrum.npz'}",
                  f"--outdir={root / 'g'}"])
    self.assertEqual(_png_size(root / "g" / "slices.png"), (1200, 460))

  def test_stats_only_prints_and_writes_nothing(self):
    out = pathlib.Path(self.create_tempdir().full_path)
    spectrum.run(["spectrum", "--dataset=demo:16", "--num=4", "--stats_only",
                  f"--outdir={out}"])
    self.assertEmpty(list(out.iterdir()))

  def test_source_checks(self):
    with self.assertRaises(SystemExit) as exit_info:
      spectrum.run(["spectrum", "--dataset=demo:16",
                    f"--network={tiny.checkpoint_dir()}"])
    self.assertIn("exactly one of --network and --dataset",
                  str(exit_info.exception.code))
    with self.assertRaisesRegex(ValueError, "expected exactly one source"):
      spectrum.image_source()
    with self.assertRaisesRegex(ValueError, "num: expected a number"):
      spectrum.image_source(network=str(tiny.checkpoint_dir()))


if __name__ == "__main__":
  absltest.main()
