"""loss_terms against the official StyleGAN2Loss terms and gradients (loss_t64).

The gradients of the three phase losses (G main = G_main.mean() w.r.t. G,
D main = D_gen.mean() + D_real.mean() and D reg = R1.mean() w.r.t. D, R1 of
second order) are compared with the official ones tensor by tensor, as
max |ours - official| / max |official|.

Why two tests. Both networks are piecewise linear in their leaky ReLUs. A
float32 forward decides the branch of a pre-activation whose exact value
lies within its rounding (up to ~1e-6 of the layer's largest) of zero by
chance, and taking the other branch at one sample changes the gradient of
everything upstream of it by 0.8x or 4x that sample's cotangent: up to
1.6e-4 of a tensor's scale here. The official float32 run did that at four
samples (see `_OFFICIAL_BRANCHES`) and our float32 run does it at others of
its own, so float32 agrees only to that level. In float64 no sample is that
close to a kink; with tiny bias nudges that make exact arithmetic take the
official branch at those four samples, every gradient agrees to the
official's rounding (`test_float64_with_the_official_branches`), which shows
that the float32 differences are those branch flips and nothing else.
"""

import contextlib
import functools

import jax
import jax.numpy as jnp
import numpy as np
from absl.testing import absltest
from absl.testing import parameterized

from sg3jax import convert
from sg3jax.training import losses
from tests import official

# Fixture key of each phase loss: (weights of the mean per-sample terms, the
# network it is differentiated with respect to).
_PHASES = {
    "grad_G_main": ({"G_main": 1.0}, "G"),
    "grad_D_main": ({"D_gen": 1.0, "D_real": 1.0}, "D"),
    "grad_D_reg": ({"R1": 1.0}, "D"),
}

# Where the official float32 run took the other leaky-ReLU branch than exact
# arithmetic does, as (network, bias, channel, nudge): the bias nudge makes
# float64 take the official branch at that one sample [n, y, x] of the
# pre-activation (filtered_lrelu: the upsampled grid), whose exact value is
# given. Found sample by sample: each one's predicted change of its layer's
# bias gradient (0.8x or 4x its cotangent) equals the official-minus-exact
# difference there to within 3%, the same samples explain blur 0 and 10, and
# with them taken the differences of G main and D main drop from up to
# 1.6e-4 to <= 6.3e-6 (exact values 1.1e-9 .. 2.1e-8, i.e. <= 1.4e-7 of
# their layer's largest).
_OFFICIAL_BRANCHES = (
    ("G", "synthesis.L8_84_64.bias", 39, -7e-9),  # [3, 25, 100] = +5.6e-9
    ("G", "synthesis.L9_84_64.bias", 40, 2e-9),  # [2, 97, 124] = -1.1e-9
    ("G", "synthesis.L9_84_64.bias", 43, 2.5e-8),  # [0, 111, 71] = -2.05e-8
    # b64.conv1 on generated image 3 at blur 0 only.
    ("D", "b64.conv1.bias", 60, -3e-9),  # [3, 1, 15] = +1.65e-9
)
# The nudges above also move everything downstream by ~1e-8, which would
# flip four more samples (exact values 6.8e-11 .. 1.2e-8: L10 [3, 43, 128,
# 41] and [3, 138, 137, 45], L11 [3, 70, 131, 34], b64.conv1 on generated
# image 0 at blur 10 [0, 2, 4, 58]); these keep them on their exact branch.
_KEEP_EXACT_BRANCHES = (
    ("G", "synthesis.L10_84_51.bias", 41, -4e-9),
    ("G", "synthesis.L10_84_51.bias", 45, 7e-9),
    ("G", "synthesis.L11_84_40.bias", 34, 2e-9),
    ("D", "b64.conv1.bias", 58, -1e-9),
)

