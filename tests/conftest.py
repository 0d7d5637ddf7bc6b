"""pytest set-up shared by all tests."""

import os
import pathlib

from absl import flags

# One persistent JAX compilation cache for the suite, set before any test
# imports jax: the xdist workers and the subprocesses that tests start
# (CLI commands, multi-device and multi-process runs, resumed trainings)
# compile the same tiny programs, and each program then compiles once. A
# fresh clone starts with an empty cache; XLA keys entries by program,
# options and versions, so a stale entry is never used. Programs that
# compile in under 0.1 s (the thousands of single ops that eager code
# compiles) are not written: writing them costs more than compiling them
# again (tests/networks/test_generator.py: 71.5 s with them, 69.0 without).
os.environ.setdefault(
    "JAX_COMPILATION_CACHE_DIR",
    str(pathlib.Path(__file__).resolve().parents[1] / ".cache" / "jax-tests"))
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0.1")

# Most test programs are tiny and run for milliseconds, so compiling them is
# most of the suite's time: skip LLVM's expensive passes on the host (XLA's
# HLO passes still run). A cold tiny training run takes 25 s instead of 41 s.
# Tests whose programs run long turn optimization back on
# (the float64 loss terms in
# tests/training/test_losses.py); the compile-only TPU and H100
# workers (sg3jax/aot.py) always use the real compilers' settings.
os.environ.setdefault("JAX_DISABLE_MOST_OPTIMIZATIONS", "1")

# XLA CPU's older loop emitters compile in half the time of its default
# fusion emitters (a tiny step's programs: 1.9 s instead of 3.8 s; an eager
# op: 20 ms instead of 28 ms; the suite: 14:12 instead of 16:36). The
# official-parity tests pass under both at their tolerances. Tests that
# start subprocesses append to these flags, so both sides of a comparison
# compile alike. Set here, before any test imports jax.
_FAST_CPU_EMITTERS = "--xla_cpu_use_fusion_emitters=false"
if _FAST_CPU_EMITTERS not in os.environ.get("XLA_FLAGS", ""):
  os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " "
                             + _FAST_CPU_EMITTERS).strip()

# absltest helpers (create_tempdir, flagsaver) read absl flags, which pytest
# never parses; take the defaults.
flags.FLAGS.mark_as_parsed()
