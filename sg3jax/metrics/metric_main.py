"""Registered metrics and their JSONL reports (official metric_main format).

`calc_metric(name, G, variables, ...)` returns the official result dict
(`results`, `metric`, `total_time`, `total_time_str`, `num_gpus` = number of
devices); `report_metric` appends it, with `snapshot_pkl` and `timestamp`,
as one line to `<run_dir>/metric-<name>.jsonl`, as the official code does.
"""

import json
import os
import time
from collections.abc import Mapping

import flax.linen as nn
import jax

from sg3jax.metrics import equivariance
from sg3jax.training.stats import format_time

# name -> equivariance kind (official metric_main: 50k samples, batch 4).
_EQUIVARIANCE_METRICS = {
    "eqt50k_int": "int",
    "eqt50k_frac": "frac",
    "eqr50k": "rot",
}


def list_valid_metrics() -> list[str]:
  return list(_EQUIVARIANCE_METRICS)


def is_valid_metric(metric: str) -> bool:
  return metric in _EQUIVARIANCE_METRICS


def calc_metric(metric: str, G: nn.Module, variables: Mapping, *,
                num: int = 50000, batch: int | None = None, seed: int = 0,
                devices: list[jax.Device] | None = None,
                progress: bool = True) -> dict:
  """Computes one registered metric of generator G.

  Args:
    metric: a name from `list_valid_metrics()`.
    G: a `Generator`; variables: its variables.
    num: samples (the official uses 50000 whatever the name says).
    batch: samples per step over all devices (see
      `equivariance.compute_equivariance`).
    seed: seed of latents and transforms.
    devices: devices to shard over (default: all).
    progress: tqdm progress bar.

  Returns:
    {'results': {metric: value}, 'metric', 'total_time', 'total_time_str',
    'num_gpus'} (num_gpus = number of devices used).
  """
  if not is_valid_metric(metric):
    raise ValueError(f"metric: expected one of {list_valid_metrics()}, got "
                     f"{metric!r}")
  start = time.time()
  out = equivariance.compute_equivariance(
      G, variables, _EQUIVARIANCE_METRICS[metric], num=num, batch=batch,
      seed=seed, devices=devices, progress=progress)
  total = time.time() - start
  return {"results": {metric: out["psnr"]}, "metric": metric,
          "total_time": total, "total_time_str": format_time(total),
          "num_gpus": out["num_devices"]}


def report_metric(result: Mapping, run_dir: str | os.PathLike | None = None,
                  snapshot_pkl: str | os.PathLike | None = None) -> str:
  """Prints the result as a JSON line and appends it to
  `<run_dir>/metric-<metric>.jsonl` when run_dir is a directory.

  `snapshot_pkl` is recorded relative to run_dir when both are given.
  Returns the line.
  """
  if run_dir is not None and snapshot_pkl is not None:
    snapshot_pkl = os.path.relpath(snapshot_pkl, run_dir)
  line = json.dumps(dict(
      result, snapshot_pkl=None if snapshot_pkl is None else str(snapshot_pkl),
      timestamp=time.time()))
  print(line)
  if run_dir is not None and os.path.isdir(run_dir):
    path = os.path.join(run_dir, f"metric-{result['metric']}.jsonl")
    with open(path, "at", encoding="utf-8") as f:
      f.write(line + "\n")
  return line
