"""Compile for TPUs and NVIDIA GPUs on any host (ahead of time, no device).

`jax.experimental.topologies` gives compile-only devices of a target
topology. A program traced against them and lowered for their platform runs
the whole compiler: XLA TPU and Mosaic (libtpu) for TPUs; XLA GPU, Triton
and ptxas for the H100. What comes back is what the chip would need:
argument, output and temporary bytes, on TPU XLA's own time estimate, and
on GPU the register spills of every kernel (`ptxas -v` on XLA's PTX).

The compile stacks (`jax[tpu]`, `jax-cuda12-plugin` with the ptxas of
`nvidia-cuda-nvcc-cu12`) live in their own venv
(`make aot-setup`: `.venv-aot`, at the main venv's jax version), so a
user's install is not disturbed. `run_isolated` compiles in a worker
process of that venv with a time and memory limit per program (a bad Triton
block can make ptxas run for minutes in over 12 GB).

Targets are named `v4`, `v5e`, `v5p`, `v6e` (a few chips each; the
program uses one unless it shards over `devices(target)`), `v5e:2x4`-style
TPU topologies, `h100` (one GPU) and `h100x8` (eight GPUs in one process).
"""

import dataclasses
import functools
import importlib.resources
import importlib.util
import json
import os
import re
import select
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from collections.abc import Iterable
from collections.abc import Iterator
from typing import Any

import jax

# Each platform's custom call of the fused filtered_lrelu kernel.
KERNEL_CALLS = {"tpu": "tpu_custom_call", "cuda": "__gpu$xla.gpu.triton"}
GIB = 2 ** 30


@dataclasses.dataclass(frozen=True)
class Chip:
  """Published figures of one accelerator chip.

  hbm_bytes: memory per chip (what the compiler may allocate).
  hbm_bytes_per_s: memory bandwidth.
  peak_flops: dense bf16 matrix-unit peak (MXU / tensor cores).
  vector_flops: float32 peak of the vector units (TPU VPU; GPU CUDA cores),
    which run the kernels' FIR stages.
  """
  name: str
  hbm_bytes: int
  hbm_bytes_per_s: float
  peak_flops: float
  vector_flops: float


CHIPS = {
    "v4": Chip("TPU v4", 32 * GIB, 1.2e12, 275e12, 275e12 / 16),
    "v5e": Chip("TPU v5e", 16 * GIB, 0.819e12, 197e12, 197e12 / 16),
    "v5p": Chip("TPU v5p", 95 * GIB, 2.765e12, 459e12, 459e12 / 16),
    "v6e": Chip("TPU v6e", 32 * GIB, 1.64e12, 918e12, 918e12 / 16),
    "h100": Chip("NVIDIA H100 SXM", 80 * 10 ** 9, 3.35e12, 989e12, 67e12),
}
# A few chips of each TPU generation, as a named target.
_DEFAULT_TOPOLOGY = {"v4": "v4:2x2x1", "v5e": "v5e:2x2", "v5p": "v5p:2x2x1",
                     "v6e": "v6e:2x2"}
_GPU_TOPOLOGY = {"h100": "1x1x1", "h100x8": "1x1x8"}
# libtpu's compile-only v4 topologies have a device per TensorCore (two per
# chip, `core_on_chip` 0 and 1), not one per chip as v4's megacore runtime
# shows; v5p's have one per chip.
_DEVICES_PER_CHIP = {"v4": 2}


@dataclasses.dataclass(frozen=True)
class Target:
  """A compile target: platform ("tpu" or "cuda"), topology, chip."""
  name: str
  platform: str
  topology: str
  chip: Chip

  @property
  def num_chips(self) -> int:
    """Chips in the topology: the product of its dimensions."""
    count = 1
    for dim in self.topology.split(":")[-1].split("x"):
      count *= int(dim)
    return count

  @property
  def num_devices(self) -> int:
    """Compile-only devices of the topology (`devices(name)`)."""
    generation = self.name.split(":")[0]
    return self.num_chips * _DEVICES_PER_CHIP.get(generation, 1)

  @property
  def hbm_bytes_per_device(self) -> int:
    """A device's share of its chip's HBM."""
    return self.chip.hbm_bytes * self.num_chips // self.num_devices


