"""
test_sink_basic.py - `posthorn sink` end to end with smtplib and a raw client: greeting, EHLO
capabilities, reply codes of every basic command, envelope handling (multiple recipients, null
sender, quoted local parts, address literals, source routes), the stdout block, the --store
files (.eml + .json), logging, Unix socket and multiple listeners, --workers, SIGTERM.
"""

import os
import signal
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import phtest  # noqa: E402
from phtest import (BIN, HELO, QID_RE, PosthornTestCase, dot_stuff, queued_qid,  # noqa: E402
                    queued_qid_text, simple_message, split_received, wait_store)


class GreetingAndCommands(PosthornTestCase):

    def setUp(self):
        self.d = self.start_sink("--hostname", "mx.example.test")

    def test_banner(self):
        c = self.raw(self.d)
        self.assertEqual(c.banner.raw, ["220 mx.example.test ESMTP Posthorn"])

    def test_ehlo_capabilities_raw(self):
        c = self.raw(self.d)
        r = c.cmd("EHLO client.example")
        self.assertEqual(r.code, 250)
        self.assertTrue(r.raw[0].startswith("250-mx.example.test"), r)
        caps = {l.split(" ")[0].upper(): l for l in r.lines[1:]}
        for cap in ("PIPELINING", "SIZE", "8BITMIME", "SMTPUTF8", "ENHANCEDSTATUSCODES",
                    "CHUNKING"):
            self.assertIn(cap, caps, "EHLO does not advertise %s: %r" % (cap, r))
        self.assertRegex(caps["SIZE"], r"^SIZE [1-9][0-9]*$")
        self.assertNotIn("DSN", caps, "DSN advertised (only allowed if implemented)")
        self.assertNotIn("STARTTLS", caps, "STARTTLS advertised without TLS configured")

    def test_ehlo_capabilities_smtplib(self):
        s = self.smtp(self.d)
        code, _ = s.ehlo()
        self.assertEqual(code, 250)
        for cap in ("pipelining", "size", "8bitmime", "smtputf8", "enhancedstatuscodes",
                    "chunking"):
            self.assertTrue(s.has_extn(cap), "missing %s in %r" % (cap, s.esmtp_features))
        self.assertGreater(int(s.esmtp_features["size"]), 0)

    def test_helo(self):
        c = self.raw(self.d)
        r = c.cmd("HELO client.example")
        self.assertEqual(r.code, 250)
        self.assertEqual(len(r.raw), 1, "HELO reply must be single-line: %r" % r)
        self.assertTrue(r.text.startswith("mx.example.test") or
                        r.lines[0].startswith("mx.example.test"), r)

    def test_ehlo_twice_resets(self):
        c = self.raw(self.d)
        self.ehlo(c)
        self.assertReply(c.cmd("MAIL FROM:<a@example.com>"), 250, "2.1.0")
        self.ehlo(c)  # a second EHLO resets the transaction (RFC 5321 4.1.4)
        self.assertReply(c.cmd("RCPT TO:<b@example.com>"), 503, "5.5.1")

    def test_reply_codes_of_a_transaction(self):
        c = self.raw(self.d)
        self.ehlo(c)
        self.assertReply(c.cmd("MAIL FROM:<sender@example.com>"), 250, "2.1.0")
        self.assertReply(c.cmd("RCPT TO:<rcpt@example.com>"), 250, "2.1.5")
        r = c.cmd("DATA")
        self.assertReply(r, 354)
        c.send(dot_stuff(simple_message()))
        qid = queued_qid(c.read_reply())
        self.assertRegex(qid, "^" + QID_RE + "$")
        r = c.cmd("QUIT")
        self.assertReply(r, 221, "2.0.0")
        self.assertTrue(c.closed_by_server(5), "server did not close after QUIT")

    def test_quit_closes(self):
        c = self.raw(self.d)
        self.assertReply(c.cmd("QUIT"), 221, "2.0.0")
        self.assertEqual(c.read_until_eof(5), b"", "bytes after 221")

    def test_noop(self):
        c = self.raw(self.d)
        self.assertReply(c.cmd("NOOP"), 250, "2.0.0")
        self.assertReply(c.cmd("NOOP some argument"), 250, "2.0.0")
        self.assertReply(c.cmd("noop"), 250, "2.0.0")

    def test_rset(self):
        c = self.raw(self.d)
        self.ehlo(c)
        self.assertReply(c.cmd("MAIL FROM:<old@example.com>"), 250, "2.1.0")
        self.assertReply(c.cmd("RCPT TO:<old-rcpt@example.com>"), 250, "2.1.5")
        self.assertReply(c.cmd("RSET"), 250, "2.0.0")
        self.assertReply(c.cmd("RCPT TO:<x@example.com>"), 503, "5.5.1")
        self.assertReply(c.cmd("DATA"), 503, "5.5.1")
        qid = self.transaction(c, sender="new@example.com", rcpts=("new-rcpt@example.com",))
        msgs = self.d.wait_messages(1)
        self.assertEqual(msgs[0]["qid"], qid)
        self.assertEqual(msgs[0]["fields"]["Mail-From"], "new@example.com")
        self.assertEqual(msgs[0]["rcpt_to"], ["new-rcpt@example.com"])

    def test_vrfy(self):
        c = self.raw(self.d)
        self.assertReply(c.cmd("VRFY postmaster"), 252, "2.5.0")
        self.assertReply(c.cmd("VRFY <someone@example.com>"), 252, "2.5.0")

    def test_help(self):
        c = self.raw(self.d)
        r = c.cmd("HELP")
        self.assertIn(r.code, (211, 214), r)
        self.assertEqual(r.enhanced, "2.0.0", r)
        r = c.cmd("HELP MAIL")
        self.assertIn(r.code, (211, 214, 504), r)
        self.assertReply(c.cmd("NOOP"), 250, "2.0.0")  # still in step

    def test_unknown_command(self):
        c = self.raw(self.d)
        self.assertReply(c.cmd("FOOBAR"), 500, "5.5.2")
        self.assertReply(c.cmd("MAILFROM:<a@b>"), 500, "5.5.2")
        self.assertReply(c.cmd(""), 500, "5.5.2")
        self.assertReply(c.cmd("NOOP"), 250, "2.0.0")

    def test_bad_sequence(self):
        c = self.raw(self.d)
        self.assertReply(c.cmd("MAIL FROM:<a@example.com>"), 503, "5.5.1")  # before EHLO
        self.ehlo(c)
        self.assertReply(c.cmd("RCPT TO:<b@example.com>"), 503, "5.5.1")
        self.assertReply(c.cmd("DATA"), 503, "5.5.1")
        self.assertReply(c.cmd("MAIL FROM:<a@example.com>"), 250, "2.1.0")
        self.assertReply(c.cmd("MAIL FROM:<a@example.com>"), 503, "5.5.1")  # nested MAIL
        self.assertReply(c.cmd("DATA"), 503, "5.5.1")  # no recipient yet
        self.assertReply(c.cmd("RCPT TO:<b@example.com>"), 250, "2.1.5")
        self.assertReply(c.cmd("DATA"), 354)
        c.send(b"Subject: x\r\n\r\nbody\r\n.\r\n")
        queued_qid(c.read_reply())

    def test_syntax_errors(self):
        c = self.raw(self.d)
        self.assertReply(c.cmd("EHLO"), 501, "5.5.2")
        self.assertReply(c.cmd("HELO"), 501, "5.5.2")
        self.ehlo(c)
        self.assertReply(c.cmd("MAIL TO:<a@example.com>"), 501, "5.5.2")
        self.assertReply(c.cmd("MAIL FROM:"), 501)
        self.assertReply(c.cmd("MAIL FROM:<user@>"), 501, "5.1.7")
        self.assertReply(c.cmd("MAIL FROM:<a@example.com> FOO=bar"), 555, "5.5.4")
        self.assertReply(c.cmd("MAIL FROM:<a@example.com> SIZE=abc"), 501)
        self.assertReply(c.cmd("MAIL FROM:<a@example.com>"), 250, "2.1.0")
        self.assertReply(c.cmd("RCPT FROM:<b@example.com>"), 501, "5.5.2")
        self.assertReply(c.cmd("RCPT TO:<user@>"), 501, "5.1.3")
        self.assertReply(c.cmd("RCPT TO:<b@example.com> FOO=bar"), 555, "5.5.4")
        self.assertReply(c.cmd("RCPT TO:<b@example.com>"), 250, "2.1.5")

    def test_every_reply_has_enhanced_code(self):
        c = self.raw(self.d)
        replies = [c.cmd(x) for x in ("EHLO client.example", "NOOP", "VRFY x", "FOO",
                                      "RCPT TO:<a@b.example>", "MAIL FROM:<a@b.example>",
                                      "RCPT TO:<c@d.example>", "RSET", "QUIT")]
        for r in replies:
            if r.raw[0].startswith("250-") or (r.code == 250 and len(r.raw) > 1):
                self.assertTrue(all(ln.startswith("250") for ln in r.raw))
                continue  # the EHLO greeting line carries no enhanced code
            self.assertIsNotNone(r.enhanced, "reply without enhanced status code: %r" % r)
            self.assertEqual(r.enhanced[0], str(r.code)[0], r)


