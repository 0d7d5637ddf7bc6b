"""Images/s of the dataset metrics' device steps on this host.

1. Inception features of uint8 images (the dataset pass of FID/KID);
2. generate + Inception features (the generator pass), StyleGAN3-T;
3. VGG16 features of uint8 images (the dataset pass of precision/recall);
4. generate two images per sample + LPIPS (ppl2_wend), pairs/s.

Both are the jitted shard_map steps `sg3jax metrics` runs, sharded over
every device, with random weights (speed does not depend on them). Median
of timed calls after a warm-up (the first call, with compilation, is
reported separately).

    python experiments/bench_metrics.py [--batch 64] [--resolution 256]
        [--channel_base 8192] [--reps 3]
"""

import argparse

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

import bench_generator
from sg3jax.metrics import inception
from sg3jax.metrics import metric_utils
from sg3jax.metrics import ppl
from sg3jax.metrics import vgg16


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--batch", type=int, default=64)
  parser.add_argument("--resolution", type=int, default=256)
  parser.add_argument("--channel_base", type=int, default=8192)
  parser.add_argument("--channel_max", type=int, default=512)
  parser.add_argument("--reps", type=int, default=3)
  parser.add_argument("--skip_generator", action="store_true")
  args = parser.parse_args()

  mesh = metric_utils.data_mesh()
  sharded = NamedSharding(mesh, P(metric_utils.DATA_AXIS))
  replicated = NamedSharding(mesh, P())
  batch = metric_utils._round_batch(args.batch, mesh)  # pylint: disable=protected-access
  detector = inception.InceptionV3()
  d_vars = jax.device_put(jax.jit(detector.init)(
      jax.random.key(0), jnp.zeros((1, 299, 299, 3), jnp.uint8)), replicated)
  print(f"devices: {mesh.devices.size} x {jax.devices()[0].device_kind}, "
        f"batch {batch}, {args.resolution}^2")

  step = metric_utils._dataset_step(detector, mesh, "features")  # pylint: disable=protected-access
  images = jax.device_put(np.random.default_rng(0).integers(
      0, 256, (batch, args.resolution, args.resolution, 3), dtype=np.uint8),
                          sharded)
  first, median = bench_generator.timed(step, d_vars, images, reps=args.reps)
  print(f"inception features: {batch / median:8.1f} img/s "
        f"(first call {first:.1f} s)")
  vgg = vgg16.VGG16()
  vgg_vars = jax.device_put(jax.jit(vgg.init)(
      jax.random.key(3), jnp.zeros((1, 224, 224, 3))), replicated)
  vgg_step = metric_utils._dataset_step(vgg, mesh, "features")  # pylint: disable=protected-access
  first, median = bench_generator.timed(vgg_step, vgg_vars, images,
                                        reps=args.reps)
  print(f"vgg16 features:     {batch / median:8.1f} img/s "
        f"(first call {first:.1f} s)")
  if args.skip_generator:
    return

  G = bench_generator.build("t", args.resolution, args.channel_base,
                            args.channel_max, "auto")
  g_vars = jax.device_put(jax.jit(G.init)(
      jax.random.key(1), jnp.zeros((1, G.z_dim))), replicated)
  gen_step = metric_utils._generator_step(G, detector, mesh, "features")  # pylint: disable=protected-access
  idx = jax.device_put(np.arange(batch, dtype=np.int32), sharded)
  c = jax.device_put(np.zeros((batch, 0), np.float32), sharded)
  key = jax.device_put(jax.random.key(2), replicated)
  first, median = bench_generator.timed(gen_step, g_vars, d_vars, key, idx,
                                        c, reps=args.reps)
  print(f"generate + features: {batch / median:8.1f} img/s "
        f"(first call {first:.1f} s); 50k images: "
        f"{50000 / (batch / median) / 60:.1f} min")
  ppl_step = ppl._ppl_step(G, vgg, mesh, ppl.EPSILON)  # pylint: disable=protected-access
  first, median = bench_generator.timed(ppl_step, g_vars, vgg_vars, key, idx,
                                        c, reps=args.reps)
  print(f"generate + LPIPS:   {batch / median:8.1f} pairs/s "
        f"(first call {first:.1f} s); 50k pairs: "
        f"{50000 / (batch / median) / 60:.1f} min")


if __name__ == "__main__":
  main()