def target(name: str) -> Target:
  """The Target of `name`: v4, v5e, v5p, v6e, `<gen>:<topology>` (e.g.
  v5e:2x4), h100 or h100x8."""
  if name in _GPU_TOPOLOGY:
    return Target(name, "cuda", _GPU_TOPOLOGY[name], CHIPS["h100"])
  generation = name.split(":")[0]
  if generation in _DEFAULT_TOPOLOGY:
    return Target(name, "tpu", _DEFAULT_TOPOLOGY.get(name, name),
                  CHIPS[generation])
  raise ValueError(f"target: expected one of {sorted(_DEFAULT_TOPOLOGY)}, "
                   f"<generation>:<topology> (e.g. v5e:2x4), "
                   f"{sorted(_GPU_TOPOLOGY)}; got {name!r}")


def h100_target_config() -> str:
  """XLA's GpuTargetConfigProto of an H100 SXM, in text form."""
  return importlib.resources.files("sg3jax").joinpath(
      "h100_sxm.txtpb").read_text()


@functools.lru_cache(maxsize=None)
def devices(name: str) -> tuple[jax.Device, ...]:
  """The compile-only devices of target `name` (needs the compile stack of
  its platform: libtpu, or the CUDA plugin with JAX_PLATFORMS=cpu)."""
  from jax.experimental import topologies  # pylint: disable=g-import-not-at-top
  t = target(name)
  if t.platform == "cuda":
    topo = topologies.get_topology_desc(
        platform="cuda", target_config=h100_target_config(),
        topology=t.topology)
  else:
    topo = topologies.get_topology_desc(platform="tpu",
                                        topology_name=t.topology)
  return tuple(topo.devices)


@dataclasses.dataclass
class Compiled:
  """What one compile told.

  error: None when it compiled, else the compiler's message.
  kernel_calls: fused-kernel custom calls in the lowered module.
  temp_bytes, argument_bytes, output_bytes: per device
    (`memory_analysis()`); alias_bytes: outputs that reuse (donated)
    arguments.
  optimal_seconds: XLA's time estimate (TPU only; None on GPU, and where
    XLA's is not positive).
  spill_bytes: GPU only, when asked (`compile_for(..., spills=True)`): per
    kernel entry of the program (XLA fusions and Triton kernels), the
    register spill bytes (stores + loads) that `ptxas -v` reports for the
    PTX XLA emitted (`ptx_spills`).
  seconds: compile wall-clock time (all tries).
  compiler_options: the XLA options of the compile that gave this result
    ({} for the defaults; see `GPU_FALLBACK_OPTIONS`).
  """
  target: str
  error: str | None = None
  kernel_calls: int = 0
  temp_bytes: int = 0
  argument_bytes: int = 0
  output_bytes: int = 0
  alias_bytes: int = 0
  optimal_seconds: float | None = None
  spill_bytes: dict[str, int] | None = None
  seconds: float = 0.0
  compiler_options: dict[str, Any] = dataclasses.field(default_factory=dict)

  @property
  def ok(self) -> bool:
    return self.error is None

  @property
  def total_bytes(self) -> int:
    """Peak bytes a device holds: arguments, outputs (less those aliased to
    donated arguments) and temporaries."""
    return (self.argument_bytes + self.output_bytes - self.alias_bytes +
            self.temp_bytes)


def ptxas_path() -> str:
  """The ptxas of the CUDA wheel `nvidia-cuda-nvcc-cu12`, the one that XLA
  GPU itself runs."""
  spec = importlib.util.find_spec("nvidia.cuda_nvcc")
  if spec is None or not spec.submodule_search_locations:
    raise FileNotFoundError("ptxas: the nvidia-cuda-nvcc-cu12 wheel is not "
                            "installed (make aot-setup)")
  return os.path.join(list(spec.submodule_search_locations)[0], "bin",
                      "ptxas")


