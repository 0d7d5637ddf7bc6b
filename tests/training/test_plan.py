"""`sg3jax plan`: a small StyleGAN3-T planned on an 8-chip TPU v5e slice
(v5e:2x4) through the real code path (CLI, isolated compile workers of
`.venv-aot`, the real training step, XLA TPU), an oversized batch that
does not fit, and the pieces that need no compiler (batch search, config
transport, error parsing).

The planned step is also issue 18's CI proof that the whole training step
compiles for the slice with impl="auto" and the kernels in it: every phase
(G main with path length, D main, R1), ADA, the blur fade-in and mixed
precision, at 32² (experiments/tiny.py's network). The official 256² step
is tests/training/test_step_compile.py (slow).

The compiled classes cost that step's compile (a program per phase and
the finish program) and the oversized step's, whose phase programs XLA TPU
ends early, out of memory.
"""

import contextlib
import io
import json
import os
import subprocess
import tempfile

from absl.testing import absltest

from sg3jax import aot
from sg3jax.cli import plan as plan_cli
from sg3jax.training import abstract_step
from sg3jax.training import plan
from tests.kernels import test_compile
from tests.training import tiny

TARGET = "v5e:2x4"
TINY_PHASES = ["Gmain", "Dmain", "Dreg"]
# experiments/tiny.py with every phase, ADA, blur, mixed precision and the
# kernels (impl "auto"), at 32².
EVERY_PHASE_FLAGS = ["--config.data=demo:32", "--config.loss.pl_weight=2.0",
                     "--config.loss.blur_init_sigma=10.0",
                     "--config.loss.blur_fade_kimg=200.0",
                     "--config.augment.mode=ada",
                     "--config.mixed_precision=True",
                     "--config.G.num_fp16_res=2", "--config.D.num_fp16_res=2",
                     "--config.G.filtered_lrelu_impl=auto"]
EVERY_PHASE = ["Gboth", "Dmain", "Dreg"]
# Per device this needs over 100 GiB of temp (the whole tiny step at batch
# 1 needs 14 MiB), and XLA TPU gives up on every program within seconds
# (at 65536 the lone R1 program took four minutes to give up, at 8192 as
# long to fit).
OVERSIZED_BATCH = 2 ** 20


def _consistent(test: absltest.TestCase, result: dict) -> None:
  """A compiled program's per-device figures, as aot.Compiled defines
  them."""
  test.assertIsNone(result["error"])
  test.assertEqual(result["total_bytes"],
                   result["argument_bytes"] + result["output_bytes"] +
                   result["temp_bytes"] - result["alias_bytes"])
  test.assertGreater(result["argument_bytes"], 0)
  test.assertGreater(result["output_bytes"], 0)


