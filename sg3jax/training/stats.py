"""Training statistics in the official formats.

Per tick, every statistic is `{"num", "mean", "std"}` over the values
reported during the tick (official torch_utils/training_stats); one JSON
line per tick goes to `stats.jsonl` (plus "timestamp"), and each mean to
TensorBoard under the same name at step int(kimg).
"""

import json
import pathlib
import time
from collections.abc import Mapping, Set

import numpy as np

Stat = dict[str, float]


def summarize(moments: Mapping[str, np.ndarray],
              names: Set[str] = frozenset()) -> dict[str, Stat]:
  """{name: {num, mean, std}} from `[count, sum, sum of squares]` moments.

  Names with values this tick, and those of `names` without values as
  {num: 0, mean: nan, std: nan}: the official collector lists every name
  reported since the process started, so pass the names reported so far.
  """
  result = {}
  for name, (count, total, total_sq) in moments.items():
    count, total, total_sq = float(count), float(total), float(total_sq)
    if count == 0:
      if name in names:
        result[name] = {"num": 0, "mean": float("nan"), "std": float("nan")}
      continue
    mean = total / count
    std = float(np.sqrt(max(total_sq / count - mean * mean, 0.0)))
    result[name] = {"num": int(count), "mean": mean, "std": std}
  return result


def scalar(value: float) -> Stat:
  """A statistic reported once (official `report0`)."""
  return {"num": 1, "mean": float(value), "std": 0.0}


class StatsLog:
  """stats.jsonl + TensorBoard events of a run directory (process 0).

  On resume, `stats.jsonl` is cut back to the `lines` the checkpoint had
  written, so that ticks replayed after a crash appear once.
  """

  def __init__(self, run_dir: str | pathlib.Path, *, lines: int = 0):
    from tensorboardX import SummaryWriter  # pylint: disable=g-import-not-at-top
    self.path = pathlib.Path(run_dir) / "stats.jsonl"
    kept = []
    if self.path.exists():
      kept = self.path.read_text().splitlines(keepends=True)[:lines]
    self.path.write_text("".join(kept))
    self.lines = len(kept)
    self._file = self.path.open("a")
    self._events = SummaryWriter(str(run_dir))

  def write(self, stats: Mapping[str, Stat], *, cur_nimg: int,
            walltime: float) -> None:
    timestamp = time.time()
    self._file.write(json.dumps({**stats, "timestamp": timestamp}) + "\n")
    self._file.flush()
    self.lines += 1
    for name, value in stats.items():
      self._events.add_scalar(name, value["mean"],
                              global_step=int(cur_nimg / 1e3),
                              walltime=walltime)
    self._events.flush()

  def close(self) -> None:
    self._file.close()
    self._events.close()


def format_time(seconds: float) -> str:
  """Official dnnlib.util.format_time: 12s, 3m 04s, 2h 05m 00s, 1d 02h 03m."""
  s = int(np.rint(seconds))
  if s < 60:
    return f"{s}s"
  if s < 60 * 60:
    return f"{s // 60}m {s % 60:02d}s"
  if s < 24 * 60 * 60:
    return f"{s // 3600}h {(s // 60) % 60:02d}m {s % 60:02d}s"
  return f"{s // 86400}d {(s // 3600) % 24:02d}h {(s // 60) % 60:02d}m"


def tick_line(stats: Mapping[str, Stat]) -> str:
  """The official status line, with the G and D losses appended."""
  def mean(name, default=float("nan")):
    return stats[name]["mean"] if name in stats else default
  fields = [
      f"tick {int(mean('Progress/tick')):<5d}",
      f"kimg {mean('Progress/kimg'):<8.1f}",
      f"time {format_time(mean('Timing/total_sec')):<12s}",
      f"sec/tick {mean('Timing/sec_per_tick'):<7.1f}",
      f"sec/kimg {mean('Timing/sec_per_kimg'):<7.2f}",
      f"maintenance {mean('Timing/maintenance_sec'):<6.1f}",
      f"cpumem {mean('Resources/cpu_mem_gb'):<6.2f}",
      f"loss/G {mean('Loss/G/loss'):<7.3f}",
      f"loss/D {mean('Loss/D/loss'):<7.3f}",
      f"r1 {mean('Loss/r1_penalty'):<8.4f}",
  ]
  return " ".join(fields)
