"""G_ema as a serving artifact: a `jax.export` module plus its weights.

The exported function is `(weights, z, c, psi) -> uint8 images`, lowered
once for several platforms with a symbolic batch size; `loader.py` (copied
next to it) runs it with jax and NumPy alone.
"""

import importlib.metadata
import json
import pathlib
import shutil

import flax
import jax
import jax.numpy as jnp
import numpy as np

from sg3jax.networks import Generator
from sg3jax.networks import synthesis_network
from sg3jax.serving import loader

PLATFORMS = ("cpu", "cuda", "tpu")


def serving_module(module: Generator) -> Generator:
  """`module` with the XLA filtered_lrelu, whatever its `impl` setting.

  The Pallas kernel's lowering is chosen on the exporting host; the XLA
  path lowers to plain StableHLO for every platform.
  """
  if not isinstance(module, Generator):
    raise ValueError(f"module: expected a Generator, got "
                     f"{type(module).__name__}")
  if not hasattr(synthesis_network(module), "filtered_lrelu_impl"):
    return module  # the StyleGAN2 synthesis has no filtered_lrelu
  return module.clone(synthesis_kwargs=flax.core.FrozenDict(
      {**module.synthesis_kwargs, "filtered_lrelu_impl": "xla"}))


def named_leaves(variables: dict) -> tuple[list[str], list[np.ndarray]]:
  """(names 'collection/module/.../param', arrays) in pytree leaf order."""
  paths, _ = jax.tree_util.tree_flatten_with_path(
      flax.core.unfreeze(variables))
  names = ["/".join(str(k.key) for k in path) for path, _ in paths]
  return names, [np.asarray(leaf) for _, leaf in paths]


def serving_function(module: Generator, variables: dict):
  """`f(weights, z [N, z_dim], c [N, c_dim], psi []) -> uint8 [N, H, W, C]`.

  `weights` are `named_leaves(variables)[1]`; images are quantized as the
  official gen_images.py does (`x * 127.5 + 128`, clipped, truncated).
  """
  module = serving_module(module)
  treedef = jax.tree.structure(flax.core.unfreeze(variables))

  def serve(weights, z, c, psi):
    images = module.apply(jax.tree.unflatten(treedef, weights), z,
                          c if module.c_dim else None, truncation_psi=psi)
    return jnp.clip(images * 127.5 + 128, 0, 255).astype(jnp.uint8)
  return serve


def export_generator(module: Generator, variables: dict, *,
                     platforms: tuple[str, ...] = PLATFORMS
                     ) -> jax.export.Exported:
  """`serving_function` exported for `platforms`, batch size symbolic."""
  unknown = sorted(set(platforms) - {"cpu", "cuda", "rocm", "tpu"})
  if not platforms or unknown:
    raise ValueError(f"platforms: expected some of cpu, cuda, rocm, tpu, "
                     f"got {list(platforms)}")
  _, leaves = named_leaves(variables)
  batch, = jax.export.symbolic_shape("batch")
  args = ([jax.ShapeDtypeStruct(x.shape, x.dtype) for x in leaves],
          jax.ShapeDtypeStruct((batch, module.z_dim), jnp.float32),
          jax.ShapeDtypeStruct((batch, module.c_dim), jnp.float32),
          jax.ShapeDtypeStruct((), jnp.float32))
  serve = jax.jit(serving_function(module, variables))
  return jax.export.export(serve, platforms=tuple(platforms))(*args)


def write_export(module: Generator, variables: dict,
                 outdir: str | pathlib.Path, *,
                 platforms: tuple[str, ...] = PLATFORMS,
                 source: str = "") -> pathlib.Path:
  """Writes generator.jax, weights.npz, manifest.json and loader.py."""
  exported = export_generator(module, variables, platforms=platforms)
  names, leaves = named_leaves(variables)
  outdir = pathlib.Path(outdir)
  outdir.mkdir(parents=True, exist_ok=True)
  (outdir / "generator.jax").write_bytes(exported.serialize())
  np.savez(outdir / "weights.npz", **dict(zip(names, leaves)))
  manifest = {
      "format": loader.FORMAT, "source": source,
      "class_name": type(module).__name__,
      "z_dim": module.z_dim, "c_dim": module.c_dim,
      "img_resolution": module.img_resolution,
      "img_channels": module.img_channels,
      "platforms": list(exported.platforms),
      "jax_version": jax.__version__,
      "sg3jax_version": importlib.metadata.version("sg3jax"),
      "call": "images_uint8[N, H, W, C] = f(weights, z[N, z_dim] float32, "
              "c[N, c_dim] float32, psi[] float32)",
      "weights": names}
  (outdir / "manifest.json").write_text(json.dumps(manifest, indent=1))
  shutil.copyfile(loader.__file__, outdir / "loader.py")
  return outdir
