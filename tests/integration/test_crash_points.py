"""kill -9 of the whole daemon at chosen points (issue 4), with the fault shim holding the
process exactly there (a rule with errno `none` and a delay lets the call succeed, late):

  - after the message's bytes, before the 250 (its data file is being fsync'd): after a restart
    the message is nowhere - never acknowledged, never delivered;
  - right after the 250: after a restart it is delivered, once (at most one repeat);
  - during delivery (the Maildir copy is being fsync'd): after a restart it is delivered,
    exactly once in new/.

Real client (the raw SMTP client of phtest), real daemon, real files."""
import os
import signal
import time
import unittest

from phtest import dot_stuff
from test_queue_faults import FaultCase

WAIT = 15.0


class CrashPoints(FaultCase):
    def wait_for(self, predicate, what, timeout=WAIT):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return
            time.sleep(0.05)
        self.fail("timed out waiting for " + what)

    def held(self):
        """True once the shim logged the delaying rule firing (the fsync is in progress)."""
        return any(" errno=none " in l and l.split()[1] in ("op=fsync", "op=fdatasync")
                   for l in self.fault_lines())

    def copies(self, marker):
        return sum(1 for m in self.delivered() if marker.encode() in m)

    def crash_and_restart(self, d):
        d.stop(sig=signal.SIGKILL)  # the supervisor; workers and queue manager follow it
        self.arm()
        return self.start()

    def test_before_the_250(self):
        d = self.start(check_exit=False)
        c = self.ehlo_client(d)
        self.learn_worker(c, {})
        marker, body = self.message("unacked")
        self.arm("sync none path=*/incoming/*.msg delay=8000")
        self.assertReply(self.start_transaction(c), 354)
        c.send(dot_stuff(body))
        self.wait_for(lambda: self.held(), "the data file's fsync to start")
        self.crash_and_restart(d)
        time.sleep(1.5)  # a queue manager would have delivered it by now
        self.assertEqual(self.copies(marker), 0)
        self.assertEqual(self.listing("incoming"), [])
        self.wait_for(lambda: [n for n in self.listing("queue") if n.endswith(".env")] == [],
                      "the queue to be empty")

    def test_right_after_the_250(self):
        d = self.start(check_exit=False)
        c = self.ehlo_client(d)
        marker, body = self.message("acked")
        acked = {}
        self.send_ok(c, body, acked)
        self.crash_and_restart(d)
        self.wait_for(lambda: self.copies(marker) >= 1, "delivery after the restart")
        self.wait_for(lambda: [n for n in self.listing("queue") if n.endswith(".env")] == [],
                      "the queue to be empty")
        self.assertIn(self.copies(marker), (1, 2))  # at most one repeated delivery

    def test_during_delivery(self):
        d = self.start(check_exit=False)
        c = self.ehlo_client(d)
        marker, body = self.message("delivering")
        # no pid: the rule is for the queue manager, which writes the Maildir copy
        self.arm("sync none path=*/Maildir/tmp/* delay=8000")
        self.send_ok(c, body, {})
        self.wait_for(lambda: self.held(), "the Maildir copy's fsync to start")
        self.assertEqual(self.copies(marker), 0)
        self.crash_and_restart(d)
        self.wait_for(lambda: self.copies(marker) >= 1, "delivery after the restart")
        time.sleep(0.5)
        self.assertEqual(self.copies(marker), 1)  # the interrupted copy never reached new/
        self.wait_for(lambda: [n for n in self.listing("queue") if n.endswith(".env")] == [],
                      "the queue to be empty")


if __name__ == "__main__":
    unittest.main()
