"""
test_serve.py - `posthorn serve --config FILE` and `posthorn config check|dump` (issue 3, the
configuration file and the daemon), against the real binary with real clients.

Covers: config check (ok file; every error as FILE:LINE: message, several in one file, scopes,
bounds, cross checks, continuation lines), config dump and dump -n (re-parse, role defaults),
serve with mx / submission / submissions listeners (STARTTLS, AUTH PLAIN and LOGIN, implicit
TLS, the message store with auth in the JSON and ESMTPSA in Received:), delivery = discard,
per-listener limits, workers = 2 (both serve, SIGTERM stops all), privilege drop (root only),
SIGHUP certificate reload, log_target = syslog, and a bad file refused by serve.

Everything listens on 127.0.0.1 with port 0; the ports come from the `event=listening` lines,
which the daemon writes in the order of the listeners in the file. Every process started here
is stopped by the test's cleanups; every wait is bounded.
"""

import base64
import os
import re
import shutil
import signal
import smtplib
import socket
import stat
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from phtest import (BIN, HELO, OPENSSL, TIMEOUT, Daemon, PosthornTestCase,  # noqa: E402
                    cert_serial, client_context, dot_stuff, make_cert, pem_to_der,
                    queued_qid_text, run_tool, simple_message, split_received,
                    store_files, wait_store)

SWAKS = shutil.which("swaks") or "/usr/bin/swaks"
CURL = shutil.which("curl") or "/usr/bin/curl"
USER = "alice"
PASSWORD = "correct horse"
IS_ROOT = os.geteuid() == 0

# Made once for the module (setUpModule): a certificate as in the instructions and a
# password file with alice's line from `posthorn passwd`.
FIX = {}


def setUpModule():
    d = tempfile.mkdtemp(prefix="posthorn-serve-")
    os.chmod(d, 0o755)  # the privilege-drop tests run a worker as nobody below it
    FIX["dir"] = d
    FIX["cert"] = os.path.join(d, "cert.pem")
    FIX["key"] = os.path.join(d, "key.pem")
    rc, out = run_tool([OPENSSL, "req", "-x509", "-newkey", "ec", "-pkeyopt",
                        "ec_paramgen_curve:P-256", "-nodes", "-subj", "/CN=mx.test", "-addext",
                        "subjectAltName=DNS:mx.test,IP:127.0.0.1", "-days", "1",
                        "-keyout", FIX["key"], "-out", FIX["cert"]])
    if rc != 0:
        raise RuntimeError("openssl req failed: " + out)
    p = subprocess.run([BIN, "passwd", USER], input=(PASSWORD + "\n").encode(),
                       capture_output=True, timeout=30)
    line = p.stdout.decode().strip()
    if p.returncode != 0 or not line.startswith(USER + ":"):
        raise RuntimeError("posthorn passwd failed (rc=%s): %r %r"
                           % (p.returncode, p.stdout, p.stderr))
    FIX["passwd"] = os.path.join(d, "passwd")
    with open(FIX["passwd"], "w") as f:
        f.write(line + "\n")


def tearDownModule():
    if "dir" in FIX:
        shutil.rmtree(FIX["dir"], True)


# ---- helpers -------------------------------------------------------------------------------

def run_posthorn(*args, timeout=30):
    """Runs the posthorn binary; returns (rc, stdout, stderr) as str, bounded in time."""
    p = subprocess.run([BIN] + [str(a) for a in args], stdin=subprocess.DEVNULL,
                       capture_output=True, timeout=timeout)
    return p.returncode, p.stdout.decode("utf-8", "replace"), p.stderr.decode("utf-8", "replace")


def parse_dump(text):
    """`config dump` output -> {None: [(key, value)...], 'listener NAME': [...]} in order."""
    out, cur = {None: []}, None
    for line in text.splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        m = re.match(r"^\[(listener \S+)\]$", line)
        if m:
            cur = m.group(1)
            out[cur] = []
            continue
        key, sep, val = line.partition("=")
        if not sep:
            raise AssertionError("dump line is not key = value: %r" % line)
        out[cur].append((key.strip(), val.strip()))
    return out


def section_values(section):
    """[(key, value)] -> {key: value} (the last value of a repeated key)."""
    return dict(section)


def ehlo_keywords(reply):
    """{KEYWORD: [params]} from an EHLO reply."""
    out = {}
    for line in reply.lines[1:]:
        parts = line.split()
        if parts:
            out[parts[0].upper()] = parts[1:]
    return out


def via_each_worker(kids, fn):
    """Runs fn() once per worker with every other worker stopped (SIGSTOP), so that worker
    and no other must take the connection; returns the results in the order of kids. The
    workers share the listening sockets and (without EPOLLEXCLUSIVE) a stopped one cannot
    take a connection away from the running one."""
    out = []
    for pid in kids:
        others = [k for k in kids if k != pid]
        for k in others:
            os.kill(k, signal.SIGSTOP)
        try:
            out.append(fn())
        finally:
            for k in others:
                os.kill(k, signal.SIGCONT)
    return out


def proc_status(pid):
    """{field: value} from /proc/PID/status."""
    out = {}
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            k, _, v = line.partition(":")
            out[k] = v.strip()
    return out


def proc_ids(pid, field):
    """The four ids (real, effective, saved, fs) of Uid or Gid for pid."""
    return [int(x) for x in proc_status(pid)[field].split()]


def children_of(pid):
    """Pids of the live (not zombie) processes whose parent is pid."""
    out = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % name) as f:
                st = f.read()
        except OSError:
            continue
        fields = st[st.rfind(")") + 2:].split()  # after "pid (comm) "
        if int(fields[1]) == pid and fields[0] != "Z":
            out.append(int(name))
    return sorted(out)


