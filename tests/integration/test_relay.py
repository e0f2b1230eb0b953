"""Integration tests for the MX relay (issue 5), loopback only: the real daemon (`posthorn serve`)
relays for 127.0.0.0/8, resolves through the fake DNS server of fakedns.py, and connects to
receivers on 127.0.0.2, .3, ... all on one port (the test-only `smtp_mx_port`): Postfix's
smtp-sink (4xx/5xx on chosen commands, a delayed greeting, dump files, a log of connections),
a scripted Python receiver where smtp-sink cannot show something (4xx then 250, the exact bytes
on the wire, kill -9 right after its 250) and a real Postfix as one receiving MX. The fixture is
relayfix.py.

Cases: preference order; fallback on a refused connection, on 4xx to MAIL and on a 421
greeting; implicit MX; null MX -> bounce 5.1.10/556; 5xx at RCPT -> bounce with the remote reply
in Diagnostic-Code and the MX in Remote-MTA; null sender + 5xx -> no bounce; 4xx then success
on the retry (by the schedule, not at once), one copy; SERVFAIL -> deferred with 4.4.3,
delivered once the DNS answers; the equal-preference race picks the host that greets first;
dot-stuffing end to end, byte-exact; two domains in one message; kill -9 right after the remote
250 -> delivered after the restart (at most one duplicate); connection reuse for a burst;
byte-exact into a real Postfix's Maildir; a smarthost [relay] section used without any DNS
lookup of the recipient domain.

What is asserted comes from the receivers (messages, recipients, bytes, connections), the queue
(`posthorn queue list`, the spool directory) and the sender's Maildir; the daemon's log only
where nothing else shows it (which exchanger refused the connection).

Environment: POSTHORN_BIN, POSTHORN_BUILD (see phtest.py). Tests needing Postfix run as root
(CI does); they skip only when the binary is missing. Standard library only.
"""
import os
import re
import signal
import threading
import time
import unittest

from fakedns import NULL_MX, SERVFAIL
from phtest import dot_stuff, split_received
from relayfix import (HOSTNAME, SENDER, UNREACHABLE, WAIT, RelayCase, mx, norm, pick_mx_port,
                      read_file, split_trace_headers, wait_until)

A, B, C, D, E = "127.0.0.2", "127.0.0.3", "127.0.0.4", "127.0.0.5", "127.0.0.6"
QUIET = 1.0  # how long "nothing more happens" is watched after the expected outcome


def message(tag, body=b"Hello.\r\n", to="bob@example.test"):
    """A small message with CRLF line ends whose Message-ID names tag."""
    head = ("From: <%s>\r\nTo: <%s>\r\nSubject: relay %s\r\n"
            "Message-ID: <%s@example.org>\r\nDate: Thu, 01 Jan 2025 00:00:00 +0000\r\n\r\n"
            % (SENDER, to, tag, tag)).encode()
    return head + body


def lf(data):
    return data.replace(b"\r\n", b"\n")


def tables(*parts):
    out = {}
    for p in parts:
        out.update(p)
    return out


