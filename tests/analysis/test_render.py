"""sg3jax.analysis.render: official latents, input transforms, batching."""

import jax
import numpy as np
from absl.testing import absltest

from sg3jax import analysis
from tests.analysis import tiny


class LatentTest(absltest.TestCase):

  def test_seed_latents_are_official(self):
    z = analysis.seed_latents([3, 7], 8)
    np.testing.assert_array_equal(
        z[1], np.random.RandomState(7).randn(1, 8)[0].astype(np.float32))
    with self.assertRaisesRegex(ValueError, "seeds: expected at least one"):
      analysis.seed_latents([], 8)

  def test_official_samples_draw_class_after_z(self):
    z, c = analysis.official_samples([5], 4, 3)
    rnd = np.random.RandomState(5)
    np.testing.assert_array_equal(z[0], rnd.randn(4).astype(np.float32))
    np.testing.assert_array_equal(c[0], np.eye(3)[rnd.randint(3)])
    _, c = analysis.official_samples([5], 4, 0)
    self.assertEqual(c.shape, (1, 0))

  def test_class_labels(self):
    np.testing.assert_array_equal(analysis.class_labels(3, 2, 1),
                                  [[0, 1, 0], [0, 1, 0]])
    with self.assertRaisesRegex(ValueError, "class: expected 0..2, got 3"):
      analysis.class_labels(3, 1, 3)
    with self.assertRaisesRegex(ValueError, "conditional"):
      analysis.class_labels(3, 1, None)


class TransformTest(absltest.TestCase):

  def test_translation_and_rotation_as_official_metric(self):
    # Official: M[:2, 2] = -t for a translation by t, and
    # M = rotation_matrix(-angle) with rotation_matrix(a) =
    # [[cos a, sin a], [-sin a, cos a]].
    np.testing.assert_allclose(
        analysis.input_transform((0.25, -0.125)),
        [[1, 0, -0.25], [0, 1, 0.125], [0, 0, 1]], atol=1e-7)
    a = 0.3
    np.testing.assert_allclose(
        analysis.input_transform(angle=a),
        [[np.cos(a), -np.sin(a), 0], [np.sin(a), np.cos(a), 0], [0, 0, 1]],
        atol=1e-7)


class RenderTest(absltest.TestCase):

  def test_batches_match_the_generator(self):
    module, variables = tiny.generator()
    z = analysis.seed_latents(list(range(11)), module.z_dim)
    c = analysis.class_labels(0, 11, None)
    ws = analysis.map_latents(variables, z, c, module=module)
    images = analysis.render_ws(module, variables, ws, batch_size=tiny.BATCH)
    expected = jax.jit(module.apply)(variables, z)
    self.assertEqual(images.shape, (11, 16, 16, 3))
    # Same graph, batch 8 vs 11: XLA may reorder float32 sums (~1e-7).
    np.testing.assert_allclose(images, expected, atol=1e-5)
    self.assertGreater(np.abs(images[0] - images[1]).max(), 1e-3)

  def test_seed_image_batches(self):
    module, variables = tiny.generator()
    batches = list(analysis.seed_image_batches(
        module, variables, list(range(4, 14)), batch_size=tiny.BATCH))
    self.assertEqual([b.shape for b in batches],
                     [(8, 16, 16, 3), (2, 16, 16, 3)])
    self.assertEqual(batches[0].dtype, np.uint8)
    z = analysis.seed_latents([12], module.z_dim)
    expected = analysis.to_uint8(jax.jit(module.apply)(variables, z))
    np.testing.assert_allclose(batches[1][:1].astype(int),
                               expected.astype(int), atol=1)

  def test_bad_ws(self):
    module, variables = tiny.generator()
    with self.assertRaisesRegex(ValueError, r"ws: expected \[N >= 1"):
      analysis.render_ws(module, variables, np.zeros((6, 8)))

  def test_to_uint8(self):
    np.testing.assert_array_equal(
        analysis.to_uint8(np.array([-2.0, -1.0, 0.0, 1.0])), [0, 0, 128, 255])


if __name__ == "__main__":
  absltest.main()
