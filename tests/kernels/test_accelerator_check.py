"""experiments/accelerator_check.py runs end to end (--smoke, on the CPU:
the kernel interpreted, tiny shapes) and writes its JSON report."""

import json
import os
import pathlib
import subprocess
import sys
import tempfile

from absl.testing import absltest

_REPO = pathlib.Path(__file__).resolve().parents[2]


class AcceleratorCheckSmokeTest(absltest.TestCase):

  def test_smoke_report(self):
    out_file = pathlib.Path(tempfile.mkdtemp()) / "check.json"
    env = dict(os.environ, PYTHONPATH=str(_REPO))
    out = subprocess.run(
        [sys.executable, str(_REPO / "experiments" / "accelerator_check.py"),
         "--smoke", f"--out={out_file}"],
        cwd=_REPO, env=env, capture_output=True, text=True, check=False)
    self.assertEqual(out.returncode, 0, out.stderr[-3000:])
    report = json.loads(out_file.read_text())
    self.assertTrue(report["smoke"])
    self.assertNotEmpty(report["layers"])
    for row in report["layers"]:
      # bf16 layers (all of them at 16²): the kernel rounds only its
      # output (2^-8 relative); the XLA path rounds every stage.
      self.assertLess(row["err_y_kernel"], 2 ** -7, row["layer"])
      self.assertLess(row["err_dx_kernel"], 2 ** -7, row["layer"])
      self.assertLess(row["mb"]["fused_forward"], row["mb"]["xla_forward"])
      self.assertLess(row["mb"]["fused_backward"],
                      row["mb"]["xla_backward"])
    self.assertEqual({r["impl"] for r in report["generator"]},
                     {"auto", "xla"})
    for row in report["generator"] + report["training"]:
      self.assertTrue(all(v > 0 for k, v in row.items()
                          if k.endswith("_ms") or k == "s_per_kimg"))
    self.assertIn("stylegan3-t", {r["config"] for r in report["training"]})
    self.assertIn("s/kimg", out.stdout)


if __name__ == "__main__":
  absltest.main()
