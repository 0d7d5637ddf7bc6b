"""`config.metrics` in training: computed at every snapshot into the run
directory's metric-<name>.jsonl, and checked before training starts."""

import json
import pathlib

import numpy as np
from absl.testing import absltest

from sg3jax.metrics import metric_main
from sg3jax.training import checkpoints
from sg3jax.training import loop
from tests.metrics import detectors
from tests.metrics import test_vgg16
from tests.training import tiny


class SnapshotMetricsTest(absltest.TestCase):

  def test_metrics_at_every_snapshot(self):
    detector_dir = pathlib.Path(self.create_tempdir().full_path)
    test_vgg16.write_vgg16(detector_dir, detectors.vgg16_state_dict(
        **test_vgg16.SLIM))
    cfg = tiny.tiny_config()
    cfg.total_kimg = 0.016  # two iterations, a snapshot after each
    cfg.optim.D_reg_interval = 1  # (one step program)
    cfg.metrics = "pr50k3, ppl2_wend"
    cfg.metrics_num = 8
    cfg.detector_dir = str(detector_dir)
    workdir = pathlib.Path(self.create_tempdir().full_path)
    loop.train(cfg, workdir)

    G, variables = checkpoints.load_generator(workdir)  # the last G_ema
    for name in ("pr50k3", "ppl2_wend"):
      lines = [json.loads(line) for line in
               (workdir / f"metric-{name}.jsonl").read_text().splitlines()]
      self.assertEqual([r["snapshot_pkl"] for r in lines],
                       ["checkpoints/1", "checkpoints/2"])
      self.assertEqual({r["metric"] for r in lines}, {name})
      expected = metric_main.calc_metric(
          name, G, variables, num=8, seed=cfg.seed, progress=False,
          data=cfg.data, detector_dir=str(detector_dir))["results"]
      self.assertEqual(set(lines[-1]["results"]), set(expected))
      for key, value in expected.items():
        # The same program on the same samples (ppl: see test_ppl.py for
        # its float32 sensitivity).
        np.testing.assert_allclose(lines[-1]["results"][key], value,
                                   rtol=1e-5, err_msg=key)

  def test_bad_metrics_stop_before_training(self):
    cfg = tiny.tiny_config()
    workdir = pathlib.Path(self.create_tempdir().full_path) / "run"
    cfg.metrics = "fid50k_full,fid51k"
    with self.assertRaisesRegex(ValueError,
                                r"config\.metrics: unknown \['fid51k'\]"):
      loop.train(cfg, workdir)
    cfg.metrics = "fid50k_full"
    cfg.detector_dir = self.create_tempdir().full_path
    with self.assertRaisesRegex(FileNotFoundError,
                                "no inception detector.*api.ngc.nvidia.com"):
      loop.train(cfg, workdir)
    self.assertFalse(workdir.exists())


if __name__ == "__main__":
  absltest.main()
