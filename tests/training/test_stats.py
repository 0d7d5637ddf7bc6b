"""Tick statistics in the official format."""

import math

import numpy as np
from absl.testing import absltest

from sg3jax.training import stats


class SummarizeTest(absltest.TestCase):

  def test_moments_give_num_mean_and_population_std(self):
    values = np.array([0.5, -1.0, 2.0, 4.0])
    moments = {"Loss/G/loss": np.array(
        [len(values), values.sum(), np.square(values).sum()])}
    got = stats.summarize(moments)["Loss/G/loss"]
    self.assertEqual(got["num"], 4)
    self.assertAlmostEqual(got["mean"], values.mean(), places=12)
    self.assertAlmostEqual(got["std"], values.std(), places=12)

  def test_names_without_values_as_the_official_collector_lists_them(self):
    moments = {"Loss/G/loss": np.array([2.0, 1.0, 1.0]),
               "Loss/r1_penalty": np.zeros(3),
               "Loss/pl_penalty": np.zeros(3)}
    # Unreported so far: left out. Reported in an earlier tick: num 0, NaN.
    self.assertEqual(set(stats.summarize(moments)), {"Loss/G/loss"})
    got = stats.summarize(moments, {"Loss/G/loss", "Loss/r1_penalty"})
    self.assertEqual(set(got), {"Loss/G/loss", "Loss/r1_penalty"})
    self.assertEqual(got["Loss/r1_penalty"]["num"], 0)
    self.assertTrue(math.isnan(got["Loss/r1_penalty"]["mean"]))
    self.assertTrue(math.isnan(got["Loss/r1_penalty"]["std"]))
    progress = {name: stats.scalar(1.0) for name in (
        "Progress/tick", "Progress/kimg", "Timing/total_sec")}
    self.assertIn("r1 nan", stats.tick_line({**got, **progress}))


if __name__ == "__main__":
  absltest.main()
