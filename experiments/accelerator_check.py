"""One prepared check of a GPU or TPU host: kernels, generator, training.

    .venv/bin/python experiments/accelerator_check.py [--out=FILE.json]
    .venv/bin/python experiments/accelerator_check.py --smoke   # CPU, tiny

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


def main(argv):
  del argv
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
