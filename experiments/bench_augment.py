"""ADA pipeline cost: ms per augmented batch, forward and forward+backward.

    .venv/bin/python experiments/bench_augment.py [--pipe=bgc] [--batch=4] \\
        [--resolutions=32,64,256]
    JAX_PLATFORMS=cpu TPU_WORKER_HOSTNAMES=localhost \\
        .venv-aot/bin/python experiments/bench_augment.py --aot=v5e \\
        --resolutions=256,512

Times `augment.augment` (fresh draws each call, p = 0.5) jitted, median of
--reps calls after a compile-and-warm-up call; "grad" also differentiates
w.r.t. the images (the R1 and G paths do). With --aot=TARGET (an
`sg3jax.aot` target: v5e, h100, ...; the compile stacks of `make
aot-setup`, so run it with `.venv-aot`'s Python) it compiles the same two
programs for one device of the target instead and prints the temp memory
they need there. Nothing here runs in CI.
"""

import statistics
import time

from absl import app
from absl import flags
import jax
import jax.numpy as jnp

from sg3jax.training import augment

_PIPE = flags.DEFINE_string("pipe", "bgc", "official pipeline name")
_BATCH = flags.DEFINE_integer("batch", 4, "images per call")
_RESOLUTIONS = flags.DEFINE_list("resolutions", ["32", "64", "256"],
                                 "image sizes")
_REPS = flags.DEFINE_integer("reps", 5, "timed calls")
_AOT = flags.DEFINE_string("aot", None, "compile for this target's device "
                           "and print temp bytes instead of timing")


def _median_ms(fn, x) -> float:
  fn(jax.random.key(0), x).block_until_ready()
  times = []
  for i in range(_REPS.value):
    start = time.perf_counter()
    jax.block_until_ready(fn(jax.random.key(i + 1), x))
    times.append(time.perf_counter() - start)
  return statistics.median(times) * 1e3


def _print_temp(target: str, forward, backward) -> None:
  """Temp bytes of `forward` and `backward` compiled for one device of
  `target`, per resolution."""
  from sg3jax import aot  # pylint: disable=g-import-not-at-top
  sharding = aot.single_device(target)
  key = jax.ShapeDtypeStruct((), jax.random.key(0).dtype, sharding=sharding)
  print(f"{target} ({aot.target(target).chip.name}, compile-only), pipe "
        f"{_PIPE.value}, batch {_BATCH.value}: temp bytes")
  for res in map(int, _RESOLUTIONS.value):
    x = jax.ShapeDtypeStruct((_BATCH.value, res, res, 3), jnp.float32,
                             sharding=sharding)
    temps = []
    for fn in (forward, backward):
      compiled = aot.compile_for(target, fn, key, x)
      if compiled.error:
        raise RuntimeError(f"{res}²: {compiled.error}")
      temps.append(compiled.temp_bytes / 2 ** 20)
    print(f"{res:5d}^2  forward {temps[0]:8.1f} MiB   grad {temps[1]:8.1f} MiB",
          flush=True)


def main(argv):
  del argv
  spec = augment.pipeline(_PIPE.value)

  def forward(key, x):
    return augment.augment(x, augment.draw(key, spec, x.shape), spec, 0.5)

  def backward(key, x):
    return jax.grad(lambda x: jnp.sum(forward(key, x)))(x)

  if _AOT.value:
    _print_temp(_AOT.value, forward, backward)
    return
  print(f"device {jax.devices()[0].device_kind}, pipe {_PIPE.value}, "
        f"batch {_BATCH.value}")
  for res in map(int, _RESOLUTIONS.value):
    x = jax.random.uniform(jax.random.key(0), (_BATCH.value, res, res, 3))
    print(f"{res:5d}^2  forward {_median_ms(jax.jit(forward), x):8.1f} ms"
          f"   grad {_median_ms(jax.jit(backward), x):8.1f} ms")


if __name__ == "__main__":
  app.run(main)
