"""Metrics at the training loop's snapshots (official `--metrics`).

As the official training loop: after each checkpoint, every metric named
in `config.metrics` ("fid50k_full,kid50k_full"; "" for none) is computed
on G_ema with the training dataset (`config.data`) and appended to
`<run dir>/metric-<name>.jsonl`, its `snapshot_pkl` the checkpoint's
directory (relative to the run directory). `config.metrics_num` replaces
the official sample counts (None: official), `config.detector_dir` the
detector folder ("": $SG3JAX_DETECTORS); latents use `config.seed`, so
snapshots are measured on the same samples.

Names and detector files are checked when training starts. Every process
computes, over one mesh of all devices (`jax.devices()`: each process
generates and reads its devices' share of each batch), so every process
gets the results; process 0 alone writes the JSONL lines.
"""

import os
import pathlib

import flax.linen as nn
import jax
import ml_collections

from sg3jax.metrics import metric_main


def metric_names(cfg: ml_collections.ConfigDict) -> list[str]:
  """The metric names of `cfg.metrics`; ValueError for unknown ones."""
  names = [n.strip() for n in cfg.metrics.split(",") if n.strip()]
  bad = [n for n in names if not metric_main.is_valid_metric(n)]
  if bad:
    raise ValueError(f"config.metrics: unknown {bad}; valid: "
                     f"{', '.join(metric_main.list_valid_metrics())}")
  return names


class SnapshotMetrics:
  """`SnapshotMetrics(cfg)` checks the config's metrics (names, detector
  files); calling it at a snapshot computes and reports them."""

  def __init__(self, cfg: ml_collections.ConfigDict):
    self.names = metric_names(cfg)
    self.data = os.path.expanduser(cfg.data)
    self.detector_dir = cfg.detector_dir or None
    self.num = cfg.metrics_num
    self.seed = cfg.seed
    metric_main.check_detectors(self.names, self.detector_dir)

  def __call__(self, G: nn.Module, variables, run_dir: pathlib.Path,
               snapshot: pathlib.Path) -> dict[str, float]:
    """Computes the metrics of G_ema `variables` over all devices (called
    by every process, with the same arguments); process 0 appends their
    JSONL lines. Returns {result name: value} on every process."""
    results = {}
    for name in self.names:
      result = metric_main.calc_metric(
          name, G, variables, num=self.num, seed=self.seed,
          devices=jax.devices(), progress=False, data=self.data,
          detector_dir=self.detector_dir)
      if jax.process_index() == 0:
        metric_main.report_metric(result, run_dir=run_dir,
                                  snapshot_pkl=snapshot)
      results.update(result["results"])
    return results
