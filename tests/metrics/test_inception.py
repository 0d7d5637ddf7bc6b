"""Inception-v3 detector: parity with pytorch-fid's network fed the official
preprocessing, both weight sources, and bad weight files.

Fixtures: tests/official_extra/metrics.npz `inception/*` (see its README):
pytorch-fid's `fid_inception_v3` with the seeded random weights of
tests/metrics/detectors.py, one image at 256² and one at 299².
"""

import pathlib
import tempfile

import jax
import numpy as np
from absl.testing import absltest

from sg3jax.convert import UnsafePickleError
from sg3jax.metrics import inception
from tests import official
from tests.convert import torch_writer
from tests.metrics import detectors

# fp32 through ~100 layers, the 299-pixel resampling and XLA's convolution
# algorithms: the bound is 1e-4 of the output's scale.
SCALE_TOL = 1e-4


def write_detectors(directory: pathlib.Path) -> tuple[pathlib.Path,
                                                      pathlib.Path]:
  """(official detector .pkl, pytorch-fid .pth) of the fixture weights."""
  _, params = official.load_extra("metrics")
  fid = detectors.fid_state_dict(params["inception_state_dict"])
  detector = directory / "inception-2015-12-05.pkl"
  detector.write_bytes(torch_writer.detector_pickle(
      torch_writer.torchscript_archive(detectors.detector_state_dict(fid))))
  pth = directory / "pt_inception-2015-12-05-6726825d.pth"
  pth.write_bytes(torch_writer.torch_save_legacy(fid))
  return detector, pth


def assert_scaled_close(test, actual, expected, tol=SCALE_TOL):
  scale = float(np.max(np.abs(expected)))
  err = float(np.max(np.abs(np.asarray(actual) - expected)))
  test.assertLessEqual(err, tol * scale, f"max error {err}, scale {scale}")


class InceptionParityTest(absltest.TestCase):

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    cls.tmp = tempfile.TemporaryDirectory()
    cls.detector, cls.pth = write_detectors(pathlib.Path(cls.tmp.name))
    cls.module, cls.variables = inception.load_inception(cls.detector)
    cls.data, _ = official.load_extra("metrics")

    def run(variables, images, no_output_bias):
      probs, state = cls.module.apply(
          variables, images, no_output_bias=no_output_bias,
          mutable=["intermediates"])
      return state["intermediates"]["features"][0], probs

    cls.forward = staticmethod(jax.jit(run, static_argnums=2))

  @classmethod
  def tearDownClass(cls):
    cls.tmp.cleanup()
    super().tearDownClass()

  def test_both_sources_give_the_same_variables(self):
    _, from_pth = inception.load_inception(self.pth)
    jax.tree.map(np.testing.assert_array_equal, from_pth, self.variables)

  def test_resize(self):
    for size in (256, 299):
      x = np.asarray(inception.resize_official(
          self.data[f"inception/{size}/images"]))
      np.testing.assert_allclose(
          x[:, :12, :12], self.data[f"inception/{size}/resized_corner"],
          rtol=0, atol=1e-6)
      np.testing.assert_allclose(
          x[:, -12:, -12:], self.data[f"inception/{size}/resized_far_corner"],
          rtol=0, atol=1e-6)

  def test_features_and_softmax_256(self):
    features, probs = self.forward(self.variables,
                               self.data["inception/256/images"], False)
    assert_scaled_close(self, features, self.data["inception/256/features"])
    assert_scaled_close(self, probs, self.data["inception/256/probs"])

  def test_features_and_softmax_without_bias_299(self):
    features, probs = self.forward(self.variables,
                               self.data["inception/299/images"], True)
    assert_scaled_close(self, features, self.data["inception/299/features"])
    assert_scaled_close(self, probs, self.data["inception/299/probs_no_bias"])


class BadWeightsTest(absltest.TestCase):

  def setUp(self):
    super().setUp()
    self.dir = pathlib.Path(self.create_tempdir().full_path)

  def test_missing_file_says_where_to_get_it(self):
    with self.assertRaisesRegex(FileNotFoundError,
                                r"(?s)nothere\.pkl.*api\.ngc\.nvidia\.com.*"
                                r"--detector_dir.*SG3JAX_DETECTORS"):
      inception.load_inception(self.dir / "nothere.pkl")

  def test_truncated_detector(self):
    detector, _ = write_detectors(self.dir)
    data = detector.read_bytes()
    detector.write_bytes(data[:len(data) // 2])
    with self.assertRaisesRegex(ValueError, "inception-2015-12-05.pkl"):
      inception.load_inception(detector)

  def test_missing_and_unknown_keys_are_listed(self):
    _, params = official.load_extra("metrics")
    fid = detectors.fid_state_dict(params["inception_state_dict"])
    fid["Mixed_6b.extra.weight"] = fid.pop("Mixed_6b.branch1x1.conv.weight")
    path = self.dir / "bad.pth"
    path.write_bytes(torch_writer.torch_save_zip(fid))
    with self.assertRaisesRegex(
        ValueError, r"(?s)bad\.pth.*missing Mixed_6b\.branch1x1\.conv\.weight"
        r".*unknown keys \['Mixed_6b\.extra\.weight'\]"):
      inception.load_inception(path)

  def test_wrong_shape(self):
    _, params = official.load_extra("metrics")
    fid = detectors.fid_state_dict(params["inception_state_dict"])
    fid["fc.bias"] = fid["fc.bias"][:10]
    path = self.dir / "short.pth"
    path.write_bytes(torch_writer.torch_save_zip(fid))
    with self.assertRaisesRegex(ValueError,
                                r"fc\.bias: expected shape \(1008,\)"):
      inception.load_inception(path)

  def test_pickle_without_weights(self):
    # A pickle that would call os.system: read as opcodes, never run.
    path = self.dir / "evil.pkl"
    path.write_bytes(b"\x80\x02cos\nsystem\nX\x04\x00\x00\x00trueR.")
    with self.assertRaisesRegex(ValueError, r"evil\.pkl.*found 0"):
      inception.load_inception(path)

  def test_unsafe_global_in_archive_is_refused(self):
    path = self.dir / "evil.pt"
    path.write_bytes(torch_writer.torchscript_archive(
        {"w": np.zeros(2)}, root_class="subprocess.Popen"))
    with self.assertRaisesRegex(UnsafePickleError,
                                r"evil\.pt.*Popen is not allowed"):
      inception.load_inception(path)

  def test_bad_images(self):
    with self.assertRaisesRegex(ValueError, r"\[N, H, W, 3\]"):
      inception.InceptionV3().init(jax.random.key(0), np.zeros((1, 8, 8, 1)))


if __name__ == "__main__":
  absltest.main()
