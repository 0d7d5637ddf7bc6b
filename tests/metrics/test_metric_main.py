"""Dataset metrics and PPL end to end: `sg3jax metrics` on a tiny
generator, a tiny image folder and random-weight detectors in the official
format (Inception; a narrow VGG16); the dataset-statistics cache; bad
input."""

import json
import os
import pathlib
import tempfile
from unittest import mock

import jax
import numpy as np
from absl.testing import absltest
from PIL import Image

from sg3jax.cli import metrics as metrics_cli
from sg3jax.metrics import fid
from sg3jax.metrics import inception
from sg3jax.metrics import metric_main
from sg3jax.metrics import metric_utils
from sg3jax.metrics import ppl
from sg3jax.metrics import precision_recall
from sg3jax.training import checkpoints
from tests.analysis import tiny
from tests.metrics import detectors as detector_weights
from tests.metrics import test_inception
from tests.metrics import test_vgg16

NUM_REAL = 4  # = NUM_GEN = BATCH: one compilation per step
NUM_GEN = 4
BATCH = 4


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
    test_vgg16.write_vgg16(cls.detectors, detector_weights.vgg16_state_dict(
        **test_vgg16.SLIM))
    cls.data = root / "data"
    cls.data.mkdir()
    rng = np.random.default_rng(0)
    cls.images = rng.integers(0, 256, (NUM_REAL, 16, 16, 3), dtype=np.uint8)
    for i, image in enumerate(cls.images):
      Image.fromarray(image).save(cls.data / f"{i}.png")
    cls.env = mock.patch.dict(os.environ, {"SG3JAX_CACHE": str(root / "c")})
    cls.env.start()
    # As the CLI loads it (hashable): the metric steps are shared.
    cls.G, cls.variables = checkpoints.load_generator(tiny.checkpoint_dir())
    cls.outdir = root / "out"
    metrics_cli.run([
        "metrics", f"--network={tiny.checkpoint_dir()}",
        "--metrics=fid50k_full,kid50k_full,pr50k3_full,ppl2_wend",
        f"--data={cls.data}", f"--detector_dir={cls.detectors}",
        f"--num={NUM_GEN}", f"--batch={BATCH}", "--seed=1", "--noprogress",
        f"--outdir={cls.outdir}"])

  @classmethod
  def tearDownClass(cls):
    cls.env.stop()
    cls.tmp.cleanup()
    super().tearDownClass()

  def record(self, metric: str) -> dict:
    return json.loads((self.outdir / f"metric-{metric}.jsonl").read_text())

  def expected_features(self, detector, d_vars):
    """Detector features of the dataset and of generated images rendered
    here (the CLI's compiled feature step, shared), in CLI-sized batches."""
    features = metric_utils._dataset_step(  # pylint: disable=protected-access
        detector, metric_utils.data_mesh(), "features")
    z = metric_utils.latents(jax.random.key(1), np.arange(NUM_GEN),
                             (self.G.z_dim,))
    img = jax.jit(self.G.apply)(self.variables, z, None)
    img = np.clip(np.asarray(img) * 127.5 + 128, 0, 255).astype(np.uint8)

    def batched(images):
      return np.concatenate([features(d_vars, images[i:i + BATCH])
                             for i in range(0, len(images), BATCH)])
    return batched(self.images), batched(img)

  def test_jsonl_lines(self):
    real, gen = self.expected_features(*inception.load_inception(
        self.detectors / "inception-2015-12-05.pkl"))
    record = self.record("fid50k_full")
    self.assertEqual(record["metric"], "fid50k_full")
    self.assertEqual(record["num_gpus"], jax.device_count())
    stats = [fid.FeatureStats(capture_mean_cov=True) for _ in range(2)]
    stats[0].append(gen)
    stats[1].append(real)
    expected = fid.frechet_distance(*stats[0].get_mean_cov(),
                                    *stats[1].get_mean_cov())
    np.testing.assert_allclose(record["results"]["fid50k_full"], expected,
                               rtol=1e-3)
    kid_record = self.record("kid50k_full")
    self.assertTrue(np.isfinite(kid_record["results"]["kid50k_full"]))

  def test_precision_recall(self):
    vgg, vgg_vars, _ = metric_utils.load_detector("vgg16", self.detectors)
    real, gen = self.expected_features(vgg, vgg_vars)
    self.assertEqual(real.shape, (NUM_REAL, 16))  # the narrow VGG's fc2
    precision, recall = precision_recall.precision_recall(real, gen)
    results = self.record("pr50k3_full")["results"]
    self.assertEqual(results, {"pr50k3_full_precision": precision,
                               "pr50k3_full_recall": recall})

  def test_ppl(self):
    vgg, vgg_vars, _ = metric_utils.load_detector("vgg16", self.detectors)
    z = metric_utils.latents(jax.random.key(1), np.arange(NUM_GEN),
                             (2, self.G.z_dim))
    dist = jax.jit(lambda gv, vv, z: ppl.pair_distances(
        self.G, gv, vgg, vv, z, None))(self.variables, vgg_vars, z)
    # Distances at epsilon 1e-4 carry ~1e-3 float32 rounding (see
    # test_ppl.py); here the sharded step vs a plain jit.
    np.testing.assert_allclose(self.record("ppl2_wend")["results"][
        "ppl2_wend"], ppl.filtered_mean(np.asarray(dist)), rtol=2e-2)

  def test_dataset_statistics_are_cached(self):
    cache = pathlib.Path(os.environ["SG3JAX_CACHE"]) / "gan-metrics"
    cached = list(cache.glob("data-inception-2015-12-05-*.npz"))
    self.assertLen(cached, 2)  # FID (mean/cov) and KID (all features)
    self.assertLen(list(cache.glob("data-vgg16-*.npz")), 1)  # PR
    with mock.patch.object(metric_utils, "_dataset_step",
                           side_effect=AssertionError):
      # Cached: no dataset features are computed.
      result = metric_main.calc_metric(
          "fid50k_full", self.G, self.variables, num=NUM_GEN, batch=BATCH,
          seed=1, progress=False, data=str(self.data),
          detector_dir=str(self.detectors))
    self.assertAlmostEqual(result["results"]["fid50k_full"],
                           self.record("fid50k_full")["results"][
                               "fid50k_full"], places=4)

  def test_bad_input(self):
    network = f"--network={tiny.checkpoint_dir()}"
    cases = [
        (["--metrics=fid50k_full", f"--data={self.data}",
          f"--detector_dir={self.data}"],
         r"(?s)no inception detector.*api\.ngc\.nvidia\.com.*--detector_dir"),
        (["--metrics=ppl2_wend", f"--detector_dir={self.data}"],
         r"(?s)no vgg16 detector.*vgg16\.pkl.*api\.ngc\.nvidia\.com"),
        (["--metrics=pr50k3", f"--data={self.data}", "--num=10",
          f"--detector_dir={self.detectors}"],
         "has 4 images, fewer than the 10 real images pr50k3 uses"),
        (["--metrics=fid50k_full"], r"need --data"),
        (["--metrics=fid51k", f"--data={self.data}"], "unknown.*fid51k"),
    ]
    for args, message in cases:
      with self.assertRaises(SystemExit) as e:
        metrics_cli.run(["metrics", network, "--noprogress", *args])
      self.assertRegex(str(e.exception.code), message)


if __name__ == "__main__":
  absltest.main()
