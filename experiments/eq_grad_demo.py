"""Differentiates EQ-T_frac w.r.t. G's parameters and its filter cutoff.

A small StyleGAN3-T generator at init (random biases, so that the lrelu
inputs are off their kinks). For a batch of latents and one fractional
translation t, the loss is the official EQ-T_frac mean squared error
(masked squared-error sum / mask sum) and its PSNR; `jax.grad` gives

* d MSE / d cutoff_scale, the factor on every layer's filter cutoff f_c
  (filters designed by `filters.design_lowpass_filter_jnp`), checked against
  a central difference;
* d MSE / d parameter for a few parameters, and each gradient's norm.

    python experiments/eq_grad_demo.py [--resolution 32] [--batch 4]
        [--tx 0.0371 --ty -0.0912] [--cutoff_scale 1.0] [--x64]
"""

import argparse
import time

import flax
import jax
import jax.numpy as jnp
import numpy as np

from sg3jax import networks
from sg3jax.metrics import equivariance


def build(resolution: int) -> networks.Generator:
  synthesis = flax.core.FrozenDict(
      channel_base=resolution * 16, channel_max=32, num_layers=6,
      num_critical=2, margin_size=4, filtered_lrelu_impl="xla")
  return networks.Generator(
      z_dim=32, c_dim=0, w_dim=32, img_resolution=resolution, img_channels=3,
      mapping_kwargs=flax.core.FrozenDict(num_layers=2),
      synthesis_kwargs=synthesis)


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--resolution", type=int, default=32)
  parser.add_argument("--batch", type=int, default=4)
  parser.add_argument("--tx", type=float, default=0.0371)
  parser.add_argument("--ty", type=float, default=-0.0912)
  parser.add_argument("--cutoff_scale", type=float, default=1.0)
  parser.add_argument("--x64", action="store_true",
                      help="float64 (tight finite-difference check)")
  args = parser.parse_args()
  G = build(args.resolution)
  # Weights and latents drawn in float32, so that --x64 sees the same ones.
  variables = jax.jit(G.init)(jax.random.key(0), jnp.zeros((1, G.z_dim)))
  z = jax.random.normal(jax.random.key(1), (args.batch, G.z_dim))
  rng = np.random.default_rng(0)
  params = flax.traverse_util.path_aware_map(
      lambda path, p: p + 0.1 * rng.normal(size=p.shape).astype(p.dtype)
      if path[-1] == "bias" else p, variables["params"])
  jax.config.update("jax_enable_x64", args.x64)
  dtype = jnp.float64 if args.x64 else jnp.float32
  variables, z = jax.tree.map(lambda a: jnp.asarray(a, dtype), (
      {**variables, "params": params}, z))
  value = jnp.asarray([args.tx, args.ty], dtype)

  def mse(params, cutoff_scale):
    v = {**variables, "params": params}
    ws = G.apply(v, z, method=G.map)
    err, mask = equivariance.eq_squared_error(
        G, v, ws, "frac", value, cutoff_scale=cutoff_scale)
    return err / mask

  value_and_grad = jax.jit(jax.value_and_grad(mse, argnums=(0, 1)))
  loss = jax.jit(mse)
  start = time.perf_counter()
  m, (g_params, g_scale) = value_and_grad(variables["params"],
                                          args.cutoff_scale)
  jax.block_until_ready(g_scale)
  print(f"G {args.resolution}x{args.resolution}, batch {args.batch}, "
        f"t = ({args.tx}, {args.ty}), {jnp.dtype(dtype).name}; "
        f"value+grad compiled and run in {time.perf_counter() - start:.1f}s")
  print(f"EQ-T_frac MSE {float(m):.6e}  PSNR "
        f"{float(equivariance.psnr(m, 1.0)):.2f} dB")
  # float64: a step small enough to cross no lrelu kink; float32: one
  # large enough to rise above rounding.
  eps = 1e-7 if args.x64 else 1e-3
  numeric = (loss(variables["params"], args.cutoff_scale + eps)
             - loss(variables["params"], args.cutoff_scale - eps)) / (2 * eps)
  print(f"d MSE / d cutoff_scale at {args.cutoff_scale}: {float(g_scale):+.6e}"
        f"  (central difference, eps {eps:g}: {float(numeric):+.6e})")
  # d PSNR / d s = -10 / ln(10) * (d MSE / d s) / MSE.
  print(f"d PSNR / d cutoff_scale: "
        f"{float(-10 / np.log(10) * g_scale / m):+.4f} dB per unit scale")
  flat = flax.traverse_util.flatten_dict(g_params, sep="/")
  print("gradient norms and first entries of a few parameters:")
  names = [n for n in flat if n.endswith(("weight", "bias"))]
  for name in names[:3] + names[len(names) // 2:len(names) // 2 + 2] + [
      names[-1]]:
    g = np.asarray(flat[name]).reshape(-1)
    print(f"  {name:40s} |g| {np.linalg.norm(g):.3e}  g[:3] "
          f"{np.array2string(g[:3], precision=3)}")
  finite = all(np.all(np.isfinite(np.asarray(g)))
               for g in jax.tree.leaves(g_params))
  print(f"all {len(flat)} parameter gradients finite: {finite}")


if __name__ == "__main__":
  main()
