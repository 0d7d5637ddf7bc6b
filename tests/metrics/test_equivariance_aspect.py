"""EQ-T and EQ-R of non-square generators (16x32, configs T and R).

As the square case (tests/metrics/test_equivariance.py): the terms equal
the NumPy definition on the rendered images, with the translation handed
to the operators as fractions of the width and height. And a non-square
network given a square network's weights (the same layers, only their
canvases are wider) is as equivariant as the square one: a translation or
rotation of its input moves its content as on the square network.
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np
from absl.testing import absltest
from absl.testing import parameterized

from sg3jax import convert
from sg3jax import networks
from sg3jax.metrics import equivariance as eq
from tests.metrics import numpy_reference
from tests.metrics.test_equivariance import TINY_KWARGS
from tests.metrics.test_equivariance import tiny

WIDE = (16, 32)
R_KWARGS = dict(conv_kernel=1, use_radial_filters=True)


def _renamed(variables, names):
  """`variables` with the synthesis layers renamed by `names` {old: new}."""
  def rename(tree):
    if not isinstance(tree, dict):
      return tree
    return {names.get(k, k): rename(v) for k, v in tree.items()}
  return rename(jax.tree.map(lambda x: x, variables))


@functools.cache
def _pair(config: str):
  """(square G, its variables, wide G, the same variables renamed)."""
  extra = R_KWARGS if config == "r" else {}
  if config == "t":
    square, variables = tiny()
  else:
    square = convert.generator_from_kwargs(dict(TINY_KWARGS, **extra))
    variables = jax.jit(square.init)(jax.random.key(0), jnp.zeros((1, 8)))
  wide = convert.generator_from_kwargs(dict(TINY_KWARGS,
                                            img_resolution=WIDE, **extra))
  names = dict(zip(networks.synthesis_network(square).layer_names,
                   networks.synthesis_network(wide).layer_names))
  return square, variables, wide, _renamed(variables, names)


def _ws(G, variables, n=4):
  z = jax.random.normal(jax.random.key(1), (n, G.z_dim))
  return jax.jit(lambda v, z: G.apply(v, z, method=G.map))(variables, z)


def _psnr(G, variables, ws, kind, value):
  err, mask = jax.jit(functools.partial(eq.eq_squared_error, G, kind=kind))(
      variables, ws, value=np.asarray(value, np.float32))
  return float(eq.psnr(err, mask))


class NonSquareEqTest(parameterized.TestCase):

  @parameterized.parameters(("int", (3 / 16, -2 / 16)),
                            ("frac", (0.0371, -0.0912)))
  def test_translation_terms_match_numpy(self, kind, value):
    _, _, G, variables = _pair("t")
    ws = _ws(G, variables)
    value = np.asarray(value, np.float32)
    err, mask = jax.jit(functools.partial(eq.eq_terms, G, kind=kind))(
        variables, ws, value=value)
    render = jax.jit(lambda v, m: G.apply(eq.with_input_transform(v, m), ws,
                                          method=G.synthesize))
    reference = render(variables, np.eye(3, dtype=np.float32))
    self.assertEqual(reference.shape, (4, 16, 32, 3))
    transform = np.eye(3, dtype=np.float32)
    transform[:2, 2] = -value
    image = render(variables, transform)
    # The network moves content by t * 16 pixels on both axes: t * 16 / 32
    # of the width, t of the height.
    fractions = value.astype(np.float64) * [16 / 32, 1.0]
    np_err, np_mask = numpy_reference.eq_terms(reference, image, kind,
                                               fractions)
    np.testing.assert_array_equal(mask, np_mask)
    self.assertTrue(np.all(np_mask > 0))
    # Tolerances as the square test (squared differences of O(1) images).
    np.testing.assert_allclose(err, np_err, rtol=1e-5)

  def test_integer_transforms_are_whole_pixels_of_the_short_side(self):
    values = jax.vmap(lambda k: eq.sample_transform(
        k, "int", img_resolution=WIDE))(jax.random.split(jax.random.key(0),
                                                         64))
    np.testing.assert_allclose(values * 16, np.round(values * 16), atol=1e-5)
    self.assertLessEqual(float(jnp.max(jnp.abs(values))), 0.125)

  @parameterized.parameters(("t", "int", (3 / 16, -2 / 16)),
                            ("t", "frac", (0.0371, -0.0912)),
                            ("r", "rot", 0.3))
  def test_as_equivariant_as_the_square_network(self, config, kind, value):
    square, variables, wide, wide_variables = _pair(config)
    ws = _ws(square, variables)
    square_psnr = _psnr(square, variables, ws, kind, value)
    wide_psnr = _psnr(wide, wide_variables, ws, kind, value)
    # The same layers on a wider canvas: within 3 dB of the square's PSNR.
    # An operator moving by t of the width instead of t * 16 pixels, or
    # rotating in the grid's normalized coordinates (a shear at 1:2),
    # would compare misplaced content.
    self.assertLess(abs(wide_psnr - square_psnr), 3.0,
                    (square_psnr, wide_psnr))

if __name__ == "__main__":
  absltest.main()