class RelayTests(RelayCase):
    # -- shared checks --
    def assertRelayed(self, got, body):
        """got: a smtp-sink message; it carries body after exactly one Received: of ours."""
        fields, rest = split_trace_headers(got.data, names=(b"Received:",))
        self.assertEqual(len(fields), 1, fields)
        self.assertIn("by %s" % HOSTNAME, fields[0])
        self.assertEqual(rest, lf(body))
        self.assertEqual(got.sender, SENDER)
        self.assertEqual(got.helo, HOSTNAME)

    def assertNoBounce(self):
        """No message in any local Maildir (the sender's domain example.org)."""
        found = []
        for root, _, names in os.walk(self.mail):
            if os.path.basename(root) in ("new", "cur"):
                found += [os.path.join(root, n) for n in names]
        self.assertEqual(found, [], "unexpected local mail (a bounce?)")

    # 1
    def test_01_preference_order(self):
        self.start_dns(mx("pref.test", (10, "mx1.pref.test", A), (20, "mx2.pref.test", B)))
        best, worse = self.sink(A), self.sink(B)
        d = self.serve()
        body = message("pref")
        self.send(d, ["bob@pref.test"], body)
        got = best.wait_messages(1)
        self.assertEqual(got[0].rcpts, ["bob@pref.test"])
        self.assertRelayed(got[0], body)
        self.wait_queue_empty()
        time.sleep(QUIET)
        self.assertEqual(len(best.messages()), 1)
        self.assertEqual(worse.connections(), 0, "a worse preference was contacted")

    # 2
    def test_02_fallback_on_refused_connection(self):
        self.start_dns(mx("refused.test", (10, "mx1.refused.test", UNREACHABLE),
                          (20, "mx2.refused.test", B)))
        backup = self.sink(B)
        d = self.serve()
        body = message("refused")
        self.send(d, ["bob@refused.test"], body)
        got = backup.wait_messages(1)
        self.assertEqual(got[0].rcpts, ["bob@refused.test"])
        self.assertRelayed(got[0], body)
        self.wait_queue_empty()
        # nothing listens on the better MX: only the log shows it was tried first (log lines
        # may be buffered for a moment)
        dead = re.compile(r"(^|\[)%s(\]|:)" % re.escape(UNREACHABLE))
        try:
            wait_until(lambda: [e for e in d.log_events("smtp_connect_failed")
                                if dead.search(e.get("addr", ""))],
                       what="event=smtp_connect_failed for " + UNREACHABLE)
        except AssertionError as e:
            raise AssertionError("%s; log tail:\n%s" % (e, d.stderr_tail())) from None

    # 2b
    def test_02b_backup_session_not_kept_for_new_mail(self):
        # the primary is down: the first message goes to the backup. Once the primary is up,
        # the next message goes there, not over a session kept open to the backup.
        self.start_dns(mx("primary.test", (10, "mx1.primary.test", A),
                          (20, "mx2.primary.test", B)))
        backup = self.sink(B)
        d = self.serve(self.conf(extra="smtp_host_memory = 0\n"))
        self.send(d, ["bob@primary.test"], message("first"))
        backup.wait_messages(1)
        self.wait_queue_empty()
        primary = self.sink(A)
        self.send(d, ["bob@primary.test"], message("second"))
        got = primary.wait_messages(1)
        self.assertIn(b"Subject: relay second", got[0].data)
        self.assertEqual(len(backup.messages()), 1)

    # 3
    def test_03_fallback_on_4xx_to_mail(self):
        self.start_dns(mx("soft.test", (10, "mx1.soft.test", A), (20, "mx2.soft.test", B)))
        refusing = self.sink(A, "-r", "MAIL")  # 450 4.3.0 to every MAIL
        backup = self.sink(B)
        d = self.serve()
        body = message("soft")
        self.send(d, ["bob@soft.test"], body)
        got = backup.wait_messages(1)
        self.assertRelayed(got[0], body)
        self.wait_queue_empty()
        self.assertGreaterEqual(len(refusing.commands("mail")), 1, "the best MX was not tried")
        self.assertEqual(refusing.messages(), [])

    def test_03b_fallback_on_421_greeting(self):
        self.start_dns(mx("busy.test", (10, "mx1.busy.test", A), (20, "mx2.busy.test", B)))
        busy = self.sink(A, "-Q", "CONNECT")  # 421 4.0.0 as the greeting, then close
        backup = self.sink(B)
        d = self.serve()
        body = message("busy")
        self.send(d, ["bob@busy.test"], body)
        got = backup.wait_messages(1)
        self.assertRelayed(got[0], body)
        self.wait_queue_empty()
        self.assertGreaterEqual(busy.connections(), 1, "the best MX was not tried")

    # 4
    def test_04_implicit_mx(self):
        dns = self.start_dns({("implicit.test", "A"): [C]})
        target = self.sink(C)
        d = self.serve()
        body = message("implicit")
        self.send(d, ["bob@implicit.test"], body)
        got = target.wait_messages(1)
        self.assertEqual(got[0].rcpts, ["bob@implicit.test"])
        self.assertRelayed(got[0], body)
        self.wait_queue_empty()
        self.assertTrue(dns.queried("implicit.test", "MX"), "no MX query before the fallback")

    # 5
    def test_05_null_mx_bounces(self):
        # the A record would be the implicit MX: a null MX must win over it
        self.start_dns({("nullmx.test", "MX"): NULL_MX, ("nullmx.test", "A"): [A]})
        decoy = self.sink(A)
        d = self.serve()
        self.send(d, ["bob@nullmx.test"], message("nullmx"))
        msg, rcpt = self.wait_bounce()
        self.assertEqual(rcpt["Final-Recipient"], "rfc822; bob@nullmx.test")
        self.assertEqual(rcpt["Action"], "failed")
        self.assertEqual(rcpt["Status"], "5.1.10")
        self.assertIn("556", rcpt["Diagnostic-Code"])
        self.assertIn("Message-ID: <nullmx@example.org>", msg.get_payload()[2].get_payload())
        self.wait_queue_empty()
        self.assertEqual(decoy.connections(), 0)

    # 6
    def test_06_5xx_at_rcpt_bounces_with_remote_reply(self):
        self.start_dns(mx("reject.test", (10, "mx1.reject.test", A)))
        reply = "550 5.1.1 <bob@reject.test>: Recipient address rejected: User unknown"
        rejecting = self.sink(A, "-f", "RCPT", "-B", reply)
        d = self.serve()
        self.send(d, ["bob@reject.test"], message("reject"))
        msg, rcpt = self.wait_bounce()
        self.assertIn("MAILER-DAEMON@%s" % HOSTNAME, msg["From"])
        self.assertEqual(rcpt["Final-Recipient"], "rfc822; bob@reject.test")
        self.assertEqual(rcpt["Action"], "failed")
        self.assertEqual(rcpt["Status"], "5.1.1")
        self.assertEqual(norm(rcpt["Diagnostic-Code"]), "smtp; " + reply)
        self.assertIsNotNone(rcpt["Remote-MTA"], "no Remote-MTA field")
        self.assertIn("mx1.reject.test", rcpt["Remote-MTA"].lower())
        self.wait_queue_empty()
        self.assertEqual(len(rejecting.commands("rcpt")), 1)
        self.assertEqual(rejecting.messages(), [])

    # 7
    def test_07_null_sender_5xx_no_bounce(self):
        self.start_dns(mx("reject.test", (10, "mx1.reject.test", A)))
        rejecting = self.sink(A, "-f", "RCPT", "-B", "550 5.1.1 no such user")
        d = self.serve()
        self.send(d, ["bob@reject.test"], message("nullsender"), sender="<>")
        wait_until(lambda: rejecting.commands("rcpt"), what="the RCPT at the MX")
        self.wait_queue_empty()
        time.sleep(QUIET)  # a bounce would be committed before the message is removed
        self.assertNoBounce()
        senders = [c.split(" ")[1].upper() for c in rejecting.commands("mail")]
        self.assertEqual(senders, ["FROM:<>"])

    # 8
    def test_08_4xx_then_success_on_retry(self):
        self.start_dns(mx("grey.test", (10, "mx1.grey.test", A)))
        grey = self.receiver(A, replies={"RCPT": ["451 4.7.1 greylisted, try again later"]})
        # 2 s: the queue keeps retry times in whole seconds, so "1s" may come back at once
        d = self.serve(self.conf(retry="2s"))
        body = message("grey")
        self.send(d, ["bob@grey.test"], body)
        got = grey.wait_delivered(1, timeout=WAIT + 5)
        self.wait_queue_empty()
        time.sleep(QUIET + 0.5)  # longer than the retry period: no second copy
        txns = grey.all_transactions()
        self.assertEqual(len(grey.delivered()), 1, txns)
        self.assertEqual(txns[0].refused_rcpts, ["bob@grey.test"], txns)
        self.assertEqual(got[0].rcpts, ["bob@grey.test"])
        _, rest = split_received(got[0].data)
        self.assertEqual(rest, body)
        gap = got[0].started - txns[0].started
        self.assertGreaterEqual(gap, 0.9, "retried after %.2fs: not by the 2s schedule" % gap)
        self.assertNoBounce()

    # 9
    def test_09_servfail_defers_then_delivers(self):
        dns = self.start_dns({("servfail.test", "MX"): SERVFAIL, ("mx1.servfail.test", "A"): [A]})
        target = self.sink(A)
        d = self.serve()
        body = message("servfail")
        qid = self.send(d, ["bob@servfail.test"], body)

        def deferred():
            out = self.queue_cmd("list")
            return "<bob@servfail.test>  deferred" in out and "4.4.3" in out and out
        try:
            wait_until(deferred, what="a deferred recipient with 4.4.3")
        except AssertionError as e:
            raise AssertionError("%s; queue list:\n%s" % (e, self.queue_cmd("list"))) from None
        self.assertEqual(self.queued(), [qid])
        self.assertEqual(target.connections(), 0)
        self.assertNoBounce()
        dns.set("servfail.test", "MX", [(10, "mx1.servfail.test")])
        self.queue_cmd("flush")
        # a resolver may keep the SERVFAIL a few seconds (unbound: 5 s); retries are 1 s apart
        got = target.wait_messages(1, timeout=WAIT + 5)
        self.assertRelayed(got[0], body)
        self.wait_queue_empty()
        time.sleep(QUIET)
        self.assertEqual(len(target.messages()), 1)
        self.assertNoBounce()

    # 10
    def test_10_equal_preference_race_takes_the_fast_host(self):
        self.start_dns(mx("race.test", (10, "slow.race.test", A), (10, "fast.race.test", B)))
        slow = self.sink(A, "-W", "connect:3")  # greets after 3 s
        fast = self.sink(B)
        d = self.serve()
        elapsed = []
        for i in range(5):
            t0 = time.monotonic()
            self.send(d, ["bob@race.test"], message("race%d" % i))
            fast.wait_messages(i + 1, timeout=2.5)  # never the 3 s of the slow greeting
            elapsed.append(round(time.monotonic() - t0, 2))
        self.wait_queue_empty()
        self.assertEqual(slow.messages(), [], "a message went to the slow host")
        self.assertLess(max(elapsed), 2.5, elapsed)
        self.assertEqual(len(fast.messages()), 5)

    # 11
    def test_11_dot_stuffing_end_to_end(self):
        self.start_dns(mx("dots.test", (10, "mx1.dots.test", A)))
        rcv = self.receiver(A)
        d = self.serve()
        body = message("dots", body=(b".\r\n..\r\n.foo\r\n...\r\n. \r\n"
                                     b"caf\xc3\xa9 8-bit line\r\n\r\n.\r\n"
                                     b"final line without CRLF"))
        self.send(d, ["bob@dots.test"], body)
        got = rcv.wait_delivered(1)[0]
        # smtplib ends the data with CRLF; that is what was queued after our Received:
        received, rest = split_received(got.data)
        self.assertIn("by %s" % HOSTNAME, received)
        self.assertEqual(rest, body + b"\r\n")
        # and the wire carried exactly the dot-stuffed form of it
        self.assertEqual(got.wire + b".\r\n", dot_stuff(got.data))
        self.wait_queue_empty()

    # 12
    def test_12_two_domains_one_copy_each(self):
        self.start_dns(tables(mx("a.test", (10, "mx.a.test", A)),
                              mx("b.test", (10, "mx.b.test", B))))
        sink_a, sink_b = self.sink(A), self.sink(B)
        d = self.serve()
        body = message("twodomains")
        self.send(d, ["x@a.test", "y@b.test"], body)
        got_a = sink_a.wait_messages(1)
        got_b = sink_b.wait_messages(1)
        self.wait_queue_empty()
        time.sleep(QUIET)
        self.assertEqual([m.rcpts for m in sink_a.messages()], [["x@a.test"]])
        self.assertEqual([m.rcpts for m in sink_b.messages()], [["y@b.test"]])
        self.assertRelayed(got_a[0], body)
        self.assertRelayed(got_b[0], body)

    # 13
    def test_13_kill9_after_remote_250_delivers_after_restart(self):
        self.start_dns(mx("crash.test", (10, "mx1.crash.test", A)))
        victim = []
        killed = threading.Event()

        def crash(_txn):
            # right after our 250 to the final dot: the daemon has not recorded it yet
            if victim and not killed.is_set():
                victim[0].signalled = True
                os.killpg(victim[0].proc.pid, signal.SIGKILL)
                killed.set()
        rcv = self.receiver(A, after_message=crash)
        d = self.serve(check_exit=False)
        victim.append(d)
        body = message("crash")
        self.send(d, ["bob@crash.test"], body)
        self.assertTrue(killed.wait(WAIT), "the message never reached the MX; transactions %r"
                        % rcv.all_transactions())
        self.assertEqual(d.stop(), -signal.SIGKILL)
        self.assertEqual(len(rcv.delivered()), 1)
        self.serve()
        self.wait_queue_empty()
        time.sleep(QUIET)
        copies = rcv.delivered()
        self.assertIn(len(copies), (1, 2), "delivered %d times" % len(copies))
        for t in copies:
            self.assertEqual(split_received(t.data)[1], body)
        self.assertNoBounce()

    # 13b
    def test_13b_kill9_while_waiting_for_the_mx_keeps_local_copies_single(self):
        # a local recipient is delivered at once; the remote one waits for a slow MX. A crash
        # during that wait must not deliver the local copy again after the restart.
        self.start_dns(mx("slow.test", (10, "mx1.slow.test", A)))
        self.receiver(A, greeting_delay=30)
        d = self.serve(check_exit=False)
        self.send(d, ["bob@example.org", "carol@slow.test"], message("checkpoint"))
        wait_until(lambda: self.maildir_new("bob"), what="bob's local copy")
        time.sleep(0.3)  # the checkpoint follows the Maildir delivery
        d.signalled = True
        os.killpg(d.proc.pid, signal.SIGKILL)
        self.assertEqual(d.stop(), -signal.SIGKILL)
        self.serve(self.conf(retry="1h"))
        time.sleep(2 * QUIET)
        self.assertEqual(len(self.maildir_new("bob")), 1, "bob's copy delivered again")
        out = self.queue_cmd("list")
        self.assertIn("<carol@slow.test>  pending", out)
        self.assertIn("<bob@example.org>  delivered", out)

    # 13c
    def test_13c_shutdown_while_waiting_counts_no_attempt(self):
        self.start_dns(mx("slow.test", (10, "mx1.slow.test", A)))
        self.receiver(A, greeting_delay=30)
        d = self.serve()
        self.send(d, ["carol@slow.test"], message("stopped"))
        wait_until(lambda: d.stderr_text().count("event=smtp_connect") == 0 and
                   "carol@slow.test" in self.queue_cmd("list"), what="the queued message")
        time.sleep(0.5)  # the relay is connecting: the MX has not greeted yet
        self.assertEqual(d.stop(), 0)
        out = self.queue_cmd("list")
        self.assertIn("<carol@slow.test>  pending", out)  # no attempt counted
        self.assertNotIn("shutting down", out)

    # 13d
    def test_13d_slow_destination_does_not_hold_back_other_mail(self):
        # one job slot (10 messages in flight at most) and one session per destination (2
        # messages of a destination in flight): 12 messages to an MX that never greets must
        # not keep a local message waiting for their timeouts
        self.start_dns(mx("slow.test", (10, "mx1.slow.test", A)))
        self.receiver(A, greeting_delay=30)
        d = self.serve(self.conf(extra="queue_concurrency = 1\ndestination_concurrency = 1\n"))
        for i in range(12):
            self.send(d, ["carol@slow.test"], message("slow%d" % i))
        t0 = time.monotonic()
        self.send(d, ["bob@example.org"], message("local"))
        wait_until(lambda: self.maildir_new("bob"), timeout=2.5,
                   what="the local message while 12 wait for a slow MX")
        self.assertLess(time.monotonic() - t0, 2.5)

    # 14
    def test_14_connection_reuse(self):
        self.start_dns(mx("reuse.test", (10, "mx.reuse.test", C)))
        # retries an hour apart: only the flush below releases the messages, all at once; at
        # most 2 sessions to the domain, so 10 messages need reuse to take fewer than 10
        d = self.serve(self.conf(retry="1h", extra="smtp_host_memory = 0\n"
                                                   "destination_concurrency = 2\n"))
        n = 10
        for i in range(n):
            self.send(d, ["bob@reuse.test"], message("reuse%d" % i))

        def all_deferred():
            return self.queue_cmd("list").count("<bob@reuse.test>  deferred") == n
        wait_until(all_deferred, what="%d deferred messages (the MX is down)" % n)
        target = self.sink(C)
        self.queue_cmd("flush")
        got = target.wait_messages(n, timeout=WAIT + 5)
        self.wait_queue_empty()
        tags = sorted(m.data.split(b"Subject: relay ")[1].split(b"\n")[0] for m in got)
        self.assertEqual(tags, sorted(b"reuse%d" % i for i in range(n)))
        self.assertLess(target.connections(), n,
                        "every message had its own connection: no reuse; smtp-sink log:\n%s"
                        % "\n".join(l for l in target.log_lines()
                                     if l.split(" ")[0].lower() in ("connect", "mail", "rset",
                                                                    "quit", "disconnect", ".")))

    # 15
    def test_15_real_postfix_receives_byte_exact(self):
        self.start_dns(mx("pf.test", (10, "mx.pf.test", E)))
        pf = self.postfix(E, domain="pf.test")
        d = self.serve()
        body = message("postfix", to="bob@pf.test",
                       body=b"first\r\n.\r\n..dots\r\n caf\xc3\xa9\r\n\r\nlast line")
        self.send(d, ["bob@pf.test"], body)
        files = pf.wait_delivered(1, timeout=WAIT + 10)
        fields, rest = split_trace_headers(read_file(files[0]))
        self.assertEqual(rest, lf(body + b"\r\n"))
        self.assertEqual(fields[0], "Return-Path: <%s>" % SENDER)
        self.assertIn("Delivered-To: bob@pf.test", fields)
        received = [f for f in fields if f.startswith("Received:")]
        self.assertEqual(len(received), 2, fields)
        self.assertIn("from %s" % HOSTNAME, received[0])
        self.assertIn("(Postfix)", received[0])
        self.assertIn("by %s" % HOSTNAME, received[1])
        self.wait_queue_empty()
        time.sleep(QUIET)
        self.assertEqual(len(pf.delivered()), 1)

    # 16
    def test_16_smarthost_without_mx_lookup(self):
        # no DNS data for smarthost.test at all: an MX lookup would get NXDOMAIN and bounce
        dns = self.start_dns({})
        port = pick_mx_port((D,))
        while port == self.port:
            port = pick_mx_port((D,))
        decoy = self.sink(D)  # the MX port on the same address: must stay unused
        smarthost = self.sink(D, port=port)
        d = self.serve(self.conf(sections="[relay smart]\n"
                                          "host = %s:%d\n"
                                          "tls = none\n"
                                          "domains = smarthost.test\n" % (D, port)))
        body = message("smarthost")
        self.send(d, ["bob@smarthost.test"], body)
        got = smarthost.wait_messages(1)
        self.assertEqual(got[0].rcpts, ["bob@smarthost.test"])
        self.assertRelayed(got[0], body)
        self.wait_queue_empty()
        self.assertEqual(dns.queried("smarthost.test"), [])
        self.assertEqual(decoy.connections(), 0)
        self.assertNoBounce()


if __name__ == "__main__":
    unittest.main()
