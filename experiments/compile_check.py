"""Compile every official filtered_lrelu layer for TPUs and the H100.

    make compile-check
    .venv/bin/python experiments/compile_check.py [--targets=v5e,h100]
        [--configs=stylegan3-t] [--resolutions=256] [--out=FILE.json]

Every distinct filtered_lrelu layer of StyleGAN3-T and -R at 256², 512²
and 1024² (official channel bases, batch --batch), in float32 and in the
official mixed precision, forward and gradient, plus the second order of
the 256² float32 layers at the path-length batch (--batch / 2, the official
pl_batch_shrink), compiled with
impl="auto" by the real compilers on this host (`sg3jax.aot`: Mosaic and
XLA TPU for v4/v5e/v5p/v6e, XLA GPU + Triton + ptxas for the H100), each in
an isolated process with a time and memory limit.

Prints a row per program (layer, precision, mode, target; `kernel` when it
compiled with the fused kernel in it, `xla` when auto chose the XLA path,
or the error; temp MiB; compile seconds; on the H100 `SPILLS n B` when
`ptxas -v` reports register spills in a filtered_lrelu kernel), a summary
per target, and writes every result to --out (JSON) and a per-layer
Markdown table beside it (`--results=a.json,b.json` rebuilds both from
earlier runs, e.g. the TPU and the GPU halves). Exits 1 when a program
failed to compile, when auto's choice disagrees with `check_supported`, or
when a GPU kernel spills.
"""

import collections
import json
import os
import sys

from absl import app
from absl import flags

from sg3jax import aot
from sg3jax import compile_matrix

_TARGETS = flags.DEFINE_list("targets", ["v4", "v5e", "v5p", "v6e", "h100"],
                             "compile targets (sg3jax.aot.target names)")
_CONFIGS = flags.DEFINE_list("configs", ["stylegan3-t", "stylegan3-r"],
                             "generator configs")
_RESOLUTIONS = flags.DEFINE_list("resolutions", ["256", "512", "1024"],
                                 "output resolutions")
_MODES = flags.DEFINE_list("modes", ["forward", "gradient"], "modes of "
                           "every layer (second_order runs on the 256² "
                           "float32 layers with --second_order)")
_SECOND_ORDER = flags.DEFINE_bool("second_order", True,
                                  "also the second order of 256² layers")
_BATCH = flags.DEFINE_integer("batch", 4, "batch (official per-GPU batch "
                              "of the 256² configs)")
_TIMEOUT = flags.DEFINE_float("timeout", 900, "seconds per compile")
_MAX_GIB = flags.DEFINE_float("max_gib", 10, "address space per compile")
_WORKERS = flags.DEFINE_integer("workers", 2, "compiles at a time")
_OUT = flags.DEFINE_string("out", "out/compile_check.json", "JSON results "
                           "(and a per-layer Markdown table beside it, .md)")
_RESULTS = flags.DEFINE_list("results", [], "compile nothing: summarize "
                             "these JSON results of earlier runs instead")


