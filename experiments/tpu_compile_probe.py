"""Compile the fused filtered_lrelu TPU kernel at every real layer shape.

On a CPU host with libtpu (deviceless AOT, `jax.experimental.topologies`):
for each TPU target, StyleGAN3 config and resolution, every distinct
filtered_lrelu layer (`tests/kernels/test_lowering.layer_calls`) is
compiled alone, forward or forward + gradient, in the layer's own dtype
or in float32, with impl="auto" for TPU. A line per layer: whether it
compiled, whether the kernel is in it ("tpu_custom_call"), XLA's temp
bytes and the compile seconds; then a summary per target.

  JAX_PLATFORMS=cpu PYTHONPATH=. python experiments/tpu_compile_probe.py \
      --targets v5e:2x2 --configs stylegan3-t --resolutions 256

libtpu takes a lockfile per host: beside another process using libtpu, set
ALLOW_MULTIPLE_LIBTPU_LOAD=1. Temp bytes are XLA's HBM temporaries of the
one-layer program (copies to and from its parameter and result layouts,
moves into VMEM), not the kernel's: its scratch is in VMEM.
"""

import argparse
import collections
import functools
import time

import jax
import jax.numpy as jnp
from jax.experimental import topologies
from jax.sharding import SingleDeviceSharding

from sg3jax import ops
from tests.kernels.test_lowering import layer_calls

TARGETS = ("v4:2x2x1", "v5e:2x2", "v5p:2x2x1", "v6e:2x2")


def compile_layer(device, x, args, gradient: bool):
  """(compiled, has_kernel, temp bytes, seconds) of one layer's program."""
  spec = jax.ShapeDtypeStruct(x.shape, x.dtype,
                              sharding=SingleDeviceSharding(device))
  op = functools.partial(ops.filtered_lrelu, **args)

  def forward_and_gradient(x):
    y, pullback = jax.vjp(op, x)
    return y, pullback(y)

  start = time.perf_counter()
  with ops.kernel_platforms(("tpu",)):
    traced = jax.jit(forward_and_gradient if gradient else op).trace(spec)
  lowered = traced.lower(lowering_platforms=("tpu",))
  has_kernel = "tpu_custom_call" in lowered.as_text()
  compiled = lowered.compile()
  seconds = time.perf_counter() - start
  return has_kernel, compiled.memory_analysis().temp_size_in_bytes, seconds


def main():
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--targets", nargs="+", default=TARGETS)
  parser.add_argument("--configs", nargs="+",
                      default=("stylegan3-t", "stylegan3-r"))
  parser.add_argument("--resolutions", nargs="+", type=int,
                      default=(256, 512, 1024))
  parser.add_argument("--dtypes", nargs="+", default=("native", "float32"),
                      help="native: the layer's own dtype")
  parser.add_argument("--passes", nargs="+", default=("forward", "gradient"))
  parser.add_argument("--match", default="",
                      help="only layers whose key contains this text")
  flags = parser.parse_args()

  layers = {}
  for cfg in flags.configs:
    for resolution in flags.resolutions:
      for x, args in layer_calls(cfg, resolution):
        for dtype in flags.dtypes:
          dt = x.dtype if dtype == "native" else jnp.dtype(dtype)
          key = (x.shape, dt.name, args["fu"].shape, args["fd"].shape,
                 args["up"], args["down"], args["padding"])
          if flags.match in str(key):
            layers.setdefault(key, (jax.ShapeDtypeStruct(x.shape, dt), args))
  print(f"{len(layers)} distinct (layer, dtype)", flush=True)

  summary = collections.Counter()
  for target in flags.targets:
    device = topologies.get_topology_desc(
        platform="tpu", topology_name=target).devices[0]
    for key, (x, args) in layers.items():
      for pass_name in flags.passes:
        name = f"{target} {pass_name} {key}"
        try:
          kernel, temp, seconds = compile_layer(
              device, x, args, pass_name == "gradient")
        except Exception as e:  # pylint: disable=broad-except
          message = " ".join(str(e).split())[:400]
          print(f"FAIL {name}: {message}", flush=True)
          summary[(target, pass_name, key[1], "fail")] += 1
          continue
        status = "ok" if kernel else "xla"
        print(f"{status.upper()} {name}: temp {temp} B, {seconds:.1f} s",
              flush=True)
        summary[(target, pass_name, key[1], status)] += 1
  print("summary (target, pass, dtype, status): count")
  for k in sorted(summary):
    print(" ", k, summary[k])


if __name__ == "__main__":
  main()
