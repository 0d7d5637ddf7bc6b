"""StyleGAN3 generator: parity with the official numbers, gradients, configs.

Fixtures: g_t64 (unconditional) and g_t64_cond (c_dim 3), config T at 64x64.
"""

import functools

import flax
import jax
import jax.numpy as jnp
import numpy as np
from absl.testing import absltest
from absl.testing import parameterized

from sg3jax import convert
from sg3jax import networks
from tests import official

FIXTURES = ("g_t64", "g_t64_cond")


@functools.cache
def _converted(fixture: str):
  """(module, variables, arrays, case params, jitted fns) for a fixture."""
  arrays, cases = official.load(fixture)
  state = {k[len("state/"):]: v for k, v in arrays.items()
           if k.startswith("state/")}
  module, variables = convert.generator_from_state_dict(
      state, cases["state"]["init_kwargs"], filtered_lrelu_impl="xla")
  fns = dict(
      map=jax.jit(functools.partial(module.apply, method=module.map),
                  static_argnames=("truncation_psi", "truncation_cutoff")),
      synthesize=jax.jit(functools.partial(
          module.apply, method=module.synthesize,
          capture_intermediates=True)),
      update=jax.jit(functools.partial(module.apply, update_emas=True,
                                       mutable=["stats"])),
  )
  return module, variables, arrays, cases, fns


def _c(arrays, case):
  c = arrays[f"{case}/c"]
  return None if c.shape[1] == 0 else c


# fp32 parity: each tensor within 1e-5 of its own scale. Observed: mapping
# ws ~1e-6 of scale, layer outputs from 3e-7 (input) growing to ~2e-6
# (last layers) as float32 rounding accumulates through 16 layers.
TOL = 1e-5


class ParityTest(parameterized.TestCase):

  @parameterized.parameters(*FIXTURES)
  def test_mapping_every_layer_and_image(self, fixture):
    module, variables, arrays, cases, fns = _converted(fixture)
    ws = fns["map"](variables, arrays["psi1.0/z"], _c(arrays, "psi1.0"))
    self.assertLessEqual(official.max_rel_error(ws, arrays["psi1.0/ws"]), TOL)
    img, state = fns["synthesize"](variables, jnp.asarray(arrays["psi1.0/ws"]))
    self.assertLessEqual(
        official.max_rel_error(img, official.nhwc(arrays["psi1.0/img"])), TOL)
    layers = state["intermediates"]["synthesis"]
    names = ["input"] + cases["state"]["layer_names"]
    self.assertEqual(names, ["input"] + list(
        module.bind(variables).synthesis.layer_names))
    for name in names:
      expected = official.nhwc(arrays[f"psi1.0/layer/{name}"])
      actual = layers[name]["__call__"][0]
      self.assertEqual(actual.shape, expected.shape, name)
      self.assertLessEqual(official.max_rel_error(actual, expected), TOL, name)

  @parameterized.product(fixture=FIXTURES,
                         case=["psi0.5", "psi0.7_cutoff4"])
  def test_truncation(self, fixture, case):
    _, variables, arrays, cases, fns = _converted(fixture)
    ws = fns["map"](variables, arrays[f"{case}/z"], _c(arrays, case),
                    truncation_psi=cases[case]["truncation_psi"],
                    truncation_cutoff=cases[case]["truncation_cutoff"])
    self.assertLessEqual(official.max_rel_error(ws, arrays[f"{case}/ws"]), TOL)
    if f"{case}/img" in arrays:
      img, _ = fns["synthesize"](variables, ws)
      self.assertLessEqual(
          official.max_rel_error(img, official.nhwc(arrays[f"{case}/img"])),
          TOL)

  @parameterized.parameters(*FIXTURES)
  def test_input_transform(self, fixture):
    module, variables, arrays, cases, _ = _converted(fixture)
    tx, ty, angle = cases["transform"]["make_transform"]
    transform = np.linalg.inv(networks.make_transform((tx, ty), angle))
    np.testing.assert_allclose(transform, arrays["transform/transform"],
                               rtol=1e-6, atol=1e-7)
    moved = flax.core.copy(variables, {"buffers": {"synthesis": {"input": {
        **variables["buffers"]["synthesis"]["input"],
        "transform": jnp.asarray(transform, jnp.float32)}}}})
    img = jax.jit(module.apply)(moved, arrays["transform/z"],
                                _c(arrays, "transform"))
    self.assertLessEqual(
        official.max_rel_error(img, official.nhwc(arrays["transform/img"])),
        TOL)

  @parameterized.parameters(*FIXTURES)
  def test_update_emas(self, fixture):
    _, variables, arrays, _, fns = _converted(fixture)
    img, updates = fns["update"](variables, arrays["update_emas/z"],
                                 _c(arrays, "update_emas"))
    self.assertLessEqual(
        official.max_rel_error(img, official.nhwc(arrays["update_emas/img"])),
        TOL)
    stats = flax.traverse_util.flatten_dict(updates["stats"], sep=".")
    before = flax.traverse_util.flatten_dict(variables["stats"], sep=".")
    prefix = "update_emas/after/"
    names = [k[len(prefix):] for k in arrays if k.startswith(prefix)]
    self.assertLen(names, len(stats))
    for name in names:
      np.testing.assert_allclose(
          before[name], arrays[f"update_emas/before/{name}"], rtol=1e-6,
          err_msg=name)
      self.assertLessEqual(
          official.max_rel_error(stats[name], arrays[f"{prefix}{name}"]), TOL,
          name)

  def test_without_update_emas_buffers_do_not_move(self):
    module, variables, arrays, _, _ = _converted("g_t64")
    _, updates = jax.jit(functools.partial(module.apply, mutable=["stats"]))(
        variables, arrays["update_emas/z"])
    jax.tree.map(np.testing.assert_array_equal, updates["stats"],
                 variables["stats"])


