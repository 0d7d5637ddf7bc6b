"""Feature extraction for the dataset-based metrics (official metric_utils).

Generation and feature extraction run in one jitted `shard_map` per batch
over a `Mesh("data")` of every device; only the features leave the
devices, gathered on every one (so every process reads them). A mesh may
span processes (`jax.distributed`: every process calls the same function
with the same arguments, and each reads only its own devices' share of a
dataset batch); it then spans all of them. Dataset statistics are cached
per dataset, detector and options under a hash of those options, as the
official cache is keyed.
"""

import functools
import hashlib
import math
import os
import pathlib
from collections.abc import Callable, Iterator

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from jax.experimental import multihost_utils
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

from sg3jax.metrics import fid
from sg3jax.metrics import inception
from sg3jax.metrics import vgg16

DATA_AXIS = "data"
DETECTORS_ENV = "SG3JAX_DETECTORS"
CACHE_ENV = "SG3JAX_CACHE"
# detector -> (files accepted, in order of preference; loader; official URL).
DETECTORS = {
    "inception": (("inception-2015-12-05.pkl", "inception-2015-12-05.pt",
                   "pt_inception-2015-12-05-6726825d.pth"),
                  inception.load_inception, inception.OFFICIAL_URL),
    "vgg16": (("vgg16.pkl", "vgg16.pt"), vgg16.load_vgg16,
              vgg16.OFFICIAL_URL),
}


def detector_dir(directory: str | os.PathLike | None = None) -> pathlib.Path:
  """`directory`, else $SG3JAX_DETECTORS, else ~/.cache/sg3jax/detectors."""
  if directory is None:
    directory = os.environ.get(DETECTORS_ENV) or (
        pathlib.Path.home() / ".cache" / "sg3jax" / "detectors")
  return pathlib.Path(directory)


@functools.lru_cache(maxsize=4)
def _load_detector(kind: str, path: str):
  return DETECTORS[kind][1](path)


def load_detector(kind: str, directory: str | os.PathLike | None = None):
  """(module, variables, file name) of the detector `kind` ("inception",
  "vgg16") found in the detector directory; FileNotFoundError says where
  to get it."""
  directory = detector_dir(directory)
  files, _, url = DETECTORS[kind]
  for name in files:
    if (directory / name).is_file():
      module, variables = _load_detector(kind, str(directory / name))
      return module, variables, name
  raise FileNotFoundError(
      f"no {kind} detector in {directory} (looked for {', '.join(files)}): "
      f"download {url} there, or point --detector_dir / ${DETECTORS_ENV} to "
      "its folder")


def data_mesh(devices=None) -> jax.sharding.Mesh:
  """A 1-D mesh ("data") of `devices` (default: every device of every
  process)."""
  devices = list(jax.devices() if devices is None else devices)
  return jax.sharding.Mesh(np.array(devices), (DATA_AXIS,))


def spans_processes(mesh: jax.sharding.Mesh) -> bool:
  """Whether `mesh` has devices of other processes than this one."""
  return any(d.process_index != jax.process_index()
             for d in mesh.devices.flat)


def replicated(tree, mesh: jax.sharding.Mesh):
  """`tree`'s arrays copied to every device of `mesh`.

  On a mesh that spans processes, every process passes the same values:
  NumPy arrays, arrays on this process's devices (copied through the host,
  as one process cannot send to another's devices), or arrays already
  spread over the processes.
  """
  sharding = NamedSharding(mesh, P())
  through_host = spans_processes(mesh)

  def put(x):
    if through_host and isinstance(x, jax.Array) and x.is_fully_addressable:
      x = np.asarray(x)
    return jax.device_put(x, sharding)
  return jax.tree.map(put, tree)


def replicated_key(seed: int, mesh: jax.sharding.Mesh) -> jax.Array:
  """`jax.random.key(seed)` on every device of `mesh` (made there: typed
  keys cannot be `device_put` to other processes' devices)."""
  return jax.jit(jax.random.key,
                 out_shardings=NamedSharding(mesh, P()))(seed)


def split(batch: np.ndarray, mesh: jax.sharding.Mesh) -> jax.Array:
  """A host batch `[B, ...]` (the same on every process) split over the
  mesh's data axis; B a multiple of the mesh size."""
  return jax.device_put(batch, NamedSharding(mesh, P(DATA_AXIS)))


def _dataset_batch(dataset, idx: np.ndarray, image_shape: tuple[int, ...],
                   mesh: jax.sharding.Mesh) -> jax.Array:
  """The uint8 images `[len(idx), *image_shape]` of dataset items `idx`,
  split over the data axis; each process reads only its devices' items."""
  def read(index: tuple[slice, ...]) -> np.ndarray:
    return np.stack([dataset[int(i)]["image"] for i in idx[index[0]]])
  return jax.make_array_from_callback(
      (len(idx), *image_shape), NamedSharding(mesh, P(DATA_AXIS)), read)


