"""
test_clients.py - real third-party SMTP clients against `posthorn sink`: curl (smtp:// upload),
swaks (plain, pipelined, HELO mode, several recipients) and Postfix's smtp-source (10 parallel
sessions x 100 messages each over kept-open connections, and one connection per message).
"""

import os
import shutil
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from phtest import PosthornTestCase, simple_message, split_received, wait_store  # noqa: E402

CURL = shutil.which("curl") or "/usr/bin/curl"
SWAKS = "/usr/bin/swaks"
SMTP_SOURCE = "/usr/sbin/smtp-source"


def clean_env():
    """No proxies (curl would honour all_proxy for smtp://), C locale."""
    env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
    env["LC_ALL"] = "C"
    return env


class ClientCase(PosthornTestCase):

    def run_client(self, argv, timeout=60, expect_rc=0, stdin=None):
        try:
            p = subprocess.run(argv, input=stdin, stdin=None if stdin else subprocess.DEVNULL,
                               capture_output=True, timeout=timeout, env=clean_env())
        except subprocess.TimeoutExpired as e:
            self.fail("%s timed out after %ss; output: %r" % (argv[0], timeout, e.output))
        out = (p.stdout + p.stderr).decode("utf-8", "replace")
        if expect_rc is not None:
            self.assertEqual(p.returncode, expect_rc, "%s failed:\n%s\n--- daemon stderr:\n%s"
                             % (" ".join(argv), out[-3000:], self.d.stderr_tail()))
        return p.returncode, out


@unittest.skipUnless(os.path.exists(CURL), "curl not installed")
class Curl(ClientCase):

    def setUp(self):
        self.store = self.tmpdir()
        self.d = self.start_sink("--store", self.store, "--hostname", "mx.example.test")

    def curl(self, path, *extra, rcpts=("b@example.com",), expect_rc=0):
        argv = [CURL, "-sS", "--max-time", "30", "--url", "smtp://127.0.0.1:%d" % self.d.port,
                "--mail-from", "a@example.com"]
        for r in rcpts:
            argv += ["--mail-rcpt", r]
        argv += ["--upload-file", path] + list(extra)
        return self.run_client(argv, expect_rc=expect_rc)

    def test_curl_upload(self):
        msg = simple_message("curl", body=b"Hello from curl.\r\n.dot line\r\n..two\r\nbye\r\n")
        path = os.path.join(self.tmpdir(), "msg.eml")
        with open(path, "wb") as f:
            f.write(msg)
        self.curl(path, rcpts=("b@example.com", "c@example.org"))
        m = self.d.wait_messages(1)[0]
        self.assertEqual(m["fields"]["Mail-From"], "a@example.com")
        self.assertEqual(m["rcpt_to"], ["b@example.com", "c@example.org"])
        files, other = wait_store(self.store, 1)
        self.assertEqual(other, [])
        _, rest = split_received(files[m["qid"]]["eml"])
        self.assertEqual(rest, msg)

    def test_curl_crlf_conversion(self):
        msg_lf = b"From: <a@example.com>\nTo: <b@example.com>\nSubject: curl lf\n\nline\n"
        path = os.path.join(self.tmpdir(), "msg.txt")
        with open(path, "wb") as f:
            f.write(msg_lf)
        self.curl(path, "--crlf")
        m = self.d.wait_messages(1)[0]
        files, _ = wait_store(self.store, 1)
        _, rest = split_received(files[m["qid"]]["eml"])
        self.assertEqual(rest, msg_lf.replace(b"\n", b"\r\n"))

    def test_curl_large_upload(self):
        body = b"".join(b"%06d curl line of text .......................................\r\n" % i
                        for i in range(40000))
        msg = simple_message("curl big", body=body)
        path = os.path.join(self.tmpdir(), "big.eml")
        with open(path, "wb") as f:
            f.write(msg)
        self.curl(path)
        m = self.d.wait_messages(1, timeout=30)[0]
        files, _ = wait_store(self.store, 1)
        _, rest = split_received(files[m["qid"]]["eml"])
        self.assertEqual(rest, msg)


@unittest.skipUnless(os.path.exists(CURL), "curl not installed")
class CurlRefused(ClientCase):

    def test_curl_too_big_is_refused(self):
        self.store = self.tmpdir()
        self.d = self.start_sink("--store", self.store, "--max-size", "1000")
        path = os.path.join(self.tmpdir(), "big.eml")
        with open(path, "wb") as f:
            f.write(simple_message("too big for curl", body=b"z" * 70 + b"\r\n" * 1 +
                                   (b"z" * 70 + b"\r\n") * 100))
        argv = [CURL, "-sS", "--max-time", "30", "--url", "smtp://127.0.0.1:%d" % self.d.port,
                "--mail-from", "a@example.com", "--mail-rcpt", "b@example.com",
                "--upload-file", path]
        rc, out = self.run_client(argv, expect_rc=None)
        self.assertNotEqual(rc, 0, "curl succeeded although the message exceeds --max-size")
        self.assertEqual(os.listdir(self.store), [])