def tiny_generator(**synthesis_kwargs) -> networks.Generator:
  kwargs = dict(channel_base=64, channel_max=8, num_layers=4, num_critical=1,
                margin_size=2, filtered_lrelu_impl="xla")
  kwargs.update(synthesis_kwargs)
  return networks.Generator(
      z_dim=8, c_dim=0, w_dim=8, img_resolution=16, img_channels=3,
      mapping_kwargs={"num_layers": 1}, synthesis_kwargs=kwargs)


class GradientTest(absltest.TestCase):

  def test_gradients_finite_and_match_finite_differences(self):
    module = tiny_generator()
    z = jax.random.normal(jax.random.key(1), (2, 8))
    variables = module.init(jax.random.key(0), z)
    probe = jax.random.normal(jax.random.key(2), (2, 16, 16, 3))

    def loss(params):
      img = module.apply({**variables, "params": params}, z)
      return jnp.vdot(img, probe)

    # Random biases: at init they are zero, which puts the lrelu of every
    # zero-padded sample exactly on its kink (where one-sided derivatives
    # differ and central differences average them).
    bias_rng = np.random.default_rng(4)
    params = flax.traverse_util.path_aware_map(
        lambda path, p: p + 0.1 * bias_rng.normal(size=p.shape).astype(
            p.dtype) if path[-1] == "bias" else p, variables["params"])
    grads = jax.jit(jax.grad(loss))(params)
    leaves = jax.tree.leaves(grads)
    self.assertTrue(all(np.all(np.isfinite(g)) for g in leaves))
    self.assertTrue(all(np.any(g != 0) for g in leaves))
    # Directional derivatives along random directions vs central
    # differences, in float64 (the network computes in the dtype of its
    # inputs and variables, float32 at the least): every layer is piecewise
    # linear in its input, so the step must be far below the distance to
    # the nearest lrelu kink.
    with jax.enable_x64(True):
      params64, variables64, z64, probe64 = jax.tree.map(
          lambda a: jnp.asarray(a, jnp.float64),
          (params, variables, z, probe))

      def loss64(params):
        img = module.apply({**variables64, "params": params}, z64)
        return jnp.vdot(img, probe64)

      grads64 = jax.jit(jax.grad(loss64))(params64)
      jitted_loss64 = jax.jit(loss64)
      rng = np.random.default_rng(3)
      for _ in range(3):
        direction = jax.tree.map(
            lambda p: jnp.asarray(rng.normal(size=p.shape)), params64)
        eps = 1e-6
        plus = jax.tree.map(lambda p, d: p + eps * d, params64, direction)
        minus = jax.tree.map(lambda p, d: p - eps * d, params64, direction)
        numeric = (jitted_loss64(plus) - jitted_loss64(minus)) / (2 * eps)
        analytic = sum(jnp.vdot(g, d) for g, d in zip(
            jax.tree.leaves(grads64), jax.tree.leaves(direction)))
        np.testing.assert_allclose(analytic, numeric, rtol=1e-6)
      # The float32 gradients agree with the float64 ones.
      for g32, g64 in zip(leaves, jax.tree.leaves(grads64)):
        np.testing.assert_allclose(g32, g64, rtol=1e-3,
                                   atol=1e-4 * float(np.abs(g64).max()))


