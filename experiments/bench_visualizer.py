"""Visualizer frame cost: ms per frame at 256x256 while the sliders move.

StyleGAN3-T at 256x256 (channel_base 8192 as bench_generator.py, random
weights). After one warm-up frame per view, every frame changes the seed
position, psi, translation and rotation; the median ms per frame and the
number of compilations (traces) after warm-up are printed, for the output
image, a layer's channels and the FFT view.

    python experiments/bench_visualizer.py [--resolution 256] [--frames 20]
"""

import argparse
import statistics
import time

import jax

from sg3jax import visualizer
from sg3jax.convert import generator_from_kwargs


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--resolution", type=int, default=256)
  parser.add_argument("--channel_base", type=int, default=8192)
  parser.add_argument("--frames", type=int, default=20)
  args = parser.parse_args()
  generator = generator_from_kwargs(dict(
      z_dim=512, c_dim=0, w_dim=512, img_resolution=args.resolution,
      img_channels=3, channel_base=args.channel_base, channel_max=512))
  variables = jax.jit(generator.init)(jax.random.key(0),
                                      jax.numpy.zeros((1, 512)))
  renderer = visualizer.Renderer(generator, variables)
  layer = renderer.layers[len(renderer.layers) // 2]
  for view in (visualizer.View(), visualizer.View(layer=layer),
               visualizer.View(mode="fft")):
    start = time.perf_counter()
    renderer.frame(view, visualizer.Controls())
    warmup = time.perf_counter() - start
    traces = renderer.traces
    times = []
    for i in range(args.frames):
      controls = visualizer.Controls(
          seed=i * 0.37, psi=1 - i / (2 * args.frames),
          translate=(i / args.frames, -i / (3 * args.frames)), rotate=i,
          channel=i % 8)
      start = time.perf_counter()
      renderer.frame(view, controls)
      times.append(time.perf_counter() - start)
    print(f"{view.layer:>12} {view.mode:>4}: warm-up {warmup:6.1f} s, "
          f"{statistics.median(times) * 1000:7.1f} ms/frame (median of "
          f"{args.frames}), compilations after warm-up: "
          f"{renderer.traces - traces}")


if __name__ == "__main__":
  main()
