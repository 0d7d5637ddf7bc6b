"""`sg3jax train` end to end: outputs, kill -9 and resume, unreadable
checkpoints (damaged files found by their checksums, or by reading those
saved without), two processes preempted by SIGTERM and resumed, divergence,
and bad configurations.

The runs are subprocesses of the console script on the tiny config
(tests/training/tiny.py); single-process runs share a persistent
compilation cache, so only the first run of each program compiles.
"""

import atexit
import json
import os
import pathlib
import shutil
import signal
import subprocess
import sys
import tempfile
import time

import jax
import numpy as np
import portpicker
from absl.testing import absltest
from absl.testing import parameterized
from PIL import Image

from sg3jax import networks as nets_lib
from sg3jax import visualizer
from sg3jax.training import checkpoints
from sg3jax.training import loop
from sg3jax.training.checkpoints import checksums
from tests.convert import pickle_writer
from tests.training import test_checkpoints
from tests.training import tiny

_REPO = pathlib.Path(__file__).resolve().parents[2]
_CACHE = tempfile.mkdtemp(prefix="sg3jax-test-jit-cache-")
atexit.register(shutil.rmtree, _CACHE, ignore_errors=True)
_ITERATIONS = 16  # one tick (and one checkpoint) per iteration


def _command(workdir, *flags):
  return [sys.executable, "-m", "sg3jax.train",
          "--config=tests/training/tiny.py", f"--workdir={workdir}",
          f"--config.total_kimg={_ITERATIONS * 0.008}", *flags]


def _env():
  return dict(os.environ, PYTHONPATH=str(_REPO),
              JAX_COMPILATION_CACHE_DIR=_CACHE)


def _run(workdir, *flags, timeout=600):
  return subprocess.run(_command(workdir, *flags), cwd=_REPO, env=_env(),
                        capture_output=True, text=True, timeout=timeout,
                        check=False)


def _losses(stats_path):
  """Per tick: (kimg, G loss, D loss) from stats.jsonl."""
  lines = [json.loads(line) for line in
           pathlib.Path(stats_path).read_text().splitlines()]
  return [(s["Progress/kimg"]["mean"], s["Loss/G/loss"]["mean"],
           s["Loss/D/loss"]["mean"]) for s in lines]


def _training_stats(run):
  """stats.jsonl of a run without its times and memory use (as JSON text,
  so that NaN equals NaN)."""
  lines = [json.loads(line) for line in
           (pathlib.Path(run) / "stats.jsonl").read_text().splitlines()]
  return [json.dumps({k: v for k, v in s.items() if not k.startswith(
      ("Timing/", "Resources/", "timestamp"))}, sort_keys=True)
          for s in lines]


def _assert_same_networks(run, reference):
  ours, theirs = (checkpoints.load_networks(r) for r in (run, reference))
  for name in ("G", "D", "G_ema"):
    jax.tree.map(np.testing.assert_array_equal, ours[name][1],
                 theirs[name][1])


