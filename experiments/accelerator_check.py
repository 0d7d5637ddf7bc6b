"""One prepared check of a GPU or TPU host: kernels, generator, training.

    .venv/bin/python experiments/accelerator_check.py [--out=FILE.json]
    .venv/bin/python experiments/accelerator_check.py --smoke   # CPU, tiny
    .venv/bin/python experiments/accelerator_check.py --aot=v5e  # any host

Prints a table per section and writes everything to --out (JSON):
  layers     every distinct filtered_lrelu of StyleGAN3-T and -R at 256²
             (official channel bases, fp32 and the bf16 mixed-precision
             layers, batch --layer_batch): the max error of the compiled
             kernel and of the XLA path against the XLA path in float32 (y
             and dx, relative to the reference's largest magnitude; in bf16
             layers both round), forward and forward+backward milliseconds
             of both, and the HBM megabytes each moves (from the shapes).
  generator  StyleGAN3-T forward and forward+backward at 256² and 1024²
             (batch --generator_batch), impl="auto" and "xla".
  training   a training iteration of stylegan3-t and -r at 256², batch 32
             on one device, as s/kimg next to the official A100 figures
             (docs/configs.md: 49.81 and 56.73 s/kimg).
Medians of --reps calls after a compile-and-warm-up call. On a CPU the
kernel runs in the Pallas interpreter (--smoke: tiny shapes, batch 1, one
repetition, training of stylegan3-t only, for CI).
Sized to take under 8 minutes on one H100/H200 or TPU host.

--aot=TARGET (v5e, h100, ... `sg3jax.aot` names) needs no device: every
distinct 256² layer (T and R, as above) is compiled for TARGET by the real
compilers (`make aot-setup`), forward and gradient, once with impl="xla"
and once with impl="auto" (the kernel). Per layer it prints the XLA path's
estimate (XLA's `optimal_seconds` on TPU; on GPU, where XLA gives none, the
roofline of its bytes model at the chip's HBM bandwidth) and temp bytes,
the kernel's HBM bytes and FLOPs (its `pl.CostEstimate`) with their
roofline time (HBM bandwidth, and the float32 vector peak that its FIR
stages run on), and the ratio XLA / kernel. Estimates, not timings: on a
GPU or TPU host run the sections above.
"""

import json
import statistics
import sys
import time

from absl import app
from absl import flags
import jax
import jax.numpy as jnp
import numpy as np

from kernels import filtered_lrelu as fused
from kernels.filtered_lrelu import common as kernel_common
from kernels.filtered_lrelu import gpu as gpu_kernel
from sg3jax import aot
from sg3jax import compile_matrix
from sg3jax import convert
from sg3jax import networks
from sg3jax import ops
from sg3jax.training import benchmark
from sg3jax.training import config as config_lib

_SMOKE = flags.DEFINE_bool("smoke", False, "tiny shapes (CPU, CI)")
_OUT = flags.DEFINE_string("out", "accelerator_check.json", "JSON output")
_REPS = flags.DEFINE_integer("reps", 5, "timed calls per measurement")
_LAYER_BATCH = flags.DEFINE_integer("layer_batch", 4, "batch of the layers")
_GENERATOR_BATCH = flags.DEFINE_integer("generator_batch", 4,
                                        "batch of the generator timings")
_AOT = flags.DEFINE_string("aot", None, "compile for this target on any "
                           "host and print estimates (no device needed)")
_SECTIONS = flags.DEFINE_list("sections", ["layers", "generator", "training"],
                              "sections to run")

OFFICIAL_A100_S_PER_KIMG = {"stylegan3-t": 49.81, "stylegan3-r": 56.73}


def _reps() -> int:
  return 1 if _SMOKE.value else _REPS.value


def _batch(flag) -> int:
  return 1 if _SMOKE.value else flag.value


def _median_ms(fn, *args) -> float:
  jax.block_until_ready(fn(*args))
  times = []
  for _ in range(_reps()):
    start = time.perf_counter()
    jax.block_until_ready(fn(*args))
    times.append(time.perf_counter() - start)
  return statistics.median(times) * 1e3


def _generator(cfg: str, resolution: int, impl: str):
  """The official table's generator (mixed precision), or a tiny one."""
  c = config_lib.base_config(cfg)
  if _SMOKE.value:
    c.cbase, c.cmax, c.G.num_layers, c.G.z_dim, c.G.w_dim = 512, 16, 4, 16, 16
  kwargs = config_lib.generator_kwargs(c, resolution=resolution, channels=3,
                                       label_dim=0)
  return convert.generator_from_kwargs(kwargs, filtered_lrelu_impl=impl,
                                       mixed_precision=True)