def on_every_process(flag: bool, mesh: jax.sharding.Mesh) -> bool:
  """Whether `flag` holds on every process (this one's flag for a mesh of
  its own devices), so that processes sharing a mesh take one branch."""
  if not spans_processes(mesh):
    return flag
  return bool(np.all(multihost_utils.process_allgather(np.array(flag))))


def _to_uint8_rgb(img: jax.Array) -> jax.Array:
  """Generator images `[N, H, W, C]` in [-1, 1] -> uint8 RGB, as the
  official `(img * 127.5 + 128).clamp(0, 255).to(torch.uint8)`."""
  img = jnp.clip(img * 127.5 + 128, 0, 255).astype(jnp.uint8)
  if img.shape[-1] == 1:
    img = jnp.repeat(img, 3, axis=-1)
  return img


def _detector_output(detector: nn.Module, variables, images, kind: str):
  if kind == "features":
    return detector.apply(variables, images, return_features=True)
  return detector.apply(variables, images, no_output_bias=True)


@functools.lru_cache(maxsize=8)
def _dataset_step(detector: nn.Module, mesh, kind: str) -> Callable:
  def per_device(variables, images):
    if images.shape[-1] == 1:
      images = jnp.repeat(images, 3, axis=-1)
    return _detector_output(detector, variables, images, kind)

  return jax.jit(jax.shard_map(per_device, mesh=mesh,
                               in_specs=(P(), P(DATA_AXIS)),
                               out_specs=P(DATA_AXIS)),
                 out_shardings=NamedSharding(mesh, P()))


def latents(key: jax.Array, sample_idx: jax.Array, shape: tuple[int, ...]
            ) -> jax.Array:
  """Each sample's latents `[N, *shape]`: normal draws from
  `fold_in(key, i)` for sample i, whatever the batch and device layout."""
  return jax.vmap(lambda i: jax.random.normal(
      jax.random.fold_in(key, i), shape))(sample_idx)


def batch_noise_key(key: jax.Array, sample_idx: jax.Array) -> jax.Array:
  """A key for this device's share of a batch (StyleGAN2 noise), apart
  from the latents' streams; use inside the data-axis shard_map."""
  return jax.random.fold_in(jax.random.fold_in(
      jax.random.fold_in(key, 0xFFFFFFFF), sample_idx[0]),
                            jax.lax.axis_index(DATA_AXIS))


def sharded_generator_step(per_device: Callable, mesh) -> Callable:
  """jit(shard_map(per_device)) for `per_device(g_vars, d_vars, key,
  sample_idx, c)` -> per-sample outputs: variables and key replicated,
  sample indices and labels split over the data axis, the outputs
  gathered on every device."""
  return jax.jit(jax.shard_map(
      per_device, mesh=mesh,
      in_specs=(P(), P(), P(), P(DATA_AXIS), P(DATA_AXIS)),
      out_specs=P(DATA_AXIS)), out_shardings=NamedSharding(mesh, P()))


def cached_step(build: Callable) -> Callable:
  """`build(G, detector, mesh, *options)` memoized for hashable G (as
  loaded: FrozenDict kwargs), so that repeated metrics share the compiled
  step; an unhashable module (dict kwargs) is built afresh."""
  cached = functools.lru_cache(maxsize=8)(build)

  def step(*args):
    try:
      return cached(*args)
    except TypeError:
      return build(*args)
  return step


@cached_step
def _generator_step(G: nn.Module, detector: nn.Module, mesh, kind: str
                    ) -> Callable:
  """The jitted generate + features step."""
  def per_device(g_vars, d_vars, key, sample_idx, c):
    z = latents(key, sample_idx, (G.z_dim,))
    # Per-pixel noise (StyleGAN2 'random' noise mode).
    img = G.apply(g_vars, z, c if G.c_dim else None,
                  rngs={"noise": batch_noise_key(key, sample_idx)})
    return _detector_output(detector, d_vars, _to_uint8_rgb(img), kind)

  return sharded_generator_step(per_device, mesh)


def _round_batch(batch: int | None, mesh) -> int:
  n = mesh.devices.size
  batch = 64 if batch is None else batch
  if batch < 1:
    raise ValueError(f"batch: expected >= 1, got {batch}")
  return math.ceil(batch / n) * n


def _progress(total: int, desc: str, enabled: bool):
  if not enabled:
    return None
  import tqdm  # pylint: disable=g-import-not-at-top
  return tqdm.tqdm(total=total, desc=desc, unit="img", dynamic_ncols=True)


