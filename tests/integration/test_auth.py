"""
test_auth.py - SMTP AUTH (RFC 4954) with SASL PLAIN (RFC 4616) and LOGIN in `posthorn sink`:
offered only under TLS (538 5.7.11 on a plain session) unless --auth-insecure, --auth-file with
yescrypt/sha512-crypt/bcrypt hashes, --auth-accept-any, every reply of the exchange (334
challenges, 235, 535, 501 bad base64 and cancel, 504, 503, the "=" empty initial response),
throttling of failures per client IP (growing delay, then 421 and close; cleared by a success;
the loop keeps serving others), ESMTPSA/ESMTPA in Received: and "auth" in the record, STARTTLS
forgetting an earlier AUTH, passwords never logged, `posthorn passwd`, and the real clients
smtplib, swaks, curl and openssl s_client.
"""

import base64
import os
import shutil
import smtplib
import sys
import time
import unittest
import warnings

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from phtest import (BIN, HELO, LOG_KV_RE, OPENSSL, Interactive, PosthornTestCase,  # noqa: E402
                    client_context, run_tool, simple_message, split_received, wait_store)

SWAKS = "/usr/bin/swaks"
CURL = shutil.which("curl") or "/usr/bin/curl"
HOST = "mx.example.test"

USERS = {  # distinctive passwords, so that any trace of them in the output is found
    "alice": "Al1ce-Pw-7f3e9a",      # yescrypt, from `posthorn passwd`
    "bob": "B0b:Pw-with-colon-51c",  # sha512-crypt, from `openssl passwd -6`
    "carol": "Car0l-Pw-bcrypt-8d2",  # bcrypt, from Python's crypt (if available)
}
WRONG = "Wr0ng-Guess-0b4d77"


def b64(data):
    if isinstance(data, str):
        data = data.encode()
    return base64.b64encode(data).decode()


def plain_ir(user, password, authzid=""):
    return b64("%s\0%s\0%s" % (authzid, user, password))


def has_auth(reply):
    return any(l.upper().startswith("AUTH ") for l in reply.lines[1:])


def auth_mechs(reply):
    for l in reply.lines[1:]:
        if l.upper().startswith("AUTH "):
            return l.upper().split()[1:]
    return []


def passwd_line(user, password):
    p = run_tool([BIN, "passwd", user], input=(password + "\n").encode(), timeout=20)
    if p[0] != 0:
        raise AssertionError("posthorn passwd failed: %s" % p[1])
    return p[1].strip().splitlines()[-1]


def make_passwd_file(directory):
    """alice (yescrypt), bob (sha512-crypt) and, where libcrypt has it, carol (bcrypt)."""
    lines = [passwd_line("alice", USERS["alice"])]
    rc, out = run_tool([OPENSSL, "passwd", "-6", "-stdin"], input=(USERS["bob"] + "\n").encode())
    if rc != 0:
        raise AssertionError("openssl passwd -6 failed: %s" % out)
    lines.append("bob:" + out.strip())
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import crypt
            h = crypt.crypt(USERS["carol"], crypt.mksalt(crypt.METHOD_BLOWFISH, rounds=16))
        if h and h.startswith("$2"):
            lines.append("carol:" + h)
    except (ImportError, AttributeError, ValueError, OSError):
        pass
    path = os.path.join(directory, "passwd")
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    return path


class AuthCase(PosthornTestCase):
    """A sink with --tls (self-signed), --auth-file, a STARTTLS and an implicit-TLS listener."""

    auth_args = None  # None: --auth-file <made in setUpClass>

    @classmethod
    def setUpClass(cls):
        import tempfile
        cls.pwdir = tempfile.mkdtemp(prefix="posthorn-auth-")
        cls.passwd = make_passwd_file(cls.pwdir)
        with open(cls.passwd) as f:
            cls.have_carol = "carol:" in f.read()

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.pwdir, True)

    def setUp(self):
        self.store = self.tmpdir()
        self.d = self.start_daemon()

    def start_daemon(self, *extra, tls=True):
        args = ["--auth-file", self.passwd] if self.auth_args is None else list(self.auth_args)
        if tls:
            args.append("--tls")
        kw = {"listen_tls": ("127.0.0.1:0",)} if tls else {}
        d = self.start_sink("--store", self.store, "--hostname", HOST, *(args + list(extra)),
                            **kw)
        if tls:
            self.cert = d.selfsigned()["cert"]
            self.ctx = client_context(self.cert)
        return d

    def session(self, source=None, ehlo=True):
        """RawClient after EHLO, STARTTLS, handshake and (if ehlo) a second EHLO."""
        c = self.raw(self.d, source=source)
        self.ehlo(c)
        self.assertReply(c.starttls(self.ctx), 220, "2.0.0")
        if ehlo:
            self.assertIn("PLAIN", auth_mechs(self.ehlo(c)))
        return c

    def smtp_tls(self):
        s = smtplib.SMTP("127.0.0.1", self.d.port, local_hostname=HELO, timeout=15)
        self.addCleanup(self._smtp_close, s)
        s.starttls(context=self.ctx)
        s.ehlo()
        return s

    def assertAuthOk(self, reply):
        self.assertReply(reply, 235, "2.7.0")

    def login(self, c, user, password, timeout=None):
        """AUTH LOGIN with the user name as initial response; returns the final reply."""
        r = c.cmd("AUTH LOGIN " + b64(user))
        self.assertEqual(r.raw, ["334 UGFzc3dvcmQ6"])
        return c.cmd(b64(password), timeout=timeout)

    def timed(self, fn):
        t0 = time.monotonic()
        r = fn()
        return r, time.monotonic() - t0

    def record(self, qid, n=1):
        files, other = wait_store(self.store, n)
        self.assertEqual(other, [])
        self.assertIn(qid, files)
        return files[qid]

    def check_authed_message(self, qid, user, proto="ESMTPSA", tls=True):
        rec = self.record(qid)
        received, _ = split_received(rec["eml"])
        self.assertRegex(received, r"\bwith %s\b" % proto, received)
        self.assertEqual(rec["json"].get("auth"), user, rec["json"])
        self.assertIs(rec["json"].get("tls"), tls, rec["json"])
        return rec


