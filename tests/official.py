"""Access to the official StyleGAN3 reference numbers.

`load`: ../shared/official (the directory is `$SG3JAX_OFFICIAL`, else
`<repo>/../shared/official`). `load_extra`: tests/official_extra, numbers
made the same way for what ../shared/official does not cover (StyleGAN2
generator, path length, ADA; see its README.md).
Arrays there are NCHW/OIHW (official layout); `nhwc` and `hwio` convert.
"""

import functools
import json
import os
import pathlib

import numpy as np
from absl.testing import absltest

REPO = pathlib.Path(__file__).resolve().parents[1]
OFFICIAL_DIR = pathlib.Path(
    os.environ.get("SG3JAX_OFFICIAL", REPO.parent / "shared" / "official"))


@functools.cache
def load(name: str) -> tuple[dict[str, np.ndarray], dict]:
  """(arrays, case parameters) of `<name>.npz` / `<name>.json`.

  Skips the calling test when the fixtures are absent (a checkout without
  shared/); `.ci/run` checks that they are present, so CI never skips.
  """
  npz = OFFICIAL_DIR / f"{name}.npz"
  if not npz.exists():
    raise absltest.SkipTest(f"official fixtures not found at {npz}; set "
                            "SG3JAX_OFFICIAL")
  with np.load(npz) as arrays:
    data = dict(arrays)
  return data, json.loads((OFFICIAL_DIR / f"{name}.json").read_text())


EXTRA_DIR = pathlib.Path(__file__).resolve().parent / "official_extra"


@functools.cache
def load_extra(name: str) -> tuple[dict[str, np.ndarray], dict]:
  """(arrays, parameters) of tests/official_extra/`<name>`.npz / .json."""
  with np.load(EXTRA_DIR / f"{name}.npz") as arrays:
    data = dict(arrays)
  return data, json.loads((EXTRA_DIR / f"{name}.json").read_text())


def nhwc(x: np.ndarray) -> np.ndarray:
  """NCHW -> NHWC."""
  return np.ascontiguousarray(x.transpose(0, 2, 3, 1))


def hwio(w: np.ndarray) -> np.ndarray:
  """OIHW -> HWIO."""
  return np.ascontiguousarray(w.transpose(2, 3, 1, 0))


def max_rel_error(actual, expected) -> float:
  """max |actual - expected| / max |expected|: error relative to the scale."""
  expected = np.asarray(expected)
  scale = float(np.abs(expected).max()) or 1.0
  return float(np.abs(np.asarray(actual) - expected).max()) / scale
