"""The generators: mapping network + StyleGAN3 or StyleGAN2 synthesis."""

from collections.abc import Mapping

import flax
import flax.linen as nn
import jax

from sg3jax.networks import stylegan2_synthesis
from sg3jax.networks.mapping import MappingNetwork
from sg3jax.networks.synthesis import SynthesisNetwork
from sg3jax.resolution import Resolution


class Generator(nn.Module):
  """z `[N, z_dim]`, c `[N, c_dim]` -> images `[N, H, W, channels]`.

  Mirrors the official `Generator(z_dim, c_dim, w_dim, img_resolution,
  img_channels, mapping_kwargs, **synthesis_kwargs)`: `mapping_kwargs` go to
  `MappingNetwork`, `synthesis_kwargs` to `SynthesisNetwork` (T config by
  default; R is `conv_kernel=1, use_radial_filters=True` with doubled
  channel_base/channel_max). Call the parts alone with
  `G.apply(variables, z, c, method=G.map)` and
  `G.apply(variables, ws, method=G.synthesize)`.
  """
  z_dim: int
  c_dim: int  # 0 = unconditional
  w_dim: int
  img_resolution: Resolution  # int (square) or (H, W)
  img_channels: int
  mapping_kwargs: Mapping = flax.core.FrozenDict()
  synthesis_kwargs: Mapping = flax.core.FrozenDict()

  def setup(self):
    self.synthesis = SynthesisNetwork(
        w_dim=self.w_dim, img_resolution=self.img_resolution,
        img_channels=self.img_channels, **self.synthesis_kwargs)
    self.mapping = MappingNetwork(
        z_dim=self.z_dim, c_dim=self.c_dim, w_dim=self.w_dim,
        num_ws=self.synthesis.num_ws, **self.mapping_kwargs)

  def with_stats_axis(self, axis_name: str | None) -> "Generator":
    """This generator with its batch statistics (w_avg, magnitude EMAs)
    averaged over the mesh axis `axis_name` (inside `shard_map`)."""
    return self.clone(
        mapping_kwargs=flax.core.FrozenDict(
            {**self.mapping_kwargs, "stats_axis_name": axis_name}),
        synthesis_kwargs=flax.core.FrozenDict(
            {**self.synthesis_kwargs, "stats_axis_name": axis_name}))

  def map(self, z: jax.Array, c: jax.Array | None = None, *,
          truncation_psi: float = 1.0, truncation_cutoff: int | None = None,
          update_emas: bool = False) -> jax.Array:
    """z, c -> ws `[N, num_ws, w_dim]`."""
    return self.mapping(z, c, truncation_psi=truncation_psi,
                        truncation_cutoff=truncation_cutoff,
                        update_emas=update_emas)

  def synthesize(self, ws: jax.Array, *, update_emas: bool = False,
                 cutoff_scale: jax.typing.ArrayLike | None = None
                 ) -> jax.Array:
    """ws `[N, num_ws, w_dim]` -> images `[N, H, W, img_channels]`.

    `cutoff_scale` (optional, may be traced) multiplies every layer's filter
    cutoff and designs the filters differentiably (see SynthesisLayer)."""
    return self.synthesis(ws, update_emas=update_emas,
                          cutoff_scale=cutoff_scale)

  def __call__(self, z: jax.Array, c: jax.Array | None = None, *,
               truncation_psi: float = 1.0,
               truncation_cutoff: int | None = None,
               update_emas: bool = False) -> jax.Array:
    ws = self.map(z, c, truncation_psi=truncation_psi,
                  truncation_cutoff=truncation_cutoff, update_emas=update_emas)
    return self.synthesize(ws, update_emas=update_emas)


class StyleGAN2Generator(Generator):
  """The official `networks_stylegan2.Generator` (the `--cfg=stylegan2`
  baseline): the same interface as `Generator`, with the StyleGAN2
  synthesis network (`stylegan2_synthesis.SynthesisNetwork` kwargs) and an
  8-layer mapping network by default.

  Synthesis noise: see `stylegan2_synthesis`; pass `noise_mode`, or
  `rngs={"noise": key}` for fresh noise.
  """

  def setup(self):
    self.synthesis = stylegan2_synthesis.SynthesisNetwork(
        w_dim=self.w_dim, img_resolution=self.img_resolution,
        img_channels=self.img_channels, **self.synthesis_kwargs)
    self.mapping = MappingNetwork(
        z_dim=self.z_dim, c_dim=self.c_dim, w_dim=self.w_dim,
        num_ws=self.synthesis.num_ws,
        **{"num_layers": 8, **self.mapping_kwargs})

  def with_stats_axis(self, axis_name: str | None) -> "StyleGAN2Generator":
    """See `Generator.with_stats_axis` (only w_avg has batch statistics)."""
    return self.clone(mapping_kwargs=flax.core.FrozenDict(
        {**self.mapping_kwargs, "stats_axis_name": axis_name}))

  def synthesize(self, ws: jax.Array, *, update_emas: bool = False,
                 noise_mode: str | None = None) -> jax.Array:
    """ws `[N, num_ws, w_dim]` -> images `[N, H, W, img_channels]`."""
    return self.synthesis(ws, update_emas=update_emas, noise_mode=noise_mode)

  def __call__(self, z: jax.Array, c: jax.Array | None = None, *,
               truncation_psi: float = 1.0,
               truncation_cutoff: int | None = None,
               update_emas: bool = False,
               noise_mode: str | None = None) -> jax.Array:
    ws = self.map(z, c, truncation_psi=truncation_psi,
                  truncation_cutoff=truncation_cutoff, update_emas=update_emas)
    return self.synthesize(ws, update_emas=update_emas, noise_mode=noise_mode)


def synthesis_network(generator: Generator) -> nn.Module:
  """`generator`'s synthesis network as a standalone, unbound module (for
  its layer names, kwargs and filters, which need no variables)."""
  network = (stylegan2_synthesis.SynthesisNetwork
             if isinstance(generator, StyleGAN2Generator)
             else SynthesisNetwork)
  return network(w_dim=generator.w_dim,
                 img_resolution=generator.img_resolution,
                 img_channels=generator.img_channels, parent=None,
                 **generator.synthesis_kwargs)
