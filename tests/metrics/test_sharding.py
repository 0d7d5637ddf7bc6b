"""The sharded metric steps on 8 devices give what 1 device gives: dataset
features, generated images' features and PPL distances, per sample.

Runs in a subprocess with 8 host CPU devices
(XLA_FLAGS=--xla_force_host_platform_device_count=8); the subprocess
computes each output with a mesh of its first device and with a mesh of
all 8, on the tiny StyleGAN3 generator and a narrow random VGG16.
"""

import os
import pathlib
import subprocess
import sys

import numpy as np
from absl.testing import absltest

from tests import host_devices

REPO = pathlib.Path(__file__).resolve().parents[2]
NUM = 12  # samples: two batches of 8, the second partly past the end
BATCH = 8

_SCRIPT = """
import sys
import jax
import numpy as np
from sg3jax.metrics import metric_utils, ppl, vgg16
from tests.analysis import tiny
from tests.metrics import detectors, test_vgg16
assert jax.device_count() == 8, jax.devices()
G, g_vars = tiny.generator()
vgg, vgg_vars = vgg16.vgg16_from_state_dict(
    detectors.vgg16_state_dict(**test_vgg16.SLIM))
dataset = [{{"image": image}} for image in np.random.default_rng(0).integers(
    0, 256, ({num}, 16, 16, 3), dtype=np.uint8)]
out = {{}}
for n in (1, 8):
  mesh = metric_utils.data_mesh(jax.devices()[:n])
  common = dict(batch={batch}, mesh=mesh, progress=False)
  out[f"dataset{{n}}"] = metric_utils.dataset_features(
      dataset, vgg, vgg_vars, data_path="none", detector_name="vgg16",
      cache=False, capture_all=True, **common).get_all()
  out[f"generated{{n}}"] = metric_utils.generator_features(
      G, g_vars, vgg, vgg_vars, num={num}, seed=3, capture_all=True,
      **common).get_all()
  # epsilon 0.1: rounding is negligible against the perturbation.
  _, out[f"ppl{{n}}"] = ppl.compute_ppl(G, g_vars, vgg, vgg_vars, num={num},
                                      epsilon=0.1, seed=3, **common)
np.savez(sys.argv[1], **out)
"""


class ShardingTest(absltest.TestCase):

  def test_eight_devices_match_one(self):
    path = pathlib.Path(self.create_tempdir().full_path) / "out.npz"
    env = dict(os.environ, JAX_PLATFORMS="cpu", PYTHONPATH=str(REPO),
               XLA_FLAGS=host_devices.xla_flags(8))
    proc = subprocess.run(
        [sys.executable, "-c", _SCRIPT.format(num=NUM, batch=BATCH),
         str(path)], cwd=REPO, env=env, capture_output=True, text=True,
        check=False)
    self.assertEqual(proc.returncode, 0, proc.stderr[-3000:])
    with np.load(path) as out:
      for name in ("dataset", "generated", "ppl"):
        one, eight = out[f"{name}1"], out[f"{name}8"]
        self.assertLen(one, NUM)
        # The same per-sample programs at per-device batch 8 and 1: equal
        # up to float32 rounding of the batched convolutions.
        scale = np.abs(one).max()
        np.testing.assert_allclose(eight, one, rtol=0, atol=1e-5 * scale,
                                   err_msg=name)
        self.assertGreater(np.abs(np.diff(one, axis=0)).max(), 1e-3 * scale,
                           f"{name}: samples must differ")


if __name__ == "__main__":
  absltest.main()
