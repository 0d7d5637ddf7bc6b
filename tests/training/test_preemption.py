"""PreemptionNotice in a single process: SIGTERM caught, handler restored;
interruptible work abandoned at once.

(Two processes agreeing on a step through JAX's preemption sync point, and
the checkpoint and resume around it: tests/training/test_loop.py.)
"""

import os
import signal
import threading
import warnings

from absl.testing import absltest

from sg3jax.training import preemption


class PreemptionNoticeTest(absltest.TestCase):

  def test_sigterm_is_noticed_and_the_previous_handler_put_back(self):
    caught = []
    previous = signal.signal(signal.SIGTERM, lambda *_: caught.append(1))
    try:
      with preemption.PreemptionNotice() as notice:
        self.assertFalse(notice.reached())
        os.kill(os.getpid(), signal.SIGTERM)
        self.assertTrue(notice.reached())
        self.assertTrue(notice.reached())  # stays noticed
      self.assertEqual(caught, [])  # the notice took the signal
      os.kill(os.getpid(), signal.SIGTERM)
      self.assertEqual(caught, [1])  # the earlier handler is back
    finally:
      signal.signal(signal.SIGTERM, previous)

  def test_sigterm_abandons_interruptible_work_at_once(self):
    steps = []
    with preemption.PreemptionNotice() as notice:
      with notice.interruptible():
        steps.append("before")
      with self.assertRaisesRegex(preemption.Preempted,
                                  "abandoned the work in progress"):
        with notice.interruptible():
          os.kill(os.getpid(), signal.SIGTERM)
          steps.append("after the signal")
      self.assertTrue(notice.reached())
      # A notice that came earlier stops interruptible work before it
      # starts.
      with self.assertRaisesRegex(preemption.Preempted, "before the next"):
        with notice.interruptible():
          steps.append("started")
    self.assertEqual(steps, ["before"])

  def test_outside_interruptible_work_sigterm_is_only_noticed(self):
    with preemption.PreemptionNotice() as notice:
      with notice.interruptible():
        pass
      os.kill(os.getpid(), signal.SIGTERM)
      self.assertTrue(notice.reached())

  def test_outside_the_main_thread_sigterm_is_not_handled(self):
    results = []

    def run():
      with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with preemption.PreemptionNotice() as notice:
          results.append(notice.reached())
      results.append([str(w.message) for w in caught])

    before = signal.getsignal(signal.SIGTERM)
    thread = threading.Thread(target=run)
    thread.start()
    thread.join()
    self.assertFalse(results[0])
    self.assertLen(results[1], 1)
    self.assertRegex(results[1][0], "SIGTERM stops this run without a "
                     "checkpoint .*main thread")
    self.assertIs(signal.getsignal(signal.SIGTERM), before)


if __name__ == "__main__":
  absltest.main()
