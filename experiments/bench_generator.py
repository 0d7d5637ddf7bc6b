"""Times the StyleGAN3 generator forward and forward+backward on this host.

Default: StyleGAN3-T at 256x256, channel_base 8192, channel_max 512,
z/w 512, batch 2, fp32; the backward is the gradient of the sum of squared
pixels w.r.t. all variables (params, stats and buffers). Median of jitted
calls after a warm-up (compile time reported separately).

    python experiments/bench_generator.py [--config t|r] [--batch 2] [--reps 5]
"""

import argparse
import statistics
import time

import jax
import jax.numpy as jnp

from sg3jax import networks


def build(config: str, resolution: int, channel_base: int, channel_max: int,
          impl: str) -> networks.Generator:
  synthesis = dict(channel_base=channel_base, channel_max=channel_max,
                   filtered_lrelu_impl=impl)
  if config == "r":
    synthesis.update(conv_kernel=1, use_radial_filters=True)
  return networks.Generator(z_dim=512, c_dim=0, w_dim=512,
                            img_resolution=resolution, img_channels=3,
                            synthesis_kwargs=synthesis)


def timed(fn, *args, reps: int) -> tuple[float, float]:
  """(first call seconds incl. compile, median seconds of `reps` calls)."""
  start = time.perf_counter()
  jax.block_until_ready(fn(*args))
  first = time.perf_counter() - start
  times = []
  for _ in range(reps):
    start = time.perf_counter()
    jax.block_until_ready(fn(*args))
    times.append(time.perf_counter() - start)
  return first, statistics.median(times)


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--config", choices=("t", "r"), default="t")
  parser.add_argument("--resolution", type=int, default=256)
  parser.add_argument("--channel_base", type=int, default=8192)
  parser.add_argument("--channel_max", type=int, default=512)
  parser.add_argument("--batch", type=int, default=2)
  parser.add_argument("--reps", type=int, default=5)
  parser.add_argument("--impl", default="auto", help="filtered_lrelu impl")
  args = parser.parse_args()

  generator = build(args.config, args.resolution, args.channel_base,
                    args.channel_max, args.impl)
  z = jax.random.normal(jax.random.key(1), (args.batch, 512))
  variables = jax.jit(generator.init)(jax.random.key(0), z)

  forward = jax.jit(generator.apply)

  def loss(variables):
    return jnp.sum(jnp.square(generator.apply(variables, z)))

  backward = jax.jit(jax.grad(loss))
  print(f"backend={jax.default_backend()} jax={jax.__version__} "
        f"config={args.config} res={args.resolution} batch={args.batch} "
        f"cbase={args.channel_base} cmax={args.channel_max}")
  first, median = timed(forward, variables, z, reps=args.reps)
  print(f"forward:          {median:7.3f} s  (first call {first:6.1f} s)")
  first, median = timed(backward, variables, reps=args.reps)
  print(f"forward+backward: {median:7.3f} s  (first call {first:6.1f} s)")


if __name__ == "__main__":
  main()