# ---- offering AUTH -------------------------------------------------------------------------

class Offer(AuthCase):

    def test_offered_only_under_tls(self):
        c = self.raw(self.d)
        r = self.ehlo(c)
        self.assertFalse(has_auth(r), "AUTH offered on a plain session: %r" % r)
        c.starttls(self.ctx)
        r = self.ehlo(c)
        self.assertEqual(sorted(auth_mechs(r)), ["LOGIN", "PLAIN"], r)
        ci = self.raw(self.d.tls_addr, tls=self.ctx)
        self.assertEqual(sorted(auth_mechs(self.ehlo(ci))), ["LOGIN", "PLAIN"])

    def test_auth_on_plain_session_538(self):
        c = self.raw(self.d)
        self.ehlo(c)
        for cmd in ("AUTH PLAIN " + plain_ir("alice", USERS["alice"]), "AUTH LOGIN", "AUTH PLAIN"):
            with self.subTest(cmd=cmd.split()[:2]):
                self.assertReply(c.cmd(cmd), 538, "5.7.11")
        self.assertEqual(self.d.log_events("auth"), [], "credentials checked on a plain session")
        # the client can still upgrade and authenticate
        c.starttls(self.ctx)
        self.ehlo(c)
        self.assertAuthOk(c.cmd("AUTH PLAIN " + plain_ir("alice", USERS["alice"])))

    def test_auth_after_starttls_needs_ehlo(self):
        c = self.raw(self.d)
        self.ehlo(c)
        c.starttls(self.ctx)
        self.assertReply(c.cmd("AUTH PLAIN " + plain_ir("alice", USERS["alice"])), 503, "5.5.1")
        self.ehlo(c)
        self.assertAuthOk(c.cmd("AUTH PLAIN " + plain_ir("alice", USERS["alice"])))

    def test_auth_before_ehlo_and_after_helo(self):
        ci = self.raw(self.d.tls_addr, tls=self.ctx)
        self.assertReply(ci.cmd("AUTH PLAIN " + plain_ir("alice", USERS["alice"])), 503, "5.5.1")
        self.assertReply(ci.cmd("HELO " + HELO), 250)
        # AUTH is an ESMTP extension (RFC 4954 4): not after HELO
        self.assertReply(ci.cmd("AUTH PLAIN " + plain_ir("alice", USERS["alice"])), 503, "5.5.1")
        self.ehlo(ci)
        self.assertAuthOk(ci.cmd("AUTH PLAIN " + plain_ir("alice", USERS["alice"])))


class NoAuthConfigured(PosthornTestCase):

    def test_tls_without_auth_options(self):
        d = self.start_sink("--tls")
        c = self.raw(d)
        self.ehlo(c)
        c.starttls(client_context(d.selfsigned()["cert"]))
        self.assertFalse(has_auth(self.ehlo(c)))
        r = c.cmd("AUTH PLAIN " + plain_ir("alice", "x"))
        self.assertReply(r, 502, "5.5.1")

    def test_auth_file_without_tls(self):
        pwdir = self.tmpdir()
        d = self.start_sink("--auth-file", make_passwd_file(pwdir))
        c = self.raw(d)
        self.assertFalse(has_auth(self.ehlo(c)))
        self.assertReply(c.cmd("AUTH PLAIN " + plain_ir("alice", USERS["alice"])), 538, "5.7.11")

    def test_bad_auth_file_fails_with_line(self):
        pwdir = self.tmpdir()
        path = os.path.join(pwdir, "passwd")
        with open(path, "w") as f:
            f.write(passwd_line("alice", "x") + "\n" + "bad:$y$j9T$truncated\n")
        rc, out = run_tool([BIN, "sink", "--listen", "127.0.0.1:0", "--auth-file", path],
                           timeout=20)
        self.assertNotEqual(rc, 0, out)
        self.assertIn("%s:2" % path, out)
        self.assertNotIn("event=listening", out)
        rc, out = run_tool([BIN, "sink", "--listen", "127.0.0.1:0", "--auth-file",
                            os.path.join(pwdir, "missing")], timeout=20)
        self.assertNotEqual(rc, 0, out)