_PTXAS_ENTRY = re.compile(r"Function properties for (\S+)\n\s*\d+ bytes "
                          r"stack frame, (\d+) bytes spill stores, (\d+) "
                          r"bytes spill loads")
_PTX_TARGET = re.compile(r"^\.target\s+(\w+)", re.MULTILINE)


def ptx_spills(dump_dir: str) -> dict[str, int]:
  """Per entry function name in the `.ptx` files of `dump_dir` (XLA's
  `xla_dump_to`), the spill stores + loads in bytes from `ptxas -v` for
  the file's own `.target` (sm_90a for the H100); the most of any entry
  of that name.

  Raises:
    RuntimeError: when ptxas fails on a file.
  """
  spills = {}
  for name in sorted(os.listdir(dump_dir)):
    if not name.endswith(".ptx"):
      continue
    path = os.path.join(dump_dir, name)
    with open(path) as f:
      ptx = f.read()
    if ".entry" not in ptx:  # a module with no kernel (e.g. constants only)
      continue
    arch = _PTX_TARGET.search(ptx)
    if arch is None:
      raise RuntimeError(f"{path}: no .target line in the PTX")
    run = subprocess.run([ptxas_path(), "-v", f"-arch={arch.group(1)}", path,
                          "-o", os.devnull], capture_output=True, text=True,
                         check=False)
    if run.returncode:
      raise RuntimeError(f"ptxas failed on {path}: {run.stderr[-600:]}")
    for entry, stores, loads in _PTXAS_ENTRY.findall(run.stderr):
      spills[entry] = max(spills.get(entry, 0), int(stores) + int(loads))
  return spills


def _first_lines(message: str, limit: int = 600) -> str:
  """The head of a compiler error (its full text can be megabytes)."""
  return message.strip()[:limit]


# XLA GPU's Triton GEMM emitter can fail to tile a dot it chose to emit
# (`INTERNAL: Couldn't find output tile sizes that satisfy hlo: %dot...`,
# raised when XLA nests the GEMM fusion for its TritonGemmConfig): seen
# here without a GPU (no autotuning) for the 256² StyleGAN3-T step's
# synthesis/input dot; jax-ml/jax#34010 reports it on GPUs, and XLA's
# maintainers advise keeping such dots out of Triton (openxla/xla#36792).
# Then the compile is retried with these options (cuBLAS for every dot).
GPU_TILING_ERROR = "Couldn't find output tile sizes"
GPU_FALLBACK_OPTIONS = {"xla_gpu_enable_triton_gemm": False}


def _compile_gpu(lowered: jax.stages.Lowered, result: Compiled,
                 spills: bool) -> jax.stages.Compiled:
  """Compiles for the GPU; with `spills`, XLA's PTX is dumped and the
  spills of its kernels (`ptx_spills`) go into `result`. A Triton GEMM
  tiling failure (`GPU_TILING_ERROR`) is retried with `GPU_FALLBACK_OPTIONS`, recorded in
  `result.compiler_options`."""
  with tempfile.TemporaryDirectory() as dump_dir:
    dump = {"xla_dump_to": dump_dir} if spills else {}
    try:
      compiled = lowered.compile(compiler_options=dump)
    except Exception as e:  # pylint: disable=broad-except
      if GPU_TILING_ERROR not in str(e):
        raise
      result.compiler_options = dict(GPU_FALLBACK_OPTIONS)
      for name in os.listdir(dump_dir):
        os.remove(os.path.join(dump_dir, name))
      compiled = lowered.compile(compiler_options=dict(
          GPU_FALLBACK_OPTIONS, **dump))
    if spills:
      result.spill_bytes = ptx_spills(dump_dir)
  return compiled


