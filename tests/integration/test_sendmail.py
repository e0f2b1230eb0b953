"""Integration tests for `posthorn sendmail` / `posthorn send` (issue 5's local injection):
a message on standard input is committed to the durable queue and delivered by the running
daemon; -t takes To/Cc/Bcc (Bcc removed), -i keeps lone dots, LF input becomes CRLF in the
queue (LF again in the Maildir), missing From/Date/Message-ID are added, unknown local users
are refused with exit 67, the command works through a link named `sendmail`, and a message
queued while the daemon is down is delivered when it starts."""
import os
import subprocess
import unittest

from phtest import BIN, TIMEOUT
from test_delivery import DeliveryCase, maildir_files, read, wait_until


class Sendmail(DeliveryCase):
    def run_cmd(self, argv, data, expect_rc=0):
        p = subprocess.run(argv, input=data, capture_output=True, timeout=TIMEOUT)
        self.assertEqual(p.returncode, expect_rc, (argv, p.stdout, p.stderr))
        return p.stdout.decode(), p.stderr.decode()

    def sendmail(self, *args, data=b"", expect_rc=0):
        return self.run_cmd([BIN, "sendmail", "-C", self.conf_path] + list(args), data, expect_rc)

    def test_extract_recipients_and_bcc(self):
        self.serve(self.conf())
        msg = (b"From: Carol <carol@example.org>\nTo: Alice <alice@example.org>\n"
               b"Bcc: bob@example.org\nSubject: by sendmail\n\nline one\n.\nline three\n")
        self.sendmail("-t", "-i", "-f", "carol@example.org", data=msg)
        for user in ("alice", "bob"):
            files = wait_until(lambda: maildir_files(self.maildir(user)), what=user)
            data = read(files[0])
            self.assertTrue(data.startswith(b"Return-Path: <carol@example.org>\nDelivered-To: "
                                            + user.encode() + b"@example.org\nReceived: by mx.test "
                                            b"(Posthorn, from userid "), data[:200])
            self.assertNotIn(b"Bcc", data)
            self.assertIn(b"\nDate: ", data)
            self.assertIn(b"\nMessage-ID: <", data)
            self.assertTrue(data.endswith(b"\n\nline one\n.\nline three\n"), data)
        wait_until(lambda: self.queued() == [], what="queue to empty")

    def test_send_prints_queue_id_and_lone_dot_ends_sendmail(self):
        d = self.serve(self.conf())
        out, _ = self.run_cmd([BIN, "send", "-C", self.conf_path, "alice@example.org"],
                              b"Subject: s\n\n.\nkept after the dot\n")
        qid = out.strip().split()[-1]
        self.assertRegex(out, r"^queued as [0-9A-Z]{15}\n$")
        files = wait_until(lambda: maildir_files(self.maildir("alice")), what="alice")
        self.assertIn(b"kept after the dot", read(files[0]))
        d.wait_log("delivery", qid=qid, status="sent")
        # sendmail without -i: a lone dot ends the message
        self.sendmail("bob@example.org", data=b"Subject: t\n\nbefore\n.\nafter\n")
        files = wait_until(lambda: maildir_files(self.maildir("bob")), what="bob")
        data = read(files[0])
        self.assertTrue(data.endswith(b"\n\nbefore\n"), data)

    def test_unknown_local_user_and_usage(self):
        self.serve(self.conf())
        _, err = self.sendmail("nobody@example.org", data=b"x\n", expect_rc=67)
        self.assertIn("no such user", err)
        self.sendmail(data=b"x\n", expect_rc=64)  # no recipients, no -t
        self.assertEqual(self.queued(), [])

    def test_link_named_sendmail_and_queue_while_down(self):
        link = os.path.join(self.dir, "sendmail")
        os.symlink(BIN, link)
        with open(self.conf_path, "w") as f:
            f.write(self.conf())
        self.run_cmd([link, "-C", self.conf_path, "-oi", "alice@example.org"],
                     b"Subject: while down\n\nqueued first\n")
        self.assertEqual(len(self.queued()), 1)  # committed, waiting for the daemon
        out, _ = self.run_cmd([link, "-C", self.conf_path, "-bp"], b"")
        self.assertIn("<alice@example.org>  pending", out)
        self.serve(self.conf())
        files = wait_until(lambda: maildir_files(self.maildir("alice")), what="delivery")
        self.assertIn(b"queued first", read(files[0]))


if __name__ == "__main__":
    unittest.main()
