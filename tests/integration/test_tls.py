"""
test_tls.py - STARTTLS (RFC 3207) and implicit TLS (RFC 8314) in `posthorn sink`: the self-signed
certificate made at start, given certificates, EHLO before/after TLS, the session reset after
STARTTLS, the pipelining injection (CVE-2011-0411 class), failed and stalled handshakes (other
clients keep being served), the TLS version/cipher in Received:, on stdout and in the --store
record, SIGHUP certificate reload (serial observed by a client, open sessions kept, broken files
keep the old certificate), and the real clients smtplib, swaks, openssl s_client and curl.
"""

import os
import re
import shutil
import signal
import smtplib
import socket
import ssl
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import phtest  # noqa: E402
from phtest import (BIN, HELO, LOG_KV_RE, OPENSSL, Interactive, PosthornTestCase,  # noqa: E402
                    cert_serial, client_context, dot_stuff, make_cert, pem_to_der, queued_qid,
                    queued_qid_text, run_tool, simple_message, split_received, wait_store)

SWAKS = "/usr/bin/swaks"
GIVEN = "given.example.test"
CURL = shutil.which("curl") or "/usr/bin/curl"
HOST = "mx.example.test"
TLS13_CIPHERS = ("TLS_AES_256_GCM_SHA384", "TLS_AES_128_GCM_SHA256",
                 "TLS_CHACHA20_POLY1305_SHA256")
USING_RE = r"\(using (TLSv1\.[23]) with cipher (\S+) \((\d+) bits\)\)"


def has_starttls(reply):
    return any(l.upper() == "STARTTLS" for l in reply.lines[1:])


class TLSCase(PosthornTestCase):
    """A sink with --tls (self-signed certificate), one STARTTLS and one implicit-TLS listener."""

    extra_args = ()

    def setUp(self):
        self.store = self.tmpdir()
        self.d = self.start_sink("--tls", "--store", self.store, "--hostname", HOST,
                                 *self.extra_args, listen_tls=("127.0.0.1:0",))
        self.cert = self.d.selfsigned()["cert"]
        self.ctx = client_context(self.cert)

    def tls_raw(self, hostname="localhost"):
        """A RawClient after EHLO, STARTTLS and the handshake (no EHLO after it yet)."""
        c = self.raw(self.d)
        self.assertTrue(has_starttls(self.ehlo(c)))
        r = c.starttls(self.ctx, hostname)
        self.assertReply(r, 220, "2.0.0")
        return c

    def record(self, qid, n=1):
        files, other = wait_store(self.store, n)
        self.assertEqual(other, [])
        self.assertIn(qid, files)
        return files[qid]

    def check_tls_message(self, qid, version, cipher, proto="ESMTPS"):
        """Received:, stdout block and --store record of an encrypted message."""
        rec = self.record(qid, n=1)
        received, _ = split_received(rec["eml"])
        self.assertRegex(received, USING_RE)
        m = re.search(USING_RE, received)
        self.assertEqual((m.group(1), m.group(2)), (version, cipher), received)
        self.assertRegex(received, r"\bwith %s\b" % proto)
        j = rec["json"]
        self.assertIs(j.get("tls"), True, j)
        self.assertEqual(j.get("tls_version"), version, j)
        self.assertEqual(j.get("tls_cipher"), cipher, j)
        self.assertIn("auth", j)
        self.assertIsNone(j["auth"], j)
        blocks = [b for b in self.d.wait_messages(1) if b["qid"] == qid]
        self.assertEqual(len(blocks), 1)
        self.assertEqual(blocks[0]["fields"].get("TLS"), "%s %s" % (version, cipher),
                         blocks[0]["raw"][:600])
        return rec


class SelfSigned(TLSCase):

    def test_selfsigned_logged_before_listening(self):
        text = self.d.stderr_text()
        self.assertLess(text.index("event=tls_selfsigned"), text.index("event=listening"))
        ev = self.d.selfsigned()
        self.assertEqual(ev.get("host"), HOST)
        self.assertTrue(os.path.isfile(ev["cert"]), ev)
        self.assertTrue(os.path.isfile(ev["key"]), ev)
        mode = os.stat(ev["key"]).st_mode & 0o777
        self.assertEqual(mode & 0o077, 0, "private key readable by others: %o" % mode)
        rc, out = run_tool([OPENSSL, "x509", "-in", ev["cert"], "-noout", "-text"])
        self.assertEqual(rc, 0, out)
        self.assertIn("NIST CURVE: P-256", out)
        for san in ("DNS:" + HOST, "DNS:localhost", "IP Address:127.0.0.1",
                    "IP Address:0:0:0:0:0:0:0:1"):
            self.assertIn(san, out)

    def test_selfsigned_verifies_for_every_name(self):
        for name in (HOST, "localhost", "127.0.0.1"):
            with self.subTest(name=name):
                c = self.tls_raw(hostname=name)
                self.ehlo(c)
                self.assertEqual(c.sock.getpeercert(True), pem_to_der(self.cert))
                self.assertReply(c.cmd("QUIT"), 221)

    def test_selfsigned_files_removed_at_exit(self):
        ev = self.d.selfsigned()
        self.assertEqual(self.d.stop(), 0)
        self.assertFalse(os.path.exists(ev["cert"]), "self-signed certificate left behind")
        self.assertFalse(os.path.exists(ev["key"]), "self-signed key left behind")


