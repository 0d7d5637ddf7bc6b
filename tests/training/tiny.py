"""The tiny training configuration shared by the training tests: the one in
experiments/tiny.py (StyleGAN3-T at 16x16, 4 layers, batch 8)."""

import importlib.util
import pathlib

import ml_collections

EXPERIMENTS = pathlib.Path(__file__).resolve().parents[2] / "experiments"


def load_experiment(filename: str, arg: str | None = None
                    ) -> ml_collections.ConfigDict:
  """`get_config(arg)` of experiments/<filename>."""
  spec = importlib.util.spec_from_file_location(
      filename.removesuffix(".py"), EXPERIMENTS / filename)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module.get_config(arg)


def tiny_config() -> ml_collections.ConfigDict:
  return load_experiment("tiny.py")


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  """For `sg3jax train --config=tests/training/tiny.py`."""
  del arg
  return tiny_config()
