"""
phtest.py - shared helpers for Posthorn's integration tests.

Starts the real daemon (`posthorn sink`) or an example program on 127.0.0.1 with port 0, learns
the port from its `event=listening address=...` log line, drains its stdout and stderr in
background threads (so the pipes never fill), parses the per-message stdout blocks and the
key=value log lines, and stops the process at the end (SIGTERM, then SIGKILL of its process
group after a timeout). Also provides a raw SMTP client (bytes in, parsed replies out, every
read bounded by a timeout) and an smtplib factory.

TLS: RawClient can start TLS in place (after STARTTLS) or at connect (implicit TLS), start_sink
takes listen_tls= for --listen-tls listeners (Daemon.tls_addr), and make_cert/client_context/
cert_serial help with certificates. run_tool runs a real client (swaks, curl, openssl) bounded in
time; Interactive drives one through its stdin line by line.

Environment: POSTHORN_BIN (the posthorn binary) and POSTHORN_BUILD (the CMake build dir with the
example programs). Both default to <repo>/build. Standard library only; run with /usr/bin/python3.
"""

import json
import os
import re
import shutil
import signal
import smtplib
import socket
import ssl
import subprocess
import tempfile
import threading
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
BUILD = os.environ.get("POSTHORN_BUILD") or os.path.join(REPO, "build")
BIN = os.environ.get("POSTHORN_BIN") or os.path.join(BUILD, "posthorn")

TIMEOUT = 10.0        # every socket read/connect
START_TIMEOUT = 10.0  # until the listening line appears
STOP_TIMEOUT = 10.0   # SIGTERM -> exit, before SIGKILL
CRLF = b"\r\n"
HELO = "client.example"

QID_RE = r"[0-9A-Za-z]{10,20}"
QUEUED_RE = re.compile(r"^Ok: queued as (" + QID_RE + r")$")
LISTEN_RE = re.compile(r"\bevent=listening\b.*?\baddress=(\S+)")
LOG_KV_RE = re.compile(r'([A-Za-z_][A-Za-z0-9_.-]*)=("(?:[^"\\]|\\.)*"|\S*)')
MSG_START_RE = re.compile(rb"^=== MESSAGE (\S+) ===\n", re.M)
ENH_RE = re.compile(r"^[245]\.\d{1,3}\.\d{1,3}$")
SANITIZER_MARKS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:",
                   "Sanitizer:DEADLYSIGNAL")


class ProtocolError(AssertionError):
    """The server sent something that is not a well-formed SMTP reply."""


# ---- log lines ---------------------------------------------------------------------------

def parse_log_line(line):
    """'level=info event=x sid=3 reason="a b"' -> dict (quotes removed, \\" unescaped)."""
    out = {}
    for key, val in LOG_KV_RE.findall(line):
        if len(val) >= 2 and val[0] == '"' and val[-1] == '"':
            val = re.sub(r'\\(.)', r'\1', val[1:-1])
        out[key] = val
    return out


# ---- stdout message blocks -----------------------------------------------------------------

def parse_messages(data):
    return parse_messages_at(data)[0]


def parse_messages_at(data):
    """Parses the complete '=== MESSAGE <QID> ===' ... '=== END <QID> ===' blocks in data (bytes).
    Returns a list of dicts: qid, fields (first value of each 'Key: value'), rcpt_to (list),
    data (the displayed message bytes, LF line ends), raw (the whole block)."""
    msgs = []
    pos = 0
    while True:
        m = MSG_START_RE.search(data, pos)
        if not m:
            break
        qid = m.group(1)
        end_marker = b"\n=== END " + qid + b" ===\n"
        e = data.find(end_marker, m.end() - 1)
        if e < 0:
            break  # block not complete yet
        block = data[m.end():e + 1]
        sep = block.find(b"--- DATA ---\n")
        if sep < 0:
            head, body = block, b""
        else:
            head, body = block[:sep], block[sep + len(b"--- DATA ---\n"):]
        fields, rcpts = {}, []
        for line in head.decode("utf-8", "replace").split("\n"):
            if not line:
                continue
            key, _, val = line.partition(":")
            val = val.strip()
            if key == "Rcpt-To":
                rcpts.append(val)
            fields.setdefault(key, val)
        msgs.append({"qid": qid.decode(), "fields": fields, "rcpt_to": rcpts, "data": body,
                     "raw": data[m.start():e + len(end_marker)]})
        pos = e + len(end_marker)
    return msgs, pos


