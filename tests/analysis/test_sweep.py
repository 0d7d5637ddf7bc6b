"""Ablation sweeps: variant parsing, resumable results, the table, and the
tiny sweep of experiments/filter_sweep.py:tiny run end to end (CLI), also
stopped by SIGTERM and resumed."""

import contextlib
import io
import json
import os
import pathlib
import signal
import subprocess
import sys
import tempfile
from unittest import mock

import numpy as np
from absl.testing import absltest
from PIL import Image

from sg3jax.analysis import figures
from sg3jax.analysis import sweep
from sg3jax.cli import sweep as sweep_cli
from sg3jax.metrics import equivariance
from sg3jax.metrics import metric_main
from sg3jax.training import checkpoints
from sg3jax.training import loop
from sg3jax.training import preemption
from tests.metrics import detectors
from tests.metrics import test_vgg16
from tests.training import tiny

_SWEEP_FILE = tiny.EXPERIMENTS / "filter_sweep.py"


def _rows():
  return [
      {"variant": "a", "changes": "", "stage": "init", "kimg": 0.0,
       "eqt50k_int": 60.0, "eqr50k": 20.123},
      {"variant": "b", "changes": "G.filter_size=1", "stage": "init",
       "kimg": 0.0, "eqt50k_int": 30.5, "eqr50k": 15.0},
      {"variant": "a", "changes": "", "stage": "trained", "kimg": 0.5,
       "eqt50k_int": 55.0, "eqr50k": 19.0},
  ]


class DefinitionTest(absltest.TestCase):

  def test_parse_changes(self):
    self.assertEqual(
        sweep.parse_changes("G.conv_kernel=1, G.use_radial_filters=True, "
                            "G.filter_design=lanczos, cbase='64'", variant="v"),
        {"G.conv_kernel": 1, "G.use_radial_filters": True,
         "G.filter_design": "lanczos", "cbase": "64"})
    self.assertEqual(sweep.parse_changes("  ", variant="v"), {})
    with self.assertRaisesRegex(ValueError, "variant 'v': expected key=value"):
      sweep.parse_changes("G.filter_size", variant="v")

  def test_apply_changes_copies_and_checks_keys(self):
    base = tiny.tiny_config()
    cfg = sweep.apply_changes(base, {"G.filter_size": 1, "batch_size": 16},
                              variant="v")
    self.assertEqual((cfg.G.filter_size, base.G.filter_size), (1, 6))
    self.assertEqual(cfg.ema_kimg, 16 * 10 / 32)  # references follow
    with self.assertRaisesRegex(ValueError, "variant 'v': unknown config key "
                                "'G.filter_sise'"):
      sweep.apply_changes(base, {"G.filter_sise": 1}, variant="v")
    with self.assertRaisesRegex(ValueError, "no config group 'X'"):
      sweep.apply_changes(base, {"X.y": 1}, variant="v")
    with self.assertRaisesRegex(ValueError, "G.filter_size='big'"):
      sweep.apply_changes(base, {"G.filter_size": "big"}, variant="v")

  def test_selected_variants(self):
    c = tiny.load_experiment("filter_sweep.py", "tiny")
    self.assertEqual([n for n, _ in sweep.selected_variants(c)],
                     ["baseline", "no_filter", "config_r_layers"])
    c.only = "config_r_layers, baseline"
    self.assertEqual([n for n, _ in sweep.selected_variants(c)],
                     ["config_r_layers", "baseline"])
    c.only = "baseline,nope"
    with self.assertRaisesRegex(ValueError, r"only: unknown variants \['nope'"):
      sweep.selected_variants(c)
    c.only = ""
    c.variants = (("a", ""), ("a", "G.filter_size=1"))
    with self.assertRaisesRegex(ValueError, "names must be unique"):
      sweep.selected_variants(c)

  def test_full_sweep_variants_apply_to_its_base(self):
    c = tiny.load_experiment("filter_sweep.py")
    for name, changes in sweep.selected_variants(c):
      cfg = sweep.apply_changes(c.base, sweep.parse_changes(
          changes, variant=name), variant=name)
      self.assertEqual(cfg.data, c.base.data)
    self.assertGreaterEqual(len(c.variants), 10)

  def test_bad_sweep_fields(self):
    c = tiny.load_experiment("filter_sweep.py", "tiny")
    c.metrics = ("fid51k",)
    with self.assertRaisesRegex(ValueError, "metrics: expected names"):
      sweep.run_sweep(c, self.create_tempdir().full_path)
    c.metrics = ("eqt50k_int", "pr50k3")
    c.base.detector_dir = self.create_tempdir().full_path
    with self.assertRaisesRegex(FileNotFoundError, "no vgg16 detector"):
      sweep.run_sweep(c, self.create_tempdir().full_path)
    c = tiny.load_experiment("filter_sweep.py", "tiny")
    c.variants = (("bad", "G.no_such_option=1"),)
    with self.assertRaisesRegex(ValueError, "unknown config key"):
      sweep.run_sweep(c, self.create_tempdir().full_path)


