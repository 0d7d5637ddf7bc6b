"""Average power spectrum of a generator or a dataset (avg_spectra.py).

    sg3jax spectrum --dataset=DATA --outdir=out/spectra/data
    sg3jax spectrum --network=CKPT_OR_PKL --num=1000 --mean=112.7 \\
        --std=69.5 --compare=out/spectra/data/spectrum.npz \\
        --outdir=out/spectra/g

Writes to `--outdir`: `spectrum.npz` (`spectrum` `[S, S]` with DC at
[0, 0], `image_size`, `mean`, `std`, `label`, as avg_spectra.py's plus the
last three), `heatmap.png` (dB, smoothed by `--smooth`) and `slices.png`
(0 and 45 degree slices of this spectrum and of each `--compare` .npz).
Images are whitened by `--mean`/`--std`: pass the dataset's (printed by a
dataset run, or by `--stats_only`) so that spectra are comparable; left
out, they are measured on the source itself first. Generator images use
seeds `--seed`... `--seed + --num - 1` (random classes when conditional)
and are quantized to uint8; dataset images are a `--num` subset picked by
`--seed` (all by default).
"""

import pathlib
import sys

from absl import flags
import numpy as np

from sg3jax import analysis
from sg3jax.analysis import figures
from sg3jax.cli import common
from sg3jax.cli import command
from sg3jax.training import checkpoints

# Flags of this command only (the sg3jax script imports several commands).
FLAGS = flags.FlagValues()
_NETWORK = flags.DEFINE_string(
    "network", None, "sg3jax network checkpoint directory or official .pkl",
    flag_values=FLAGS)
_DATASET = flags.DEFINE_string("dataset", None,
                               "dataset (sg3jax.data.open_dataset path)",
                               flag_values=FLAGS)
_NUM = flags.DEFINE_integer("num", None, "images (required for --network; "
                            "default: the whole dataset)", lower_bound=1,
                            flag_values=FLAGS)
_SEED = flags.DEFINE_integer("seed", 0, "first seed / subset seed",
                             lower_bound=0, flag_values=FLAGS)
_TRUNC = flags.DEFINE_float("trunc", 1.0, "truncation psi", flag_values=FLAGS)
_MEAN = flags.DEFINE_float("mean", None, "whitening mean (0..255 units)",
                           flag_values=FLAGS)
_STD = flags.DEFINE_float("std", None, "whitening std (0..255 units)",
                          flag_values=FLAGS)
_STATS_ONLY = flags.DEFINE_bool("stats_only", False,
                                "only print --mean and --std of the source",
                                flag_values=FLAGS)
_BETA = flags.DEFINE_float("beta", 8.0, "Kaiser window shape",
                           lower_bound=0, flag_values=FLAGS)
_INTERP = flags.DEFINE_integer("interp", 4,
                               "frequency-domain interpolation factor",
                               lower_bound=1, flag_values=FLAGS)
_SMOOTH = flags.DEFINE_float("smooth", 1.25, "heatmap smoothing",
                             lower_bound=0, flag_values=FLAGS)
_SLICES_SMOOTH = flags.DEFINE_float("slices_smooth", 0.0, "slices smoothing",
                                    lower_bound=0, flag_values=FLAGS)
_COMPARE = flags.DEFINE_list("compare", [], "other spectrum .npz files for "
                             "slices.png", flag_values=FLAGS)
_LABEL = flags.DEFINE_string("label", None, "legend label (default: the "
                             "source's name)", flag_values=FLAGS)
_BATCH = flags.DEFINE_integer("batch", 8, "images per batch", lower_bound=1,
                              flag_values=FLAGS)
_OUTDIR = flags.DEFINE_string("outdir", "out/spectrum", "where to write",
                              flag_values=FLAGS)


