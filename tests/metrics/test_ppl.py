"""PPL (ppl2_wend): parity with the official compute_ppl on official
generators with the same weights, latents, noise buffers and epsilon.

Fixtures: tests/official_extra/metrics.npz `ppl/*` (see its README): the
official code with the StyleGAN3-T generator of ../shared/official/g_t64
and the StyleGAN2 `resnet` generator of stylegan2.npz, and the VGG16 of
`vgg16/*` (official conv widths, random weights).
"""

import jax
import jax.numpy as jnp
import numpy as np
from absl.testing import absltest
from absl.testing import parameterized

from sg3jax import convert
from sg3jax.metrics import ppl
from sg3jax.metrics import vgg16
from tests import official
from tests.metrics import detectors

# Per-sample distances are |f(w0 + eps dw) - f(w0)|^2 / eps^2 of float32
# LPIPS vectors f. At eps = 1e-2 rounding is negligible: the pipelines
# must agree to the generators' own parity (observed 5e-5). At the
# metric's eps = 1e-4 the difference of two nearly equal vectors loses
# ~1e-3 of its precision to rounding (~1e-7 of the image and features),
# in the official code as here: the official distances themselves move by
# up to 0.35% when only its batch size changes; ours are within 0.5% of
# them (observed), and of the filtered mean within 0.2%.
TOLERANCES = {1e-2: dict(dist=2e-4, ppl=2e-4), 1e-4: dict(dist=2e-2,
                                                          ppl=1e-2)}


def _generator(source: str, noise: dict[str, np.ndarray] | None = None):
  """(module, variables) of a fixture generator, StyleGAN2 noise buffers
  replaced by `noise` (official names)."""
  if source == "g_t64":
    arrays, cases = official.load("g_t64")
    prefix, kwargs = "state/", cases["state"]["init_kwargs"]
    overrides = {"filtered_lrelu_impl": "xla"}
  else:
    arrays, params = official.load_extra("stylegan2")
    prefix, kwargs = f"{source}/state/", params["generators"][source]
    overrides = {}
  state = {k[len(prefix):]: v for k, v in arrays.items()
           if k.startswith(prefix)}
  state.update(noise or {})
  return convert.generator_from_state_dict(state, kwargs, **overrides)


class PPLParityTest(parameterized.TestCase):

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    cls.data, params = official.load_extra("metrics")
    cls.params = params["ppl"]
    cls.vgg, cls.vgg_variables = vgg16.vgg16_from_state_dict(
        detectors.vgg16_state_dict(**params["vgg16"]))

  def distances(self, case: str) -> dict[float, np.ndarray]:
    """{epsilon: our distances of the fixture's samples}, batch by batch
    as the official ran them (the noise buffers change per batch)."""
    p = self.params[case]
    z = np.stack([self.data[f"ppl/{case}/z0"], self.data[f"ppl/{case}/z1"]],
                 axis=1)
    G, _ = _generator(p["generator"])
    fn = jax.jit(lambda gv, vv, z, eps: ppl.pair_distances(
        G, gv, self.vgg, vv, z, None, epsilon=eps))
    out = {eps: [] for eps in self.params["epsilons"]}
    for b in range(p["num_batches"]):
      noise = {name: self.data[f"ppl/{case}/noise{b}/{name}"]
               for name in p["noise_buffers"]}
      _, variables = _generator(p["generator"], noise)
      batch = jnp.asarray(z[b * p["batch_size"]:(b + 1) * p["batch_size"]])
      for eps, dists in out.items():
        dists.append(np.asarray(fn(variables, self.vgg_variables, batch,
                                   jnp.float32(eps))))
    return {eps: np.concatenate(d) for eps, d in out.items()}

  @parameterized.parameters("t64", "sg2_resnet")
  def test_distances_and_ppl(self, case):
    for eps, dist in self.distances(case).items():
      tol = TOLERANCES[eps]
      key = f"ppl/{case}/eps{eps:g}"
      np.testing.assert_allclose(dist, self.data[f"{key}/dist"],
                                 rtol=tol["dist"], err_msg=key)
      np.testing.assert_allclose(ppl.filtered_mean(dist),
                                 self.data[f"{key}/ppl"], rtol=tol["ppl"],
                                 err_msg=key)

  def test_outlier_filter(self):
    # The same float32 distances: the same value, to the last bit.
    self.assertEqual(ppl.filtered_mean(self.data["ppl/filter/dist"]),
                     self.data["ppl/filter/ppl"])

  def test_lpips_input(self):
    img = np.random.default_rng(0).uniform(-1, 1, (2, 512, 512, 1))
    x = np.asarray(ppl.lpips_input(jnp.asarray(img, jnp.float32)))
    # The official: reshape to 2x2 blocks, mean, (x + 1) * 255 / 2, gray
    # repeated to RGB.
    expected = (img.reshape(2, 256, 2, 256, 2, 1).mean(axis=(2, 4)) + 1) * (
        255 / 2)
    np.testing.assert_allclose(x, np.repeat(expected, 3, axis=-1),
                               rtol=1e-6, atol=1e-4)


if __name__ == "__main__":
  absltest.main()
