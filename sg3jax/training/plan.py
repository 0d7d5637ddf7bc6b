"""Plan a training run for a TPU slice or GPUs from any host (`sg3jax plan`).

`plan(cfg, target)` compiles the real training step of a config (every
phase active: G main, G reg when pl_weight > 0, D main, D reg, ADA) for the
target's compile-only devices (`sg3jax.aot`), in an isolated worker of the
compile-stack venv with a time and address-space limit. The step is one
program per phase and a "finish" program (`step.StepBuilder.programs`); a
device holds one program's buffers at a time, so the step needs what its
largest program needs. The plan reports per device, for the step and each
program: argument, output, temp and total bytes against the chip's HBM,
whether it fits, and on TPU XLA's time estimate; a step that does not fit
names the program that holds the most temp. `max_batch` finds the largest
per-device batch that fits by compiling.

The per-device batch is the config's `batch_gpu` (or batch_size over the
devices when it is 0); the global batch is that times the devices (no
gradient accumulation). The dataset is not opened: the resolution comes
from `config.resolution` (or a `demo:RES` data spec), images are RGB and
unconditional.
"""

import copy
import dataclasses
import re
from collections.abc import Callable
from typing import Any

import ml_collections

from sg3jax import aot
from sg3jax.data import demo
from sg3jax.data import image_dataset
from sg3jax.training import abstract_step

WORKER = "sg3jax.training.abstract_step"
# What an out-of-memory TPU compile says (XLA TPU checks the program's HBM
# need at compile time; XLA GPU does not, so a GPU plan compares sizes).
_OUT_OF_MEMORY = "RESOURCE_EXHAUSTED: Ran out of memory"
# "... the total memory required for HLO temporaries (18.53G) exceeds
# available HBM (15.75G)": the temp an out-of-memory program asked for.
_OOM_TEMP = re.compile(r"HLO temporaries \(([\d.]+)([KMGT])\)")
_UNITS = {"K": 2 ** 10, "M": 2 ** 20, "G": 2 ** 30, "T": 2 ** 40}


class PlanError(RuntimeError):
  """A compile failed for a reason other than memory."""


@dataclasses.dataclass(frozen=True)
class Limits:
  """Per compile: wall-clock seconds and bytes of address space."""
  timeout_s: float = 3600.0
  max_bytes: int = 48 * aot.GIB


@dataclasses.dataclass
class Plan:
  """What `plan` found.

  step: the step's result: the `aot.Compiled` fields (as a dict) of its
    program that needs the most (`step_result`), kernel calls, XLA's time
    estimate and compile seconds summed over its programs, "phases" and
    "devices"; or the worker's {"error": ...}.
  programs: each program's result, with its "name" (a phase or "finish").
  max_batch: the largest per-device batch that fits (None: not searched).
  """
  target: str
  config: str
  devices: int
  batch_gpu: int
  hbm_bytes: int
  step: dict
  programs: list[dict] = dataclasses.field(default_factory=list)
  max_batch: int | None = None

  @property
  def fits(self) -> bool:
    return fits(self.step, self.hbm_bytes)

  @property
  def largest_program(self) -> str | None:
    """The program that holds the most temp (None when none compiled)."""
    return largest_program(self.programs)

  def to_json(self) -> dict:
    return dict(dataclasses.asdict(self), fits=self.fits,
                largest_program=self.largest_program)


def out_of_memory(result: dict) -> bool:
  """Whether a compile failed because the program needs more HBM than the
  chip has."""
  return _OUT_OF_MEMORY in (result.get("error") or "")


def fits(result: dict, hbm_bytes: int) -> bool:
  """Whether a compiled program fits a chip of `hbm_bytes`.

  Raises:
    PlanError: when the compile failed for another reason than memory.
  """
  if out_of_memory(result):
    return False
  if result.get("error"):
    raise PlanError(f"{result.get('name') or 'step'} at batch_gpu "
                    f"{result['batch_gpu']} on {result['target']}: "
                    f"{result['error']}")
  return result["total_bytes"] <= hbm_bytes


def temp_bytes(result: dict) -> int | None:
  """A program's temp bytes: compiled, or as an out-of-memory error states
  it (None when it does not)."""
  if not result.get("error"):
    return result["temp_bytes"]
  match = _OOM_TEMP.search(result["error"])
  if match is None:
    return None
  return int(float(match.group(1)) * _UNITS[match.group(2)])


