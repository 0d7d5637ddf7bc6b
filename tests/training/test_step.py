"""The training iteration: phases, schedules, accumulation, data parallelism."""

import jax
import jax.numpy as jnp
import numpy as np
from absl.testing import absltest
from absl.testing import parameterized

from sg3jax import convert
from sg3jax import data
from sg3jax.training import augment as augment_lib
from sg3jax.training import config as config_lib
from sg3jax.training import losses
from sg3jax.training import step as step_lib
from tests.training import tiny

_ADAM = step_lib.adam(0.002, (0.0, 0.99), 1e-8, None)


def _tiny_generator():
  """experiments/tiny.py's G (16², RGB, no labels)."""
  return convert.generator_from_kwargs(config_lib.generator_kwargs(
      tiny.tiny_config(), resolution=16, channels=3, label_dim=0))


def _tiny_discriminator(remat: bool):
  """experiments/tiny.py's D, its blocks rematerialized with `remat`."""
  return convert.discriminator_from_kwargs(config_lib.discriminator_kwargs(
      tiny.tiny_config(), resolution=16, channels=3, label_dim=0),
                                           remat=remat)


def _one_device_builder(G, D, loss: step_lib.LossConfig
                        ) -> step_lib.StepBuilder:
  """The step of G and D with Adam on one device, 2 images per round."""
  return step_lib.StepBuilder(
      D=D, G=G, g_tx=_ADAM, d_tx=_ADAM, loss=loss,
      mesh=jax.make_mesh((1,), ("data",),
                         axis_types=(jax.sharding.AxisType.Auto,)),
      batch_gpu=2)


class ScheduleTest(parameterized.TestCase):

  def test_official_phases(self):
    sg3 = step_lib.LossConfig(r1_gamma=2.0)
    self.assertEqual([(p.name, p.interval) for p in
                      step_lib.official_phases(sg3)],
                     [("Gmain", 1), ("Dmain", 1), ("Dreg", 16)])
    sg2 = step_lib.LossConfig(r1_gamma=10.0, pl_weight=2.0, G_reg_interval=4)
    self.assertEqual([(p.name, p.interval) for p in
                      step_lib.official_phases(sg2)],
                     [("Gmain", 1), ("Greg", 4), ("Dmain", 1), ("Dreg", 16)])
    no_lazy = step_lib.LossConfig(r1_gamma=1.0, D_reg_interval=None)
    self.assertEqual([p.name for p in step_lib.official_phases(no_lazy)],
                     ["Gmain", "Dboth"])
    no_r1 = step_lib.LossConfig(r1_gamma=0.0)
    self.assertEqual([p.name for p in step_lib.official_phases(no_r1)],
                     ["Gmain", "Dmain"])

  def test_lazy_regularization_rescales_adam(self):
    # One Adam step from zero state: update = -lr * g / (|g| + eps); with
    # interval 16, lr is scaled by 16/17 (beta1 0 stays 0).
    tx = step_lib.adam(0.002, (0.0, 0.99), 1e-8, 16)
    params = {"w": jnp.zeros(3)}
    grads = {"w": jnp.asarray([1.0, -2.0, 4.0])}
    updates, state = tx.update(grads, tx.init(params), params)
    np.testing.assert_allclose(updates["w"], -0.002 * 16 / 17 * np.sign(
        grads["w"]), rtol=1e-6)
    # Second step: v = b2 v + (1 - b2) g^2 with b2 = 0.99 ** (16 / 17).
    b2 = 0.99 ** (16 / 17)
    updates, _ = tx.update(grads, state, params)
    v = (1 - b2) * (b2 + 1) * np.square([1.0, -2.0, 4.0])
    v_hat = v / (1 - b2 ** 2)
    np.testing.assert_allclose(
        updates["w"], -0.002 * 16 / 17 * np.asarray([1.0, -2.0, 4.0]) /
        (np.sqrt(v_hat) + 1e-8), rtol=1e-5)

  def test_step_scalars_follow_the_official_formulas(self):
    loss = step_lib.LossConfig(r1_gamma=1.0, blur_init_sigma=10,
                               blur_fade_kimg=200)
    s = step_lib.step_scalars(5, 40_000, 32, 10.0, 0.05, loss)
    # ema_nimg = min(10000, 40000 * 0.05) = 2000.
    self.assertAlmostEqual(float(s.ema_beta), 0.5 ** (32 / 2000), places=7)
    self.assertAlmostEqual(float(s.blur_sigma), 10 * (1 - 40 / 200), places=5)
    self.assertEqual(int(s.blur_size), 24)
    late = step_lib.step_scalars(9, 300_000, 32, 10.0, None, loss)
    self.assertAlmostEqual(float(late.ema_beta), 0.5 ** (32 / 10_000),
                           places=7)
    self.assertEqual((float(late.blur_sigma), int(late.blur_size)), (0, 0))
    self.assertEqual(step_lib.step_scalars(0, 0, 32, 10.0, 0.05,
                                           loss).ema_beta, 0.0)

  @parameterized.parameters(0.4, 1.0, 2.5, 7.0, 10.0)
  def test_traced_blur_equals_the_official_kernel(self, sigma):
    img = np.random.default_rng(0).normal(size=(2, 40, 40, 3)).astype(
        np.float32)
    expected = losses.blur_images(img, sigma)
    got = jax.jit(losses.blur_images_traced, static_argnums=3)(
        img, np.float32(sigma), np.int32(np.floor(sigma * 3)), 30)
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)


