"""StyleGAN2 ResNet discriminator: official parity, layers, conversion, R1."""

import functools

import flax
import jax
import jax.numpy as jnp
import numpy as np
from absl.testing import absltest
from absl.testing import parameterized

from sg3jax import convert
from sg3jax.networks import stylegan2
from tests import official


@functools.cache
def _official_d():
  arrays, cases = official.load("loss_t64")
  state = {k[len("D_state/"):]: v for k, v in arrays.items()
           if k.startswith("D_state/")}
  return state, cases["D_init_kwargs"], arrays


def _numpy_minibatch_std(x_nchw, group_size, num_channels):
  """The official MinibatchStdLayer, literally, in NCHW NumPy."""
  n, c, h, w = x_nchw.shape
  g = min(group_size, n)
  f = num_channels
  y = x_nchw.reshape(g, -1, f, c // f, h, w).astype(np.float64)
  y = y - y.mean(axis=0)
  y = np.sqrt(np.square(y).mean(axis=0) + 1e-8)
  y = y.mean(axis=(2, 3, 4)).reshape(-1, f, 1, 1)
  y = np.tile(y, (g, 1, h, w))
  return np.concatenate([x_nchw, y], axis=1)


class ParityTest(absltest.TestCase):

  def test_logits_on_the_official_real_batch(self):
    state, kwargs, arrays = _official_d()
    module, variables = convert.discriminator_from_state_dict(state, kwargs)
    logits = jax.jit(module.apply)(
        variables, jnp.asarray(official.nhwc(arrays["real_img"])),
        jnp.asarray(arrays["real_c"]))
    self.assertEqual(logits.shape, (4, 1))
    # The fixture stores softplus(-D(x)) (blur 0); fp32 at 1e-5 of the
    # scale (observed ~3e-6).
    self.assertLessEqual(official.max_rel_error(
        jax.nn.softplus(-logits[:, 0]), arrays["blur0/D_real"]), 1e-5)


class LayerTest(parameterized.TestCase):

  @parameterized.parameters((4, 1), (2, 2), (8, 1), (None, 1))
  def test_minibatch_stddev_matches_official_arithmetic(self, group, channels):
    x = np.random.default_rng(0).normal(size=(8, 4, 5, 6)).astype(np.float32)
    ours = stylegan2.minibatch_stddev(jnp.asarray(official.nhwc(x)), group,
                                      channels)
    expected = _numpy_minibatch_std(x, group or 8, channels)
    np.testing.assert_allclose(ours, official.nhwc(expected), rtol=1e-5,
                               atol=1e-6)

  def test_minibatch_stddev_bad_batch(self):
    with self.assertRaisesRegex(ValueError, "not a multiple"):
      stylegan2.minibatch_stddev(jnp.zeros((6, 4, 4, 2)), 4)

  @parameterized.parameters(1, 3)
  def test_downsampling_conv_matches_literal_definition(self, kernel):
    # Official conv2d_resample for down=2: [1,3,3,1] blur (zero insertion
    # free), then the conv at stride 2, as a literal NumPy computation.
    rng = np.random.default_rng(kernel)
    x = rng.normal(size=(2, 8, 8, 3)).astype(np.float32)
    layer = stylegan2.Conv2dLayer(4, kernel, down=2)
    variables = layer.init(jax.random.key(0), x)
    y = layer.apply(variables, x)
    weight = np.asarray(variables["params"]["weight"], np.float64) / np.sqrt(
        3 * kernel * kernel)
    f = np.outer([1, 3, 3, 1], [1, 3, 3, 1]) / 64.0
    pad = kernel // 2 + 1
    xp = np.pad(x.astype(np.float64), ((0, 0), (pad, pad), (pad, pad), (0, 0)))
    blurred = np.zeros((2, xp.shape[1] - 3, xp.shape[2] - 3, 3))
    for i in range(4):
      for j in range(4):
        blurred += f[i, j] * xp[:, i:i + blurred.shape[1],
                                j:j + blurred.shape[2]]
    out = blurred.shape[1] - kernel + 1
    conv = np.zeros((2, out, out, 4))
    for i in range(kernel):
      for j in range(kernel):
        conv += np.einsum("nhwi,io->nhwo",
                          blurred[:, i:i + out, j:j + out], weight[i, j])
    np.testing.assert_allclose(y, conv[:, ::2, ::2], rtol=1e-5, atol=1e-5)
    self.assertEqual(y.shape, (2, 4, 4, 4))


def tiny_discriminator(c_dim=0):
  return convert.discriminator_from_kwargs(dict(
      c_dim=c_dim, img_resolution=16, img_channels=3, channel_base=256,
      channel_max=32, epilogue_kwargs={"mbstd_group_size": 2}))


class BehaviourTest(absltest.TestCase):

  def test_unconditional_logits_gradients_and_r1(self):
    module = tiny_discriminator()
    img = jax.random.normal(jax.random.key(1), (4, 16, 16, 3))
    variables = module.init(jax.random.key(0), img)
    logits = module.apply(variables, img, None)
    self.assertEqual(logits.shape, (4, 1))
    self.assertTrue(np.all(np.isfinite(logits)))

    def r1_penalty(params):
      def summed_logits(img):
        return jnp.sum(module.apply({"params": params}, img))
      grad = jax.grad(summed_logits)(img)
      return jnp.mean(jnp.sum(jnp.square(grad), axis=(1, 2, 3)))

    penalty, grads = jax.jit(jax.value_and_grad(r1_penalty))(
        variables["params"])
    self.assertGreater(float(penalty), 0)
    flat = flax.traverse_util.flatten_dict(grads, sep=".")
    self.assertTrue(all(np.all(np.isfinite(g)) for g in flat.values()))
    # The image gradient of a piecewise-linear D does not depend on biases
    # (almost everywhere), but on every weight.
    weights = {k: g for k, g in flat.items() if k.endswith("weight")}
    self.assertLen(weights, 10)  # b16: 4, b8: 3, b4: conv, fc, out
    for name, g in weights.items():
      self.assertTrue(np.any(g != 0), name)

  @jax.enable_x64()
  def test_remat_gives_the_same_logits_and_r1_gradients(self):
    # In float64: remat changes only what XLA fuses, so in float32 the two
    # differ by the compiler's rounding (up to 4e-5 relative on an R1
    # gradient element near zero, depending on XLA's CPU emitters); in
    # float64 any difference in the math shows far above the rounding.
    img = jax.random.normal(jax.random.key(1), (4, 16, 16, 3), jnp.float64)
    plain = tiny_discriminator()
    remat = plain.clone(remat=True)
    variables = jax.tree.map(lambda v: v.astype(jnp.float64),
                             jax.jit(plain.init)(jax.random.key(0), img))

    def r1_and_grads(module):
      def r1_penalty(params):
        grad = jax.grad(lambda x: jnp.sum(module.apply({"params": params},
                                                       x)))(img)
        return jnp.sum(jnp.square(grad))
      return (module.apply(variables, img),
              jax.value_and_grad(r1_penalty)(variables["params"]))

    expected = jax.jit(lambda: r1_and_grads(plain))()
    got = jax.jit(lambda: r1_and_grads(remat))()
    for e, g in zip(jax.tree.leaves(expected), jax.tree.leaves(got)):
      self.assertEqual(g.dtype, np.float64)
      np.testing.assert_allclose(g, e, rtol=1e-10,
                                 atol=1e-11 * float(np.abs(e).max()))

  def test_conditional_needs_labels(self):
    module = tiny_discriminator(c_dim=3)
    img = jnp.zeros((2, 16, 16, 3))
    variables = jax.jit(module.init)(jax.random.key(0), img,
                                     jnp.zeros((2, 3)))
    with self.assertRaisesRegex(ValueError, r"c: expected \[2, 3\], got None"):
      module.apply(variables, img, None)
    with self.assertRaisesRegex(ValueError, r"img: expected \[N, 16, 16, 3\]"):
      module.apply(variables, jnp.zeros((2, 8, 8, 3)), jnp.zeros((2, 3)))


class ConversionTest(absltest.TestCase):

  def test_errors_list_every_problem(self):
    state, kwargs, _ = _official_d()
    state = dict(state)
    state["b64.extra.weight"] = np.zeros(2)
    del state["b4.out.bias"]
    state["b8.conv0.weight"] = np.zeros((1, 1, 3, 3))
    state["b16.conv1.resample_filter"] = np.ones((4, 4))
    with self.assertRaises(ValueError) as error:
      convert.discriminator_from_state_dict(state, kwargs)
    message = str(error.exception)
    self.assertIn("unknown key b64.extra.weight", message)
    self.assertIn("missing key b4.out.bias", message)
    self.assertIn("shape mismatch for b8.conv0.weight: expected (64, 64, 3, 3)"
                  ", got (1, 1, 3, 3)", message)
    self.assertIn("buffer b16.conv1.resample_filter", message)

  def test_round_trip(self):
    state, kwargs, _ = _official_d()
    _, variables = convert.discriminator_from_state_dict(state, kwargs)
    back = convert.state_dict_from_variables(variables)
    self.assertEqual(set(back), {k for k in state
                                 if not k.endswith("resample_filter")})
    for name, value in back.items():
      np.testing.assert_array_equal(value, state[name], err_msg=name)

  def test_bad_kwargs(self):
    with self.assertRaisesRegex(ValueError, "not understood"):
      convert.discriminator_from_kwargs(dict(c_dim=0, img_resolution=16,
                                             img_channels=3, bogus=1))


class FreezeTest(absltest.TestCase):

  def test_layers_are_counted_from_the_image_as_official(self):
    D = convert.discriminator_from_kwargs(dict(
        c_dim=0, img_resolution=16, img_channels=3,
        block_kwargs=dict(freeze_layers=5)))
    self.assertEqual(stylegan2.frozen_layer_names(D, 5),
                     ["b16.fromrgb", "b16.conv0", "b16.conv1", "b16.skip",
                      "b8.conv0"])
    self.assertEqual(stylegan2.frozen_layer_names(D, 0), [])
    self.assertLen(stylegan2.frozen_layer_names(D, 100), 7)
    orig = D.clone(architecture="orig")
    self.assertEqual(stylegan2.frozen_layer_names(orig, 4),
                     ["b16.fromrgb", "b16.conv0", "b16.conv1", "b8.conv0"])
    with self.assertRaisesRegex(ValueError, "freeze_layers: expected an int"):
      stylegan2.frozen_layer_names(D, -1)


if __name__ == "__main__":
  absltest.main()