def largest_program(programs: list[dict]) -> str | None:
  """The name of the program holding the most temp; an out-of-memory
  program whose need is unstated ranks above any figure."""
  if not programs:
    return None

  def need(result):
    temp = temp_bytes(result)
    return float("inf") if temp is None else temp

  return max(programs, key=need)["name"]


def step_result(result: dict) -> tuple[dict, list[dict]]:
  """(the step, its programs) from a worker's result
  (`abstract_step.compile_step_case`, merged into its case).

  The step carries the case and the figures of the program a device needs
  most for: a failed compile other than out of memory first (so that `fits`
  raises on it), then an out-of-memory one, then the largest total."""
  if "programs" not in result:
    return result, []
  case = {k: v for k, v in result.items() if k != "programs"}
  programs = [dict(case, **program) for program in result["programs"]]

  def need(program):
    if program["error"]:
      return (2 - out_of_memory(program), 0)
    return (0, program["total_bytes"])

  estimates = [p["optimal_seconds"] for p in programs]
  step = dict(max(programs, key=need),
              kernel_calls=sum(p["kernel_calls"] for p in programs),
              seconds=sum(p["seconds"] for p in programs),
              optimal_seconds=None if None in estimates else sum(estimates))
  return step, programs


def resolution_of(cfg: ml_collections.ConfigDict) -> int:
  """The image resolution a config trains at, without opening its data.

  Raises:
    ValueError: when neither `resolution` nor a `demo` data spec gives it.
  """
  if cfg.resolution:
    return cfg.resolution
  kind, _, option = image_dataset.parse_source(cfg.data, argument="data")
  if kind == "demo":
    return int(option) if option else demo.DEFAULT_RESOLUTION
  raise ValueError(f"config.resolution: plan needs a resolution (e.g. "
                   f"--config.resolution=256) when data is {cfg.data!r}")


def _flatten(tree: dict, prefix: str = "") -> dict[str, Any]:
  """{"a": {"b": 1}} -> {"a.b": 1}."""
  flat = {}
  for key, value in tree.items():
    if isinstance(value, dict):
      flat.update(_flatten(value, f"{prefix}{key}."))
    else:
      flat[prefix + key] = value
  return flat


def step_case(cfg: ml_collections.ConfigDict, target: str, batch_gpu: int
              ) -> dict:
  """The worker case (`abstract_step.compile_step_case`) of `cfg`'s step at
  `batch_gpu` per device on `target` (batch_size = batch_gpu x devices,
  values derived from it follow; the resolution of `resolution_of`): the
  config travels as the options that differ from its base config (keys
  outside the schema are not read by training and are left out)."""
  cfg = copy.deepcopy(cfg)
  cfg.batch_gpu = batch_gpu
  cfg.batch_size = batch_gpu * aot.target(target).num_devices
  case = dict(config=cfg.cfg, resolution=resolution_of(cfg),
              batch_size=cfg.batch_size, batch_gpu=batch_gpu, target=target)
  base = _flatten(abstract_step.step_config(case)
                  .copy_and_resolve_references().to_dict())
  wanted = _flatten(cfg.copy_and_resolve_references().to_dict())
  case["overrides"] = {key: value for key, value in wanted.items()
                       if key in base and key != "resolution"
                       and value != base[key]}
  return case


def per_device_batch(cfg: ml_collections.ConfigDict, target: str) -> int:
  """The config's per-device batch on `target`: batch_gpu, or batch_size
  over the devices when batch_gpu is 0."""
  devices = aot.target(target).num_devices
  batch_gpu = cfg.batch_gpu or cfg.batch_size // devices
  if batch_gpu <= 0:
    raise ValueError(f"batch_gpu: expected a positive per-device batch, got "
                     f"{batch_gpu} (batch_size {cfg.batch_size} on {devices} "
                     f"devices)")
  return batch_gpu


def compile_step(case: dict, limits: Limits) -> tuple[dict, list[dict]]:
  """`step_result` of a step case, compiled in an isolated worker."""
  result, = aot.run_isolated(WORKER, [case], timeout_s=limits.timeout_s,
                             max_bytes=limits.max_bytes)
  return step_result(result)


def describe(cfg: ml_collections.ConfigDict) -> str:
  """"stylegan3-t 256²"."""
  return f"{cfg.cfg} {resolution_of(cfg)}²"