class AccumulationTest(absltest.TestCase):

  def test_rounds_sum_gradients_and_thread_the_carry(self):
    def round_loss(w, carry, batch, key):
      del key
      count, = carry
      values = jnp.sum(batch["x"] * w, axis=1)
      return jnp.mean(values) * 2.0, ((count + 1,), {
          "Loss/G/loss": step_lib._report(values)}, values)  # pylint: disable=protected-access

    x = np.arange(12, dtype=np.float32).reshape(3, 2, 2)  # 3 rounds of 2
    w = jnp.asarray([1.0, -1.0])
    grads, (count,), reports, finite = step_lib._accumulate(  # pylint: disable=protected-access
        round_loss, w, (jnp.int32(0),), {"x": x},
        jax.random.split(jax.random.key(0), 3))
    # Official accumulation sums each round's mean-loss gradient.
    np.testing.assert_allclose(grads, 2.0 * x.mean(axis=1).sum(axis=0))
    self.assertEqual(int(count), 3)
    self.assertTrue(bool(finite))
    values = (x * np.asarray([1.0, -1.0])).sum(axis=2).ravel()
    np.testing.assert_allclose(reports["Loss/G/loss"],
                               [6, values.sum(), np.square(values).sum()])
    np.testing.assert_array_equal(reports["Loss/D/loss"], [0, 0, 0])