def compile_for(name: str, fn: Callable[..., Any], *args: Any,
                spills: bool = False) -> Compiled:
  """Compiles `fn(*args)` for target `name` and reports what it needs.

  On a GPU target a Triton GEMM tiling failure (`GPU_TILING_ERROR`) is
  retried with `GPU_FALLBACK_OPTIONS`; `Compiled.compiler_options` says
  which options gave the result.

  Args:
    name: a `target` name.
    fn: the function to compile (impl="auto" kernel branches are traced
      for the target's platform): a `jax.jit` function keeps its donated
      arguments (the training step's state: `alias_bytes`), any other
      function is jitted as is.
    *args: `jax.ShapeDtypeStruct`s placed on `devices(name)` (see
      `placed`), or pytrees of them.
    spills: on a GPU target, also run `ptxas -v` on XLA's PTX for
      `Compiled.spill_bytes` (a second ptxas pass: for kernel checks, not
      for whole training steps).
  """
  from sg3jax import ops  # pylint: disable=g-import-not-at-top
  t = target(name)
  start = time.perf_counter()
  result = Compiled(name)
  try:
    with ops.kernel_platforms((t.platform,)):
      jitted = fn if isinstance(fn, jax.stages.Wrapped) else jax.jit(fn)
      traced = jitted.trace(*args)
    lowered = traced.lower(lowering_platforms=(t.platform,))
    result.kernel_calls = lowered.as_text().count(KERNEL_CALLS[t.platform])
    if t.platform == "cuda":
      compiled = _compile_gpu(lowered, result, spills)
    else:
      compiled = lowered.compile()
  except Exception as e:  # pylint: disable=broad-except
    result.error = _first_lines(f"{type(e).__name__}: {e}")
    result.seconds = time.perf_counter() - start
    return result
  result.seconds = time.perf_counter() - start
  memory = compiled.memory_analysis()
  result.temp_bytes = int(memory.temp_size_in_bytes)
  result.argument_bytes = int(memory.argument_size_in_bytes)
  result.output_bytes = int(memory.output_size_in_bytes)
  result.alias_bytes = int(memory.alias_size_in_bytes)
  if t.platform == "tpu":
    cost = compiled.cost_analysis()
    if isinstance(cost, list):
      cost = cost[0] if cost else {}
    # XLA reports a negative optimal_seconds for some programs (seen for
    # XLA-path filtered_lrelu gradients on v5e): no estimate then.
    if cost and float(cost.get("optimal_seconds", -1)) > 0:
      result.optimal_seconds = float(cost["optimal_seconds"])
  return result


def placed(tree: Any, sharding: jax.sharding.Sharding) -> Any:
  """`tree` of arrays or ShapeDtypeStructs as ShapeDtypeStructs placed with
  `sharding` (nothing is allocated)."""
  return jax.tree.map(
      lambda a: jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=sharding),
      tree)


def single_device(name: str) -> jax.sharding.Sharding:
  """A sharding on the first device of target `name`."""
  return jax.sharding.SingleDeviceSharding(devices(name)[0])


# ---------------------------------------------------------------------------
# Isolated compiles: a worker process per batch of programs.

# The worker's Python: `.venv-aot` at the repository root unless
# SG3JAX_AOT_PYTHON names another.
AOT_PYTHON_ENV = "SG3JAX_AOT_PYTHON"


def aot_python() -> str | None:
  """The compile-stack venv's Python, or None when it is not installed."""
  path = os.environ.get(AOT_PYTHON_ENV)
  if path:
    return path
  root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
  candidate = os.path.join(root, ".venv-aot", "bin", "python")
  return candidate if os.path.exists(candidate) else None