def split_received(eml):
    """Splits a stored message into (Received header unfolded as str, rest as bytes).
    Raises AssertionError if the message does not start with a Received: header."""
    if not eml.startswith(b"Received:"):
        raise AssertionError("message does not start with Received: %r" % eml[:80])
    pos = 0
    while True:
        nl = eml.find(b"\r\n", pos)
        if nl < 0:
            raise AssertionError("unterminated Received header: %r" % eml[:200])
        pos = nl + 2
        if eml[pos:pos + 1] not in (b" ", b"\t"):
            break
    hdr = eml[:pos].decode("utf-8", "replace")
    return re.sub(r"\r\n[ \t]+", " ", hdr).strip(), eml[pos:]


# ---- the process under test ----------------------------------------------------------------

class _Pump(threading.Thread):
    """Reads one pipe to EOF into a shared buffer, notifying a condition on every chunk."""

    def __init__(self, pipe, cond, name):
        super().__init__(name=name, daemon=True)
        self.pipe, self.cond = pipe, cond
        self.buf = bytearray()
        self.eof = False

    def run(self):
        fd = self.pipe.fileno()
        while True:
            try:
                chunk = os.read(fd, 65536)
            except OSError:
                chunk = b""
            with self.cond:
                if chunk:
                    self.buf += chunk
                else:
                    self.eof = True
                self.cond.notify_all()
            if not chunk:
                return