# float32 against the official float32, every tensor: the branch flips of
# the official run (up to 1.6e-4 of a tensor's scale, measured by the
# float64 test without nudges) plus our own (up to 8.9e-5 from the exact
# gradient over all 24 orders of the batch, which change only the rounding),
# or for the R1 image-path biases the minibatch-stddev rounding below (up
# to 1.2e-4 official, 3.4e-5 ours): at most 2.5e-4 together.
_FLOAT32_TOL = 5e-4
# float64 with the official branches: the official float32 rounding of the
# backward pass (observed <= 6.3e-6 of a tensor's scale).
_FLOAT64_TOL = 2e-5


@functools.cache
def _setup():
  arrays, cases = official.load("loss_t64")
  g_state = {k[len("G_state/"):]: v for k, v in arrays.items()
             if k.startswith("G_state/")}
  d_state = {k[len("D_state/"):]: v for k, v in arrays.items()
             if k.startswith("D_state/")}
  G, g_variables = convert.generator_from_state_dict(
      g_state, cases["G_init_kwargs"], filtered_lrelu_impl="xla")
  D, d_variables = convert.discriminator_from_state_dict(
      d_state, cases["D_init_kwargs"])
  return G, g_variables, D, d_variables, arrays, cases


@functools.cache
def _terms_and_gradients_fn(blur_sigma):
  """jit: (G vars, D vars, batch) -> (terms, G grads [3], D grads [3])."""
  G, _, D, _, _, cases = _setup()

  def fn(g_variables, d_variables, real_img, real_c, gen_z, gen_c):
    def terms(g_params, d_params):
      return losses.loss_terms(
          G, {**g_variables, "params": g_params}, D,
          {**d_variables, "params": d_params}, real_img, real_c, gen_z, gen_c,
          r1_gamma=cases["r1_gamma"], blur_sigma=blur_sigma)

    values, pullback = jax.vjp(terms, g_variables["params"],
                               d_variables["params"])
    # Each phase loss is a weighted mean of the per-sample terms, so one
    # batched pullback gives the gradients of all three (one compilation).
    n = gen_z.shape[0]
    cotangents = {
        name: jnp.stack([jnp.full_like(value, weights.get(name, 0.0) / n)
                         for weights, _ in _PHASES.values()])
        for name, value in values.items()}
    g_grads, d_grads = jax.vmap(pullback)(cotangents)
    return values, g_grads, d_grads

  return jax.jit(fn)


def _nudged(variables, net, nudges):
  params = jax.tree.map(lambda a: a, variables["params"])
  for nudge_net, name, channel, nudge in nudges:
    if nudge_net == net:
      *path, leaf = name.split(".")
      module = functools.reduce(lambda tree, key: tree[key], path, params)
      module[leaf] = module[leaf].at[channel].add(nudge)
  return {**variables, "params": params}


@contextlib.contextmanager
def _optimized_compiles(enabled: bool):
  """XLA's full CPU optimization while `enabled`: tests/conftest.py turns
  most of it off to compile faster, and the float64 loss terms and
  gradients then run four times longer (4 minutes per blur)."""
  previous = jax.config.read("jax_disable_most_optimizations")
  jax.config.update("jax_disable_most_optimizations",
                    previous and not enabled)
  try:
    yield
  finally:
    jax.config.update("jax_disable_most_optimizations", previous)


@functools.cache
def _run(blur_sigma, dtype, official_branches=False):
  """(per-sample terms, {phase: {official name: gradient}}) in `dtype`.

  `official_branches`: nudge the biases as `_OFFICIAL_BRANCHES` and
  `_KEEP_EXACT_BRANCHES` say (meant for float64).
  """
  _, g_variables, _, d_variables, arrays, _ = _setup()
  x64 = dtype == np.float64
  with jax.enable_x64(x64), _optimized_compiles(x64):
    def cast(tree):
      return jax.tree.map(lambda a: jnp.asarray(a, dtype), tree)

    g_variables, d_variables = cast(g_variables), cast(d_variables)
    if official_branches:
      nudges = _OFFICIAL_BRANCHES + _KEEP_EXACT_BRANCHES
      g_variables = _nudged(g_variables, "G", nudges)
      d_variables = _nudged(d_variables, "D", nudges)
    values, g_grads, d_grads = jax.device_get(
        _terms_and_gradients_fn(blur_sigma)(
            g_variables, d_variables,
            *cast((official.nhwc(arrays["real_img"]), arrays["real_c"],
                   arrays["gen_z"], arrays["gen_c"]))))
  grads = {}
  for i, (phase, (_, net)) in enumerate(_PHASES.items()):
    tree = jax.tree.map(lambda a, i=i: a[i], g_grads if net == "G" else d_grads)
    grads[phase] = convert.state_dict_from_variables({"params": tree})
  return values, grads


