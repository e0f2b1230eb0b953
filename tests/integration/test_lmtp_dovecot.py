"""Integration tests for the LMTP client (src/deliver/lmtp*.c) against a REAL Dovecot LMTP server
(Debian's dovecot-core + dovecot-lmtpd): tests/tools/lmtp_send calls ph_lmtp_deliver, and the
messages must arrive byte-exact in Dovecot's Maildirs.

Each test starts its own `dovecot -F -c CONF` with everything under a temp directory: base_dir,
state_dir, log file, a passwd-file userdb (alice, bob, carol @example.org; anyone else gets
550 5.1.1 at RCPT), Maildirs under TMP/mail/<domain>/<user>/Maildir, only the lmtp protocol, an
LMTP listener on a unix socket in the temp dir and one on 127.0.0.1 at a free port. Running as
root, Dovecot refuses mail access as uid 0, so mail is stored as the `dovecot` user (mail_uid)
and the mail directory is handed to it; as another user, everything runs as that user (anvil
without its chroot, which needs root).
Dovecot is stopped in cleanup (SIGTERM, then SIGKILL of its process group). Failures include
the Dovecot log. Skipped only when /usr/sbin/dovecot is missing.

LmtpDriverTest needs no Dovecot: scripted servers on a unix socket check what real Dovecot
never does (a server that stays silent until the timeout, one that hangs up after the first
per-recipient reply, one without PIPELINING that must get one command at a time).
"""
import glob
import os
import socket
import tempfile
import shutil
import threading
import time
import unittest

from phtest import BUILD, SANITIZER_MARKS, run_tool

from dovecot import (DOMAIN, DOVECOT, USERS, Dovecot, free_port,  # noqa: F401
                     strip_dovecot_headers)

TOOL = os.path.join(BUILD, "tools", "lmtp_send")
START_TIMEOUT = 15.0
STOP_TIMEOUT = 10.0