class Daemon:
    """A started program that logs `event=listening address=...` on stderr for each listener."""

    def __init__(self, argv, listeners=1, env=None):
        self.argv = list(argv)
        self.listeners = listeners
        self.env = env
        self.proc = None
        self.addresses = []
        self.cond = threading.Condition()
        self.out = self.err = None
        self.stopped = False
        self.signalled = False
        self.leftover_children = False
        self.stop_rc = None
        self._msgs, self._msg_pos = [], 0
        self._events, self._log_pos = [], 0
        self.plain_listeners = None  # set by start_sink: the first N are --listen, then --listen-tls

    # -- life cycle --
    def start(self):
        if not os.path.exists(self.argv[0]):
            raise AssertionError("program not found: %s (set POSTHORN_BIN / POSTHORN_BUILD)"
                                 % self.argv[0])
        self.proc = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, env=self.env,
                                     start_new_session=True)
        self.out = _Pump(self.proc.stdout, self.cond, "stdout")
        self.err = _Pump(self.proc.stderr, self.cond, "stderr")
        self.out.start()
        self.err.start()
        ok = self.wait_for(lambda: len(self._listening()) >= self.listeners
                           or self.proc.poll() is not None, START_TIMEOUT)
        self.addresses = self._listening()
        if len(self.addresses) < self.listeners:
            rc = self.proc.poll()
            self.stop()
            raise AssertionError("%s did not log %d x event=listening (%s, rc=%s); stderr:\n%s"
                                 % (" ".join(self.argv), self.listeners,
                                    "timeout" if not ok or rc is None else "exited", rc,
                                    self.stderr_tail()))
        return self

    def _listening(self):
        return [m.group(1) for m in LISTEN_RE.finditer(self.stderr_text())]

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def send_signal(self, sig):
        self.signalled = True  # an exit after this is expected, not a crash
        if self.alive():
            self.proc.send_signal(sig)

    def wait_exit(self, timeout=STOP_TIMEOUT):
        """Waits for the process to exit by itself; returns its exit code or None on timeout."""
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def _killpg(self):
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass

    def stop(self, sig=signal.SIGTERM, timeout=STOP_TIMEOUT):
        """Signals the process, waits, SIGKILLs its process group after timeout. Returns the
        exit code (negative = killed by that signal); stop_rc keeps the code of the first stop.
        leftover_children is set if processes of its group still held stdout/stderr open."""
        if self.proc is None:
            return None
        if self.stopped:
            return self.proc.returncode
        self.stopped = True
        if self.proc.poll() is None:
            try:
                self.proc.send_signal(sig)
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self._killpg()
                self.proc.wait(timeout)
        self.stop_rc = self.proc.returncode
        # Worker processes (same process group) may still hold the pipes: give them a moment.
        if not self.wait_for(lambda: self.out.eof and self.err.eof, 3.0):
            self.leftover_children = True
            self._killpg()
            self.wait_for(lambda: self.out.eof and self.err.eof, 3.0)
        for p in (self.out, self.err):
            p.join(1.0)
        for f in (self.proc.stdout, self.proc.stderr):
            try:
                f.close()
            except OSError:
                pass
        return self.stop_rc

    # -- addresses --
    def tcp_addresses(self):
        out = []
        for a in self.addresses:
            if a.startswith("unix:"):
                continue
            host, _, port = a.rpartition(":")
            out.append((host.strip("[]"), int(port)))
        return out

    @property
    def port(self):
        return self.tcp_addresses()[0][1]

    @property
    def addr(self):
        return ("127.0.0.1", self.port)

    def tls_addresses(self):
        """The implicit-TLS (--listen-tls) listeners of a daemon started by start_sink."""
        n = self.plain_listeners or 0
        return self.tcp_addresses()[n:]

    @property
    def tls_addr(self):
        return self.tls_addresses()[0]

    def selfsigned(self):
        """The event=tls_selfsigned log line (cert=, key=, host=), or AssertionError."""
        ev = self.log_events("tls_selfsigned")
        if not ev:
            raise AssertionError("no event=tls_selfsigned in the log; stderr tail:\n%s"
                                 % self.stderr_tail())
        return ev[0]

    # -- output --
    def wait_for(self, predicate, timeout):
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                if predicate():
                    return True
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self.cond.wait(min(left, 0.2))

    def stdout_bytes(self):
        with self.cond:
            return bytes(self.out.buf) if self.out else b""

    def stderr_text(self):
        with self.cond:
            return bytes(self.err.buf).decode("utf-8", "replace") if self.err else ""

    def stderr_tail(self, n=40):
        return "\n".join(self.stderr_text().splitlines()[-n:])

    def messages(self):
        """All complete message blocks so far (parsed incrementally)."""
        with self.cond:
            buf = self.out.buf if self.out else b""
            start = self._msg_pos
            end = buf.rfind(b" ===\n") + 5 if len(buf) > start else start
            if end > start:
                chunk = bytes(buf[start:end])
                got, last = parse_messages_at(chunk)
                if got:
                    self._msgs.extend(got)
                    self._msg_pos = start + last
            return list(self._msgs)

    def wait_messages(self, n, timeout=TIMEOUT):
        """Waits until at least n complete message blocks are on stdout; returns all of them."""
        if not self.wait_for(lambda: len(self.messages()) >= n, timeout):
            raise AssertionError("expected %d message block(s) on stdout, got %d; stdout tail:\n%s"
                                 "\nstderr tail:\n%s" % (n, len(self.messages()),
                                                         self.stdout_bytes()[-2000:],
                                                         self.stderr_tail()))
        return self.messages()

    def log_events(self, event=None):
        """Parsed key=value log lines with an event= key (parsed incrementally)."""
        with self.cond:
            buf = self.err.buf if self.err else b""
            end = buf.rfind(b"\n") + 1
            if end > self._log_pos:
                text = bytes(buf[self._log_pos:end]).decode("utf-8", "replace")
                self._log_pos = end
                for line in text.splitlines():
                    kv = parse_log_line(line)
                    if "event" in kv:
                        self._events.append(kv)
            return [e for e in self._events if event is None or e["event"] == event]

    def wait_log(self, event, n=1, timeout=TIMEOUT, **match):
        """Waits for n log lines with event=<event> and the given key=value pairs."""
        def found():
            return [e for e in self.log_events(event)
                    if all(e.get(k) == str(v) for k, v in match.items())]
        if not self.wait_for(lambda: len(found()) >= n, timeout):
            raise AssertionError("expected %d x event=%s %r in the log; stderr tail:\n%s"
                                 % (n, event, match, self.stderr_tail()))
        return found()

    def sanitizer_report(self):
        text = self.stderr_text()
        for mark in SANITIZER_MARKS:
            i = text.find(mark)
            if i >= 0:
                return text[max(0, i - 200):i + 3000]
        return None


