"""The whole training step, over 8 devices, lowers for CUDA and each TPU
generation with impl="auto" resolved as on those devices (kernels in).

The step runs in `tests/training/step_lowering_check.py`, a subprocess,
because the 8 simulated devices must be set before jax is imported.
"""

from absl.testing import absltest

from tests.kernels import targets
from tests.training import tiny


class StepLoweringTest(absltest.TestCase):

  def test_every_phase_lowers_with_kernels_for_every_target(self):
    result = tiny.run_check("tests.training.step_lowering_check")
    self.assertEqual(result["phases"], ["Gmain", "Greg", "Dmain", "Dreg"])
    self.assertEqual(set(result["kernels"]), set(targets.TARGETS))
    for target in targets.TARGETS:
      # A forward and a backward kernel for each filtered layer.
      self.assertGreaterEqual(result["kernels"][target], 2, target)
      self.assertGreater(result["all_reduces"][target], 0, target)


if __name__ == "__main__":
  absltest.main()
