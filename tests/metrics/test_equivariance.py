"""Equivariance operators and metrics: official parity, NumPy oracles, jit,
gradients (incl. w.r.t. the filter cutoff), sampling, JSONL and the CLI.

Fixtures: ops.npz cases int_translate*, frac_translate*, rotate*,
pseudo_rotate*, bandlimit* (official metrics/equivariance.py, NCHW).
"""

import functools
import json
import os
import pathlib
import subprocess
import sys

import flax
import jax
import jax.numpy as jnp
import numpy as np
from absl.testing import absltest
from absl.testing import parameterized

from sg3jax import convert
from sg3jax.cli import metrics as metrics_cli
from sg3jax.metrics import equivariance as eq
from sg3jax.metrics import metric_main
from sg3jax.training import checkpoints
from tests import host_devices
from tests import official
from tests.convert import pickle_writer
from tests.metrics import numpy_reference

REPO = pathlib.Path(__file__).resolve().parents[2]

OPS = {
    "int_translate": eq.apply_integer_translation,
    "frac_translate": eq.apply_fractional_translation,
    "rotate": eq.apply_fractional_rotation,
    "pseudo_rotate": eq.apply_fractional_pseudo_rotation,
}
NUMPY_OPS = {
    "int_translate": numpy_reference.integer_translation,
    "frac_translate": numpy_reference.fractional_translation,
    "rotate": numpy_reference.fractional_rotation,
    "pseudo_rotate": numpy_reference.fractional_pseudo_rotation,
}
CASES = [f"{op}{i}" for op in OPS for i in range(2)]

# fp32 parity, max |ours - official| within 1e-5 of the output's scale.
# Observed (scale ~3-4): integer translation 0 (pure data movement, checked
# exactly below), fractional translation 1.6e-7, pseudo-rotation 4e-7,
# band-limit filter 4.4e-7, rotation 1.5e-6 (eager and jitted). The
# rotation is the most sensitive: a float64 evaluation of the same
# definition differs from the official float32 numbers by 4.8e-6 of scale
# (the sampling grid rounded to float32 moves the bilinear taps); we follow
# torch's float32 linspace, grid and unnormalisation, and keep XLA from
# fusing their multiply-adds (which alone costs 5.6e-6), to land at 1.5e-6.
TOL = 1e-5


def _args(name: str, case: dict) -> tuple:
  op = name.rstrip("0123456789")
  if op in ("int_translate", "frac_translate"):
    return (case["tx"], case["ty"])
  return (case["angle"],)


@functools.cache
def _jitted(op: str):
  return jax.jit(OPS[op])


def _fixture(name):
  arrays, cases = official.load("ops")
  return (official.nhwc(arrays[f"{name}/x"]), official.nhwc(
      arrays[f"{name}/y"]), official.nhwc(arrays[f"{name}/mask"]),
          cases[name])


class OperatorParityTest(parameterized.TestCase):

  @parameterized.parameters(*CASES)
  def test_image_and_mask(self, name):
    op = name.rstrip("0123456789")
    x, y_expected, mask_expected, case = _fixture(name)
    y, mask = OPS[op](x, *_args(name, case))
    self.assertEqual(y.dtype, jnp.float32)
    np.testing.assert_array_equal(mask, mask_expected)
    if op == "int_translate":
      np.testing.assert_array_equal(y, y_expected)
    self.assertLessEqual(official.max_rel_error(y, y_expected), TOL)
    # Jitted with traced arguments (what the metric runs).
    y, mask = _jitted(op)(x, *(np.float32(a) for a in _args(name, case)))
    np.testing.assert_array_equal(mask, mask_expected)
    self.assertLessEqual(official.max_rel_error(y, y_expected), TOL)

  @parameterized.parameters(0, 1)
  def test_bandlimit_filter(self, i):
    arrays, cases = official.load("ops")
    case = cases[f"bandlimit{i}"]
    f = eq.construct_affine_bandlimit_filter(
        eq.rotation_matrix(case["angle"]), a=case["a"], amax=case["amax"],
        up=case["up"])
    expected = arrays[f"bandlimit{i}/f"]
    self.assertEqual(f.shape, expected.shape)
    self.assertLessEqual(official.max_rel_error(f, expected), TOL)

  @parameterized.parameters(*CASES)
  def test_numpy_oracle_matches_official(self, name):
    # Validates the oracle used for the generator terms below. Float64
    # arithmetic: within the official float32 error (4.8e-6 of scale for
    # the rotation, see TOL), masks exact.
    op = name.rstrip("0123456789")
    x, y_expected, mask_expected, case = _fixture(name)
    y, mask = NUMPY_OPS[op](x.astype(np.float64), *_args(name, case))
    np.testing.assert_array_equal(mask, mask_expected)
    self.assertLessEqual(official.max_rel_error(y, y_expected), TOL)