@unittest.skipUnless(os.path.exists(SWAKS), "swaks not installed")
class Swaks(ClientCase):

    def setUp(self):
        self.store = self.tmpdir()
        self.d = self.start_sink("--store", self.store, "--hostname", "mx.example.test")

    def swaks(self, *extra, to="b@example.com", expect_rc=0):
        argv = [SWAKS, "--server", "127.0.0.1", "--port", str(self.d.port), "--timeout", "10",
                "--to", to, "--from", "a@example.com", "--helo", "swaks.example"] + list(extra)
        return self.run_client(argv, expect_rc=expect_rc)

    def test_swaks_basic(self):
        self.swaks("--header", "Subject: swaks basic", "--body", "Body from swaks, marker 4711")
        m = self.d.wait_messages(1)[0]
        self.assertEqual(m["fields"]["Helo"], "swaks.example")
        self.assertEqual(m["fields"]["Mail-From"], "a@example.com")
        self.assertEqual(m["rcpt_to"], ["b@example.com"])
        self.assertIn(b"Subject: swaks basic", m["data"])
        self.assertIn(b"marker 4711", m["data"])
        files, _ = wait_store(self.store, 1)
        received, _ = split_received(files[m["qid"]]["eml"])
        self.assertIn("with ESMTP", received)

    def test_swaks_pipelining(self):
        _, out = self.swaks("--pipeline", "--header", "Subject: swaks pipelined")
        self.assertNotIn("does not support PIPELINING", out)
        m = self.d.wait_messages(1)[0]
        self.assertIn(b"Subject: swaks pipelined", m["data"])

    def test_swaks_several_recipients(self):
        self.swaks(to="one@example.com,two@example.com,three@example.com")
        m = self.d.wait_messages(1)[0]
        self.assertEqual(m["rcpt_to"], ["one@example.com", "two@example.com",
                                        "three@example.com"])

    def test_swaks_helo_protocol(self):
        self.swaks("--protocol", "SMTP")
        m = self.d.wait_messages(1)[0]
        files, _ = wait_store(self.store, 1)
        received, _ = split_received(files[m["qid"]]["eml"])
        self.assertRegex(received, r"with SMTP\b")
        self.assertEqual(files[m["qid"]]["json"]["helo"], "swaks.example")

    def test_swaks_quit_after_rcpt(self):
        self.swaks("--quit-after", "RCPT")
        self.d.wait_log("disconnect")
        self.assertEqual(self.d.messages(), [])

    def test_swaks_dot_lines(self):
        body = "first\n.\n..\n.dot\nlast"
        self.swaks("--body", body)
        m = self.d.wait_messages(1)[0]
        self.assertIn(b"\nfirst\n.\n..\n.dot\nlast", m["data"])


@unittest.skipUnless(os.path.exists(SMTP_SOURCE), "smtp-source not installed")
class SmtpSource(ClientCase):

    def test_10_sessions_x_100_messages(self):
        self.d = self.start_sink("--quiet")
        self.run_client([SMTP_SOURCE, "-4", "-d", "-s", "10", "-m", "1000", "-l", "1024",
                         "-M", "client.example", "-f", "sender@example.com",
                         "-t", "rcpt@example.com", "127.0.0.1:%d" % self.d.port], timeout=120)
        accepted = self.d.wait_log("accepted", n=1000, timeout=30)
        self.assertEqual(len(accepted), 1000)
        self.assertEqual(len({e.get("qid") for e in accepted}), 1000, "queue ids not unique")
        self.assertEqual(self.d.log_events("rejected"), [])
        self.d.wait_log("disconnect", n=10)
        self.assertEqual(len(self.d.log_events("connect")), 10)

    def test_connection_per_message_with_stdout(self):
        self.d = self.start_sink()
        self.run_client([SMTP_SOURCE, "-4", "-s", "10", "-m", "200", "-l", "2048", "-r", "3",
                         "-M", "client.example", "-f", "sender@example.com",
                         "-t", "rcpt@example.com", "127.0.0.1:%d" % self.d.port], timeout=120)
        msgs = self.d.wait_messages(200, timeout=30)
        self.assertEqual(len(msgs), 200)
        for m in msgs:
            self.assertEqual(len(m["rcpt_to"]), 3, m["raw"][:400])
            self.assertEqual(m["fields"]["Helo"], "client.example")

    def test_workers_with_smtp_source(self):
        self.d = self.start_sink("--quiet", "--workers", "2")
        self.run_client([SMTP_SOURCE, "-4", "-d", "-s", "20", "-m", "1000", "-l", "512",
                         "-M", "client.example", "127.0.0.1:%d" % self.d.port], timeout=120)
        self.assertEqual(len(self.d.wait_log("accepted", n=1000, timeout=30)), 1000)


if __name__ == "__main__":
    unittest.main()