def matrix_cases() -> list[dict]:
  """Every (layer, precision, mode, target) of the flags."""
  cases = []
  for cfg in _CONFIGS.value:
    for resolution in map(int, _RESOLUTIONS.value):
      layers = compile_matrix.official_layer_cases(cfg, resolution,
                                                   batch=_BATCH.value)
      cases += compile_matrix.with_modes(layers, _TARGETS.value,
                                         _MODES.value)
      if _SECOND_ORDER.value and resolution == 256:
        # Path length runs on batch / pl_batch_shrink (official: 2).
        shrunk = compile_matrix.official_layer_cases(
            cfg, resolution, batch=max(1, _BATCH.value // 2),
            precisions=("float32",))
        cases += compile_matrix.with_modes(shrunk, _TARGETS.value,
                                           ["second_order"])
  return cases


def status(result: dict) -> str:
  """kernel / xla / the error's head; '!' marks auto disagreeing with
  check_supported, 'SPILLS' a GPU kernel whose registers spill."""
  if result.get("error"):
    return "ERROR " + result["error"].splitlines()[0][:150]
  took_kernel = result["kernel_calls"] > 0
  agrees = took_kernel == (result["supported"] is True)
  spills = compile_matrix.kernel_spill_bytes(result)
  return (("kernel" if took_kernel else "xla") + ("" if agrees else " !") +
          (f" SPILLS {spills} B" if spills else ""))


def failed(result: dict) -> bool:
  """An error, auto disagreeing with check_supported, or spills."""
  return status(result).startswith("ERROR") or "!" in status(result) or (
      bool(compile_matrix.kernel_spill_bytes(result)))


def row(result: dict) -> str:
  return (f"{result['layer']:<24} {result.get('precision', ''):<8} "
          f"{result['mode']:<13} {result['target']:<6} "
          f"{result.get('temp_bytes', 0) / 2 ** 20:>9.1f} "
          f"{result.get('seconds', 0):>7.1f}  {status(result)}")


def summary(results: list[dict]) -> list[str]:
  """Per target: compiled, with the kernel, auto disagreeing with
  check_supported, the most temp of a kernel program per mode, spills."""
  by_target = collections.defaultdict(list)
  for r in results:
    by_target[r["target"]].append(r)
  lines = []
  for target, rs in by_target.items():
    ok = [r for r in rs if not r.get("error")]
    kernel = [r for r in ok if r["kernel_calls"] > 0]
    wrong = [r for r in ok if "!" in status(r)]
    temps = collections.defaultdict(int)
    for r in kernel:
      temps[r["mode"]] = max(temps[r["mode"]], r["temp_bytes"])
    temp_line = ", ".join(f"{mode} {temp / 2 ** 20:.1f}"
                          for mode, temp in temps.items())
    spills = [compile_matrix.kernel_spill_bytes(r) for r in kernel]
    checked = [s for s in spills if s is not None]
    spill_line = (f", ptxas -v on {len(checked)}: kernels spilling "
                  f"{sum(1 for s in checked if s)}" if checked else "")
    lines.append(f"{target:<6} compiled {len(ok)}/{len(rs)}, with the kernel "
                 f"{len(kernel)}, auto vs check_supported disagree "
                 f"{len(wrong)}, max temp of a kernel program (MiB): "
                 f"{temp_line}{spill_line}")
  return lines


def layer_table(results: list[dict]) -> list[str]:
  """Markdown: a row per layer (its input shape), a column per target:
  programs that compiled with the kernel / programs (every precision and
  mode), then the most temp of that layer's forward and gradient
  programs."""
  targets = list(dict.fromkeys(r["target"] for r in results))
  cells = collections.defaultdict(list)
  shapes = {}
  for r in results:
    cells[(r["layer"], r["target"])].append(r)
    shapes.setdefault(r["layer"], "x".join(map(str, r["x_shape"])))
  lines = ["| layer | x [N,H,W,C] | " + " | ".join(
               f"{t}: kernel / programs, fwd+grad temp MiB" for t in targets)
           + " |", "|---|---|" + "---|" * len(targets)]
  for layer in shapes:
    row_cells = []
    for t in targets:
      rs = cells[(layer, t)]
      good = sum(1 for r in rs if not failed(r) and r["kernel_calls"] > 0)
      temp = max((r.get("temp_bytes", 0) for r in rs
                  if r["mode"] != "second_order"), default=0)
      row_cells.append(f"{good}/{len(rs)}, {temp / 2 ** 20:.1f}")
    lines.append(f"| {layer} | {shapes[layer]} | " + " | ".join(row_cells)
                 + " |")
  return lines


def write_reports(results: list[dict], out: str) -> None:
  """The summary to stdout; JSON to `out`, the layer table beside it."""
  print("\n".join(summary(results)))
  with open(out, "w") as f:
    json.dump(results, f, indent=1)
  table = os.path.splitext(out)[0] + ".md"
  with open(table, "w") as f:
    f.write("\n".join(summary(results) + [""] + layer_table(results)) + "\n")
  print(f"wrote {out} and {table}")


def main(argv):
  del argv
  os.makedirs(os.path.dirname(_OUT.value) or ".", exist_ok=True)
  if _RESULTS.value:
    results = []
    for path in _RESULTS.value:
      with open(path) as f:
        results += json.load(f)
    write_reports(results, _OUT.value)
    sys.exit(1 if any(map(failed, results)) else 0)
  cases = matrix_cases()
  print(f"{len(cases)} programs; results stream as they compile",
        flush=True)
  print(f"{'layer':<24} {'prec':<8} {'mode':<13} {'target':<6} "
        f"{'temp MiB':>9} {'comp s':>7}  status", flush=True)
  results = []
  for result in compile_matrix.compile_cases(
      cases, timeout_s=_TIMEOUT.value,
      max_bytes=int(_MAX_GIB.value * aot.GIB), workers=_WORKERS.value):
    result.pop("fu", None)
    result.pop("fd", None)
    results.append(result)
    print(row(result), flush=True)
    with open(_OUT.value, "w") as f:
      json.dump(results, f, indent=1)
  write_reports(results, _OUT.value)
  sys.exit(1 if any(map(failed, results)) else 0)


if __name__ == "__main__":
  app.run(main)
