"""The real training step of a config, on abstract arguments.

`training_step(cfg, mesh)` builds what `loop.train` runs (the same
networks, optimizers, losses and `StepBuilder` program), with the state,
key, batch and labels as `jax.ShapeDtypeStruct`s placed on `mesh`: nothing
is allocated, so a mesh of compile-only devices (`sg3jax.aot.devices`)
compiles the step for a TPU slice or GPUs from any host.

`compile_step_case` compiles the programs of a step described by a JSON-able
case (config, resolution, batch, overrides, target); `python -m
sg3jax.training.abstract_step --worker MAX_BYTES` serves it to
`aot.run_isolated`.
"""

import dataclasses

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

from sg3jax import aot
from sg3jax.resolution import image_shape
from sg3jax.resolution import parse_resolution
from sg3jax.resolution import Resolution
from sg3jax.training import config as config_lib
from sg3jax.training import loop
from sg3jax.training import step as step_lib


@dataclasses.dataclass(frozen=True)
class DataShape:
  """What the networks need to know of a dataset (`loop.build_networks`)."""
  resolution: Resolution
  num_channels: int = 3
  label_dim: int = 0

  @property
  def image_shape(self) -> tuple[int, int, int]:
    """`[H, W, C]` of every image."""
    return (*image_shape(self.resolution), self.num_channels)


@dataclasses.dataclass(frozen=True)
class AbstractStep:
  """One training iteration running `phases`: each of `programs` (name,
  jitted program; one per phase, then "finish") takes `args`, the state
  first, and returns the next state."""
  programs: tuple[tuple[str, jax.stages.Wrapped], ...]
  args: tuple
  phases: tuple[str, ...]
  batch_gpu: int


def training_step(cfg: ml_collections.ConfigDict, mesh: jax.sharding.Mesh,
                  *, channels: int = 3, label_dim: int = 0) -> AbstractStep:
  """The first iteration of `cfg` (global batch `cfg.batch_size` over the
  mesh's "data" axis, micro-batch `cfg.batch_gpu`): every phase is active
  (G main, G reg if pl_weight > 0, D main, D reg), so are ADA and the blur
  fade-in when the config has them.

  Raises:
    ValueError: when the batch does not split over the mesh (as `train`).
  """
  devices = mesh.shape["data"]
  batch_gpu = cfg.batch_gpu or cfg.batch_size // devices
  if batch_gpu <= 0 or cfg.batch_size % (devices * batch_gpu):
    raise ValueError(f"batch_size {cfg.batch_size} must be a multiple of "
                     f"devices ({devices}) x batch_gpu ({batch_gpu})")
  shape = DataShape(parse_resolution(cfg.resolution), channels, label_dim)
  nets = loop.build_networks(cfg, shape)
  g_tx, d_tx = loop.optimizers(cfg, nets.D)
  loss = loop.loss_config(cfg)
  builder = step_lib.StepBuilder(nets.G, nets.D, g_tx, d_tx, loss, mesh,
                                 batch_gpu)
  active = builder.active_phases(0)
  scalars = step_lib.step_scalars(0, 0, cfg.batch_size, cfg.ema_kimg,
                                  cfg.ema_rampup, loss)
  blur = bool(scalars.blur_size > 0)
  replicated, sharded = NamedSharding(mesh, P()), NamedSharding(mesh,
                                                               P("data"))
  z = np.zeros((1, nets.G.z_dim), np.float32)
  c = np.zeros((1, label_dim), np.float32)
  img = np.zeros((1, *shape.image_shape), np.float32)

  def fresh_state():
    g_init, d_init = jax.random.split(jax.random.key(0))
    g_variables = nets.G.init(g_init, z, c)
    return step_lib.init_state(g_variables, nets.D.init(d_init, img, c),
                               g_variables, g_tx, d_tx)

  batch = cfg.batch_size
  args = (
      aot.placed(jax.eval_shape(fresh_state), replicated),
      aot.placed(jax.eval_shape(lambda: jax.random.key(0)), replicated),
      jax.ShapeDtypeStruct((batch, *shape.image_shape), jnp.uint8,
                           sharding=sharded),
      jax.ShapeDtypeStruct((batch, label_dim), jnp.float32,
                           sharding=sharded),
      jax.ShapeDtypeStruct((batch, len(builder.phases), label_dim),
                           jnp.float32, sharding=sharded),
      aot.placed(jax.eval_shape(lambda: jax.tree.map(jnp.asarray, scalars)),
             replicated))
  return AbstractStep(builder.programs(active, blur=blur), args,
                      tuple(p.name for p in active), batch_gpu)


def step_config(case: dict) -> ml_collections.ConfigDict:
  """The config of a step case: `config` ("stylegan3-t", ...) at
  `resolution` (with the official R1 gamma of an official resolution),
  batch `batch_size` with `batch_gpu` per device, then the dotted-key
  `overrides` (e.g. {"loss.pl_weight": 2.0})."""
  c = config_lib.base_config(case["config"])
  c.resolution = case["resolution"]
  c.batch_size = case["batch_size"]
  c.batch_gpu = case["batch_gpu"]
  if case["resolution"] in config_lib.OFFICIAL_GAMMA:
    c.loss.r1_gamma = config_lib.OFFICIAL_GAMMA[case["resolution"]]
  for key, value in case.get("overrides", {}).items():
    *path, leaf = key.split(".")
    node = c
    for name in path:
      node = node[name]
    node[leaf] = value
  return c


def compile_step_case(case: dict) -> dict:
  """Each program of a step case's iteration compiled on its `target`'s
  devices: {"programs": [`aot.Compiled` fields and the program's "name"],
  "phases": [...], "devices": n}. A config the step cannot be built from
  gives {"error": ...}."""
  devices = aot.devices(case["target"])
  mesh = jax.sharding.Mesh(np.asarray(devices), ("data",))
  try:
    step = training_step(step_config(case), mesh)
  except ValueError as e:
    return {"error": f"ValueError: {e}"}
  programs = [dict(aot.as_dict(aot.compile_for(case["target"], program,
                                               *step.args)), name=name)
              for name, program in step.programs]
  return dict(programs=programs, phases=list(step.phases),
              devices=len(devices))


if __name__ == "__main__":
  import sys  # pylint: disable=g-import-not-at-top
  if len(sys.argv) != 3 or sys.argv[1] != "--worker":
    raise SystemExit("usage: python -m sg3jax.training.abstract_step "
                     "--worker MAX_BYTES")
  aot.serve(compile_step_case, int(sys.argv[2]))