def worker_environment() -> dict[str, str]:
  """The worker's environment: CPU as the runtime platform (the CUDA
  plugin registers its compile-only topology only then), libtpu loaded by
  several workers at once (compile-only: no chip to share), this checkout
  first on the path, no persistent compilation cache and the compilers'
  own optimization settings (the test suite lowers the host's)."""
  root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
  env = dict(os.environ)
  env.update(JAX_PLATFORMS="cpu", TPU_WORKER_HOSTNAMES="localhost",
             ALLOW_MULTIPLE_LIBTPU_LOAD="1",
             TF_CPP_MIN_LOG_LEVEL="3",
             PYTHONPATH=os.pathsep.join(
                 [root] + [p for p in env.get("PYTHONPATH", "").split(
                     os.pathsep) if p]))
  env.pop("JAX_COMPILATION_CACHE_DIR", None)
  env.pop("XLA_FLAGS", None)
  env.pop("JAX_DISABLE_MOST_OPTIMIZATIONS", None)
  return env


def _start_worker(module: str, python: str, max_bytes: int
                  ) -> subprocess.Popen:
  return subprocess.Popen(
      [python, "-m", module, "--worker", str(max_bytes)],
      stdin=subprocess.PIPE, stdout=subprocess.PIPE,
      stderr=subprocess.DEVNULL, text=True, env=worker_environment(),
      start_new_session=True)


def _stop(worker: subprocess.Popen) -> None:
  try:
    os.killpg(worker.pid, signal.SIGKILL)
  except ProcessLookupError:
    pass
  worker.wait()
  for pipe in (worker.stdin, worker.stdout):
    pipe.close()


def _read_line(worker: subprocess.Popen, timeout_s: float) -> str | None:
  """The worker's next output line, or None after `timeout_s` or when it
  died."""
  ready, _, _ = select.select([worker.stdout], [], [], timeout_s)
  if not ready:
    return None
  line = worker.stdout.readline()
  return line or None


def run_isolated(module: str, cases: Iterable[dict], *, timeout_s: float,
                 max_bytes: int = 14 * GIB, python: str | None = None
                 ) -> Iterator[dict]:
  """Compiles each case in a worker process (`python -m module --worker`,
  see `serve`), yielding its result dict as it comes.

  `module` calls `serve` with the address-space limit given after
  `--worker`. A case that takes over `timeout_s` or dies (e.g. over `max_bytes` of
  address space) kills the worker and yields {"error": ...}; a fresh
  worker takes the next case.

  Raises:
    FileNotFoundError: when there is no compile-stack Python.
  """
  python = python or aot_python()
  if python is None or not os.path.exists(python):
    raise FileNotFoundError(
        f"no compile-stack venv (looked for {python or '.venv-aot'}; "
        f"run `make aot-setup` or set {AOT_PYTHON_ENV})")
  worker = None
  try:
    for case in cases:
      if worker is None:
        worker = _start_worker(module, python, max_bytes)
      worker.stdin.write(json.dumps(case) + "\n")
      worker.stdin.flush()
      start = time.perf_counter()
      line = _read_line(worker, timeout_s)
      if line is None:
        exit_code = worker.poll()
        _stop(worker)
        worker = None
        reason = (f"timed out after {timeout_s:.0f} s" if exit_code is None
                  else f"compiler process died (exit code {exit_code}; "
                  f"limit {max_bytes / GIB:.0f} GiB of address space)")
        yield dict(case, error=reason,
                   seconds=time.perf_counter() - start)
        continue
      yield json.loads(line)
  finally:
    if worker is not None:
      _stop(worker)


def serve(compile_case: Callable[[dict], dict], max_bytes: int) -> None:
  """The worker loop, in at most `max_bytes` of address space: a JSON case
  per stdin line -> a JSON result per stdout line (`compile_case(case)`,
  merged into the case)."""
  import resource  # pylint: disable=g-import-not-at-top
  resource.setrlimit(resource.RLIMIT_AS, (max_bytes, max_bytes))
  stdout = sys.stdout
  # Anything the compilers print goes to stderr, not into the protocol.
  sys.stdout = sys.stderr
  for line in sys.stdin:
    case = json.loads(line)
    result = dict(case, **compile_case(case))
    stdout.write(json.dumps(result) + "\n")
    stdout.flush()


def as_dict(result: Compiled) -> dict:
  return dict(dataclasses.asdict(result), total_bytes=result.total_bytes)
