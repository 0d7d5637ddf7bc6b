"""Ablation sweeps: variants of a training config, their metrics at init
and after a short training run, in one table.

A sweep config (ml-collections; `experiments/filter_sweep.py`) holds:

  base        the training config every variant starts from.
  variants    tuple of (name, changes): `changes` is comma-separated
              `key=value` overrides of `base`, e.g.
              "G.conv_kernel=1, G.use_radial_filters=True" (values are
              Python literals; a bare word is a string); "" is the base.
  only        comma-separated variant names to run ("" = all), in order.
  train_kimg  length of each variant's training run (0 = init only).
  metrics     names from `sg3jax.metrics.metric_main` (a tuple, or
              comma-separated as `--config.metrics=a,b`): equivariance
              (eqt50k_int, ...; PSNR dB) or those with a detector
              (fid50k_full, kid50k_full, pr50k3_full, ppl2_wend, ...),
              which use each variant's `data` and `detector_dir`.
  eq_num      samples per metric (for fid50k, kid50k, pr50k3 also the
              real images); eq_batch samples per step (0 = the default);
              seed of the metric sampling.

`run_sweep(sweep_cfg, workdir)` writes into `workdir`: `sweep_config.json`,
`runs/<variant>/` (each training run, a normal run directory),
`results.jsonl` (one line per variant and stage, appended as soon as it is
measured), and the summary `sweep.json`, `sweep.md` and `sweep.png`. Running
it again on the same workdir skips every (variant, stage) already in
`results.jsonl` and resumes unfinished training runs, so a long sweep
survives interruption; a workdir holding a different sweep is refused.

On SIGTERM (a preempted job) the sweep stops and raises
`preemption.Preempted`: a variant in training writes a checkpoint at its
next iteration; a measurement in progress is abandoned at once (its only
write, a dataset statistics cache file, is atomic; the resumed sweep
measures again). Resuming gives the table of an uninterrupted sweep.
"""

import ast
import copy
import json
import os
import pathlib
import re
import time
from collections.abc import Mapping, Sequence
from typing import Any

import ml_collections

from sg3jax.metrics import metric_main
from sg3jax.training import checkpoints
from sg3jax.training import loop
from sg3jax.training import preemption

INIT = "init"
TRAINED = "trained"
METRIC_LABELS = {"eqt50k_int": "EQ-T", "eqt50k_frac": "EQ-T_frac",
                 "eqr50k": "EQ-R"}
# Axis labels of the figure's panels (the other metrics as official).
METRIC_UNITS = {name: "PSNR (dB)" for name in METRIC_LABELS}
# Sweep fields that only choose what to run now; they may change between
# runs on one workdir.
_SELECTION_FIELDS = ("only",)
_ASSIGNMENT = re.compile(r",\s*(?=[A-Za-z_][\w.]*\s*=)")


def parse_changes(changes: str, *, variant: str) -> dict[str, Any]:
  """"G.filter_size=1, G.filter_design=lanczos" -> {dotted key: value}."""
  parsed = {}
  for item in _ASSIGNMENT.split(changes.strip()) if changes.strip() else ():
    key, sep, text = item.partition("=")
    key, text = key.strip(), text.strip()
    if not sep or not key or not text:
      raise ValueError(f"variant {variant!r}: expected key=value, got "
                       f"{item!r} in {changes!r}")
    try:
      parsed[key] = ast.literal_eval(text)
    except (ValueError, SyntaxError):
      parsed[key] = text
  return parsed