class RegularizerStepTest(absltest.TestCase):
  """Path length, R1, style mixing and the blur fade-in in one step, with
  lazy regularization (Greg/Dreg phases) and without (Gboth/Dboth)."""

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    cfg = tiny.tiny_config()
    shape = dict(resolution=16, channels=3, label_dim=0)
    cls.G = convert.generator_from_kwargs(
        config_lib.generator_kwargs(cfg, **shape), filtered_lrelu_impl="xla")
    cls.D = convert.discriminator_from_kwargs(
        config_lib.discriminator_kwargs(cfg, **shape))
    cls.c = np.zeros((8, 0), np.float32)
    cls.g_vars = jax.jit(cls.G.init)(
        jax.random.key(0), np.zeros((1, cls.G.z_dim), np.float32), cls.c[:1])
    cls.d_vars = jax.jit(cls.D.init)(
        jax.random.key(1), np.zeros((1, 16, 16, 3), np.float32), cls.c[:1])
    cls.pixels = np.random.default_rng(0).integers(
        0, 256, (8, 16, 16, 3), dtype=np.uint8)

  def _builder(self, reg_interval: int | None):
    """(StepBuilder, run(reals) -> state after iteration 0, scalars)."""
    loss = step_lib.LossConfig(
        r1_gamma=1.0, style_mixing_prob=0.9, pl_weight=2.0,
        blur_init_sigma=2.0, blur_fade_kimg=1.0, G_reg_interval=reg_interval,
        D_reg_interval=reg_interval)
    tx = step_lib.adam(0.002, (0.0, 0.99), 1e-8, reg_interval)
    mesh = jax.make_mesh((1,), ("data",),
                         axis_types=(jax.sharding.AxisType.Auto,))
    builder = step_lib.StepBuilder(self.G, self.D, tx, tx, loss, mesh,
                                   batch_gpu=4)
    scalars = step_lib.step_scalars(0, 100, 8, 10.0, 0.05, loss)
    num_phases = len(builder.phases)
    run = lambda reals: builder(
        step_lib.init_state(self.g_vars, self.d_vars, self.g_vars, tx, tx),
        jax.random.key(0), reals, self.c,
        np.zeros((8, num_phases, 0), np.float32), scalars)
    return builder, run, scalars

  def _check_reports(self, state, real_score_count: int):
    reports = jax.tree.map(np.asarray, state.reports)
    self.assertFalse(bool(state.nonfinite))
    # Path length ran on 8 / pl_batch_shrink samples; the rest on 8.
    self.assertEqual(reports["Loss/pl_penalty"][0], 4)
    self.assertEqual(reports["Loss/G/loss"][0], 8)
    self.assertEqual(reports["Loss/r1_penalty"][0], 8)
    self.assertEqual(reports["Loss/scores/real"][0], real_score_count)
    # pl_mean = lerp(0, mean path length, 0.01) > 0.
    self.assertGreater(float(state.pl_mean), 0.0)
    self.assertTrue(np.isfinite(reports["Loss/G/reg"]).all())

  def test_lazy_regularization_phases_run_and_report(self):
    builder, run, scalars = self._builder(reg_interval=4)
    self.assertEqual([p.name for p in builder.active_phases(0)],
                     ["Gmain", "Greg", "Dmain", "Dreg"])
    self.assertEqual(int(scalars.blur_size), 5)  # sigma 1.8
    state = run(self.pixels)
    # uint8 batches are scaled on device exactly as on the host.
    scaled_on_host = run(data.scale_images(self.pixels))
    for got, want in zip(jax.tree.leaves(state), jax.tree.leaves(
        scaled_on_host), strict=True):
      np.testing.assert_array_equal(got, want)
    self._check_reports(state, real_score_count=16)  # Dmain + Dreg

  def test_both_phases_run_main_and_regularization(self):
    # Without lazy regularization the official loop runs Gboth and Dboth:
    # each adds its regularizer to its main loss in one update.
    builder, run, _ = self._builder(reg_interval=None)
    self.assertEqual([p.name for p in builder.active_phases(0)],
                     ["Gboth", "Dboth"])
    self._check_reports(run(self.pixels), real_score_count=8)