def lhlo_caps(sock_path):
    """Capability keywords of the server at a unix socket (one LHLO, read with timeouts)."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(10)
    try:
        s.connect(sock_path)
        buf = b""
        while not buf.endswith(b"\r\n"):
            buf += s.recv(4096) or b"\r\n"
        s.sendall(b"LHLO probe.test\r\n")
        buf = b""
        while not (buf.endswith(b"\r\n") and buf.split(b"\r\n")[-2][3:4] == b" "):
            chunk = s.recv(4096)
            if not chunk:
                break
            buf += chunk
        s.sendall(b"QUIT\r\n")
    finally:
        s.close()
    return {l[4:].split(b" ")[0].decode().upper() for l in buf.split(b"\r\n")[1:] if l}


@unittest.skipUnless(os.path.exists(DOVECOT), "Dovecot is not installed (%s missing: "
                     "scripts/setup.sh installs dovecot-core dovecot-lmtpd)" % DOVECOT)
class LmtpDovecotTest(unittest.TestCase):
    maxDiff = 4000

    def setUp(self):
        self.assertTrue(os.access(TOOL, os.X_OK), "test tool missing: %s (build it)" % TOOL)
        self.tmp = tempfile.mkdtemp(prefix="posthorn-lmtp-")
        self.addCleanup(shutil.rmtree, self.tmp, True)
        self.dc = Dovecot(self.tmp)
        self.addCleanup(self.dc.stop)
        self.dc.start()

    # -- helpers --
    def write_msg(self, data, name="msg.eml"):
        path = os.path.join(self.tmp, name)
        with open(path, "wb") as f:
            f.write(data)
        return path

    def send(self, dest, sender, msg_path, rcpts, *opts, expect_rc=0):
        argv = [TOOL] + list(opts) + [dest, sender, msg_path] + list(rcpts)
        rc, out = run_tool(argv, timeout=60)
        for mark in SANITIZER_MARKS:
            self.assertNotIn(mark, out, out)
        self.assertEqual(rc, expect_rc, "lmtp_send exit %s, output:\n%s\n%s"
                         % (rc, out, self.dc.log()))
        return out

    def results(self, out):
        """{rcpt: (code, enh, text)} from lmtp_send's output."""
        res = {}
        for line in out.splitlines():
            parts = line.split(" ", 3)
            if len(parts) >= 3 and parts[1].isdigit():
                res[parts[0]] = (int(parts[1]), parts[2], parts[3] if len(parts) > 3 else "")
        return res

    def assertDelivered(self, res, rcpt):
        self.assertIn(rcpt, res, "no result for %s: %r\n%s" % (rcpt, res, self.dc.log()))
        code, enh, text = res[rcpt]
        self.assertEqual((code, enh), (250, "2.0.0"), "%s: %r\n%s" % (rcpt, res[rcpt],
                                                                    self.dc.log()))
        self.assertIn("Saved", text)

    def stored(self, user, n=1):
        files = self.dc.maildir_new(user)
        self.assertEqual(len(files), n, "messages in %s's Maildir/new: %r\n%s"
                         % (user, files, self.dc.log()))
        with open(files[-1], "rb") as f:
            return f.read()

    def assertStoredExactly(self, user, msg, sender):
        rp, body = strip_dovecot_headers(self.stored(user))
        self.assertEqual(rp, b"Return-Path: <" + sender.encode() + b">")
        # Dovecot keeps Maildir files with LF line ends: the message must match byte for byte
        # after that one conversion (dot-stuffing undone by Dovecot, 8-bit bytes intact).
        self.assertEqual(body, msg.replace(b"\r\n", b"\n"), self.dc.log())

    def assertNoDovecotErrors(self):
        with open(self.dc.log_path, "rb") as f:
            log = f.read().decode("utf-8", "replace")
        for mark in (" Error: ", " Fatal: ", " Panic: "):
            self.assertNotIn(mark, log, log)

    # -- tests --
    def test_two_users_exact_body(self):
        msg = (b"From: <sender@example.net>\r\nTo: <alice@example.org>\r\n"
               b"Subject: dots and 8-bit\r\nMIME-Version: 1.0\r\n"
               b"Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n"
               b"\r\n"
               b".leading dot\r\n"
               b"..two leading dots\r\n"
               b".\r\n"
               b"a line after a lone dot\r\n"
               b"\r\n.\r\n"
               b"gr\xc3\xbc\xc3\x9fe aus K\xc3\xb6ln \xe2\x82\xac\r\n"
               b" .not at line start\r\n"
               b"last line\r\n")
        path = self.write_msg(msg)
        out = self.send("unix:" + self.dc.sock, "sender@example.net", path,
                        ["alice@example.org", "bob@example.org"], "--8bitmime")
        res = self.results(out)
        self.assertDelivered(res, "alice@example.org")
        self.assertDelivered(res, "bob@example.org")
        self.assertStoredExactly("alice", msg, "sender@example.net")
        self.assertStoredExactly("bob", msg, "sender@example.net")
        self.assertEqual(self.dc.maildir_new("carol"), [])
        self.assertNoDovecotErrors()

    def test_large_message_across_read_chunks(self):
        # ph_lmtp_deliver reads 64 KiB at a time: put a CRLF split across the first boundary
        # with a '.' right after it, and a line starting with '.' exactly at the second.
        chunk = 64 * 1024
        head = b"From: <big@example.net>\r\nSubject: big\r\n\r\n"
        line = b"0123456789 abcdefghij .dot inside\r\n"

        def fill(buf, upto):
            while len(buf) + len(line) <= upto:
                buf += line
            return buf + b"x" * (upto - len(buf))

        msg = fill(head, chunk - 1) + b"\r\n.after split crlf\r\n"
        msg = fill(msg, 2 * chunk - 2) + b"\r\n.at the boundary\r\n"
        self.assertEqual(msg[chunk - 1:chunk + 2], b"\r\n.")
        self.assertEqual(msg[2 * chunk:2 * chunk + 1], b".")
        msg = fill(msg, 3 * chunk + 100) + b"\r\n..end\r\n"
        path = self.write_msg(msg)
        out = self.send("unix:" + self.dc.sock, "big@example.net", path, ["carol@example.org"])
        self.assertDelivered(self.results(out), "carol@example.org")
        self.assertStoredExactly("carol", msg, "big@example.net")

    def test_message_without_final_crlf(self):
        msg = b"From: <x@example.net>\r\nSubject: no eol\r\n\r\nbody\r\n.last"
        path = self.write_msg(msg)
        out = self.send("unix:" + self.dc.sock, "x@example.net", path, ["alice@example.org"])
        self.assertDelivered(self.results(out), "alice@example.org")
        _, body = strip_dovecot_headers(self.stored("alice"))
        self.assertEqual(body, msg.replace(b"\r\n", b"\n") + b"\n")

    def test_partial_success(self):
        msg = b"From: <x@example.net>\r\nSubject: partial\r\n\r\nhello\r\n"
        path = self.write_msg(msg)
        out = self.send("unix:" + self.dc.sock, "x@example.net", path,
                        ["alice@example.org", "nobody@example.org", "bob@example.org"])
        res = self.results(out)
        self.assertDelivered(res, "alice@example.org")
        self.assertDelivered(res, "bob@example.org")
        code, enh, text = res["nobody@example.org"]
        self.assertEqual((code, enh), (550, "5.1.1"), out)
        self.assertIn("nobody@example.org", text)
        self.assertStoredExactly("alice", msg, "x@example.net")
        self.assertStoredExactly("bob", msg, "x@example.net")

    def test_all_unknown(self):
        path = self.write_msg(b"Subject: nobody\r\n\r\nhello\r\n")
        out = self.send("unix:" + self.dc.sock, "x@example.net", path,
                        ["nobody@example.org", "ghost@example.org"])
        res = self.results(out)
        for r in ("nobody@example.org", "ghost@example.org"):
            self.assertEqual(res[r][:2], (550, "5.1.1"), out)
        self.assertEqual(glob.glob(os.path.join(self.dc.mail, "*", "*", "Maildir", "new", "*")),
                         [])

    def test_many_recipients_pipelined(self):
        # more RCPT commands than the client buffers at once: written while replies come back
        rcpts = ["alice@example.org"] + ["u%03d-%s@example.org" % (i, "x" * 60)
                                         for i in range(300)] + ["bob@example.org"]
        msg = b"Subject: many\r\n\r\nhello\r\n"
        path = self.write_msg(msg)
        out = self.send("unix:" + self.dc.sock, "x@example.net", path, rcpts)
        res = self.results(out)
        self.assertEqual(len(res), len(rcpts), out[-2000:])
        self.assertDelivered(res, "alice@example.org")
        self.assertDelivered(res, "bob@example.org")
        for r in rcpts[1:-1]:
            self.assertEqual(res[r][:2], (550, "5.1.1"), (r, res[r]))
        self.assertStoredExactly("alice", msg, "x@example.net")
        self.assertStoredExactly("bob", msg, "x@example.net")

    def test_tcp_destination_and_null_sender(self):
        msg = b"From: <mailer-daemon@example.net>\r\nSubject: over tcp\r\n\r\n.tcp\r\n"
        path = self.write_msg(msg)
        out = self.send("127.0.0.1:%d" % self.dc.port, "", path, ["bob@example.org"])
        self.assertDelivered(self.results(out), "bob@example.org")
        self.assertStoredExactly("bob", msg, "")

    def test_smtputf8_as_dovecot_announces_it(self):
        caps = lhlo_caps(self.dc.sock)
        self.assertIn("PIPELINING", caps)
        msg = b"From: <j\xc3\xb6rg@example.net>\r\nSubject: utf8\r\n\r\nhi\r\n"
        path = self.write_msg(msg)
        out = self.send("unix:" + self.dc.sock, "j\xf6rg@example.net", path,
                        ["alice@example.org"], "--smtputf8", "--8bitmime")
        res = self.results(out)
        if "SMTPUTF8" in caps:
            self.assertDelivered(res, "alice@example.org")
        else:  # Dovecot 2.3 does not offer it: a permanent failure, nothing stored
            self.assertEqual(res["alice@example.org"][:2], (550, "5.6.7"), out)
            self.assertIn("SMTPUTF8", res["alice@example.org"][2])
            self.assertEqual(self.dc.maildir_new("alice"), [])

    def test_socket_missing(self):
        path = self.write_msg(b"Subject: x\r\n\r\nx\r\n")
        out = self.send("unix:" + os.path.join(self.tmp, "no-such.sock"), "x@example.net", path,
                        ["alice@example.org"], expect_rc=1)
        self.assertIn("No such file or directory", out)

    def test_connection_refused(self):
        path = self.write_msg(b"Subject: x\r\n\r\nx\r\n")
        # a unix socket that exists but is not listening
        dead = os.path.join(self.tmp, "dead.sock")
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.addCleanup(s.close)
        s.bind(dead)
        out = self.send("unix:" + dead, "x@example.net", path, ["alice@example.org"],
                        expect_rc=1)
        self.assertIn("Connection refused", out)
        # a TCP port nobody listens on
        out = self.send("127.0.0.1:%d" % free_port(), "x@example.net", path,
                        ["alice@example.org"], expect_rc=1)
        self.assertIn("Connection refused", out)
        self.assertEqual(self.dc.maildir_new("alice"), [])


