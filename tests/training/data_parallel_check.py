"""The same training iterations on 1 and on 8 simulated CPU devices.

Run as `python -m tests.training.data_parallel_check`; it forces 8 host
devices before importing jax and prints JSON: for each network, the max
|difference| between the two runs and the max |change| from the initial
values. Plain SGD keeps the parameter differences proportional to the
gradient differences (Adam's first step, g / (|g| + eps), turns reduction-
order noise in near-zero gradients into lr-sized jumps). Minibatch-std
groups are per device, so mbstd_group_size is 1 here: with the default 4,
one device with batch 8 and eight devices with batch 1 are different
discriminators by design.
"""

import json
import os

from tests import host_devices

os.environ["XLA_FLAGS"] = host_devices.xla_flags(8)

import jax  # pylint: disable=g-import-not-at-top,wrong-import-position
import numpy as np  # pylint: disable=g-import-not-at-top,wrong-import-position
import optax  # pylint: disable=g-import-not-at-top,wrong-import-position
from jax.sharding import NamedSharding  # pylint: disable=g-import-not-at-top,wrong-import-position
from jax.sharding import PartitionSpec as P  # pylint: disable=g-import-not-at-top,wrong-import-position

from sg3jax import convert  # pylint: disable=g-import-not-at-top,wrong-import-position
from sg3jax import data  # pylint: disable=g-import-not-at-top,wrong-import-position
from sg3jax.training import config as config_lib  # pylint: disable=g-import-not-at-top,wrong-import-position
from sg3jax.training import step as step_lib  # pylint: disable=g-import-not-at-top,wrong-import-position
from tests.training import tiny  # pylint: disable=g-import-not-at-top,wrong-import-position

STEPS = 2


def run(devices, cfg, G, D, variables, reals):
  mesh = jax.sharding.Mesh(np.asarray(devices), ("data",),
                           axis_types=(jax.sharding.AxisType.Auto,))
  tx = optax.sgd(0.01)
  loss = step_lib.LossConfig(r1_gamma=cfg.loss.r1_gamma, D_reg_interval=None)
  batch = cfg.batch_size
  builder = step_lib.StepBuilder(G, D, tx, tx, loss, mesh,
                                 batch_gpu=batch // len(devices))
  state = jax.device_put(
      step_lib.init_state(variables["G"], variables["D"], variables["G"],
                          tx, tx), NamedSharding(mesh, P()))
  sharded = NamedSharding(mesh, P("data"))
  for i in range(STEPS):
    scalars = step_lib.step_scalars(i, i * batch, batch, 10.0, 0.05, loss)
    state = builder(
        state, jax.random.key(0), jax.device_put(reals[i], sharded),
        jax.device_put(np.zeros((batch, 0), np.float32), sharded),
        jax.device_put(np.zeros((batch, len(builder.phases), 0),
                                np.float32), sharded), scalars)
  return jax.tree.map(np.asarray, step_lib.variables_of(state)), (
      jax.tree.map(np.asarray, state.reports))


def main():
  cfg = tiny.tiny_config()
  cfg.D.mbstd_group_size = 1
  ds = data.open_dataset(cfg.data)
  shape = dict(resolution=ds.resolution, channels=ds.num_channels,
               label_dim=0)
  G = convert.generator_from_kwargs(config_lib.generator_kwargs(cfg, **shape),
                                    filtered_lrelu_impl="xla")
  D = convert.discriminator_from_kwargs(
      config_lib.discriminator_kwargs(cfg, **shape))
  z = np.zeros((1, G.z_dim), np.float32)
  c = np.zeros((1, 0), np.float32)
  variables = {
      "G": jax.jit(G.init)(jax.random.key(1), z, c),
      "D": jax.jit(D.init)(jax.random.key(2),
                           np.zeros((1, 16, 16, 3), np.float32), c)}
  reals = np.stack([np.stack([ds[i * 8 + j]["image"] for j in range(8)])
                    for i in range(STEPS)]).astype(np.float32) / 127.5 - 1
  one, one_reports = run(jax.devices()[:1], cfg, G, D, variables, reals)
  eight, eight_reports = run(jax.devices(), cfg, G, D, variables, reals)
  initial = {"G": variables["G"], "D": variables["D"],
             "G_ema": variables["G"]}
  result = {"device_count": jax.device_count()}
  for name in one:
    diff = jax.tree.map(lambda a, b: float(np.max(np.abs(a - b))),
                        one[name], eight[name])
    change = jax.tree.map(lambda a, b: float(np.max(np.abs(a - b))),
                          one[name], jax.tree.map(np.asarray, initial[name]))
    scale = jax.tree.map(lambda a: float(np.max(np.abs(a))), one[name])
    result[name] = {"max_diff": max(jax.tree.leaves(diff)),
                    "max_change": max(jax.tree.leaves(change)),
                    "max_rel_diff": max(
                        d / max(s, 1e-12) for d, s in zip(
                            jax.tree.leaves(diff), jax.tree.leaves(scale)))}
  result["reports"] = {k: [float(v) for v in one_reports[k]]
                       for k in one_reports}
  result["reports_diff"] = max(
      float(np.max(np.abs(one_reports[k] - eight_reports[k])))
      for k in one_reports)
  print(json.dumps(result))


if __name__ == "__main__":
  main()
