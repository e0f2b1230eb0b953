"""Integration tests: `posthorn serve` delivering from its queue to a REAL Dovecot over LMTP
(issue 4). One LMTP session per message and destination with one reply per recipient
(partial success: Dovecot's 550 5.1.1 becomes a bounce, the others are delivered), and a
temporary failure (Dovecot not running yet) retried until it succeeds. Dovecot runs from
tests/integration/dovecot.py with its own temp directory."""
import email
import email.policy
import os
import tempfile
import shutil
import unittest

from dovecot import DOVECOT, Dovecot, strip_dovecot_headers
from phtest import BIN, Daemon
from test_delivery import DeliveryCase, read, wait_until
from test_queue_faults import FAULTFS


@unittest.skipUnless(os.path.exists(DOVECOT), "Dovecot is not installed (scripts/setup.sh "
                     "installs dovecot-core dovecot-lmtpd)")
class DovecotDelivery(DeliveryCase):
    def setUp(self):
        super().setUp()
        root = tempfile.mkdtemp(prefix="posthorn-dovecot-")
        self.addCleanup(shutil.rmtree, root, True)
        self.dc = Dovecot(root)

    def start_dovecot(self):
        self.dc.start()
        self.addCleanup(self.dc.stop)

    def lmtp_conf(self, users="alice bob carol", retry="1s"):
        # example.org is delivered by Dovecot; zed is a user Posthorn accepts but Dovecot does
        # not know (an out-of-sync user list: Dovecot's 550 5.1.1 must become a bounce)
        return self.conf(retry=retry, domains=(
            "[domain example.org]\n"
            "transport = lmtp\n"
            "lmtp = unix:%s\n"
            "lmtp_timeout = 10s\n"
            "users = %s\n" % (self.dc.sock, users)))

    def dovecot_mail(self, user):
        return self.dc.maildir_new(user)

    def test_two_recipients_one_session_byte_exact(self):
        self.start_dovecot()
        d = self.serve(self.lmtp_conf())
        s = self.smtp(d)
        body = b"Subject: via lmtp\r\n\r\nfirst line\r\n.dot line\r\n..two dots\r\nend\r\n"
        s.sendmail("carol@example.org", ["alice@example.org", "bob@example.org"], body)
        for user in ("alice", "bob"):
            files = wait_until(lambda: self.dovecot_mail(user), what=user + "'s mail")
            rp, rest = strip_dovecot_headers(read(files[0]))
            self.assertEqual(rp, b"Return-Path: <carol@example.org>")
            # Posthorn's Received: is part of the message; after it, the body byte-exact
            self.assertTrue(rest.endswith(body.replace(b"\r\n", b"\n")), rest)
        wait_until(lambda: self.queued() == [], what="queue to empty")
        ev = d.wait_log("delivery", n=2, status="sent")
        self.assertTrue(all(e.get("relay", "").startswith("lmtp:unix:") for e in ev), ev)

    def test_partial_success_bounces_the_refused_recipient(self):
        self.start_dovecot()
        d = self.serve(self.lmtp_conf(users="alice bob carol zed"))
        s = self.smtp(d)
        s.sendmail("carol@example.org", ["alice@example.org", "zed@example.org"],
                   b"Subject: half\r\n\r\nhalf\r\n")
        wait_until(lambda: self.dovecot_mail("alice"), what="alice's mail")
        d.wait_log("delivery", status="bounced", rcpt="zed@example.org")
        bounce = wait_until(lambda: self.dovecot_mail("carol"), what="the bounce to carol")
        msg = email.message_from_bytes(read(bounce[0]), policy=email.policy.default)
        self.assertEqual(msg.get_content_type(), "multipart/report")
        status = msg.get_payload()[1].get_payload()[1]
        self.assertEqual(status["Final-Recipient"], "rfc822; zed@example.org")
        self.assertEqual(status["Status"], "5.1.1")
        self.assertIn("550", status["Diagnostic-Code"])
        wait_until(lambda: self.queued() == [], what="queue to empty")

    def test_deferred_while_down_then_delivered(self):
        d = self.serve(self.lmtp_conf())  # Dovecot not started: the socket is missing
        s = self.smtp(d)
        s.sendmail("carol@example.org", ["bob@example.org"], b"Subject: later\r\n\r\nlater\r\n")
        out = wait_until(lambda: "deferred" in self.queue_cmd("list")[0] and
                         self.queue_cmd("list")[0], what="deferred")
        self.assertIn("451 4.4.1", out)
        self.start_dovecot()
        self.queue_cmd("flush")
        wait_until(lambda: self.dovecot_mail("bob"), what="delivery after the retry")
        wait_until(lambda: self.queued() == [], what="queue to empty")
        d.wait_log("delivery", status="sent", rcpt="bob@example.org")

    def test_destination_concurrency_limit(self):
        # one LMTP session at a time; the shim slows the queue manager's socket writes so
        # sessions overlap in time: the others must wait (destination_busy), then all arrive
        self.start_dovecot()
        rules = os.path.join(self.dir, "rules")
        with open(rules, "w") as f:
            f.write("# nothing yet\n")
        with open(self.conf_path, "w") as f:
            f.write(self.lmtp_conf().replace("queue_retry_schedule",
                                             "destination_concurrency = 1\nqueue_retry_schedule"))
        env = dict(os.environ, LD_PRELOAD=FAULTFS, PH_FAULT_FILE=rules,
                   PH_FAULT_LOG=os.path.join(self.dir, "fault.log"))
        env["ASAN_OPTIONS"] = env.get("ASAN_OPTIONS", "") + ":verify_asan_link_order=0"
        d = Daemon([BIN, "serve", "--config", self.conf_path], listeners=1, env=env)
        self.addCleanup(self._finish, d, True)
        d.start()
        qmgr = d.wait_log("qmgr_start")[0]["pid"]
        with open(rules + ".tmp", "w") as f:
            f.write("anywrite none path=socket:* pid=%s delay=150\n" % qmgr)
        os.rename(rules + ".tmp", rules)
        s = self.smtp(d)
        for i in range(4):
            s.sendmail("carol@example.org", ["alice@example.org"], b"Subject: m%d\r\n\r\nx\r\n" % i)
        wait_until(lambda: len(self.dovecot_mail("alice")) == 4, timeout=30, what="4 deliveries")
        self.assertTrue(d.log_events("destination_busy"), "no session ever waited")
        wait_until(lambda: self.queued() == [], what="queue to empty")


if __name__ == "__main__":
    unittest.main()
