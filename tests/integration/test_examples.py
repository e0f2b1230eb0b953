"""
test_examples.py - the two example programs built against libposthorn, as an embedder would:
  blocklist ADDR:PORT DOMAIN...   MAIL FROM a listed domain -> 550 5.7.1, the rest accepted
  async_rcpt ADDR:PORT DELAY_MS   every RCPT answered after a timer; "bad*" -> 550 5.1.1
Both log `event=listening address=...` on stderr and exit on SIGTERM.
"""

import os
import signal
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from phtest import BUILD, PosthornTestCase, dot_stuff, queued_qid, simple_message  # noqa: E402


def example_path(name):
    return os.path.join(BUILD, name)


class Blocklist(PosthornTestCase):

    def setUp(self):
        self.d = self.start_example("blocklist", "127.0.0.1:0", "spam.example", "bad.example")

    def test_listed_domains_rejected(self):
        c = self.raw(self.d)
        self.ehlo(c)
        for sender in ("x@spam.example", "someone@bad.example"):
            self.assertReply(c.cmd("MAIL FROM:<%s>" % sender), 550, "5.7.1")
        self.assertReply(c.cmd("RCPT TO:<b@example.com>"), 503, "5.5.1")  # no MAIL took effect

    def test_domain_match_is_case_insensitive(self):
        c = self.raw(self.d)
        self.ehlo(c)
        self.assertReply(c.cmd("MAIL FROM:<X@SPAM.Example>"), 550, "5.7.1")

    def test_other_domains_accepted(self):
        c = self.raw(self.d)
        self.ehlo(c)
        for sender in ("ok@good.example", "x@notspam.example.org", ""):
            qid = self.transaction(c, sender=sender, body=simple_message("from %s" % sender))
            self.assertTrue(qid)

    def test_rejected_then_accepted_in_one_session(self):
        s = self.smtp(self.d)
        s.ehlo()
        code, text = s.mail("x@spam.example")
        self.assertEqual(code, 550)
        self.assertTrue(text.startswith(b"5.7.1"), text)
        self.assertEqual(s.mail("fine@example.com")[0], 250)
        self.assertEqual(s.rcpt("rcpt@example.com")[0], 250)
        code, text = s.data(simple_message("after reject"))
        self.assertEqual(code, 250, text)
        s.quit()

    def test_exits_on_sigterm(self):
        t0 = time.monotonic()
        rc = self.d.stop(timeout=5)
        self.assertLess(time.monotonic() - t0, 5)
        self.assertIn(rc, (0, -signal.SIGTERM), "blocklist exit code %s" % rc)


class AsyncRcpt(PosthornTestCase):

    DELAY_MS = 300

    def setUp(self):
        self.d = self.start_example("async_rcpt", "127.0.0.1:0", str(self.DELAY_MS))

    def test_rcpt_answered_after_delay(self):
        c = self.raw(self.d)
        self.ehlo(c)
        self.assertReply(c.cmd("MAIL FROM:<a@example.com>"), 250, "2.1.0")
        t0 = time.monotonic()
        r = c.cmd("RCPT TO:<good@example.com>")
        elapsed = time.monotonic() - t0
        self.assertEqual(r.code, 250, r)
        self.assertGreaterEqual(elapsed, self.DELAY_MS / 1000.0 * 0.9)
        t0 = time.monotonic()
        r = c.cmd("RCPT TO:<bad-user@example.com>")
        self.assertGreaterEqual(time.monotonic() - t0, self.DELAY_MS / 1000.0 * 0.9)
        self.assertReply(r, 550, "5.1.1")
        self.assertReply(c.cmd("DATA"), 354)
        c.send(dot_stuff(simple_message("async")))
        queued_qid(c.read_reply())

    def test_pipelined_rcpts_answered_in_order(self):
        c = self.raw(self.d)
        self.ehlo(c)
        t0 = time.monotonic()
        c.send(b"MAIL FROM:<a@example.com>\r\nRCPT TO:<good1@example.com>\r\n"
               b"RCPT TO:<bad1@example.com>\r\nRCPT TO:<good2@example.com>\r\nDATA\r\n")
        rs = c.read_replies(5)
        elapsed = time.monotonic() - t0
        self.assertEqual([r.code for r in rs], [250, 250, 550, 250, 354], rs)
        self.assertEqual(rs[2].enhanced, "5.1.1")
        # a pending verdict pauses the session: the three RCPTs are answered one after another
        self.assertGreaterEqual(elapsed, 3 * self.DELAY_MS / 1000.0 * 0.9)
        c.send(dot_stuff(simple_message("async pipelined")))
        queued_qid(c.read_reply())
        self.assertReply(c.cmd("QUIT"), 221, "2.0.0")

    def test_sessions_wait_in_parallel(self):
        n = 10
        results = [None] * n
        errors = []

        def one(i):
            try:
                c = self.raw(self.d)
                self.ehlo(c)
                c.cmd("MAIL FROM:<a@example.com>")
                results[i] = c.cmd("RCPT TO:<user%d@example.com>" % i).code
            except Exception as e:  # reported below
                errors.append(e)
        t0 = time.monotonic()
        threads = [threading.Thread(target=one, args=(i,)) for i in range(n)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(20)
        elapsed = time.monotonic() - t0
        self.assertEqual(errors, [])
        self.assertEqual(results, [250] * n)
        # timers run concurrently on the event loop: far less than n * delay
        self.assertLess(elapsed, n * self.DELAY_MS / 1000.0 * 0.6)

    def test_client_gone_while_pending(self):
        for _ in range(5):
            c = self.raw(self.d)
            self.ehlo(c)
            self.assertReply(c.cmd("MAIL FROM:<a@example.com>"), 250, "2.1.0")
            c.send(b"RCPT TO:<vanishing@example.com>\r\n")
            c.close(reset=True)
        time.sleep(self.DELAY_MS / 1000.0 + 0.3)  # the timers fire for sessions that are gone
        self.assertTrue(self.d.alive(), "async_rcpt died:\n" + self.d.stderr_tail())
        c = self.raw(self.d)
        self.ehlo(c)
        self.assertReply(c.cmd("MAIL FROM:<a@example.com>"), 250, "2.1.0")
        self.assertEqual(c.cmd("RCPT TO:<still@example.com>").code, 250)

    def test_quit_while_pending_is_buffered(self):
        c = self.raw(self.d)
        self.ehlo(c)
        self.assertReply(c.cmd("MAIL FROM:<a@example.com>"), 250, "2.1.0")
        c.send(b"RCPT TO:<x@example.com>\r\nNOOP\r\nQUIT\r\n")
        rs = c.read_replies(3)
        self.assertEqual([r.code for r in rs], [250, 250, 221], rs)
        self.assertTrue(c.closed_by_server(5))

    def test_exits_on_sigterm(self):
        rc = self.d.stop(timeout=5)
        self.assertIn(rc, (0, -signal.SIGTERM), "async_rcpt exit code %s" % rc)


if __name__ == "__main__":
    unittest.main()
