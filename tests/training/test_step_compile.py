"""The whole training step compiles for an 8-chip TPU v5e slice (v5e:2x4)
with impl="auto", kernels in: StyleGAN3-T with every phase (G main with
path length, D main, R1), ADA, the blur fade-in and mixed precision,
sharded over the slice's real compile-only devices (`sg3jax.aot`,
`.venv-aot`).

CI compiles a small StyleGAN3-T (32², 4 layers, 16 channels); the official
256² network takes longer than CI allows on two cores (over 15 minutes)
and is marked slow (`make test-slow`).
"""

import pytest
from absl.testing import absltest

from sg3jax import aot
from tests.kernels import test_compile

EVERY_PHASE = {"loss.pl_weight": 2.0, "loss.blur_init_sigma": 10.0,
               "loss.blur_fade_kimg": 200.0, "augment.mode": "ada",
               "mixed_precision": True}
SMALL = dict(config="stylegan3-t", resolution=32, batch_size=8, batch_gpu=1,
             target="v5e:2x4", overrides=dict(
                 EVERY_PHASE, cbase=512, cmax=16, **{
                     "G.num_layers": 4, "G.z_dim": 16, "G.w_dim": 16,
                     "G.num_fp16_res": 2, "D.num_fp16_res": 2}))
OFFICIAL_256 = dict(config="stylegan3-t", resolution=256, batch_size=8,
                    batch_gpu=1, target="v5e:2x4", overrides=EVERY_PHASE)


def compile_step(case: dict) -> dict:
  test_compile.require_compile_stack()
  result, = aot.run_isolated("sg3jax.training.abstract_step", [case],
                             timeout_s=3600, max_bytes=16 * aot.GIB)
  return result


class StepCompileTest(absltest.TestCase):
  case = SMALL

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    cls.result = compile_step(cls.case)

  def test_compiles_with_every_phase_and_the_kernels(self):
    self.assertIsNone(self.result.get("error"), self.result.get("error"))
    self.assertEqual(self.result["phases"], ["Gboth", "Dmain", "Dreg"])
    # The forward and backward kernels of the filtered layers.
    self.assertGreaterEqual(self.result["kernel_calls"], 2)

  def test_fits_a_v5e_chip(self):
    self.assertGreater(self.result["temp_bytes"], 0)
    self.assertLess(self.result["total_bytes"],
                    aot.target("v5e").chip.hbm_bytes)


@pytest.mark.slow
class OfficialStepCompileTest(StepCompileTest):
  case = OFFICIAL_256


if __name__ == "__main__":
  absltest.main()