# ---- the raw client --------------------------------------------------------------------------

class Reply:
    """One SMTP reply: code, lines (texts after 'NNN-'/'NNN '), enhanced code of the last line."""

    def __init__(self, raw_lines):
        self.raw = raw_lines
        self.code = int(raw_lines[-1][:3])
        self.lines = [l[4:] for l in raw_lines]
        last = self.lines[-1]
        first, _, rest = last.partition(" ")
        if ENH_RE.match(first):
            self.enhanced, self.text = first, rest
        else:
            self.enhanced, self.text = None, last

    def __repr__(self):
        return "Reply(%r)" % "\\r\\n".join(self.raw)

    def __str__(self):
        return "\r\n".join(self.raw)


class RawClient:
    """A byte-level SMTP client. Every read has a deadline; replies are checked for syntax."""

    def __init__(self, address, timeout=TIMEOUT, banner=True, nodelay=True, tls=None,
                 server_hostname="localhost", source=None):
        """tls: an ssl.SSLContext for implicit TLS (handshake right after connect);
        source: a local address ("127.0.0.2") to connect from."""
        self.timeout = timeout
        if isinstance(address, str):
            self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            self.sock.settimeout(timeout)
            self.sock.connect(address)
        else:
            self.sock = socket.create_connection(
                address, timeout=timeout, source_address=(source, 0) if source else None)
            if nodelay:
                self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""
        self.eof = False
        self.senders = []
        self.send_errors = []
        if tls is not None:
            self.start_tls(tls, server_hostname)
        self.banner = self.read_reply() if banner else None

    @property
    def tls(self):
        return isinstance(self.sock, ssl.SSLSocket)

    def start_tls(self, context, server_hostname="localhost"):
        """TLS handshake on the connection (after a 220 to STARTTLS, or at connect). Fails if
        the server sent anything after its last reply: those bytes would be plaintext."""
        if self.buf:
            raise ProtocolError("server sent bytes before the TLS handshake: %r" % self.buf)
        self.sock.settimeout(self.timeout)
        self.sock = context.wrap_socket(self.sock, server_hostname=server_hostname)
        return self.sock

    def starttls(self, context, server_hostname="localhost"):
        """Sends STARTTLS, expects 220, does the handshake; returns the 220 reply."""
        r = self.cmd("STARTTLS")
        if r.code != 220:
            raise AssertionError("STARTTLS refused: %r" % r)
        self.start_tls(context, server_hostname)
        return r

    @property
    def local_port(self):
        return self.sock.getsockname()[1]

    def send(self, data):
        if isinstance(data, str):
            data = data.encode()
        self.sock.sendall(data)

    def send_async(self, data):
        """Sends in a background thread (for big pipelined bursts while replies are read)."""
        if isinstance(data, str):
            data = data.encode()

        def run():
            try:
                self.sock.sendall(data)
            except OSError as e:
                self.send_errors.append(e)
        t = threading.Thread(target=run, daemon=True)
        t.start()
        self.senders.append(t)
        return t

    def join_senders(self, timeout=TIMEOUT):
        for t in self.senders:
            t.join(timeout)
            if t.is_alive():
                raise AssertionError("background send did not finish within %ss" % timeout)
        self.senders = []

    def _fill(self, deadline):
        left = deadline - time.monotonic()
        if left <= 0:
            raise socket.timeout("timed out waiting for the server")
        self.sock.settimeout(left)
        try:
            chunk = self.sock.recv(65536)
        except ssl.SSLEOFError:  # TCP close without close_notify: EOF all the same
            chunk = b""
        if not chunk:
            self.eof = True
            raise EOFError("connection closed by the server; unread: %r" % self.buf)
        self.buf += chunk

    def read_line(self, timeout=None):
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while True:
            i = self.buf.find(b"\r\n")
            if i >= 0:
                line, self.buf = self.buf[:i], self.buf[i + 2:]
                return line
            if b"\n" in self.buf:
                raise ProtocolError("reply line not ended by CRLF: %r" % self.buf)
            if len(self.buf) > 100000:
                raise ProtocolError("overlong reply line: %r..." % self.buf[:200])
            self._fill(deadline)

    def read_reply(self, timeout=None):
        """Reads one complete (possibly multi-line) reply."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        lines = []
        while True:
            raw = self.read_line(max(0.001, deadline - time.monotonic()))
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError:
                raise ProtocolError("reply is not UTF-8: %r" % raw)
            if not re.match(r"^[2-5]\d\d([ -]|$)", line):
                raise ProtocolError("malformed reply line %r (after %r)" % (line, lines))
            if lines and line[:3] != lines[0][:3]:
                raise ProtocolError("code changed inside a multi-line reply: %r" % (lines + [line]))
            lines.append(line)
            if len(line) == 3 or line[3] == " ":
                return Reply(lines)

    def read_replies(self, n, timeout=None):
        return [self.read_reply(timeout) for _ in range(n)]

    def cmd(self, line, timeout=None):
        """Sends one command line (CRLF appended) and reads its reply."""
        if isinstance(line, str):
            line = line.encode()
        self.send(line + CRLF)
        return self.read_reply(timeout)

    def no_data_within(self, seconds):
        """True if the server sends nothing (and does not close) within seconds."""
        if self.buf:
            return False
        try:
            self._fill(time.monotonic() + seconds)
        except socket.timeout:
            return True
        except EOFError:
            return False
        return False

    def read_until_eof(self, timeout=None):
        """Reads until the server closes; returns all bytes received. Raises on timeout."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while not self.eof:
            try:
                self._fill(deadline)
            except EOFError:
                break
            except ConnectionResetError:
                self.eof = True
                break
        data, self.buf = self.buf, b""
        return data

    def closed_by_server(self, timeout=None):
        """True if the server closes the connection within timeout (pending bytes discarded)."""
        try:
            self.read_until_eof(timeout)
            return True
        except socket.timeout:
            return False

    def close(self, reset=False):
        if reset:
            try:
                self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                     b"\x01\x00\x00\x00\x00\x00\x00\x00")
            except OSError:
                pass
        try:
            self.sock.close()
        except OSError:
            pass
        for t in self.senders:
            t.join(1.0)