class RematTest(absltest.TestCase):
  """remat=True recomputes each synthesis layer in the backward pass: the
  same images, EMA updates, gradients and path-length second order."""

  def test_same_values_gradients_and_second_order(self):
    z = jax.random.normal(jax.random.key(1), (2, 8))
    plain, remat = tiny_generator(), tiny_generator(remat=True)
    variables = jax.jit(plain.init)(jax.random.key(0), z)
    self.assertEqual(jax.tree.structure(variables), jax.tree.structure(
        jax.eval_shape(remat.init, jax.random.key(0), z)))
    probe = jax.random.normal(jax.random.key(2), (2, 16, 16, 3))

    def outputs(module):
      def loss(params, ws):
        img, updates = module.apply(
            {**variables, "params": params}, ws, update_emas=True,
            method="synthesize", mutable=["stats"])
        return jnp.vdot(img, probe), updates

      def path_length_penalty(params):
        ws = module.apply(variables, z, method="map")
        ws_grad, _ = jax.grad(loss, argnums=1, has_aux=True)(params, ws)
        return jnp.sum(jnp.square(ws_grad))

      ws = module.apply(variables, z, method="map")
      (value, updates), grads = jax.value_and_grad(loss, has_aux=True)(
          variables["params"], ws)
      return value, updates, grads, jax.grad(path_length_penalty)(
          variables["params"])

    expected = jax.jit(lambda: outputs(plain))()
    self.assertTrue(np.all(np.isfinite(expected[0])))
    # Groups of 3 of the 5 layers: (L0, L1, L2), (L3, L4).
    for module in (remat, tiny_generator(remat=True, remat_group_size=3)):
      got = jax.jit(lambda m=module: outputs(m))()
      for e, g in zip(jax.tree.leaves(expected), jax.tree.leaves(got)):
        np.testing.assert_allclose(g, e, rtol=1e-5,
                                   atol=1e-6 * float(np.abs(e).max()))

  def test_bad_group_size(self):
    module = tiny_generator(remat=True, remat_group_size=0)
    with self.assertRaisesRegex(ValueError,
                                "remat_group_size: expected >= 1, got 0"):
      jax.eval_shape(module.init, jax.random.key(0), jnp.zeros((1, 8)))