class Envelope(PosthornTestCase):

    def setUp(self):
        self.store = self.tmpdir()
        self.d = self.start_sink("--hostname", "mx.example.test", "--store", self.store)

    def test_smtplib_sendmail(self):
        s = self.smtp(self.d)
        msg = simple_message("smtplib sendmail")
        refused = s.sendmail("sender@example.com", ["rcpt@example.com"], msg)
        self.assertEqual(refused, {})
        msgs = self.d.wait_messages(1)
        self.assertEqual(len(msgs), 1)
        m = msgs[0]
        self.assertEqual(m["fields"]["Mail-From"], "sender@example.com")
        self.assertEqual(m["rcpt_to"], ["rcpt@example.com"])
        self.assertEqual(m["fields"]["Helo"], HELO)
        self.assertEqual(m["fields"]["TLS"], "no")

    def test_queued_reply_names_queue_id(self):
        s = self.smtp(self.d)
        s.ehlo()
        self.assertEqual(s.mail("sender@example.com")[0], 250)
        self.assertEqual(s.rcpt("rcpt@example.com")[0], 250)
        code, text = s.data(simple_message("qid"))
        self.assertEqual(code, 250)
        qid = queued_qid_text(text)
        msgs = self.d.wait_messages(1)
        self.assertEqual(msgs[0]["qid"], qid)
        self.assertEqual(msgs[0]["fields"]["Queue-Id"], qid)
        self.d.wait_log("accepted", qid=qid)

    def test_multiple_recipients(self):
        s = self.smtp(self.d)
        rcpts = ["one@example.com", "two@example.org", "three@example.net"]
        self.assertEqual(s.sendmail("sender@example.com", rcpts, simple_message("multi")), {})
        m = self.d.wait_messages(1)[0]
        self.assertEqual(m["rcpt_to"], rcpts)
        files, _ = wait_store(self.store, 1)
        self.assertEqual(files[m["qid"]]["json"]["rcpt_to"], rcpts)

    def test_null_sender(self):
        c = self.raw(self.d)
        self.ehlo(c)
        qid = self.transaction(c, sender="", body=simple_message("bounce"))
        m = self.d.wait_messages(1)[0]
        self.assertEqual(m["qid"], qid)
        self.assertEqual(m["fields"]["Mail-From"], "")
        files, _ = wait_store(self.store, 1)
        self.assertIn(files[qid]["json"]["mail_from"], ("", None))

    def test_mail_from_with_space_before_path(self):
        # RFC 5321 forbids it, but many clients do it; accepting or 501 are both fine, no crash.
        c = self.raw(self.d)
        self.ehlo(c)
        r = c.cmd("MAIL FROM: <a@example.com>")
        self.assertIn(r.code, (250, 501), r)
        self.assertReply(c.cmd("NOOP"), 250, "2.0.0")

    def test_quoted_local_part_literal_and_source_route(self):
        c = self.raw(self.d)
        self.ehlo(c)
        self.assertReply(c.cmd('MAIL FROM:<"john doe"@example.com>'), 250, "2.1.0")
        self.assertReply(c.cmd("RCPT TO:<user@[127.0.0.1]>"), 250, "2.1.5")
        self.assertReply(c.cmd("RCPT TO:<user@[IPv6:::1]>"), 250, "2.1.5")
        self.assertReply(c.cmd("RCPT TO:<@a.example,@b.example:routed@c.example>"), 250, "2.1.5")
        self.assertReply(c.cmd("RCPT TO:<Postmaster>"), 250, "2.1.5")
        self.assertReply(c.cmd("DATA"), 354)
        c.send(dot_stuff(simple_message("paths")))
        qid = queued_qid(c.read_reply())
        m = self.d.wait_messages(1)[0]
        self.assertEqual(m["qid"], qid)
        self.assertEqual(m["fields"]["Mail-From"], '"john doe"@example.com')
        self.assertEqual(m["rcpt_to"], ["user@[127.0.0.1]", "user@[IPv6:::1]",
                                        "routed@c.example", "Postmaster"])

    def test_mail_params_accepted(self):
        c = self.raw(self.d)
        self.ehlo(c)
        self.assertReply(c.cmd("MAIL FROM:<a@example.com> SIZE=100 BODY=8BITMIME"),
                         250, "2.1.0")
        self.assertReply(c.cmd("RSET"), 250, "2.0.0")
        self.assertReply(c.cmd("MAIL FROM:<a@example.com> BODY=7BIT"), 250, "2.1.0")
        self.assertReply(c.cmd("RSET"), 250, "2.0.0")
        self.assertReply(c.cmd("MAIL FROM:<a@example.com> body=8bitmime size=10"), 250, "2.1.0")
        self.assertReply(c.cmd("RSET"), 250, "2.0.0")
        r = c.cmd("MAIL FROM:<a@example.com> BODY=BINARYMIME")  # not advertised
        self.assertIn(r.code, (501, 555), r)

    def test_store_files_and_stdout_block(self):
        s = self.smtp(self.d)
        body = b"Line one\r\nLine two\r\n\r\nLast line\r\n"
        msg = simple_message("store", body=body)
        s.ehlo()
        s.mail("sender@example.com")
        s.rcpt("a@example.com")
        s.rcpt("b@example.com")
        code, text = s.data(msg)
        self.assertEqual(code, 250, text)
        qid = queued_qid_text(text)
        client_port = s.sock.getsockname()[1]
        s.quit()

        files, other = wait_store(self.store, 1)
        self.assertEqual(sorted(files), [qid])
        self.assertEqual(other, [], "unexpected files (tmp leftovers?) in the store")
        eml = files[qid]["eml"]
        received, rest = split_received(eml)
        self.assertEqual(rest, msg, "stored message differs from what was sent")
        for needle in ("from " + HELO, "[127.0.0.1]", "by mx.example.test", "with ESMTP",
                       "id " + qid):
            self.assertIn(needle, received)
        self.assertNotIn("\n", eml.replace(b"\r\n", b"").decode("utf-8", "replace"),
                         "bare LF in stored message")

        j = files[qid]["json"]
        for key in ("id", "received_at", "client_ip", "helo", "mail_from", "rcpt_to", "size",
                    "tls", "auth"):
            self.assertIn(key, j)
        self.assertEqual(j["id"], qid)
        self.assertIsInstance(j["received_at"], str)
        self.assertTrue(j["received_at"])
        self.assertEqual(j["client_ip"], "127.0.0.1")
        self.assertEqual(j["helo"], HELO)
        self.assertEqual(j["mail_from"], "sender@example.com")
        self.assertEqual(j["rcpt_to"], ["a@example.com", "b@example.com"])
        self.assertEqual(j["size"], len(eml))
        self.assertIs(j["tls"], False)
        self.assertIsNone(j["auth"])

        m = self.d.wait_messages(1)[0]
        self.assertEqual(m["qid"], qid)
        block = m["raw"].decode("utf-8")
        expected_head = ("=== MESSAGE {q} ===\nQueue-Id: {q}\nPeer: 127.0.0.1:{p}\nHelo: {h}\n"
                         "Mail-From: sender@example.com\nRcpt-To: a@example.com\n"
                         "Rcpt-To: b@example.com\nSize: {s}\nTLS: no\n--- DATA ---\n"
                         .format(q=qid, p=client_port, h=HELO, s=len(eml)))
        self.assertTrue(block.startswith(expected_head),
                        "stdout block head differs:\n%s\n--- expected ---\n%s"
                        % (block[:600], expected_head))
        self.assertEqual(m["data"], eml.replace(b"\r\n", b"\n"))
        self.assertTrue(block.endswith("=== END %s ===\n" % qid))

    def test_helo_gives_smtp_protocol(self):
        c = self.raw(self.d)
        self.assertEqual(c.cmd("HELO old.client.example").code, 250)
        qid = self.transaction(c, body=simple_message("helo"))
        files, _ = wait_store(self.store, 1)
        received, _ = split_received(files[qid]["eml"])
        self.assertIn("from old.client.example", received)
        self.assertRegex(received, r"with SMTP\b")
        self.assertEqual(files[qid]["json"]["helo"], "old.client.example")

    def test_two_messages_in_one_session(self):
        c = self.raw(self.d)
        self.ehlo(c)
        q1 = self.transaction(c, body=simple_message("first"), rcpts=("a@example.com",))
        q2 = self.transaction(c, body=simple_message("second"), rcpts=("b@example.com",))
        self.assertNotEqual(q1, q2)
        msgs = self.d.wait_messages(2)
        self.assertEqual([m["qid"] for m in msgs], [q1, q2])
        self.assertEqual(msgs[1]["rcpt_to"], ["b@example.com"])
        files, other = wait_store(self.store, 2)
        self.assertEqual(sorted(files), sorted([q1, q2]))
        self.assertEqual(other, [])

    def test_queue_ids_unique(self):
        c = self.raw(self.d)
        self.ehlo(c)
        qids = [self.transaction(c, body=simple_message("u%d" % i)) for i in range(30)]
        self.assertEqual(len(set(qids)), 30, qids)
        for q in qids:
            self.assertRegex(q, "^" + QID_RE + "$")

    def test_log_lines(self):
        c = self.raw(self.d)
        self.ehlo(c)
        qid = self.transaction(c)
        c.cmd("QUIT")
        c.closed_by_server(5)
        acc = self.d.wait_log("accepted", qid=qid)[0]
        sid = acc.get("sid")
        self.assertTrue(sid, "accepted line without sid=: %r" % acc)
        self.assertTrue(acc.get("size", "").isdigit(), acc)
        self.d.wait_log("disconnect", sid=sid)
        for ev in ("connect", "helo", "mail", "rcpt"):
            self.assertTrue(self.d.log_events(ev) and
                            any(e.get("sid") == sid for e in self.d.log_events(ev)),
                            "no event=%s sid=%s in log:\n%s" % (ev, sid, self.d.stderr_tail()))

    def test_rejected_logged(self):
        c = self.raw(self.d)
        self.assertReply(c.cmd("FOO"), 500, "5.5.2")
        ev = self.d.wait_log("rejected")
        self.assertIn("reason", ev[0])