def _cache_file(data_path: str, detector_name: str, options: dict
                ) -> pathlib.Path:
  """<cache>/gan-metrics/<dataset>-<detector>-<md5 of the options>.npz."""
  root = pathlib.Path(os.environ.get(CACHE_ENV) or (
      pathlib.Path.home() / ".cache" / "sg3jax"))
  if not data_path.startswith(("demo", "tfds:")):
    data_path = os.path.abspath(data_path)
  args = dict(dataset_kwargs=dict(path=data_path, max_size=None,
                                  xflip=False),
              detector=detector_name, **options)
  md5 = hashlib.md5(repr(sorted(args.items())).encode("utf-8")).hexdigest()
  stem = pathlib.Path(data_path.replace(":", "_")).stem
  return root / "gan-metrics" / (
      f"{stem}-{pathlib.Path(detector_name).stem}-{md5}.npz")


def dataset_features(dataset, detector: nn.Module, variables, *,
                     data_path: str, detector_name: str,
                     kind: str = "features",
                     max_items: int | None = None, batch: int | None = None,
                     mesh=None, cache: bool = True, progress: bool = True,
                     **stats_kwargs) -> fid.FeatureStats:
  """FeatureStats of the first min(len, max_items) dataset images (no
  x-flips), read from the cache when computed before (on a mesh spanning
  processes: when every process finds it)."""
  mesh = data_mesh() if mesh is None else mesh
  num = len(dataset) if max_items is None else min(len(dataset), max_items)
  options = dict(kind=kind, max_items=num, stats_kwargs=stats_kwargs)
  cache_file = (_cache_file(data_path, detector_name, options) if cache
                else None)
  if on_every_process(cache_file is not None and cache_file.is_file(),
                      mesh):
    with np.load(cache_file) as state:
      return fid.FeatureStats.from_state(state)
  stats = fid.FeatureStats(max_items=num, **stats_kwargs)
  batch = _round_batch(batch, mesh)
  step = _dataset_step(detector, mesh, kind)
  variables = replicated(variables, mesh)
  image_shape = np.shape(dataset[0]["image"])
  bar = _progress(num, "dataset features", progress)
  for start in range(0, num, batch):
    idx = np.minimum(np.arange(start, start + batch), num - 1)
    out = step(variables, _dataset_batch(dataset, idx, image_shape, mesh))
    stats.append(np.asarray(out)[:min(batch, num - start)])
    if bar is not None:
      bar.update(min(batch, num - start))
  if bar is not None:
    bar.close()
  if cache_file is not None:
    cache_file.parent.mkdir(parents=True, exist_ok=True)
    temp = cache_file.with_suffix(
        f".{jax.process_index()}.{os.getpid()}.tmp.npz")
    np.savez(temp, **stats.state())
    os.replace(temp, cache_file)
  return stats


def generator_outputs(step: Callable, G: nn.Module, g_variables,
                      d_variables, *, num: int, dataset=None,
                      batch: int | None = None, seed: int = 0, mesh=None,
                      progress: bool = True, desc: str = "generator"
                      ) -> Iterator[np.ndarray]:
  """Runs a `sharded_generator_step` over samples 0 .. num-1 in batches,
  yielding each batch's outputs (the last batch may run past num).

  Labels: random dataset items for conditional G (official
  iterate_random_labels), drawn with `seed`.
  """
  mesh = data_mesh() if mesh is None else mesh
  if G.c_dim and dataset is None:
    raise ValueError("a conditional generator needs --data for its labels")
  batch = _round_batch(batch, mesh)
  g_variables = replicated(g_variables, mesh)
  d_variables = replicated(d_variables, mesh)
  key = replicated_key(seed, mesh)
  rng = np.random.RandomState(seed)
  bar = _progress(num, desc, progress)
  for start in range(0, num, batch):
    idx = np.arange(start, start + batch, dtype=np.int32)
    if G.c_dim:
      c = np.stack([dataset.get_label(rng.randint(len(dataset)))
                    for _ in idx]).astype(np.float32)
    else:
      c = np.zeros((batch, 0), np.float32)
    yield np.asarray(step(g_variables, d_variables, key, split(idx, mesh),
                          split(c, mesh)))
    if bar is not None:
      bar.update(min(batch, num - start))
  if bar is not None:
    bar.close()


def generator_features(G: nn.Module, g_variables, detector: nn.Module,
                       d_variables, *, num: int, dataset=None,
                       kind: str = "features", batch: int | None = None,
                       seed: int = 0, mesh=None, progress: bool = True,
                       **stats_kwargs) -> fid.FeatureStats:
  """FeatureStats of `num` generated images: z ~ N(0, I) from
  `fold_in(key(seed), i)` for sample i, truncation 1, labels of random
  dataset items for conditional G (official iterate_random_labels)."""
  mesh = data_mesh() if mesh is None else mesh
  stats = fid.FeatureStats(max_items=num, **stats_kwargs)
  step = _generator_step(G, detector, mesh, kind)
  for out in generator_outputs(step, G, g_variables, d_variables, num=num,
                               dataset=dataset, batch=batch, seed=seed,
                               mesh=mesh, progress=progress,
                               desc="generator features"):
    stats.append(out)
  return stats
