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
    phases = ["Gmain", "Greg", "Dmain", "Dreg"]
    self.assertEqual(result["phases"], phases)
    self.assertEqual(list(result["programs"]), phases + ["finish"])
    for name in phases:
      program = result["programs"][name]
      self.assertEqual(set(program["kernels"]), set(targets.TARGETS))
      for target in targets.TARGETS:
        # Every phase averages its gradients over the devices.
        self.assertGreater(program["all_reduces"][target], 0, (name, target))
        if name != "Dreg":  # R1 runs D alone
          # G's forward and backward kernels of the filtered layers.
          self.assertGreaterEqual(program["kernels"][target], 2,
                                  (name, target))
    # G_ema and ADA: elementwise on the replicated state, no kernel.
    self.assertEqual(set(result["programs"]["finish"]["kernels"].values()),
                     {0})


if __name__ == "__main__":
  absltest.main()