class TracedTest(parameterized.TestCase):

  @parameterized.parameters(*CASES)
  def test_jit_with_traced_arguments_equals_eager(self, name):
    op = name.rstrip("0123456789")
    x, _, _, case = _fixture(name)
    args = _args(name, case)
    y_eager, mask_eager = OPS[op](x, *args)
    y_jit, mask_jit = _jitted(op)(x, *(np.float32(a) for a in args))
    np.testing.assert_array_equal(mask_jit, mask_eager)
    # The eager call scales a Python float in float64 before the cast (as
    # torch.as_tensor(t * W)), the traced one in float32: shifts differ by
    # an ulp, outputs by ~1e-7 of scale.
    self.assertLessEqual(official.max_rel_error(y_jit, y_eager), 1e-6)

  @parameterized.parameters(*OPS)
  def test_gradients_finite_and_match_finite_differences(self, op):
    name = f"{op}0"
    x, _, _, case = _fixture(name)
    args = [np.float64(a) for a in _args(name, case)]
    rng = np.random.default_rng(0)
    with jax.enable_x64(True):
      x64 = jnp.asarray(x, jnp.float64)
      _, mask = OPS[op](x64, *args)
      # A probe inside the mask at the base point: the masks are piecewise
      # constant in the transform (their derivative is zero).
      probe = jnp.asarray(rng.normal(size=x.shape)) * mask

      def loss(x, *args):
        return jnp.vdot(OPS[op](x, *args)[0], probe)

      grads = jax.jit(jax.grad(loss, argnums=tuple(range(len(args) + 1))))(
          x64, *args)
      for g in grads:
        self.assertTrue(np.all(np.isfinite(g)))
      # Linear in x: the VJP is exact, check it against a random direction.
      d = jnp.asarray(rng.normal(size=x.shape))
      np.testing.assert_allclose(jnp.vdot(grads[0], d), loss(d, *args),
                                 rtol=1e-10)
      # Transform parameters: central differences (smooth in the
      # fractional part; the integer part has zero derivative).
      jitted = jax.jit(loss)
      for i, g in enumerate(grads[1:]):
        eps = 1e-7
        plus = list(args)
        minus = list(args)
        plus[i] += eps
        minus[i] -= eps
        numeric = (jitted(x64, *plus) - jitted(x64, *minus)) / (2 * eps)
        if op == "int_translate":
          self.assertEqual(g, 0)
          self.assertEqual(numeric, 0)
        else:
          np.testing.assert_allclose(g, numeric, rtol=1e-6)

  def test_float32_gradients_w_r_t_transform_are_finite(self):
    x = np.random.default_rng(1).normal(size=(1, 32, 32, 2)).astype(
        np.float32)
    grad_fns = {op: jax.jit(jax.grad(
        lambda *a, op=op: jnp.sum(OPS[op](x, *a)[0] ** 2),
        argnums=(0, 1) if "translate" in op else 0))
                for op in ("frac_translate", "rotate", "pseudo_rotate")}
    # Including the special points: zero shift/angle (sinc at 0) and a
    # right angle.
    for op, args in [("frac_translate", (0.1, -0.2)), ("rotate", (0.7,)),
                     ("rotate", (np.pi / 2,)), ("pseudo_rotate", (0.0,)),
                     ("frac_translate", (0, 0))]:
      grads = grad_fns[op](*(np.float32(a) for a in args))
      for g in jax.tree.leaves(grads):
        self.assertTrue(np.isfinite(g), (op, args))

  def test_upsample_conv_matches_upfirdn2d(self):
    from sg3jax import ops  # pylint: disable=g-import-not-at-top
    rng = np.random.default_rng(2)
    # Small filters: ops.upfirdn2d compiles one shift-add per tap.
    for h, w, kh, kw, up, padding in [(9, 7, 15, 13, 4, (16, 12, 16, 14)),
                                      (5, 6, 7, 5, 3, (2, -1, 0, 4)),
                                      (8, 8, 5, 5, 1, (2, 2, 2, 2))]:
      x = rng.normal(size=(2, h, w, 3)).astype(np.float32)
      f = rng.normal(size=(kh, kw)).astype(np.float32)
      expected = ops.upfirdn2d(x, f, up=up, padding=padding, gain=1.5)
      actual = eq.upsample_conv(x, f, up=up, padding=padding, gain=1.5)
      self.assertEqual(actual.shape, expected.shape)
      # Same products summed in another order.
      self.assertLessEqual(official.max_rel_error(actual, expected), 1e-5)