def replies_from_bytes(data):
    """Splits received bytes into Reply objects (for data read with read_until_eof)."""
    out, cur = [], []
    for raw in data.split(b"\r\n"):
        if not raw:
            continue
        line = raw.decode("utf-8", "replace")
        if not re.match(r"^[2-5]\d\d([ -]|$)", line):
            raise ProtocolError("malformed reply line %r in %r" % (line, data))
        cur.append(line)
        if len(line) == 3 or line[3] == " ":
            out.append(Reply(cur))
            cur = []
    return out


# ---- message helpers -------------------------------------------------------------------------

def simple_message(subject="test", body="Hello.\r\n", sender="sender@example.com",
                   to="rcpt@example.com", extra_headers=()):
    """A small RFC 5322 message as bytes with CRLF line ends (body must use CRLF)."""
    hdrs = ["From: <%s>" % sender, "To: <%s>" % to, "Subject: %s" % subject,
            "Message-ID: <%s@client.example>" % subject.replace(" ", "."),
            "Date: Thu, 01 Jan 2025 00:00:00 +0000"] + list(extra_headers)
    body = body.encode() if isinstance(body, str) else body
    return ("\r\n".join(hdrs) + "\r\n\r\n").encode() + body


def dot_stuff(msg):
    """Applies SMTP dot-stuffing to a CRLF message (bytes) and adds the terminator."""
    lines = msg.split(b"\r\n")
    if msg.endswith(b"\r\n"):
        lines = lines[:-1]
    out = b"".join((b"." + l if l.startswith(b".") else l) + b"\r\n" for l in lines)
    return out + b".\r\n"