def _layer_calls(resolution: int):
  """{(cfg, layer): (input, args)}, each distinct call once."""
  calls, seen = {}, set()
  for cfg in ("stylegan3-t", "stylegan3-r"):
    synthesis = networks.synthesis_network(_generator(cfg, resolution, "xla"))
    for name, (x, args) in synthesis.filtered_lrelu_calls(
        _batch(_LAYER_BATCH)).items():
      key = (x.shape, x.dtype.name, args["fu"].shape, args["fd"].shape,
             args["up"], args["padding"])
      if key not in seen:
        seen.add(key)
        calls[(cfg, name)] = (x, args)
  return calls


def _max_error(ours, ref) -> float:
  ours, ref = (np.asarray(a, np.float32) for a in (ours, ref))
  return float(np.max(np.abs(ours - ref)) / max(np.max(np.abs(ref)), 1e-30))


def check_layers(resolution: int) -> list[dict]:
  rows = []
  for (cfg, name), (spec, args) in _layer_calls(resolution).items():
    rng = np.random.default_rng(0)
    x = jnp.asarray(rng.normal(size=spec.shape), spec.dtype)
    b = jnp.asarray(rng.normal(size=spec.shape[-1]), spec.dtype)
    y_shape = jax.eval_shape(
        lambda x, b: ops.filtered_lrelu(x, b=b, **args), x, b).shape
    dy = jnp.asarray(rng.normal(size=y_shape), spec.dtype)
    results = {}
    for label, impl, dtype in (("kernel", "pallas", spec.dtype),
                               ("xla", "xla", spec.dtype),
                               ("reference", "xla", jnp.float32)):
      op = lambda x, b, impl=impl: ops.filtered_lrelu(x, b=b,
                                                      **dict(args, impl=impl))
      inputs = (x.astype(dtype), b.astype(dtype))
      forward = jax.jit(op)
      grad = jax.jit(lambda x, b, op=op, dtype=dtype: jax.vjp(op, x, b)[1](
          dy.astype(dtype)))
      results[label] = dict(y=forward(*inputs), dx=grad(*inputs)[0])
      if label != "reference":
        results[label].update(fwd_ms=_median_ms(forward, *inputs),
                              fwd_bwd_ms=_median_ms(grad, *inputs))
    ref = results.pop("reference")
    geometry = fused.make_config(
        spec.shape, args["fu"].shape, args["fd"].shape, up=args["up"],
        down=args["down"], padding=args["padding"], gain=args["gain"],
        slope=args["slope"], clamp=args["clamp"], flip_filter=False).geometry
    moved = geometry.bytes_moved(spec.shape[0], spec.dtype.itemsize)
    rows.append(dict(
        config=cfg, layer=name, shape=list(spec.shape), dtype=spec.dtype.name,
        **{f"err_{t}_{impl}": _max_error(results[impl][t], ref[t])
           for impl in ("kernel", "xla") for t in ("y", "dx")},
        **{f"{impl}_{t}": results[impl][t] for impl in ("kernel", "xla")
           for t in ("fwd_ms", "fwd_bwd_ms")},
        mb=dict((k, v / 1e6) for k, v in moved.items())))
    print(_layer_line(rows[-1]), flush=True)
  return rows


def _layer_line(r: dict) -> str:
  mb = r["mb"]
  return (f"{r['config'][-1]} {r['layer']:14s} {str(r['shape']):22s} "
          f"{r['dtype']:8s} {r['err_y_kernel']:8.1e} {r['err_dx_kernel']:8.1e}"
          f" {r['err_y_xla']:8.1e} {r['err_dx_xla']:8.1e} "
          f"{r['xla_fwd_ms']:8.2f} {r['kernel_fwd_ms']:8.2f} "
          f"{r['xla_fwd_bwd_ms']:8.2f} {r['kernel_fwd_bwd_ms']:8.2f} "
          f"{mb['xla_forward']:7.1f}/{mb['xla_backward']:<7.1f} "
          f"{mb['fused_forward']:7.1f}/{mb['fused_backward']:<7.1f}")


