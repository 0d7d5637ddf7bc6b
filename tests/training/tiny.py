"""The tiny training configuration shared by the training tests: the one in
experiments/tiny.py (StyleGAN3-T at 16x16, 4 layers, batch 8)."""

import importlib.util
import json
import os
import pathlib
import subprocess
import sys

import ml_collections

REPO = pathlib.Path(__file__).resolve().parents[2]
EXPERIMENTS = REPO / "experiments"


def load_experiment(filename: str, arg: str | None = None
                    ) -> ml_collections.ConfigDict:
  """`get_config(arg)` of experiments/<filename>."""
  spec = importlib.util.spec_from_file_location(
      filename.removesuffix(".py"), EXPERIMENTS / filename)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module.get_config(arg)


def run_check(module: str) -> dict:
  """The JSON last line of `python -m <module>` run from the repository
  (a check in a fresh process, e.g. one that sets the simulated device
  count before jax is imported); AssertionError with its stderr if it
  fails."""
  out = subprocess.run(
      [sys.executable, "-m", module], cwd=REPO,
      env=dict(os.environ, PYTHONPATH=str(REPO)), capture_output=True,
      text=True, check=False)
  if out.returncode != 0:
    raise AssertionError(f"{module} exited {out.returncode}: "
                         f"{out.stderr[-3000:]}")
  return json.loads(out.stdout.strip().splitlines()[-1])


def tiny_config() -> ml_collections.ConfigDict:
  return load_experiment("tiny.py")


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  """For `sg3jax train --config=tests/training/tiny.py`."""
  del arg
  return tiny_config()