class BadInputTest(absltest.TestCase):

  def test_messages_name_argument_expected_and_actual(self):
    with self.assertRaisesRegex(ValueError, r"x: expected floating images "
                                r"\[N, H, W, C\], got float32 \(4, 4\)"):
      eq.apply_integer_translation(np.zeros((4, 4), np.float32), 0, 0)
    with self.assertRaisesRegex(ValueError, "x: .*got int32"):
      eq.apply_fractional_rotation(np.zeros((1, 4, 4, 1), np.int32), 0.1)
    with self.assertRaisesRegex(
        ValueError, r"a: expected an int >= 1 \(Lanczos lobes\), got 0"):
      eq.apply_fractional_translation(np.zeros((1, 8, 8, 1)), 0.1, 0, a=0)
    with self.assertRaisesRegex(ValueError, "amax: expected a <= amax < aflt"):
      eq.construct_affine_bandlimit_filter(np.eye(3), a=3, amax=2)
    with self.assertRaisesRegex(ValueError, r"mat: expected \[3, 3\]"):
      eq.construct_affine_bandlimit_filter(np.eye(2))
    G, variables = tiny()
    ws = np.zeros((1, 4, 8), np.float32)  # num_ws = num_layers + 2
    with self.assertRaisesRegex(ValueError, "kind: expected one of"):
      eq.eq_terms(G, variables, ws, "shear", 0.1)
    with self.assertRaisesRegex(ValueError, r"value: expected shape \(2,\) "
                                "for kind 'frac', got \\(\\)"):
      eq.eq_terms(G, variables, ws, "frac", 0.1)
    with self.assertRaisesRegex(ValueError, "batch: expected a positive "
                                "multiple of group_size"):
      eq.compute_equivariance(G, variables, "int", num=4, batch=6,
                              progress=False)
    with self.assertRaisesRegex(ValueError, "num: expected an int >= 1"):
      eq.compute_equivariance(G, variables, "int", num=0, progress=False)
    with self.assertRaisesRegex(ValueError, "metric: expected one of"):
      metric_main.calc_metric("fid51k", G, variables)


# ---------------------------------------------------------------------------
# A tiny config-T generator (16x16, 8 channels, 3 synthesis layers).

TINY_KWARGS = dict(z_dim=8, c_dim=0, w_dim=8, img_resolution=16,
                   img_channels=3, mapping_kwargs={"num_layers": 1},
                   channel_base=64, channel_max=8, num_layers=2,
                   num_critical=1, margin_size=2)


@functools.cache
def tiny():
  """(G, variables) with random non-zero biases (lrelu off its kink)."""
  G = convert.generator_from_kwargs(TINY_KWARGS)
  variables = jax.jit(G.init)(jax.random.key(0), jnp.zeros((1, 8)))
  rng = np.random.default_rng(4)
  params = flax.traverse_util.path_aware_map(
      lambda path, p: p + 0.1 * rng.normal(size=p.shape).astype(p.dtype)
      if path[-1] == "bias" else p, variables["params"])
  return G, {**variables, "params": params}


@functools.cache
def _tiny_fns():
  G, _ = tiny()
  return dict(
      map=jax.jit(lambda v, z: G.apply(v, z, method=G.map)),
      render=jax.jit(lambda v, ws, m: G.apply(
          eq.with_input_transform(v, m), ws, method=G.synthesize)),
      terms={kind: jax.jit(functools.partial(eq.eq_terms, G, kind=kind))
             for kind in eq.KINDS})


def _ws(n=4, seed=1):
  G, variables = tiny()
  z = jax.random.normal(jax.random.key(seed), (n, G.z_dim))
  return _tiny_fns()["map"](variables, z)


