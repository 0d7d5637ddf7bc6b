"""The real compilers accept what impl="auto" lowers (CI subset).

On this CPU host, through compile-only devices (`sg3jax.aot`, the
`.venv-aot` compile stacks that `make test` installs): Mosaic + XLA TPU for
TPU v5e, XLA GPU + Triton + ptxas for the H100. `make compile-check` runs
the full matrix (every official layer, every TPU generation).

- Every kernel variant (up 2 and 4, separable and 2-D down filters, float32
  and bfloat16; forward and gradient in one program) compiles with the
  kernel in it on each target family; on the H100, `ptxas -v` reports no
  register spills in either kernel.
- 30 random valid calls (fixed seed), and a call with nothing to fuse,
  compile with impl="auto" on both targets, and take the kernel exactly
  when `ops.kernel_refusal` says they do: where the kernel cannot serve a
  call, the compiled program has no kernel in it (the fallback to XLA is
  real).
"""

import os
import unittest

from absl.testing import absltest

from sg3jax import aot
from sg3jax import compile_matrix

TARGETS = ("v5e", "h100")
RANDOM_SEED, RANDOM_COUNT = 0, 30


def require_compile_stack() -> None:
  """Skips without `.venv-aot`, except in CI (`make test` installs it)."""
  if aot.aot_python() is None:
    message = "no compile-stack venv: run `make aot-setup`"
    if os.environ.get("CI"):
      raise AssertionError(message)
    raise unittest.SkipTest(message)


def kernel_variants() -> list[dict]:
  """The smallest official layer of each (up, separable or 2-D down
  filter) in float32 and in bfloat16: StyleGAN3-T's layers have separable
  filters, StyleGAN3-R's a radial [K, K] down filter."""
  variants = []
  for cfg in ("stylegan3-t", "stylegan3-r"):
    layers = compile_matrix.official_layer_cases(cfg, 256, batch=2,
                                                 precisions=("float32",))
    for up in (2, 4):
      smallest = min((c for c in layers if c["up"] == up),
                     key=lambda c: c["x_shape"][1] * c["x_shape"][3])
      for dtype in ("float32", "bfloat16"):
        variants.append(dict(smallest, dtype=dtype))
  return variants


def _describe(result: dict) -> str:
  return (f"{result['layer']} {result['dtype']} {result['mode']} on "
          f"{result['target']}: {result.get('error')}")


class KernelVariantsCompileTest(absltest.TestCase):

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    require_compile_stack()
    cases = compile_matrix.with_modes(kernel_variants(), TARGETS,
                                      ["gradient"])
    cls.results = list(compile_matrix.compile_cases(cases, timeout_s=600))

  def test_variants_cover_every_kernel_path(self):
    seen = {(r["up"], len(_shape(r["fd"])), r["dtype"], r["target"])
            for r in self.results}
    self.assertLen(seen, 2 * 2 * 2 * len(TARGETS))

  def test_every_variant_compiles_with_both_kernels(self):
    for result in self.results:
      self.assertIsNone(result.get("error"), _describe(result))
      self.assertIs(result["supported"], True, _describe(result))
      # The forward and the backward kernel.
      self.assertGreaterEqual(result["kernel_calls"], 2, _describe(result))

  def test_gpu_kernels_do_not_spill(self):
    gpu = [r for r in self.results if r["target"] == "h100"]
    self.assertLen(gpu, len(kernel_variants()))
    for result in gpu:
      entries = {e for e in result["spill_bytes"]
                 if e.startswith("filtered_lrelu")}
      self.assertEqual(entries, {"filtered_lrelu_fwd_gpu",
                                 "filtered_lrelu_bwd_gpu"}, _describe(result))
      self.assertEqual(compile_matrix.kernel_spill_bytes(result), 0,
                       f"{_describe(result)}: {result['spill_bytes']}")


def _shape(nested) -> tuple[int, ...]:
  shape = []
  while isinstance(nested, list):
    shape.append(len(nested))
    nested = nested[0]
  return tuple(shape)


class RandomCallsCompileTest(absltest.TestCase):

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    require_compile_stack()
    cls.cases = compile_matrix.random_cases(RANDOM_SEED, RANDOM_COUNT)
    nothing_to_fuse = compile_matrix.call_case(
        (2, 20, 20, 8), "float32", dict(fu=[1.0], fd=[1.0], up=1, down=1,
                                        padding=[0, 0, 0, 0]),
        layer="nothing_to_fuse")
    cases = compile_matrix.with_modes(cls.cases + [nothing_to_fuse],
                                      TARGETS, ["forward"])
    cls.results = list(compile_matrix.compile_cases(cases, timeout_s=600))

  def test_cases_span_the_ranges(self):
    shapes = [c["x_shape"] for c in self.cases]
    self.assertLen(self.cases, RANDOM_COUNT)
    self.assertTrue(all(8 <= s[1] <= 300 and 3 <= s[3] <= 1024 and
                        1 <= s[0] <= 8 for s in shapes))
    self.assertEqual({c["dtype"] for c in self.cases},
                     {"float32", "bfloat16"})
    self.assertEqual({len(_shape(c["fd"])) for c in self.cases}, {1, 2})
    self.assertEqual({c["up"] for c in self.cases}, {1, 2, 4})
    self.assertEqual({c["down"] for c in self.cases}, {1, 2, 4})

  def test_every_call_compiles_on_every_target(self):
    self.assertLen(self.results, (RANDOM_COUNT + 1) * len(TARGETS))
    for result in self.results:
      self.assertIsNone(result.get("error"), _describe(result))

  def test_auto_takes_the_kernel_exactly_where_supported(self):
    for result in self.results:
      if result["supported"] is True:
        self.assertGreaterEqual(result["kernel_calls"], 1, _describe(result))
      else:
        self.assertEqual(result["kernel_calls"], 0,
                         f"{_describe(result)}: {result['supported']}")

  def test_some_calls_fall_back_and_some_take_the_kernel(self):
    for target in TARGETS:
      supported = [r["supported"] is True for r in self.results
                   if r["target"] == target]
      self.assertIn(True, supported, target)
      self.assertIn(False, supported, target)


if __name__ == "__main__":
  absltest.main()