class ResultsTest(absltest.TestCase):

  def test_partial_last_line_is_dropped_before_appending(self):
    workdir = pathlib.Path(self.create_tempdir().full_path)
    path = workdir / "results.jsonl"
    path.write_text(json.dumps(_rows()[0]) + "\n" + '{"variant": "b", "st')
    self.assertEqual(sweep.read_results(workdir), [_rows()[0]])
    sweep._drop_partial_line(path)
    self.assertEqual(path.read_text(), json.dumps(_rows()[0]) + "\n")
    path.write_text("not json\n" + json.dumps(_rows()[0]) + "\n")
    with self.assertRaisesRegex(ValueError, "results.jsonl:1: not a JSON"):
      sweep.read_results(workdir)

  def test_summary_order_and_markdown(self):
    rows = sweep.summary_rows(_rows()[::-1], [("a", ""), ("b", "x")])
    self.assertEqual([(r["variant"], r["stage"]) for r in rows],
                     [("a", "init"), ("a", "trained"), ("b", "init")])
    table = sweep.markdown_table(rows, ["eqt50k_int", "eqr50k"]).splitlines()
    self.assertEqual(table[0], "| variant | changes | EQ-T init | EQ-R init "
                     "| EQ-T 0.5 kimg | EQ-R 0.5 kimg |")
    self.assertEqual(table[2], "| a | (base) | 60.00 | 20.12 | 55.00 | 19.00 |")
    self.assertEqual(table[3],
                     "| b | `G.filter_size=1` | 30.50 | 15.00 | - | - |")

  def test_figure_has_a_bar_per_variant_and_stage(self):
    fig = figures.sweep_figure(_rows(), ["eqt50k_int", "eqr50k"],
                               sweep.METRIC_LABELS)
    bars = [p.get_width() for p in fig.axes[0].patches]
    np.testing.assert_array_equal(bars[:2], [60.0, 30.5])  # init: a, b
    self.assertEqual(bars[2], 55.0)  # trained: a
    self.assertTrue(np.isnan(bars[3]))  # trained: b not measured
    self.assertEqual([a.get_title() for a in fig.axes], ["EQ-T", "EQ-R"])
    figures.save_figure(fig, self.create_tempdir().full_path + "/f.png")


class DetectorMetricSweepTest(absltest.TestCase):

  def test_precision_recall_and_ppl_of_a_variant(self):
    detector_dir = pathlib.Path(self.create_tempdir().full_path)
    test_vgg16.write_vgg16(detector_dir, detectors.vgg16_state_dict(
        **test_vgg16.SLIM))
    c = tiny.load_experiment("filter_sweep.py", "tiny")
    c.only, c.train_kimg = "baseline", 0
    c.metrics = ("pr50k3,ppl2_wend",)  # as --config.metrics=a,b sets it
    c.base.detector_dir = str(detector_dir)
    workdir = pathlib.Path(self.create_tempdir().full_path)
    (row,) = sweep.run_sweep(c, workdir)
    nets = loop.build_networks(c.base, loop.open_training_set(c.base))
    G, (variables, _) = nets.G, nets.init()
    for name in ("pr50k3", "ppl2_wend"):
      expected = metric_main.calc_metric(
          name, G, variables, num=c.eq_num, batch=c.eq_batch, seed=c.seed,
          progress=False, data=c.base.data,
          detector_dir=str(detector_dir))["results"]
      for key, value in expected.items():
        self.assertAlmostEqual(row[key], value, delta=1e-6 * abs(value))
    table = (workdir / "sweep.md").read_text().splitlines()
    self.assertIn("| variant | changes | pr50k3_precision init | "
                  "pr50k3_recall init | ppl2_wend init |", table)
    self.assertIn(f"| {row['ppl2_wend']:.4g} |", table[-1])