class EqTermsTest(parameterized.TestCase):

  @parameterized.parameters(
      ("int", (3 / 16, -2 / 16)), ("int", (-1 / 16, 0.0)),
      ("frac", (0.0371, -0.0912)), ("frac", (-0.11, 0.013)),
      ("rot", 0.3), ("rot", -1.7))
  def test_per_sample_terms_match_numpy(self, kind, value):
    G, variables = tiny()
    fns = _tiny_fns()
    ws = _ws()
    value = np.asarray(value, np.float32)
    err, mask = fns["terms"][kind](variables, ws, value=value)
    self.assertEqual(err.shape, (4,))
    # The same definition in NumPy (float64) on the rendered images.
    if kind == "rot":
      transform = numpy_reference.rotation_matrix(-value)
    else:
      transform = np.eye(3)
      transform[:2, 2] = -value
    reference = fns["render"](variables, ws, np.eye(3, dtype=np.float32))
    image = fns["render"](variables, ws, transform.astype(np.float32))
    np_err, np_mask = numpy_reference.eq_terms(reference, image, kind,
                                               value.astype(np.float64))
    np.testing.assert_array_equal(mask, np_mask)
    self.assertTrue(np.all(np_mask > 0))
    # Observed: int 1e-7, frac 1e-6, rot 2e-5 relative. The terms are sums
    # of squared *differences* of O(1) images that agree to ~1e-2, so the
    # float32 rounding of the operators (1e-7 of O(1); 1.5e-6 for the
    # rotation, see TOL) is amplified ~100x relative to the difference.
    np.testing.assert_allclose(err, np_err, rtol=1e-4 if kind == "rot"
                               else 1e-5)
    err_sum, mask_sum = eq.eq_squared_error(G, variables, ws, kind, value)
    np.testing.assert_allclose(err_sum, np.sum(np_err), rtol=1e-4)
    self.assertEqual(float(mask_sum), float(np.sum(np_mask)))

  def test_identity_translation(self):
    _, variables = tiny()
    for kind in ("int", "frac"):
      err, mask = _tiny_fns()["terms"][kind](
          variables, _ws(), value=np.zeros(2, np.float32))
      self.assertTrue(np.all(mask > 0))
      if kind == "int":
        np.testing.assert_array_equal(err, 0)
      else:
        # The Lanczos taps at integer offsets are sin(pi k) / (pi k) in
        # float32, ~1e-8 rather than 0 (as the official's).
        self.assertTrue(np.all(err < 1e-12), err)


