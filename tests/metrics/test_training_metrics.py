"""`config.metrics` in training: computed at every snapshot into the run
directory's metric-<name>.jsonl, and checked before training starts; with
two processes, over both processes' devices, giving what one process
gives."""

import json
import os
import pathlib
import subprocess
import sys

import numpy as np
import portpicker
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


_REPO = pathlib.Path(__file__).resolve().parents[2]
# The metrics of a run directory's G_ema, computed by one process over its
# 4 CPU devices: {result name: value} as JSON on stdout.
_ONE_PROCESS_SCRIPT = """
import json, sys
import jax
jax.config.update("jax_num_cpu_devices", 4)
from sg3jax.training import checkpoints
from sg3jax.metrics import metric_main
run_dir, names, num, seed, data, detector_dir = sys.argv[1:]
G, variables = checkpoints.load_generator(run_dir)
results = {}
for name in names.split(","):
  results.update(metric_main.calc_metric(
      name, G, variables, num=int(num), seed=int(seed), progress=False,
      data=data, detector_dir=detector_dir)["results"])
print(json.dumps(results))
"""


class TwoProcessMetricsTest(absltest.TestCase):
  """A one-iteration run on two processes of 2 CPU devices each
  (jax.distributed on localhost) with metrics at its snapshot."""

  def test_two_processes_give_what_one_gives(self):
    root = pathlib.Path(self.create_tempdir().full_path)
    detector_dir = root / "detectors"
    detector_dir.mkdir()
    test_vgg16.write_vgg16(detector_dir, detectors.vgg16_state_dict(
        **test_vgg16.SLIM))
    cfg = tiny.tiny_config()
    names = ("pr50k3", "ppl2_wend", "eqt50k_int")  # dataset, PPL, EQ steps
    num = 8
    workdir = root / "run"
    port = portpicker.pick_unused_port()
    # Both processes write the (shared) dataset statistics cache. No
    # persistent compilation cache: one process loading programs that the
    # other compiles would outlast gloo's wait (see tests/training/
    # test_loop.py).
    env = {k: v for k, v in os.environ.items()
           if k != "JAX_COMPILATION_CACHE_DIR"}
    env.update(PYTHONPATH=str(_REPO), SG3JAX_CACHE=str(root / "cache"))
    procs = [subprocess.Popen(
        [sys.executable, "-m", "sg3jax.train",
         "--config=tests/training/tiny.py", f"--workdir={workdir}",
         "--config.batch_size=16", "--config.total_kimg=0.016",
         f"--config.metrics={','.join(names)}",
         f"--config.metrics_num={num}",
         f"--config.detector_dir={detector_dir}",
         f"--coordinator_address=127.0.0.1:{port}", "--num_processes=2",
         f"--process_id={i}", "--cpu_devices=2"],
        cwd=_REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True) for i in range(2)]
    for proc in procs:
      _, err = proc.communicate()
      self.assertEqual(proc.returncode, 0, err[-3000:])
    # The real images' statistics: one file, no temporary left.
    (cached,) = (root / "cache" / "gan-metrics").iterdir()
    self.assertNotIn(".tmp", cached.name)

    one = subprocess.run(
        [sys.executable, "-c", _ONE_PROCESS_SCRIPT, str(workdir),
         ",".join(names), str(num), str(cfg.seed), cfg.data,
         str(detector_dir)], cwd=_REPO,
        env=dict(env, SG3JAX_CACHE=str(root / "cache_one")),
        capture_output=True, text=True, check=False)
    self.assertEqual(one.returncode, 0, one.stderr[-3000:])
    expected = json.loads(one.stdout.splitlines()[-1])
    for name in names:
      # One snapshot (after the only iteration), written once.
      (line,) = [json.loads(line) for line in
                 (workdir / f"metric-{name}.jsonl").read_text().splitlines()]
      self.assertEqual(line["snapshot_pkl"], "checkpoints/1")
      self.assertEqual(line["num_gpus"], 4)
      for key, value in line["results"].items():
        # The same per-device programs on the same samples, whichever
        # process runs each device.
        np.testing.assert_allclose(value, expected[key], rtol=1e-6,
                                   err_msg=key)
    self.assertEqual(
        sorted(key for name in names for key in
               metric_main.result_names(name)), sorted(expected))


if __name__ == "__main__":
  absltest.main()