class FakeLmtpServer(threading.Thread):
    """A scripted LMTP server on a unix socket for the driver's failure paths: script(conn, srv)
    runs on the one accepted connection; every read is bounded; errors are kept for the test."""

    def __init__(self, path, script):
        super().__init__(daemon=True)
        self.path = path
        self.script = script
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(path)
        self.sock.listen(1)
        self.sock.settimeout(20)
        self.error = None
        self.received = b""
        self.reads = []

    def run(self):
        try:
            conn, _ = self.sock.accept()
            conn.settimeout(20)
            with conn:
                self.script(conn, self)
        except Exception as e:  # reported by the test through join()
            self.error = e

    def read_until(self, conn, marker):
        while marker not in self.received:
            chunk = conn.recv(65536)
            if not chunk:
                raise AssertionError("client closed before %r; got %r" % (marker, self.received))
            self.reads.append(chunk)
            self.received += chunk
        head, _, self.received = self.received.partition(marker)
        return head + marker

    def join_checked(self, test):
        self.join(30)
        test.assertFalse(self.is_alive(), "fake server still running")
        self.sock.close()
        if self.error:
            raise self.error


class LmtpDriverTest(unittest.TestCase):
    """ph_lmtp_deliver against scripted servers: timeouts, early close, one command at a time
    (no Dovecot needed)."""

    def setUp(self):
        self.assertTrue(os.access(TOOL, os.X_OK), "test tool missing: %s (build it)" % TOOL)
        self.tmp = tempfile.mkdtemp(prefix="posthorn-lmtp-")
        self.addCleanup(shutil.rmtree, self.tmp, True)
        self.msg = os.path.join(self.tmp, "msg.eml")
        with open(self.msg, "wb") as f:
            f.write(b"Subject: fake\r\n\r\n.dot\r\nend\r\n")

    def serve(self, script):
        srv = FakeLmtpServer(os.path.join(self.tmp, "fake.sock"), script)
        self.addCleanup(srv.sock.close)
        srv.start()
        return srv

    def send(self, srv, rcpts, *opts):
        t0 = time.monotonic()
        rc, out = run_tool([TOOL] + list(opts) + ["unix:" + srv.path, "a@example.net",
                                                  self.msg] + rcpts, timeout=30)
        srv.join_checked(self)
        for mark in SANITIZER_MARKS:
            self.assertNotIn(mark, out, out)
        self.assertEqual(rc, 0, out)
        return out, time.monotonic() - t0

    def test_timeout_waiting_for_greeting(self):
        def script(conn, srv):
            time.sleep(2)  # says nothing, then hangs up
        srv = self.serve(script)
        out, took = self.send(srv, ["x@example.org"], "--timeout", "300")
        self.assertEqual(out.strip(), "x@example.org 451 4.4.2 timeout talking to the LMTP "
                         "server (waiting for greeting)")
        self.assertLess(took, 5)

    def test_close_after_first_data_reply(self):
        def script(conn, srv):
            conn.sendall(b"220 fake ready\r\n")
            srv.read_until(conn, b"\r\n")
            conn.sendall(b"250-fake\r\n250-8BITMIME\r\n250 PIPELINING\r\n")
            srv.cmds = srv.read_until(conn, b"DATA\r\n")
            conn.sendall(b"250 2.1.0 ok\r\n250 2.1.5 ok\r\n250 2.1.5 ok\r\n354 go\r\n")
            srv.data = srv.read_until(conn, b"\r\n.\r\n")
            conn.sendall(b"250 2.0.0 saved\r\n")
        srv = self.serve(script)
        out, _ = self.send(srv, ["x@example.org", "y@example.org"], "--8bitmime")
        self.assertEqual(srv.cmds, b"MAIL FROM:<a@example.net> BODY=8BITMIME\r\n"
                         b"RCPT TO:<x@example.org>\r\nRCPT TO:<y@example.org>\r\nDATA\r\n")
        self.assertEqual(srv.data, b"Subject: fake\r\n\r\n..dot\r\nend\r\n.\r\n")
        lines = out.strip().split("\n")
        self.assertEqual(lines[0], "x@example.org 250 2.0.0 saved")
        self.assertEqual(lines[1], "y@example.org 451 4.4.2 connection closed by the LMTP "
                         "server (waiting for end of data)")

    def test_one_command_at_a_time_without_pipelining(self):
        def script(conn, srv):
            conn.sendall(b"220 fake ready\r\n")
            srv.read_until(conn, b"\r\n")
            conn.sendall(b"250-fake\r\n250 ENHANCEDSTATUSCODES\r\n")
            srv.cmds = []
            for reply in (b"250 2.1.0 ok", b"550 5.1.1 no such user", b"250 2.1.5 ok",
                          b"354 go"):
                time.sleep(0.05)  # anything pipelined would have arrived by now
                srv.cmds.append(srv.read_until(conn, b"\r\n"))
                if srv.received:
                    raise AssertionError("pipelined without PIPELINING: %r" % srv.received)
                conn.sendall(reply + b"\r\n")
            srv.read_until(conn, b"\r\n.\r\n")
            conn.sendall(b"452 4.2.2 mailbox full\r\n")
            srv.quit = srv.read_until(conn, b"\r\n")
            conn.sendall(b"221 2.0.0 bye\r\n")
        srv = self.serve(script)
        out, _ = self.send(srv, ["x@example.org", "y@example.org"], "--8bitmime")
        self.assertEqual(srv.cmds, [b"MAIL FROM:<a@example.net>\r\n",
                                    b"RCPT TO:<x@example.org>\r\n",
                                    b"RCPT TO:<y@example.org>\r\n", b"DATA\r\n"])
        self.assertEqual(srv.quit, b"QUIT\r\n")
        self.assertEqual(out.strip().split("\n"),
                         ["x@example.org 550 5.1.1 no such user",
                          "y@example.org 452 4.2.2 mailbox full"])


if __name__ == "__main__":
    unittest.main()
