"""Non-square networks (img_resolution=(H, W)): StyleGAN3 per-axis canvases,
StyleGAN2 rectangular blocks, the kwargs round trip.

Square networks are covered by the official parity tests, which run
unchanged. Shapes here come from `jax.eval_shape` (nothing compiled).
"""

import jax
import jax.numpy as jnp
import numpy as np
from absl.testing import absltest
from absl.testing import parameterized

from sg3jax import convert
from sg3jax import networks
from sg3jax.networks import synthesis

SG3_KWARGS = dict(z_dim=8, c_dim=0, w_dim=8, img_channels=3,
                  mapping_kwargs={"num_layers": 1}, channel_base=512,
                  channel_max=16, num_layers=4, num_fp16_res=0)


def _g_shapes(G):
  """(variables, image) shapes of G on a batch of 2."""
  def run():
    variables = G.init(jax.random.key(0), jnp.zeros((2, G.z_dim)))
    return variables, G.apply(variables, jnp.zeros((2, G.z_dim)))
  return jax.eval_shape(run)


class StyleGAN3Test(parameterized.TestCase):

  def test_schedule_is_the_short_sides_on_a_wider_canvas(self):
    square = networks.SynthesisNetwork(w_dim=8, img_resolution=32,
                                       img_channels=3, num_layers=4)
    wide = square.clone(img_resolution=(32, 64))
    s, w = square.schedule, wide.schedule
    for name in ("cutoffs", "stopbands", "sampling_rates", "half_widths",
                 "channels"):
      np.testing.assert_array_equal(getattr(w, name), getattr(s, name))
    # Height as the square's; width = s * 2 + the same margins; the last
    # two layers exactly 32x64.
    np.testing.assert_array_equal(w.sizes[:, 0], s.sizes[:, 0])
    np.testing.assert_array_equal(
        w.sizes[:-2, 1], s.sampling_rates[:-2] * 2 + 2 * square.margin_size)
    np.testing.assert_array_equal(w.sizes[-2:], [[32, 64], [32, 64]])
    self.assertEqual(wide.layer_names[0], "L0_36x52_512")
    self.assertEqual(square.layer_names[0], "L0_36_512")

  def test_filtered_lrelu_padding_per_axis(self):
    kwargs = networks.SynthesisNetwork(
        w_dim=8, img_resolution=(64, 32), img_channels=3,
        num_layers=4).layer_kwargs()
    for name, layer in kwargs.items():
      g = networks.SynthesisLayer(**layer, parent=None).geometry
      (h_in, w_in), (h_out, w_out) = layer["in_size"], layer["out_size"]
      for n_in, n_out, (lo, hi) in ((w_in, w_out, g.padding[:2]),
                                    (h_in, h_out, g.padding[2:])):
        # upfirdn output length (Appx. C.3) is the layer's out size.
        n = (n_in + g.conv_kernel - 1) * g.up_factor + lo + hi
        n = (n - g.up_taps - g.down_taps + 2 - 1) // g.down_factor + 1
        self.assertEqual(n, n_out, name)

  @parameterized.parameters(((32, 64), False), ((64, 32), True),
                            ((32, 48), False))
  def test_generator_renders_h_x_w(self, res, radial):
    extra = dict(conv_kernel=1, use_radial_filters=True) if radial else {}
    G = convert.generator_from_kwargs(
        dict(SG3_KWARGS, img_resolution=res, **extra),
        filtered_lrelu_impl="xla")
    _, img = _g_shapes(G)
    self.assertEqual(img.shape, (2, *res, 3))

  def test_fourier_input_extends_the_square_grid(self):
    # The same frequencies, phases and weights on a wider canvas: the
    # square's features are its middle columns (same spacing, centred).
    square = synthesis.SynthesisInput(8, 16, 36, 16.0, 2.0)
    wide = synthesis.SynthesisInput(8, 16, (36, 52), 16.0, 2.0)
    w = jax.random.normal(jax.random.key(1), (2, 8))
    variables = square.init(jax.random.key(0), w)
    x = square.apply(variables, w)
    y = wide.apply(variables, w)
    self.assertEqual(y.shape, (2, 36, 52, 16))
    np.testing.assert_allclose(y[:, :, 8:44], x, atol=2e-6)


class StyleGAN2Test(absltest.TestCase):

  def test_generator_blocks_are_rectangular(self):
    kwargs = {k: v for k, v in SG3_KWARGS.items() if k != "num_layers"}
    G = convert.generator_from_kwargs(dict(kwargs, img_resolution=(32, 64)),
                                      class_name="StyleGAN2Generator")
    variables, img = _g_shapes(G)
    self.assertEqual(img.shape, (2, 32, 64, 3))
    params = variables["params"]["synthesis"]
    self.assertEqual(set(params), {"b4", "b8", "b16", "b32"})
    self.assertEqual(params["b4"]["const"].shape, (16, 4, 8))
    self.assertEqual(
        variables["buffers"]["synthesis"]["b16"]["conv1"]["noise_const"].shape,
        (16, 32))

  def test_discriminator_epilogue_is_4x8(self):
    D = convert.discriminator_from_kwargs(dict(
        c_dim=0, img_resolution=[32, 64], img_channels=3, channel_base=512,
        channel_max=16))
    self.assertEqual(D.img_resolution, (32, 64))
    img = jnp.zeros((4, 32, 64, 3))
    variables = jax.eval_shape(lambda: D.init(jax.random.key(0), img))
    self.assertEqual(set(variables["params"]) - {"b4"},
                     {"b8", "b16", "b32"})
    self.assertEqual(variables["params"]["b4"]["fc"]["weight"].shape,
                     (16 * 4 * 8, 16))
    logits = jax.eval_shape(D.apply, variables, img)
    self.assertEqual(logits.shape, (4, 1))
    with self.assertRaisesRegex(ValueError, r"img: expected \[N, 32, 64, 3\]"):
      jax.eval_shape(D.apply, variables, jnp.zeros((4, 64, 32, 3)))

  def test_bad_resolution_is_named(self):
    with self.assertRaisesRegex(ValueError, "img_resolution: the short side "
                                "of 24x48 must be a power of two"):
      convert.generator_from_kwargs(dict(SG3_KWARGS,
                                         img_resolution=(24, 48)))


class KwargsTest(absltest.TestCase):

  def test_json_kwargs_round_trip(self):
    kwargs = dict(SG3_KWARGS, img_resolution=(32, 64))
    as_json = convert.to_json_value(kwargs)
    self.assertEqual(as_json["img_resolution"], [32, 64])
    G = convert.generator_from_kwargs(as_json)
    self.assertEqual(G.img_resolution, (32, 64))
    self.assertEqual(G, convert.generator_from_kwargs(kwargs))


if __name__ == "__main__":
  absltest.main()
