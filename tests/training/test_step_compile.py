"""The official StyleGAN3-T 256² training step compiles for an 8-chip TPU
v5e slice (v5e:2x4) with impl="auto", kernels in: every phase (G main with
path length, D main, R1), ADA, the blur fade-in and mixed precision,
sharded over the slice's real compile-only devices (`sg3jax.aot`,
`.venv-aot`).

It takes longer than CI allows on two cores (about an hour) and is marked
slow (`make test-slow`). CI compiles the same step for a 32² network in
tests/training/test_plan.py (TinyPlanTest).
"""

import pytest
from absl.testing import absltest

from sg3jax import aot
from sg3jax.training import plan
from tests.kernels import test_compile

OFFICIAL_256 = dict(config="stylegan3-t", resolution=256, batch_size=8,
                    batch_gpu=1, target="v5e:2x4", overrides={
                        "loss.pl_weight": 2.0, "loss.blur_init_sigma": 10.0,
                        "loss.blur_fade_kimg": 200.0, "augment.mode": "ada",
                        "mixed_precision": True})


@pytest.mark.slow
class OfficialStepCompileTest(absltest.TestCase):

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    test_compile.require_compile_stack()
    # sg3jax plan's address-space limit: the compiler died at 20 GiB.
    cls.result, = aot.run_isolated("sg3jax.training.abstract_step",
                                   [OFFICIAL_256], timeout_s=5400,
                                   max_bytes=plan.Limits().max_bytes)

  def test_compiles_with_every_phase_and_the_kernels(self):
    self.assertIsNone(self.result.get("error"), self.result.get("error"))
    self.assertEqual(self.result["phases"], ["Gboth", "Dmain", "Dreg"])
    # The forward and backward kernels of the filtered layers.
    self.assertGreaterEqual(self.result["kernel_calls"], 2)

  def test_fits_a_v5e_chip(self):
    self.assertGreater(self.result["temp_bytes"], 0)
    self.assertLess(self.result["total_bytes"],
                    aot.target("v5e").chip.hbm_bytes)


if __name__ == "__main__":
  absltest.main()