def check_generator(resolutions) -> list[dict]:
  rows = []
  for resolution in resolutions:
    for impl in ("auto", "xla"):
      G = _generator("stylegan3-t", resolution, impl)
      z = jax.random.normal(jax.random.key(1),
                            (_batch(_GENERATOR_BATCH), G.z_dim))
      c = jnp.zeros((_batch(_GENERATOR_BATCH), 0))
      variables = jax.jit(G.init)(jax.random.key(0), z, c)
      forward = jax.jit(G.apply)
      grad = jax.jit(jax.grad(
          lambda v: jnp.mean(jnp.square(G.apply(v, z, c).astype(
              jnp.float32)))))
      rows.append(dict(resolution=resolution, impl=impl,
                       fwd_ms=_median_ms(forward, variables, z, c),
                       fwd_bwd_ms=_median_ms(grad, variables)))
      r = rows[-1]
      print(f"{resolution:5d} {impl:5s} {r['fwd_ms']:10.1f} "
            f"{r['fwd_bwd_ms']:10.1f}", flush=True)
  return rows


def check_training() -> list[dict]:
  rows = []
  configs = ("stylegan3-t",) if _SMOKE.value else ("stylegan3-t",
                                                    "stylegan3-r")
  for cfg in configs:
    if _SMOKE.value:
      c = config_lib.base_config(cfg)
      c.update(dict(data="demo:16", batch_size=8, cbase=512, cmax=16))
      c.G.update(dict(num_layers=4, z_dim=16, w_dim=16))
      c.augment.mode = "noaug"
    else:
      c = config_lib.recommended(cfg, 256, 1)
      c.data = "demo:256"
    c.mixed_precision = True
    result = benchmark.time_training(c, _reps())
    official = OFFICIAL_A100_S_PER_KIMG[cfg]
    rows.append(dict(config=cfg, official_a100_s_per_kimg=official,
                     ratio_to_official=result["s_per_kimg"] / official,
                     **result))
    print(f"{cfg:12s} {result['s_per_kimg']:9.2f} {official:9.2f} "
          f"{result['s_per_kimg'] / official:6.2f}  (batch "
          f"{result['batch']}, batch_gpu {result['batch_gpu']})", flush=True)
  return rows


def _kernel_estimate(cfg, dtype, batch: int, backend: str,
                     backward: bool):
  """The `pl.CostEstimate` that the kernel passes to pallas_call: the GPU
  kernel counts its banded dots (padding and zeros included) and every
  program's halo; the TPU kernel the polyphase work and x, y (dy) once."""
  itemsize = jnp.dtype(dtype).itemsize
  if backend == "gpu":
    tiles = gpu_kernel.plan_tiles(cfg, jnp.dtype(dtype), backward=backward)
    return gpu_kernel.cost_estimate(cfg, tiles, batch, itemsize,
                                    backward=backward)
  return kernel_common.cost_estimate(cfg, batch, itemsize, backward=backward)


def _kernel_cost(case: dict, backend: str) -> dict:
  """HBM bytes and FLOPs of the forward and backward kernels of a case,
  and the XLA path's bytes model."""
  cfg = fused.make_config(
      case["x_shape"], np.shape(case["fu"]), np.shape(case["fd"]),
      up=case["up"], down=case["down"], padding=case["padding"],
      gain=case["gain"], slope=case["slope"], clamp=case["clamp"],
      flip_filter=False)
  batch = case["x_shape"][0]
  costs = {}
  for mode, backward in (("forward", False), ("backward", True)):
    estimate = _kernel_estimate(cfg, case["dtype"], batch, backend, backward)
    costs[mode] = dict(bytes=estimate.bytes_accessed, flops=estimate.flops)
  return dict(costs, xla_bytes=cfg.geometry.bytes_moved(
      batch, jnp.dtype(case["dtype"]).itemsize))


def check_aot(target_name: str) -> list[dict]:
  """Per 256² layer: the XLA path's estimate and temp, the kernel's
  roofline, their ratio (see the module docstring)."""
  target = aot.target(target_name)
  chip = target.chip
  backend = {"tpu": "tpu", "cuda": "gpu"}[target.platform]
  layers = (compile_matrix.official_layer_cases("stylegan3-t", 256, batch=4) +
            compile_matrix.official_layer_cases("stylegan3-r", 256, batch=4))
  cases = [dict(layer, impl=impl, mode=mode, target=target_name)
           for layer in layers for mode in ("forward", "gradient")
           for impl in ("xla", "auto")]
  results = {(r["layer"], r["precision"], r["mode"], r["impl"]): r
             for r in compile_matrix.compile_cases(cases, timeout_s=900)}
  rows = []
  for layer in layers:
    cost = _kernel_cost(layer, backend)
    for mode, kernel_modes in (("forward", ("forward",)),
                               ("gradient", ("forward", "backward"))):
      xla, kernel = (results[(layer["layer"], layer["precision"], mode, impl)]
                     for impl in ("xla", "auto"))
      moved = sum(cost[m]["bytes"] for m in kernel_modes)
      flops = sum(cost[m]["flops"] for m in kernel_modes)
      kernel_s = max(moved / chip.hbm_bytes_per_s, flops / chip.vector_flops)
      xla_bytes = cost["xla_bytes"]["xla_forward"] + (
          cost["xla_bytes"]["xla_backward"] if mode == "gradient" else 0)
      xla_s = xla.get("optimal_seconds") or xla_bytes / chip.hbm_bytes_per_s
      rows.append(dict(
          layer=layer["layer"], precision=layer["precision"], mode=mode,
          shape=layer["x_shape"], dtype=layer["dtype"],
          xla_error=xla.get("error"), kernel_error=kernel.get("error"),
          kernel_in_program=kernel.get("kernel_calls", 0) > 0,
          xla_seconds=xla_s,
          xla_estimate="optimal_seconds" if xla.get("optimal_seconds")
          else "bytes model / HBM bandwidth",
          xla_temp_bytes=xla.get("temp_bytes", 0),
          kernel_temp_bytes=kernel.get("temp_bytes", 0),
          kernel_bytes=moved, kernel_flops=flops, kernel_seconds=kernel_s,
          ratio=xla_s / kernel_s))
      print(_aot_line(rows[-1]), flush=True)
  return rows


