"""Integration tests for the relay's TLS, AUTH and internationalised mail (issue 5), loopback
only, on the fixture of test_relay.py (relayfix.py): the real daemon (`posthorn serve`) relays
for 127.0.0.0/8, resolves through fakedns.py and connects to receivers on 127.0.0.2, .3, ...
on the test-only `smtp_mx_port`.

Receivers: `posthorn sink` as a real TLS-capable MX or smarthost (STARTTLS with a self-signed
certificate, implicit TLS, AUTH against a password file, SMTPUTF8; --store writes a JSON record
per message with tls_version and auth, which is what proves TLS and AUTH were used), Postfix's
smtp-sink as an MX without STARTTLS and without SMTPUTF8, and a PyReceiver that offers STARTTLS
but breaks the handshake.

Cases:
  1. smtp_tls = may towards a sink offering STARTTLS: delivered over TLS (record and log).
  2. smtp_tls = encrypt towards smtp-sink (no STARTTLS): nothing sent, deferred with 4.7.4.
  3. smtp_tls = may, STARTTLS offered, "220" to it, then plaintext garbage: the same host is
     tried again at once without TLS and gets exactly one copy.
  4. a [relay] smarthost with implicit TLS and AUTH: delivered as the relay user; with a wrong
     password nothing arrives and the recipient stays deferred with 4.7.0 quoting the 535.
  5. a UTF-8 local part (SMTPUTF8 from the client) to an MX without SMTPUTF8: bounce 5.6.7, no
     MAIL command ever reaches the MX.
  6. an IDN domain: the DNS is asked for its A-label only; the message arrives at a sink with
     SMTPUTF8, the recipient exactly as given.

Environment: POSTHORN_BIN, POSTHORN_BUILD (see phtest.py). Standard library only; run with
/usr/bin/python3.
"""
import os
import re
import subprocess
import time
import unittest

from phtest import BIN, TIMEOUT, wait_store
from relayfix import (HOSTNAME, SENDER, WAIT, PyReceiver, RelayCase, mx, norm, read_file,
                      wait_until)

A, B, C, D, E = "127.0.0.2", "127.0.0.3", "127.0.0.4", "127.0.0.5", "127.0.0.6"
QUIET = 1.0  # how long "nothing more happens" is watched after the expected outcome
RELAY_USER = "relayuser"
RELAY_PASSWORD = "s3cret-relay-pw"


def message(tag, to="bob@example.test", body=b"Hello over TLS.\r\n"):
    """A small message with CRLF line ends whose Message-ID names tag. to may be non-ASCII
    (the header is then UTF-8, as RFC 6532 allows with SMTPUTF8)."""
    head = ("From: <%s>\r\nTo: <%s>\r\nSubject: relay %s\r\n"
            "Message-ID: <%s@example.org>\r\nDate: Thu, 01 Jan 2025 00:00:00 +0000\r\n\r\n"
            % (SENDER, to, tag, tag)).encode("utf-8")
    return head + body


def unxtext(addr):
    """RFC 6533 utf-8-addr-xtext (\\x{HEX} escapes) to the address it stands for."""
    return re.sub(r"\\x\{([0-9A-Fa-f]{1,6})\}", lambda m: chr(int(m.group(1), 16)), addr)


class _StartTlsBreaker:
    """Stands in for a PyReceiver session's handler: passes every line through, except that
    STARTTLS is answered "220" and then plaintext garbage is sent instead of a TLS handshake,
    and the session ends (EOF to the conversation loop, the socket closed by socketserver)."""

    GARBAGE = b"this is not a TLS ServerHello, just clear text\r\n"

    def __init__(self, handler, owner, conn):
        self._h, self._owner, self._conn = handler, owner, conn
        self.wfile = handler.wfile
        self.connection = handler.connection
        self.rfile = self  # readline below

    def readline(self, limit=-1):
        raw = self._h.rfile.readline(limit)
        if raw.rstrip(b"\r\n").upper() != b"STARTTLS":
            return raw
        with self._owner.lock:
            self._owner.starttls_conns.append(self._conn)
        self.wfile.write(b"220 2.0.0 Ready to start TLS\r\n")
        self.wfile.flush()
        # let the client's ClientHello arrive, so the garbage is the answer to it
        self._h.connection.settimeout(2.0)
        try:
            self._h.connection.recv(4096)
        except OSError:
            pass
        self.wfile.write(self.GARBAGE)
        self.wfile.flush()
        return b""