@functools.cache
def _mbstd_input_rounding(blur_sigma):
  """Float32 rounding of the minibatch-stddev input, relative to the std.

  R1 (a squared input gradient) depends on D's image-path biases only
  through the minibatch-stddev layer, as everything else is piecewise
  linear (b4's biases get exactly zero gradients), and there through 1/std
  of features whose group std is down to 4e-4 of their largest magnitude:
  their deviations from the group mean, known in float32 only to this
  fraction of the std, bound the relative precision of those gradients.
  Returns max |float32 - float64| / std over the real images' features.
  """
  _, _, D, d_variables, arrays, cases = _setup()
  n = arrays["real_img"].shape[0]
  assert cases["D_init_kwargs"]["epilogue_kwargs"]["mbstd_group_size"] == n
  block = f"b{min(D.block_resolutions)}"  # its output feeds the epilogue

  def deviations(variables, img, c):
    _, state = D.apply(variables, losses.blur_images(img, blur_sigma), c,
                       capture_intermediates=lambda m, _: m.name == block)
    h = state["intermediates"][block]["__call__"][0]
    return h - jnp.mean(h, axis=0)  # one group: the whole batch

  args = (d_variables, official.nhwc(arrays["real_img"]), arrays["real_c"])
  dev32 = np.asarray(jax.jit(deviations)(*args), np.float64)
  with jax.enable_x64(True):
    dev64 = np.asarray(jax.jit(deviations)(*jax.tree.map(
        lambda a: jnp.asarray(a, jnp.float64), args)))
  std = np.sqrt(np.mean(np.square(dev64), axis=0) + 1e-8)
  return float(np.max(np.abs(dev32 - dev64) / std))


class LossTermsTest(parameterized.TestCase):

  def _assert_gradients(self, blur_sigma, grads, tolerance):
    """`tolerance(phase, name)`: the largest max_rel_error allowed."""
    arrays = _setup()[4]
    for phase, tensors in grads.items():
      prefix = f"blur{int(blur_sigma)}/{phase}/"
      expected = {k[len(prefix):] for k in arrays if k.startswith(prefix)}
      self.assertEqual(set(tensors), expected, phase)
      for name, value in tensors.items():
        self.assertLessEqual(
            official.max_rel_error(value, arrays[prefix + name]),
            tolerance(phase, name), f"{phase}/{name}")

  @parameterized.parameters(0.0, 10.0)
  def test_per_sample_terms_match_official(self, blur_sigma):
    arrays = _setup()[4]
    terms, _ = _run(blur_sigma, np.float32)
    self.assertEqual(set(terms), {"G_main", "D_gen", "D_real", "R1"})
    for name, value in terms.items():
      expected = arrays[f"blur{int(blur_sigma)}/{name}"]
      self.assertEqual(value.shape, (4,))
      # fp32 at 1e-5 of each term's scale (observed <= 1.3e-6).
      self.assertLessEqual(official.max_rel_error(value, expected), 1e-5,
                           name)

  @parameterized.parameters(0.0, 10.0)
  def test_gradients_match_official(self, blur_sigma):
    _, grads = _run(blur_sigma, np.float32)
    # Observed <= 1.6e-4 (G main at blur 0).
    self._assert_gradients(blur_sigma, grads, lambda *_: _FLOAT32_TOL)

  @parameterized.parameters(0.0, 10.0)
  def test_float64_with_the_official_branches(self, blur_sigma):
    _, grads = _run(blur_sigma, np.float64, official_branches=True)
    # R1's image-path bias gradients come only through the minibatch-stddev
    # curvature, known to the float32 precision of its input (see
    # _mbstd_input_rounding: 1.9e-4 at blur 0, 2.6e-5 at blur 10): twice
    # that (observed 1.2e-4 and 3.2e-6).
    r1_bias_tol = max(_FLOAT64_TOL, 2 * _mbstd_input_rounding(blur_sigma))

    def tolerance(phase, name):
      if (phase == "grad_D_reg" and name.endswith(".bias") and
          not name.startswith("mapping.")):
        return r1_bias_tol
      return _FLOAT64_TOL

    self._assert_gradients(blur_sigma, grads, tolerance)
    # Without the nudges, exact arithmetic differs from the official float32
    # run by those branch flips: up to 1.6e-4 of G main's tensors.
    arrays = _setup()[4]
    _, exact = _run(blur_sigma, np.float64)
    self.assertGreater(max(
        official.max_rel_error(v, arrays[f"blur{int(blur_sigma)}/grad_G_main/"
                                         f"{k}"])
        for k, v in exact["grad_G_main"].items()), 3 * _FLOAT64_TOL)

  def test_blur_kernel_is_the_official_one(self):
    img = np.zeros((1, 65, 65, 1), np.float32)
    img[0, 32, 32, 0] = 1
    blurred = np.asarray(losses.blur_images(img, 2.0))[0, :, :, 0]
    taps = np.exp2(-np.square(np.arange(-6, 7) / 2.0))
    taps /= taps.sum()
    np.testing.assert_allclose(blurred[26:39, 26:39], np.outer(taps, taps),
                               rtol=1e-5, atol=1e-8)
    self.assertAlmostEqual(float(blurred.sum()), 1.0, places=5)
    np.testing.assert_array_equal(losses.blur_images(img, 0.3), img)



