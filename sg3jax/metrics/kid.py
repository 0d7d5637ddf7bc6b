"""Kernel Inception Distance (Binkowski et al. 2018), as the official
`kernel_inception_distance.py`: unbiased MMD^2 with the cubic polynomial
kernel k(x, y) = (x.y / D + 1)^3, averaged over random subsets."""

import numpy as np


def kernel_inception_distance(real: np.ndarray, gen: np.ndarray, *,
                              num_subsets: int = 100,
                              max_subset_size: int = 1000,
                              rng: np.random.RandomState | None = None
                              ) -> float:
  """KID of features `real` `[Nr, D]` and `gen` `[Ng, D]`.

  Each of `num_subsets` subsets draws m = min(Nr, Ng, max_subset_size)
  generated then m real features without replacement, with
  `rng.choice` in the official order (the official uses NumPy's global
  RandomState: `RandomState(seed)` here draws the subsets that
  `np.random.seed(seed)` draws there).
  """
  real = np.asarray(real)
  gen = np.asarray(gen)
  if real.ndim != 2 or gen.ndim != 2 or real.shape[1] != gen.shape[1]:
    raise ValueError(f"features: expected [N, D] arrays of one D, got "
                     f"{real.shape} and {gen.shape}")
  rng = np.random.RandomState() if rng is None else rng
  n = real.shape[1]
  m = min(real.shape[0], gen.shape[0], max_subset_size)
  t = 0
  for _ in range(num_subsets):
    x = gen[rng.choice(gen.shape[0], m, replace=False)]
    y = real[rng.choice(real.shape[0], m, replace=False)]
    a = (x @ x.T / n + 1) ** 3 + (y @ y.T / n + 1) ** 3
    b = (x @ y.T / n + 1) ** 3
    t += (a.sum() - np.diag(a).sum()) / (m - 1) - b.sum() * 2 / m
  return float(t / num_subsets / m)