class TinyPlanTest(absltest.TestCase):
  """`sg3jax plan --config=experiments/tiny.py <EVERY_PHASE_FLAGS>
  --target=v5e:2x4 --json=`."""

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    test_compile.require_compile_stack()
    cls.tmp = tempfile.TemporaryDirectory()
    path = os.path.join(cls.tmp.name, "plan.json")
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
      plan_cli.run(["sg3jax plan",
                    f"--config={tiny.EXPERIMENTS / 'tiny.py'}",
                    *EVERY_PHASE_FLAGS, f"--target={TARGET}",
                    f"--json={path}"])
    cls.printed = out.getvalue()
    with open(path) as f:
      cls.plan = json.load(f)

  @classmethod
  def tearDownClass(cls):
    cls.tmp.cleanup()
    super().tearDownClass()

  def test_the_step_compiles_with_every_phase_and_fits(self):
    step = self.plan["step"]
    _consistent(self, step)
    self.assertGreater(step["temp_bytes"], 0)
    # The step donates its state, as in training: the new state reuses it.
    self.assertGreater(step["alias_bytes"], 0)
    self.assertLessEqual(step["alias_bytes"], step["output_bytes"])
    self.assertEqual(step["phases"], EVERY_PHASE)
    self.assertTrue(self.plan["fits"])
    self.assertLess(step["total_bytes"], self.plan["hbm_bytes"])
    self.assertIsNone(self.plan["max_batch"])

  def test_the_kernels_are_in_the_step(self):
    # The forward and backward kernels of the filtered layers.
    self.assertGreaterEqual(self.plan["step"]["kernel_calls"], 2)

  def test_per_device_batch_and_devices(self):
    # experiments/tiny.py: batch 8, batch_gpu 0 -> 1 per device on 8 chips.
    self.assertEqual(self.plan["devices"], 8)
    self.assertEqual(self.plan["step"]["devices"], 8)
    self.assertEqual(self.plan["batch_gpu"], 1)
    self.assertEqual(self.plan["step"]["batch_size"], 8)
    self.assertEqual(self.plan["hbm_bytes"], 16 * aot.GIB)

  def test_each_phase_is_its_own_program_and_the_step_needs_the_largest(
      self):
    programs = self.plan["programs"]
    self.assertEqual([p["name"] for p in programs], EVERY_PHASE + ["finish"])
    for program in programs:
      _consistent(self, program)
      # Each program donates the state to the next, as in training.
      self.assertGreater(program["alias_bytes"], 0, program["name"])
    largest = max(programs, key=lambda p: p["total_bytes"])
    step = self.plan["step"]
    self.assertEqual(step["name"], largest["name"])
    for key in ("argument_bytes", "output_bytes", "temp_bytes",
                "alias_bytes", "total_bytes"):
      self.assertEqual(step[key], largest[key], key)
    self.assertEqual(step["kernel_calls"],
                     sum(p["kernel_calls"] for p in programs))
    # G_ema and ADA are elementwise: the finish program holds the least.
    finish = programs[-1]
    self.assertEqual(finish["kernel_calls"], 0)
    self.assertLess(finish["temp_bytes"],
                    min(p["temp_bytes"] for p in programs[:-1]))

  def test_xla_time_estimate(self):
    self.assertGreater(self.plan["step"]["optimal_seconds"], 0)

  def test_the_printed_report(self):
    self.assertIn("stylegan3-t 32² on v5e:2x4 (TPU v5e, 8 devices, "
                  "16.00 GiB of HBM each)", self.printed)
    self.assertIn("batch 1 per device, 8 global", self.printed)
    self.assertIn("step: Gboth, Dmain, Dreg", self.printed)
    for name in EVERY_PHASE + ["finish"]:
      self.assertIn(f"program {name}", self.printed)
    self.assertIn("XLA's time estimate:", self.printed)
    self.assertIn("fits: ", self.printed)
    self.assertNotIn("does not fit", self.printed)


class OversizedPlanTest(absltest.TestCase):
  """The tiny config at a per-device batch no chip holds: the plan names
  the program with the most temp."""

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    test_compile.require_compile_stack()
    cls.plan = plan.plan(tiny.load_experiment("tiny.py"), TARGET,
                         batch_gpu=OVERSIZED_BATCH)

  def test_does_not_fit_and_says_what_it_needs(self):
    self.assertFalse(self.plan.fits)
    self.assertTrue(plan.out_of_memory(self.plan.step),
                    self.plan.step["error"])
    self.assertGreater(plan.temp_bytes(self.plan.step), 16 * aot.GIB)
    self.assertEqual(self.plan.step["batch_size"], OVERSIZED_BATCH * 8)

  def test_names_the_program_with_the_most_temp(self):
    programs = self.plan.programs
    self.assertEqual([r["name"] for r in programs], TINY_PHASES + ["finish"])
    for result in programs:
      self.assertEqual(result["batch_gpu"], OVERSIZED_BATCH)
    for result in programs[:-1]:
      self.assertTrue(plan.out_of_memory(result), result["name"])
    # The finish program never reads the batch.
    self.assertIsNone(programs[-1]["error"])
    temps = {r["name"]: plan.temp_bytes(r) for r in programs}
    self.assertNotIn(None, temps.values(), programs)
    self.assertIn(self.plan.largest_program, TINY_PHASES)
    self.assertEqual(self.plan.largest_program, max(temps, key=temps.get))
    report = plan.format_plan(self.plan)
    self.assertIn(f"does not fit 16.00 GiB per device; the program with the "
                  f"most temp: {self.plan.largest_program}", report)
    self.assertIn("out of memory (needs ", report)
    for name in TINY_PHASES:
      self.assertIn(f"program {name}", report)


