"""Times filtered_lrelu at StyleGAN3-T 256x256 layer shapes.

For each case: the HBM bytes that the fused kernel and the XLA path move
(forward and backward, from the shapes: `plan.OpGeometry.bytes_moved`);
forward and forward+backward (gradient of <y, dy> w.r.t. x and b), median
wall time of jitted calls after a warm-up, and the compiled temporary
memory of forward+backward. Implementations: "xla" everywhere, "pallas" on
GPU/TPU (compiled), and with --reference the unfused official structure
(zero insertion + depthwise convs + autodiff) for comparison.
experiments/accelerator_check.py covers every real layer shape.

    python experiments/bench_filtered_lrelu.py [--reps 5] [--reference]
"""

import argparse
import statistics
import time

import jax
import jax.numpy as jnp
import numpy as np

from kernels import filtered_lrelu as fused
from sg3jax import filters
from sg3jax import ops

# (name, input [N, H, W, C], up, down, fu taps, fd taps, padding), as the
# 256x256 StyleGAN3-T schedule has them (sizes include the 10-px margins).
CASES = (
    ("L7-like 84->84 C512", (4, 84, 84, 512), 2, 2, 12, 12, 11),
    ("L10-like 148->148 C256", (4, 148, 148, 256), 2, 2, 12, 12, 11),
    ("L11-like 148->276 C256", (4, 148, 148, 256), 4, 2, 24, 12, 23),
    ("L12-like 276->276 C128", (4, 276, 276, 128), 2, 2, 12, 12, 11),
)


def unfused_reference(x, fu, fd, b, up, down, padding, gain=np.sqrt(2),
                      slope=0.2):
  """The official reference structure in XLA: zero insertion + depthwise."""
  n, h, w, c = x.shape
  x = x + b
  u = jnp.zeros((n, h * up, w * up, c), x.dtype).at[:, ::up, ::up].set(x)
  u = jnp.pad(u, ((0, 0), (padding, padding), (padding, padding), (0, 0)))

  def depthwise(v, taps, gain):
    k = jnp.outer(taps, taps)[::-1, ::-1] * gain
    k = jnp.tile(k[:, :, None, None], (1, 1, 1, c))
    return jax.lax.conv_general_dilated(
        v, k, (1, 1), "VALID", dimension_numbers=("NHWC", "HWIO", "NHWC"),
        feature_group_count=c)

  v = depthwise(u, fu, up * up)
  a = jnp.where(v > 0, v, v * slope) * gain
  return depthwise(a, fd, 1.0)[:, ::down, ::down]


def _median_seconds(fn, args, reps):
  jax.block_until_ready(fn(*args))
  times = []
  for _ in range(reps):
    start = time.perf_counter()
    jax.block_until_ready(fn(*args))
    times.append(time.perf_counter() - start)
  return statistics.median(times)


def _temp_mib(fn, args):
  stats = fn.lower(*args).compile().memory_analysis()
  return None if stats is None else stats.temp_size_in_bytes / 2 ** 20


def bytes_line(case) -> str:
  """HBM megabytes moved by the fused kernel and by the XLA path."""
  name, shape, up, down, nu, nd, pad = case
  moved = fused.make_config(
      shape, (nu,), (nd,), up=up, down=down, padding=(pad,) * 4, gain=1.0,
      slope=0.2, clamp=None, flip_filter=False).geometry.bytes_moved(
          shape[0], 4)
  mb = {k: v / 1e6 for k, v in moved.items()}
  return (f"{name:26s} HBM MB  xla fwd {mb['xla_forward']:8.1f} bwd "
          f"{mb['xla_backward']:8.1f}   fused fwd {mb['fused_forward']:8.1f} "
          f"bwd {mb['fused_backward']:8.1f}")


def bench_case(case, impl, reps):
  name, shape, up, down, nu, nd, pad = case
  rng = np.random.default_rng(0)
  x = jnp.asarray(rng.normal(size=shape), jnp.float32)
  b = jnp.asarray(rng.normal(size=shape[-1]), jnp.float32)
  fu = filters.design_lowpass_filter(nu, 16.0, 10.0, 32.0 * up)
  fd = filters.design_lowpass_filter(nd, 16.0, 10.0, 32.0 * up)
  if impl == "reference":
    op = lambda x, b: unfused_reference(x, fu, fd, b, up, down, pad)
  else:
    op = lambda x, b: ops.filtered_lrelu(x, fu, fd, b, up=up, down=down,
                                         padding=pad, impl=impl)
  forward = jax.jit(op)
  dy = jnp.ones(jax.eval_shape(op, x, b).shape, jnp.float32)
  grad = jax.jit(jax.grad(lambda x, b: jnp.vdot(op(x, b), dy), argnums=(0, 1)))
  fwd_s = _median_seconds(forward, (x, b), reps)
  bwd_s = _median_seconds(grad, (x, b), reps)
  mem = _temp_mib(grad, (x, b))
  mem_text = "n/a" if mem is None else f"{mem:8.0f}"
  print(f"{name:26s} {impl:9s} fwd {fwd_s * 1e3:9.1f} ms   fwd+bwd "
        f"{bwd_s * 1e3:9.1f} ms   fwd+bwd temp MiB {mem_text}", flush=True)


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--reps", type=int, default=5)
  parser.add_argument("--reference", action="store_true",
                      help="also time the unfused official structure")
  parser.add_argument("--cases", default="",
                      help="comma-separated case indices (default: all)")
  args = parser.parse_args()
  impls = ["xla"]
  if jax.default_backend() in ("gpu", "tpu"):
    impls.append("pallas")
  if args.reference:
    impls.append("reference")
  chosen = [CASES[int(i)] for i in args.cases.split(",")] if args.cases else (
      CASES)
  print(f"backend={jax.default_backend()} devices={jax.devices()} "
        f"jax={jax.__version__}")
  for case in chosen:
    print(bytes_line(case), flush=True)
    for impl in impls:
      bench_case(case, impl, args.reps)


if __name__ == "__main__":
  main()
