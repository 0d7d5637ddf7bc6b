"""Matplotlib figures of the analyses (the commands save them as PNG).

Every `*_figure` function returns a new `Figure` (Agg backend, nothing
shown), `DPI` dots per inch; `save_figure` writes and closes it.
"""

import pathlib
from collections.abc import Mapping, Sequence
from typing import Any

import matplotlib
import numpy as np

from sg3jax.analysis import spectrum

matplotlib.use("Agg")
from matplotlib import pyplot as plt  # pylint: disable=g-import-not-at-top

DPI = 100


def save_figure(fig: plt.Figure, path: str | pathlib.Path) -> pathlib.Path:
  """Writes `fig` to `path` (creating its folder), then closes it."""
  path = pathlib.Path(path)
  path.parent.mkdir(parents=True, exist_ok=True)
  fig.savefig(path)
  plt.close(fig)
  return path


def spectrum_heatmap_figure(hmap: np.ndarray, image_size: int, *,
                            title: str = "") -> plt.Figure:
  """Filled contours of a dB heatmap, -40..20 dB in 5 dB steps (6 x 4.8 in).

  As avg_spectra.py `heatmap`: frequencies in cycles per image on both
  axes, Blues colormap, faint contour lines.
  """
  freqs = spectrum.heatmap_frequencies(hmap.shape[0], image_size)
  ticks = np.linspace(freqs[0], freqs[-1], num=5)
  levels = np.linspace(-40, 20, num=13)
  fig, ax = plt.subplots(figsize=(6, 4.8), dpi=DPI, layout="tight")
  filled = ax.contourf(freqs, freqs, hmap, levels=levels, extend="both",
                       cmap="Blues")
  ax.contour(freqs, freqs, hmap, levels=levels, linestyles="solid",
             linewidths=1, colors="midnightblue", alpha=0.2)
  ax.set_xlim(ticks[0], ticks[-1])
  ax.set_ylim(ticks[0], ticks[-1])
  ax.set_xticks(ticks)
  ax.set_yticks(ticks)
  ax.set_aspect("equal")
  fig.colorbar(filled, ax=ax, ticks=levels, label="dB")
  if title:
    ax.set_title(title)
  return fig


def spectrum_slices_figure(cases: Sequence[tuple[str, np.ndarray]],
                           image_size: int) -> plt.Figure:
  """0 and 45 degree slices of dB heatmaps `(label, hmap)` (12 x 4.6 in).

  As avg_spectra.py `slices`; all heatmaps must share one size.
  """
  sizes = {hmap.shape for _, hmap in cases}
  if len(sizes) != 1:
    raise ValueError(f"cases: expected heatmaps of one size, got {sizes}")
  fig, axes = plt.subplots(1, 2, figsize=(12, 4.6), dpi=DPI, layout="tight")
  yticks = np.linspace(-50, 30, num=9)
  for ax, angle in zip(axes, ("0", "45")):
    for label, hmap in cases:
      freqs, values = spectrum.spectrum_slices(hmap, image_size)[angle]
      ax.plot(freqs, values, label=label)
    xticks = np.linspace(freqs[0], freqs[-1], num=9)
    if angle == "45":
      xticks = np.round(xticks)
    ax.set_title(f"{angle}\u00b0 slice")
    ax.set_xlim(xticks[0], xticks[-1])
    ax.set_ylim(yticks[0], yticks[-1])
    ax.set_xticks(xticks)
    ax.set_yticks(yticks)
    ax.set_xlabel("cycles per image")
    ax.set_ylabel("dB")
    ax.grid()
    ax.legend(loc="upper right")
  return fig


def internals_figure(tiles: np.ndarray, layers: Sequence[str],
                     channels: Sequence[int]) -> plt.Figure:
  """Tiles `[L, K, size, size]` in [0, 1] (see `channel_tiles`) as a grid,
  one row per layer, one column per channel (1.6 in per tile)."""
  num_layers, num_channels = tiles.shape[:2]
  fig, axes = plt.subplots(num_layers, num_channels, squeeze=False,
                           figsize=(1.6 * num_channels + 0.8,
                                    1.6 * num_layers + 0.4), dpi=DPI,
                           layout="constrained")
  cmap = matplotlib.colormaps["RdBu_r"].with_extremes(bad="lightgrey")
  for i in range(num_layers):
    for j in range(num_channels):
      ax = axes[i, j]
      ax.imshow(np.ma.masked_invalid(tiles[i, j]), cmap=cmap, vmin=0, vmax=1,
                interpolation="nearest")
      ax.set_xticks([])
      ax.set_yticks([])
      if i == 0:
        ax.set_title(f"channel {channels[j]}", fontsize=8)
      if j == 0:
        ax.set_ylabel(layers[i], fontsize=8)
  fig.suptitle("synthesis layer outputs (margins included; red > 0 > blue, "
               "each tile scaled by its max |value|)", fontsize=8)
  return fig