class MetricTest(absltest.TestCase):

  def test_sums_are_the_documented_samples(self):
    G, variables = tiny()
    out = eq.compute_equivariance(G, variables, "frac", num=6, batch=4,
                                  seed=3, progress=False)
    self.assertEqual(out["num"], 6)
    self.assertEqual(out["num_devices"], len(jax.devices()))
    # Recompute: latents from fold_in(fold_in(key, 0), i), transforms of
    # groups of 4 from fold_in(fold_in(key, 2), g); sample 6 and 7 of the
    # padded last batch are dropped.
    key = jax.random.key(3)
    err_sum = mask_sum = 0.0
    for group, count in ((0, 4), (1, 2)):
      z = jnp.stack([jax.random.normal(jax.random.fold_in(
          jax.random.fold_in(key, 0), group * 4 + j), (G.z_dim,))
                     for j in range(4)])
      ws = _tiny_fns()["map"](variables, z)
      value = eq.sample_transform(
          jax.random.fold_in(jax.random.fold_in(key, 2), group), "frac",
          img_resolution=16)
      self.assertLessEqual(float(jnp.max(jnp.abs(value))), 0.125)
      err, mask = _tiny_fns()["terms"]["frac"](variables, ws, value=value)
      err_sum += float(np.sum(np.asarray(err, np.float64)[:count]))
      mask_sum += float(np.sum(np.asarray(mask, np.float64)[:count]))
    # Another program (vmapped over groups, sharded) of the same float32
    # terms: as in EqTermsTest, rounding of O(1) images is amplified in
    # their squared differences (observed 2e-6).
    np.testing.assert_allclose(out["err_sum"], err_sum, rtol=1e-5)
    self.assertEqual(out["mask_sum"], mask_sum)
    np.testing.assert_allclose(
        out["psnr"], 20 * np.log10(2) - 10 * np.log10(
            out["err_sum"] / out["mask_sum"]), rtol=1e-12)
    # A near-identity motion (translations under 0.02 px) scores far
    # higher than the official range.
    tiny_motion = eq.compute_equivariance(G, variables, "frac", num=6,
                                          batch=4, seed=3,
                                          translate_max=1e-3, progress=False)
    self.assertGreater(tiny_motion["psnr"], 80)
    self.assertGreater(tiny_motion["psnr"], out["psnr"] + 20)

  def test_calc_and_report_metric_write_official_jsonl(self):
    G, variables = tiny()
    result = metric_main.calc_metric("eqt50k_frac", G, variables, num=6,
                                     batch=4, seed=3, progress=False)
    expected = eq.compute_equivariance(G, variables, "frac", num=6, batch=4,
                                       seed=3, progress=False)["psnr"]
    run_dir = self.create_tempdir().full_path
    for _ in range(2):
      metric_main.report_metric(result, run_dir=run_dir,
                                snapshot_pkl=os.path.join(run_dir, "a.pkl"))
    lines = (pathlib.Path(run_dir) / "metric-eqt50k_frac.jsonl").read_text(
        ).splitlines()
    self.assertLen(lines, 2)  # appended, as the official
    record = json.loads(lines[0])
    self.assertEqual(list(record), ["results", "metric", "total_time",
                                    "total_time_str", "num_gpus",
                                    "snapshot_pkl", "timestamp"])
    self.assertEqual(record["results"], {"eqt50k_frac": expected})
    self.assertEqual(record["metric"], "eqt50k_frac")
    self.assertEqual(record["num_gpus"], len(jax.devices()))
    self.assertEqual(record["snapshot_pkl"], "a.pkl")
    self.assertEqual(metric_main.format_time(3725), "1h 02m 05s")
    self.assertEqual(metric_main.format_time(65), "1m 05s")

  def test_two_devices_give_the_same_samples(self):
    # A fresh process with two host devices: batch 8 (one group of 4 per
    # device) must reproduce the single-device batch-4 sums.
    G, variables = tiny()
    single = eq.compute_equivariance(G, variables, "frac", num=6, batch=4,
                                     seed=3, progress=False)
    script = (
        "import json, jax\n"
        "from sg3jax.metrics import equivariance as eq\n"
        "from tests.metrics import test_equivariance as t\n"
        "assert len(jax.devices()) == 2, jax.devices()\n"
        "G, v = t.tiny()\n"
        "out = eq.compute_equivariance(G, v, 'frac', num=6, batch=8, seed=3,"
        " progress=False)\n"
        "print(json.dumps(out))\n")
    env = dict(os.environ, JAX_PLATFORMS="cpu",
               XLA_FLAGS=host_devices.xla_flags(2))
    proc = subprocess.run([sys.executable, "-c", script], cwd=REPO, env=env,
                          capture_output=True, text=True, check=False)
    self.assertEqual(proc.returncode, 0, proc.stderr[-3000:])
    sharded = json.loads(proc.stdout.strip().splitlines()[-1])
    self.assertEqual(sharded["num_devices"], 2)
    self.assertEqual(sharded["mask_sum"], single["mask_sum"])
    np.testing.assert_allclose(sharded["err_sum"], single["err_sum"],
                               rtol=1e-6)


