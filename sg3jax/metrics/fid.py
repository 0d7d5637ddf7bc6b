"""Fréchet Inception Distance (Heusel et al. 2017), as the official
`frechet_inception_distance.py` computes it.

`FeatureStats` accumulates the mean and (biased) covariance of features in
float64 as the official `metric_utils.FeatureStats` does;
`frechet_distance` is the official formula with scipy's `sqrtm`.
"""

import warnings

import numpy as np
import scipy.linalg


class FeatureStats:
  """Running float64 sums of features `[N, D]` (official FeatureStats).

  Args:
    capture_all: keep every feature (KID, PR, IS need them).
    capture_mean_cov: accumulate the sums for the mean and covariance.
    max_items: stop accepting features after this many.
  """

  def __init__(self, *, capture_all: bool = False,
               capture_mean_cov: bool = False, max_items: int | None = None):
    self.capture_all = capture_all
    self.capture_mean_cov = capture_mean_cov
    self.max_items = max_items
    self.num_items = 0
    self.num_features = None
    self._all = []
    self._sum = None
    self._outer = None

  def is_full(self) -> bool:
    return self.max_items is not None and self.num_items >= self.max_items

  def append(self, x: np.ndarray) -> None:
    """Adds features `[B, D]` (float32), keeping at most max_items."""
    x = np.asarray(x, np.float32)
    if x.ndim != 2:
      raise ValueError(f"features: expected [N, D], got {x.shape}")
    if self.num_features is None:
      self.num_features = x.shape[1]
      self._sum = np.zeros(x.shape[1], np.float64)
      self._outer = np.zeros((x.shape[1],) * 2, np.float64)
    if x.shape[1] != self.num_features:
      raise ValueError(f"features: expected {self.num_features} per item, "
                       f"got {x.shape[1]}")
    if self.max_items is not None:
      x = x[:max(self.max_items - self.num_items, 0)]
    self.num_items += x.shape[0]
    if self.capture_all:
      self._all.append(x)
    if self.capture_mean_cov:
      x64 = x.astype(np.float64)
      self._sum += x64.sum(axis=0)
      self._outer += x64.T @ x64

  def get_all(self) -> np.ndarray:
    """Every feature `[N, D]`, float32."""
    if not self.capture_all:
      raise ValueError("get_all: the stats were made without capture_all")
    return np.concatenate(self._all, axis=0)

  def get_mean_cov(self) -> tuple[np.ndarray, np.ndarray]:
    """(mean `[D]`, covariance `[D, D]`), float64, the covariance divided
    by N as the official."""
    if not self.capture_mean_cov or not self.num_items:
      raise ValueError("get_mean_cov: no mean/covariance captured")
    mean = self._sum / self.num_items
    cov = self._outer / self.num_items - np.outer(mean, mean)
    return mean, cov

  def state(self) -> dict[str, np.ndarray]:
    """Arrays that `from_state` restores (the dataset-statistics cache)."""
    state = {"num_items": np.int64(self.num_items),
             "flags": np.array([self.capture_all, self.capture_mean_cov])}
    if self.capture_all:
      state["all"] = self.get_all()
    if self.capture_mean_cov:
      state["sum"], state["outer"] = self._sum, self._outer
    return state

  @classmethod
  def from_state(cls, state) -> "FeatureStats":
    capture_all, capture_mean_cov = (bool(f) for f in state["flags"])
    stats = cls(capture_all=capture_all, capture_mean_cov=capture_mean_cov)
    stats.num_items = int(state["num_items"])
    if capture_all:
      stats._all = [np.asarray(state["all"], np.float32)]
      stats.num_features = stats._all[0].shape[1]
    if capture_mean_cov:
      stats._sum = np.asarray(state["sum"], np.float64)
      stats._outer = np.asarray(state["outer"], np.float64)
      stats.num_features = stats._sum.shape[0]
    return stats


def frechet_distance(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray,
                     sigma2: np.ndarray) -> float:
  """|mu1 - mu2|^2 + tr(sigma1 + sigma2 - 2 sqrt(sigma1 sigma2)).

  As the official: scipy.linalg.sqrtm of the product (the same algorithm;
  its `disp` argument, which the official passes, is deprecated), real
  part of the result.
  """
  mu1, mu2 = np.asarray(mu1, np.float64), np.asarray(mu2, np.float64)
  sigma1 = np.asarray(sigma1, np.float64)
  sigma2 = np.asarray(sigma2, np.float64)
  if mu1.shape != mu2.shape or sigma1.shape != sigma2.shape or (
      sigma1.shape != mu1.shape * 2):
    raise ValueError(f"frechet_distance: shapes mu {mu1.shape}, "
                     f"{mu2.shape}, sigma {sigma1.shape}, {sigma2.shape}")
  m = np.square(mu1 - mu2).sum()
  with warnings.catch_warnings():
    # The official's disp=False: no warning for a singular product (fewer
    # samples than features).
    warnings.simplefilter("ignore", scipy.linalg.LinAlgWarning)
    s = scipy.linalg.sqrtm(np.dot(sigma1, sigma2))
  return float(np.real(m + np.trace(sigma1 + sigma2 - s * 2)))