class BrokenStartTlsReceiver(PyReceiver):
    """A PyReceiver that offers STARTTLS on every connection and breaks the handshake each
    time it is used (_StartTlsBreaker). starttls_conns: the connections that sent STARTTLS."""

    EHLO_KEYWORDS = PyReceiver.EHLO_KEYWORDS + ("STARTTLS",)

    def __init__(self, addr, port, **kw):
        super().__init__(addr, port, **kw)
        self.starttls_conns = []

    def _converse(self, h, conn):
        super()._converse(_StartTlsBreaker(h, self, conn), conn)


class RelayTlsTests(RelayCase):
    # -- receivers and helpers local to these cases --
    def posthorn_sink(self, *args, listen=(), listen_tls=()):
        """`posthorn sink --store DIR` with args on the given addresses; returns (daemon, DIR)."""
        store = os.path.join(self.dir, "store-%d" % len(os.listdir(self.dir)))
        d = self.start_sink("--quiet", "--store", store, "--hostname", "mx.sink.test", *args,
                            listen=listen, listen_tls=listen_tls)
        return d, store

    def stored(self, store, n=1, timeout=WAIT):
        """The n records (list of {'eml','json'}) in a --store directory, oldest id first."""
        files, other = wait_store(store, n, timeout)
        self.assertEqual(other, [], "stray files in the store")
        recs = [v for _, v in sorted(files.items()) if "eml" in v and "json" in v]
        self.assertGreaterEqual(len(recs), n, "expected %d stored message(s) in %s, got %d"
                                % (n, store, len(recs)))
        return recs

    def store_count(self, store):
        try:
            return sum(1 for n in os.listdir(store) if n.endswith(".eml"))
        except FileNotFoundError:
            return 0

    def wait_deferred(self, rcpt, status):
        """queue list shows rcpt deferred with the enhanced status in its error; returns the
        recipient's line."""
        want = re.compile(r'^\s*<%s>\s+deferred\b.*\berror="\d{3} %s ' % (re.escape(rcpt),
                                                                      re.escape(status)))

        def deferred():
            lines = [l for l in self.queue_cmd("list").splitlines() if want.search(l)]
            return lines and lines[0]
        try:
            return wait_until(deferred, what="<%s> deferred with %s" % (rcpt, status))
        except AssertionError as e:
            raise AssertionError("%s; queue list:\n%s" % (e, self.queue_cmd("list"))) from None

    def assertNoLocalMail(self):
        """No message in any local Maildir (the sender's domain example.org): no bounce."""
        found = []
        for root, _, names in os.walk(self.mail):
            if os.path.basename(root) in ("new", "cur"):
                found += [os.path.join(root, n) for n in names]
        self.assertEqual(found, [], "unexpected local mail (a bounce?)")

    def password_files(self, client_password):
        """(the daemon's auth_password_file with client_password, the sink's --auth-file with
        RELAY_USER's real password), both in the temp dir."""
        pw = os.path.join(self.dir, "relay.pw")
        with open(pw, "w") as f:
            f.write(client_password + "\n")
        os.chmod(pw, 0o600)
        p = subprocess.run([BIN, "passwd", RELAY_USER], input=(RELAY_PASSWORD + "\n").encode(),
                           capture_output=True, timeout=TIMEOUT)
        self.assertEqual(p.returncode, 0, p.stderr)
        line = p.stdout.decode().strip()
        self.assertTrue(line.startswith(RELAY_USER + ":"), line)
        users = os.path.join(self.dir, "sink-users")
        with open(users, "w") as f:
            f.write(line + "\n")
        return pw, users

    def smarthost_conf(self, addr, port, pw_file):
        return self.conf(retry="1h", sections="[relay out]\n"
                                              "host = %s:%d\n"
                                              "tls = implicit\n"
                                              "tls_verify = no\n"
                                              "auth_user = %s\n"
                                              "auth_password_file = %s\n"
                                              "domains = smart.test\n"
                         % (addr, port, RELAY_USER, pw_file))

    # 1
    def test_01_opportunistic_tls_used_when_offered(self):
        self.start_dns(mx("tls.test", (10, "mx.tls.test", A)))
        _, store = self.posthorn_sink("--tls", listen=("%s:%d" % (A, self.port),))
        d = self.serve(self.conf(extra="smtp_tls = may\n"))
        body = message("tls-may", to="bob@tls.test")
        qid = self.send(d, ["bob@tls.test"], body)
        rec = self.stored(store)[0]
        j = rec["json"]
        self.assertIs(j.get("tls"), True, j)
        self.assertRegex(j.get("tls_version") or "", r"^TLSv1\.[23]$", j)
        self.assertEqual(j.get("mail_from"), SENDER, j)
        self.assertEqual(j.get("rcpt_to"), ["bob@tls.test"], j)
        self.assertEqual(j.get("helo"), HOSTNAME, j)
        self.assertTrue(rec["eml"].endswith(body), rec["eml"][-300:])
        self.wait_queue_empty()
        d.wait_log("smtp_txn", qid=qid, tls="yes", sent=1)
        self.assertEqual(d.log_events("smtp_txn")[0].get("tls"), "yes")
        time.sleep(QUIET)
        self.assertEqual(self.store_count(store), 1)

    # 2
    def test_02_encrypt_without_starttls_defers(self):
        self.start_dns(mx("plain.test", (10, "mx.plain.test", B)))
        plain = self.sink(B)  # smtp-sink offers no STARTTLS
        d = self.serve(self.conf(retry="1h", extra="smtp_tls = encrypt\n"))
        qid = self.send(d, ["bob@plain.test"], message("tls-encrypt", to="bob@plain.test"))
        self.wait_deferred("bob@plain.test", "4.7.4")
        self.assertEqual(self.queued(), [qid])
        self.assertGreaterEqual(plain.connections(), 1, "the MX was never contacted")
        time.sleep(QUIET)
        self.assertEqual(plain.commands("mail"), [], "a transaction was started in clear text")
        self.assertEqual(plain.messages(), [])
        self.assertNoLocalMail()

    # 3
    def test_03_broken_starttls_falls_back_to_clear_text(self):
        self.start_dns(mx("broken.test", (10, "mx.broken.test", C)))
        rcv = BrokenStartTlsReceiver(C, self.port)
        self.addCleanup(rcv.stop)
        rcv.start()
        # retries an hour apart: only an immediate fallback on the same attempt delivers
        d = self.serve(self.conf(retry="1h", extra="smtp_tls = may\n"))
        body = message("tls-broken", to="bob@broken.test")
        qid = self.send(d, ["bob@broken.test"], body)
        got = rcv.wait_delivered(1)
        self.wait_queue_empty()
        time.sleep(QUIET)
        self.assertEqual(len(rcv.delivered()), 1, rcv.all_transactions())
        txn = got[0]
        self.assertEqual(txn.rcpts, ["bob@broken.test"])
        self.assertEqual(txn.sender, SENDER)
        self.assertTrue(txn.data.endswith(body), txn.data[-300:])
        with rcv.lock:
            starttls = list(rcv.starttls_conns)
        self.assertEqual(len(starttls), 1, "STARTTLS used on connections %r" % starttls)
        self.assertNotEqual(txn.conn, starttls[0], "delivered on the broken connection")
        self.assertGreater(txn.conn, starttls[0])
        d.wait_log("smtp_txn", qid=qid, tls="no", sent=1)
        self.assertNoLocalMail()

    # 4
    def test_04_smarthost_implicit_tls_with_auth(self):
        self.start_dns({})  # the smarthost is an address: no DNS at all
        pw, users = self.password_files(RELAY_PASSWORD)
        _, store = self.posthorn_sink("--auth-file", users, listen_tls=("%s:%d" % (D, self.port),))
        d = self.serve(self.smarthost_conf(D, self.port, pw))
        body = message("smart-auth", to="bob@smart.test")
        qid = self.send(d, ["bob@smart.test"], body)
        rec = self.stored(store)[0]
        j = rec["json"]
        self.assertEqual(j.get("auth"), RELAY_USER, j)
        self.assertIs(j.get("tls"), True, j)
        self.assertEqual(j.get("rcpt_to"), ["bob@smart.test"], j)
        self.assertEqual(j.get("mail_from"), SENDER, j)
        self.assertTrue(rec["eml"].endswith(body), rec["eml"][-300:])
        self.wait_queue_empty()
        d.wait_log("smtp_txn", qid=qid, tls="yes", sent=1)
        self.assertEqual(self.dns.queried("smart.test"), [])
        self.assertNoLocalMail()

    def test_04b_smarthost_wrong_password_defers(self):
        self.start_dns({})
        pw, users = self.password_files("not-the-password")
        sink, store = self.posthorn_sink("--auth-file", users,
                                         listen_tls=("%s:%d" % (D, self.port),))
        d = self.serve(self.smarthost_conf(D, self.port, pw))
        qid = self.send(d, ["bob@smart.test"], message("smart-badpw", to="bob@smart.test"))
        line = self.wait_deferred("bob@smart.test", "4.7.0")
        self.assertRegex(line, r'error="[^"]*\b535 5\.7\.8 ', "the server's 535 is not quoted")
        self.assertEqual(self.queued(), [qid])
        # the sink really checked and refused the login
        sink.wait_log("auth", user=RELAY_USER, result="failed")
        self.assertNotIn(RELAY_PASSWORD, d.stderr_text())
        self.assertNotIn("not-the-password", d.stderr_text(), "the password was logged")
        time.sleep(QUIET)
        self.assertEqual(self.store_count(store), 0)
        self.assertNoLocalMail()

    # 5
    def test_05_smtputf8_needed_but_not_offered_bounces(self):
        self.start_dns(mx("ascii.test", (10, "mx.ascii.test", E)))
        mxhost = self.sink(E)  # smtp-sink offers no SMTPUTF8
        d = self.serve()
        rcpt = "j\u00f6rg@ascii.test"
        self.send(d, [rcpt], smtputf8=True, body=message("utf8-local", to=rcpt))
        _, block = self.wait_bounce()
        self.assertEqual(block["Action"], "failed")
        self.assertEqual(block["Status"], "5.6.7")
        # RFC 6533: a UTF-8 address in message/delivery-status is utf-8-addr-xtext
        self.assertEqual(norm(block["Final-Recipient"]), "utf-8; j\\x{F6}rg@ascii.test")
        self.assertEqual(unxtext(norm(block["Final-Recipient"]).split("; ", 1)[1]), rcpt)
        self.assertIn("5.6.7", norm(block["Diagnostic-Code"]))
        self.assertIn("SMTPUTF8", norm(block["Diagnostic-Code"]))
        # the returned part is the original message (its header at least)
        self.assertIn(b"Message-ID: <utf8-local@example.org>", read_file(self.maildir_new()[0]))
        self.wait_queue_empty()
        time.sleep(QUIET)
        self.assertEqual(mxhost.commands("mail"), [], "MAIL sent to a server without SMTPUTF8")
        self.assertEqual(mxhost.messages(), [])
        self.assertEqual(len(self.maildir_new()), 1, "more than one bounce")

    # 6
    def test_06_idn_domain_resolved_by_its_a_label(self):
        dns = self.start_dns(mx("xn--bcher-kva.test", (10, "mx.xn--bcher-kva.test", A)))
        _, store = self.posthorn_sink(listen=("%s:%d" % (A, self.port),))
        d = self.serve()
        rcpt = "bob@b\u00fccher.test"
        body = message("idn", to=rcpt, body="Gr\u00fc\u00dfe.\r\n".encode("utf-8"))
        qid = self.send(d, [rcpt], smtputf8=True, body=body)
        rec = self.stored(store)[0]
        j = rec["json"]
        self.assertEqual(j.get("rcpt_to"), [rcpt], j)
        self.assertEqual(j.get("mail_from"), SENDER, j)
        self.assertTrue(rec["eml"].endswith(body), rec["eml"][-300:])
        self.wait_queue_empty()
        self.assertTrue(dns.queried("xn--bcher-kva.test", "MX"), dns.queries)
        self.assertEqual([q for q in dns.queries if not q[0].isascii()], [],
                         "a query with a UTF-8 name")
        d.wait_log("smtp_txn", qid=qid, sent=1)
        self.assertNoLocalMail()

    # 7
    def test_07_mx_that_is_ourselves_bounces_as_a_loop(self):
        # the MX greets with our own name (it is this server under another address): sending
        # would loop, so the message bounces with 5.4.6 and nothing is sent there
        self.start_dns(mx("loop.test", (10, "mx.loop.test", A)))
        sink = self.start_sink("--quiet", "--hostname", HOSTNAME,
                               listen=("%s:%d" % (A, self.port),))
        d = self.serve()
        self.send(d, ["bob@loop.test"], message("loop", to="bob@loop.test"))
        msg, rcpt = self.wait_bounce()
        self.assertEqual(rcpt["Final-Recipient"], "rfc822; bob@loop.test")
        self.assertEqual(rcpt["Status"], "5.4.6")
        self.assertIn("loops back to myself", rcpt["Diagnostic-Code"])
        self.wait_queue_empty()
        sink.wait_log("disconnect")              # the relay did reach it ...
        self.assertNotIn("event=mail ", sink.stderr_text())  # ... and sent nothing


if __name__ == "__main__":
    unittest.main()
