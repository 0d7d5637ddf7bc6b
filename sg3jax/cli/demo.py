"""The filtered-nonlinearity demo (paper Sec. 3.2, Fig. 2 in spirit).

A band-limited 2-D signal goes through a pointwise leaky ReLU twice: naively
at its own sampling rate, and as `filtered_lrelu` (2x upsample, lrelu,
low-pass, 2x downsample). The naive result has energy past the signal's
band that folds back (aliases); the filtered one stays band-limited. Writes
`filtered_lrelu.png` (signals and their spectra) and prints the fraction of
spectral energy each puts outside the band.

    sg3jax demo --outdir out/demo
"""

import dataclasses
import pathlib
import sys

from absl import flags
import jax.numpy as jnp
import matplotlib
import numpy as np

from sg3jax import filters
from sg3jax import ops
from sg3jax.cli import command

matplotlib.use("Agg")
from matplotlib import pyplot as plt  # pylint: disable=g-import-not-at-top

# Flags of this command only (the sg3jax script imports several commands).
FLAGS = flags.FlagValues()
_OUTDIR = flags.DEFINE_string("outdir", "out/demo", "where to write the PNG",
                               flag_values=FLAGS)
_SIZE = flags.DEFINE_integer("size", 64, "signal size in pixels",
                             flag_values=FLAGS)
_SEED = flags.DEFINE_integer("seed", 0, "random seed of the signal",
                             flag_values=FLAGS)


@dataclasses.dataclass(frozen=True)
class DemoResult:
  png: pathlib.Path
  naive_out_of_band: float  # fraction of spectral energy past the band
  filtered_out_of_band: float


def bandlimited_signal(size: int, cutoff: float, seed: int) -> np.ndarray:
  """Sum of random plane waves below `cutoff` cycles/image, `[size, size]`."""
  rng = np.random.default_rng(seed)
  coords = np.arange(size) / size
  yy, xx = np.meshgrid(coords, coords, indexing="ij")
  signal = np.zeros((size, size))
  for _ in range(24):
    radius = rng.uniform(0.2, 1.0) * cutoff
    angle = rng.uniform(0, 2 * np.pi)
    fx, fy = radius * np.cos(angle), radius * np.sin(angle)
    signal += rng.normal() * np.cos(2 * np.pi * (fx * xx + fy * yy)
                                    + rng.uniform(0, 2 * np.pi))
  return (signal / signal.std()).astype(np.float32)


def amplitude_spectrum(image: np.ndarray) -> np.ndarray:
  """Centred |FFT| of a Hann-windowed image, `[size, size]`."""
  window = np.hanning(image.shape[0])
  windowed = (image - image.mean()) * np.outer(window, window)
  return np.abs(np.fft.fftshift(np.fft.fft2(windowed)))


def out_of_band_fraction(image: np.ndarray, band: float) -> float:
  """Fraction of spectral energy at radial frequency > `band` cycles/image."""
  power = amplitude_spectrum(image) ** 2
  freqs = np.fft.fftshift(np.fft.fftfreq(image.shape[0], 1 / image.shape[0]))
  radius = np.hypot(*np.meshgrid(freqs, freqs, indexing="ij"))
  return float(power[radius > band].sum() / power.sum())


def filtered_nonlinearity_figure(outdir: str | pathlib.Path, size: int = 64,
                                 seed: int = 0) -> DemoResult:
  """Renders the demo figure into `outdir`; returns the PNG path and stats."""
  cutoff = size / 8  # band of the input signal, cycles/image
  signal = bandlimited_signal(size, cutoff, seed)
  naive = np.asarray(ops.bias_act(jnp.asarray(signal), act="lrelu"))

  numtaps = 12
  up_rate = 2 * size
  lowpass = filters.design_lowpass_filter(numtaps, cutoff=size / 4,
                                          width=size / 4, fs=up_rate)
  pad = numtaps - 1
  filtered = ops.filtered_lrelu(
      jnp.asarray(signal)[None, :, :, None], lowpass, lowpass, up=2, down=2,
      padding=pad, impl="xla")
  filtered = np.asarray(filtered[0, :, :, 0])

  band = size / 4  # the low-pass cutoff of filtered_lrelu
  result_stats = (out_of_band_fraction(naive, band),
                  out_of_band_fraction(filtered, band))

  fig, axes = plt.subplots(2, 3, figsize=(12, 8))
  titles = ("band-limited input", "naive leaky ReLU",
            "filtered leaky ReLU (2x up, lrelu, low-pass, 2x down)")
  for col, (title, image) in enumerate(zip(titles, (signal, naive, filtered))):
    axes[0, col].imshow(image, cmap="gray")
    axes[0, col].set_title(title, fontsize=9)
    spectrum = np.log10(amplitude_spectrum(image) + 1e-3)
    extent = (-size / 2, size / 2, -size / 2, size / 2)
    axes[1, col].imshow(spectrum, cmap="magma", extent=extent)
    axes[1, col].add_patch(plt.Circle((0, 0), band, fill=False, color="cyan",
                                      linestyle="--"))
    axes[1, col].set_title("log amplitude spectrum (circle: low-pass cutoff)",
                           fontsize=9)
  for ax in axes.ravel():
    ax.set_xticks([])
    ax.set_yticks([])
  fig.suptitle(f"energy past the cutoff: naive {result_stats[0]:.2%}, "
               f"filtered {result_stats[1]:.2%}")
  fig.tight_layout()
  outdir = pathlib.Path(outdir)
  outdir.mkdir(parents=True, exist_ok=True)
  png = outdir / "filtered_lrelu.png"
  fig.savefig(png, dpi=100)
  plt.close(fig)
  return DemoResult(png, *result_stats)


def main(argv: list[str]) -> None:
  del argv
  result = filtered_nonlinearity_figure(_OUTDIR.value, _SIZE.value,
                                        _SEED.value)
  print(f"wrote {result.png}")
  print(f"energy past the cutoff: naive lrelu {result.naive_out_of_band:.3%}, "
        f"filtered lrelu {result.filtered_out_of_band:.3%}")


def run(argv: list[str]) -> None:
  command.run(FLAGS, main, argv)


if __name__ == "__main__":
  run(sys.argv)