def _aot_line(r: dict) -> str:
  status = "" if r["kernel_in_program"] else "  (auto took XLA)"
  for key in ("xla_error", "kernel_error"):
    if r[key]:
      status += f"  {key}: {r[key].splitlines()[0][:80]}"
  return (f"{r['layer']:<16} {r['dtype']:<8} {r['mode']:<8} "
          f"{r['xla_seconds'] * 1e6:9.1f} {r['xla_temp_bytes'] / 2**20:9.1f} "
          f"{r['kernel_bytes'] / 1e6:9.1f} {r['kernel_flops'] / 1e9:8.2f} "
          f"{r['kernel_seconds'] * 1e6:9.1f} "
          f"{r['kernel_temp_bytes'] / 2**20:8.1f} {r['ratio']:6.2f}{status}")


def main_aot(target_name: str) -> None:
  chip = aot.target(target_name).chip
  print(f"accelerator_check --aot={target_name}: {chip.name} (compile-only; "
        f"HBM {chip.hbm_bytes_per_s / 1e12:.2f} TB/s, f32 vector peak "
        f"{chip.vector_flops / 1e12:.1f} TFLOP/s), batch 4")
  print("xla us: XLA's estimate on TPU, else its bytes model at HBM "
        "bandwidth; kernel us: max(bytes / bandwidth, FLOPs / vector peak)")
  print(f"{'layer':<16} {'dtype':<8} {'mode':<8} {'xla us':>9} "
        f"{'xla tmpMi':>9} {'ker MB':>9} {'ker GF':>8} {'ker us':>9} "
        f"{'kertmpMi':>8} {'ratio':>6}")
  rows = check_aot(target_name)
  report = dict(target=target_name, chip=chip.name, aot=rows)
  with open(_OUT.value, "w") as f:
    json.dump(report, f, indent=1)
  print(f"\nwrote {_OUT.value}", file=sys.stderr)


def main(argv):
  del argv
  if _AOT.value:
    main_aot(_AOT.value)
    return
  device = jax.devices()[0]
  report = dict(device=device.device_kind, backend=jax.default_backend(),
                jax=jax.__version__, smoke=_SMOKE.value)
  print(f"accelerator_check: {device.device_kind} ({jax.default_backend()}, "
        f"jax {jax.__version__}){' smoke' if _SMOKE.value else ''}")
  if "layers" in _SECTIONS.value:
    print("\nfiltered_lrelu layers (err: max |impl - fp32 XLA| / max |fp32 "
          "XLA|, kernel then XLA; ms: xla / kernel; HBM MB fwd/bwd)")
    print("c layer          shape                  dtype    ker y    ker dx  "
          " xla y    xla dx    xla fwd  ker fwd  xla f+b  ker f+b   xla MB "
          "fwd/bwd  fused MB")
    report["layers"] = check_layers(16 if _SMOKE.value else 256)
  if "generator" in _SECTIONS.value:
    print("\ngenerator StyleGAN3-T (ms)\n  res impl  forward   fwd+bwd")
    report["generator"] = check_generator(
        (16,) if _SMOKE.value else (256, 1024))
  if "training" in _SECTIONS.value:
    print("\ntraining, 1 device\nconfig          s/kimg  A100 ref  ratio")
    report["training"] = check_training()
  with open(_OUT.value, "w") as f:
    json.dump(report, f, indent=1)
  print(f"\nwrote {_OUT.value}", file=sys.stderr)


if __name__ == "__main__":
  app.run(main)