# ---- the SASL exchanges --------------------------------------------------------------------

class Exchanges(AuthCase):

    def test_smtplib_plain(self):
        for ir in (True, False):
            with self.subTest(initial_response=ir):
                s = self.smtp_tls()
                s.user, s.password = "alice", USERS["alice"]
                code, resp = s.auth("PLAIN", s.auth_plain, initial_response_ok=ir)
                self.assertEqual((code, resp[:5]), (235, b"2.7.0"))
                self.assertEqual(s.sendmail("a@example.com", ["b@example.com"],
                                            simple_message("plain %s" % ir)), {})
                s.quit()
        msgs = self.d.wait_messages(2)
        for m in msgs:
            self.check_authed_message(m["qid"], "alice")
        ok = self.d.wait_log("auth", n=2, result="ok")
        self.assertEqual({e.get("user") for e in ok}, {"alice"})

    def test_smtplib_login(self):
        for ir in (True, False):
            with self.subTest(initial_response=ir):
                s = self.smtp_tls()
                s.user, s.password = "bob", USERS["bob"]
                code, _ = s.auth("LOGIN", s.auth_login, initial_response_ok=ir)
                self.assertEqual(code, 235)
                self.assertEqual(s.sendmail("bob@example.com", ["b@example.com"],
                                            simple_message("login %s" % ir)), {})
                s.quit()
        for m in self.d.wait_messages(2):
            self.check_authed_message(m["qid"], "bob")

    def test_smtplib_login_default(self):
        s = self.smtp_tls()
        code, _ = s.login("alice", USERS["alice"])
        self.assertEqual(code, 235)
        self.assertEqual(s.sendmail("a@example.com", ["b@example.com"], simple_message("x")), {})
        s.quit()
        self.check_authed_message(self.d.wait_messages(1)[0]["qid"], "alice")

    def test_hash_methods(self):
        users = ["alice", "bob"] + (["carol"] if self.have_carol else [])
        for user in users:
            with self.subTest(user=user):
                c = self.session()
                self.assertAuthOk(c.cmd("AUTH PLAIN " + plain_ir(user, USERS[user])))
                c.close()
        if not self.have_carol:
            self.skipTest("no bcrypt in this Python's crypt: carol not tested")

    def test_plain_with_initial_response(self):
        c = self.session()
        r = c.cmd("AUTH PLAIN " + plain_ir("alice", USERS["alice"]))
        self.assertAuthOk(r)
        self.assertEqual(r.text, "Authentication successful")
        qid = self.transaction(c)
        self.check_authed_message(qid, "alice")

    def test_plain_with_challenge(self):
        c = self.session()
        r = c.cmd("AUTH PLAIN")
        self.assertEqual(r.raw, ["334 "], "RFC 4954 4: an empty challenge is '334 '")
        self.assertAuthOk(c.cmd(plain_ir("alice", USERS["alice"])))

    def test_plain_authzid(self):
        c = self.session()
        self.assertAuthOk(c.cmd("AUTH PLAIN " + plain_ir("alice", USERS["alice"], "alice")))
        c2 = self.session(source="127.0.0.4")
        r = c2.cmd("AUTH PLAIN " + plain_ir("alice", USERS["alice"], "bob"))
        self.assertReply(r, 535, "5.7.8")  # alice may not act as bob

    def test_login_with_challenges(self):
        c = self.session()
        r = c.cmd("AUTH LOGIN")
        self.assertEqual(r.raw, ["334 VXNlcm5hbWU6"])
        r = c.cmd(b64("alice"))
        self.assertEqual(r.raw, ["334 UGFzc3dvcmQ6"])
        self.assertAuthOk(c.cmd(b64(USERS["alice"])))
        self.check_authed_message(self.transaction(c), "alice")

    def test_login_with_initial_response(self):
        c = self.session()
        r = c.cmd("AUTH LOGIN " + b64("alice"))
        self.assertEqual(r.raw, ["334 UGFzc3dvcmQ6"])
        self.assertAuthOk(c.cmd(b64(USERS["alice"])))

    def test_mechanism_name_case_insensitive(self):
        c = self.session()
        self.assertAuthOk(c.cmd("auth plain " + plain_ir("alice", USERS["alice"])))

    def test_bad_base64(self):
        c = self.session()
        self.assertReply(c.cmd("AUTH PLAIN %%%not-base64%%%"), 501, "5.5.2")
        self.assertEqual(c.cmd("AUTH PLAIN").raw, ["334 "])
        self.assertReply(c.cmd("this is not base64!"), 501, "5.5.2")
        self.assertEqual(c.cmd("AUTH LOGIN").raw[0][:3], "334")
        self.assertEqual(c.cmd(b64("alice")).raw, ["334 UGFzc3dvcmQ6"])
        self.assertReply(c.cmd("@@@@"), 501, "5.5.2")
        self.assertReply(c.cmd("AUTH PLAIN " + b64("no-nul-separators")), 501, "5.5.2")
        self.assertEqual(self.d.log_events("auth"), [], "malformed input reached the checker")
        # the session is intact and can authenticate
        self.assertAuthOk(c.cmd("AUTH PLAIN " + plain_ir("alice", USERS["alice"])))

    def test_cancel(self):
        c = self.session()
        self.assertEqual(c.cmd("AUTH PLAIN").raw, ["334 "])
        self.assertReply(c.cmd("*"), 501, "5.7.0")
        self.assertEqual(c.cmd("AUTH LOGIN").raw, ["334 VXNlcm5hbWU6"])
        self.assertReply(c.cmd("*"), 501, "5.7.0")
        self.assertEqual(c.cmd("AUTH LOGIN " + b64("alice")).raw, ["334 UGFzc3dvcmQ6"])
        self.assertReply(c.cmd("*"), 501, "5.7.0")
        self.assertEqual(self.d.log_events("auth"), [])
        self.assertReply(c.cmd("NOOP"), 250)  # back in command mode
        self.assertAuthOk(self.login(c, "alice", USERS["alice"]))

    def test_empty_initial_response(self):
        """RFC 4954 4: '=' is an initial response of zero length (not a request for a 334)."""
        c = self.session()
        r = c.cmd("AUTH PLAIN =")
        self.assertNotEqual(r.code, 334, "'=' taken as no initial response: %r" % r)
        self.assertReply(r, 501, "5.5.2")  # an empty PLAIN message is malformed
        r = c.cmd("AUTH LOGIN =")  # an empty user name
        self.assertNotEqual(r.code, 334, r)
        self.assertEqual(r.code // 100, 5, r)
        self.assertReply(c.cmd("NOOP"), 250)
        self.assertAuthOk(c.cmd("AUTH PLAIN " + plain_ir("alice", USERS["alice"])))

    def test_unknown_mechanism(self):
        c = self.session()
        for cmd in ("AUTH CRAM-MD5", "AUTH DIGEST-MD5 abc", "AUTH X-NOPE", "AUTH GSSAPI ="):
            with self.subTest(cmd=cmd):
                self.assertReply(c.cmd(cmd), 504, "5.5.4")
        r = c.cmd("AUTH")
        self.assertEqual(r.code, 501, r)
        self.assertAuthOk(c.cmd("AUTH PLAIN " + plain_ir("alice", USERS["alice"])))

    def test_already_authenticated(self):
        c = self.session()
        self.assertAuthOk(c.cmd("AUTH PLAIN " + plain_ir("alice", USERS["alice"])))
        self.assertReply(c.cmd("AUTH PLAIN " + plain_ir("bob", USERS["bob"])), 503, "5.5.1")
        self.assertReply(c.cmd("AUTH LOGIN"), 503, "5.5.1")
        # still alice
        self.check_authed_message(self.transaction(c), "alice")

    def test_auth_inside_transaction(self):
        c = self.session()
        self.assertReply(c.cmd("MAIL FROM:<a@example.com>"), 250, "2.1.0")
        self.assertReply(c.cmd("AUTH PLAIN " + plain_ir("alice", USERS["alice"])), 503, "5.5.1")
        self.assertReply(c.cmd("RSET"), 250)
        self.assertAuthOk(c.cmd("AUTH PLAIN " + plain_ir("alice", USERS["alice"])))

    def test_auth_survives_rset_and_several_messages(self):
        c = self.session()
        self.assertAuthOk(c.cmd("AUTH PLAIN " + plain_ir("alice", USERS["alice"])))
        q1 = self.transaction(c)
        self.assertReply(c.cmd("RSET"), 250)
        q2 = self.transaction(c)
        files, _ = wait_store(self.store, 2)
        for q in (q1, q2):
            self.assertEqual(files[q]["json"]["auth"], "alice")

    def test_overlong_auth_line(self):
        c = self.session()
        self.assertEqual(c.cmd("AUTH PLAIN").raw, ["334 "])
        r = c.cmd("A" * 4000)
        self.assertEqual(r.code // 100, 5, r)
        self.assertReply(c.cmd("NOOP"), 250)
        self.assertAuthOk(c.cmd("AUTH PLAIN " + plain_ir("alice", USERS["alice"])))

    def test_unauthenticated_message_has_no_auth(self):
        c = self.session()
        qid = self.transaction(c)
        rec = self.check_authed_message(qid, None, proto="ESMTPS")
        self.assertNotIn("ESMTPSA", split_received(rec["eml"])[0])

    def test_implicit_tls_auth(self):
        s = smtplib.SMTP_SSL("127.0.0.1", self.d.tls_addr[1], local_hostname=HELO, timeout=15,
                             context=self.ctx)
        self.addCleanup(self._smtp_close, s)
        self.assertEqual(s.login("alice", USERS["alice"])[0], 235)
        self.assertEqual(s.sendmail("a@example.com", ["b@example.com"], simple_message("i")), {})
        s.quit()
        self.check_authed_message(self.d.wait_messages(1)[0]["qid"], "alice")


# ---- failures, throttling, secrecy ---------------------------------------------------------

class Failures(AuthCase):

    def test_wrong_password_535(self):
        c = self.session()
        r, took = self.timed(lambda: c.cmd("AUTH PLAIN " + plain_ir("alice", WRONG)))
        self.assertReply(r, 535, "5.7.8")
        self.assertGreaterEqual(took, 0.9, "a failed AUTH was answered without delay")
        ev = self.d.wait_log("auth", result="failed")
        self.assertEqual(ev[0].get("user"), "alice")
        # a failed AUTH leaves the session unauthenticated (the sink takes such mail too)
        qid = self.transaction(c)
        self.assertIsNone(self.record(qid)["json"]["auth"])
        # the same session may try again and succeed
        self.assertAuthOk(self.login(c, "alice", USERS["alice"]))
        qid2 = self.transaction(c)
        files, _ = wait_store(self.store, 2)
        self.assertEqual(files[qid2]["json"]["auth"], "alice")

    def test_unknown_user_same_reply(self):
        c = self.session(source="127.0.0.2")
        c2 = self.session(source="127.0.0.3")
        c.send("AUTH PLAIN %s\r\n" % plain_ir("mallory", WRONG))
        c2.send("AUTH PLAIN %s\r\n" % plain_ir("alice", WRONG))
        r1, r2 = c.read_reply(), c2.read_reply()
        self.assertReply(r1, 535, "5.7.8")
        self.assertEqual(r1.raw, r2.raw, "an unknown user is told apart from a wrong password")

    def test_user_name_cannot_forge_log_fields(self):
        """A user name with spaces and '=' must not add keys to the key=value log line."""
        c = self.session()
        forged = "eve result=ok user=alice"
        self.assertReply(c.cmd("AUTH PLAIN " + plain_ir(forged, WRONG)), 535, "5.7.8")
        self.d.wait_log("auth")
        lines = [l for l in self.d.stderr_text().splitlines() if "event=auth " in l]
        self.assertEqual(len(lines), 1, lines)
        keys = [k for k, _ in LOG_KV_RE.findall(lines[0])]  # a quoted value hides its '='
        for key in ("user", "result"):
            self.assertEqual(keys.count(key), 1,
                             "forged %s= field in the log line: %s" % (key, lines[0]))
        ev = self.d.log_events("auth")[0]
        self.assertEqual(ev.get("result"), "failed", lines[0])
        self.assertIn("eve", ev.get("user", ""), lines[0])

    def test_disconnect_while_failure_is_held(self):
        c = self.session()
        c.send("AUTH PLAIN %s\r\n" % plain_ir("alice", WRONG))
        time.sleep(0.1)
        c.close(reset=True)
        self.d.wait_log("disconnect")
        time.sleep(1.2)  # the delayed reply's timer fires for a gone session
        c2 = self.session(source="127.0.0.5")
        self.assertAuthOk(c2.cmd("AUTH PLAIN " + plain_ir("alice", USERS["alice"])))
        self.assertTrue(self.d.alive())

    def test_success_clears_failures(self):
        c = self.session()
        _, t1 = self.timed(lambda: c.cmd("AUTH PLAIN " + plain_ir("alice", WRONG)))
        _, t2 = self.timed(lambda: c.cmd("AUTH PLAIN " + plain_ir("alice", WRONG)))
        self.assertGreaterEqual(t2, 1.8, "second failure not delayed longer (%.2f s, %.2f s)"
                                % (t1, t2))
        c2 = self.session()
        self.assertAuthOk(c2.cmd("AUTH PLAIN " + plain_ir("alice", USERS["alice"])))
        c3 = self.session()
        r, t3 = self.timed(lambda: c3.cmd("AUTH PLAIN " + plain_ir("alice", WRONG)))
        self.assertReply(r, 535, "5.7.8")
        self.assertLess(t3, 1.8, "the delay did not start over after a success")


class Throttling(AuthCase):

    def test_growing_delay_then_421_per_ip(self):
        expected = [1, 2, 4, 8]
        for n, delay in enumerate(expected, 1):
            c = self.session()  # a new connection each time: the count is per IP
            if delay == 8:
                # while this failure is held, the server keeps serving everybody else
                c.send("AUTH PLAIN %s\r\n" % plain_ir("alice", WRONG))
                t0 = time.monotonic()
                time.sleep(0.3)
                other = self.raw(self.d)
                self.ehlo(other)
                self.transaction(other)
                other.close()
                o = self.session(source="127.0.0.3")  # another IP is not throttled
                self.assertAuthOk(o.cmd("AUTH PLAIN " + plain_ir("alice", USERS["alice"])))
                o.close()
                self.assertLess(time.monotonic() - t0, 3, "the loop was blocked by a held AUTH")
                r = c.read_reply(timeout=15)
                took = time.monotonic() - t0
            else:
                r, took = self.timed(lambda: c.cmd("AUTH PLAIN " + plain_ir("alice", WRONG),
                                                   timeout=15))
            self.assertReply(r, 535, "5.7.8")
            self.assertGreaterEqual(took, delay * 0.9, "failure %d: %.2f s, want ~%d s"
                                    % (n, took, delay))
            self.assertLess(took, delay + 2.0, "failure %d: %.2f s, want ~%d s" % (n, took, delay))
            c.close()
        c = self.session()
        r = self.login(c, "alice", WRONG, timeout=15)
        self.assertReply(r, 421, "4.7.0")
        self.assertTrue(c.closed_by_server(5), "not closed after 421")
        ev = self.d.wait_log("auth", n=5, result="failed")
        self.assertEqual([e.get("user") for e in ev], ["alice"] * 5)
        # the lock holds across connections
        c = self.session()
        self.assertReply(c.cmd("AUTH PLAIN " + plain_ir("bob", WRONG), timeout=15), 421, "4.7.0")
        self.assertTrue(c.closed_by_server(5))
        # another address starts at the first delay
        o = self.session(source="127.0.0.3")
        r, took = self.timed(lambda: o.cmd("AUTH PLAIN " + plain_ir("alice", WRONG)))
        self.assertReply(r, 535, "5.7.8")
        self.assertLess(took, 1.9)


class Secrecy(AuthCase):

    def start_daemon(self, *extra, tls=True):
        return super().start_daemon("--log-level", "debug", *extra, tls=tls)

    def test_passwords_never_logged(self):
        c = self.session()
        self.assertAuthOk(c.cmd("AUTH PLAIN " + plain_ir("alice", USERS["alice"])))
        self.transaction(c)
        c.close()
        c = self.session()
        c.cmd("AUTH LOGIN " + b64("bob"))
        self.assertAuthOk(c.cmd(b64(USERS["bob"])))
        c.close()
        c = self.session(source="127.0.0.2")
        self.assertReply(c.cmd("AUTH PLAIN " + plain_ir("alice", WRONG)), 535, "5.7.8")
        c = self.session(source="127.0.0.3")
        c.cmd("AUTH LOGIN")
        c.cmd(b64("alice"))
        self.assertReply(c.cmd(b64(WRONG + "x")), 535, "5.7.8")
        self.d.wait_log("auth", n=4)
        self.assertEqual(self.d.stop(), 0)
        out = self.d.stderr_text() + self.d.stdout_bytes().decode("utf-8", "replace")
        for root, _, names in os.walk(self.store):
            for n in names:
                with open(os.path.join(root, n), "rb") as f:
                    out += f.read().decode("utf-8", "replace")
        secrets = [USERS["alice"], USERS["bob"], WRONG, WRONG + "x",
                   b64(USERS["alice"]), b64(USERS["bob"]), b64(WRONG), b64(WRONG + "x"),
                   plain_ir("alice", USERS["alice"]), plain_ir("alice", WRONG)]
        for s in secrets:
            self.assertNotIn(s, out, "a password (or its base64) appears in the output")
        ok = [e for e in self.d.log_events("auth") if e.get("result") == "ok"]
        self.assertEqual(sorted(e.get("user") for e in ok), ["alice", "bob"])
        for e in self.d.log_events("auth"):
            self.assertNotIn("password", e)


# ---- other modes ---------------------------------------------------------------------------

class Insecure(AuthCase):
    """--auth-insecure: AUTH on plain sessions too; STARTTLS forgets an earlier AUTH."""

    def start_daemon(self, *extra, tls=True):
        return super().start_daemon("--auth-insecure", *extra, tls=tls)

    def test_auth_on_plain_session(self):
        c = self.raw(self.d)
        r = self.ehlo(c)
        self.assertEqual(sorted(auth_mechs(r)), ["LOGIN", "PLAIN"], r)
        self.assertAuthOk(c.cmd("AUTH PLAIN " + plain_ir("alice", USERS["alice"])))
        qid = self.transaction(c)
        rec = self.check_authed_message(qid, "alice", proto="ESMTPA", tls=False)
        self.assertNotIn("ESMTPSA", split_received(rec["eml"])[0])

    def test_smtplib_login_without_tls(self):
        s = smtplib.SMTP("127.0.0.1", self.d.port, local_hostname=HELO, timeout=15)
        self.addCleanup(self._smtp_close, s)
        self.assertEqual(s.login("bob", USERS["bob"])[0], 235)
        self.assertEqual(s.sendmail("a@example.com", ["b@example.com"], simple_message("x")), {})
        s.quit()
        self.check_authed_message(self.d.wait_messages(1)[0]["qid"], "bob", proto="ESMTPA",
                                  tls=False)

    def test_starttls_forgets_auth(self):
        c = self.raw(self.d)
        self.ehlo(c)
        self.assertAuthOk(c.cmd("AUTH PLAIN " + plain_ir("alice", USERS["alice"])))
        c.starttls(self.ctx)
        r = self.ehlo(c)
        self.assertIn("PLAIN", auth_mechs(r), "AUTH not offered again after STARTTLS")
        qid = self.transaction(c)
        rec = self.record(qid)
        self.assertIsNone(rec["json"].get("auth"), "AUTH survived STARTTLS (RFC 3207 4.2)")
        self.assertNotIn("ESMTPSA", split_received(rec["eml"])[0])
        # and a new AUTH under TLS works
        self.assertAuthOk(c.cmd("AUTH PLAIN " + plain_ir("bob", USERS["bob"])))


class AcceptAny(AuthCase):
    auth_args = ("--auth-accept-any",)

    def test_any_credentials(self):
        s = self.smtp_tls()
        self.assertEqual(s.login("whoever", "whatever")[0], 235)
        self.assertEqual(s.sendmail("a@example.com", ["b@example.com"], simple_message("x")), {})
        s.quit()
        self.check_authed_message(self.d.wait_messages(1)[0]["qid"], "whoever")
        self.d.wait_log("auth", user="whoever", result="ok")

    def test_still_only_under_tls(self):
        c = self.raw(self.d)
        self.assertFalse(has_auth(self.ehlo(c)))
        self.assertReply(c.cmd("AUTH PLAIN " + plain_ir("x", "y")), 538, "5.7.11")

    def test_protocol_errors_still_apply(self):
        c = self.session()
        self.assertReply(c.cmd("AUTH PLAIN !!"), 501, "5.5.2")
        self.assertReply(c.cmd("AUTH PLAIN " + b64("\0\0")), 501, "5.5.2")  # empty user and pw
        self.assertAuthOk(c.cmd("AUTH PLAIN " + plain_ir("x", "y")))


class Passwd(unittest.TestCase):

    def test_passwd_line(self):
        line = passwd_line("alice", "s3cret pw")
        self.assertRegex(line, r"^alice:\$y\$[./A-Za-z0-9$]+$")
        self.assertNotIn("s3cret", line)
        self.assertNotEqual(line, passwd_line("alice", "s3cret pw"), "no random salt")

    def test_passwd_hash_only(self):
        rc, out = run_tool([BIN, "passwd"], input=b"pw\n", timeout=20)
        self.assertEqual(rc, 0, out)
        self.assertRegex(out.strip(), r"^\$y\$[./A-Za-z0-9$]+$")


# ---- real clients --------------------------------------------------------------------------

def swaks_has_tls():
    if not os.path.exists(SWAKS):
        return False
    return run_tool(["perl", "-MNet::SSLeay", "-e", "1"], timeout=10)[0] == 0


@unittest.skipUnless(swaks_has_tls(), "swaks without TLS support (needs libnet-ssleay-perl)")
class Swaks(AuthCase):

    def swaks(self, *extra, port=None, expect_rc=0):
        rc, out = run_tool([SWAKS, "--server", "127.0.0.1", "--port", port or self.d.port,
                            "--timeout", "15", "--to", "b@example.com", "--from",
                            "a@example.com", "--helo", "swaks.example", "--tls-verify",
                            "--tls-ca-path", self.cert] + list(extra), timeout=40)
        if expect_rc is not None:
            self.assertEqual(rc, expect_rc, "swaks:\n%s\n--- daemon:\n%s"
                             % (out[-3000:], self.d.stderr_tail()))
        return rc, out

    def test_swaks_plain(self):
        self.swaks("--tls", "--auth", "PLAIN", "--auth-user", "alice", "--auth-password",
                   USERS["alice"])
        self.check_authed_message(self.d.wait_messages(1)[0]["qid"], "alice")

    def test_swaks_login(self):
        self.swaks("--tls", "--auth", "LOGIN", "--auth-user", "bob", "--auth-password",
                   USERS["bob"])
        self.check_authed_message(self.d.wait_messages(1)[0]["qid"], "bob")

    def test_swaks_tls_on_connect(self):
        self.swaks("--tlsc", "--auth", "LOGIN", "--auth-user", "alice", "--auth-password",
                   USERS["alice"], port=self.d.tls_addr[1])
        self.check_authed_message(self.d.wait_messages(1)[0]["qid"], "alice")

    def test_swaks_wrong_password(self):
        rc, out = self.swaks("--tls", "--auth", "PLAIN", "--auth-user", "alice",
                             "--auth-password", WRONG, expect_rc=None)
        self.assertNotEqual(rc, 0, out)
        self.assertIn("535", out)
        self.assertEqual(self.d.messages(), [])

    def test_swaks_auth_without_tls(self):
        rc, out = run_tool([SWAKS, "--server", "127.0.0.1", "--port", self.d.port, "--timeout",
                            "15", "--to", "b@example.com", "--auth", "PLAIN", "--auth-user",
                            "alice", "--auth-password", USERS["alice"]], timeout=40)
        self.assertNotEqual(rc, 0, "swaks authenticated without TLS:\n" + out)
        self.assertEqual(self.d.messages(), [])


@unittest.skipUnless(os.path.exists(CURL), "curl not installed")
class Curl(AuthCase):

    def curl(self, url, *extra, expect_rc=0):
        path = os.path.join(self.tmpdir(), "msg.eml")
        with open(path, "wb") as f:
            f.write(simple_message("curl auth"))
        rc, out = run_tool([CURL, "-sS", "--max-time", "20", "--url", url, "--cacert",
                            self.cert, "--mail-from", "a@example.com", "--mail-rcpt",
                            "b@example.com", "--upload-file", path] + list(extra), timeout=30)
        if expect_rc is not None:
            self.assertEqual(rc, expect_rc, "curl: %s\n--- daemon:\n%s"
                             % (out, self.d.stderr_tail()))
        return rc, out

    def test_curl_starttls_plain_and_login(self):
        for mech, user in (("PLAIN", "alice"), ("LOGIN", "bob")):
            with self.subTest(mech=mech):
                self.curl("smtp://127.0.0.1:%d" % self.d.port, "--ssl-reqd", "--user",
                          "%s:%s" % (user, USERS[user]), "--login-options", "AUTH=" + mech)
        msgs = self.d.wait_messages(2)
        self.assertEqual(sorted(self.record(m["qid"], 2)["json"]["auth"] for m in msgs),
                         ["alice", "bob"])

    def test_curl_smtps(self):
        self.curl("smtps://127.0.0.1:%d" % self.d.tls_addr[1], "--user",
                  "alice:" + USERS["alice"])
        self.check_authed_message(self.d.wait_messages(1)[0]["qid"], "alice")

    def test_curl_wrong_password(self):
        rc, out = self.curl("smtp://127.0.0.1:%d" % self.d.port, "--ssl-reqd", "--user",
                            "alice:" + WRONG, expect_rc=None)
        self.assertEqual(rc, 67, "curl should report login denied (67): " + out)
        self.assertEqual(self.d.messages(), [])


class OpenSSLClient(AuthCase):

    def test_s_client_auth_plain(self):
        p = Interactive([OPENSSL, "s_client", "-connect", "127.0.0.1:%d" % self.d.port,
                         "-starttls", "smtp", "-CAfile", self.cert, "-verify_return_error",
                         "-quiet", "-crlf"])
        self.addCleanup(p.close)
        p.expect(r"verify return:1")
        p.send("EHLO openssl.example\n")
        p.expect(r"^250-" + HOST)  # (s_client itself printed "250 STARTTLS" before)
        p.expect(r"^250[- ]AUTH PLAIN LOGIN")
        p.send("AUTH PLAIN %s\n" % plain_ir("alice", USERS["alice"]))
        p.expect(r"^235 2\.7\.0")
        p.send("MAIL FROM:<a@example.com>\nRCPT TO:<b@example.com>\n")
        p.expect(r"^250 2\.1\.0")
        p.expect(r"^250 2\.1\.5")
        p.send("DATA\n")
        p.expect(r"^354")
        p.send("Subject: s_client auth\n\nhi\n.\n")
        qid = p.expect(r"^250 2\.0\.0 Ok: queued as (\S+)").group(1)
        p.send("QUIT\n")
        p.expect(r"^221")
        self.assertIsNotNone(p.wait(10))
        self.check_authed_message(qid, "alice")


if __name__ == "__main__":
    unittest.main()
