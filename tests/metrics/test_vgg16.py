"""VGG16 LPIPS features against a NumPy reference of the same network."""

import pathlib

import jax
import jax.numpy as jnp
import numpy as np
from absl.testing import absltest

from sg3jax.metrics import vgg16


def random_state_dict(seed: int = 0) -> dict[str, np.ndarray]:
  """VGG16 weights in the vgg16.pt names (He-scaled normal, positive LPIPS
  channel weights)."""
  rng = np.random.RandomState(seed)
  state, in_channels, n = {}, 3, 0
  for stage, widths in enumerate(vgg16.STAGES):
    for width in widths:
      n += 1
      state[f"layers.conv{n}.weight"] = (rng.randn(width, in_channels, 3, 3)
                                         * np.sqrt(2 / (9 * in_channels))
                                         ).astype(np.float32)
      state[f"layers.conv{n}.bias"] = rng.randn(width).astype(
          np.float32) * 0.1
      in_channels = width
    state[f"lpips{stage}"] = rng.uniform(0.5, 1.5, widths[-1]).astype(
        np.float32)
  return state


def numpy_lpips_features(state: dict, image: np.ndarray) -> np.ndarray:
  """The LPIPS feature vector of one image `[H, W, 3]` in [0, 255]: ImageNet
  normalization, 3x3 cross-correlations (OIHW weights), ReLU, 2x2 max
  pools, and per stage the unit-normalized channels times
  sqrt(lpips weight / (H W))."""
  x = (image / 255 - np.array([0.485, 0.456, 0.406])) / np.array(
      [0.229, 0.224, 0.225])
  features, n = [], 0
  for stage, widths in enumerate(vgg16.STAGES):
    if stage:
      h, w, c = x.shape
      x = x.reshape(h // 2, 2, w // 2, 2, c).max(axis=(1, 3))
    for _ in widths:
      n += 1
      weight = state[f"layers.conv{n}.weight"].astype(np.float64)
      h, w, _ = x.shape
      padded = np.pad(x, ((1, 1), (1, 1), (0, 0)))
      x = sum(np.einsum("hwi,oi->hwo", padded[dy:dy + h, dx:dx + w],
                        weight[:, :, dy, dx])
              for dy in range(3) for dx in range(3))
      x = np.maximum(x + state[f"layers.conv{n}.bias"], 0)
    norm = np.sqrt(np.sum(x ** 2, axis=-1, keepdims=True))
    scale = np.sqrt(state[f"lpips{stage}"] / (x.shape[0] * x.shape[1]))
    features.append((x / (norm + 1e-10) * scale).reshape(-1))
  return np.concatenate(features)


class VGG16Test(absltest.TestCase):

  def test_lpips_features_match_numpy(self):
    state = random_state_dict()
    path = pathlib.Path(self.create_tempdir().full_path) / "vgg16.npz"
    np.savez(path, **state)
    module, variables = vgg16.load_vgg16(path)
    images = np.random.RandomState(1).uniform(0, 255, (2, 32, 16, 3))
    features = jax.jit(module.apply)(variables, jnp.asarray(images,
                                                            jnp.float32))
    for image, feature in zip(images, np.asarray(features)):
      # float32 convolutions vs float64: 1e-5 of the features' scale.
      expected = numpy_lpips_features(state, image)
      np.testing.assert_allclose(feature, expected,
                                 atol=1e-5 * np.abs(expected).max())
    round_trip = vgg16.state_dict_from_variables(variables)
    self.assertEqual(sorted(round_trip), sorted(state))
    for name, value in state.items():
      np.testing.assert_array_equal(round_trip[name], value)

  def test_bad_inputs_are_named(self):
    state = random_state_dict()
    del state["lpips2"]
    state["layers.conv3.weight"] = state["layers.conv3.weight"][:, :5]
    with self.assertRaisesRegex(
        ValueError, r"layers.conv3.weight: expected \[128, 64, 3, 3\], got "
        r"\[128, 5, 3, 3\]; missing lpips2"):
      vgg16.variables_from_state_dict(state)
    with self.assertRaisesRegex(ValueError, "expected an .npz"):
      vgg16.load_vgg16("vgg16.pt")
    module = vgg16.VGG16()
    with self.assertRaisesRegex(ValueError, "multiples of 16"):
      module.init(jax.random.key(0), jnp.zeros((1, 20, 20, 3)))


if __name__ == "__main__":
  absltest.main()