def apply_changes(base: ml_collections.ConfigDict, changes: Mapping[str, Any],
                  *, variant: str) -> ml_collections.ConfigDict:
  """A copy of `base` with dotted-key `changes` set (unknown keys and
  wrong types raise ValueError naming the variant and key)."""
  cfg = copy.deepcopy(base)
  for dotted, value in changes.items():
    *parents, leaf = dotted.split(".")
    node = cfg
    for i, part in enumerate(parents):
      if part not in node or not isinstance(node[part],
                                            ml_collections.ConfigDict):
        raise ValueError(f"variant {variant!r}: no config group "
                         f"{'.'.join(parents[:i + 1])!r} (in {dotted!r})")
      node = node[part]
    if leaf not in node:
      raise ValueError(f"variant {variant!r}: unknown config key "
                       f"{dotted!r}")
    try:
      node[leaf] = value
    except TypeError as e:
      raise ValueError(f"variant {variant!r}: {dotted}={value!r}: {e}"
                       ) from None
  return cfg


def selected_variants(sweep: ml_collections.ConfigDict
                      ) -> list[tuple[str, str]]:
  """(name, changes) of the variants to run, in `only`'s order if given."""
  variants = dict(tuple(v) for v in sweep.variants)
  if len(variants) != len(sweep.variants):
    raise ValueError("variants: names must be unique, got "
                     f"{[v[0] for v in sweep.variants]}")
  names = ([n.strip() for n in sweep.only.split(",") if n.strip()]
           if sweep.only else list(variants))
  unknown = [n for n in names if n not in variants]
  if unknown:
    raise ValueError(f"only: unknown variants {unknown}; expected names "
                     f"from {list(variants)}")
  return [(name, variants[name]) for name in names]


def metric_names(sweep: ml_collections.ConfigDict) -> list[str]:
  """`sweep.metrics`, a tuple of names, comma-separated ones split (as
  `--config.metrics=a,b` sets it)."""
  return [name.strip() for item in sweep.metrics
          for name in str(item).split(",") if name.strip()]


def _check_sweep(sweep: ml_collections.ConfigDict) -> None:
  valid = metric_main.list_valid_metrics()
  names = metric_names(sweep)
  bad = [m for m in names if m not in valid]
  if bad or not names:
    raise ValueError(f"metrics: expected names from {valid}, got {names}")
  if sweep.train_kimg < 0:
    raise ValueError(f"train_kimg: expected >= 0, got {sweep.train_kimg}")
  if sweep.eq_num < 1:
    raise ValueError(f"eq_num: expected >= 1, got {sweep.eq_num}")
  for name, changes in selected_variants(sweep):
    cfg = apply_changes(sweep.base, parse_changes(changes, variant=name),
                        variant=name)
    metric_main.check_detectors(names, cfg.detector_dir or None)


def _definition(sweep: ml_collections.ConfigDict) -> dict[str, Any]:
  """The sweep as JSON, without the fields that only select variants."""
  d = json.loads(json.dumps(sweep.to_dict(), default=str))
  for field in _SELECTION_FIELDS:
    d.pop(field, None)
  return d


def _changed_fields(a: dict, b: dict, prefix: str = "") -> list[str]:
  """Dotted names of the fields (nested ones spelled out) where a != b."""
  changed = []
  for key in sorted(set(a) | set(b)):
    if isinstance(a.get(key), dict) and isinstance(b.get(key), dict):
      changed += _changed_fields(a[key], b[key], f"{prefix}{key}.")
    elif a.get(key) != b.get(key):
      changed.append(prefix + key)
  return changed


def _claim_workdir(workdir: pathlib.Path, definition: dict) -> None:
  """Writes sweep_config.json, or checks the one there is this sweep."""
  path = workdir / "sweep_config.json"
  if path.exists():
    existing = json.loads(path.read_text())
    if existing != definition:
      changed = _changed_fields(existing, definition)
      raise ValueError(f"{workdir} holds a different sweep (fields "
                       f"{changed} differ from {path}); use a new workdir")
    return
  workdir.mkdir(parents=True, exist_ok=True)
  tmp = path.with_suffix(".json.tmp")
  tmp.write_text(json.dumps(definition, indent=2))
  tmp.replace(path)


