"""Preemption notices: the iteration at which every process stops.

A preempted pod or cluster job gets SIGTERM on every worker (SLURM, Cloud
TPU, Kubernetes), shortly before it is killed. The training loop asks
`PreemptionNotice.reached()` after each iteration; when it answers True,
every process is at that same iteration, and the loop writes a checkpoint
and stops.

Multi-process runs (`jax.distributed`) use JAX's preemption sync point
service: a SIGTERM to any process is passed to all, and they agree on the
first iteration that none has passed yet (`multihost_utils.
reached_preemption_sync_point`; cheap when no notice came). A single
process catches SIGTERM itself (that service needs `jax.distributed`).

Work that leaves nothing half-written (no writes, or atomic ones: e.g.
measuring a network) need not wait for an iteration's end: inside
`PreemptionNotice.interruptible()`, a SIGTERM to a single process abandons
it at once by raising `Preempted`.
"""

import contextlib
import signal
import threading
import warnings
from collections.abc import Iterator

import jax
from jax.experimental import multihost_utils


class Preempted(Exception):
  """Work stopped on a preemption notice, its state saved (or nothing to
  save); the same command resumes it."""


class PreemptionNotice:
  """Context manager: `reached()`, asked after every iteration on every
  process, is True after the iteration to stop at.

  The JAX service numbers iterations from 0 in each process's life (a
  notice that comes while a resumed run is still starting up stops it
  after its first iteration), so `reached` counts them the same way.
  """

  def __init__(self):
    self._iterations = 0
    self._source = None  # "jax" (sync point service), "signal" or None
    self._signalled = False
    self._interruptible = False
    self._previous_handler = signal.SIG_DFL

  def __enter__(self) -> "PreemptionNotice":
    if jax.process_count() > 1:
      try:
        multihost_utils.reached_preemption_sync_point(self._iterations)
        self._source = "jax"
      except RuntimeError as e:  # jax_enable_preemption_service=False
        _warn(f"SIGTERM stops this run without a checkpoint ({e})")
    elif threading.current_thread() is threading.main_thread():
      previous = signal.signal(signal.SIGTERM, self._on_sigterm)
      # (None: a handler set outside Python, e.g. by a single-process
      # jax.distributed; the default takes its place afterwards.)
      if previous is not None:
        self._previous_handler = previous
      self._source = "signal"
    else:
      _warn("SIGTERM stops this run without a checkpoint (signal handlers "
            "can only be set in the main thread)")
    return self

  def __exit__(self, *exc_info) -> None:
    if self._source == "signal":
      signal.signal(signal.SIGTERM, self._previous_handler)

  def _on_sigterm(self, signum, frame) -> None:
    del signum, frame
    self._signalled = True
    if self._interruptible:
      self._interruptible = False
      raise Preempted("SIGTERM: abandoned the work in progress (it leaves "
                      "nothing half-written); run the same command to "
                      "resume")

  @contextlib.contextmanager
  def interruptible(self) -> Iterator[None]:
    """Context for work that leaves nothing half-written: a SIGTERM to
    this (single) process, now or already noticed, raises `Preempted`
    inside it at once, from wherever the main thread is. (Multi-process
    notices come only through `reached`: the work runs to its end.)"""
    if self._signalled:
      raise Preempted("SIGTERM: stopped before the next work; run the "
                      "same command to resume")
    self._interruptible = self._source == "signal"
    try:
      yield
    finally:
      self._interruptible = False

  def reached(self) -> bool:
    """Whether to stop after this iteration (the same answer on every
    process)."""
    self._iterations += 1
    if self._source == "jax":
      return multihost_utils.reached_preemption_sync_point(self._iterations)
    return self._signalled


def _warn(message: str) -> None:
  warnings.warn(message, RuntimeWarning, stacklevel=3)
