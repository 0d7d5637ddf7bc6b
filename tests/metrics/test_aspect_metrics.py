"""FID and KID of a non-square (16x32) generator against a 16x32
dataset, end to end through `calc_metric` with the fixture Inception
weights: the dataset and generator steps take H x W images and the
detector resizes them to its square input. (IS reads the same detector
on the same generator batches, and needs >= 10 samples.)"""

import pathlib
import tempfile

import jax
import numpy as np
from absl.testing import absltest
from PIL import Image

from sg3jax.data import demo
from sg3jax.metrics import fid
from sg3jax.metrics import inception
from sg3jax.metrics import metric_main
from sg3jax.metrics import metric_utils
from tests.metrics import test_inception
from tests.metrics.test_equivariance_aspect import _pair

NUM = 4


class NonSquareDatasetMetricsTest(absltest.TestCase):

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    cls.tmp = tempfile.TemporaryDirectory()
    root = pathlib.Path(cls.tmp.name)
    cls.detector, _ = test_inception.write_detectors(root)
    cls.data = root / "data"
    cls.data.mkdir()
    cls.images = demo.demo_images((16, 32), num_images=NUM)[0]
    for i, image in enumerate(cls.images):
      Image.fromarray(image).save(cls.data / f"{i}.png")
    _, _, cls.G, cls.variables = _pair("t")
    cls.results = {
        metric: metric_main.calc_metric(
            metric, cls.G, cls.variables, num=NUM, batch=NUM, seed=1,
            data=str(cls.data), detector_dir=str(root), cache=False,
            progress=False)["results"][metric]
        for metric in ("fid50k_full", "kid50k_full")}

  @classmethod
  def tearDownClass(cls):
    cls.tmp.cleanup()
    super().tearDownClass()

  def test_fid_of_the_detector_features(self):
    # As tests/metrics/test_metric_main.py: the features of the 16x32
    # dataset and of 16x32 renders of the same latents, here.
    detector, d_vars = inception.load_inception(self.detector)
    features = metric_utils._dataset_step(  # pylint: disable=protected-access
        detector, metric_utils.data_mesh(), "features")
    z = metric_utils.latents(jax.random.key(1), np.arange(NUM),
                             (self.G.z_dim,))
    img = jax.jit(self.G.apply)(self.variables, z, None)
    self.assertEqual(img.shape, (NUM, 16, 32, 3))
    img = np.clip(np.asarray(img) * 127.5 + 128, 0, 255).astype(np.uint8)
    stats = [fid.FeatureStats(capture_mean_cov=True) for _ in range(2)]
    stats[0].append(np.asarray(features(d_vars, img)))
    stats[1].append(np.asarray(features(d_vars, self.images)))
    expected = fid.frechet_distance(*stats[0].get_mean_cov(),
                                    *stats[1].get_mean_cov())
    np.testing.assert_allclose(self.results["fid50k_full"], expected,
                               rtol=1e-3)

  def test_kid_is_finite(self):
    self.assertTrue(np.isfinite(self.results["kid50k_full"]))


if __name__ == "__main__":
  absltest.main()