def read_results(workdir: str | pathlib.Path) -> list[dict[str, Any]]:
  """The rows of `workdir/results.jsonl` (empty if none yet); a last line
  without its newline (a crash mid-append) does not count."""
  path = pathlib.Path(workdir) / "results.jsonl"
  if not path.exists():
    return []
  complete = path.read_text().split("\n")[:-1]
  rows = []
  for lineno, line in enumerate(complete, 1):
    try:
      rows.append(json.loads(line))
    except json.JSONDecodeError:
      raise ValueError(f"{path}:{lineno}: not a JSON line: {line[:80]!r}"
                       ) from None
  return rows


def _drop_partial_line(path: pathlib.Path) -> None:
  """Cuts a partial last line (a crash mid-append) so appends stay whole."""
  if not path.exists():
    return
  text = path.read_text()
  if text and not text.endswith("\n"):
    tmp = path.with_suffix(".jsonl.tmp")
    tmp.write_text(text[:text.rfind("\n") + 1])
    tmp.replace(path)


def measure(G, variables, sweep: ml_collections.ConfigDict,
            cfg: ml_collections.ConfigDict) -> dict[str, float]:
  """{result name: value} of one generator over the sweep's metrics (the
  dataset metrics on the variant's `cfg.data`)."""
  results = {}
  for metric in metric_names(sweep):
    results.update(metric_main.calc_metric(
        metric, G, variables, num=sweep.eq_num,
        batch=sweep.eq_batch or None, seed=sweep.seed, progress=False,
        data=os.path.expanduser(cfg.data),
        detector_dir=cfg.detector_dir or None)["results"])
  return results


def result_columns(metrics: Sequence[str]) -> list[str]:
  """The table's value columns: each metric's result names."""
  return [key for m in metrics for key in metric_main.result_names(m)]


def _format(column: str, value: float) -> str:
  return f"{value:.2f}" if column in METRIC_UNITS else f"{value:.4g}"


def _stage_networks(cfg: ml_collections.ConfigDict, stage: str,
                    run_dir: pathlib.Path):
  """(G, variables) a variant is measured on: fresh, or the G_ema of its
  finished training run (with the same module, so the metric programs are
  reused)."""
  nets = loop.build_networks(cfg, loop.open_training_set(cfg))
  if stage == INIT:
    g_vars, _ = nets.init()
    return nets.G, g_vars
  _, g_ema = checkpoints.load_generator(run_dir)
  return nets.G, g_ema


def _stage_results(sweep: ml_collections.ConfigDict,
                   cfg: ml_collections.ConfigDict, stage: str,
                   run_dir: pathlib.Path,
                   notice: preemption.PreemptionNotice) -> dict[str, float]:
  """{result name: value} of a variant at `stage`, training it first for
  TRAINED (or resuming its run); `Preempted` on a notice."""
  if stage == TRAINED:
    loop.train(cfg, run_dir, notice=notice)
  with notice.interruptible():
    G, variables = _stage_networks(cfg, stage, run_dir)
    return measure(G, variables, sweep, cfg)