def image_source(*, network: str | None = None, dataset: str | None = None,
                 num: int | None = None, seed: int = 0,
                 truncation_psi: float = 1.0, batch_size: int = 8):
  """A function returning a fresh iterator of uint8 `[n, H, W, C]` batches."""
  if (network is None) == (dataset is None):
    raise ValueError("network, dataset: expected exactly one source, got "
                     f"network={network!r}, dataset={dataset!r}")
  if network is not None:
    if num is None:
      raise ValueError("num: expected a number of images for --network, "
                       "got None")
    module, variables = checkpoints.load_generator(network)
    seeds = list(range(seed, seed + num))
    return lambda: analysis.seed_image_batches(
        module, variables, seeds, truncation_psi=truncation_psi,
        batch_size=batch_size)
  # Imported here: only dataset runs need the data pipeline.
  from sg3jax import data  # pylint: disable=g-import-not-at-top
  source = data.open_dataset(dataset)
  indices = analysis.subset_indices(len(source), num, seed)
  return lambda: analysis.dataset_image_batches(source, indices,
                                                batch_size=batch_size)


def source_stats(batches) -> tuple[float, float]:
  """(mean, std) of all pixel values of the batches (official `stats`)."""
  moments = sum(analysis.image_moments(b) for b in batches)
  return analysis.mean_std(moments)


def load_npz(path: str | pathlib.Path) -> tuple[str, np.ndarray, int]:
  """(label, spectrum, image_size) of a spectrum .npz (ours or official)."""
  with np.load(path) as npz:
    label = (str(npz["label"]) if "label" in npz
             else pathlib.Path(path).stem)
    return label, npz["spectrum"], int(npz["image_size"])


def main(argv: list[str]) -> None:
  del argv
  if (_NETWORK.value is None) == (_DATASET.value is None):
    sys.exit("spectrum: pass exactly one of --network and --dataset")
  batches = image_source(network=_NETWORK.value, dataset=_DATASET.value,
                         num=_NUM.value, seed=_SEED.value,
                         truncation_psi=_TRUNC.value,
                         batch_size=_BATCH.value)
  mean, std = _MEAN.value, _STD.value
  if _STATS_ONLY.value or mean is None or std is None:
    measured = source_stats(batches())
    print(f"--mean={measured[0]:g} --std={measured[1]:g}")
    if _STATS_ONLY.value:
      return
    mean = measured[0] if mean is None else mean
    std = measured[1] if std is None else std
  spectrum = analysis.average_power_spectrum(
      batches(), mean=mean, std=std, beta=_BETA.value, interp=_INTERP.value)
  image_size = spectrum.shape[0] // _INTERP.value
  label = _LABEL.value or pathlib.Path(_NETWORK.value or
                                       _DATASET.value).stem
  outdir = pathlib.Path(_OUTDIR.value)
  npz = common.output_path(outdir, "spectrum.npz")
  np.savez(npz, spectrum=spectrum, image_size=image_size, mean=mean, std=std,
           label=label)
  print(f"wrote {npz}")

  hmap = analysis.spectrum_heatmap(spectrum, image_size,
                                   smooth=_SMOOTH.value)
  path = figures.save_figure(
      figures.spectrum_heatmap_figure(hmap, image_size, title=label),
      outdir / "heatmap.png")
  print(f"wrote {path}")

  cases = [(label, spectrum, image_size)]
  cases += [load_npz(path) for path in _COMPARE.value]
  sizes = {(s.shape, size) for _, s, size in cases}
  if len(sizes) != 1:
    raise ValueError(f"compare: expected spectra of one size, got {sizes}")
  path = figures.save_figure(figures.spectrum_slices_figure(
      [(name, analysis.spectrum_heatmap(s, size, smooth=_SLICES_SMOOTH.value))
       for name, s, size in cases], image_size), outdir / "slices.png")
  print(f"wrote {path}")


def run(argv: list[str]) -> None:
  command.run(FLAGS, main, argv)


if __name__ == "__main__":
  run(sys.argv)
