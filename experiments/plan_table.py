"""`sg3jax plan` for the official configs on TPUs and the H100: a table.

    make plan-table
    .venv/bin/python experiments/plan_table.py [--targets=v5e:2x4,h100]
        [--configs=stylegan3-t] [--resolutions=256] [--out=out/plan_table]

Plans StyleGAN3-T and -R at 256², 512² and 1024² with the official
per-GPU batch of an 8-GPU run (`config.recommended(cfg, res, 8)`:
batch_gpu 4; on v4 a device is a TensorCore) on each target, every phase
in the step (a device needs what the step's largest program needs), and
writes OUT.json (every plan; a rerun skips the plans already there) and
OUT.md (target x config -> fits, per-device GiB, temp GiB, whether that
is within the official "GPU mem", the program with the most temp when it
does not fit). A 256² step takes about 20
minutes to compile for TPU on two cores; the table takes hours.
"""

import json
import os

from absl import app
from absl import flags

from sg3jax import aot
from sg3jax.training import config as config_lib
from sg3jax.training import plan

_TARGETS = flags.DEFINE_list("targets", ["v5e:2x4", "v4", "v6e", "h100"],
                             "plan targets (sg3jax.aot.target names)")
_CONFIGS = flags.DEFINE_list("configs", ["stylegan3-t", "stylegan3-r"],
                             "official configs")
_RESOLUTIONS = flags.DEFINE_list("resolutions", ["256", "512", "1024"],
                                 "resolutions")
_GPUS = flags.DEFINE_integer("gpus", 8, "the official table row's GPU count "
                             "(picks batch_gpu)")
_TIMEOUT = flags.DEFINE_float("timeout_s", 3600, "seconds per step compile")
_MAX_GIB = flags.DEFINE_float("max_gib", 48, "address space per compile")
_OUT = flags.DEFINE_string("out", "out/plan_table", "OUT.json and OUT.md")


def _key(target: str, config: str) -> str:
  return f"{target} {config}"


def _cell(p: dict, official_gib: float) -> str:
  """A table cell: fits, per-device GiB (temp GiB) and whether that is
  within the official GPU mem, or what does not fit."""
  step = p["step"]
  if p["fits"]:
    total = step["total_bytes"] / aot.GIB
    within = "within" if total <= official_gib else "over"
    return (f"fits, {total:.2f} GiB (temp {step['temp_bytes'] / aot.GIB:.2f}"
            f"), {within} official")
  temp = plan.temp_bytes(step)
  needs = "" if temp is None else f" (temp {temp / aot.GIB:.2f} GiB)"
  return f"does not fit{needs}, most temp: {p['largest_program']}"


def markdown(plans: dict[str, dict], targets: list[str],
             configs: dict[str, float]) -> str:
  """Target x config table of `plans` (keyed by `_key`); `configs` maps
  each config's description to its official GPU mem (GiB), the first
  row."""
  lines = ["| target | " + " | ".join(configs) + " |",
           "|---" * (len(configs) + 1) + "|",
           "| official GPU mem | " + " | ".join(
               f"{gib} GiB" for gib in configs.values()) + " |"]
  for target in targets:
    cells = [_cell(plans[_key(target, c)], gib) if _key(target, c) in plans
             else "-" for c, gib in configs.items()]
    lines.append(f"| {target} | " + " | ".join(cells) + " |")
  return "\n".join(lines) + "\n"


def main(argv):
  del argv
  json_path, md_path = _OUT.value + ".json", _OUT.value + ".md"
  plans = {}
  if os.path.exists(json_path):
    with open(json_path) as f:
      plans = json.load(f)
  limits = plan.Limits(timeout_s=_TIMEOUT.value,
                       max_bytes=int(_MAX_GIB.value * aot.GIB))
  configs = {}
  for name in _CONFIGS.value:
    for resolution in map(int, _RESOLUTIONS.value):
      cfg = config_lib.recommended(name, resolution, _GPUS.value)
      configs[plan.describe(cfg)] = config_lib.official_gpu_mem_gib(
          name, resolution, _GPUS.value)
      for target in _TARGETS.value:
        key = _key(target, plan.describe(cfg))
        if key in plans:
          continue
        result = plan.plan(cfg, target, limits=limits)
        print(plan.format_plan(result), flush=True)
        plans[key] = result.to_json()
        os.makedirs(os.path.dirname(json_path) or ".", exist_ok=True)
        with open(json_path, "w") as f:
          json.dump(plans, f, indent=1)
  table = markdown(plans, _TARGETS.value, configs)
  with open(md_path, "w") as f:
    f.write(table)
  print(table)


if __name__ == "__main__":
  app.run(main)
