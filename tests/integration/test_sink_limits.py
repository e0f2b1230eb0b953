"""
test_sink_limits.py - every limit becomes a reply, never a crash or hang: message size (MAIL
SIZE= and streamed data, DATA and BDAT), recipients per message, errors per session, command
line length, text line length in DATA, idle and session timeouts, connections in total and per
IP, early talkers (--greeting-delay).
"""

import os
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from phtest import (PosthornTestCase, dot_stuff, queued_qid, replies_from_bytes,  # noqa: E402
                    simple_message, wait_store)


class MaxSize(PosthornTestCase):

    def setUp(self):
        self.store = self.tmpdir()
        self.d = self.start_sink("--max-size", "1000", "--store", self.store)

    def test_ehlo_advertises_limit(self):
        c = self.raw(self.d)
        r = self.ehlo(c)
        self.assertIn("SIZE 1000", r.lines, r)

    def test_mail_size_param(self):
        c = self.raw(self.d)
        self.ehlo(c)
        self.assertReply(c.cmd("MAIL FROM:<a@example.com> SIZE=1001"), 552, "5.3.4")
        r = c.cmd("MAIL FROM:<a@example.com> SIZE=99999999999999999999999")
        self.assertIn(r.code, (501, 552), r)  # overflowing number: syntax or too big
        self.assertReply(c.cmd("MAIL FROM:<a@example.com> SIZE=500"), 250, "2.1.0")

    def test_mail_size_param_smtplib(self):
        s = self.smtp(self.d)
        s.ehlo()
        code, _ = s.mail("a@example.com", ["SIZE=5000"])
        self.assertEqual(code, 552)

    def test_data_over_limit_then_session_continues(self):
        c = self.raw(self.d)
        self.ehlo(c)
        self.assertReply(c.cmd("MAIL FROM:<a@example.com>"), 250, "2.1.0")
        self.assertReply(c.cmd("RCPT TO:<b@example.com>"), 250, "2.1.5")
        self.assertReply(c.cmd("DATA"), 354)
        big = simple_message("too big", body=b"y" * 70 + b"\r\n" * 1 + (b"z" * 70 + b"\r\n") * 100)
        c.send(dot_stuff(big))
        self.assertReply(c.read_reply(), 552, "5.3.4")
        self.assertReply(c.cmd("NOOP"), 250, "2.0.0")  # the rest was read and discarded
        qid = self.transaction(c, body=simple_message("small", body=b"ok\r\n"))
        msgs = self.d.wait_messages(1)
        self.assertEqual([m["qid"] for m in msgs], [qid])
        files, other = wait_store(self.store, 1)
        self.assertEqual(sorted(files), [qid])
        self.assertEqual(other, [])
        self.d.wait_log("rejected")

    def test_data_over_limit_much_larger(self):
        c = self.raw(self.d, timeout=20)
        self.ehlo(c)
        self.assertReply(c.cmd("MAIL FROM:<a@example.com>"), 250, "2.1.0")
        self.assertReply(c.cmd("RCPT TO:<b@example.com>"), 250, "2.1.5")
        self.assertReply(c.cmd("DATA"), 354)
        c.send_async(b"Subject: x\r\n\r\n" + (b"w" * 78 + b"\r\n") * 50000 + b".\r\n")
        self.assertReply(c.read_reply(20), 552, "5.3.4")
        c.join_senders(20)
        self.assertReply(c.cmd("NOOP"), 250, "2.0.0")

    def test_data_over_limit_smtplib(self):
        s = self.smtp(self.d)
        s.ehlo()
        s.mail("a@example.com")
        s.rcpt("b@example.com")
        code, text = s.data(simple_message("big", body=b"q" * 5000 + b"\r\n"))
        self.assertEqual(code, 552, text)
        self.assertTrue(text.startswith(b"5.3.4"), text)
        self.assertEqual(s.noop()[0], 250)

    def test_bdat_over_limit(self):
        c = self.raw(self.d)
        self.ehlo(c)
        self.assertReply(c.cmd("MAIL FROM:<a@example.com>"), 250, "2.1.0")
        self.assertReply(c.cmd("RCPT TO:<b@example.com>"), 250, "2.1.5")
        chunk = simple_message("bdat big", body=b"b" * 3000 + b"\r\n")
        c.send(b"BDAT %d LAST\r\n" % len(chunk) + chunk)
        self.assertReply(c.read_reply(), 552, "5.3.4")
        self.assertReply(c.cmd("NOOP"), 250, "2.0.0")
        time.sleep(0.1)
        self.assertEqual(self.d.messages(), [])