class GradientTest(absltest.TestCase):

  def test_eq_t_gradients_match_finite_differences(self):
    G, variables = tiny()
    z = jax.random.normal(jax.random.key(5), (2, G.z_dim))
    value = np.array([0.0371, -0.0912])

    def mse(params, scale, variables, z):
      ws = G.apply({**variables, "params": params}, z, method=G.map)
      err, mask = eq.eq_squared_error(G, {**variables, "params": params}, ws,
                                      "frac", value, cutoff_scale=scale)
      return err / mask

    # float32: finite, non-zero gradients w.r.t. every parameter and the
    # cutoff scale.
    grads32 = jax.jit(jax.grad(mse, argnums=(0, 1)))(
        variables["params"], np.float32(1.0), variables, z)
    for g in jax.tree.leaves(grads32):
      self.assertTrue(np.all(np.isfinite(g)))
    self.assertNotEqual(float(grads32[1]), 0)
    # float64: directional derivatives vs central differences. Piecewise
    # smooth: the random biases keep the lrelu inputs off their kinks, but
    # among ~1e5 of them some lie within 1e-6 of one (a step of 1e-6 along
    # a random direction crosses a kink: 9e-4 off; 1e-7: 1e-9 off).
    with jax.enable_x64(True):
      variables64, z64 = jax.tree.map(
          lambda a: jnp.asarray(a, jnp.float64), (variables, z))
      params64 = variables64["params"]
      loss = jax.jit(mse)
      grad_fn = jax.jit(jax.grad(mse, argnums=(0, 1)))
      grads = grad_fn(params64, 1.0, variables64, z64)
      rng = np.random.default_rng(6)
      eps = 1e-7
      for _ in range(2):
        direction = jax.tree.map(
            lambda p: jnp.asarray(rng.normal(size=p.shape)), params64)
        plus = jax.tree.map(lambda p, d: p + eps * d, params64, direction)
        minus = jax.tree.map(lambda p, d: p - eps * d, params64, direction)
        numeric = (loss(plus, 1.0, variables64, z64)
                   - loss(minus, 1.0, variables64, z64)) / (2 * eps)
        analytic = sum(jnp.vdot(g, d) for g, d in zip(
            jax.tree.leaves(grads[0]), jax.tree.leaves(direction)))
        np.testing.assert_allclose(analytic, numeric, rtol=1e-6)
      # The cutoff's derivative is 2e-2 of the loss per unit: a central
      # difference with a step of 1e-7 turns the loss's last-bit rounding
      # into 1e-6 of it (7.8e-7 or 1.7e-6, by XLA's CPU emitters). The
      # fourth-order difference with a step of 1e-5 is within 2e-8 under
      # both.
      step = 1e-5
      for scale in (1.0, 0.9):
        g = grads[1] if scale == 1.0 else grad_fn(
            params64, scale, variables64, z64)[1]
        at = {k: loss(params64, scale + k * step, variables64, z64)
              for k in (-2, -1, 1, 2)}
        numeric = (at[-2] - 8 * at[-1] + 8 * at[1] - at[2]) / (12 * step)
        np.testing.assert_allclose(g, numeric, rtol=1e-6)
      # The float32 gradient agrees with the float64 one.
      np.testing.assert_allclose(grads32[1], grads[1], rtol=1e-3)


class CommandTest(absltest.TestCase):

  def test_cli_writes_jsonl(self):
    G, variables = tiny()
    root = pathlib.Path(self.create_tempdir().full_path)
    ckpt = checkpoints.save_networks(root / "ckpt", {
        "G_ema": checkpoints.Network("Generator", TINY_KWARGS, variables)})
    metrics_cli.run(["metrics", f"--network={ckpt}",
                     "--metrics=eqt50k_frac", "--num=6", "--batch=4",
                     "--seed=3", "--noprogress"])
    # Default outdir: the directory holding the network.
    lines = (root / "metric-eqt50k_frac.jsonl").read_text().splitlines()
    self.assertLen(lines, 1)
    record = json.loads(lines[0])
    expected = eq.compute_equivariance(G, variables, "frac", num=6, batch=4,
                                       seed=3, progress=False)["psnr"]
    self.assertAlmostEqual(record["results"]["eqt50k_frac"], expected,
                           places=5)
    self.assertEqual(record["snapshot_pkl"], "ckpt")
    with self.assertRaises(SystemExit) as exit_info:
      metrics_cli.run(["metrics", f"--network={ckpt}", "--metrics=fid50k"])
    self.assertIn("fid50k", str(exit_info.exception.code))

  def test_cli_reads_official_pickles(self):
    G, variables = tiny()
    root = pathlib.Path(self.create_tempdir().full_path)
    pkl = root / "run" / "network-snapshot-000000.pkl"
    pkl.parent.mkdir()
    pkl.write_bytes(pickle_writer.snapshot_bytes(
        {"G_ema": (G, variables, TINY_KWARGS)}))
    metrics_cli.run(["metrics", f"--network={pkl}", "--metrics=eqt50k_frac",
                     "--num=6", "--batch=4", "--seed=3", "--noprogress",
                     f"--outdir={root}"])
    record = json.loads((root / "metric-eqt50k_frac.jsonl").read_text())
    expected = eq.compute_equivariance(G, variables, "frac", num=6, batch=4,
                                       seed=3, progress=False)["psnr"]
    self.assertAlmostEqual(record["results"]["eqt50k_frac"], expected,
                           places=5)
    self.assertEqual(record["snapshot_pkl"],
                     os.path.join("run", "network-snapshot-000000.pkl"))


if __name__ == "__main__":
  absltest.main()