class TinySweepTest(absltest.TestCase):
  """experiments/filter_sweep.py:tiny through `sg3jax sweep`, run once
  (`make test` distributes tests by class, so one worker runs this)."""

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    cls._tmp = tempfile.TemporaryDirectory()
    cls.workdir = pathlib.Path(cls._tmp.name) / "sweep"
    cls.argv = ["sg3jax sweep", f"--config={_SWEEP_FILE}:tiny",
                f"--workdir={cls.workdir}"]
    sweep_cli.run(cls.argv)
    cls.rows = json.loads((cls.workdir / "sweep.json").read_text())["rows"]
    cls.table = (cls.workdir / "sweep.md").read_text()
    cls.value = {(r["variant"], r["stage"]): r for r in cls.rows}

  @classmethod
  def tearDownClass(cls):
    cls._tmp.cleanup()
    super().tearDownClass()

  def test_every_variant_and_stage_is_measured(self):
    self.assertEqual([(r["variant"], r["stage"]) for r in self.rows], [
        ("baseline", "init"), ("baseline", "trained"), ("no_filter", "init"),
        ("no_filter", "trained"), ("config_r_layers", "init"),
        ("config_r_layers", "trained")])
    for r in self.rows:
      for metric in ("eqt50k_int", "eqt50k_frac", "eqr50k"):
        self.assertTrue(np.isfinite(r[metric]), (r, metric))
    table = (self.workdir / "sweep.md").read_text()
    self.assertIn("| no_filter | `G.filter_size=1` | "
                  f"{self.value['no_filter', 'init']['eqt50k_int']:.2f} |",
                  table)
    with Image.open(self.workdir / "sweep.png") as image:
      self.assertGreater(image.size[0], 300)

  def test_trained_values_are_the_metric_of_the_runs_g_ema(self):
    c = tiny.load_experiment("filter_sweep.py", "tiny")
    module, g_ema = checkpoints.load_generator(
        self.workdir / "runs" / "no_filter")
    self.assertEqual(module.synthesis_kwargs["filter_size"], 1)
    got = equivariance.compute_equivariance(
        module, g_ema, "frac", num=c.eq_num, batch=c.eq_batch, seed=c.seed,
        progress=False)["psnr"]
    trained = self.value["no_filter", "trained"]["eqt50k_frac"]
    self.assertAlmostEqual(got, trained, delta=1e-6 * abs(trained))
    # Training moved the weights, so the figure differs from init's.
    self.assertNotAlmostEqual(
        trained, self.value["no_filter", "init"]["eqt50k_frac"], places=3)

  def test_the_ablations_move_equivariance_the_expected_way(self):
    for stage in ("init", "trained"):
      base = self.value["baseline", stage]
      # Without low-pass filters the nonlinearity aliases: sub-pixel
      # translations are far from equivariant.
      self.assertLess(self.value["no_filter", stage]["eqt50k_frac"],
                      base["eqt50k_frac"] - 10)
      # 1x1 convolutions and radial filters make layers rotation
      # equivariant (config R).
      self.assertGreater(self.value["config_r_layers", stage]["eqr50k"],
                         base["eqr50k"] + 20)

  def test_rerun_resumes_without_recomputing(self):
    results = (self.workdir / "results.jsonl").read_text()
    steps = sorted(p.name for p in
                   (self.workdir / "runs/baseline/checkpoints").iterdir())
    sweep_cli.run(self.argv)
    self.assertEqual((self.workdir / "results.jsonl").read_text(), results)
    self.assertEqual(sorted(p.name for p in (
        self.workdir / "runs/baseline/checkpoints").iterdir()), steps)

  def _run_module(self, *overrides: str) -> subprocess.CompletedProcess:
    """`python -m sg3jax.sweep` with config overrides (absl registers the
    --config.* flags once per process, so these run in a fresh one)."""
    return subprocess.run(
        [sys.executable, "-m", "sg3jax.sweep", *self.argv[1:], *overrides],
        capture_output=True, text=True, timeout=300, check=False)

  def test_a_different_sweep_in_the_same_workdir_is_refused(self):
    refused = self._run_module("--config.eq_num=16")
    self.assertEqual(refused.returncode, 1)
    self.assertIn("holds a different sweep (fields ['eq_num'] differ",
                  refused.stderr)
    # Choosing a subset is not a different sweep: nothing is recomputed and
    # the summary holds the subset.
    results = (self.workdir / "results.jsonl").read_text()
    subset = self._run_module("--config.only=no_filter")
    self.assertEqual(subset.returncode, 0, subset.stderr[-2000:])
    self.assertEqual((self.workdir / "results.jsonl").read_text(), results)
    self.assertEqual(
        json.loads((self.workdir / "sweep.json").read_text())["rows"],
        [r for r in self.rows if r["variant"] == "no_filter"])
    sweep_cli.run(self.argv)

  def test_sigterm_stops_the_sweep_and_resuming_gives_the_same_table(self):
    root = pathlib.Path(self.create_tempdir().full_path)
    # The no_filter variant alone (a config file: --config.only needs a
    # fresh process).
    config = root / "no_filter_sweep.py"
    config.write_text(
        "from tests.training import tiny\n\n"
        "def get_config():\n"
        "  c = tiny.load_experiment('filter_sweep.py', 'tiny')\n"
        "  c.only = 'no_filter'\n"
        "  return c\n")
    workdir = root / "sweep"
    argv = ["sg3jax sweep", f"--config={config}", f"--workdir={workdir}"]
    run_dir = workdir / "runs" / "no_filter"
    handler = signal.getsignal(signal.SIGTERM)

    def run_with_sigterm(target: str, condition) -> str:
      """Runs the sweep command, sending this process SIGTERM at the
      first call of `target` ("reached": the training loop asks whether to
      stop after an iteration; "measure") for which `condition()` holds;
      returns its stdout."""
      real = {"reached": preemption.PreemptionNotice.reached,
              "measure": sweep.measure}[target]
      sent = []

      def signalled(*args, **kwargs):
        if not sent and condition():
          sent.append(True)
          os.kill(os.getpid(), signal.SIGTERM)
        return real(*args, **kwargs)

      patch = (mock.patch.object(preemption.PreemptionNotice, "reached",
                                 signalled) if target == "reached" else
               mock.patch.object(sweep, "measure", signalled))
      out = io.StringIO()
      with patch, contextlib.redirect_stdout(out):
        sweep_cli.run(argv)  # returns: the command exits with status 0
      self.assertEqual(sent, [True])
      self.assertIs(signal.getsignal(signal.SIGTERM), handler)
      return out.getvalue()

    def measured():
      return [(r["variant"], r["stage"]) for r in sweep.read_results(workdir)]

    def latest_step():
      ckpts = checkpoints.RunCheckpoints(run_dir)
      try:
        return ckpts.latest_step()
      finally:
        ckpts.close()

    # SIGTERM in training, after the first of two iterations: the run
    # writes a checkpoint there and the sweep stops.
    out = run_with_sigterm("reached", run_dir.exists)
    self.assertIn("sweep preempted at variant no_filter (trained): "
                  "preempted: stopped at kimg 0.0 (iteration 1)", out)
    self.assertEqual(measured(), [("no_filter", "init")])
    self.assertEqual(latest_step(), 1)
    self.assertFalse((workdir / "sweep.md").exists())

    # Resumed: the run finishes; SIGTERM while its G_ema is measured
    # abandons the measurement (nothing written).
    out = run_with_sigterm("measure", lambda: True)
    self.assertIn("resumed", out)
    self.assertIn("sweep preempted at variant no_filter (trained): SIGTERM: "
                  "abandoned the work in progress", out)
    self.assertEqual(latest_step(), 2)
    self.assertEqual(measured(), [("no_filter", "init")])

    # Resumed to the end: the rows and table of the uninterrupted sweep.
    sweep_cli.run(argv)
    expected = [{k: v for k, v in r.items() if k != "seconds"}
                for r in self.rows if r["variant"] == "no_filter"]
    rows = json.loads((workdir / "sweep.json").read_text())["rows"]
    self.assertEqual([{k: v for k, v in r.items() if k != "seconds"}
                      for r in rows], expected)
    metrics = sweep.metric_names(tiny.load_experiment("filter_sweep.py",
                                                      "tiny"))
    self.assertTrue((workdir / "sweep.md").read_text().endswith(
        sweep.markdown_table(expected, metrics)))
    self.assertIn(sweep.markdown_table(expected, metrics).splitlines()[-1],
                  self.table)

if __name__ == "__main__":
  absltest.main()