class Quiet(PosthornTestCase):

    def test_quiet_prints_nothing(self):
        d = self.start_sink("--quiet")
        s = self.smtp(d)
        s.sendmail("a@example.com", ["b@example.com"], simple_message("quiet"))
        s.quit()
        d.wait_log("accepted")
        d.stop()
        self.assertEqual(d.stdout_bytes(), b"")


class Defaults(PosthornTestCase):

    def test_default_hostname_in_banner(self):
        d = self.start_sink()
        c = self.raw(d)
        self.assertRegex(c.banner.raw[0], r"^220 [^ ]+ ESMTP Posthorn$")
        r = self.ehlo(c)
        self.assertEqual(r.raw[0].split(" ")[0][4:], c.banner.raw[0].split(" ")[1])


class LogLevel(PosthornTestCase):

    def run_one(self, level):
        d = self.start_sink("--log-level", level)
        c = self.raw(d)
        self.ehlo(c)
        self.transaction(c)
        c.cmd("QUIT")
        c.closed_by_server(5)
        d.wait_messages(1)
        return d

    def test_warn_hides_info_events(self):
        d = self.run_one("warn")
        time.sleep(0.2)
        for ev in ("connect", "helo", "mail", "rcpt", "accepted", "disconnect"):
            self.assertEqual(d.log_events(ev), [], "event=%s logged at --log-level warn" % ev)

    def test_debug_keeps_info_events(self):
        d = self.run_one("debug")
        d.wait_log("accepted")
        d.wait_log("disconnect")

    def test_error_level_accepted(self):
        d = self.run_one("error")
        time.sleep(0.2)
        self.assertEqual(d.log_events("accepted"), [])


