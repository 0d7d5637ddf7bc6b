"""Registered metrics and their JSONL reports (official metric_main format).

Equivariance (`eqt50k_int`, `eqt50k_frac`, `eqr50k`) needs only G; the
dataset metrics (`fid50k_full`, `kid50k_full`, `pr50k3_full`, `is50k` and
the legacy `fid50k`, `kid50k`, `pr50k3`) also need `data` and a detector
(Inception, or VGG16 for precision/recall), found in `detector_dir` or
$SG3JAX_DETECTORS; `ppl2_wend` needs the VGG16 detector (and `data` for
the labels of a conditional G). `calc_metric(name, G, variables,
...)` returns the official result dict
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
import numpy as np

from sg3jax.metrics import equivariance
from sg3jax.metrics import fid
from sg3jax.metrics import inception_score
from sg3jax.metrics import kid
from sg3jax.metrics import metric_utils
from sg3jax.metrics import ppl
from sg3jax.metrics import precision_recall
from sg3jax.training.stats import format_time

# name -> equivariance kind (official metric_main: 50k samples, batch 4).
_EQUIVARIANCE_METRICS = {
    "eqt50k_int": "int",
    "eqt50k_frac": "frac",
    "eqr50k": "rot",
}


# name -> (kind, max_real, num_gen) as official metric_main: `_full` uses
# the whole dataset without x-flips (max_real None, 1e6 or 2e5).
_DATASET_METRICS = {
    "fid50k_full": ("fid", None, 50000),
    "kid50k_full": ("kid", 1000000, 50000),
    "pr50k3_full": ("pr", 200000, 50000),
    "is50k": ("is", None, 50000),
    "fid50k": ("fid", 50000, 50000),
    "kid50k": ("kid", 50000, 50000),
    "pr50k3": ("pr", 50000, 50000),
}
# The feature detector of each kind of dataset metric.
_DETECTOR = {"fid": "inception", "kid": "inception", "is": "inception",
             "pr": "vgg16"}
# name -> samples (official ppl2_wend: epsilon 1e-4, W space, endpoints,
# no crop).
_PPL_METRICS = {"ppl2_wend": 50000}


def list_valid_metrics() -> list[str]:
  return (list(_DATASET_METRICS) + list(_PPL_METRICS)
          + list(_EQUIVARIANCE_METRICS))


def is_valid_metric(metric: str) -> bool:
  return metric in list_valid_metrics()


def needs_data(metric: str) -> bool:
  """Whether the metric reads the dataset's images (ppl2_wend reads only
  the labels of a conditional G)."""
  return metric in _DATASET_METRICS


def result_names(metric: str) -> list[str]:
  """The keys of a metric's `results` (official names): e.g. fid50k_full;
  pr50k3_full_precision, pr50k3_full_recall; is50k_mean, is50k_std."""
  kind = _DATASET_METRICS.get(metric, (None,))[0]
  if kind == "pr":
    return [f"{metric}_precision", f"{metric}_recall"]
  if kind == "is":
    return [f"{metric}_mean", f"{metric}_std"]
  return [metric]


def detector_of(metric: str) -> str | None:
  """The detector a metric needs ("inception", "vgg16"), or None."""
  if metric in _DATASET_METRICS:
    return _DETECTOR[_DATASET_METRICS[metric][0]]
  return "vgg16" if metric in _PPL_METRICS else None


def check_detectors(metrics, detector_dir: str | None) -> None:
  """Loads the detectors these metrics need, so that a missing or corrupt
  weight file fails before any work."""
  for kind in sorted({detector_of(m) for m in metrics} - {None}):
    metric_utils.load_detector(kind, detector_dir)


def _open_dataset(data, G, metric: str):
  from sg3jax import data as data_lib  # pylint: disable=g-import-not-at-top
  if data is None:
    raise ValueError(f"{metric}: needs a dataset (--data)")
  return data_lib.open_dataset(str(data), use_labels=bool(G.c_dim))


def _dataset_metric(metric: str, G, variables, *, data, num, batch, seed,
                    detector_dir, cache, progress, mesh) -> dict[str, float]:
  """{result name: value} of one dataset metric, as official metric_main.

  `num` (when given) replaces the generated count and, for the legacy
  metrics, the real count.
  """
  kind, max_real, num_gen = _DATASET_METRICS[metric]
  if num is not None:
    num_gen = num
    if max_real == 50000:
      max_real = num
  dataset = _open_dataset(data, G, metric)
  if max_real is not None and max_real <= 50000 and len(dataset) < max_real:
    raise ValueError(
        f"data: {data} has {len(dataset)} images, fewer than the {max_real} "
        f"real images {metric} uses (use the _full metric or a smaller "
        "--num)")
  detector, d_vars, d_name = metric_utils.load_detector(
      detector_of(metric), detector_dir)
  out_kind = "probs" if kind == "is" else "features"
  common = dict(batch=batch, progress=progress, mesh=mesh)
  if kind != "is":
    real = metric_utils.dataset_features(
        dataset, detector, d_vars, data_path=str(data), detector_name=d_name,
        max_items=max_real, cache=cache, capture_all=kind != "fid",
        capture_mean_cov=kind == "fid", **common)
  gen = metric_utils.generator_features(
      G, variables, detector, d_vars, num=num_gen, dataset=dataset,
      kind=out_kind, seed=seed, capture_all=kind != "fid",
      capture_mean_cov=kind == "fid", **common)
  if kind == "fid":
    return {metric: fid.frechet_distance(*gen.get_mean_cov(),
                                         *real.get_mean_cov())}
  if kind == "kid":
    return {metric: kid.kernel_inception_distance(
        real.get_all(), gen.get_all(), num_subsets=100,
        max_subset_size=1000, rng=np.random.RandomState(seed))}
  if kind == "pr":
    precision, recall = precision_recall.precision_recall(
        real.get_all(), gen.get_all(), nhood_size=3, row_batch_size=10000,
        col_batch_size=10000)
    return {f"{metric}_precision": precision, f"{metric}_recall": recall}
  mean, std = inception_score.inception_score(gen.get_all(), num_splits=10)
  return {f"{metric}_mean": mean, f"{metric}_std": std}


def _ppl_metric(metric: str, G, variables, *, data, num, batch, seed,
                detector_dir, progress, mesh) -> dict[str, float]:
  dataset = _open_dataset(data, G, metric) if G.c_dim else None
  vgg, vgg_vars, _ = metric_utils.load_detector("vgg16", detector_dir)
  value, _ = ppl.compute_ppl(
      G, variables, vgg, vgg_vars, num=_PPL_METRICS[metric] if num is None
      else num, dataset=dataset, batch=batch, seed=seed, mesh=mesh,
      progress=progress)
  return {metric: value}


def calc_metric(metric: str, G: nn.Module, variables: Mapping, *,
                num: int | None = None, batch: int | None = None,
                seed: int = 0, devices: list[jax.Device] | None = None,
                progress: bool = True, data: str | None = None,
                detector_dir: str | None = None, cache: bool = True) -> dict:
  """Computes one registered metric of generator G.

  Args:
    metric: a name from `list_valid_metrics()`.
    G: a `Generator`; variables: its variables.
    num: samples (default: the official count, 50000); for fid50k,
      kid50k and pr50k3 also the real images used.
    batch: samples per step over all devices (see
      `equivariance.compute_equivariance`; dataset metrics: default 64).
    seed: seed of latents, labels, transforms and KID subsets.
    devices: devices to shard over (default: all).
    progress: tqdm progress bar (images, images/s, ETA).
    data: the dataset of the dataset metrics (any `open_dataset` path);
      for ppl2_wend only that of a conditional G (its labels).
    detector_dir: where the detector files are (default
      $SG3JAX_DETECTORS).
    cache: read and write cached dataset statistics.

  Returns:
    {'results': {metric: value}, 'metric', 'total_time', 'total_time_str',
    'num_gpus'} (num_gpus = number of devices used).
  """
  if not is_valid_metric(metric):
    raise ValueError(f"metric: expected one of {list_valid_metrics()}, got "
                     f"{metric!r}")
  start = time.time()
  if detector_of(metric) is not None:
    mesh = metric_utils.data_mesh(devices)
    common = dict(data=data, num=num, batch=batch, seed=seed,
                  detector_dir=detector_dir, progress=progress, mesh=mesh)
    if metric in _DATASET_METRICS:
      results = _dataset_metric(metric, G, variables, cache=cache, **common)
    else:
      results = _ppl_metric(metric, G, variables, **common)
    num_devices = mesh.devices.size
  else:
    out = equivariance.compute_equivariance(
        G, variables, _EQUIVARIANCE_METRICS[metric],
        num=50000 if num is None else num, batch=batch, seed=seed,
        devices=devices, progress=progress)
    results, num_devices = {metric: out["psnr"]}, out["num_devices"]
  total = time.time() - start
  return {"results": results, "metric": metric,
          "total_time": total, "total_time_str": format_time(total),
          "num_gpus": num_devices}


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