def _truncate_largest_file(step_dir):
  """Cuts the largest file of the checkpoint's networks in half; returns
  its new size."""
  path = max((p for p in (step_dir / "networks").rglob("*") if p.is_file()),
             key=lambda p: p.stat().st_size)
  data = path.read_bytes()
  path.write_bytes(data[:len(data) // 2])
  return len(data) // 2


def _truncate_without_checksums(step_dir):
  """A checkpoint saved before SHA256SUMS, with a truncated file."""
  (step_dir / checksums.SUMS_FILE).unlink()
  _truncate_largest_file(step_dir)


# A checkpoint made unreadable, and a pattern of the problem the warning
# names.
_CORRUPTIONS = {
    "flipped_byte": (
        lambda d: test_checkpoints.flip_byte_in_largest_file(d / "networks"),
        r"networks/ocdbt.process_0/d/\w+: SHA-256 \w+, expected \w+"),
    "truncated_file": (_truncate_largest_file,
                       r"networks/[\w./]+: SHA-256 \w+, expected"),
    "deleted_file": (lambda d: (d / "networks" / "manifest.ocdbt").unlink(),
                     "networks/manifest.ocdbt: missing"),
    "garbled_metadata": (
        lambda d: (d / "meta" / "metadata").write_text('{"counters": {'),
        "meta/metadata: SHA-256"),
    "truncated_file_without_checksums": (_truncate_without_checksums,
                                         "OUT_OF_RANGE"),
}


class TrainRunTest(parameterized.TestCase):
  """Shares one uninterrupted run among the tests."""

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    cls.root = pathlib.Path(tempfile.mkdtemp(prefix="sg3jax-train-test-"))
    cls.reference = cls.root / "reference"
    cls.result = _run(cls.reference)

  @classmethod
  def tearDownClass(cls):
    shutil.rmtree(cls.root, ignore_errors=True)
    super().tearDownClass()

  def setUp(self):
    super().setUp()
    self.assertEqual(self.result.returncode, 0, self.result.stderr[-3000:])

  def test_run_directory(self):
    run = self.reference
    for name in ("config.json", "stats.jsonl", "reals.png", "fakes_init.png",
                 "fakes000000.png"):
      self.assertTrue((run / name).exists(), name)
    self.assertTrue(list(run.glob("events.out.tfevents.*")))
    stats = [json.loads(line) for line in
             (run / "stats.jsonl").read_text().splitlines()]
    self.assertLen(stats, _ITERATIONS)
    first, last = stats[0], stats[-1]
    for key in ("Loss/G/loss", "Loss/D/loss", "Loss/scores/fake",
                "Loss/signs/real", "Timing/sec_per_kimg", "Progress/kimg"):
      self.assertEqual(set(first[key]), {"num", "mean", "std"}, key)
    self.assertIn("timestamp", first)
    # Batch 8: each tick reports 8 G losses; R1 runs every 2nd iteration.
    self.assertEqual(first["Loss/G/loss"]["num"], 8)
    self.assertEqual(first["Loss/r1_penalty"]["num"], 8)
    # A tick without R1 lists it as the official collector does; never
    # reported (no path length in config T): left out.
    self.assertEqual(stats[1]["Loss/r1_penalty"]["num"], 0)
    self.assertTrue(np.isnan(stats[1]["Loss/r1_penalty"]["mean"]))
    self.assertNotIn("Loss/pl_penalty", first)
    self.assertAlmostEqual(last["Progress/kimg"]["mean"], _ITERATIONS * 0.008)
    # The losses move: G and D are being trained.
    g_losses = [s["Loss/G/loss"]["mean"] for s in stats]
    self.assertGreater(np.ptp(g_losses), 0.01)
    self.assertIn(f"tick {_ITERATIONS - 1}", self.result.stdout)
    # Grid 2x2 of 16x16 images; the fakes changed during training.
    init = np.asarray(Image.open(run / "fakes_init.png"), np.float32)
    final = np.asarray(Image.open(run / "fakes000000.png"), np.float32)
    self.assertEqual(init.shape, (32, 32, 3))
    self.assertGreater(np.abs(final - init).mean(), 1.0)
    # Checkpoints: the last 3 are kept.
    ckpts = checkpoints.RunCheckpoints(run)
    self.assertEqual(ckpts.latest_step(), _ITERATIONS)
    meta = ckpts.read_meta(_ITERATIONS)
    ckpts.close()
    self.assertEqual(meta["counters"], {"batch_idx": _ITERATIONS,
                                        "cur_nimg": _ITERATIONS * 8,
                                        "cur_tick": _ITERATIONS})
    self.assertLen(list((run / "checkpoints").iterdir()), 3)
    # Each step's SHA256SUMS covers the files of its four items.
    step_dir = run / "checkpoints" / str(_ITERATIONS)
    sums = checksums.parse_sums(
        (step_dir / checksums.SUMS_FILE).read_text(), step_dir)
    self.assertEqual({name.split("/")[0] for name in sums},
                     {"networks", "optimizer", "meta", "data"})
    checksums.verify(step_dir, ["networks", "optimizer", "meta", "data"])

  def test_generate_reads_the_run_directory(self):
    networks = checkpoints.load_networks(self.reference)
    self.assertEqual(set(networks), {"G", "D", "G_ema"})
    G, variables = networks["G_ema"]
    img = jax.jit(G.apply)(variables, np.zeros((1, G.z_dim), np.float32),
                           np.zeros((1, 0), np.float32))
    self.assertEqual(img.shape, (1, 16, 16, 3))
    self.assertTrue(np.all(np.isfinite(img)))

  def test_kill_and_resume_continues_exactly(self):
    workdir = self.root / "killed"
    proc = subprocess.Popen(_command(workdir), cwd=_REPO, env=_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    deadline = time.time() + 300
    ckpt_dir = workdir / "checkpoints"
    while time.time() < deadline and proc.poll() is None:
      steps = [int(p.name) for p in ckpt_dir.glob("*") if p.name.isdigit()]
      if steps and max(steps) >= 3:
        break
      time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    proc.communicate()
    ckpts = checkpoints.RunCheckpoints(workdir)
    killed_at = ckpts.latest_step()
    ckpts.close()
    self.assertIsNotNone(killed_at)
    self.assertLess(killed_at, _ITERATIONS, "the run ended before the kill")

    resumed = _run(workdir)
    self.assertEqual(resumed.returncode, 0, resumed.stderr[-3000:])
    self.assertIn("resumed", resumed.stdout)
    _assert_same_networks(workdir, self.reference)
    # Same batches and random numbers: identical per-tick losses, and each
    # tick logged once.
    self.assertEqual(_losses(workdir / "stats.jsonl"),
                     _losses(self.reference / "stats.jsonl"))

  def _copy_of_reference(self, name):
    copy = self.root / name
    shutil.copytree(self.reference, copy)
    return copy

  @parameterized.named_parameters(*_CORRUPTIONS.items())
  def test_an_unreadable_latest_checkpoint_is_skipped(self, corruption):
    corrupt, problem = corruption
    run = self._copy_of_reference(self._testMethodName)
    corrupt(run / "checkpoints" / str(_ITERATIONS))
    with self.assertWarnsRegex(
        RuntimeWarning, f"skipping checkpoint {_ITERATIONS}, unreadable: "
        f".*{problem}"):
      step, loaded = checkpoints.load_run_networks(run)
    self.assertEqual(step, _ITERATIONS - 1)
    _, previous = checkpoints.load_run_networks(self.reference,
                                                _ITERATIONS - 1)
    for name in ("G", "D", "G_ema"):
      jax.tree.map(np.testing.assert_array_equal, loaded[name][1],
                   previous[name][1])
    # Reading moves nothing.
    self.assertTrue((run / "checkpoints" / str(_ITERATIONS)).is_dir())

  def test_no_readable_checkpoint_stops_the_resume(self):
    run = self._copy_of_reference("all_garbled")
    steps = [_ITERATIONS - 2, _ITERATIONS - 1, _ITERATIONS]
    for step in steps:
      _CORRUPTIONS["garbled_metadata"][0](run / "checkpoints" / str(step))
    cfg = tiny.tiny_config()
    cfg.total_kimg = _ITERATIONS * 0.008
    with self.assertWarnsRegex(RuntimeWarning,
                               f"skipping checkpoint {_ITERATIONS}"):
      with self.assertRaisesRegex(
          ValueError, f"no readable checkpoint: step {steps[2]}: "
          "ValueError: .*meta/metadata: SHA-256 .*; "
          f"step {steps[1]}: .*; step {steps[0]}: "):
        loop.train(cfg, run)
    # Nothing was moved or deleted.
    self.assertEqual(sorted(int(p.name) for p in
                            (run / "checkpoints").iterdir()), steps)
    self.assertFalse((run / checkpoints.UNREADABLE_DIR).exists())

  def test_resume_sets_aside_a_flipped_byte_and_continues_exactly(self):
    # A bit flip in an array chunk of the optimizer state still decodes;
    # its checksum finds it.
    run = self._copy_of_reference("flipped")
    step_dir = run / "checkpoints" / str(_ITERATIONS)
    flipped = test_checkpoints.flip_byte_in_largest_file(
        step_dir / "optimizer")
    content = flipped.read_bytes()
    resumed = _run(run)
    self.assertEqual(resumed.returncode, 0, resumed.stderr[-3000:])
    self.assertRegex(resumed.stderr, f"skipping checkpoint {_ITERATIONS}, "
                     f"unreadable: ValueError: {step_dir}: "
                     f"{flipped.relative_to(step_dir)}: SHA-256")
    self.assertIn(f"(iteration {_ITERATIONS - 1})", resumed.stdout)
    # The damaged checkpoint was set aside, not deleted.
    aside = run / checkpoints.UNREADABLE_DIR / str(_ITERATIONS)
    self.assertIn(f"moved unreadable checkpoint {_ITERATIONS} to {aside}",
                  resumed.stderr)
    self.assertEqual(
        (aside / flipped.relative_to(step_dir)).read_bytes(), content)
    # The last iteration ran again, as in the uninterrupted run.
    _assert_same_networks(run, self.reference)
    self.assertEqual(_losses(run / "stats.jsonl"),
                     _losses(self.reference / "stats.jsonl"))

  def test_visualizer_skips_a_damaged_latest_checkpoint(self):
    run = self._copy_of_reference("visualized")
    step_dir = run / "checkpoints" / str(_ITERATIONS)
    flipped = test_checkpoints.flip_byte_in_largest_file(
        step_dir / "networks")
    with self.assertWarnsRegex(
        RuntimeWarning, f"skipping checkpoint {_ITERATIONS}, unreadable: "
        f".*{flipped.relative_to(step_dir)}: SHA-256"):
      session = visualizer.Session(str(run))
    self.assertIsNone(session.error)
    self.assertEqual(session.current, {"path": str(run),
                                       "step": _ITERATIONS - 1})
    _, previous = checkpoints.load_run_networks(self.reference,
                                                _ITERATIONS - 1)
    jax.tree.map(np.testing.assert_array_equal, session.renderer.variables,
                 previous["G_ema"][1])
    # Asked for by name, the damaged step is an error naming the file.
    with self.assertRaisesRegex(
        ValueError, f"{flipped.relative_to(step_dir)}: SHA-256"):
      session.load(str(run), _ITERATIONS)

  def test_divergence_stops_without_saving(self):
    networks = checkpoints.load_networks(self.reference)
    d_variables = jax.tree.map(np.asarray, networks["D"][1])
    d_variables["params"]["b4"]["out"]["weight"] = np.full_like(
        d_variables["params"]["b4"]["out"]["weight"], np.nan)
    poisoned = self.root / "poisoned"
    checkpoints.save_networks(poisoned, {
        name: checkpoints.Network(
            "Discriminator" if name == "D" else "Generator",
            tiny_kwargs(self.reference, name),
            d_variables if name == "D" else networks[name][1])
        for name in ("G", "D", "G_ema")})
    workdir = self.root / "diverged"
    result = _run(workdir, f"--config.resume={poisoned}")
    self.assertNotEqual(result.returncode, 0)
    self.assertIn("NaN/Inf", result.stderr)
    self.assertFalse([p for p in (workdir / "checkpoints").glob("*")
                      if p.name.isdigit()])


def tiny_kwargs(run, name):
  ckpts = checkpoints.RunCheckpoints(run)
  try:
    return ckpts.read_meta(ckpts.latest_step())["networks"][name][
        "init_kwargs"]
  finally:
    ckpts.close()


class TwoProcessTest(absltest.TestCase):
  """Two processes of 2 CPU devices each (jax.distributed on localhost)."""

  def launch(self, workdir, *flags, sigterm_after_step=None):
    """Runs the training command on both processes; their stdouts.

    With `sigterm_after_step`, process 1 alone gets SIGTERM once that
    checkpoint exists.
    """
    port = portpicker.pick_unused_port()
    # No persistent compilation cache: its keys differ between processes
    # and only process 0 writes it, so process 0 alone would load the
    # programs while process 1 compiles them; on a loaded machine the gap
    # outlasts gloo's 30 s wait for the first collective.
    env = {k: v for k, v in _env().items()
           if k != "JAX_COMPILATION_CACHE_DIR"}
    procs = [subprocess.Popen(
        [sys.executable, "-m", "sg3jax.train",
         "--config=tests/training/tiny.py", f"--workdir={workdir}",
         "--config.batch_size=16", *flags,
         f"--coordinator_address=127.0.0.1:{port}", "--num_processes=2",
         f"--process_id={i}", "--cpu_devices=2"],
        cwd=_REPO, env=env, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True) for i in range(2)]
    if sigterm_after_step is not None:
      checkpoint_dir = workdir / "checkpoints" / str(sigterm_after_step)
      deadline = time.time() + 300
      while (time.time() < deadline and not checkpoint_dir.exists() and
             procs[1].poll() is None):
        time.sleep(0.01)
      procs[1].send_signal(signal.SIGTERM)
    outs = [p.communicate(timeout=600) for p in procs]
    for proc, (_, err) in zip(procs, outs):
      self.assertEqual(proc.returncode, 0, err[-3000:])
    return [out for out, _ in outs]

  def test_sigterm_to_one_process_checkpoints_and_resumes_exactly(self):
    root = pathlib.Path(self.create_tempdir().full_path)
    iterations = 8  # of 16 images
    # Tick 0 is the first iteration, tick 1 the others: a preemption after
    # checkpoint 1 stops mid-tick.
    flags = (f"--config.total_kimg={iterations * 0.016}",
             "--config.tick_kimg=10")
    reference = self.launch(root / "reference", *flags)
    self.assertIn("on 4 devices (2 processes)", reference[0])
    self.assertIn("tick 1 ", reference[0])
    self.assertNotIn("tick", reference[1])  # only process 0 logs

    workdir = root / "preempted"
    preempted = self.launch(workdir, *flags, sigterm_after_step=1)
    for out in preempted:
      self.assertIn("preempted: stopped at", out)
    ckpts = checkpoints.RunCheckpoints(workdir)
    stopped_at = ckpts.latest_step()
    meta = ckpts.read_meta(stopped_at)
    ckpts.close()
    self.assertLess(stopped_at, iterations, "the run ended before SIGTERM")
    # The tick in progress was saved with the checkpoint: it began after
    # iteration 1 and had 16 G losses per iteration since.
    self.assertEqual(meta["tick"]["start_nimg"], 16)
    self.assertEqual(meta["tick"]["reports"]["Loss/G/loss"][0],
                     16 * (stopped_at - 1))
    self.assertLen((workdir / "stats.jsonl").read_text().splitlines(), 1)

    resumed = self.launch(workdir, *flags)
    self.assertIn(f"(iteration {stopped_at})", resumed[0])
    _assert_same_networks(workdir, root / "reference")
    self.assertEqual(_training_stats(workdir),
                     _training_stats(root / "reference"))


def _params(variables):
  return {jax.tree_util.keystr(k): np.asarray(v) for k, v in
          jax.tree_util.tree_leaves_with_path(variables["params"])}


class InProcessTrainTest(absltest.TestCase):
  """Short in-process runs: transfer from an official pickle, Freeze-D."""

  def test_resume_from_an_official_pickle(self):
    cfg = tiny.tiny_config()
    cfg.total_kimg = 0.008  # one iteration
    # "Official" networks: the tiny config initialized with another seed,
    # written as an official snapshot.
    source_cfg = tiny.tiny_config()
    source_cfg.seed = 7
    nets = loop.build_networks(source_cfg,
                               loop.open_training_set(source_cfg))
    g_vars, d_vars = nets.init()
    pkl = pathlib.Path(self.create_tempdir().full_path) / "snapshot.pkl"
    pkl.write_bytes(pickle_writer.snapshot_bytes({
        "G": (nets.G, g_vars, nets.g_kwargs),
        "D": (nets.D, d_vars, nets.d_kwargs),
        "G_ema": (nets.G, g_vars, nets.g_kwargs)}))
    # With zero learning rates the run ends where it started: on the
    # pickle's weights, not on its own seed-0 initialization.
    cfg.resume = str(pkl)
    cfg.optim.G_lr = 0.0
    cfg.optim.D_lr = 0.0
    workdir = self.create_tempdir().full_path
    loop.train(cfg, workdir)
    trained = checkpoints.load_networks(workdir)
    own_g, _ = loop.build_networks(cfg, loop.open_training_set(cfg)).init()
    for name, expected in (("G", g_vars), ("D", d_vars), ("G_ema", g_vars)):
      got = _params(trained[name][1])
      for key, value in _params(expected).items():
        np.testing.assert_array_equal(got[key], value, err_msg=name + key)
    self.assertFalse(np.array_equal(
        _params(trained["G"][1])["['mapping']['fc0']['weight']"],
        _params(own_g)["['mapping']['fc0']['weight']"]))
    # The run's config is the one official --resume trains with.
    used = json.loads((pathlib.Path(workdir) / "config.json").read_text())
    self.assertEqual((used["augment"]["kimg"], used["ema_rampup"],
                      used["loss"]["blur_init_sigma"]), (100.0, None, 0.0))

  def test_resume_from_a_pickle_of_another_config_names_the_problems(self):
    cfg = tiny.tiny_config()
    other = tiny.tiny_config()
    other.G.z_dim = 8
    nets = loop.build_networks(other, loop.open_training_set(other))
    g_vars, d_vars = nets.init()
    pkl = pathlib.Path(self.create_tempdir().full_path) / "other.pkl"
    pkl.write_bytes(pickle_writer.snapshot_bytes({
        "G": (nets.G, g_vars, nets.g_kwargs),
        "D": (nets.D, d_vars, nets.d_kwargs)}))
    cfg.resume = str(pkl)
    with self.assertRaisesRegex(
        ValueError, r"resume .*other.pkl: G does not match the config "
        r"\(1 problem\): \['params'\]\['mapping'\]\['fc0'\]\['weight'\]: "
        r"expected shape \(16, \d+\), got \(8, \d+\)"):
      loop.train(cfg, self.create_tempdir().full_path)

  def test_freeze_d_keeps_the_first_layers(self):
    cfg = tiny.tiny_config()
    cfg.total_kimg = 0.016  # two iterations, one with R1
    cfg.D.freeze_layers = 4  # the whole b16 block
    workdir = self.create_tempdir().full_path
    loop.train(cfg, workdir)
    _, d_init = loop.build_networks(cfg, loop.open_training_set(cfg)).init()
    networks = checkpoints.load_networks(workdir)
    d_module, d_trained = networks["D"]
    before, after = _params(d_init), _params(d_trained)
    for key in before:
      if key.startswith("['b16']"):
        np.testing.assert_array_equal(after[key], before[key], err_msg=key)
      elif key.endswith("['weight']"):
        self.assertFalse(np.array_equal(after[key], before[key]), key)
    meta = json.loads((pathlib.Path(workdir) / "config.json").read_text())
    self.assertEqual(meta["D"]["freeze_layers"], 4)
    self.assertEqual(d_module.img_resolution, 16)


  def test_stylegan2_trains_with_path_length_and_noise(self):
    cfg = tiny.load_experiment("tiny.py", "stylegan2")
    cfg.total_kimg = 0.032  # 4 iterations; Greg on the 1st and 3rd
    workdir = pathlib.Path(self.create_tempdir().full_path)
    loop.train(cfg, workdir)
    stats = [json.loads(line) for line in
             (workdir / "stats.jsonl").read_text().splitlines()]
    self.assertLen(stats, 4)
    # Path length on batch 8 / pl_batch_shrink 2 every 2nd iteration.
    self.assertEqual([s["Loss/pl_penalty"]["num"] for s in stats],
                     [4, 0, 4, 0])
    self.assertTrue(all(np.isfinite(s["Loss/G/reg"]["mean"])
                        for s in stats[0::2]))
    networks = checkpoints.load_networks(workdir)
    G, g_trained = networks["G"]
    self.assertIsInstance(G, nets_lib.StyleGAN2Generator)
    g_init, _ = loop.build_networks(cfg, loop.open_training_set(cfg)).init()
    before, after = _params(g_init), _params(g_trained)
    # Noise strengths start at 0 and learn: fresh noise reaches the loss.
    strengths = [k for k in before if k.endswith("['noise_strength']")]
    self.assertLen(strengths, 5)
    for key in strengths:
      self.assertEqual(float(before[key]), 0.0)
      self.assertNotEqual(float(after[key]), 0.0, key)
    state = checkpoints.RunCheckpoints(workdir)
    meta = state.read_meta(state.latest_step())
    state.close()
    self.assertEqual(meta["networks"]["G"]["class_name"],
                     "StyleGAN2Generator")


  def test_ada_adapts_p_and_resume_keeps_it_with_the_compiled_step(self):
    cfg = tiny.tiny_config()
    cfg.augment.mode = "ada"
    cfg.augment.p = 0.5
    cfg.augment.target = 0.0
    cfg.augment.interval = 2
    cfg.augment.kimg = 0.1  # p moves by 8 * 2 / 100 per adjustment
    workdir = pathlib.Path(self.create_tempdir().full_path)
    compiled = {}
    # 4 iterations of one tick each, then resumed for 2 more.
    for run, total_kimg in (("first", 0.032), ("resumed", 0.048)):
      cfg.total_kimg = total_kimg
      with jax.log_compiles(True), self.assertLogs(
          "jax._src.interpreters.pxla", "WARNING") as logs:
        loop.train(cfg, workdir)
      compiled[run] = {m.split("Compiling ")[1].split(" ")[0]
                       for m in logs.output if "Compiling " in m}
    # The resumed training in this process reused the step programs.
    self.assertContainsSubset({"jit(step)", "jit(_finish)"},
                              compiled["first"])
    self.assertNoCommonElements({"jit(step)", "jit(_finish)"},
                                compiled["resumed"])
    stats = [json.loads(line) for line in
             (workdir / "stats.jsonl").read_text().splitlines()]
    self.assertLen(stats, 6)

    # Official heuristic after every 2nd iteration: p += 0.16 *
    # sign(mean sign(D(reals)) over those iterations - target), p >= 0.
    expected, p = [], 0.5
    for tick, s in enumerate(stats):
      if tick % 2 == 1:
        signs = [stats[t]["Loss/signs/real"] for t in (tick - 1, tick)]
        mean = sum(x["num"] * x["mean"] for x in signs) / sum(
            x["num"] for x in signs)
        p = max(p + 0.16 * np.sign(mean), 0.0)
      expected.append(p)
    got = [s["Progress/augment"]["mean"] for s in stats]
    np.testing.assert_allclose(got, expected, atol=1e-6)
    self.assertGreater(len(set(np.round(got, 6))), 1)  # p moved

  def test_augment_pipe_only_where_the_official_loop_builds_one(self):
    cfg = tiny.tiny_config()
    cfg.augment.mode = "fixed"
    self.assertIsNotNone(loop.loss_config(cfg).augment)  # p 0.2
    cfg.augment.p = 0.0  # official: no pipe for --aug=fixed --p=0
    self.assertIsNone(loop.loss_config(cfg).augment)
    cfg.augment.mode = "ada"
    loss = loop.loss_config(cfg)
    self.assertEqual((loss.augment is None, loss.ada_target), (False, 0.6))
    cfg.augment.mode = "noaug"
    cfg.augment.p = 0.3
    self.assertIsNone(loop.loss_config(cfg).augment)

  def test_bad_augment_settings(self):
    cfg = tiny.tiny_config()
    cfg.augment.mode = "always"
    with self.assertRaisesRegex(ValueError, "config.augment.mode: expected "
                                r"one of \('ada', 'fixed', 'noaug'\), got "
                                "'always'"):
      loop.train(cfg, self.create_tempdir().full_path)
    cfg.augment.mode = "fixed"
    cfg.augment.pipe = "bgx"
    with self.assertRaisesRegex(ValueError, "augment pipeline: expected"):
      loop.train(cfg, self.create_tempdir().full_path)


class BadConfigTest(absltest.TestCase):

  def test_batch_not_divisible(self):
    cfg = tiny.tiny_config()
    cfg.batch_size = 6
    cfg.batch_gpu = 4
    with self.assertRaisesRegex(ValueError, "batch_size 6 must be a multiple"):
      loop.train(cfg, self.create_tempdir().full_path)

  def test_batch_gpu_below_mbstd_group(self):
    cfg = tiny.tiny_config()
    cfg.batch_gpu = 2
    with self.assertRaisesRegex(ValueError, "mbstd_group_size 4"):
      loop.train(cfg, self.create_tempdir().full_path)

  def test_missing_dataset(self):
    cfg = tiny.tiny_config()
    cfg.data = "/nonexistent/images.zip"
    with self.assertRaisesRegex(ValueError, "/nonexistent/images.zip"):
      loop.train(cfg, self.create_tempdir().full_path)


if __name__ == "__main__":
  absltest.main()
