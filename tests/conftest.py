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

# absltest helpers (create_tempdir, flagsaver) read absl flags, which pytest
# never parses; take the defaults.
flags.FLAGS.mark_as_parsed()
