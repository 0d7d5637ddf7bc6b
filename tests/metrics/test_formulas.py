"""FID, KID, precision/recall and IS on fixed synthetic features against the
official compute functions.

Fixtures: tests/official_extra/metrics.npz `fid/*`, `kid/*`, `pr/*`, `is/*`
(official compute_fid, compute_kid, compute_pr, compute_is; see README).
"""

import numpy as np
from absl.testing import absltest

from sg3jax.metrics import fid
from sg3jax.metrics import inception_score
from sg3jax.metrics import kid
from sg3jax.metrics import precision_recall
from tests import official


def stats_of(features, batch):
  stats = fid.FeatureStats(capture_all=True, capture_mean_cov=True)
  for i in range(0, len(features), batch):
    stats.append(features[i:i + batch])
  return stats


class FormulaParityTest(absltest.TestCase):

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    cls.data, cls.params = official.load_extra("metrics")

  def test_mean_and_covariance(self):
    # Other batch boundaries than the official run: float64 sums agree to
    # rounding.
    mu, sigma = stats_of(self.data["fid/real"], 37).get_mean_cov()
    np.testing.assert_allclose(mu, self.data["fid/real_mu"], rtol=1e-12,
                               atol=1e-15)
    np.testing.assert_allclose(sigma, self.data["fid/real_sigma"],
                               rtol=1e-12, atol=1e-15)

  def test_fid(self):
    real = stats_of(self.data["fid/real"], 64).get_mean_cov()
    gen = stats_of(self.data["fid/gen"], 48).get_mean_cov()
    value = fid.frechet_distance(*gen, *real)
    np.testing.assert_allclose(value, self.data["fid/value"], rtol=1e-6)

  def test_kid_same_subsets(self):
    for case in ("value", "small_subsets"):
      p = self.params["kid"][case]
      value = kid.kernel_inception_distance(
          self.data["fid/real"], self.data["fid/gen"],
          num_subsets=p["num_subsets"], max_subset_size=p["max_subset_size"],
          rng=np.random.RandomState(p["seed"]))
      np.testing.assert_allclose(value, self.data[f"kid/{case}"], rtol=1e-6)

  def test_precision_recall(self):
    p = self.params["pr"]
    precision, recall = precision_recall.precision_recall(
        self.data["pr/real"], self.data["pr/gen"],
        nhood_size=p["nhood_size"], row_batch_size=p["row_batch_size"],
        col_batch_size=p["col_batch_size"])
    self.assertEqual(precision, float(self.data["pr/precision"]))
    self.assertEqual(recall, float(self.data["pr/recall"]))

  def test_precision_recall_blocks_do_not_matter(self):
    args = (self.data["pr/real"], self.data["pr/gen"])
    self.assertEqual(
        precision_recall.precision_recall(*args, row_batch_size=17,
                                          col_batch_size=1000),
        precision_recall.precision_recall(*args, row_batch_size=1000,
                                          col_batch_size=23))

  def test_inception_score(self):
    mean, std = inception_score.inception_score(
        self.data["is/probs"], num_splits=self.params["is"]["num_splits"])
    np.testing.assert_allclose(mean, self.data["is/mean"], rtol=1e-6)
    np.testing.assert_allclose(std, self.data["is/std"], rtol=1e-5)

  def test_bad_inputs(self):
    with self.assertRaisesRegex(ValueError, r"\[N, D\]"):
      kid.kernel_inception_distance(np.zeros((5, 3)), np.zeros((5, 4)))
    with self.assertRaisesRegex(ValueError, "nhood_size=3"):
      precision_recall.precision_recall(np.zeros((3, 2)), np.zeros((9, 2)))
    with self.assertRaisesRegex(ValueError, "shapes"):
      fid.frechet_distance(np.zeros(2), np.eye(3), np.zeros(2), np.eye(3))
    with self.assertRaisesRegex(ValueError, "get_all"):
      fid.FeatureStats(capture_mean_cov=True).get_all()


if __name__ == "__main__":
  absltest.main()
