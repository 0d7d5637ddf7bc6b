"""The operator demo (README's main command) and the console script."""

import subprocess
import sys
import tempfile

import numpy as np
from absl.testing import absltest
from PIL import Image

from sg3jax.cli import demo
from sg3jax.cli import main


class DemoTest(absltest.TestCase):

  def test_figure_shows_filtering_removes_out_of_band_energy(self):
    with tempfile.TemporaryDirectory() as outdir:
      result = demo.filtered_nonlinearity_figure(outdir, size=64, seed=0)
      with Image.open(result.png) as png:
        self.assertEqual(png.size, (1200, 800))
        pixels = np.asarray(png.convert("L"))
    self.assertGreater(pixels.std(), 10)  # a real figure, not a blank page
    # The naive lrelu spreads energy past the cutoff (aliasing); the
    # filtered one keeps at least 5x less there (observed ~9x).
    self.assertGreater(result.naive_out_of_band, 0.001)
    self.assertLess(result.filtered_out_of_band,
                    result.naive_out_of_band / 5)

  def test_bandlimited_signal_is_bandlimited(self):
    signal = demo.bandlimited_signal(64, cutoff=8, seed=1)
    spectrum = np.abs(np.fft.fft2(signal))
    freqs = np.fft.fftfreq(64, 1 / 64)
    radius = np.hypot(*np.meshgrid(freqs, freqs, indexing="ij"))
    # Plane waves of non-integer frequency leak a little in the plain FFT.
    self.assertLess((spectrum[radius > 16] ** 2).sum() / (spectrum ** 2).sum(),
                    0.02)


class ConsoleScriptTest(absltest.TestCase):

  def test_unknown_command_lists_commands(self):
    with self.assertRaises(SystemExit) as exit_info:
      main.run(["sg3jax", "bogus"])
    self.assertIn("commands: " + ", ".join(sorted(main.COMMANDS)),
                  str(exit_info.exception.code))
    self.assertIn("train", main.COMMANDS)

  def test_demo_command_runs(self):
    with tempfile.TemporaryDirectory() as outdir:
      completed = subprocess.run(
          [sys.executable, "-m", "sg3jax.cli.main", "demo", "--outdir",
           outdir, "--size", "32"], capture_output=True, text=True,
          check=True)
    self.assertIn("filtered_lrelu.png", completed.stdout)
    self.assertIn("energy past the cutoff", completed.stdout)


if __name__ == "__main__":
  absltest.main()
