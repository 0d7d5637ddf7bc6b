"""The projector's pieces: the official schedule, the noise penalty, area
downsampling, and StyleGAN2 projection with noise maps, batched."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
from absl.testing import absltest

from sg3jax import analysis
from sg3jax import projector
from sg3jax.metrics import vgg16
from tests.metrics.test_vgg16 import random_state_dict
from tests.networks import test_stylegan2_generator


def numpy_noise_penalty(v: np.ndarray) -> float:
  """The official regularizer of one map `[H, W]`, in NumPy."""
  total = 0.0
  while True:
    total += np.mean(v * np.roll(v, 1, axis=1)) ** 2
    total += np.mean(v * np.roll(v, 1, axis=0)) ** 2
    if v.shape[0] <= 8:
      return total
    h, w = v.shape
    v = v.reshape(h // 2, 2, w // 2, 2).mean(axis=(1, 3))


class PiecesTest(absltest.TestCase):

  def test_schedule_is_official(self):
    schedule = projector.Schedule(num_steps=100)
    # Ramp-up over 5 steps, flat, cosine ramp-down over the last 25.
    self.assertEqual(schedule.learning_rate(0), 0.0)
    self.assertAlmostEqual(schedule.learning_rate(2), 0.1 * 2 / 5)
    self.assertAlmostEqual(schedule.learning_rate(50), 0.1)
    self.assertAlmostEqual(schedule.learning_rate(90),
                           0.1 * (0.5 - 0.5 * np.cos(0.4 * np.pi)))
    self.assertAlmostEqual(schedule.w_noise_factor(0), 0.05)
    self.assertAlmostEqual(schedule.w_noise_factor(30), 0.05 * 0.6 ** 2)
    self.assertEqual(schedule.w_noise_factor(80), 0.0)

  def test_noise_penalty_matches_numpy(self):
    rng = np.random.RandomState(0)
    maps = {("a",): rng.randn(32, 32), ("b",): rng.randn(8, 8)}
    expected = sum(numpy_noise_penalty(v) for v in maps.values())
    got = projector.noise_regularization(
        {k: jnp.asarray(v, jnp.float32) for k, v in maps.items()})
    np.testing.assert_allclose(got, expected, rtol=1e-5)

  def test_area_downsample(self):
    x = np.random.RandomState(1).rand(2, 8, 8, 3).astype(np.float32)
    np.testing.assert_allclose(
        projector.area_downsample(x, 4),
        (x[:, ::2, ::2] + x[:, 1::2, ::2] + x[:, ::2, 1::2]
         + x[:, 1::2, 1::2]) / 4, rtol=1e-6)
    with self.assertRaisesRegex(ValueError, "multiples of 3"):
      projector.area_downsample(x, 3)


class StyleGAN2ProjectionTest(absltest.TestCase):

  def test_noise_maps_are_optimised_and_targets_independent(self):
    # The official "resnet" fixture: 16x16, noise strengths non-zero.
    module, variables, _, _ = test_stylegan2_generator._converted("resnet")
    vgg = vgg16.VGG16()
    vgg_variables = vgg16.vgg16_from_state_dict(random_state_dict())[1]
    ws = analysis.map_latents(
        variables, analysis.seed_latents([1, 2], module.z_dim),
        np.zeros((2, 0), np.float32), module=module)
    targets = analysis.to_uint8(jax.jit(functools.partial(
        module.apply, method=module.synthesize))(variables, ws))
    schedule = projector.Schedule(num_steps=4, w_avg_samples=100)
    both = projector.project(module, variables, targets, vgg, vgg_variables,
                             schedule=schedule)
    # Target 0 again, beside another second target (same shapes: one
    # compilation): its run must not depend on its neighbour.
    other = projector.project(module, variables, np.stack([targets[0],
                                                          targets[1, ::-1]]),
                              vgg, vgg_variables, schedule=schedule)
    self.assertLen(both.noise, 5)  # b4.conv1, b8.conv0/1, b16.conv0/1
    for path, maps in both.noise.items():
      self.assertEqual(path[-1], "noise_const")
      self.assertEqual(maps.shape[0], 2)
      np.testing.assert_allclose(maps.mean(axis=(1, 2)), 0, atol=1e-5)
      np.testing.assert_allclose(np.mean(maps ** 2, axis=(1, 2)), 1,
                                 rtol=1e-5)
      np.testing.assert_array_equal(maps[0], other.noise[path][0])
      self.assertFalse(np.array_equal(maps[1], other.noise[path][1]))
    np.testing.assert_array_equal(both.w_steps[:, 0], other.w_steps[:, 0])
    self.assertGreater(np.abs(both.w_steps[-1] - both.w_steps[0]).max(), 0)
    renders = both.images(module, variables)
    self.assertEqual(renders.shape, targets.shape)


if __name__ == "__main__":
  absltest.main()
