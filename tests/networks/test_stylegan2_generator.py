"""StyleGAN2 generator: parity with the official numbers, noise, conversion.

Fixtures: tests/official_extra/stylegan2 (three small generators, one per
synthesis architecture; "skip" is conditional, "resnet" clamps).
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np
from absl.testing import absltest
from absl.testing import parameterized

from sg3jax import convert
from sg3jax import networks
from sg3jax.metrics import equivariance
from sg3jax.training import checkpoints
from tests import official

ARCHITECTURES = ("skip", "resnet", "orig")
# float32 against the official float32 CPU run: observed <= 1.1e-6 of the
# image scale (skip), 5e-7 of ws.
TOL = 1e-5


@functools.cache
def _converted(name: str):
  arrays, params = official.load_extra("stylegan2")
  prefix = f"{name}/state/"
  state = {k[len(prefix):]: v for k, v in arrays.items()
           if k.startswith(prefix)}
  module, variables = convert.generator_from_state_dict(
      state, params["generators"][name])
  synthesize = jax.jit(functools.partial(
      module.apply, method=module.synthesize, capture_intermediates=True),
                       static_argnames="noise_mode")
  return module, variables, arrays, synthesize


class StyleGAN2GeneratorTest(parameterized.TestCase):

  @parameterized.parameters(*ARCHITECTURES)
  def test_mapping_and_every_block_match_official(self, name):
    G, variables, arrays, synthesize = _converted(name)
    self.assertIsInstance(G, networks.StyleGAN2Generator)
    case = f"{name}/const"
    ws = G.apply(variables, arrays[f"{case}/z"], arrays[f"{case}/c"],
                 method=G.map)
    self.assertLessEqual(official.max_rel_error(ws, arrays[f"{case}/ws"]),
                         TOL)
    img, state = synthesize(variables, arrays[f"{case}/ws"],
                            noise_mode="const")
    self.assertLessEqual(official.max_rel_error(
        img, official.nhwc(arrays[f"{case}/img"])), TOL)
    blocks = state["intermediates"]["synthesis"]
    for res in networks.synthesis_network(G).block_resolutions:
      x, block_img = blocks[f"b{res}"]["__call__"][0]
      self.assertLessEqual(official.max_rel_error(
          x, official.nhwc(arrays[f"{case}/b{res}/x"])), TOL, f"b{res} x")
      expected_img = arrays[f"{case}/b{res}/img"]
      if expected_img.ndim == 0:  # "orig": no image before the last block
        self.assertIsNone(block_img)
      else:
        self.assertLessEqual(official.max_rel_error(
            block_img, official.nhwc(expected_img)), TOL, f"b{res} img")

  @parameterized.parameters(*ARCHITECTURES)
  def test_truncation_and_no_noise_match_official(self, name):
    G, variables, arrays, synthesize = _converted(name)
    case = f"{name}/none_psi0.7_cutoff3"
    ws = G.apply(variables, arrays[f"{name}/const/z"],
                 arrays[f"{name}/const/c"], truncation_psi=0.7,
                 truncation_cutoff=3, method=G.map)
    self.assertLessEqual(official.max_rel_error(ws, arrays[f"{case}/ws"]),
                         TOL)
    img, _ = synthesize(variables, arrays[f"{case}/ws"], noise_mode="none")
    self.assertLessEqual(official.max_rel_error(
        img, official.nhwc(arrays[f"{case}/img"])), TOL)

  def test_update_emas_moves_w_avg_as_official(self):
    G, variables, arrays, _ = _converted("skip")
    case = "skip/update_emas"
    np.testing.assert_allclose(variables["stats"]["mapping"]["w_avg"],
                               arrays[f"{case}/before/mapping.w_avg"])
    _, updated = G.apply(variables, arrays["skip/const/z"],
                         arrays["skip/const/c"], update_emas=True,
                         mutable=["stats"], noise_mode="none")
    np.testing.assert_allclose(updated["stats"]["mapping"]["w_avg"],
                               arrays[f"{case}/after/mapping.w_avg"],
                               rtol=1e-5, atol=1e-6)

  def test_noise_modes(self):
    G, variables, arrays, _ = _converted("skip")
    ws = jnp.asarray(arrays["skip/const/ws"])
    const = G.apply(variables, ws, method=G.synthesize, noise_mode="const")
    default = G.apply(variables, ws, method=G.synthesize)
    np.testing.assert_array_equal(default, const)  # no RNG: const noise

    def random(key):
      return G.apply(variables, ws, method=G.synthesize,
                     rngs={"noise": jax.random.key(key)})

    a, b, a_again = random(0), random(1), random(0)
    np.testing.assert_array_equal(a, a_again)
    self.assertGreater(float(jnp.abs(a - b).max()), 1e-2)
    self.assertGreater(float(jnp.abs(a - const).max()), 1e-2)
    with self.assertRaisesRegex(ValueError, "noise_mode: expected one of"):
      G.apply(variables, ws, method=G.synthesize, noise_mode="fixed")

  def test_fresh_init_has_the_official_state_dict(self):
    G, variables, arrays, _ = _converted("resnet")
    fresh = jax.jit(G.init)(jax.random.key(0), jnp.zeros((1, G.z_dim)),
                            jnp.zeros((1, 0)))
    ours = convert.state_dict_from_variables(fresh)
    theirs = {k[len("resnet/state/"):]: v for k, v in arrays.items()
              if k.startswith("resnet/state/") and
              not k.endswith("resample_filter")}
    self.assertEqual({k: v.shape for k, v in ours.items()},
                     {k: v.shape for k, v in theirs.items()})
    self.assertEqual(networks.synthesis_network(G).num_ws, 6)

  def test_network_checkpoint_round_trip(self):
    G, variables, _, _ = _converted("orig")
    _, params = official.load_extra("stylegan2")
    directory = self.create_tempdir().full_path + "/net"
    checkpoints.save_networks(directory, {"G": checkpoints.Network(
        type(G).__name__, params["generators"]["orig"], variables)})
    loaded = checkpoints.load_networks(directory)
    module, restored = loaded["G"]
    self.assertIsInstance(module, networks.StyleGAN2Generator)
    jax.tree.map(np.testing.assert_array_equal, restored, variables)

  def test_equivariance_metrics_refuse_it(self):
    _, variables, _, _ = _converted("orig")
    with self.assertRaisesRegex(ValueError, "needs a StyleGAN3 generator"):
      equivariance.with_input_transform(variables, np.eye(3))

  def test_bad_state_dict_names_the_tensor(self):
    _, params = official.load_extra("stylegan2")
    arrays = official.load_extra("stylegan2")[0]
    state = {k[len("skip/state/"):]: v for k, v in arrays.items()
             if k.startswith("skip/state/")}
    state["synthesis.b8.conv0.weight"] = np.zeros((32, 32, 1, 1), np.float32)
    with self.assertRaisesRegex(ValueError,
                                r"synthesis\.b8\.conv0\.weight: expected "
                                r"\(32, 32, 3, 3\), got \(32, 32, 1, 1\)"):
      convert.generator_from_state_dict(state, params["generators"]["skip"])


if __name__ == "__main__":
  absltest.main()
