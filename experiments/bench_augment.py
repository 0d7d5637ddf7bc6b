"""ADA pipeline cost: ms per augmented batch, forward and forward+backward.

    .venv/bin/python experiments/bench_augment.py [--pipe=bgc] [--batch=4] \\
        [--resolutions=32,64,256]

Times `augment.augment` (fresh draws each call, p = 0.5) jitted, median of
--reps calls after a compile-and-warm-up call; "grad" also differentiates
w.r.t. the images (the R1 and G paths do). Nothing here runs in CI.
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


def _median_ms(fn, x) -> float:
  fn(jax.random.key(0), x).block_until_ready()
  times = []
  for i in range(_REPS.value):
    start = time.perf_counter()
    jax.block_until_ready(fn(jax.random.key(i + 1), x))
    times.append(time.perf_counter() - start)
  return statistics.median(times) * 1e3


def main(argv):
  del argv
  spec = augment.pipeline(_PIPE.value)

  def forward(key, x):
    return augment.augment(x, augment.draw(key, spec, x.shape), spec, 0.5)

  def backward(key, x):
    return jax.grad(lambda x: jnp.sum(forward(key, x)))(x)

  print(f"device {jax.devices()[0].device_kind}, pipe {_PIPE.value}, "
        f"batch {_BATCH.value}")
  for res in map(int, _RESOLUTIONS.value):
    x = jax.random.uniform(jax.random.key(0), (_BATCH.value, res, res, 3))
    print(f"{res:5d}^2  forward {_median_ms(jax.jit(forward), x):8.1f} ms"
          f"   grad {_median_ms(jax.jit(backward), x):8.1f} ms")


if __name__ == "__main__":
  app.run(main)