def run_sweep(sweep: ml_collections.ConfigDict, workdir: str | pathlib.Path
              ) -> list[dict[str, Any]]:
  """Runs (or resumes) the sweep in `workdir`; returns the table rows.

  Raises `preemption.Preempted` (after checkpointing a variant in
  training) on SIGTERM; see the module docstring.
  """
  _check_sweep(sweep)
  workdir = pathlib.Path(workdir).absolute()
  _claim_workdir(workdir, _definition(sweep))
  _drop_partial_line(workdir / "results.jsonl")
  done = {(r["variant"], r["stage"]) for r in read_results(workdir)}
  stages = (INIT, TRAINED) if sweep.train_kimg > 0 else (INIT,)
  with preemption.PreemptionNotice() as notice:
    for name, changes in selected_variants(sweep):
      cfg = apply_changes(sweep.base, parse_changes(changes, variant=name),
                          variant=name)
      cfg.total_kimg = float(sweep.train_kimg)
      for stage in stages:
        if (name, stage) in done:
          continue
        start = time.time()
        try:
          results = _stage_results(sweep, cfg, stage,
                                   workdir / "runs" / name, notice)
        except preemption.Preempted as e:
          raise preemption.Preempted(
              f"sweep preempted at variant {name} ({stage}): {e}") from e
        row = {"variant": name, "changes": changes, "stage": stage,
               "kimg": 0.0 if stage == INIT else float(sweep.train_kimg),
               **results, "seconds": round(time.time() - start, 1)}
        with open(workdir / "results.jsonl", "at", encoding="utf-8") as f:
          f.write(json.dumps(row) + "\n")
        print(f"sweep {name} ({stage}): " + ", ".join(
            f"{METRIC_LABELS.get(k, k)} {_format(k, row[k])}"
            for k in result_columns(metric_names(sweep))), flush=True)
  rows = summary_rows(read_results(workdir), selected_variants(sweep))
  write_summary(rows, sweep, workdir)
  return rows


def summary_rows(results: Sequence[Mapping[str, Any]],
                 variants: Sequence[tuple[str, str]]
                 ) -> list[dict[str, Any]]:
  """The selected variants' results in sweep order (init before trained)."""
  order = {name: i for i, (name, _) in enumerate(variants)}
  rows = [dict(r) for r in results if r["variant"] in order]
  return sorted(rows, key=lambda r: (order[r["variant"]], r["stage"] != INIT))


def markdown_table(rows: Sequence[Mapping[str, Any]],
                   metrics: Sequence[str]) -> str:
  """One line per variant; a column per result (`result_columns`) and
  stage (EQ: PSNR dB, 2 decimals; others: 4 significant digits)."""
  stages = [s for s in (INIT, TRAINED) if any(r["stage"] == s for r in rows)]
  kimg = {r["stage"]: r["kimg"] for r in rows}
  headers = ["variant", "changes"] + [
      f"{METRIC_LABELS.get(m, m)} {'init' if s == INIT else f'{kimg[s]:g} kimg'}"
      for s in stages for m in result_columns(metrics)]
  by_variant: dict[str, dict[str, Mapping]] = {}
  for r in rows:
    by_variant.setdefault(r["variant"], {})[r["stage"]] = r
  lines = ["| " + " | ".join(headers) + " |",
           "|" + "---|" * len(headers)]
  for name, by_stage in by_variant.items():
    changes = next(iter(by_stage.values()))["changes"]
    cells = [name, f"`{changes}`" if changes else "(base)"]
    cells += [_format(k, by_stage[s][k]) if s in by_stage else "-"
              for s in stages for k in result_columns(metrics)]
    lines.append("| " + " | ".join(cells) + " |")
  return "\n".join(lines) + "\n"


def write_summary(rows: Sequence[Mapping[str, Any]],
                  sweep: ml_collections.ConfigDict,
                  workdir: str | pathlib.Path) -> None:
  """sweep.json (definition + rows), sweep.md (table), sweep.png (bars)."""
  from sg3jax.analysis import figures  # pylint: disable=g-import-not-at-top
  workdir = pathlib.Path(workdir)
  metrics = metric_names(sweep)
  (workdir / "sweep.json").write_text(json.dumps(
      {"sweep": _definition(sweep), "metrics": metrics, "rows": list(rows)},
      indent=2))
  header = (f"# Sweep: {len({r['variant'] for r in rows})} variants, "
            f"{sweep.eq_num} samples per metric (EQ: PSNR in dB)\n\n")
  (workdir / "sweep.md").write_text(header + markdown_table(rows, metrics))
  figures.save_figure(
      figures.sweep_figure(rows, result_columns(metrics), METRIC_LABELS,
                           METRIC_UNITS), workdir / "sweep.png")