def _display(image: np.ndarray) -> np.ndarray:
  """Generator output `[H, W, C]` in [-1, 1] -> displayable RGB in [0, 1]."""
  image = np.clip(np.asarray(image) * 0.5 + 0.5, 0, 1)
  return np.repeat(image, 3, axis=-1) if image.shape[-1] == 1 else image


def equivariance_figure(rows: Sequence[dict[str, np.ndarray]],
                        row_titles: Sequence[str],
                        column_titles: Sequence[str]) -> plt.Figure:
  """One row per sample: three images and an error heatmap (2.4 in each).

  Each row holds `'original'`, `'transformed'`, `'back'` (`[H, W, C]` in
  [-1, 1]) and `'error'` (`[H, W]`, NaN outside the mask); errors share one
  colour scale, shown by a colour bar.
  """
  vmax = max(float(np.nanmax(r["error"])) if np.isfinite(r["error"]).any()
             else 0.0 for r in rows) or 1.0
  fig, axes = plt.subplots(len(rows), 4, squeeze=False,
                           figsize=(4 * 2.4 + 0.8, len(rows) * 2.4 + 0.5),
                           dpi=DPI, layout="constrained")
  cmap = matplotlib.colormaps["inferno"].with_extremes(bad="lightgrey")
  for i, row in enumerate(rows):
    for j, key in enumerate(("original", "transformed", "back")):
      axes[i, j].imshow(_display(row[key]), interpolation="nearest")
    shown = axes[i, 3].imshow(np.ma.masked_invalid(row["error"]), cmap=cmap,
                              vmin=0, vmax=vmax, interpolation="nearest")
    axes[i, 0].set_ylabel(row_titles[i], fontsize=8)
  for j, title in enumerate(column_titles):
    axes[0, j].set_title(title, fontsize=8)
  for ax in axes.ravel():
    ax.set_xticks([])
    ax.set_yticks([])
  fig.colorbar(shown, ax=axes[:, 3].tolist(), fraction=0.08,
               label="|difference| (image range [-1, 1])")
  return fig


def sweep_figure(rows: Sequence[Mapping[str, Any]], metrics: Sequence[str],
                 labels: Mapping[str, str],
                 units: Mapping[str, str] | None = None) -> plt.Figure:
  """A panel per metric: horizontal bars of its value per variant, one bar
  per stage (init, after training), variants top to bottom in row order.

  `rows` as `sg3jax.analysis.sweep` writes them (`variant`, `stage`,
  `kimg`, one value per metric); `labels` and `units` (x axis) by
  metric."""
  variants = list(dict.fromkeys(r["variant"] for r in rows))
  stages = list(dict.fromkeys(r["stage"] for r in rows))
  value = {(r["variant"], r["stage"]): r for r in rows}
  height = 0.8 / len(stages)
  fig, axes = plt.subplots(
      1, len(metrics), squeeze=False, sharey=True,
      figsize=(3.2 * len(metrics) + 1.5, 0.35 * len(variants) * len(stages)
               + 1.2), dpi=DPI, layout="constrained")
  y = np.arange(len(variants))
  for ax, metric in zip(axes[0], metrics):
    for k, stage in enumerate(stages):
      vals = [value[(v, stage)][metric] if (v, stage) in value else np.nan
              for v in variants]
      kimg = next(r["kimg"] for r in rows if r["stage"] == stage)
      ax.barh(y + (k - (len(stages) - 1) / 2) * height, vals, height,
              label="init" if kimg == 0 else f"{kimg:g} kimg")
    ax.set_title(labels.get(metric, metric), fontsize=9)
    ax.set_xlabel((units or {}).get(metric, ""), fontsize=8)
    ax.grid(axis="x", alpha=0.3)
  axes[0, 0].set_yticks(y, variants, fontsize=8)
  axes[0, 0].invert_yaxis()
  fig.legend(*axes[0, 0].get_legend_handles_labels(), fontsize=8,
             loc="outside lower center", ncols=len(stages))
  return fig
