"""Dataset metrics end to end: `sg3jax metrics` on a tiny generator, a tiny
image folder and random-weight detectors in the official format; the
dataset-statistics cache; bad input."""

import json
import os
import pathlib
import tempfile
from unittest import mock

import jax
import numpy as np
from absl.testing import absltest
from PIL import Image

from sg3jax import checkpoint
from sg3jax.cli import metrics as metrics_cli
from sg3jax.metrics import fid
from sg3jax.metrics import inception
from sg3jax.metrics import metric_main
from sg3jax.metrics import metric_utils
from tests.analysis import tiny
from tests.metrics import test_inception

NUM_REAL = 4  # = NUM_GEN = batch: one detector compilation for all
NUM_GEN = 4


class DatasetMetricsTest(absltest.TestCase):

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    cls.tmp = tempfile.TemporaryDirectory()
    root = pathlib.Path(cls.tmp.name)
    cls.detectors = root / "detectors"
    cls.detectors.mkdir()
    test_inception.write_detectors(cls.detectors)
    (cls.detectors / "pt_inception-2015-12-05-6726825d.pth").unlink()
    cls.data = root / "data"
    cls.data.mkdir()
    rng = np.random.default_rng(0)
    cls.images = rng.integers(0, 256, (NUM_REAL, 16, 16, 3), dtype=np.uint8)
    for i, image in enumerate(cls.images):
      Image.fromarray(image).save(cls.data / f"{i}.png")
    cls.env = mock.patch.dict(os.environ, {"SG3JAX_CACHE": str(root / "c")})
    cls.env.start()
    # As the CLI loads it (hashable): the metric steps are shared.
    cls.G, cls.variables = checkpoint.load_generator(tiny.checkpoint_dir())
    cls.outdir = root / "out"
    metrics_cli.run([
        "metrics", f"--network={tiny.checkpoint_dir()}",
        "--metrics=fid50k_full,kid50k_full", f"--data={cls.data}",
        f"--detector_dir={cls.detectors}", f"--num={NUM_GEN}", "--batch=4",
        "--seed=1", "--noprogress", f"--outdir={cls.outdir}"])

  @classmethod
  def tearDownClass(cls):
    cls.env.stop()
    cls.tmp.cleanup()
    super().tearDownClass()

  def expected_features(self):
    """Detector features of the dataset and of generated images rendered
    here (the CLI's compiled feature step, shared)."""
    detector, d_vars = inception.load_inception(
        self.detectors / "inception-2015-12-05.pkl")
    features = metric_utils._dataset_step(  # pylint: disable=protected-access
        detector, metric_utils.data_mesh(), "features")
    key = jax.random.key(1)
    z = jax.vmap(lambda i: jax.random.normal(jax.random.fold_in(key, i),
                                             (self.G.z_dim,)))(
                                                 np.arange(NUM_GEN))
    img = jax.jit(self.G.apply)(self.variables, z, None)
    img = np.clip(np.asarray(img) * 127.5 + 128, 0, 255).astype(np.uint8)
    return (np.asarray(features(d_vars, self.images)),
            np.asarray(features(d_vars, img)))

  def test_jsonl_lines(self):
    real, gen = self.expected_features()
    record = json.loads(
        (self.outdir / "metric-fid50k_full.jsonl").read_text())
    self.assertEqual(record["metric"], "fid50k_full")
    self.assertEqual(record["num_gpus"], jax.device_count())
    stats = [fid.FeatureStats(capture_mean_cov=True) for _ in range(2)]
    stats[0].append(gen)
    stats[1].append(real)
    expected = fid.frechet_distance(*stats[0].get_mean_cov(),
                                    *stats[1].get_mean_cov())
    np.testing.assert_allclose(record["results"]["fid50k_full"], expected,
                               rtol=1e-3)
    kid_record = json.loads(
        (self.outdir / "metric-kid50k_full.jsonl").read_text())
    self.assertTrue(np.isfinite(kid_record["results"]["kid50k_full"]))

  def test_dataset_statistics_are_cached(self):
    cached = list((pathlib.Path(os.environ["SG3JAX_CACHE"]) / "gan-metrics")
                  .glob("data-inception-2015-12-05-*.npz"))
    self.assertLen(cached, 2)  # FID (mean/cov) and KID (all features)
    with mock.patch.object(metric_utils, "_dataset_step",
                           side_effect=AssertionError):
      # Cached: no dataset features are computed.
      result = metric_main.calc_metric(
          "fid50k_full", self.G, self.variables, num=NUM_GEN, batch=4,
          seed=1, progress=False, data=str(self.data),
          detector_dir=str(self.detectors))
    record = json.loads(
        (self.outdir / "metric-fid50k_full.jsonl").read_text())
    self.assertAlmostEqual(result["results"]["fid50k_full"],
                           record["results"]["fid50k_full"], places=4)

  def test_bad_input(self):
    network = f"--network={tiny.checkpoint_dir()}"
    cases = [
        (["--metrics=fid50k_full", f"--data={self.data}",
          f"--detector_dir={self.data}"],
         r"(?s)no Inception detector.*api\.ngc\.nvidia\.com.*--detector_dir"),
        (["--metrics=fid50k", f"--data={self.data}", "--num=10",
          f"--detector_dir={self.detectors}"],
         "has 4 images, fewer than the 10 real images fid50k uses"),
        (["--metrics=fid50k_full"], r"need --data"),
        (["--metrics=fid51k", f"--data={self.data}"], "unknown.*fid51k"),
    ]
    for args, message in cases:
      with self.assertRaises(SystemExit) as e:
        metrics_cli.run(["metrics", network, "--noprogress", *args])
      self.assertRegex(str(e.exception.code), message)


if __name__ == "__main__":
  absltest.main()