class DefaultLimits(PosthornTestCase):

    def test_default_size_32_mib(self):
        d = self.start_sink()
        c = self.raw(d)
        r = self.ehlo(c)
        self.assertIn("SIZE %d" % (32 * 1024 * 1024), r.lines, r)

    def test_default_max_recipients_1000(self):
        d = self.start_sink()
        c = self.raw(d)
        self.ehlo(c)
        self.assertReply(c.cmd("MAIL FROM:<a@example.com>"), 250, "2.1.0")
        c.send_async(b"".join(b"RCPT TO:<r%d@example.com>\r\n" % i for i in range(1001)))
        replies = c.read_replies(1001)
        c.join_senders()
        for i, r in enumerate(replies[:1000]):
            self.assertEqual((r.code, r.enhanced), (250, "2.1.5"), "rcpt %d: %r" % (i, r))
        self.assertReply(replies[1000], 452, "4.5.3")


class MaxRecipients(PosthornTestCase):

    def test_max_recipients(self):
        d = self.start_sink("--max-recipients", "3")
        c = self.raw(d)
        self.ehlo(c)
        self.assertReply(c.cmd("MAIL FROM:<a@example.com>"), 250, "2.1.0")
        for i in range(3):
            self.assertReply(c.cmd("RCPT TO:<r%d@example.com>" % i), 250, "2.1.5")
        self.assertReply(c.cmd("RCPT TO:<r3@example.com>"), 452, "4.5.3")
        self.assertReply(c.cmd("RCPT TO:<r4@example.com>"), 452, "4.5.3")
        self.assertReply(c.cmd("DATA"), 354)
        c.send(dot_stuff(simple_message("three rcpts")))
        qid = queued_qid(c.read_reply())
        m = d.wait_messages(1)[0]
        self.assertEqual(m["qid"], qid)
        self.assertEqual(m["rcpt_to"], ["r0@example.com", "r1@example.com", "r2@example.com"])
        # the limit is per message: the next transaction may have 3 again
        self.assertReply(c.cmd("MAIL FROM:<a@example.com>"), 250, "2.1.0")
        for i in range(3):
            self.assertReply(c.cmd("RCPT TO:<s%d@example.com>" % i), 250, "2.1.5")


class MaxErrors(PosthornTestCase):

    def test_max_errors_closes(self):
        n = 3
        d = self.start_sink("--max-errors", str(n))
        c = self.raw(d)
        replies = []
        for i in range(n + 3):
            try:
                c.send(b"BOGUS%d\r\n" % i)
                replies.append(c.read_reply())
            except (EOFError, ConnectionError):
                break
            if replies[-1].code == 421:
                break
        self.assertTrue(replies, "no replies")
        self.assertReply(replies[-1], 421, "4.7.0")
        errors = [r for r in replies[:-1] if r.code == 500]
        self.assertIn(len(errors), (n - 1, n), replies)
        self.assertTrue(c.closed_by_server(5), "not closed after 421")
        # the server is fine for others
        c2 = self.raw(d)
        self.assertReply(c2.cmd("NOOP"), 250, "2.0.0")

    def test_max_errors_pipelined(self):
        d = self.start_sink("--max-errors", "5")
        c = self.raw(d)
        c.send(b"X\r\n" * 50)
        data = c.read_until_eof(10)
        replies = replies_from_bytes(data)
        self.assertReply(replies[-1], 421, "4.7.0")
        self.assertLessEqual(len(replies), 6, replies)

    def test_successful_commands_do_not_count(self):
        d = self.start_sink("--max-errors", "3")
        c = self.raw(d)
        for _ in range(2):
            self.assertReply(c.cmd("FOO"), 500, "5.5.2")
        for _ in range(20):
            self.assertReply(c.cmd("NOOP"), 250, "2.0.0")