def process_gone(pid):
    """True if pid no longer exists (or is only a zombie left for someone to reap)."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            st = f.read()
    except OSError:
        return True
    return st[st.rfind(")") + 2:].split()[0] in ("Z", "X")


def listening_tcp_ports(pid):
    """Ports of the TCP sockets in LISTEN state that process pid holds (from /proc)."""
    inodes = set()
    try:
        fds = os.listdir("/proc/%d/fd" % pid)
    except OSError:
        return []
    for fd in fds:
        try:
            link = os.readlink("/proc/%d/fd/%s" % (pid, fd))
        except OSError:
            continue
        m = re.match(r"^socket:\[(\d+)\]$", link)
        if m:
            inodes.add(m.group(1))
    ports = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as f:
                rows = f.read().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            col = row.split()
            if len(col) > 9 and col[3] == "0A" and col[9] in inodes:
                ports.append(int(col[1].rsplit(":", 1)[1], 16))
    return sorted(set(ports))


def wait_until(predicate, timeout, step=0.05):
    deadline = time.monotonic() + timeout
    while True:
        v = predicate()
        if v or time.monotonic() > deadline:
            return v
        time.sleep(step)


def peer_serial(sock):
    return cert_serial(sock.getpeercert(binary_form=True))


def big_message(size, subject="big"):
    line = b"x" * 76 + b"\r\n"
    return simple_message(subject, body=line * (size // len(line) + 1))


class ServeCase(PosthornTestCase):
    """Writes configuration files and starts `posthorn serve --config FILE`."""

    def setUp(self):
        self.dir = self.tmpdir()

    def write(self, text, name="posthorn.conf"):
        path = os.path.join(self.dir, name)
        with open(path, "w") as f:
            f.write(text)
        return path

    def serve(self, text, listeners, check_exit=True, name="posthorn.conf"):
        """Starts serve with text as the config; waits for `listeners` listening lines."""
        path = self.write(text, name)
        d = Daemon([BIN, "serve", "--config", path], listeners=listeners)
        self.addCleanup(self._finish, d, check_exit)
        d.start()
        return d

    def check(self, text, name="t.conf"):
        """`config check` on text: (rc, path, stdout, error lines)."""
        path = self.write(text, name)
        rc, out, err = run_posthorn("config", "check", path)
        return rc, path, out, [l for l in err.splitlines() if l.strip()]

    def ctx(self):
        return client_context(cafile=FIX["cert"])

    def ssl_smtp(self, port):
        s = smtplib.SMTP_SSL("127.0.0.1", port, local_hostname=HELO, timeout=TIMEOUT,
                             context=self.ctx())
        self.addCleanup(self._smtp_close, s)
        return s

    def login(self, s, mech):
        """Forces AUTH mechanism mech in smtplib (it would pick PLAIN first by itself)."""
        s.ehlo_or_helo_if_needed()
        offered = s.esmtp_features.get("auth", "").upper().split()
        self.assertIn(mech, offered, "AUTH %s not offered: %r" % (mech, s.esmtp_features))
        s.esmtp_features["auth"] = mech
        code, text = s.login(USER, PASSWORD)
        self.assertEqual(code, 235, text)
        self.assertTrue(text.startswith(b"2.7.0"), text)

    def send_smtplib(self, s, subject):
        """MAIL/RCPT/DATA through smtplib; returns (qid, message bytes)."""
        msg = simple_message(subject)
        code, text = s.mail("sender@example.com")
        self.assertEqual(code, 250, text)
        code, text = s.rcpt("rcpt@example.com")
        self.assertEqual(code, 250, text)
        code, text = s.data(msg)
        self.assertEqual(code, 250, text)
        return queued_qid_text(text), msg

    def stored(self, store, qid, n=1):
        files, other = wait_store(store, n)
        self.assertIn(qid, files, "message %s not in %s: %r" % (qid, store, sorted(files)))
        self.assertEqual(other, [], "unexpected files in the store")
        self.assertEqual(set(files[qid]), {"eml", "json"})
        return files[qid]["eml"], files[qid]["json"]


# ---- posthorn config check --------------------------------------------------------------

ERR_RE = r"^(?P<file>.+?):(?P<line>\d+): (?P<msg>.+)$"


class ConfigCheck(ServeCase):

    def parse_errors(self, path, lines):
        """[(line, message)] for FILE:LINE: lines; file-wide ones ('FILE: msg') get line 0."""
        out = []
        for l in lines:
            m = re.match(ERR_RE, l)
            if m and m.group("file") == path:
                out.append((int(m.group("line")), m.group("msg")))
            elif l.startswith(path + ": "):
                out.append((0, l[len(path) + 2:]))
            else:
                self.fail("error line not in FILE:LINE: message form: %r" % l)
        return out

    def assertErrors(self, text, expected, name="t.conf"):
        """expected: [(line, regex)] in the order printed; nothing else may be reported."""
        rc, path, out, lines = self.check(text, name)
        self.assertEqual(rc, 1, "config check should fail; stderr: %r" % lines)
        self.assertEqual(out, "", "nothing on stdout for a bad file")
        got = self.parse_errors(path, lines)
        self.assertEqual(len(got), len(expected),
                         "expected %d errors, got:\n%s" % (len(expected), "\n".join(lines)))
        for (line, msg), (want_line, regex) in zip(got, expected):
            self.assertEqual(line, want_line, "wrong line for %r; all:\n%s"
                             % (msg, "\n".join(lines)))
            self.assertRegex(msg, regex)
        return got

    def test_ok_file(self):
        rc, path, out, err = self.check(
            "# a development server\n"
            "hostname = mx.test\n"
            "store_dir = %s\n"
            "passwd_file = %s\n"
            "tls_cert = %s\n"
            "tls_key = %s\n"
            "max_message_size = 10M\n"
            "idle_timeout = 2m\n"
            "\n"
            "[listener mx]\n"
            "listen = 127.0.0.1:0, [::1]:0\n"
            "max_message_size = 2M\n"
            "\n"
            "[listener submission]\n"
            "role = submission\n"
            "listen = 127.0.0.1:0\n"
            "\n"
            "[listener submissions]\n"
            "role = submissions\n"
            "listen = 127.0.0.1:0\n"
            % (self.dir, FIX["passwd"], FIX["cert"], FIX["key"]))
        self.assertEqual((rc, out, err), (0, "%s: ok\n" % path, []))

    def test_unknown_key_bad_value_out_of_bounds(self):
        self.assertErrors(
            "store_dir = /tmp\n"          # 1
            "bogus_key = 1\n"             # 2
            "max_message_size = lots\n"   # 3
            "workers = 0\n"               # 4
            "max_errors = 5000\n"         # 5
            "log_level = chatty\n"        # 6
            "tls_session_tickets = maybe\n"  # 7
            "idle_timeout = 5x\n"         # 8
            "max_per_ip = 100001\n"       # 9
            "Workers = 2\n"               # 10 keys are lower case
            "[listener mx]\n"             # 11
            "listen = 127.0.0.1:0\n",     # 12
            [(2, r"bogus_key"), (3, r"max_message_size.*lots"), (4, r"workers.*\b0\b.*range"),
             (5, r"max_errors.*5000.*range"), (6, r"log_level.*chatty"),
             (7, r"tls_session_tickets.*maybe"), (8, r"idle_timeout.*5x"),
             (9, r"max_per_ip.*100001.*range"),
             (10, r"Workers")])

    def test_wrong_scope(self):
        self.assertErrors(
            "store_dir = /tmp\n"           # 1
            "listen = 127.0.0.1:25\n"      # 2 listener-only key globally
            "role = submission\n"          # 3
            "[listener mx]\n"              # 4
            "listen = 127.0.0.1:0\n"       # 5
            "hostname = mx.test\n"         # 6 global-only key in a section
            "workers = 2\n"                # 7
            "store_dir = /var/tmp\n",      # 8
            [(2, r"listen.*listener"), (3, r"role.*listener"), (6, r"hostname.*global"),
             (7, r"workers.*global"), (8, r"store_dir.*global")])

    def test_cross_checks(self):
        self.assertErrors(
            "delivery = store\n"           # 1 no store_dir
            "[listener mx]\n"              # 2 no listen
            "max_recipients = 5\n"         # 3
            "[listener starttls]\n"        # 4
            "listen = 127.0.0.1:0\n"       # 5
            "tls = starttls\n"             # 6 no certificate
            "[listener auth]\n"            # 7
            "listen = 127.0.0.1:0\n"       # 8
            "auth = insecure\n"            # 9 no passwd_file
            "[listener starttls]\n"        # 10 duplicate name
            "listen = 127.0.0.1:0\n"       # 11
            "[listener half]\n"            # 12
            "listen = 127.0.0.1:0\n"       # 13
            "tls_cert = %s\n" % FIX["cert"],  # 14 without tls_key
            [(1, r"store_dir"), (2, r"'mx'.*listen"), (6, r"tls.*tls_cert"),
             (9, r"auth.*passwd_file"), (10, r"duplicate.*starttls"),
             (14, r"tls_cert without tls_key")])

    def test_role_defaults_checked_at_section_header(self):
        # submissions means implicit TLS and AUTH: without certificate and passwd_file both
        # defaults are errors, reported at the header since no line set them
        got = self.assertErrors(
            "store_dir = /tmp\n"           # 1
            "\n"                           # 2
            "[listener smtps]\n"           # 3
            "role = submissions\n"         # 4
            "listen = 127.0.0.1:0\n",      # 5
            [(3, r"tls.*implicit.*tls_cert"), (3, r"auth.*passwd_file")])
        for _, msg in got:
            self.assertIn("default for role submissions", msg)

    def test_store_default_without_store_dir(self):
        # delivery = store is the default: a file-wide error (no line set it), printed last
        self.assertErrors("[listener mx]\nlisten = 127.0.0.1:0\nmax_line = 100\n",
                          [(3, r"max_line.*100"), (0, r"delivery = store.*store_dir")])

    def test_no_listener(self):
        self.assertErrors("delivery = discard\n", [(0, r"no \[listener\]")])

    def test_continuation_lines_keep_line_numbers(self):
        self.assertErrors(
            "# comment\n"                  # 1
            "store_dir =\n"                # 2
            "    /tmp\n"                   # 3 continuation: store_dir = /tmp
            "banner = hello\n"             # 4
            "\tworld\n"                    # 5
            "# a comment between a line and its continuation\n"  # 6
            "  again\n"                    # 7
            "bogus = 1\n"                  # 8
            "\n"                           # 9
            "[listener mx]\n"              # 10
            "listen = 127.0.0.1:0\n"       # 11
            "         127.0.0.1:0\n"       # 12
            "max_errors =\n"               # 13
            "   0\n"                       # 14 continuation, out of range
            "   \n"                        # 15 blank: ends the value
            "  orphan\n"                   # 16 continuation after a blank line
            "max_recipients = x\n",        # 17
            [(8, r"bogus"), (13, r"max_errors.*range"), (16, r"continuation"),
             (17, r"max_recipients")])

    def test_continued_values_are_joined(self):
        text = ("store_dir = %s\n"
                "banner = Hello\n"
                "  dear   world\n"
                "[listener mx]\n"
                "listen = 127.0.0.1:0\n"
                "\t127.0.0.1:0,127.0.0.1:0\n" % self.dir)
        rc, path, out, err = self.check(text)
        self.assertEqual((rc, err), (0, []))
        rc, out, err = run_posthorn("config", "dump", path)
        self.assertEqual(rc, 0, err)
        dump = parse_dump(out)
        self.assertIn(("banner", "Hello dear   world"), dump[None])
        self.assertEqual([v for k, v in dump["listener mx"] if k == "listen"],
                         ["127.0.0.1:0"] * 3)

    def test_many_errors_all_reported_in_line_order(self):
        lines = ["store_dir = /tmp"] + ["bad_key_%d = x" % i for i in range(30)] + \
                ["[listener mx]", "listen = 127.0.0.1:0", "max_errors = 0"]
        got = self.assertErrors("\n".join(lines) + "\n",
                                [(i + 2, r"bad_key_%d\b" % i) for i in range(30)] +
                                [(34, r"max_errors")])
        self.assertEqual([l for l, _ in got], sorted(l for l, _ in got))

    def test_parameter_set_twice(self):
        self.assertErrors("store_dir = /tmp\nworkers = 2\nworkers = 3\n"
                          "[listener mx]\nlisten = 127.0.0.1:0\nrole = mx\nrole = mx\n",
                          [(3, r"workers.*twice.*line 2"), (7, r"role.*twice.*line 6")])

    def test_error_count_is_capped(self):
        # man page LIMITS: at most 100 errors are printed, then a count of the others
        text = "store_dir = /tmp\n" + "".join("k%d = 1\n" % i for i in range(150)) + \
               "[listener mx]\nlisten = 127.0.0.1:0\n"
        rc, path, out, lines = self.check(text)
        self.assertEqual(rc, 1)
        self.assertEqual(len(lines), 101, lines[-3:])
        self.assertRegex(lines[99], r"^%s:101: .*'k99'" % re.escape(path))
        self.assertRegex(lines[100], r"^%s: .*\b50\b" % re.escape(path))

    def test_value_syntax(self):
        # enum words in any case, yes/no spelled several ways, '#' inside a value, lists with
        # commas and spaces, repeated list keys appending
        text = ("store_dir = %s\n"
                "log_level = WARN\n"
                "tls_session_tickets = off\n"
                "banner = Posthorn # not a comment\n"
                "shutdown_grace = 1500ms\n"
                "max_message_size = 512k\n"
                "[listener mx]\n"
                "listen = 127.0.0.1:0,127.0.0.1:0  127.0.0.1:0\n"
                "listen = 127.0.0.1:0\n"
                "role = MX\n"
                "require_tls = 0\n"
                "require_auth = false\n" % self.dir)
        rc, path, out, err = self.check(text)
        self.assertEqual((rc, err), (0, []))
        rc, out, err = run_posthorn("config", "dump", "-n", path)
        self.assertEqual(rc, 0, err)
        d = parse_dump(out)
        g, mx = section_values(d[None]), section_values(d["listener mx"])
        self.assertEqual((g["log_level"], g["tls_session_tickets"], g["banner"],
                          g["shutdown_grace"], g["max_message_size"]),
                         ("warn", "no", "Posthorn # not a comment", "1500ms", "512k"))
        self.assertEqual((mx["role"], mx["require_tls"], mx["require_auth"]),
                         ("mx", "no", "no"))
        self.assertEqual(len([k for k, _ in d["listener mx"] if k == "listen"]), 4)

    def test_missing_file(self):
        path = os.path.join(self.dir, "nonexistent.conf")
        rc, out, err = run_posthorn("config", "check", path)
        self.assertEqual(rc, 1)
        self.assertEqual(out, "")
        self.assertRegex(err, r"^%s: .*No such file" % re.escape(path))

    def test_crlf_file(self):
        rc, path, out, err = self.check(
            "store_dir = /tmp\r\n[listener mx]\r\nlisten = 127.0.0.1:0\r\n")
        self.assertEqual((rc, out, err), (0, "%s: ok\n" % path, []))


# ---- posthorn config dump ---------------------------------------------------------------

class ConfigDump(ServeCase):

    def conf(self):
        # no global certificate: the mx listener gets tls = none, the others their own one
        return ("hostname = mx.test\n"
                "store_dir = %(dir)s\n"
                "passwd_file = %(passwd)s\n"
                "max_message_size = 10M\n"
                "idle_timeout = 300s\n"
                "\n"
                "[listener mx]\n"
                "listen = 127.0.0.1:0\n"
                "\n"
                "[listener submission]\n"
                "role = submission\n"
                "listen = 127.0.0.1:0 127.0.0.1:0\n"
                "tls_cert = %(cert)s\n"
                "tls_key = %(key)s\n"
                "max_message_size = 20M\n"
                "\n"
                "[listener submissions]\n"
                "role = submissions\n"
                "listen = 127.0.0.1:0\n"
                "tls_cert = %(cert)s\n"
                "tls_key = %(key)s\n"
                % dict(FIX, dir=self.dir))

    def dump(self, path, *opts):
        rc, out, err = run_posthorn("config", "dump", *(list(opts) + [path]))
        self.assertEqual(rc, 0, err)
        self.assertEqual(err, "")
        return out

    def recheck(self, text, name):
        rc, path, out, err = self.check(text, name)
        self.assertEqual((rc, err), (0, []), "dump output does not re-parse:\n" + text)
        self.assertEqual(out, "%s: ok\n" % path)
        return path

    def test_dump_reparses_to_the_same_config(self):
        path = self.write(self.conf())
        full = self.dump(path)
        again = self.recheck(full, "full.conf")
        self.assertEqual(self.dump(again), full, "dump of the dump differs")

    def test_dump_n_reparses_and_has_only_what_is_set(self):
        path = self.write(self.conf())
        full = self.dump(path)
        only = self.dump(path, "-n")
        again = self.recheck(only, "only.conf")
        self.assertEqual(self.dump(again), full, "dump -n does not give the same config")
        d = parse_dump(only)
        self.assertEqual([k for k, _ in d[None]],
                         ["hostname", "store_dir", "passwd_file", "max_message_size",
                          "idle_timeout"])
        self.assertEqual(list(d), [None, "listener mx", "listener submission",
                                   "listener submissions"])
        self.assertEqual(sorted(k for k, _ in d["listener mx"]), ["listen"])
        self.assertEqual(sorted(set(k for k, _ in d["listener submission"])),
                         ["listen", "max_message_size", "role", "tls_cert", "tls_key"])
        self.assertEqual(sorted(k for k, _ in d["listener submissions"]),
                         ["listen", "role", "tls_cert", "tls_key"])

    def test_dump_shows_role_defaults_and_inherited_values(self):
        d = parse_dump(self.dump(self.write(self.conf())))
        g = section_values(d[None])
        self.assertEqual(g["max_message_size"], "10M")
        self.assertEqual(g["idle_timeout"], "5m")  # largest unit that divides (man page)
        self.assertEqual(g["workers"], "1")
        self.assertEqual(g["delivery"], "store")
        mx = section_values(d["listener mx"])
        sub = section_values(d["listener submission"])
        subs = section_values(d["listener submissions"])
        want = {
            "mx": dict(role="mx", tls="none", require_tls="no", auth="none",
                       require_auth="no", max_message_size="10M", idle_timeout="5m"),
            "submission": dict(role="submission", tls="starttls", require_tls="yes",
                               auth="tls", require_auth="yes", max_message_size="20M"),
            "submissions": dict(role="submissions", tls="implicit", require_tls="yes",
                                auth="tls", require_auth="yes", max_message_size="10M"),
        }
        for name, sec in (("mx", mx), ("submission", sub), ("submissions", subs)):
            for k, v in want[name].items():
                self.assertEqual(sec.get(k), v, "[listener %s] %s" % (name, k))
        self.assertEqual([v for k, v in d["listener submission"] if k == "listen"],
                         ["127.0.0.1:0", "127.0.0.1:0"])
        self.assertEqual(sub["tls_cert"], FIX["cert"])

    def test_mx_with_certificate_defaults_to_starttls(self):
        path = self.write("store_dir = %s\ntls_cert = %s\ntls_key = %s\n"
                          "[listener mx]\nlisten = 127.0.0.1:0\n"
                          % (self.dir, FIX["cert"], FIX["key"]))
        mx = section_values(parse_dump(self.dump(path))["listener mx"])
        self.assertEqual((mx["tls"], mx["auth"], mx["tls_cert"]),
                         ("starttls", "none", FIX["cert"]))

    def test_dump_of_bad_file_fails(self):
        path = self.write("bogus = 1\n")
        rc, out, err = run_posthorn("config", "dump", path)
        self.assertEqual(rc, 1)
        self.assertEqual(out, "")
        self.assertRegex(err, r"(?m)^%s:1: .*bogus" % re.escape(path))


# ---- serve: mx, submission, submissions --------------------------------------------------

THREE_LISTENERS = """\
hostname = mx.test
store_dir = %(store)s
passwd_file = %(passwd)s
tls_cert = %(cert)s
tls_key = %(key)s
auth_fail_delay = 0
shutdown_grace = 2s

