"""VGG16 detector: parity with the PyTorch network it describes (official
conv widths, random weights), the weight files, and bad input.

Fixtures: tests/official_extra/metrics.npz `vgg16/*` (see its README):
torchvision's VGG16 and Zhang et al.'s LPIPS with the seeded random
weights of tests/metrics/detectors.py under the official tensor names.
"""

import functools
import pathlib
import tempfile

import jax
import numpy as np
from absl.testing import absltest

from sg3jax.metrics import resize
from sg3jax.metrics import vgg16
from tests import official
from tests.convert import torch_writer
from tests.metrics import detectors
from tests.metrics.test_inception import assert_scaled_close

# fp32 through 13 convolutions (+3 fc layers) in XLA's and PyTorch's
# summation orders: each output within 1e-5 of its own scale.
SCALE_TOL = 1e-5
# A narrow network for the weight-file and end-to-end tests (every conv
# width / 8, small fc layers): 2% of the official FLOPs.
SLIM = dict(stages=tuple(tuple(w // 8 for w in s)
                         for s in detectors.VGG16_STAGES),
            num_features=16, num_classes=10)


def random_state_dict(seed: int = detectors.SEED,
                      lpips_scale: float = 1.0) -> dict[str, np.ndarray]:
  """Random official VGG16 tensors: the official conv widths and LPIPS
  weights (>= 0, times `lpips_scale`), small fc layers (16 features, 10
  classes)."""
  state = {name: detectors.random_weight(name, shape, seed)
           for name, shape in detectors.vgg16_shapes(num_features=16,
                                                     num_classes=10)}
  return {name: value * lpips_scale if name.startswith("lpips") else value
          for name, value in state.items()}


def write_vgg16(directory: pathlib.Path, state: dict[str, np.ndarray],
                name: str = "vgg16.pkl") -> pathlib.Path:
  """`state` as the official detector pickle (or, for a `.pt` name, the
  bare TorchScript archive of StyleGAN2-ADA-PyTorch)."""
  archive = torch_writer.torchscript_archive(state,
                                             root_class="__torch__.VGG16")
  path = directory / name
  path.write_bytes(archive if name.endswith(".pt") else
                   torch_writer.detector_pickle(archive))
  return path


class VGG16ParityTest(absltest.TestCase):

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    cls.data, params = official.load_extra("metrics")
    cls.module, cls.variables = vgg16.vgg16_from_state_dict(
        detectors.vgg16_state_dict(**params["vgg16"]))

    def outputs(variables, images):
      return (cls.module.apply(variables, images, return_features=True),
              cls.module.apply(variables, images))

    cls.outputs = staticmethod(jax.jit(outputs))
    cls.lpips = staticmethod(jax.jit(
        lambda v, x: cls.module.apply(v, x, return_lpips=True)))

  def test_module_has_the_official_widths(self):
    self.assertEqual(self.module.stages, vgg16.STAGES)
    self.assertEqual(self.variables["params"]["fc1"]["kernel"].shape,
                     (512 * 7 * 7, 256))

  def test_resize(self):
    x = np.asarray(resize.tf_bilinear(self.data["vgg16/images"], 224))
    # float32 sampling of values in [0, 255].
    np.testing.assert_allclose(x[:, :12, :12],
                               self.data["vgg16/resized_corner"],
                               rtol=0, atol=1e-4)
    np.testing.assert_allclose(x[:, -12:, -12:],
                               self.data["vgg16/resized_far_corner"],
                               rtol=0, atol=1e-4)

  def test_features_and_probabilities(self):
    features, probs = self.outputs(self.variables, self.data["vgg16/images"])
    assert_scaled_close(self, features, self.data["vgg16/features"],
                        SCALE_TOL)
    assert_scaled_close(self, probs, self.data["vgg16/probs"], SCALE_TOL)

  def test_lpips_vectors_and_distances(self):
    vectors = np.asarray(self.lpips(self.variables,
                                    self.data["vgg16/lpips_images"]))
    assert_scaled_close(self, vectors, self.data["vgg16/lpips"], SCALE_TOL)
    # The squared distance of the vectors is Zhang et al.'s LPIPS.
    distance = np.sum(np.square(vectors[0::2] - vectors[1::2]), axis=1)
    np.testing.assert_allclose(distance, self.data["vgg16/lpips_distance"],
                               rtol=1e-5)


class WeightFilesTest(absltest.TestCase):

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    cls.tmp = tempfile.TemporaryDirectory()
    cls.dir = pathlib.Path(cls.tmp.name)
    cls.state = detectors.vgg16_state_dict(**SLIM)

  @classmethod
  def tearDownClass(cls):
    cls.tmp.cleanup()
    super().tearDownClass()

  def test_every_format_gives_the_same_network(self):
    npz = self.dir / "vgg16.npz"
    np.savez(npz, **self.state)
    loaded = [vgg16.load_vgg16(write_vgg16(self.dir, self.state)),
              vgg16.load_vgg16(write_vgg16(self.dir, self.state, "vgg16.pt")),
              vgg16.load_vgg16(npz)]
    for module, variables in loaded:
      self.assertEqual(module, vgg16.VGG16(**SLIM))
      jax.tree.map(np.testing.assert_array_equal, variables, loaded[0][1])
    module, variables = loaded[0]
    images = np.random.default_rng(0).integers(0, 256, (2, 20, 20, 3),
                                               dtype=np.uint8)
    def shape(**kwargs):
      return jax.eval_shape(functools.partial(module.apply, **kwargs),
                            variables, images).shape
    self.assertEqual(shape(return_features=True), (2, 16))
    self.assertEqual(shape(), (2, 10))
    # LPIPS lengths: sum over stages of H W C (20 -> 10 -> 5 -> 2 -> 1).
    self.assertEqual(shape(return_lpips=True),
                     (2, 400 * 8 + 100 * 16 + 25 * 32 + 4 * 64 + 64))

  def test_lpips_weights_of_any_shape_with_c_values(self):
    state = dict(self.state, lpips1=self.state["lpips1"].reshape(-1))
    _, variables = vgg16.vgg16_from_state_dict(state)
    np.testing.assert_array_equal(variables["params"]["lpips1"],
                                  state["lpips1"])

  def test_missing_file_says_where_to_get_it(self):
    with self.assertRaisesRegex(
        FileNotFoundError, r"(?s)nothere\.pkl.*api\.ngc\.nvidia\.com.*"
        r"vgg16\.pkl.*--detector_dir.*SG3JAX_DETECTORS"):
      vgg16.load_vgg16(self.dir / "nothere.pkl")

  def test_bad_tensors_are_listed(self):
    state = dict(self.state)
    del state["layers.fc2.bias"]
    state["layers.conv3.weight"] = state["layers.conv3.weight"][:, :5]
    state["lpips2"] = state["lpips2"][:3]
    state["layers.extra"] = np.zeros(2, np.float32)
    path = write_vgg16(self.dir, state, "bad.pkl")
    with self.assertRaisesRegex(
        ValueError, r"bad\.pkl: not an official VGG16 detector: "
        r"layers\.conv3\.weight: expected \[16, 8, 3, 3\], got "
        r"\[16, 5, 3, 3\]; lpips2: expected \[32, 1, 1\].*got \[3, 1, 1\]; "
        r"missing layers\.fc2\.bias; unknown tensors \['layers\.extra'\]"):
      vgg16.load_vgg16(path)

  def test_truncated_file(self):
    path = write_vgg16(self.dir, self.state, "short.pkl")
    path.write_bytes(path.read_bytes()[:1000])
    with self.assertRaisesRegex(ValueError, r"short\.pkl"):
      vgg16.load_vgg16(path)

  def test_bad_images(self):
    module, variables = vgg16.vgg16_from_state_dict(self.state)
    cases = [
        (np.zeros((1, 32, 32, 1)), {}, r"\[N, H, W, 3\]"),
        (np.zeros((1, 32, 32, 3)), dict(resize_images=False),
         r"expected 224 x 224 .*resize_images=False.*\(1, 32, 32, 3\)"),
        (np.zeros((1, 8, 32, 3)), dict(return_lpips=True), r"H, W >= 16"),
        (np.zeros((1, 32, 32, 3)),
         dict(return_features=True, return_lpips=True), "got both"),
    ]
    for images, kwargs, message in cases:
      with self.assertRaisesRegex(ValueError, message):
        module.apply(variables, images, **kwargs)


if __name__ == "__main__":
  absltest.main()