class LineLength(PosthornTestCase):

    def test_default_command_line_512(self):
        d = self.start_sink()
        c = self.raw(d)
        line = b"NOOP " + b"x" * (512 - 2 - 5)
        self.assertEqual(len(line + b"\r\n"), 512)
        self.assertReply(c.cmd(line), 250, "2.0.0")
        self.assertReply(c.cmd(line + b"x"), 500, "5.5.6")
        self.assertReply(c.cmd(b"NOOP " + b"x" * 600), 500, "5.5.6")
        self.assertReply(c.cmd("NOOP"), 250, "2.0.0")  # exactly one reply per long line
        self.assertTrue(c.no_data_within(0.2))

    def test_long_mail_command(self):
        d = self.start_sink()
        c = self.raw(d)
        self.ehlo(c)
        self.assertReply(c.cmd(b"MAIL FROM:<" + b"a" * 600 + b"@example.com>"), 500, "5.5.6")
        self.assertReply(c.cmd("MAIL FROM:<a@example.com>"), 250, "2.1.0")

    def test_max_line_option(self):
        d = self.start_sink("--max-line", "100")
        c = self.raw(d)
        self.assertReply(c.cmd(b"NOOP " + b"x" * 93), 250, "2.0.0")  # 100 incl CRLF
        self.assertReply(c.cmd(b"NOOP " + b"x" * 200), 500, "5.5.6")
        self.assertReply(c.cmd("NOOP"), 250, "2.0.0")

    def test_huge_line_without_crlf(self):
        # One 500 5.5.6 for the whole 4 MiB line; the server may then go on (NOOP -> 250) or
        # close, but it must neither crash nor buffer without bound nor answer per fragment.
        d = self.start_sink()
        c = self.raw(d, timeout=20)
        c.send_async(b"A" * (4 * 1024 * 1024) + b"\r\nNOOP\r\n")
        self.assertReply(c.read_reply(), 500, "5.5.6")
        try:
            self.assertReply(c.read_reply(), 250, "2.0.0")
        except (EOFError, ConnectionError):
            pass
        c2 = self.raw(d)
        self.assertReply(c2.cmd("NOOP"), 250, "2.0.0")

    def test_data_line_longer_than_998(self):
        d = self.start_sink()
        c = self.raw(d)
        self.ehlo(c)
        self.assertReply(c.cmd("MAIL FROM:<a@example.com>"), 250, "2.1.0")
        self.assertReply(c.cmd("RCPT TO:<b@example.com>"), 250, "2.1.5")
        self.assertReply(c.cmd("DATA"), 354)
        c.send(dot_stuff(simple_message("long line", body=b"L" * 5000 + b"\r\n")))
        self.assertReply(c.read_reply(), 550, "5.6.0")
        self.assertReply(c.cmd("NOOP"), 250, "2.0.0")
        time.sleep(0.1)
        self.assertEqual(d.messages(), [])


class Timeouts(PosthornTestCase):

    def test_idle_timeout(self):
        d = self.start_sink("--idle-timeout", "1")
        c = self.raw(d)
        t0 = time.monotonic()
        data = c.read_until_eof(6)
        elapsed = time.monotonic() - t0
        replies = replies_from_bytes(data)
        self.assertTrue(replies, "closed without a reply")
        self.assertReply(replies[-1], 421, "4.4.2")
        self.assertGreater(elapsed, 0.7)
        self.assertLess(elapsed, 4)

    def test_idle_timeout_mid_data(self):
        d = self.start_sink("--idle-timeout", "1")
        c = self.raw(d)
        self.ehlo(c)
        self.assertReply(c.cmd("MAIL FROM:<a@example.com>"), 250, "2.1.0")
        self.assertReply(c.cmd("RCPT TO:<b@example.com>"), 250, "2.1.5")
        self.assertReply(c.cmd("DATA"), 354)
        c.send(b"Subject: stalled\r\n\r\npartial")
        replies = replies_from_bytes(c.read_until_eof(6))
        self.assertTrue(replies)
        self.assertReply(replies[-1], 421, "4.4.2")
        time.sleep(0.1)
        self.assertEqual(d.messages(), [])

    def test_activity_resets_idle_timer(self):
        d = self.start_sink("--idle-timeout", "1")
        c = self.raw(d)
        for _ in range(6):
            time.sleep(0.4)
            self.assertReply(c.cmd("NOOP"), 250, "2.0.0")

    def test_session_timeout(self):
        d = self.start_sink("--session-timeout", "2", "--idle-timeout", "60")
        c = self.raw(d)
        t0 = time.monotonic()
        got = None
        while time.monotonic() - t0 < 8:
            try:
                r = c.cmd("NOOP", timeout=5)
            except (EOFError, ConnectionError):
                break
            if r.code != 250:
                got = r
                break
            time.sleep(0.2)
        elapsed = time.monotonic() - t0
        self.assertIsNotNone(got, "no 421 before the session ended")
        self.assertEqual(got.code, 421, got)
        self.assertTrue(c.closed_by_server(5))
        self.assertGreater(elapsed, 1.5)
        self.assertLess(elapsed, 6)


