"""Integration tests for local delivery from the durable queue (issue 4): `[domain]` sections,
recipient checks at RCPT (550 5.1.1 unknown, 550 5.7.1 relay denied), Maildir delivery
byte-exact with Return-Path/Delivered-To, aliases, catch-all, plus-addressing and Maildir++
folders, mail-loop refusal (554 5.4.6), RFC 3464 bounces parsed with Python's email package,
no bounce for the null sender, and the `posthorn queue` tools through the control socket and
offline. Real daemon, real smtplib client, real files."""
import email
import email.policy
import os
import signal
import smtplib
import subprocess
import time
import unittest

from phtest import BIN, TIMEOUT, Daemon, PosthornTestCase, dns_blackhole

HELO = "client.example"
WAIT = 15.0


def maildir_files(path, sub="new"):
    d = os.path.join(path, sub)
    if not os.path.isdir(d):
        return []
    return sorted(os.path.join(d, n) for n in os.listdir(d))


def wait_until(predicate, timeout=WAIT, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = predicate()
        if v:
            return v
        time.sleep(0.05)
    raise AssertionError("timed out waiting for " + what)


def read(path):
    with open(path, "rb") as f:
        return f.read()


class DeliveryCase(PosthornTestCase):
    def setUp(self):
        self.dir = self.tmpdir()
        self.qdir = os.path.join(self.dir, "q")
        self.mail = os.path.join(self.dir, "mail")
        self.conf_path = os.path.join(self.dir, "posthorn.conf")

    def conf(self, globals_="", domains=None, retry="1s"):
        if domains is None:
            domains = ("[domain example.org]\n"
                       "maildir = %s/%%d/%%u/Maildir\n"
                       "users = alice bob postmaster\n" % self.mail)
        return ("hostname = mx.test\n"
                "delivery = queue\n"
                "queue_dir = %s\n"
                "queue_retry_schedule = %s\n%s"
                "[listener mx]\n"
                "listen = 127.0.0.1:0\n%s" % (self.qdir, retry, globals_, domains))

    def serve(self, text, check_exit=True):
        with open(self.conf_path, "w") as f:
            f.write(text)
        d = Daemon([BIN, "serve", "--config", self.conf_path], listeners=1)
        self.addCleanup(self._finish, d, check_exit)
        d.start()
        return d

    def smtp(self, d):
        s = smtplib.SMTP("127.0.0.1", d.port, local_hostname=HELO, timeout=TIMEOUT)
        self.addCleanup(self._close, s)
        return s

    @staticmethod
    def _close(s):
        try:
            s.quit()
        except Exception:
            s.close()

    def maildir(self, user, domain="example.org"):
        return os.path.join(self.mail, domain, user, "Maildir")

    def queued(self):
        q = os.path.join(self.qdir, "queue")
        return sorted(n[:-4] for n in os.listdir(q) if n.endswith(".env"))

    def queue_cmd(self, *args, expect_rc=0):
        p = subprocess.run([BIN, "queue", "--config", self.conf_path] + list(args),
                           capture_output=True, timeout=TIMEOUT)
        self.assertEqual(p.returncode, expect_rc, (args, p.stdout, p.stderr))
        return p.stdout.decode(), p.stderr.decode()


class LocalDelivery(DeliveryCase):
    def test_maildir_byte_exact(self):
        d = self.serve(self.conf())
        s = self.smtp(d)
        body = (b"Subject: exact\r\nX-Eight: caf\xc3\xa9\r\n\r\nline one\r\n"
                b"..leading dot\r\n.\r\n" b"last line without dot\r\n")
        s.sendmail("carol@example.net", ["alice@example.org"], body)
        files = wait_until(lambda: maildir_files(self.maildir("alice")), what="maildir file")
        self.assertEqual(len(files), 1)
        data = read(files[0])
        head = b"Return-Path: <carol@example.net>\nDelivered-To: alice@example.org\nReceived: from "
        self.assertTrue(data.startswith(head), data[:200])
        # smtplib dot-stuffs; the server unstuffs; the Maildir copy has LF line ends
        expected_tail = body.replace(b"\r\n", b"\n")
        self.assertTrue(data.endswith(expected_tail), data)
        self.assertNotIn(b"\r", data)
        self.assertEqual(data.count(b"Received: "), 1)
        # file name per the Maildir spec, with the size; tmp/ left empty
        name = os.path.basename(files[0])
        self.assertRegex(name, r"^\d+\.M\d+P\d+Q\d+\.[^/:]+,S=%d$" % len(data))
        self.assertEqual(maildir_files(self.maildir("alice"), "tmp"), [])
        wait_until(lambda: self.queued() == [], what="queue to empty")
        d.wait_log("delivery", status="sent", rcpt="alice@example.org", relay="maildir")
        d.wait_log("removed")

    def test_unknown_user_refused_at_rcpt(self):
        d = self.serve(self.conf())
        s = self.smtp(d)
        s.ehlo(HELO)
        s.mail("carol@example.net")
        code, text = s.rcpt("nobody@example.org")
        self.assertEqual(code, 550)
        self.assertTrue(text.startswith(b"5.1.1 "), text)
        self.assertEqual(s.rcpt("Bob@EXAMPLE.org")[0], 250)  # case-insensitive
        code, _ = s.data(b"Subject: x\r\n\r\nbody\r\n")
        self.assertEqual(code, 250)
        files = wait_until(lambda: maildir_files(self.maildir("bob")), what="bob's mail")
        self.assertIn(b"Delivered-To: bob@example.org\n", read(files[0]))

    def test_relay_denied_without_permission(self):
        d = self.serve(self.conf())
        s = self.smtp(d)
        s.ehlo(HELO)
        s.mail("carol@example.net")
        code, text = s.rcpt("someone@elsewhere.example")
        self.assertEqual(code, 550)
        self.assertTrue(text.startswith(b"5.7.1 "), text)
        self.assertEqual(s.rcpt("<Postmaster>")[0], 250)  # RFC 5321 4.5.1

    def test_relay_networks_may_relay(self):
        d = self.serve(self.conf("relay_networks = 10.0.0.0/8 127.0.0.0/8\n"
                                 "dns_forwarders = %s\ndns_timeout = 1s\n" % dns_blackhole()))
        s = self.smtp(d)
        s.sendmail("alice@example.org", ["someone@elsewhere.example"], b"Subject: out\r\n\r\nx\r\n")
        # accepted for relaying; the DNS never answers, so it waits deferred with the reason
        out = wait_until(lambda: "deferred" in self.queue_cmd("list")[0] and
                         self.queue_cmd("list")[0], what="deferred entry")
        self.assertIn("<someone@elsewhere.example>  deferred attempts=", out)
        self.assertIn("4.4.3", out)

    def test_aliases_catch_all_plus_and_folders(self):
        aliases = os.path.join(self.dir, "aliases")
        with open(aliases, "w") as f:
            f.write("# team list\nteam: alice,\n  bob\nboss: alice\n")
        domains = ("[domain example.org]\n"
                   "maildir = %s/%%d/%%u/Maildir\n"
                   "users = alice bob postmaster\n"
                   "aliases = %s\n"
                   "[domain catch.example]\n"
                   "maildir = %s/%%d/%%u/Maildir\n"
                   "users = sink\n"
                   "catch_all = sink\n" % (self.mail, aliases, self.mail))
        os.makedirs(os.path.join(self.maildir("bob"), ".news", "new"))
        d = self.serve(self.conf(domains=domains))
        s = self.smtp(d)
        s.sendmail("carol@example.net", ["team@example.org", "boss@example.org"],
                   b"Subject: team\r\n\r\nto the team\r\n")
        s.sendmail("carol@example.net", ["bob+news@example.org"], b"Subject: news\r\n\r\nn\r\n")
        s.sendmail("carol@example.net", ["anything@catch.example"], b"Subject: c\r\n\r\nc\r\n")
        a = wait_until(lambda: maildir_files(self.maildir("alice")), what="alice")
        b = wait_until(lambda: maildir_files(self.maildir("bob")), what="bob")
        news = wait_until(lambda: maildir_files(os.path.join(self.maildir("bob"), ".news")),
                          what="bob's .news folder")
        c = wait_until(lambda: maildir_files(self.maildir("sink", "catch.example")), what="sink")
        time.sleep(0.3)
        # team + boss both reach alice: one copy (duplicates removed at acceptance)
        self.assertEqual(len(maildir_files(self.maildir("alice"))), 1)
        self.assertEqual(len(b), 1)
        self.assertIn(b"Subject: team", read(a[0]))
        self.assertIn(b"Delivered-To: bob+news@example.org\n", read(news[0]))
        self.assertIn(b"Delivered-To: sink@catch.example\n", read(c[0]))

    def test_sighup_rereads_mailboxes_and_aliases(self):
        boxes = os.path.join(self.dir, "mailboxes")
        aliases = os.path.join(self.dir, "aliases")
        with open(boxes, "w") as f:
            f.write("alice\n")
        with open(aliases, "w") as f:
            f.write("# none yet\n")
        d = self.serve(self.conf(domains="[domain example.org]\n"
                                         "maildir = %s/%%d/%%u/Maildir\n"
                                         "mailboxes = %s\naliases = %s\n"
                                         % (self.mail, boxes, aliases)))
        s = self.smtp(d)
        s.ehlo(HELO)
        s.mail("carol@example.net")
        self.assertEqual(s.rcpt("bob@example.org")[0], 550)
        s.rset()
        with open(boxes, "a") as f:
            f.write("bob\n")
        with open(aliases, "w") as f:
            f.write("sales: bob\n")
        d.send_signal(signal.SIGHUP)
        d.signalled = False  # a reload, not a stop: the exit code still counts
        d.wait_log("reload", result="ok")
        d.wait_log("qmgr_restart")
        d.wait_log("retiring")  # the old worker stopped accepting: new sessions get new tables
        s2 = smtplib.SMTP("127.0.0.1", d.port, local_hostname=HELO, timeout=TIMEOUT)
        self.addCleanup(self._close, s2)
        s2.sendmail("carol@example.net", ["bob@example.org", "sales@example.org"],
                    b"Subject: after reload\r\n\r\nx\r\n")
        files = wait_until(lambda: maildir_files(self.maildir("bob")), what="bob's mail")
        time.sleep(0.3)
        self.assertEqual(len(maildir_files(self.maildir("bob"))), 1)  # sales -> bob: one copy
        self.assertIn(b"Subject: after reload", read(files[0]))
        # a broken file keeps the table that works
        with open(aliases, "w") as f:
            f.write("broken line without colon\n")
        d.send_signal(signal.SIGHUP)
        d.signalled = False
        d.wait_log("reload", result="failed")
        s2.ehlo(HELO)
        s2.mail("carol@example.net")
        self.assertEqual(s2.rcpt("sales@example.org")[0], 250)

    def test_mail_loop_refused(self):
        d = self.serve(self.conf())
        s = self.smtp(d)
        hops = b"".join(b"Received: from hop%d.example by x; Tue, 24 Nov 2026 00:00:00 +0000\r\n" % i
                        for i in range(100))
        with self.assertRaises(smtplib.SMTPDataError) as cm:
            s.sendmail("carol@example.net", ["alice@example.org"], hops + b"\r\nlooping\r\n")
        self.assertEqual(cm.exception.smtp_code, 554)
        self.assertTrue(cm.exception.smtp_error.startswith(b"5.4.6 "), cm.exception.smtp_error)
        # 99 earlier hops plus ours is 100: still fine
        s.sendmail("carol@example.net", ["alice@example.org"], hops[:hops.index(b"Received: from hop99")]
                   + b"\r\nfine\r\n")
        wait_until(lambda: maildir_files(self.maildir("alice")), what="delivery")
        wait_until(lambda: self.queued() == [], what="queue to empty")


class Bounces(DeliveryCase):
    def broken_conf(self):
        # alice's Maildir lies below a regular file: ENOTDIR, a permanent failure
        blocker = os.path.join(self.dir, "blocker")
        with open(blocker, "w") as f:
            f.write("not a directory\n")
        boxes = os.path.join(self.dir, "mailboxes")
        with open(boxes, "w") as f:
            f.write("alice %s/Maildir\nbob\n" % blocker)
        return self.conf(domains="[domain example.org]\n"
                                 "maildir = %s/%%d/%%u/Maildir\n"
                                 "mailboxes = %s\n" % (self.mail, boxes))

    def test_permanent_failure_bounces_to_sender(self):
        d = self.serve(self.broken_conf())
        s = self.smtp(d)
        original = b"Subject: will bounce\r\nMessage-ID: <orig@example.org>\r\n\r\nbody\r\n"
        s.sendmail("bob@example.org", ["alice@example.org"], original)
        files = wait_until(lambda: maildir_files(self.maildir("bob")), what="the bounce")
        raw = read(files[0])
        self.assertTrue(raw.startswith(b"Return-Path: <>\nDelivered-To: bob@example.org\n"), raw[:200])
        msg = email.message_from_bytes(raw, policy=email.policy.default)
        self.assertEqual(msg.get_content_type(), "multipart/report")
        self.assertEqual(msg.get_param("report-type"), "delivery-status")
        self.assertIn("MAILER-DAEMON@mx.test", msg["From"])
        self.assertEqual(msg["Auto-Submitted"], "auto-replied")
        parts = msg.get_payload()
        self.assertEqual([p.get_content_type() for p in parts],
                         ["text/plain", "message/delivery-status", "text/rfc822-headers"])
        blocks = parts[1].get_payload()
        rcpt = blocks[1]
        self.assertEqual(rcpt["Final-Recipient"], "rfc822; alice@example.org")
        self.assertEqual(rcpt["Action"], "failed")
        self.assertTrue(rcpt["Status"].startswith("5."), rcpt["Status"])
        self.assertIn("maildir", rcpt["Diagnostic-Code"])
        self.assertIn("Message-ID: <orig@example.org>", parts[2].get_payload())
        d.wait_log("bounce")
        wait_until(lambda: self.queued() == [], what="queue to empty")

    def test_null_sender_gets_no_bounce(self):
        d = self.serve(self.broken_conf())
        s = self.smtp(d)
        s.sendmail("<>", ["alice@example.org"], b"Subject: from nobody\r\n\r\nx\r\n")
        d.wait_log("bounce_skipped", reason="null_sender", timeout=WAIT)
        wait_until(lambda: self.queued() == [], what="queue to empty")
        time.sleep(0.3)
        self.assertEqual(maildir_files(self.maildir("bob")), [])


class QueueTools(DeliveryCase):
    def lmtp_conf(self):
        # an LMTP server that is not there: deliveries are deferred and stay in the queue
        return self.conf(retry="1h", domains=(
            "[domain example.org]\n"
            "maildir = %s/%%d/%%u/Maildir\n"
            "users = alice bob\n"
            "[domain lmtp.example]\n"
            "transport = lmtp\n"
            "lmtp = unix:%s/no-such-socket\n"
            "users = dave\n" % (self.mail, self.dir)))

    def deferred_message(self, d, sender="alice@example.org"):
        s = self.smtp(d)
        s.sendmail(sender, ["dave@lmtp.example"], b"Subject: waits\r\n\r\nx\r\n")
        wait_until(lambda: "deferred" in self.queue_cmd("list")[0], what="deferred")
        return self.queued()[-1]

    def test_list_show_hold_release_delete(self):
        d = self.serve(self.lmtp_conf())
        qid = self.deferred_message(d)
        out, _ = self.queue_cmd("list")
        self.assertRegex(out, r"(?m)^%s  \d+  \d+s  <alice@example.org>$" % qid)
        self.assertIn("<dave@lmtp.example>  deferred attempts=1 next=in", out)
        self.assertIn("no-such-socket", out)
        self.assertIn("-- 1 message, ", out)
        out, _ = self.queue_cmd("show", qid)
        self.assertIn("protocol: ESMTP", out)
        self.assertIn("helo: client.example", out)
        self.assertIn("Subject: waits", out)
        self.queue_cmd("hold", qid)
        self.assertRegex(self.queue_cmd("list")[0], r"(?m)^%s .*  HELD$" % qid)
        self.queue_cmd("release", qid)
        self.assertNotIn("HELD", self.queue_cmd("list")[0])
        _, err = self.queue_cmd("delete", "NOSUCHID000000", expect_rc=1)
        self.assertIn("no such message", err)
        self.queue_cmd("delete", qid)
        self.assertEqual(self.queued(), [])
        self.assertIn("queue is empty", self.queue_cmd("list")[0])
        d.wait_log("queue_deleted", qid=qid)

    def test_flush_retries_now(self):
        d = self.serve(self.lmtp_conf())
        qid = self.deferred_message(d)
        self.queue_cmd("flush")
        wait_until(lambda: "attempts=2" in self.queue_cmd("show", qid)[0], what="second attempt")

    def test_bounce_command_returns_message(self):
        d = self.serve(self.lmtp_conf())
        qid = self.deferred_message(d, sender="bob@example.org")
        self.queue_cmd("bounce", qid)
        files = wait_until(lambda: maildir_files(self.maildir("bob")), what="the bounce")
        msg = email.message_from_bytes(read(files[0]), policy=email.policy.default)
        status = msg.get_payload()[1].get_payload()[1]
        self.assertEqual(status["Final-Recipient"], "rfc822; dave@lmtp.example")
        self.assertEqual(status["Action"], "failed")
        wait_until(lambda: qid not in self.queued(), what="message gone")

    def test_offline_list_and_permissions(self):
        d = self.serve(self.lmtp_conf())
        qid = self.deferred_message(d)
        # another user may not use the control socket
        p = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                            BIN, "queue", "--config", self.conf_path, "list"],
                           capture_output=True, timeout=TIMEOUT)
        self.assertNotEqual(p.returncode, 0, p.stdout)
        self.assertNotIn(qid.encode(), p.stdout)
        d.stop()
        out, _ = self.queue_cmd("list")  # no daemon: read from the spool directory
        self.assertIn(qid, out)
        self.assertIn("deferred", out)
        _, err = self.queue_cmd("flush", expect_rc=1)
        self.assertIn("needs the running daemon", err)
        self.queue_cmd("hold", qid)
        self.assertIn("HELD", self.queue_cmd("list")[0])


