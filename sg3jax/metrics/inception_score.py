"""Inception Score (Salimans et al. 2016), as the official
`inception_score.py`: exp(E KL(p(y|x) || p(y))) over splits."""

import numpy as np


def inception_score(probs: np.ndarray, *, num_splits: int = 10
                    ) -> tuple[float, float]:
  """(mean, std) over `num_splits` of class probabilities `[N, K]` (the
  detector's softmax without the output bias)."""
  probs = np.asarray(probs)
  if probs.ndim != 2 or probs.shape[0] < num_splits:
    raise ValueError(f"probs: expected [N >= {num_splits}, K], got "
                     f"{probs.shape}")
  num = probs.shape[0]
  scores = []
  for i in range(num_splits):
    part = probs[i * num // num_splits:(i + 1) * num // num_splits]
    kl = part * (np.log(part) - np.log(np.mean(part, axis=0, keepdims=True)))
    scores.append(np.exp(np.mean(np.sum(kl, axis=1))))
  return float(np.mean(scores)), float(np.std(scores))