[listener mx]
listen = 127.0.0.1:0

[listener submission]
role = submission
listen = 127.0.0.1:0

[listener submissions]
role = submissions
listen = 127.0.0.1:0
"""


class ServeThreeListeners(ServeCase):

    def setUp(self):
        super().setUp()
        self.store = os.path.join(self.dir, "store")
        self.d = self.serve(THREE_LISTENERS % dict(FIX, store=self.store), listeners=3)
        self.mx, self.sub, self.subs = self.d.tcp_addresses()

    def test_listening_in_file_order(self):
        self.assertEqual(len(set(self.d.tcp_addresses())), 3)
        for host, port in self.d.tcp_addresses():
            self.assertEqual(host, "127.0.0.1")
            self.assertNotEqual(port, 0)
        # the implicit TLS port is the third one: a TLS handshake works there at once
        c = self.raw(self.subs, tls=self.ctx(), server_hostname="mx.test")
        self.assertTrue(c.tls)
        # and the first is plain SMTP with the configured host name in the banner
        c = self.raw(self.mx)
        self.assertRegex(c.banner.text, r"^mx\.test ESMTP")

    def test_mx_offers_starttls_not_auth(self):
        c = self.raw(self.mx)
        kw = ehlo_keywords(self.ehlo(c))
        self.assertIn("STARTTLS", kw)
        self.assertNotIn("AUTH", kw)
        r = c.cmd("AUTH PLAIN " + base64.b64encode(b"\0alice\0" + PASSWORD.encode()).decode())
        self.assertIn(r.code, (502, 503), r)  # not offered: not implemented / bad sequence
        self.assertRegex(r.enhanced or "", r"^5\.5\.\d+$", r)
        c.starttls(self.ctx(), "mx.test")
        kw = ehlo_keywords(self.ehlo(c))
        self.assertNotIn("STARTTLS", kw)
        self.assertNotIn("AUTH", kw)
        qid = self.transaction(c)
        eml, js = self.stored(self.store, qid)
        self.assertIs(js["tls"], True)
        self.assertIsNone(js["auth"])
        hdr, _ = split_received(eml)
        self.assertRegex(hdr, r"\bwith ESMTPS\b")

    def test_mx_accepts_plain_mail(self):
        c = self.raw(self.mx)
        self.ehlo(c)
        msg = simple_message("plain mx")
        qid = self.transaction(c, body=msg)
        eml, js = self.stored(self.store, qid)
        self.assertIs(js["tls"], False)
        self.assertIsNone(js["auth"])
        self.assertEqual(js["mail_from"], "sender@example.com")
        self.assertEqual(js["rcpt_to"], ["rcpt@example.com"])
        hdr, rest = split_received(eml)
        self.assertRegex(hdr, r"\bwith ESMTP\b")
        self.assertEqual(rest, msg)

    def test_submission_tls_then_auth_then_mail(self):
        c = self.raw(self.sub)
        kw = ehlo_keywords(self.ehlo(c))
        self.assertIn("STARTTLS", kw)
        self.assertNotIn("AUTH", kw, "auth = tls: no AUTH before STARTTLS")
        self.assertReply(c.cmd("MAIL FROM:<sender@example.com>"), 530, "5.7.0")
        cred = base64.b64encode(b"\0" + USER.encode() + b"\0" + PASSWORD.encode()).decode()
        self.assertReply(c.cmd("AUTH PLAIN " + cred), 538, "5.7.11")  # auth before TLS
        c.starttls(self.ctx(), "mx.test")
        kw = ehlo_keywords(self.ehlo(c))
        self.assertNotIn("STARTTLS", kw)
        self.assertEqual(sorted(kw.get("AUTH", [])), ["LOGIN", "PLAIN"])
        self.assertReply(c.cmd("MAIL FROM:<sender@example.com>"), 530, "5.7.0")
        self.assertReply(c.cmd("AUTH PLAIN " + cred), 235, "2.7.0")
        msg = simple_message("submission raw")
        qid = self.transaction(c, body=msg)
        eml, js = self.stored(self.store, qid)
        self.assertEqual(js["auth"], USER)
        self.assertIs(js["tls"], True)
        hdr, rest = split_received(eml)
        self.assertRegex(hdr, r"\bwith ESMTPSA\b")
        self.assertEqual(rest, msg)

    def test_submission_wrong_password(self):
        c = self.raw(self.sub)
        self.ehlo(c)
        c.starttls(self.ctx(), "mx.test")
        self.ehlo(c)
        bad = base64.b64encode(b"\0alice\0wrong").decode()
        self.assertReply(c.cmd("AUTH PLAIN " + bad), 535, "5.7.8")
        self.assertReply(c.cmd("MAIL FROM:<sender@example.com>"), 530, "5.7.0")

    def submit(self, mech):
        s = smtplib.SMTP("127.0.0.1", self.sub[1], local_hostname=HELO, timeout=TIMEOUT)
        self.addCleanup(self._smtp_close, s)
        s.ehlo()
        s.starttls(context=self.ctx())
        s.ehlo()
        self.login(s, mech)
        qid, msg = self.send_smtplib(s, "smtplib " + mech)
        s.quit()
        eml, js = self.stored(self.store, qid)
        self.assertEqual(js["auth"], USER)
        hdr, rest = split_received(eml)
        self.assertRegex(hdr, r"\bwith ESMTPSA\b")
        self.assertEqual(rest, msg)

    def test_submission_smtplib_plain(self):
        self.submit("PLAIN")

    def test_submission_smtplib_login(self):
        self.submit("LOGIN")

    def test_submissions_implicit_tls(self):
        s = self.ssl_smtp(self.subs[1])
        s.ehlo()
        self.assertFalse(s.has_extn("starttls"), "no STARTTLS inside implicit TLS")
        code, text = s.mail("sender@example.com")
        self.assertEqual((code, text[:5]), (530, b"5.7.0"), "MAIL before AUTH")
        s.rset()
        self.login(s, "LOGIN")
        qid, msg = self.send_smtplib(s, "implicit")
        s.quit()
        eml, js = self.stored(self.store, qid)
        self.assertEqual(js["auth"], USER)
        self.assertIs(js["tls"], True)
        self.assertRegex(js.get("tls_version", ""), r"^TLSv1\.[23]$")
        hdr, rest = split_received(eml)
        self.assertRegex(hdr, r"\bwith ESMTPSA\b")
        self.assertEqual(rest, msg)

    def test_submissions_refuses_plaintext(self):
        # a plaintext client on the implicit TLS port gets no SMTP banner
        s = socket.create_connection(self.subs, timeout=TIMEOUT)
        self.addCleanup(s.close)
        s.sendall(b"EHLO client.example\r\n")
        s.settimeout(5)
        try:
            data = s.recv(4096)
        except (socket.timeout, ConnectionResetError):
            data = b""
        self.assertFalse(data.startswith(b"220"), data)

    @unittest.skipUnless(os.path.exists(SWAKS), "swaks not installed")
    def test_swaks_tls_auth(self):
        rc, out = run_tool([SWAKS, "--server", "127.0.0.1", "--port", self.sub[1],
                            "--helo", HELO, "--from", "sender@example.com",
                            "--to", "rcpt@example.com", "--tls", "--auth", "LOGIN",
                            "--auth-user", USER, "--auth-password", PASSWORD,
                            "--timeout", "20"], timeout=60)
        self.assertEqual(rc, 0, out)
        self.assertRegex(out, r"(?m)^<~  235 2\.7\.0")
        files, _ = wait_store(self.store, 1)
        self.assertEqual(len(files), 1)
        js = list(files.values())[0]["json"]
        self.assertEqual(js["auth"], USER)

    @unittest.skipUnless(os.path.exists(CURL), "curl not installed")
    def test_curl_ssl_reqd(self):
        msg = simple_message("curl")
        path = os.path.join(self.dir, "msg.eml")
        with open(path, "wb") as f:
            f.write(msg)
        rc, out = run_tool([CURL, "-sS", "--max-time", "30", "--ssl-reqd",
                            "--cacert", FIX["cert"], "--user", "%s:%s" % (USER, PASSWORD),
                            "--url", "smtp://127.0.0.1:%d" % self.sub[1],
                            "--mail-from", "sender@example.com",
                            "--mail-rcpt", "rcpt@example.com", "--upload-file", path],
                           timeout=60)
        self.assertEqual(rc, 0, out)
        files, _ = wait_store(self.store, 1)
        self.assertEqual(len(files), 1)
        m = list(files.values())[0]
        self.assertEqual(m["json"]["auth"], USER)
        self.assertEqual(split_received(m["eml"])[1], msg)

    def test_openssl_s_client_starttls_mx(self):
        rc, out = run_tool([OPENSSL, "s_client", "-starttls", "smtp", "-connect",
                            "%s:%d" % self.mx, "-CAfile", FIX["cert"], "-verify_return_error",
                            "-verify_hostname", "mx.test", "-servername", "mx.test", "-crlf",
                            "-ign_eof"], input=b"EHLO client.example\nQUIT\n", timeout=30)
        self.assertEqual(rc, 0, out + "\n--- daemon:\n" + self.d.stderr_text())
        self.assertIn("Verify return code: 0 (ok)", out)
        self.assertRegex(out, r"(?m)^250[ -]")
        self.assertRegex(out, r"(?m)^221 ")

    def test_store_layout(self):
        qids = []
        for i in range(3):
            c = self.raw(self.mx)
            self.ehlo(c)
            qids.append(self.transaction(c, body=simple_message("n%d" % i)))
            c.cmd("QUIT")
        files, other = wait_store(self.store, 3)
        self.assertEqual(other, [])
        self.assertEqual(sorted(files), sorted(qids))
        self.assertEqual(sorted(os.listdir(self.store)),
                         sorted([q + ".eml" for q in qids] + [q + ".json" for q in qids]))
        for q in qids:
            self.assertEqual(files[q]["json"]["id"], q)


# ---- delivery = discard -----------------------------------------------------------------

class Discard(ServeCase):

    def test_discard_accepts_and_stores_nothing(self):
        store = os.path.join(self.dir, "store")
        os.mkdir(store)
        d = self.serve("delivery = discard\nstore_dir = %s\nshutdown_grace = 2s\n"
                       "[listener mx]\nlisten = 127.0.0.1:0\n" % store, listeners=1)
        for i in range(3):
            c = self.raw(d)
            self.ehlo(c)
            self.transaction(c, body=simple_message("discard %d" % i))
            self.assertReply(c.cmd("QUIT"), 221)
        d.wait_log("accepted", n=3)
        time.sleep(0.3)
        self.assertEqual(os.listdir(store), [])
        self.assertEqual(d.stdout_bytes(), b"", "serve prints no messages on stdout")

    def test_discard_needs_no_store_dir(self):
        d = self.serve("delivery = discard\nshutdown_grace = 2s\n"
                       "[listener mx]\nlisten = 127.0.0.1:0\n", listeners=1)
        s = self.smtp(d)
        self.assertEqual(s.sendmail("a@example.com", ["b@example.com"],
                                    simple_message("discard")), {})
        s.quit()


# ---- per-listener limits ----------------------------------------------------------------

class ListenerLimits(ServeCase):

    def setUp(self):
        super().setUp()
        self.store = os.path.join(self.dir, "store")
        self.d = self.serve(
            "store_dir = %s\n"
            "shutdown_grace = 2s\n"
            "max_message_size = 64k\n"
            "max_recipients = 3\n"
            "\n"
            "[listener mx]\n"
            "listen = 127.0.0.1:0\n"
            "max_message_size = 2k\n"
            "max_recipients = 1\n"
            "\n"
            "[listener other]\n"
            "listen = 127.0.0.1:0\n" % self.store, listeners=2)
        self.small, self.big = self.d.tcp_addresses()

    def test_ehlo_size(self):
        for addr, size in ((self.small, "2048"), (self.big, "65536")):
            c = self.raw(addr)
            self.assertEqual(ehlo_keywords(self.ehlo(c)).get("SIZE"), [size])

    def test_message_size_override(self):
        msg = big_message(6000)
        c = self.raw(self.small)
        self.ehlo(c)
        self.assertReply(c.cmd("MAIL FROM:<a@example.com>"), 250)
        self.assertReply(c.cmd("RCPT TO:<b@example.com>"), 250)
        self.assertReply(c.cmd("DATA"), 354)
        c.send(dot_stuff(msg))
        self.assertReply(c.read_reply(), 552, "5.3.4")
        # declared size too
        self.assertReply(c.cmd("MAIL FROM:<a@example.com> SIZE=%d" % len(msg)), 552, "5.3.4")
        c2 = self.raw(self.big)
        self.ehlo(c2)
        qid = self.transaction(c2, body=msg)
        eml, _ = self.stored(self.store, qid)
        self.assertEqual(split_received(eml)[1], msg)
        self.assertEqual(len(store_files(self.store)[0]), 1, "nothing stored from the small one")

    def test_recipient_override(self):
        c = self.raw(self.small)
        self.ehlo(c)
        self.assertReply(c.cmd("MAIL FROM:<a@example.com>"), 250)
        self.assertReply(c.cmd("RCPT TO:<b1@example.com>"), 250)
        self.assertReply(c.cmd("RCPT TO:<b2@example.com>"), 452, "4.5.3")
        c2 = self.raw(self.big)
        self.ehlo(c2)
        self.transaction(c2, rcpts=("b1@example.com", "b2@example.com", "b3@example.com"))
        self.assertReply(c2.cmd("MAIL FROM:<a@example.com>"), 250)
        for i in range(3):
            self.assertReply(c2.cmd("RCPT TO:<c%d@example.com>" % i), 250)
        self.assertReply(c2.cmd("RCPT TO:<c9@example.com>"), 452, "4.5.3")


# ---- workers ------------------------------------------------------------------------------

def workers_conf(store, extra=""):
    return ("store_dir = %s\n"
            "workers = 2\n"
            "shutdown_grace = 2s\n"
            "%s"
            "[listener mx]\n"
            "listen = 127.0.0.1:0\n" % (store, extra))


class Workers(ServeCase):

    def workers(self, d, n=2):
        kids = wait_until(lambda: len(children_of(d.proc.pid)) >= n and children_of(d.proc.pid),
                          TIMEOUT)
        self.assertEqual(len(kids or []), n, "worker processes of pid %d: %r"
                         % (d.proc.pid, kids))
        return kids

    def send_one(self, d, subject):
        c = self.raw(d)
        self.ehlo(c)
        qid = self.transaction(c, body=simple_message(subject))
        self.assertReply(c.cmd("QUIT"), 221)
        c.close()
        return qid

    def test_two_workers_serve_and_sigterm_stops_all(self):
        store = os.path.join(self.dir, "store")
        d = self.serve(workers_conf(store), listeners=1)
        kids = self.workers(d)
        # each worker serves on its own: with the other one stopped, it takes the connection
        qids = via_each_worker(kids, lambda: self.send_one(d, "one worker"))
        files, _ = wait_store(store, 2)
        self.assertEqual(sorted(files), sorted(qids))
        # ... and SIGTERM to the main pid stops every one of them
        rc = d.stop()
        self.assertEqual(rc, 0, d.stderr_tail())
        self.assertFalse(d.leftover_children, "worker processes outlived the main process")
        for pid in kids:
            self.assertTrue(process_gone(pid), "worker %d still running" % pid)

    def test_worker_that_dies_is_restarted(self):
        store = os.path.join(self.dir, "store")
        d = self.serve(workers_conf(store), listeners=1)
        kids = self.workers(d)
        os.kill(kids[0], signal.SIGKILL)
        d.wait_log("worker_died")
        new = wait_until(lambda: (lambda k: len(k) == 2 and kids[0] not in k and k)(
            children_of(d.proc.pid)), TIMEOUT)
        self.assertTrue(new, "no new worker after one died: %r" % children_of(d.proc.pid))
        self.send_one(d, "after restart")
        d.stop()
        for pid in new:
            self.assertTrue(process_gone(pid), "worker %d still running" % pid)


# ---- privilege drop (root only) ---------------------------------------------------------

@unittest.skipUnless(IS_ROOT, "privilege drop needs root")
class PrivilegeDrop(ServeCase):

    def setUp(self):
        super().setUp()
        import pwd
        pw = pwd.getpwnam("nobody")
        self.uid, self.gid = pw.pw_uid, pw.pw_gid
        os.chmod(self.dir, 0o755)  # nobody must reach the store below it
        self.store = os.path.join(self.dir, "store")  # serve creates it

    def conf(self, workers):
        return ("user = nobody\n"
                "workers = %d\n"
                "store_dir = %s\n"
                "passwd_file = %s\n"
                "tls_cert = %s\n"
                "tls_key = %s\n"
                "shutdown_grace = 2s\n"
                "[listener mx]\n"
                "listen = 127.0.0.1:0\n"
                "[listener submissions]\n"
                "role = submissions\n"
                "listen = 127.0.0.1:0\n"
                % (workers, self.store, FIX["passwd"], FIX["cert"], FIX["key"]))

    def assertNobody(self, pid):
        self.assertEqual(proc_ids(pid, "Uid"), [self.uid] * 4, "uids of pid %d" % pid)
        self.assertEqual(proc_ids(pid, "Gid"), [self.gid] * 4, "gids of pid %d" % pid)
        self.assertEqual(proc_status(pid)["Groups"].split(), [str(self.gid)],
                         "supplementary groups of pid %d" % pid)

    def deliver_and_check_owner(self, d):
        c = self.raw(d)
        self.ehlo(c)
        qid = self.transaction(c)
        self.stored(self.store, qid)
        s = self.ssl_smtp(d.tcp_addresses()[1][1])
        s.ehlo()
        self.login(s, "PLAIN")
        qid2, _ = self.send_smtplib(s, "as nobody")
        s.quit()
        self.stored(self.store, qid2, n=2)
        for q in (qid, qid2):
            for ext in (".eml", ".json"):
                st = os.stat(os.path.join(self.store, q + ext))
                self.assertEqual(st.st_uid, self.uid, q + ext)

    def test_drop_one_worker(self):
        d = self.serve(self.conf(1), listeners=2)
        ev = d.wait_log("privileges", result="dropped")
        self.assertEqual(ev[0].get("user"), "nobody")
        self.assertEqual(ev[0].get("uid"), str(self.uid))
        # one worker: a root supervisor (it must be able to reload root-only keys) and one
        # unprivileged worker process that serves
        kids = wait_until(lambda: len(children_of(d.proc.pid)) == 1 and children_of(d.proc.pid),
                          TIMEOUT)
        self.assertTrue(kids, "one worker expected: %r" % children_of(d.proc.pid))
        self.assertNobody(kids[0])
        self.assertEqual(int(ev[0]["pid"]), kids[0])
        st = os.stat(self.store)
        self.assertEqual(st.st_uid, self.uid, "store_dir owner")
        self.assertTrue(stat.S_ISDIR(st.st_mode))
        self.deliver_and_check_owner(d)

    def test_drop_two_workers(self):
        d = self.serve(self.conf(2), listeners=2)
        d.wait_log("privileges", n=2, result="dropped")
        kids = wait_until(lambda: len(children_of(d.proc.pid)) == 2 and children_of(d.proc.pid),
                          TIMEOUT)
        self.assertTrue(kids, "two workers expected: %r" % children_of(d.proc.pid))
        for pid in kids:
            self.assertNobody(pid)
        logged = sorted(int(e["pid"]) for e in d.log_events("privileges") if "pid" in e)
        self.assertEqual(logged, kids)
        self.assertEqual(os.stat(self.store).st_uid, self.uid, "store_dir owner")
        self.deliver_and_check_owner(d)
        d.stop()
        for pid in kids:
            self.assertTrue(process_gone(pid), "worker %d still running" % pid)

    def test_sighup_reload_after_privilege_drop(self):
        """The man page's first example: user = posthorn with root-only key files, certificates
        renewed and SIGHUP sent. The key (openssl writes it 0600 root) must still reload once
        the worker runs as nobody: the issue asks for both privilege drop and SIGHUP reload."""
        cert, key = make_cert(self.dir, "live", cn="mx.test",
                              san=("DNS:mx.test", "IP:127.0.0.1"), serial=3333)
        next_cert, next_key = make_cert(self.dir, "next", cn="mx.test",
                                        san=("DNS:mx.test", "IP:127.0.0.1"), serial=4444)
        for p in (key, next_key):
            os.chmod(p, 0o600)
        conf = self.conf(1).replace(FIX["cert"], cert).replace(FIX["key"], key)
        d = self.serve(conf, listeners=2)
        d.wait_log("privileges", result="dropped")
        subs = d.tcp_addresses()[1]
        ctx = client_context(verify=False)
        c = self.raw(subs, tls=ctx, server_hostname="mx.test")
        self.assertEqual(peer_serial(c.sock), cert_serial(pem_to_der(cert)))
        for src, dst in ((next_key, key), (next_cert, cert)):
            with open(src, "rb") as f, open(dst, "wb") as g:
                g.write(f.read())
        os.kill(d.proc.pid, signal.SIGHUP)
        ev = wait_until(lambda: d.log_events("tls_reload"), TIMEOUT)
        self.assertTrue(ev, "no tls_reload line; stderr:\n" + d.stderr_tail())
        # the root supervisor replaces the workers: new ones load the new key as root, then
        # drop privileges; the old ones finish their sessions
        self.assertIn(ev[0].get("result"), ("ok", "workers_replaced"),
                      "reload as nobody failed; stderr:\n" + d.stderr_tail())
        self.assertTrue(wait_until(lambda: len(d.log_events("privileges")) >= 2, TIMEOUT),
                        "no replacement worker; stderr:\n" + d.stderr_tail())
        r = c.cmd("EHLO old.example")  # the session opened before the reload still works
        self.assertEqual(r.code, 250, "old session after the reload: %r" % (r,))
        c = self.raw(subs, tls=ctx, server_hostname="mx.test")
        self.assertEqual(peer_serial(c.sock), cert_serial(pem_to_der(next_cert)))

    def test_unknown_user_fails(self):
        path = self.write(self.conf(1).replace("user = nobody", "user = no-such-user-xyz"))
        t0 = time.monotonic()
        p = subprocess.run([BIN, "serve", "--config", path], capture_output=True, timeout=30,
                           stdin=subprocess.DEVNULL)
        self.assertEqual(p.returncode, 1, p.stderr)
        self.assertLess(time.monotonic() - t0, 10)
        self.assertIn(b"no-such-user-xyz", p.stderr)


# ---- SIGHUP: certificate reload ----------------------------------------------------------

class CertificateReload(ServeCase):

    def setUp(self):
        super().setUp()
        self.cert, self.key = make_cert(self.dir, "live", cn="mx.test",
                                        san=("DNS:mx.test", "IP:127.0.0.1"), serial=1111)
        self.next_cert, self.next_key = make_cert(self.dir, "next", cn="mx.test",
                                                  san=("DNS:mx.test", "IP:127.0.0.1"),
                                                  serial=2222)
        self.old_serial = cert_serial(pem_to_der(self.cert))
        self.new_serial = cert_serial(pem_to_der(self.next_cert))
        self.assertNotEqual(self.old_serial, self.new_serial)
        self.store = os.path.join(self.dir, "store")

    def conf(self, workers=1):
        return ("store_dir = %s\n"
                "passwd_file = %s\n"
                "tls_cert = %s\n"
                "tls_key = %s\n"
                "workers = %d\n"
                "shutdown_grace = 2s\n"
                "[listener mx]\n"
                "listen = 127.0.0.1:0\n"
                "[listener submissions]\n"
                "role = submissions\n"
                "listen = 127.0.0.1:0\n"
                % (self.store, FIX["passwd"], self.cert, self.key, workers))

    def ctx(self):
        return client_context(verify=False)

    def starttls_serial(self, addr):
        c = self.raw(addr)
        self.ehlo(c)
        c.starttls(self.ctx(), "mx.test")
        return c, peer_serial(c.sock)

    def implicit_serial(self, addr):
        c = self.raw(addr, tls=self.ctx(), server_hostname="mx.test")
        return peer_serial(c.sock)

    def replace_files(self, cert_bytes, key_bytes):
        """Overwrites the live certificate and key in place (as `cp new live` would)."""
        for path, data in ((self.key, key_bytes), (self.cert, cert_bytes)):
            with open(path, "wb") as f:
                f.write(data)

    def read(self, path):
        with open(path, "rb") as f:
            return f.read()

    def test_sighup_reloads_certificate(self):
        d = self.serve(self.conf(), listeners=2)
        mx, subs = d.tcp_addresses()
        old, serial = self.starttls_serial(mx)
        self.assertEqual(serial, self.old_serial)
        self.assertEqual(self.implicit_serial(subs), self.old_serial)
        self.replace_files(self.read(self.next_cert), self.read(self.next_key))
        os.kill(d.proc.pid, signal.SIGHUP)
        d.wait_log("tls_reload", result="ok")
        c, serial = self.starttls_serial(mx)
        self.assertEqual(serial, self.new_serial, "STARTTLS after SIGHUP")
        self.assertEqual(self.implicit_serial(subs), self.new_serial, "implicit TLS after SIGHUP")
        # the session opened before the reload keeps working on its old certificate
        self.ehlo(old)
        qid = self.transaction(old, body=simple_message("old session"))
        self.assertEqual(peer_serial(old.sock), self.old_serial)
        self.stored(self.store, qid)
        self.assertTrue(d.alive())

    def test_failed_reload_keeps_old_certificate(self):
        d = self.serve(self.conf(), listeners=2)
        mx, _ = d.tcp_addresses()
        # the listening lines come before the certificates are loaded: wait until it serves
        self.assertEqual(self.starttls_serial(mx)[1], self.old_serial)
        self.replace_files(b"not a certificate\n", b"not a key\n")
        os.kill(d.proc.pid, signal.SIGHUP)
        d.wait_log("tls_reload", result="failed_kept_old")
        c, serial = self.starttls_serial(mx)
        self.assertEqual(serial, self.old_serial)
        self.ehlo(c)
        self.transaction(c)

    def test_sighup_reaches_every_worker(self):
        d = self.serve(self.conf(workers=2), listeners=2)
        mx, subs = d.tcp_addresses()
        kids = wait_until(lambda: len(children_of(d.proc.pid)) == 2 and children_of(d.proc.pid),
                          TIMEOUT)
        self.assertTrue(kids, "two workers expected: %r" % children_of(d.proc.pid))
        # both workers have loaded the certificate before it is replaced
        self.assertEqual(via_each_worker(kids, lambda: self.implicit_serial(subs)),
                         [self.old_serial] * 2)
        self.replace_files(self.read(self.next_cert), self.read(self.next_key))
        os.kill(d.proc.pid, signal.SIGHUP)
        d.wait_log("tls_reload", n=2, result="ok")
        self.assertEqual(via_each_worker(kids, lambda: self.starttls_serial(mx)[1]),
                         [self.new_serial] * 2, "STARTTLS certificate of each worker")
        self.assertEqual(via_each_worker(kids, lambda: self.implicit_serial(subs)),
                         [self.new_serial] * 2, "implicit TLS certificate of each worker")
        self.assertEqual(sorted(children_of(d.proc.pid)), kids, "no worker restarted")
        self.assertEqual(d.stop(), 0, d.stderr_tail())


# ---- log_target = syslog ------------------------------------------------------------------

class Syslog(ServeCase):

    def test_syslog_serves_and_keeps_stderr_quiet(self):
        store = os.path.join(self.dir, "store")
        path = self.write("log_target = syslog\nstore_dir = %s\nshutdown_grace = 2s\n"
                          "[listener mx]\nlisten = 127.0.0.1:0\n" % store)
        # the listening lines may go to syslog too: learn the port from /proc
        d = Daemon([BIN, "serve", "--config", path], listeners=0)
        self.addCleanup(d.stop)
        d.start()
        ports = wait_until(lambda: d._listening() or listening_tcp_ports(d.proc.pid), TIMEOUT)
        self.assertTrue(ports, "no listening socket; stderr:\n" + d.stderr_text())
        self.assertTrue(d.alive(), d.stderr_text())
        port = listening_tcp_ports(d.proc.pid)[0]
        s = smtplib.SMTP("127.0.0.1", port, local_hostname=HELO, timeout=TIMEOUT)
        self.addCleanup(self._smtp_close, s)
        s.ehlo()
        code, text = s.mail("a@example.com")
        self.assertEqual(code, 250)
        s.rcpt("b@example.com")
        code, text = s.data(simple_message("syslog"))
        self.assertEqual(code, 250, text)
        qid = queued_qid_text(text)
        s.quit()
        self.stored(store, qid)
        rc = d.stop()
        self.assertEqual(rc, 0, d.stderr_text())
        report = d.sanitizer_report()
        self.assertIsNone(report, report)
        extra = [l for l in d.stderr_text().splitlines()
                 if l.strip() and "event=listening" not in l]
        self.assertEqual(extra, [], "log_target = syslog, yet stderr has log lines")


# ---- serve refuses a bad file -------------------------------------------------------------

class ServeBadConfig(ServeCase):

    def run_serve(self, path, timeout=10):
        t0 = time.monotonic()
        try:
            p = subprocess.run([BIN, "serve", "--config", path], stdin=subprocess.DEVNULL,
                               capture_output=True, timeout=timeout, start_new_session=True)
        except subprocess.TimeoutExpired:
            self.fail("serve with a bad config did not exit within %ss" % timeout)
        return (p.returncode, p.stdout.decode(), p.stderr.decode("utf-8", "replace"),
                time.monotonic() - t0)

    def test_bad_config_exits_1_with_all_errors(self):
        # a free port in a valid listener: serve must not bind it
        probe = socket.socket()
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
        probe.close()
        text = ("store_dir = %s\n"          # 1
                "bogus = 1\n"               # 2
                "workers = 100\n"           # 3
                "[listener ok]\n"           # 4
                "listen = 127.0.0.1:%d\n"   # 5
                "[listener bad]\n"          # 6
                "listen = 127.0.0.1:0\n"    # 7
                "tls = implicit\n"          # 8
                % (self.dir, port))
        path = self.write(text)
        rc, out, err, took = self.run_serve(path)
        self.assertEqual(rc, 1, err)
        self.assertLess(took, 5.0, "serve took %.1fs to refuse the file" % took)
        self.assertEqual(out, "")
        self.assertNotIn("event=listening", err)
        lines = [l for l in err.splitlines() if l.strip()]
        self.assertEqual([re.match(r"^%s:(\d+): " % re.escape(path), l) is not None
                          for l in lines], [True] * len(lines), err)
        self.assertEqual([int(re.match(r"^.*?:(\d+): ", l).group(1)) for l in lines],
                         [2, 3, 8], err)
        # same errors as config check
        rc2, _, err2 = run_posthorn("config", "check", path)
        self.assertEqual((rc2, err2), (1, err))
        # the port was never bound: it is still free
        s = socket.socket()
        try:
            s.bind(("127.0.0.1", port))
        finally:
            s.close()

    def test_missing_config_file(self):
        path = os.path.join(self.dir, "missing.conf")
        rc, out, err, took = self.run_serve(path)
        self.assertEqual(rc, 1)
        self.assertIn(path, err)
        self.assertNotIn("event=listening", err)

    def test_usage(self):
        rc, out, err = run_posthorn("serve")
        self.assertEqual(rc, 2)
        self.assertIn("--config", err)

    def test_unreadable_certificate_exits_1(self):
        # the file is valid syntax, but the certificate cannot be loaded: no serving
        text = ("store_dir = %s\ntls_cert = %s/nope.pem\ntls_key = %s/nope.key\n"
                "[listener mx]\nlisten = 127.0.0.1:0\n" % (self.dir, self.dir, self.dir))
        rc, out, err, took = self.run_serve(self.write(text))
        self.assertEqual(rc, 1, err)
        self.assertLess(took, 5.0)
        self.assertRegex(err, r"nope\.(pem|key)")

    def test_bad_passwd_file_exits_1(self):
        text = ("store_dir = %s\npasswd_file = %s/missing-passwd\ntls_cert = %s\n"
                "tls_key = %s\n[listener s]\nrole = submissions\nlisten = 127.0.0.1:0\n"
                % (self.dir, self.dir, FIX["cert"], FIX["key"]))
        rc, out, err, took = self.run_serve(self.write(text))
        self.assertEqual(rc, 1, err)
        self.assertIn("missing-passwd", err)
        self.assertNotIn("event=listening", err)


if __name__ == "__main__":
    unittest.main()