class DeviceCountTest(absltest.TestCase):

  def test_targets_count_their_compile_only_devices(self):
    test_compile.require_compile_stack()
    names = ["v4", "v5e:2x4", "v5p", "v6e", "h100", "h100x8"]
    script = ("import json; from sg3jax import aot; print(json.dumps("
              f"[len(aot.devices(n)) for n in {names!r}]))")
    result = subprocess.run([aot.aot_python(), "-c", script],
                            capture_output=True, text=True, check=True,
                            env=aot.worker_environment())
    counts = json.loads(result.stdout.strip().splitlines()[-1])
    self.assertEqual(counts, [aot.target(n).num_devices for n in names])
    # v4's compile-only devices are TensorCores: half a chip's HBM each.
    self.assertEqual(aot.target("v4").hbm_bytes_per_device, 16 * aot.GIB)


class LargestFittingTest(absltest.TestCase):

  def search(self, largest: int, start: int, limit: int = 4096):
    tried = []

    def fits_at(b):
      tried.append(b)
      return b <= largest

    return plan.largest_fitting(fits_at, start=start, limit=limit), tried

  def test_doubles_then_bisects(self):
    found, tried = self.search(largest=13, start=4)
    self.assertEqual(found, 13)
    self.assertEqual(tried, [4, 8, 16, 12, 14, 13])

  def test_halves_then_bisects(self):
    found, tried = self.search(largest=5, start=32)
    self.assertEqual(found, 5)
    self.assertEqual(tried, [32, 16, 8, 4, 6, 5])

  def test_nothing_fits(self):
    self.assertEqual(self.search(largest=0, start=4), (0, [4, 2, 1]))

  def test_stops_at_the_limit(self):
    self.assertEqual(self.search(largest=10 ** 9, start=3, limit=20),
                     (20, [3, 6, 12, 20]))


class StepCaseTest(absltest.TestCase):

  def test_the_worker_rebuilds_the_config(self):
    cfg = tiny.load_experiment("tiny.py")
    case = json.loads(json.dumps(plan.step_case(cfg, TARGET, 3)))
    rebuilt = abstract_step.step_config(case)
    self.assertEqual(case["resolution"], 16)  # from data "demo:16"
    self.assertEqual((rebuilt.batch_gpu, rebuilt.batch_size), (3, 24))
    expected = cfg.copy_and_resolve_references()
    expected.batch_gpu, expected.batch_size = 3, 24
    expected.ema_kimg = 24 * 10 / 32  # follows batch_size, as in training
    expected.resolution = 16
    self.assertEqual(rebuilt.copy_and_resolve_references().to_dict(),
                     expected.to_dict())

  def test_a_resolution_is_required(self):
    cfg = tiny.load_experiment("tiny.py")
    with tempfile.TemporaryDirectory() as folder:
      cfg.data = folder
      with self.assertRaisesRegex(ValueError, "config.resolution: plan needs "
                                  "a resolution"):
        plan.resolution_of(cfg)
      cfg.resolution = 64
      self.assertEqual(plan.resolution_of(cfg), 64)