class StartTLS(TLSCase):

    def test_ehlo_before_and_after(self):
        c = self.raw(self.d)
        r = self.ehlo(c)
        self.assertTrue(has_starttls(r), r)
        self.assertReply(c.starttls(self.ctx), 220, "2.0.0")
        self.assertIn(c.sock.version(), ("TLSv1.2", "TLSv1.3"))
        r = self.ehlo(c)
        self.assertFalse(has_starttls(r), "STARTTLS still offered under TLS: %r" % r)
        self.assertEqual(r.lines[0].split()[0], HOST)
        r = c.cmd("STARTTLS")
        self.assertReply(r, 503, "5.5.1")
        # the session survives the refused second STARTTLS
        self.transaction(c)

    def test_starttls_before_ehlo_then_session_reset(self):
        c = self.raw(self.d)
        self.assertReply(c.starttls(self.ctx), 220, "2.0.0")  # allowed before EHLO too
        self.assertReply(c.cmd("MAIL FROM:<a@example.com>"), 503, "5.5.1")
        self.ehlo(c)
        self.transaction(c)

    def test_session_reset_forgets_helo(self):
        c = self.raw(self.d)
        self.ehlo(c, "before-tls.example")
        self.assertReply(c.starttls(self.ctx), 220, "2.0.0")
        r = c.cmd("MAIL FROM:<a@example.com>")
        self.assertReply(r, 503, "5.5.1")  # RFC 3207 4.2: EHLO is needed again
        self.ehlo(c, "after-tls.example")
        qid = self.transaction(c)
        rec = self.record(qid)
        self.assertEqual(rec["json"]["helo"], "after-tls.example")
        received, _ = split_received(rec["eml"])
        self.assertIn("after-tls.example", received)
        self.assertNotIn("before-tls.example", received)

    def test_starttls_with_argument_refused(self):
        c = self.raw(self.d)
        self.ehlo(c)
        r = c.cmd("STARTTLS now")
        self.assertReply(r, 501)
        self.assertReply(c.starttls(self.ctx), 220, "2.0.0")
        self.ehlo(c)

    def test_pipelined_after_starttls_discarded(self):
        """CVE-2011-0411 class: STARTTLS\\r\\nRSET\\r\\n in one write; the RSET must be dropped."""
        c = self.raw(self.d)
        self.ehlo(c)
        c.send(b"STARTTLS\r\nRSET\r\n")
        r = c.read_reply()
        self.assertReply(r, 220, "2.0.0")
        # any byte after the 220 before the handshake would be a plaintext reply to RSET
        self.assertTrue(c.no_data_within(0.3), "plaintext sent after 220: %r" % c.buf)
        c.start_tls(self.ctx)
        r = self.ehlo(c)
        self.assertFalse(has_starttls(r))
        self.assertTrue(c.no_data_within(0.5),
                        "extra reply after EHLO (the injected RSET was executed): %r" % c.buf)
        self.assertReply(c.cmd("NOOP"), 250)

    def test_injected_transaction_not_executed(self):
        c = self.raw(self.d)
        self.ehlo(c)
        c.send(b"STARTTLS\r\nMAIL FROM:<evil@example.com>\r\nRCPT TO:<victim@example.com>\r\n")
        self.assertReply(c.read_reply(), 220, "2.0.0")
        c.start_tls(self.ctx)
        self.ehlo(c)
        self.assertTrue(c.no_data_within(0.3), "extra replies: %r" % c.buf)
        # no transaction exists: RCPT and DATA are out of sequence
        self.assertReply(c.cmd("RCPT TO:<b@example.com>"), 503, "5.5.1")
        self.assertReply(c.cmd("DATA"), 503, "5.5.1")
        self.assertFalse([e for e in self.d.log_events("mail") if "evil" in e.get("from", "")],
                         "the injected MAIL FROM was processed")
        self.transaction(c, sender="good@example.com")
        self.assertFalse([e for e in self.d.log_events("rcpt") if "victim" in e.get("to", "")])

    def test_injection_in_separate_tls_record(self):
        """The same injection with the handshake bytes right behind the plaintext command."""
        c = self.raw(self.d)
        self.ehlo(c)
        c.send(b"STARTTLS\r\nNOOP\r\nNOOP\r\n")
        self.assertReply(c.read_reply(), 220, "2.0.0")
        c.start_tls(self.ctx)
        self.assertReply(c.cmd("NOOP"), 250)
        self.assertTrue(c.no_data_within(0.3), "plaintext NOOPs answered: %r" % c.buf)

    def test_message_over_starttls_recorded(self):
        s = smtplib.SMTP("127.0.0.1", self.d.port, local_hostname=HELO, timeout=10)
        self.addCleanup(self._smtp_close, s)
        s.ehlo()
        self.assertTrue(s.has_extn("starttls"))
        code, _ = s.starttls(context=self.ctx)
        self.assertEqual(code, 220)
        s.ehlo()
        self.assertFalse(s.has_extn("starttls"))
        self.assertFalse(s.has_extn("auth"), "AUTH offered without --auth-*")
        version, cipher = s.sock.version(), s.sock.cipher()[0]
        code, resp = s.mail("a@example.com")
        self.assertEqual(code, 250)
        self.assertEqual(s.rcpt("b@example.com")[0], 250)
        code, resp = s.data(simple_message("over starttls"))
        self.assertEqual(code, 250, resp)
        qid = queued_qid_text(resp)
        s.quit()
        self.check_tls_message(qid, version, cipher)
        ev = self.d.wait_log("tls")
        self.assertEqual((ev[0].get("version"), ev[0].get("cipher")), (version, cipher))

    def test_sni_cannot_forge_log_fields(self):
        """The client-chosen SNI name must not add keys to the event=tls key=value line."""
        c = self.raw(self.d)
        self.ehlo(c)
        c.starttls(client_context(verify=False), "evil.example version=SSLv2 cipher=NULL")
        self.ehlo(c)
        self.d.wait_log("tls")
        lines = [l for l in self.d.stderr_text().splitlines() if "event=tls " in l]
        self.assertEqual(len(lines), 1, lines)
        keys = [k for k, _ in LOG_KV_RE.findall(lines[0])]  # a quoted value hides its '='
        for key in ("version", "cipher", "sni"):
            self.assertEqual(keys.count(key), 1,
                             "forged %s= field in the log line: %s" % (key, lines[0]))
        ev = self.d.log_events("tls")[0]
        self.assertIn("evil.example", ev.get("sni", ""), lines[0])
        self.assertEqual(ev.get("version"), c.sock.version(), lines[0])

    def test_plain_message_has_no_tls(self):
        c = self.raw(self.d)
        self.ehlo(c)
        qid = self.transaction(c)
        rec = self.record(qid)
        received, _ = split_received(rec["eml"])
        self.assertNotIn("using TLS", received)
        self.assertRegex(received, r"\bwith ESMTP\b")
        self.assertNotIn("ESMTPS", received)
        self.assertIs(rec["json"].get("tls"), False, rec["json"])
        self.assertFalse(rec["json"].get("tls_version"), rec["json"])
        block = self.d.wait_messages(1)[0]
        self.assertIn(block["fields"].get("TLS", "no"), ("no", "none", "-"), block["raw"][:500])

    def test_tls12_client(self):
        ctx = client_context(self.cert, maximum=ssl.TLSVersion.TLSv1_2)
        c = self.raw(self.d)
        self.ehlo(c)
        c.starttls(ctx)
        self.assertEqual(c.sock.version(), "TLSv1.2")
        cipher = c.sock.cipher()[0]
        self.ehlo(c)
        qid = self.transaction(c)
        self.check_tls_message(qid, "TLSv1.2", cipher)

    def test_tls11_refused_and_logged(self):
        """The minimum protocol is TLS 1.2: a TLS 1.1-only client gets a protocol_version
        alert, on both kinds of listener, and the failure is logged."""
        for n, extra in enumerate(([], ["-starttls", "smtp"]), 1):
            port = self.d.port if extra else self.d.tls_addr[1]
            with self.subTest(starttls=bool(extra)):
                rc, out = run_tool([OPENSSL, "s_client", "-connect", "127.0.0.1:%d" % port,
                                    "-tls1_1", "-cipher", "DEFAULT@SECLEVEL=0", "-quiet"]
                                   + extra, input=b"", timeout=15)
                self.assertNotEqual(rc, 0, "TLS 1.1 handshake succeeded:\n" + out)
                self.assertIn("protocol version", out)
                self.d.wait_log("tls_failed", n=n)
        # and the server is fine afterwards
        c = self.tls_raw()
        self.ehlo(c)

    def test_garbage_instead_of_handshake(self):
        c = self.raw(self.d)
        self.ehlo(c)
        self.assertReply(c.cmd("STARTTLS"), 220, "2.0.0")
        c.send(b"EHLO still.plain.example\r\nMAIL FROM:<a@example.com>\r\n")
        data = c.read_until_eof(10)
        self.assertNotIn(b"250", data, "plaintext commands answered after STARTTLS: %r" % data)
        self.d.wait_log("tls_failed")
        # the server keeps serving
        c2 = self.tls_raw()
        self.ehlo(c2)
        self.transaction(c2)

    def test_client_closes_after_220(self):
        c = self.raw(self.d)
        self.ehlo(c)
        self.assertReply(c.cmd("STARTTLS"), 220, "2.0.0")
        c.close(reset=True)
        self.d.wait_log("disconnect")
        c2 = self.tls_raw()
        self.ehlo(c2)
        self.assertReply(c2.cmd("QUIT"), 221)

    def test_close_notify_after_quit(self):
        """RFC 8446 6.1: each party MUST send close_notify before closing its write side."""
        ctx = client_context(self.cert)
        ctx.options &= ~getattr(ssl, "OP_IGNORE_UNEXPECTED_EOF", 0)
        for implicit in (False, True):
            with self.subTest(implicit=implicit):
                if implicit:
                    c = self.raw(self.d.tls_addr, tls=ctx)
                else:
                    c = self.raw(self.d)
                    self.ehlo(c)
                    c.starttls(ctx)
                self.ehlo(c)
                self.assertReply(c.cmd("QUIT"), 221)
                c.sock.settimeout(5)
                try:
                    tail = c.sock.recv(100)
                except ssl.SSLError as e:
                    self.fail("connection closed without TLS close_notify after 221: %s" % e)
                self.assertEqual(tail, b"")

    def test_sigterm_with_idle_tls_session(self):
        c = self.tls_raw()
        self.ehlo(c)
        t0 = time.monotonic()
        self.d.send_signal(signal.SIGTERM)
        data = c.read_until_eof(10)  # decrypted: the 421 comes over TLS
        replies = phtest.replies_from_bytes(data)
        self.assertTrue(replies, "no reply before close on shutdown")
        self.assertReply(replies[-1], 421, "4.3.2")
        self.assertEqual(self.d.wait_exit(10), 0)
        self.assertLess(time.monotonic() - t0, 10)


