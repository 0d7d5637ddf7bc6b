"""The fused kernels lower for CUDA and for TPU v4, v5e, v5p and v6e.

On a CPU host, at the real shapes: every filtered_lrelu of StyleGAN3-T and
-R at 256², 512² and 1024² (official channel bases, float32 and, in the
mixed-precision layers, bfloat16), forward and gradient; and the T and R
generators at 256² with impl="auto", whose gradient must carry a kernel for
every target. The training step is in `tests/training/test_step_lowering.py`.
"""

import functools

import jax
import jax.numpy as jnp
from absl.testing import absltest
from absl.testing import parameterized

from kernels import filtered_lrelu as fused
from sg3jax import compile_matrix
from sg3jax import ops
from tests.kernels import targets

CONFIGS = ("stylegan3-t", "stylegan3-r")
BATCH = 2


def official_generator(cfg: str, resolution: int):
  return compile_matrix.official_generator(cfg, resolution)


def layer_calls(cfg: str, resolution: int) -> list[tuple]:
  """(input, filtered_lrelu args) of the filtering layers, deduplicated."""
  return [(x, args) for _, x, args in
          compile_matrix.layer_calls(cfg, resolution, BATCH)]


def _key(call) -> tuple:
  x, args = call
  return (x.shape, x.dtype.name, args["fu"].shape, args["fd"].shape,
          args["up"], args["down"], tuple(args["padding"]))


class PlanningTest(parameterized.TestCase):
  """Both kernels serve every real layer, in float32 and in bfloat16."""

  @parameterized.product(cfg=CONFIGS, resolution=(256, 512, 1024))
  def test_every_layer_fits(self, cfg, resolution):
    for x, args in layer_calls(cfg, resolution):
      kernel_cfg = fused.make_config(
          x.shape, args["fu"].shape, args["fd"].shape, up=args["up"],
          down=args["down"], padding=args["padding"], gain=args["gain"],
          slope=args["slope"], clamp=args["clamp"], flip_filter=False)
      for backend in fused.BACKENDS:
        for dtype in (jnp.float32, jnp.bfloat16):
          fused.check_supported(kernel_cfg, dtype, backend)


class LayerLoweringTest(parameterized.TestCase):
  """Forward and gradient of every layer shape at 512² and 1024² (the
  256² layers are in GeneratorLoweringTest), for every target."""

  @parameterized.product(cfg=CONFIGS, resolution=(512, 1024))
  def test_layers_lower(self, cfg, resolution):
    seen = {_key(c) for c in layer_calls(cfg, 256)}
    calls = [c for c in layer_calls(cfg, resolution) if _key(c) not in seen]
    self.assertNotEmpty(calls)

    def forward_and_gradient(xs):
      outputs = []
      for (_, args), x in zip(calls, xs):
        y, pullback = jax.vjp(
            functools.partial(ops.filtered_lrelu, **args), x)
        outputs.append((y, pullback(y)))
      return outputs

    lowered = targets.lower_for_targets(jax.jit(forward_and_gradient),
                                        [x for x, _ in calls])
    for target, text in lowered.items():
      # A forward and a backward kernel per layer shape.
      self.assertGreaterEqual(targets.kernel_calls(target, text),
                              2 * len(calls), target)


class GeneratorLoweringTest(parameterized.TestCase):
  """impl="auto" never crashes: the 256² T and R generators (forward and
  gradient) lower for every target, with the kernel in every layer."""

  @parameterized.parameters(*CONFIGS)
  def test_generator_gradient_lowers(self, cfg):
    G = official_generator(cfg, 256)
    z = jax.ShapeDtypeStruct((BATCH, G.z_dim), jnp.float32)
    c = jax.ShapeDtypeStruct((BATCH, 0), jnp.float32)
    variables = jax.eval_shape(G.init, jax.random.key(0), z, c)

    def loss(variables, z, c):
      return jnp.mean(jnp.square(G.apply(variables, z, c)))

    lowered = targets.lower_for_targets(
        jax.jit(jax.value_and_grad(loss)), variables, z, c)
    unique = len(layer_calls(cfg, 256))
    for target, text in lowered.items():
      self.assertGreaterEqual(targets.kernel_calls(target, text), 2 * unique,
                              target)


if __name__ == "__main__":
  absltest.main()