class ConfigTest(absltest.TestCase):

  def test_config_r_uses_radial_down_filters_and_1x1_convs(self):
    module = tiny_generator(conv_kernel=1, use_radial_filters=True)
    layers = networks.synthesis_network(module).layer_kwargs()
    for idx, (name, kwargs) in enumerate(layers.items()):
      layer = networks.SynthesisLayer(**kwargs)
      up, down = layer.lowpass_filters()
      geometry = layer.geometry
      self.assertEqual(geometry.conv_kernel, 1, name)
      if down is not None:
        expect_radial = not kwargs["is_critically_sampled"]
        self.assertEqual(down.ndim, 2 if expect_radial else 1, name)
      if up is not None:
        self.assertEqual(up.ndim, 1, name)
      self.assertEqual(geometry.down_radial, idx < 3)
    z = jax.random.normal(jax.random.key(1), (2, 8))
    variables = jax.jit(module.init)(jax.random.key(0), z)
    img = jax.jit(module.apply)(variables, z)
    self.assertEqual(img.shape, (2, 16, 16, 3))
    self.assertTrue(np.all(np.isfinite(img)))
    weight = variables["params"]["synthesis"]["L0_20_8"]["weight"]
    self.assertEqual(weight.shape[:2], (1, 1))

  def test_mixed_precision_policy(self):
    # A low first stopband gives low-rate early layers (fp32) and 16-rate
    # late layers (bf16 with num_fp16_res=1 at 16x16).
    schedule = dict(num_fp16_res=1, first_cutoff=1, first_stopband=2)
    module = tiny_generator(mixed_precision=True, **schedule)
    z = jax.random.normal(jax.random.key(1), (2, 8))
    variables = jax.jit(module.init)(jax.random.key(0), z)
    reference = jax.jit(tiny_generator(**schedule).apply)(variables, z)
    img, state = jax.jit(functools.partial(
        module.apply, capture_intermediates=True))(variables, z)
    self.assertEqual(img.dtype, jnp.float32)
    layers = state["intermediates"]["synthesis"]
    dtypes = {name: layers[name]["__call__"][0].dtype for name in layers
              if name != "__call__"}
    layer_kwargs = networks.synthesis_network(module).layer_kwargs()
    expected = {name: jnp.bfloat16 if kwargs["use_fp16"] else jnp.float32
                for name, kwargs in layer_kwargs.items()}
    self.assertEqual(set(expected.values()), {jnp.bfloat16, jnp.float32})
    self.assertEqual(dtypes, {"input": jnp.float32, **expected})
    # bf16 has 8 mantissa bits: the last layers agree to ~1e-2.
    np.testing.assert_allclose(img, reference, atol=3e-2 * float(
        np.abs(reference).max()))


class StateDictErrorTest(absltest.TestCase):

  def _state(self):
    arrays, cases = official.load("g_t64")
    state = {k[len("state/"):]: v for k, v in arrays.items()
             if k.startswith("state/")}
    return state, cases["state"]["init_kwargs"]

  def test_unknown_missing_and_misshaped_keys_are_listed(self):
    state, kwargs = self._state()
    state["synthesis.L99.weight"] = np.zeros(3)
    del state["mapping.fc1.bias"]
    state["synthesis.L0_36_64.affine.weight"] = np.zeros((3, 64))
    with self.assertRaises(ValueError) as error:
      convert.generator_from_state_dict(state, kwargs)
    message = str(error.exception)
    self.assertIn("unknown key synthesis.L99.weight", message)
    self.assertIn("missing key mapping.fc1.bias", message)
    self.assertIn("shape mismatch for synthesis.L0_36_64.affine.weight: "
                  "expected (64, 64), got (3, 64)", message)

  def test_filter_buffers_are_checked(self):
    state, kwargs = self._state()
    state["synthesis.L0_36_64.up_filter"] = state[
        "synthesis.L0_36_64.up_filter"] * 2
    with self.assertRaisesRegex(ValueError,
                                "buffer synthesis.L0_36_64.up_filter"):
      convert.generator_from_state_dict(state, kwargs)

  def test_bad_init_kwargs(self):
    state, kwargs = self._state()
    with self.assertRaisesRegex(ValueError, "not understood.*bogus"):
      convert.generator_from_state_dict(state, {**kwargs, "bogus": 1})
    with self.assertRaisesRegex(ValueError, r"missing \['w_dim'\]"):
      convert.generator_from_state_dict(
          state, {k: v for k, v in kwargs.items() if k != "w_dim"})

  def test_round_trip_to_state_dict(self):
    state, kwargs = self._state()
    _, variables = convert.generator_from_state_dict(state, kwargs)
    back = convert.state_dict_from_variables(variables)
    filters = {k for k in state if k.endswith(("up_filter", "down_filter"))}
    self.assertEqual(set(back), set(state) - filters)
    for name, value in back.items():
      np.testing.assert_array_equal(value, state[name], err_msg=name)


if __name__ == "__main__":
  absltest.main()