class Implicit(TLSCase):

    def test_smtp_ssl(self):
        s = smtplib.SMTP_SSL("127.0.0.1", self.d.tls_addr[1], local_hostname=HELO, timeout=10,
                             context=self.ctx)
        self.addCleanup(self._smtp_close, s)
        code, _ = s.ehlo()
        self.assertEqual(code, 250)
        self.assertFalse(s.has_extn("starttls"), "STARTTLS offered on an implicit-TLS session")
        version, cipher = s.sock.version(), s.sock.cipher()[0]
        errs = s.sendmail("a@example.com", ["b@example.com"], simple_message("smtps"))
        self.assertEqual(errs, {})
        s.quit()
        qid = self.d.wait_messages(1)[0]["qid"]
        self.check_tls_message(qid, version, cipher)

    def test_raw_implicit(self):
        c = self.raw(self.d.tls_addr, tls=self.ctx)
        self.assertEqual(c.banner.code, 220)
        self.assertTrue(c.tls)
        r = self.ehlo(c)
        self.assertFalse(has_starttls(r))
        r = c.cmd("STARTTLS")  # not offered here: 502 (not implemented) or 503 (sequence)
        self.assertIn(r.code, (502, 503), r)
        self.assertEqual(r.enhanced, "5.5.1", r)
        self.transaction(c)

    def test_plaintext_to_implicit_port(self):
        c = self.raw(self.d.tls_addr, banner=False)
        c.send(b"EHLO plain.example\r\n")
        data = c.read_until_eof(10)
        self.assertFalse(data.startswith(b"220"), "plaintext banner on an implicit-TLS port")
        self.assertNotIn(b"250", data)
        ev = self.d.wait_log("tls_failed")
        self.assertTrue(ev)
        s = smtplib.SMTP_SSL("127.0.0.1", self.d.tls_addr[1], timeout=10, context=self.ctx)
        self.addCleanup(self._smtp_close, s)
        self.assertEqual(s.noop()[0], 250)

    def test_no_banner_before_handshake(self):
        c = self.raw(self.d.tls_addr, banner=False)
        self.assertTrue(c.no_data_within(0.5), "server spoke first on an implicit-TLS port: %r"
                        % c.buf)

    def test_stalled_handshakes_do_not_block(self):
        stalled = []
        for i in range(8):
            st = self.raw(self.d.tls_addr, banner=False)
            if i % 2:
                st.send(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03")  # a ClientHello cut short
            stalled.append(st)
        # a STARTTLS client stalled after the 220
        st = self.raw(self.d)
        self.ehlo(st)
        self.assertReply(st.cmd("STARTTLS"), 220, "2.0.0")
        stalled.append(st)
        t0 = time.monotonic()
        for n in range(3):
            s = smtplib.SMTP_SSL("127.0.0.1", self.d.tls_addr[1], local_hostname=HELO,
                                 timeout=5, context=self.ctx)
            self.addCleanup(self._smtp_close, s)
            self.assertEqual(s.sendmail("a@example.com", ["b@example.com"],
                                        simple_message("while stalled %d" % n)), {})
            s.quit()
            c = self.tls_raw()
            self.ehlo(c)
            self.transaction(c)
            c.close()
        self.assertLess(time.monotonic() - t0, 5, "clients were slowed down by stalled handshakes")
        self.assertEqual(len(self.d.wait_messages(6)), 6)
        # the stalled connections are still pending (handshake timeout 30 s): no reply, no close
        for st in stalled:
            self.assertTrue(st.no_data_within(0.05), "stalled connection answered: %r" % st.buf)


def have_ipv6_loopback():
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


@unittest.skipUnless(have_ipv6_loopback(), "no ::1")
class IPv6(PosthornTestCase):

    def test_selfsigned_verifies_for_ipv6_literal(self):
        d = self.start_sink("--tls", listen=("[::1]:0",))
        ctx = client_context(d.selfsigned()["cert"])
        c = self.raw(("::1", d.tcp_addresses()[0][1]))
        self.ehlo(c)
        c.starttls(ctx, "::1")
        self.ehlo(c)
        self.transaction(c)


class ListenerSetups(PosthornTestCase):

    def test_starttls_on_every_listen(self):
        d = self.start_sink("--tls", listen=("127.0.0.1:0", "127.0.0.1:0"))
        ctx = client_context(d.selfsigned()["cert"])
        for addr in d.tcp_addresses():
            with self.subTest(addr=addr):
                c = self.raw(addr)
                self.assertTrue(has_starttls(self.ehlo(c)))
                c.starttls(ctx)
                self.ehlo(c)
                self.transaction(c)

    def test_listen_tls_alone_makes_selfsigned(self):
        d = self.start_sink(listen=(), listen_tls=("127.0.0.1:0",))
        ctx = client_context(d.selfsigned()["cert"])
        c = self.raw(d.tls_addr, tls=ctx)
        self.assertFalse(has_starttls(self.ehlo(c)))
        self.transaction(c)

    def test_tls_key_without_cert_fails(self):
        """--tls-key alone is a mistake to report (like --tls-cert alone), not to ignore."""
        key = make_cert(self.tmpdir())[1]
        p = subprocess.Popen([BIN, "sink", "--listen", "127.0.0.1:0", "--tls-key", key],
                             stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, start_new_session=True)
        try:
            out, _ = p.communicate(timeout=5)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            out, _ = p.communicate(timeout=5)
            self.fail("`sink --tls-key FILE` without --tls-cert started anyway (the key is "
                      "ignored, no TLS):\n%s" % out.decode("utf-8", "replace")[-1000:])
        self.assertNotEqual(p.returncode, 0, out)


class ShutdownDuringHandshake(PosthornTestCase):
    """SIGTERM while handshakes are pending: exit at once (like an idle session), not after the
    30 s handshake timeout."""

    def test_sigterm_with_stalled_handshake(self):
        d = self.start_sink("--tls", listen_tls=("127.0.0.1:0",), check_exit=False)
        st = self.raw(d.tls_addr, banner=False)
        st.send(b"\x16\x03\x01")
        st2 = self.raw(d)
        self.ehlo(st2)
        self.assertReply(st2.cmd("STARTTLS"), 220, "2.0.0")
        time.sleep(0.2)
        t0 = time.monotonic()
        d.send_signal(signal.SIGTERM)
        rc = d.wait_exit(5)
        waited = time.monotonic() - t0
        if rc is None:
            d.stop(timeout=0.5)
        self.assertEqual(rc, 0, "daemon still running %.1f s after SIGTERM with 2 pending TLS "
                         "handshakes; stderr tail:\n%s" % (waited, d.stderr_tail(8)))


class GivenCert(PosthornTestCase):

    def setUp(self):
        self.dir = self.tmpdir()
        self.cert, self.key = make_cert(self.dir, "a", cn=GIVEN,
                                        san=("DNS:" + GIVEN, "IP:127.0.0.1"),
                                        serial=0xA1A1)

    def start(self, *extra):
        self.store = self.tmpdir()
        return self.start_sink("--tls-cert", self.cert, "--tls-key", self.key, "--store",
                               self.store, *extra, listen_tls=("127.0.0.1:0",))

    def peer_cert(self, d, implicit=False, ctx=None):
        ctx = ctx or client_context(verify=False)
        if implicit:
            c = self.raw(d.tls_addr, tls=ctx, server_hostname=GIVEN)
        else:
            c = self.raw(d)
            self.ehlo(c)
            c.starttls(ctx, GIVEN)
        der = c.sock.getpeercert(True)
        c.close()
        return der

    def test_given_cert_presented(self):
        d = self.start()
        self.assertEqual(d.log_events("tls_selfsigned"), [])
        ctx = client_context(self.cert)
        for implicit in (False, True):
            with self.subTest(implicit=implicit):
                der = self.peer_cert(d, implicit, client_context(self.cert))
                self.assertEqual(der, pem_to_der(self.cert))
                self.assertEqual(cert_serial(der), "A1A1")
        # hostname verification against the certificate's names
        c = self.raw(d)
        self.ehlo(c)
        c.starttls(ctx, GIVEN)
        self.ehlo(c)
        self.transaction(c)
        c2 = self.raw(d)
        self.ehlo(c2)
        self.assertReply(c2.cmd("STARTTLS"), 220)
        with self.assertRaises(ssl.SSLCertVerificationError):
            c2.start_tls(ctx, "other.example.test")

    def test_tls_cert_without_key_fails(self):
        rc, out = run_tool([BIN, "sink", "--listen", "127.0.0.1:0", "--tls-cert", self.cert],
                           timeout=10)
        self.assertNotEqual(rc, 0, out)
        self.assertNotIn("event=listening", out)

    def test_bad_cert_file_fails_at_start(self):
        bad = os.path.join(self.dir, "bad.pem")
        with open(bad, "w") as f:
            f.write("-----BEGIN CERTIFICATE-----\nnot a certificate\n-----END CERTIFICATE-----\n")
        for cert, key in ((bad, self.key), (os.path.join(self.dir, "missing.pem"), self.key)):
            with self.subTest(cert=cert):
                rc, out = run_tool([BIN, "sink", "--listen", "127.0.0.1:0", "--tls-cert", cert,
                                    "--tls-key", key], timeout=10)
                self.assertNotEqual(rc, 0, out)

    def test_mismatched_key_fails_at_start(self):
        _, other_key = make_cert(self.dir, "b", serial=2)
        rc, out = run_tool([BIN, "sink", "--listen", "127.0.0.1:0", "--tls-cert", self.cert,
                            "--tls-key", other_key], timeout=10)
        self.assertNotEqual(rc, 0, "a certificate with someone else's key was accepted:\n" + out)

    # -- SIGHUP reload --
    def overwrite(self, cert_src, key_src):
        for src, dst in ((cert_src, self.cert), (key_src, self.key)):
            with open(src, "rb") as f:
                data = f.read()
            with open(dst, "wb") as f:
                f.write(data)

    def test_sighup_reload(self):
        d = self.start()
        old = self.raw(d)  # a TLS session open across the reload
        self.ehlo(old)
        old.starttls(client_context(self.cert), GIVEN)
        self.assertEqual(cert_serial(old.sock.getpeercert(True)), "A1A1")
        self.ehlo(old)
        self.assertReply(old.cmd("MAIL FROM:<old@example.com>"), 250)
        self.assertEqual(cert_serial(self.peer_cert(d)), "A1A1")

        new_cert, new_key = make_cert(self.dir, "new", cn=GIVEN,
                                      san=("DNS:" + GIVEN, "IP:127.0.0.1"),
                                      serial=0xB2B2)
        self.overwrite(new_cert, new_key)
        d.send_signal(signal.SIGHUP)
        d.wait_log("tls_reload", result="ok")
        self.assertTrue(d.alive())
        self.assertEqual(cert_serial(self.peer_cert(d)), "B2B2")
        self.assertEqual(cert_serial(self.peer_cert(d, implicit=True)), "B2B2")
        self.assertEqual(self.peer_cert(d, ctx=client_context(new_cert)), pem_to_der(new_cert))
        # the old session is untouched and finishes its transaction
        self.assertReply(old.cmd("RCPT TO:<b@example.com>"), 250)
        self.assertReply(old.cmd("DATA"), 354)
        old.send(dot_stuff(simple_message("across reload")))
        qid = queued_qid(old.read_reply())
        self.assertReply(old.cmd("QUIT"), 221)
        files, _ = wait_store(self.store, 1)
        self.assertIs(files[qid]["json"]["tls"], True)

        # a broken certificate file keeps the current one
        with open(self.cert, "w") as f:
            f.write("-----BEGIN CERTIFICATE-----\ngarbage\n-----END CERTIFICATE-----\n")
        d.send_signal(signal.SIGHUP)
        d.wait_log("tls_reload", result="failed_kept_old")
        self.assertTrue(d.alive())
        self.assertEqual(cert_serial(self.peer_cert(d)), "B2B2")
        self.assertEqual(cert_serial(self.peer_cert(d, implicit=True)), "B2B2")

    def test_sighup_mismatched_key_keeps_old(self):
        d = self.start()
        c3, k3 = make_cert(self.dir, "c", cn=GIVEN, serial=0xC3C3)
        _, k4 = make_cert(self.dir, "d", cn=GIVEN, serial=0xD4D4)
        self.overwrite(c3, k4)  # certificate and key do not belong together
        d.send_signal(signal.SIGHUP)
        d.wait_log("tls_reload", result="failed_kept_old")
        self.assertEqual(cert_serial(self.peer_cert(d)), "A1A1")
        self.overwrite(c3, k3)
        d.send_signal(signal.SIGHUP)
        d.wait_log("tls_reload", result="ok")
        self.assertEqual(cert_serial(self.peer_cert(d)), "C3C3")

    def wait_workers_serving(self, d, n, timeout=3.0):
        """Connects until n distinct workers (the pid part of the session id) have served a
        TLS session, or timeout: workers load the certificate after the listening lines, so
        overwriting the files earlier would race with their start."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.assertEqual(cert_serial(self.peer_cert(d)), "A1A1")
            d.wait_log("disconnect", n=len(d.log_events("connect")))
            if len({e.get("sid", "")[:8] for e in d.log_events("connect")}) >= n:
                return
        # one worker took every connection: the other one has had the time to start

    def test_sighup_reload_with_workers(self):
        d = self.start("--workers", "2")
        self.wait_workers_serving(d, 2)
        new_cert, new_key = make_cert(self.dir, "new", cn=GIVEN, serial=0xE5E5)
        self.overwrite(new_cert, new_key)
        d.send_signal(signal.SIGHUP)
        d.wait_log("tls_reload", n=2, result="ok")  # one line per worker
        serials = {cert_serial(self.peer_cert(d)) for _ in range(8)}
        self.assertEqual(serials, {"E5E5"}, "some worker still presents the old certificate")
        self.assertEqual(d.log_events("worker_died"), [])


def swaks_has_tls():
    """swaks does TLS through Perl's Net::SSLeay (Debian: libnet-ssleay-perl, only a
    Recommends of swaks)."""
    if not os.path.exists(SWAKS):
        return False
    return run_tool(["perl", "-MNet::SSLeay", "-e", "1"], timeout=10)[0] == 0


@unittest.skipUnless(swaks_has_tls(), "swaks without TLS support (needs libnet-ssleay-perl)")
class Swaks(TLSCase):

    def swaks(self, *extra, port=None, expect_rc=0):
        rc, out = run_tool([SWAKS, "--server", "127.0.0.1", "--port", port or self.d.port,
                            "--timeout", "10", "--to", "b@example.com", "--from", "a@example.com",
                            "--helo", "swaks.example", "--tls-verify", "--tls-ca-path", self.cert]
                           + list(extra))
        if expect_rc is not None:
            self.assertEqual(rc, expect_rc, "swaks failed:\n%s\n--- daemon:\n%s"
                             % (out[-3000:], self.d.stderr_tail()))
        return out

    def test_swaks_starttls(self):
        out = self.swaks("--tls", "--header", "Subject: swaks tls")
        self.assertIn("TLS started", out)
        m = self.d.wait_messages(1)[0]
        self.assertRegex(m["fields"].get("TLS", ""), r"^TLSv1\.[23] \S+$")
        self.assertIn(b"Subject: swaks tls", m["data"])
        rec = self.record(m["qid"])
        self.assertIs(rec["json"]["tls"], True)
        self.assertEqual(rec["json"]["helo"], "swaks.example")

    def test_swaks_tls_on_connect(self):
        out = self.swaks("--tlsc", "--header", "Subject: swaks tlsc", port=self.d.tls_addr[1])
        self.assertIn("TLS started", out)
        m = self.d.wait_messages(1)[0]
        self.assertIn(b"Subject: swaks tlsc", m["data"])
        received, _ = split_received(self.record(m["qid"])["eml"])
        self.assertRegex(received, USING_RE)
        self.assertRegex(received, r"\bwith ESMTPS\b")

    def test_swaks_tls12(self):
        self.swaks("--tls", "--tls-protocol", "tlsv1_2")
        m = self.d.wait_messages(1)[0]
        self.assertTrue(m["fields"].get("TLS", "").startswith("TLSv1.2 "), m["raw"][:500])


class OpenSSLClient(TLSCase):

    def s_client(self, *args):
        p = Interactive([OPENSSL, "s_client", "-connect", "127.0.0.1:%d" % self.port_for(args),
                         "-CAfile", self.cert, "-verify_return_error", "-verify_hostname",
                         "localhost", "-quiet", "-crlf"] + list(a for a in args if a != "@tls"))
        self.addCleanup(p.close)
        return p

    def port_for(self, args):
        return self.d.tls_addr[1] if "@tls" in args else self.d.port

    def converse(self, p, greeted):
        if not greeted:
            p.expect(r"^220 ")
        p.send("EHLO openssl.example\n")
        p.expect(r"^250-" + HOST)  # with -starttls, s_client itself printed "250 STARTTLS"
        p.expect(r"^250 ")
        p.send("MAIL FROM:<a@example.com>\n")
        p.expect(r"^250 2\.1\.0")
        p.send("RCPT TO:<b@example.com>\n")
        p.expect(r"^250 2\.1\.5")
        p.send("DATA\n")
        p.expect(r"^354")
        p.send("Subject: via s_client\n\nhello\n.\n")
        qid = p.expect(r"^250 2\.0\.0 Ok: queued as (\S+)").group(1)
        p.send("QUIT\n")
        p.expect(r"^221")
        # the exit code is not checked: s_client exits 1 on a close without close_notify, which
        # test_close_notify_after_quit reports on its own
        self.assertIsNotNone(p.wait(10), "s_client did not exit after QUIT:\n" + p.text())
        return qid

    def test_s_client_starttls(self):
        p = self.s_client("-starttls", "smtp")
        # s_client did EHLO + STARTTLS itself; the 220 banner was consumed by it
        qid = self.converse(p, greeted=True)
        rec = self.record(qid)
        self.assertIs(rec["json"]["tls"], True)
        self.assertEqual(rec["json"]["helo"], "openssl.example")
        self.assertIn("verify return:1", p.text())

    def test_s_client_implicit(self):
        p = self.s_client("@tls")
        qid = self.converse(p, greeted=False)
        rec = self.record(qid)
        self.assertIs(rec["json"]["tls"], True)
        received, _ = split_received(rec["eml"])
        self.assertRegex(received, USING_RE)

    def test_s_client_brief_reports_tls(self):
        rc, out = run_tool([OPENSSL, "s_client", "-connect", "127.0.0.1:%d" % self.d.port,
                            "-starttls", "smtp", "-CAfile", self.cert, "-verify_return_error",
                            "-verify_hostname", HOST, "-brief"], input=b"QUIT\n", timeout=15)
        self.assertIn("Verification: OK", out)
        self.assertRegex(out, r"Protocol version: TLSv1\.3")


@unittest.skipUnless(os.path.exists(CURL), "curl not installed")
class Curl(TLSCase):

    def curl(self, url, *extra, expect_rc=0):
        path = os.path.join(self.tmpdir(), "msg.eml")
        with open(path, "wb") as f:
            f.write(simple_message("curl tls"))
        rc, out = run_tool([CURL, "-sS", "--max-time", "20", "--url", url, "--cacert",
                            self.cert, "--mail-from", "a@example.com", "--mail-rcpt",
                            "b@example.com", "--upload-file", path] + list(extra), timeout=30)
        if expect_rc is not None:
            self.assertEqual(rc, expect_rc, "curl: %s\n--- daemon:\n%s"
                             % (out, self.d.stderr_tail()))
        return rc, out

    def test_curl_ssl_reqd(self):
        self.curl("smtp://127.0.0.1:%d" % self.d.port, "--ssl-reqd")
        m = self.d.wait_messages(1)[0]
        self.assertRegex(m["fields"].get("TLS", ""), r"^TLSv1\.[23] ")
        self.assertIs(self.record(m["qid"])["json"]["tls"], True)

    def test_curl_smtps(self):
        self.curl("smtps://127.0.0.1:%d" % self.d.tls_addr[1])
        m = self.d.wait_messages(1)[0]
        rec = self.record(m["qid"])
        self.assertIs(rec["json"]["tls"], True)
        received, _ = split_received(rec["eml"])
        self.assertRegex(received, r"\bwith ESMTPS\b")

    def test_curl_smtps_hostname(self):
        self.curl("smtps://%s:%d" % (HOST, self.d.tls_addr[1]), "--resolve",
                  "%s:%d:127.0.0.1" % (HOST, self.d.tls_addr[1]))
        self.d.wait_messages(1)


@unittest.skipUnless(os.path.exists(CURL), "curl not installed")
class NoTLS(PosthornTestCase):
    """A sink without --tls: STARTTLS neither offered nor accepted."""

    def test_starttls_not_offered(self):
        d = self.start_sink()
        c = self.raw(d)
        r = self.ehlo(c)
        self.assertFalse(has_starttls(r))
        r = c.cmd("STARTTLS")
        self.assertIn(r.code, (502, 454), r)
        self.ehlo(c)
        self.transaction(c)

    def test_curl_ssl_reqd_fails(self):
        d = self.start_sink()
        path = os.path.join(self.tmpdir(), "m.eml")
        with open(path, "wb") as f:
            f.write(simple_message("x"))
        rc, out = run_tool([CURL, "-sS", "--max-time", "20", "--url",
                            "smtp://127.0.0.1:%d" % d.port, "--ssl-reqd", "--mail-from",
                            "a@example.com", "--mail-rcpt", "b@example.com", "--upload-file",
                            path])
        self.assertNotEqual(rc, 0, out)
        self.assertEqual(d.messages(), [])


if __name__ == "__main__":
    unittest.main()