def plan(cfg: ml_collections.ConfigDict, target: str, *,
         batch_gpu: int | None = None, search_max_batch: bool = False,
         limits: Limits = Limits()) -> Plan:
  """Compiles `cfg`'s training step for `target` and reports what it needs.

  Args:
    cfg: a training config.
    target: an `aot.target` name (e.g. "v5e:2x4", "h100").
    batch_gpu: per-device batch (default: the config's).
    search_max_batch: also find the largest per-device batch that fits
      (`largest_fitting`, one step compile per batch tried).
    limits: per-step time and memory of the compile worker.

  Raises:
    ValueError: bad target, batch or config.
    PlanError: a compile failed for another reason than memory.
  """
  t = aot.target(target)
  batch_gpu = batch_gpu or per_device_batch(cfg, target)
  if batch_gpu <= 0:
    raise ValueError(f"batch_gpu: expected a positive integer, got "
                     f"{batch_gpu}")
  step, programs = compile_step(step_case(cfg, target, batch_gpu), limits)
  result = Plan(target, describe(cfg), t.num_devices, batch_gpu,
                t.hbm_bytes_per_device, step, programs)
  for program in programs:
    fits(program, t.hbm_bytes_per_device)  # raises on a non-memory failure
  if search_max_batch:
    known = {batch_gpu: result.fits}

    def step_fits(b: int) -> bool:
      if b not in known:
        step, _ = compile_step(step_case(cfg, target, b), limits)
        known[b] = fits(step, t.hbm_bytes_per_device)
      return known[b]

    result.max_batch = largest_fitting(step_fits, start=batch_gpu)
  return result


def largest_fitting(fits_at: Callable[[int], bool], *, start: int,
                    limit: int = 4096) -> int:
  """The largest batch b in [1, limit] with `fits_at(b)`, 0 when not even 1
  fits; `fits_at` must be monotone (what fits at b fits below b).

  From `start` it doubles while the batch fits (or halves while it does
  not), then bisects over the integers in between.
  """
  if fits_at(start):
    low, high = start, None
    while high is None:
      if low >= limit:
        return limit
      b = min(2 * low, limit)
      if fits_at(b):
        low = b
      else:
        high = b
  else:
    low, high = 0, start
    while low == 0:
      b = high // 2
      if b == 0:
        return 0
      if fits_at(b):
        low = b
      else:
        high = b
  while high - low > 1:
    b = (low + high) // 2
    if fits_at(b):
      low = b
    else:
      high = b
  return low


def _size(n: int | None) -> str:
  """Bytes as "18.53 GiB", "12.4 MiB" or "96.0 KiB"."""
  if n is None:
    return "-"
  for unit, scale in (("GiB", 2 ** 30), ("MiB", 2 ** 20)):
    if n >= scale:
      return f"{n / scale:.2f} {unit}"
  return f"{n / 2 ** 10:.1f} KiB"


def _row(name: str, result: dict) -> str:
  if result.get("error"):
    temp = temp_bytes(result)
    needs = f" (needs {_size(temp)} of temp)" if temp is not None else ""
    return f"  {name:<24} out of memory{needs}"
  sizes = (result[k] for k in ("argument_bytes", "output_bytes",
                               "temp_bytes", "alias_bytes", "total_bytes"))
  return f"  {name:<24}" + "".join(f"{_size(n):>12}" for n in sizes)


def format_plan(p: Plan) -> str:
  """The report `sg3jax plan` prints."""
  t = aot.target(p.target)
  header = ("argument", "output", "temp", "alias", "total")
  phases = ", ".join(p.step.get("phases") or ["every phase"])
  lines = [
      f"{p.config} on {p.target} ({t.chip.name}, {p.devices} device"
      f"{'s' if p.devices > 1 else ''}, {_size(p.hbm_bytes)} of HBM each)",
      f"batch {p.batch_gpu} per device, {p.batch_gpu * p.devices} global",
      f"  {'per device':<24}" + "".join(f"{h:>12}" for h in header),
      _row(f"step: {phases}", p.step)]
  lines += [_row(f"  program {r['name']}", r) for r in p.programs]
  if p.step.get("compiler_options"):
    lines.append(f"compiled with {p.step['compiler_options']} (XLA's "
                 f"Triton GEMM tiling failed with the defaults)")
  if p.step.get("optimal_seconds"):
    lines.append(f"XLA's time estimate: {p.step['optimal_seconds']:.4f} s "
                 f"per step")
  if p.fits:
    lines.append(f"fits: {_size(p.step['total_bytes'])} of "
                 f"{_size(p.hbm_bytes)} per device (the largest program, "
                 f"{p.step['name']})")
  else:
    lines.append(f"does not fit {_size(p.hbm_bytes)} per device; the program "
                 f"with the most temp: {p.largest_program}")
  if p.max_batch is not None:
    lines.append(f"largest per-device batch that fits: {p.max_batch}")
  return "\n".join(lines)