class PreprocessRematTest(absltest.TestCase):
  """With `remat` (config.remat, D's `remat`), the blur and augmentation of
  D's inputs are recomputed in the backward pass (R1's largest buffers),
  with the same values and gradients."""

  def _preprocess(self, remat: bool):
    """The step's `preprocess(img, key)` (blur on, "bgc" at p 0.6)."""
    loss = step_lib.LossConfig(r1_gamma=1.0,
                               augment=augment_lib.pipeline("bgc"),
                               blur_init_sigma=2.0, blur_fade_kimg=1.0)
    builder = _one_device_builder(_tiny_generator(),
                                  _tiny_discriminator(remat), loss)
    scalars = step_lib.step_scalars(0, 100, 2, 10.0, 0.05, loss)
    return builder._preprocess(True, scalars, np.float32(0.6))

  def test_recomputed_with_the_same_values_and_gradients(self):
    img = jax.random.normal(jax.random.key(0), (2, 16, 16, 3))
    key = jax.random.key(1)
    results = {}
    for remat in (False, True):
      preprocess = self._preprocess(remat)
      # R1 differentiates D's score through the preprocessing.
      def score(img, preprocess=preprocess):
        return jnp.sum(jnp.square(preprocess(img, key)))
      jaxpr = jax.make_jaxpr(jax.value_and_grad(score))(img)
      remat_calls = [e for e in jaxpr.eqns if "checkpoint" in e.primitive.name
                     or "remat" in e.primitive.name]
      self.assertEqual(bool(remat_calls), remat)
      results[remat] = jax.jit(jax.value_and_grad(score))(img)
    self.assertGreater(float(results[False][0]), 0.0)
    for got, want in zip(jax.tree.leaves(results[True]),
                         jax.tree.leaves(results[False]), strict=True):
      np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6)


class GeneratorRematTest(absltest.TestCase):
  """With `remat`, G main generates the fakes again in the backward pass,
  after D's backward (G's saved layer inputs are not held through it),
  with the same loss and G gradients."""

  def test_g_main_regenerates_the_fakes_with_the_same_gradients(self):
    G = _tiny_generator()
    z = jax.random.normal(jax.random.key(0), (2, G.z_dim))
    batch = {"z": z, "c": jnp.zeros((2, 0))}
    g_variables = jax.jit(G.init)(jax.random.key(1), z, batch["c"])
    g_params = g_variables["params"]
    g_state = {k: v for k, v in g_variables.items() if k != "params"}
    # (D's remat changes how D runs, not its parameters.)
    d_params = jax.jit(_tiny_discriminator(remat=False).init)(
        jax.random.key(2), jnp.zeros((2, 16, 16, 3)), batch["c"])["params"]
    results = {}
    for remat in (False, True):
      builder = _one_device_builder(G, _tiny_discriminator(remat),
                                    step_lib.LossConfig(r1_gamma=1.0))

      def g_loss(g_params, builder=builder):
        return builder._g_main(g_params, g_state, d_params, batch,
                               jax.random.key(3), 1.0, lambda img, key: img)[0]
      # The fakes' generator is a checkpointed call of its own.
      jaxpr = jax.make_jaxpr(g_loss)(g_params)
      regenerated = [e for e in jaxpr.eqns
                     if e.primitive.name in ("checkpoint", "remat2")
                     and e.outvars[0].aval.shape == (2, 16, 16, 3)]
      self.assertLen(regenerated, int(remat))
      results[remat] = jax.jit(jax.value_and_grad(g_loss))(g_params)
    self.assertGreater(float(results[False][0]), 0.0)
    for got, want in zip(jax.tree.leaves(results[True]),
                         jax.tree.leaves(results[False]), strict=True):
      np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-7)


class DataParallelTest(absltest.TestCase):

  def test_one_and_eight_devices_give_the_same_networks(self):
    result = tiny.run_check("tests.training.data_parallel_check")
    self.assertEqual(result["device_count"], 8)
    for name in ("G", "D", "G_ema"):
      # Two SGD steps move parameters by ~1e-3; the runs differ only by
      # float32 reduction order (observed <= 6e-8 absolute, 1.7e-6 of a
      # tensor's scale).
      self.assertGreater(result[name]["max_change"], 1e-4, name)
      self.assertLess(result[name]["max_diff"], 1e-6, name)
      self.assertLess(result[name]["max_rel_diff"], 1e-5, name)
    self.assertEqual(result["reports"]["Loss/D/loss"][0], 16)
    self.assertLess(result["reports_diff"], 1e-4)


if __name__ == "__main__":
  absltest.main()