def write_queued(qdir, qid, sender, rcpt, received, data, corrupt=False):
    """A committed message as the spool writes it (queue/<qid>.msg, then .env with its FNV-1a
    end line), for tests that need an old or damaged one."""
    from test_queue_faults import fnv1a64
    q = os.path.join(qdir, "queue")
    os.makedirs(q, exist_ok=True)
    with open(os.path.join(q, qid + ".msg"), "wb") as f:
        f.write(data)
    env = ("posthorn-envelope 1\nid %s\nreceived %d\nclient 127.0.0.1\nprotocol ESMTP\n"
           "from <%s>\nsize %d\nrcpt <%s> pending\n" % (qid, received, sender, len(data), rcpt))
    end = "end %016x\n" % fnv1a64(env.encode())
    if corrupt:
        end = "end %016x\n" % (fnv1a64(env.encode()) ^ 1)
    with open(os.path.join(q, qid + ".env"), "w") as f:
        f.write(env + end)


class Lifetime(DeliveryCase):
    def test_expired_message_bounces_with_4_4_7(self):
        # dave's LMTP server is not there; the message arrived 2 minutes ago and may live 1m
        write_queued(self.qdir, "OLDMESSAGE00001", "bob@example.org", "dave@lmtp.example",
                     int(time.time()) - 120, b"Subject: old\r\n\r\nold\r\n")
        d = self.serve(QueueTools.lmtp_conf(self).replace(
            "queue_retry_schedule", "queue_lifetime = 1m\nqueue_retry_schedule"))
        files = wait_until(lambda: maildir_files(self.maildir("bob")), what="the bounce")
        msg = email.message_from_bytes(read(files[0]), policy=email.policy.default)
        status = msg.get_payload()[1].get_payload()[1]
        self.assertEqual(status["Final-Recipient"], "rfc822; dave@lmtp.example")
        self.assertEqual(status["Status"], "4.4.7")
        self.assertIn("delivery time expired", status["Diagnostic-Code"])
        d.wait_log("delivery", qid="OLDMESSAGE00001", status="bounced")
        wait_until(lambda: self.queued() == [], what="queue to empty")

    def test_corrupt_envelope_moved_aside(self):
        write_queued(self.qdir, "DAMAGED00000001", "bob@example.org", "alice@example.org",
                     int(time.time()), b"Subject: damaged\r\n\r\nx\r\n", corrupt=True)
        d = self.serve(self.conf())
        d.wait_log("queue_corrupt", qid="DAMAGED00000001")
        self.assertEqual(sorted(os.listdir(os.path.join(self.qdir, "corrupt"))),
                         ["DAMAGED00000001.env", "DAMAGED00000001.msg"])
        self.assertEqual(self.queued(), [])
        self.assertEqual(maildir_files(self.maildir("alice")), [])  # never delivered


class Restart(DeliveryCase):
    def test_kill9_then_restart_delivers_each_acknowledged_message(self):
        d = self.serve(self.conf(), check_exit=False)
        acked = []
        for i in range(30):
            s = smtplib.SMTP("127.0.0.1", d.port, local_hostname=HELO, timeout=TIMEOUT)
            s.sendmail("carol@example.net", ["alice@example.org"],
                       b"Subject: n%d\r\nMessage-ID: <m%d@test>\r\n\r\nx\r\n" % (i, i))
            s.quit()
            acked.append(b"<m%d@test>" % i)
            if i == 20:
                d.stop(sig=signal.SIGKILL)  # as a crash, while deliveries are running
                d = self.serve(self.conf())
        wait_until(lambda: self.queued() == [], what="queue to drain")
        seen = {}
        for f in maildir_files(self.maildir("alice")):
            data = read(f)
            mid = data[data.index(b"Message-ID: ") + 12:].split(b"\n")[0]
            seen[mid] = seen.get(mid, 0) + 1
        for mid in acked:
            self.assertIn(mid, seen, "acknowledged %r lost" % mid)
            self.assertLessEqual(seen[mid], 2, "%r delivered more than twice" % mid)


if __name__ == "__main__":
    unittest.main()