class ResultTest(absltest.TestCase):

  OOM = {"target": TARGET, "batch_gpu": 4, "name": "Dreg",
         "error": "JaxRuntimeError: RESOURCE_EXHAUSTED: Ran out of memory on "
                  "HBM, the total memory required for HLO temporaries "
                  "(18.53G) exceeds available HBM (15.75G)."}

  def test_out_of_memory_is_does_not_fit(self):
    self.assertTrue(plan.out_of_memory(self.OOM))
    self.assertFalse(plan.fits(self.OOM, 16 * aot.GIB))
    self.assertEqual(plan.temp_bytes(self.OOM), int(18.53 * aot.GIB))

  def test_other_errors_raise_naming_the_program(self):
    failed = dict(self.OOM, error="compiler process died (exit code -9)")
    with self.assertRaisesRegex(plan.PlanError, "Dreg at batch_gpu 4 on "
                                "v5e:2x4: compiler process died"):
      plan.fits(failed, 16 * aot.GIB)

  def test_largest_program(self):
    compiled = {"name": "Gmain", "error": None, "temp_bytes": 5 * aot.GIB}
    self.assertEqual(plan.largest_program([compiled, self.OOM]), "Dreg")
    unstated = dict(self.OOM, name="Dmain",
                    error="RESOURCE_EXHAUSTED: Ran out of memory in hbm")
    self.assertEqual(plan.largest_program([compiled, self.OOM, unstated]),
                     "Dmain")
    self.assertIsNone(plan.largest_program([]))

  @staticmethod
  def program(name, total, error=None, kernels=1, estimate=0.5):
    return {"name": name, "error": error, "total_bytes": total,
            "temp_bytes": total, "kernel_calls": kernels, "seconds": 2.0,
            "optimal_seconds": estimate}

  def test_the_step_needs_its_largest_program(self):
    case = {"target": TARGET, "batch_gpu": 4}
    result = dict(case, phases=["Gmain", "Dmain"], devices=8, programs=[
        self.program("Gmain", 7), self.program("Dmain", 9),
        self.program("finish", 1, kernels=0)])
    step, programs = plan.step_result(result)
    self.assertEqual([p["name"] for p in programs],
                     ["Gmain", "Dmain", "finish"])
    self.assertEqual(programs[0]["batch_gpu"], 4)
    self.assertEqual((step["name"], step["total_bytes"]), ("Dmain", 9))
    self.assertEqual(step["kernel_calls"], 2)
    self.assertEqual(step["seconds"], 6.0)
    self.assertEqual(step["optimal_seconds"], 1.5)
    self.assertEqual(step["phases"], ["Gmain", "Dmain"])
    self.assertNotIn("programs", step)

  def test_a_failed_program_decides_the_step(self):
    case = {"target": TARGET, "batch_gpu": 4, "phases": ["Gmain", "Dmain"]}
    oom = self.program("Gmain", 0, error=self.OOM["error"], estimate=None)
    died = self.program("Dmain", 0, error="compiler process died")
    step, _ = plan.step_result(dict(case, programs=[
        oom, self.program("Dmain", 9)]))
    self.assertEqual(step["name"], "Gmain")
    self.assertIsNone(step["optimal_seconds"])
    self.assertFalse(plan.fits(step, 16 * aot.GIB))
    step, _ = plan.step_result(dict(case, programs=[oom, died]))
    with self.assertRaisesRegex(plan.PlanError, "Dmain at batch_gpu 4"):
      plan.fits(step, 16 * aot.GIB)

  def test_a_worker_error_is_the_step(self):
    failed = {"target": TARGET, "batch_gpu": 4,
              "error": "timed out after 60 s"}
    self.assertEqual(plan.step_result(failed), (failed, []))


class CommandLineTest(absltest.TestCase):

  def test_bad_target_is_named(self):
    with self.assertRaisesRegex(SystemExit, "sg3jax plan: target: expected "
                                ".*got 'v9'"):
      plan_cli.run(["sg3jax plan", f"--config={tiny.EXPERIMENTS / 'tiny.py'}",
                    "--target=v9"])

  def test_config_is_required(self):
    with self.assertRaisesRegex(SystemExit, "--config is required"):
      plan_cli.run(["sg3jax plan"])


if __name__ == "__main__":
  absltest.main()