def queued_qid(reply):
    """The queue id from a '250 2.0.0 Ok: queued as <QID>' reply, else AssertionError."""
    if reply.code != 250 or reply.enhanced != "2.0.0":
        raise AssertionError("expected 250 2.0.0 queued reply, got %r" % reply)
    m = QUEUED_RE.match(reply.text)
    if not m:
        raise AssertionError("queued reply text does not match 'Ok: queued as <QID>': %r" % reply)
    return m.group(1)


def queued_qid_text(text):
    """Like queued_qid for smtplib's (code, msg) where msg is '2.0.0 Ok: queued as X'."""
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    m = re.match(r"^2\.0\.0 Ok: queued as (" + QID_RE + r")$", text)
    if not m:
        raise AssertionError("queued reply text mismatch: %r" % text)
    return m.group(1)


def store_files(path):
    """{qid: {'eml': bytes, 'json': dict}} for a --store directory, plus the list of other names."""
    out, other = {}, []
    for name in sorted(os.listdir(path)):
        base, ext = os.path.splitext(name)
        full = os.path.join(path, name)
        if ext == ".eml":
            with open(full, "rb") as f:
                out.setdefault(base, {})["eml"] = f.read()
        elif ext == ".json":
            with open(full, "rb") as f:
                out.setdefault(base, {})["json"] = json.loads(f.read().decode("utf-8"))
        else:
            other.append(name)
    return out, other


