"""sg3jax.analysis.eqmaps: error maps through the input transform."""

import numpy as np
from absl.testing import absltest
from absl.testing import parameterized

from sg3jax import analysis
from tests.analysis import tiny


def _ws(seeds=(0, 1)):
  module, variables = tiny.generator()
  z = analysis.seed_latents(list(seeds), module.z_dim)
  c = analysis.class_labels(0, len(seeds), None)
  return analysis.map_latents(variables, z, c, module=module)


class EquivarianceMapsTest(parameterized.TestCase):

  @parameterized.parameters(("int", (0.0, 0.0)), ("frac", (0.0, 0.0)))
  def test_identity_translation_gives_zero_error(self, kind, value):
    module, variables = tiny.generator()
    maps = analysis.equivariance_maps(module, variables, _ws(), kind, value)
    np.testing.assert_array_equal(maps["transformed"], maps["original"])
    # int: exact; frac: Lanczos taps at integer offsets are sinc(k) ~ 1e-8.
    np.testing.assert_allclose(np.nan_to_num(maps["error"]), 0, atol=1e-6)
    self.assertGreater(float(maps["mask"].sum()), 0)

  def test_identity_rotation_gives_near_zero_error(self):
    module, variables = tiny.generator()
    maps = analysis.equivariance_maps(module, variables, _ws(), "rot", 0.0)
    # Rotation by 0 (4x up, resample) vs pseudo-rotation by 0 (same band
    # limit, no resampling) differ only by float32 rounding.
    np.testing.assert_allclose(np.nan_to_num(maps["error"]), 0, atol=1e-4)

  def test_integer_translation_matches_numpy(self):
    module, variables = tiny.generator()
    ws = _ws()
    t = (2 / 16, -1 / 16)  # 2 px right, 1 px up
    maps = analysis.equivariance_maps(module, variables, ws, "int", t)
    original = analysis.render_ws(module, variables, ws,
                                  batch_size=tiny.BATCH)
    moved = analysis.render_ws(module, variables, ws,
                               transform=analysis.input_transform(t),
                               batch_size=tiny.BATCH)
    np.testing.assert_allclose(maps["original"], original, atol=1e-6)
    np.testing.assert_allclose(maps["transformed"], moved, atol=1e-6)
    # Moving back by (-2, +1) px: back[y, x] = moved[y - 1, x + 2], valid
    # for y >= 1 and x < 14.
    back = np.zeros_like(moved)
    back[:, 1:, :14] = moved[:, :15, 2:]
    mask = np.zeros(moved.shape[:3])
    mask[:, 1:, :14] = 1
    np.testing.assert_allclose(maps["back"], back, atol=1e-6)
    np.testing.assert_array_equal(maps["mask"], mask)
    error = np.where(mask > 0, np.abs(original - back).mean(axis=3), np.nan)
    np.testing.assert_allclose(maps["error"], error, atol=1e-6)
    # A random generator is not exactly equivariant.
    self.assertGreater(np.nanmax(maps["error"]), 1e-4)

  def test_official_psnr_is_the_metric(self):
    module, variables = tiny.generator()
    ws = _ws()
    t = (2 / 16, -1 / 16)
    original = analysis.render_ws(module, variables, ws,
                                  batch_size=tiny.BATCH)
    moved = analysis.render_ws(module, variables, ws,
                               transform=analysis.input_transform(t),
                               batch_size=tiny.BATCH)
    # The official EQ-T compares the original moved forward (2 px right,
    # 1 px up: ref[y, x] = original[y + 1, x - 2]) with the moved render.
    ref = np.zeros_like(original)
    ref[:, :15, 2:] = original[:, 1:, :14]
    mask = np.zeros_like(original)
    mask[:, :15, 2:] = 1
    mse = ((ref - moved) ** 2 * mask).sum((1, 2, 3)) / mask.sum((1, 2, 3))
    np.testing.assert_allclose(
        analysis.official_psnr(module, variables, ws, "int", t),
        20 * np.log10(2) - 10 * np.log10(mse), rtol=1e-4)

  def test_bad_arguments(self):
    module, variables = tiny.generator()
    with self.assertRaisesRegex(ValueError, "kind: expected one of"):
      analysis.equivariance_maps(module, variables, _ws(), "shear", 0.0)
    with self.assertRaisesRegex(ValueError, r"value: expected shape \(\) "
                                "for kind 'rot', got"):
      analysis.equivariance_maps(module, variables, _ws(), "rot", (1.0, 2.0))
    with self.assertRaisesRegex(ValueError, r"ws: expected \[N, num_ws"):
      analysis.equivariance_maps(module, variables, np.zeros((2, 8)), "int",
                                 (0.0, 0.0))


if __name__ == "__main__":
  absltest.main()