class Listeners(PosthornTestCase):

    def test_unix_socket(self):
        tmp = self.tmpdir()
        path = os.path.join(tmp, "posthorn.sock")
        d = self.start_sink("--hostname", "unix.example.test",
                            listen=("unix:" + path,))
        self.assertTrue(any(a.startswith("unix:") for a in d.addresses), d.addresses)
        c = self.raw(path)
        self.assertTrue(c.banner.text.startswith("unix.example.test"), c.banner)
        self.ehlo(c)
        qid = self.transaction(c, body=simple_message("via unix socket"))
        m = d.wait_messages(1)[0]
        self.assertEqual(m["qid"], qid)
        self.assertIn(b"via unix socket", m["data"])
        c.cmd("QUIT")

    def test_unix_and_tcp_together(self):
        tmp = self.tmpdir()
        path = os.path.join(tmp, "s")
        d = self.start_sink(listen=("127.0.0.1:0", "unix:" + path))
        self.assertEqual(len(d.tcp_addresses()), 1, d.addresses)
        c1 = self.raw(path)
        c2 = self.raw(d)
        self.ehlo(c1)
        self.ehlo(c2)
        self.transaction(c1)
        self.transaction(c2)
        d.wait_messages(2)

    def test_two_tcp_listeners(self):
        d = self.start_sink(listen=("127.0.0.1:0", "127.0.0.1:0"))
        addrs = d.tcp_addresses()
        self.assertEqual(len(addrs), 2, d.addresses)
        self.assertNotEqual(addrs[0][1], addrs[1][1])
        for a in addrs:
            c = self.raw(a)
            self.ehlo(c)
            self.transaction(c)
        d.wait_messages(2)