def wait_store(path, n, timeout=TIMEOUT):
    """Waits until n complete .eml/.json pairs are in path; returns store_files(path)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            files, other = store_files(path)
        except ValueError:  # a JSON file caught mid-write would be a bug; retry until deadline
            files, other = {}, []
        pairs = [q for q, v in files.items() if "eml" in v and "json" in v]
        if len(pairs) >= n or time.monotonic() > deadline:
            return files, other
        time.sleep(0.05)


# ---- the test case base ----------------------------------------------------------------------

class PosthornTestCase(unittest.TestCase):
    """Starts processes with automatic cleanup; checks they did not crash."""

    maxDiff = 4000

    def start_program(self, argv, listeners=1, check_exit=True):
        d = Daemon(argv, listeners=listeners)
        self.addCleanup(self._finish, d, check_exit)
        d.start()
        return d

    def start_sink(self, *args, listen=("127.0.0.1:0",), check_exit=True, listen_tls=()):
        """listen_tls: addresses for --listen-tls (implicit TLS); they are logged after the
        --listen ones, so Daemon.tls_addresses() are the last len(listen_tls) addresses."""
        argv = [BIN, "sink"]
        for l in listen:
            argv += ["--listen", l]
        for l in listen_tls:
            argv += ["--listen-tls", l]
        argv += [str(a) for a in args]
        d = Daemon(argv, listeners=len(listen) + len(listen_tls))
        d.plain_listeners = len(listen)
        self.addCleanup(self._finish, d, check_exit)
        d.start()
        return d

    def start_example(self, name, *args, check_exit=False):
        return self.start_program([os.path.join(BUILD, name)] + [str(a) for a in args],
                                  check_exit=check_exit)

    def _finish(self, d, check_exit):
        crashed = (d.proc is not None and not d.stopped and not d.signalled
                   and d.proc.poll() is not None)
        early_rc = d.proc.returncode if crashed else None
        if not d.addresses:
            d.stop()
            return  # start() failed and has already raised
        rc = d.stop()
        report = d.sanitizer_report()
        if report:
            self.fail("sanitizer report in daemon stderr:\n" + report)
        if crashed:
            self.fail("daemon exited on its own during the test (rc=%s); stderr tail:\n%s"
                      % (early_rc, d.stderr_tail()))
        if check_exit and rc != 0:
            self.fail("daemon exit code after SIGTERM was %s, expected 0; stderr tail:\n%s"
                      % (rc, d.stderr_tail()))

    def tmpdir(self):
        path = tempfile.mkdtemp(prefix="posthorn-it-")
        self.addCleanup(shutil.rmtree, path, True)
        return path

    def raw(self, target, banner=True, timeout=TIMEOUT, **kw):
        """RawClient to a Daemon (its first TCP listener), an (host, port) or a unix path.
        Keyword arguments (tls=, server_hostname=, source=) go to RawClient."""
        addr = target.addr if isinstance(target, Daemon) else target
        c = RawClient(addr, timeout=timeout, banner=banner, **kw)
        self.addCleanup(c.close)
        if banner:
            self.assertEqual(c.banner.code, 220, c.banner)
        return c

    def smtp(self, d, helo=HELO, timeout=TIMEOUT):
        s = smtplib.SMTP("127.0.0.1", d.port, local_hostname=helo, timeout=timeout)
        self.addCleanup(self._smtp_close, s)
        return s

    @staticmethod
    def _smtp_close(s):
        try:
            s.close()
        except Exception:
            pass

    def ehlo(self, c, name=HELO):
        r = c.cmd("EHLO " + name)
        self.assertReply(r, 250)
        return r

    def assertReply(self, reply, code, enhanced=None, text_re=None):
        self.assertEqual(reply.code, code, "unexpected reply %r" % reply)
        if enhanced is not None:
            self.assertEqual(reply.enhanced, enhanced, "unexpected enhanced code in %r" % reply)
        if text_re is not None:
            self.assertRegex(reply.text, text_re)

    def transaction(self, c, body=None, sender="sender@example.com",
                    rcpts=("rcpt@example.com",), mail_params=""):
        """MAIL/RCPT/DATA over a RawClient after EHLO; returns the queue id."""
        body = simple_message() if body is None else body
        self.assertReply(c.cmd("MAIL FROM:<%s>%s" % (sender, mail_params)), 250, "2.1.0")
        for r in rcpts:
            self.assertReply(c.cmd("RCPT TO:<%s>" % r), 250, "2.1.5")
        self.assertReply(c.cmd("DATA"), 354)
        c.send(dot_stuff(body))
        return queued_qid(c.read_reply())

    def assertStoredBody(self, eml, body):
        """eml = Received header + exactly body."""
        _, rest = split_received(eml)
        self.assertEqual(rest, body)


# ---- TLS and real-client helpers -------------------------------------------------------------

OPENSSL = shutil.which("openssl") or "/usr/bin/openssl"


def tool_env():
    """Environment for real clients: no proxies (curl honours all_proxy for smtp://), C locale."""
    env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
    env["LC_ALL"] = "C"
    return env


def run_tool(argv, timeout=30, input=None):
    """Runs a client program bounded in time; returns (rc, stdout+stderr as str)."""
    try:
        p = subprocess.run([str(a) for a in argv], input=input,
                           stdin=None if input is not None else subprocess.DEVNULL,
                           capture_output=True, timeout=timeout, env=tool_env())
    except subprocess.TimeoutExpired as e:
        raise AssertionError("%s timed out after %ss; output: %r"
                             % (" ".join(map(str, argv)), timeout, (e.stdout or b"")[-2000:]))
    return p.returncode, (p.stdout + p.stderr).decode("utf-8", "replace")


def make_cert(directory, name="cert", cn="mx.example.test",
              san=("DNS:mx.example.test", "DNS:localhost", "IP:127.0.0.1"), serial=None,
              days=1):
    """A self-signed EC P-256 certificate and key (PEM) made with `openssl req`.
    Returns (cert_path, key_path): directory/name.pem and directory/name.key."""
    cert = os.path.join(directory, name + ".pem")
    key = os.path.join(directory, name + ".key")
    argv = [OPENSSL, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
            "-nodes", "-subj", "/CN=" + cn, "-days", str(days), "-keyout", key, "-out", cert]
    if san:
        argv += ["-addext", "subjectAltName=" + ",".join(san)]
    if serial is not None:
        argv += ["-set_serial", str(serial)]
    rc, out = run_tool(argv)
    if rc != 0:
        raise AssertionError("openssl req failed: %s" % out)
    return cert, key


def client_context(cafile=None, verify=True, minimum=None, maximum=None):
    """An ssl client context trusting cafile (hostname checked) or not verifying at all."""
    ctx = ssl.create_default_context(cafile=cafile) if verify else \
        ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    if not verify:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    if minimum is not None:
        ctx.minimum_version = minimum
    if maximum is not None:
        ctx.maximum_version = maximum
    return ctx


def cert_serial(der):
    """The serial number (upper-case hex, as `openssl x509 -serial` prints it) of a DER cert."""
    rc, out = run_tool([OPENSSL, "x509", "-noout", "-serial", "-inform", "DER"], input=der)
    m = re.search(r"serial=([0-9A-Fa-f]+)", out)
    if rc != 0 or not m:
        raise AssertionError("openssl x509 -serial failed: %s" % out)
    return m.group(1).upper()


def pem_to_der(path):
    with open(path) as f:
        return ssl.PEM_cert_to_DER_cert(f.read())


class Interactive:
    """A client program driven line by line through its stdin (openssl s_client): expect()
    waits, bounded, for a regex in its combined output; close() always ends the process."""

    def __init__(self, argv, timeout=TIMEOUT):
        self.timeout = timeout
        self.proc = subprocess.Popen([str(a) for a in argv], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     env=tool_env(), start_new_session=True)
        self.cond = threading.Condition()
        self.pump = _Pump(self.proc.stdout, self.cond, "interactive")
        self.pump.start()
        self.pos = 0

    def text(self):
        with self.cond:
            return bytes(self.pump.buf).decode("utf-8", "replace")

    def send(self, data):
        if isinstance(data, str):
            data = data.encode()
        self.proc.stdin.write(data)
        self.proc.stdin.flush()

    def expect(self, regex, timeout=None):
        """Waits for regex in the output after the previous match; returns the match."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        pat = re.compile(regex, re.M)
        with self.cond:
            while True:
                m = pat.search(bytes(self.pump.buf).decode("utf-8", "replace"), self.pos)
                if m:
                    self.pos = m.end()
                    return m
                left = deadline - time.monotonic()
                if left <= 0 or (self.pump.eof and not m):
                    raise AssertionError("%r not seen in the output of %s; output:\n%s"
                                         % (regex, self.proc.args[0],
                                            bytes(self.pump.buf).decode("utf-8", "replace")))
                self.cond.wait(min(left, 0.2))

    def wait(self, timeout=None):
        """Waits for the program to exit (stdin closed first); returns its exit code."""
        try:
            self.proc.stdin.close()
        except OSError:
            pass
        try:
            return self.proc.wait(self.timeout if timeout is None else timeout)
        except subprocess.TimeoutExpired:
            return None

    def close(self):
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
            self.proc.wait(5)
        self.pump.join(2.0)
        for f in (self.proc.stdin, self.proc.stdout):
            try:
                f.close()
            except OSError:
                pass


_BLACKHOLE = []


def dns_blackhole():
    """A `dns_forwarders` value for a DNS server that never answers (a bound UDP socket that
    nobody reads): every lookup times out, so mail to other domains stays deferred and no
    query ever leaves 127.0.0.1. The socket lives as long as the test process."""
    if not _BLACKHOLE:
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind(("127.0.0.1", 0))
        _BLACKHOLE.append(s)
    return "127.0.0.1@%d" % _BLACKHOLE[0].getsockname()[1]