class PathLengthTest(absltest.TestCase):
  """Official Greg (path length, pl_weight 2) on the StyleGAN2 generator
  of tests/official_extra/stylegan2 ("skip"), with const noise."""

  def test_penalty_gradients_and_pl_mean_match_official(self):
    arrays, params = official.load_extra("stylegan2")
    state = {k[len("skip/state/"):]: v for k, v in arrays.items()
             if k.startswith("skip/state/")}
    G, variables = convert.generator_from_state_dict(
        state, params["generators"]["skip"])
    z, c = arrays["pl/gen_z"][:2], arrays["pl/gen_c"][:2]  # pl_batch_shrink 2
    pl_noise = official.nhwc(arrays["pl/pl_noise"])

    def loss(g_params):
      v = {**variables, "params": g_params}
      ws = G.apply(v, z, c, method=G.map)
      lengths = losses.path_lengths(
          lambda w: G.apply(v, w, noise_mode="const", method=G.synthesize),
          ws, pl_noise)
      penalty, pl_mean = losses.path_length_penalty(
          lengths, arrays["pl/pl_mean_before"], pl_decay=0.01)
      return jnp.mean(penalty) * 2.0, pl_mean

    (_, pl_mean), grads = jax.jit(jax.value_and_grad(loss, has_aux=True))(
        variables["params"])
    self.assertAlmostEqual(float(pl_mean), float(arrays["pl/pl_mean_after"]),
                           places=6)
    grads = convert.state_dict_from_variables({"params": grads})
    expected = {k[len("pl/grad/"):] for k in arrays
                if k.startswith("pl/grad/")}
    self.assertEqual(set(grads), expected)
    for name, value in grads.items():
      # Second order in float32: observed <= 1.3e-5 of a tensor's scale.
      self.assertLessEqual(
          official.max_rel_error(value, arrays[f"pl/grad/{name}"]), 1e-4,
          name)

  def test_noise_is_scaled_by_image_area(self):
    noise = losses.path_length_noise(jax.random.key(0), (64, 16, 8, 3))
    self.assertAlmostEqual(float(jnp.std(noise)) * np.sqrt(16 * 8), 1.0,
                           delta=0.03)

if __name__ == "__main__":
  absltest.main()