class Connections(PosthornTestCase):

    def expect_refused(self, d):
        c = self.raw(d, banner=False)
        data = c.read_until_eof(5)
        replies = replies_from_bytes(data)
        self.assertTrue(replies, "closed without a reply")
        self.assertReply(replies[0], 421, "4.7.0")
        self.assertEqual(len(replies), 1, replies)

    def test_max_connections(self):
        d = self.start_sink("--max-connections", "2")
        a = self.raw(d)
        b = self.raw(d)
        self.expect_refused(d)
        self.assertReply(a.cmd("NOOP"), 250, "2.0.0")
        self.assertReply(a.cmd("QUIT"), 221, "2.0.0")
        a.closed_by_server(5)
        # once a slot is free a new client is served (allow the server a moment to notice)
        deadline = time.monotonic() + 5
        while True:
            c = self.raw(d, banner=False)
            r = c.read_reply()
            if r.code == 220 or time.monotonic() > deadline:
                break
            c.close()
            time.sleep(0.1)
        self.assertEqual(r.code, 220, r)
        self.assertReply(b.cmd("NOOP"), 250, "2.0.0")

    def test_max_per_ip(self):
        d = self.start_sink("--max-per-ip", "1")
        a = self.raw(d)
        self.expect_refused(d)
        self.assertReply(a.cmd("NOOP"), 250, "2.0.0")
        a.cmd("QUIT")
        a.closed_by_server(5)
        deadline = time.monotonic() + 5
        while True:
            c = self.raw(d, banner=False)
            r = c.read_reply()
            if r.code == 220 or time.monotonic() > deadline:
                break
            c.close()
            time.sleep(0.1)
        self.assertEqual(r.code, 220, r)

    def test_many_clients_within_limits(self):
        d = self.start_sink()
        clients = [self.raw(d) for _ in range(50)]
        for c in clients:
            self.assertReply(c.cmd("NOOP"), 250, "2.0.0")


class EarlyTalker(PosthornTestCase):

    def test_early_talker_rejected(self):
        d = self.start_sink("--greeting-delay", "500")
        c = self.raw(d, banner=False)
        c.send(b"EHLO impatient.example\r\n")
        data = c.read_until_eof(5)
        replies = replies_from_bytes(data)
        self.assertTrue(replies, "closed without a reply")
        self.assertReply(replies[-1], 554, "5.5.0")
        self.assertNotIn(250, [r.code for r in replies], replies)
        c2 = self.raw(d)  # the server survives and serves polite clients
        self.ehlo(c2)

    def test_early_talker_pipelined_full_transaction(self):
        d = self.start_sink("--greeting-delay", "500")
        c = self.raw(d, banner=False)
        c.send(b"EHLO spammer.example\r\nMAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.com>\r\n"
               b"DATA\r\nSubject: spam\r\n\r\nspam\r\n.\r\nQUIT\r\n")
        replies = replies_from_bytes(c.read_until_eof(5))
        self.assertIn(554, [r.code for r in replies], replies)
        time.sleep(0.2)
        self.assertEqual(d.messages(), [])

    def test_polite_client_waits_for_banner(self):
        d = self.start_sink("--greeting-delay", "500")
        t0 = time.monotonic()
        c = self.raw(d)  # reads the banner
        self.assertGreater(time.monotonic() - t0, 0.4)
        self.ehlo(c)
        self.transaction(c)
        d.wait_messages(1)


if __name__ == "__main__":
    unittest.main()