class Workers(PosthornTestCase):

    def test_workers_2(self):
        d = self.start_sink("--workers", "2")
        qids = []
        for i in range(20):
            s = self.smtp(d)
            s.ehlo()
            s.mail("w%d@example.com" % i)
            s.rcpt("rcpt@example.com")
            code, text = s.data(simple_message("worker %d" % i, body=("x" * 75 + "\r\n") * 40))
            self.assertEqual(code, 250, text)
            qids.append(queued_qid_text(text))
            s.quit()
        self.assertEqual(len(set(qids)), 20, "queue ids not unique across workers: %r" % qids)
        msgs = d.wait_messages(20)
        self.assertEqual(sorted(m["qid"] for m in msgs), sorted(qids))
        for m in msgs:  # blocks from two processes must not interleave
            self.assertTrue(m["fields"]["Mail-From"].startswith("w"), m["raw"][:300])
            self.assertIn(("x" * 75 + "\n").encode() * 40, m["data"])
        rc = d.stop()
        self.assertEqual(rc, 0)
        self.assertFalse(d.leftover_children, "worker processes survived SIGTERM of the master")


class Signals(PosthornTestCase):

    def test_sigterm_idle_exits_0(self):
        d = self.start_sink()
        t0 = time.monotonic()
        d.send_signal(signal.SIGTERM)
        rc = d.wait_exit(5)
        self.assertEqual(rc, 0)
        self.assertLess(time.monotonic() - t0, 5)

    def test_sigterm_with_idle_session(self):
        d = self.start_sink()
        c = self.raw(d)
        self.ehlo(c)
        t0 = time.monotonic()
        d.send_signal(signal.SIGTERM)
        data = c.read_until_eof(10)
        replies = phtest.replies_from_bytes(data)
        self.assertTrue(replies, "no reply before close on shutdown")
        self.assertReply(replies[-1], 421, "4.3.2")
        rc = d.wait_exit(10)  # no second signal: it must exit by itself
        self.assertEqual(rc, 0)
        self.assertLess(time.monotonic() - t0, 10)

    def test_sigterm_lets_data_in_flight_finish(self):
        d = self.start_sink()
        c = self.raw(d)
        self.ehlo(c)
        self.assertReply(c.cmd("MAIL FROM:<a@example.com>"), 250, "2.1.0")
        self.assertReply(c.cmd("RCPT TO:<b@example.com>"), 250, "2.1.5")
        self.assertReply(c.cmd("DATA"), 354)
        c.send(b"Subject: in flight\r\n\r\nfirst half\r\n")
        time.sleep(0.2)
        d.send_signal(signal.SIGTERM)
        time.sleep(0.3)
        c.send(b"second half\r\n.\r\n")
        r = c.read_reply()
        queued_qid(r)
        c.close()
        self.assertEqual(d.wait_exit(10), 0)
        self.assertEqual(len(d.messages()), 1)


class Help(unittest.TestCase):

    def run_help(self, args):
        p = subprocess.run([BIN] + args, stdin=subprocess.DEVNULL, capture_output=True,
                           timeout=10)
        return p.returncode, (p.stdout + p.stderr).decode("utf-8", "replace")

    def test_help(self):
        rc, out = self.run_help(["--help"])
        self.assertEqual(rc, 0, out)
        self.assertIn("sink", out)

    def test_sink_help(self):
        rc, out = self.run_help(["sink", "--help"])
        self.assertEqual(rc, 0, out)
        for opt in ("--listen", "--store", "--quiet", "--max-size", "--hostname"):
            self.assertIn(opt, out)

    def test_bad_option_fails(self):
        rc, out = self.run_help(["sink", "--no-such-option"])
        self.assertNotEqual(rc, 0, out)


if __name__ == "__main__":
    unittest.main()
