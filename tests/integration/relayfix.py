"""
relayfix.py - the loopback fixture for the MX relay tests (issue 5, test_relay.py).

Everything lives on 127.0.0.0/8 and in temp directories; nothing touches /etc or the network:

  - FakeDNS (fakedns.py) on 127.0.0.1 answers the daemon's MX/A/AAAA queries from a table
    (dns_forwarders = 127.0.0.1@PORT);
  - receiving MXs on 127.0.0.2, 127.0.0.3, ... ALL on one port P (the daemon's test-only
    `smtp_mx_port = P` sends every MX connection there), picked free on every address we use
    (pick_mx_port), nothing ever listening on UNREACHABLE (127.0.0.9);
  - SmtpSink: Postfix's smtp-sink, one per address and port, with its per-message dump files
    (-d) and its verbose log (-v: one "connect (" line per connection, every command) - the
    receiver of choice: it answers 4xx/5xx on chosen commands (-r/-f), closes with 421 (-Q),
    delays its greeting (-W connect:N);
  - PyReceiver: a small scripted SMTP server (socketserver) for what smtp-sink cannot do:
    "451 on the first try, 250 on the next", the exact bytes on the wire (dot-stuffing, CRLF),
    and a hook called right after the 250 to the final dot (kill -9 at that instant);
  - PostfixMX: a real, private Postfix instance (own config dir, queue and Maildir in the temp
    dir, `master -c DIR -d`, never /etc/postfix) receiving one domain into one Maildir;
  - RelayCase: the unittest base that starts all of the above with cleanups, writes the
    daemon's config (relay_networks, dns_forwarders, smtp_mx_port, fast retries, the sender's
    local domain example.org with a Maildir for alice's bounces) and has the queue and Maildir
    helpers (queue list, DSN parsing).

Every wait is bounded; every process and thread started here is stopped by a cleanup (also on
failure). Running as root (CI), smtp-sink drops to `nobody` (-u) and Postfix delivers as uid
65534: the temp directory is made traversable (0755) for them. Tests needing a missing binary
(smtp-sink, Postfix's master) skip with a message naming it.

Standard library only; run with /usr/bin/python3.
"""

import email
import email.policy
import grp
import os
import pwd
import signal
import smtplib
import socket
import socketserver
import subprocess
import threading
import time
import unittest

from fakedns import FakeDNS
from phtest import BIN, TIMEOUT, Daemon, PosthornTestCase, queued_qid_text

SMTP_SINK = "/usr/sbin/smtp-sink"
POSTFIX_MASTER = "/usr/lib/postfix/sbin/master"
UNPRIVILEGED = "nobody"  # smtp-sink's -u user and Postfix's virtual delivery uid when root

# Receiver addresses; nothing ever listens on UNREACHABLE (connections to it are refused).
MX_ADDRS = ("127.0.0.2", "127.0.0.3", "127.0.0.4", "127.0.0.5", "127.0.0.6")
UNREACHABLE = "127.0.0.9"

HOSTNAME = "posthorn.test"     # the daemon's hostname (its EHLO name at the MXs)
SENDER = "alice@example.org"   # local to the daemon: bounces land in her Maildir
HELO = "client.example"
WAIT = 10.0                    # longest wait for one expected outcome (arrival, bounce...)
START_WAIT = 10.0              # for a receiver to listen
STOP_WAIT = 5.0


def wait_until(predicate, timeout=WAIT, what="condition", interval=0.05):
    """Polls predicate until it returns a true value (returned) or raises AssertionError."""
    deadline = time.monotonic() + timeout
    while True:
        v = predicate()
        if v:
            return v
        if time.monotonic() >= deadline:
            raise AssertionError("timed out after %.1fs waiting for %s" % (timeout, what))
        time.sleep(interval)


def read_file(path):
    with open(path, "rb") as f:
        return f.read()


# ---- ports -----------------------------------------------------------------------------------

def _hex_endpoint(addr, port):
    """127.0.0.2:25 as /proc/net/tcp writes it (little-endian address on x86/arm)."""
    a = socket.inet_aton(addr)
    return "%08X:%04X" % (int.from_bytes(a, "little"), port)


def tcp_listening(addr, port):
    """True if some socket listens on addr:port (read from /proc/net/tcp, so the check
    opens no connection a receiver would count)."""
    want = _hex_endpoint(addr, port)
    try:
        with open("/proc/net/tcp") as f:
            next(f)
            for line in f:
                fields = line.split()
                if fields[1] == want and fields[3] == "0A":
                    return True
    except OSError:
        pass
    return False


def pick_mx_port(addrs=MX_ADDRS + (UNREACHABLE,)):
    """A TCP port free on every address in addrs (so receivers can bind it on each, and
    UNREACHABLE really refuses). The kernel picks it for the first address; a few tries."""
    for _ in range(100):
        socks = []
        try:
            first = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            socks.append(first)
            first.bind((addrs[0], 0))
            port = first.getsockname()[1]
            for a in addrs[1:]:
                s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                socks.append(s)
                s.bind((a, port))
            return port
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
    raise AssertionError("no TCP port free on all of %s" % (addrs,))


def _wait_listening(proc, addr, port, what, log):
    deadline = time.monotonic() + START_WAIT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError("%s exited at start (rc=%s)\n%s" % (what, proc.returncode, log()))
        if tcp_listening(addr, port):
            return
        time.sleep(0.05)
    raise AssertionError("%s did not listen on %s:%d within %ss\n%s"
                         % (what, addr, port, START_WAIT, log()))


def _stop_process(proc):
    """SIGTERM, bounded wait, then SIGKILL of the process group (started in its own session)."""
    if proc is None:
        return
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(STOP_WAIT)
        except subprocess.TimeoutExpired:
            pass
    try:
        os.killpg(proc.pid, signal.SIGKILL)  # and anything it left behind
    except (ProcessLookupError, PermissionError):
        pass
    try:
        proc.wait(STOP_WAIT)
    except subprocess.TimeoutExpired:
        pass


def _tail(path, n=60):
    try:
        return "\n".join(read_file(path).decode("utf-8", "replace").splitlines()[-n:])
    except OSError as e:
        return "(%s: %s)" % (path, e)


# ---- smtp-sink ---------------------------------------------------------------------------------

class SinkMessage:
    """One message smtp-sink accepted (a complete -d dump file).
    helo, sender (MAIL FROM address without <>), mail_args (the whole MAIL argument), rcpts
    (addresses without <>), data (the message as received: dot-unstuffed, CR removed, LF line
    ends - smtp-sink drops every CR and the first dot of each line), path."""

    def __init__(self, path, raw):
        self.path = path
        self.helo = self.mail_args = self.client_addr = None
        self.rcpts = []
        lines = raw.split(b"\n")
        i = 0
        while i < len(lines):
            line = lines[i].decode("utf-8", "replace")
            key, _, val = line.partition(": ")
            if key == "X-Client-Addr":
                self.client_addr = val
            elif key == "X-Helo-Args":
                self.helo = val
            elif key == "X-Mail-Args":
                self.mail_args = val
            elif key == "X-Rcpt-Args":
                self.rcpts.append(val.split(" ")[0].strip("<>"))
            elif key == "Received":
                i += 3  # smtp-sink's own three-line Received: ends its header block
                break
            i += 1
        else:
            raise AssertionError("smtp-sink dump without its Received header: %r" % raw[:500])
        body = b"\n".join(lines[i:])
        if not body.endswith(b"\n"):
            raise AssertionError("smtp-sink dump not terminated: %r" % raw[-200:])
        self.data = body[:-1]  # the dump adds the LF of the final "\r\n.\r\n"
        arg = (self.mail_args or "").split(" ")[0]
        self.sender = arg[1:-1] if arg.startswith("<") and arg.endswith(">") else arg

    def __repr__(self):
        return "SinkMessage(from=%r rcpts=%r %d bytes)" % (self.sender, self.rcpts, len(self.data))


class SmtpSink:
    """Postfix's smtp-sink on addr:port with dump files and its verbose log.
    options: extra smtp-sink arguments, e.g. ("-f", "RCPT", "-B", "550 5.1.1 no such user")."""

    def __init__(self, root, addr, port, options=()):
        self.addr, self.port = addr, port
        self.options = [str(o) for o in options]
        self.dir = os.path.join(root, "sink-%s-%d" % (addr, port))
        self.dump = os.path.join(self.dir, "dump")
        self.log_path = os.path.join(self.dir, "sink.log")
        self.proc = None

    def start(self):
        if not os.access(SMTP_SINK, os.X_OK):
            raise unittest.SkipTest("%s is not installed (Debian package postfix)" % SMTP_SINK)
        os.makedirs(self.dump)
        argv = [SMTP_SINK, "-v", "-d", os.path.join(self.dump, "m.")]
        if os.geteuid() == 0:
            pw = pwd.getpwnam(UNPRIVILEGED)
            os.chmod(self.dir, 0o755)
            os.chown(self.dump, pw.pw_uid, pw.pw_gid)
            argv += ["-u", UNPRIVILEGED]
        argv += self.options + ["%s:%d" % (self.addr, self.port), "64"]
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                         start_new_session=True)
        _wait_listening(self.proc, self.addr, self.port, "smtp-sink", self.log)
        return self

    def stop(self):
        _stop_process(self.proc)

    def log(self):
        return _tail(self.log_path)

    def log_lines(self):
        try:
            text = read_file(self.log_path).decode("utf-8", "replace")
        except OSError:
            return []
        prefix = SMTP_SINK + ": "
        return [l[len(prefix):] if l.startswith(prefix) else l for l in text.splitlines()]

    def connections(self):
        """Connections accepted so far (smtp-sink -v logs "connect (AF_INET ADDR)")."""
        return sum(1 for l in self.log_lines() if l.startswith("connect ("))

    def commands(self, verb):
        """The logged command lines starting with verb (case-insensitive), e.g. "mail"."""
        verb = verb.lower()
        return [l for l in self.log_lines() if l.lower().split(" ")[0] == verb]

    def _open_files(self):
        """Paths smtp-sink holds open: the dump files of transactions still in progress."""
        out = set()
        fd_dir = "/proc/%d/fd" % self.proc.pid
        try:
            for fd in os.listdir(fd_dir):
                try:
                    out.add(os.readlink(os.path.join(fd_dir, fd)))
                except OSError:
                    pass
        except OSError:
            pass
        return out

    def messages(self):
        """The complete messages so far, oldest first. A dump file is created at MAIL and
        closed when the final dot arrives (removed if the transaction is aborted), so a file
        smtp-sink no longer holds open is a finished message."""
        try:
            names = os.listdir(self.dump)
        except OSError:
            return []
        busy = self._open_files()
        out = []
        for name in names:
            path = os.path.join(self.dump, name)
            if path in busy:
                continue
            try:
                raw = read_file(path)
                mtime = os.stat(path).st_mtime
            except FileNotFoundError:
                continue  # an aborted transaction, unlinked meanwhile
            out.append((mtime, name, SinkMessage(path, raw)))
        return [m for _, _, m in sorted(out, key=lambda t: (t[0], t[1]))]

    def wait_messages(self, n, timeout=WAIT):
        """Waits for at least n complete messages; returns all of them."""
        try:
            return wait_until(lambda: len(self.messages()) >= n and self.messages(), timeout,
                              "%d message(s) at smtp-sink %s:%d" % (n, self.addr, self.port))
        except AssertionError as e:
            raise AssertionError("%s (got %d); smtp-sink log tail:\n%s"
                                 % (e, len(self.messages()), self.log())) from None


# ---- a scripted receiver --------------------------------------------------------------------

class Transaction:
    """One MAIL transaction seen by PyReceiver: sender, rcpts (accepted), refused_rcpts,
    wire (the DATA bytes exactly as sent, without the final ".\\r\\n"), data (unstuffed),
    reply (our reply to the final dot, or None if DATA never completed), conn (1-based),
    started (time.monotonic() of the MAIL command)."""

    def __init__(self, conn, sender):
        self.conn = conn
        self.sender = sender
        self.started = time.monotonic()  # when MAIL was accepted
        self.rcpts, self.refused_rcpts = [], []
        self.wire = self.data = self.reply = None

    @property
    def delivered(self):
        return self.reply is not None and self.reply.startswith("2")

    def __repr__(self):
        return "Transaction(conn=%d from=%r rcpts=%r reply=%r)" % (
            self.conn, self.sender, self.rcpts, self.reply)


def unstuff(wire):
    """SMTP dot-unstuffing of DATA bytes (CRLF lines, terminator already removed)."""
    if not wire:
        return wire
    lines = wire.split(b"\r\n")
    return b"\r\n".join(l[1:] if l.startswith(b".") else l for l in lines)


class _Server(socketserver.ThreadingMixIn, socketserver.TCPServer):
    allow_reuse_address = True
    daemon_threads = True
    block_on_close = False


class _Handler(socketserver.StreamRequestHandler):
    timeout = 30  # every read on a session; a stuck client cannot hold a thread forever

    def handle(self):
        self.server.owner._session(self)


class PyReceiver:
    """A scripted SMTP server on addr:port (a thread per connection).

    replies: {VERB: [reply, ...]} - the next uses of VERB (MAIL, RCPT, DATA, ".", "CONNECT" for
      the greeting, EHLO) get these replies in order, over the receiver's whole life; then the
      normal answer. A reply starting with 4 or 5 to CONNECT closes the connection after it.
    greeting_delay: seconds before the greeting.
    after_message: callable(transaction), called right after the reply to the final dot went
      out (e.g. to kill the daemon at exactly that point).
    EHLO offers PIPELINING, 8BITMIME, SIZE and ENHANCEDSTATUSCODES (no STARTTLS)."""

    EHLO_KEYWORDS = ("PIPELINING", "8BITMIME", "SIZE 52428800", "ENHANCEDSTATUSCODES")

    def __init__(self, addr, port, replies=None, greeting_delay=0.0, after_message=None,
                 name="pyrecv.test"):
        self.addr, self.port = addr, port
        self.script = {k.upper(): list(v) for k, v in (replies or {}).items()}
        self.greeting_delay = greeting_delay
        self.after_message = after_message
        self.name = name
        self.lock = threading.Lock()
        self.conn_count = 0
        self.transactions = []
        self.commands = []  # (conn, line) in arrival order
        self.errors = []    # exceptions in session threads (shown on failures)
        self._socks = set()
        self._stopping = threading.Event()
        self.server = None
        self.thread = None

    def start(self):
        self.server = _Server((self.addr, self.port), _Handler, bind_and_activate=True)
        self.server.owner = self
        self.thread = threading.Thread(target=self.server.serve_forever,
                                       kwargs={"poll_interval": 0.1}, daemon=True,
                                       name="pyrecv-%s" % self.addr)
        self.thread.start()
        return self

    def stop(self):
        self._stopping.set()
        if self.server is None:
            return
        self.server.shutdown()
        with self.lock:
            socks = list(self._socks)
        for s in socks:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self.server.server_close()
        self.thread.join(STOP_WAIT)

    # -- what was seen --
    def connections(self):
        with self.lock:
            return self.conn_count

    def delivered(self):
        with self.lock:
            return [t for t in self.transactions if t.delivered]

    def all_transactions(self):
        with self.lock:
            return list(self.transactions)

    def wait_delivered(self, n, timeout=WAIT):
        try:
            return wait_until(lambda: len(self.delivered()) >= n and self.delivered(), timeout,
                              "%d message(s) at receiver %s:%d" % (n, self.addr, self.port))
        except AssertionError as e:
            raise AssertionError("%s; transactions: %r; errors: %r"
                                 % (e, self.all_transactions(), self.errors)) from None

    # -- the session --
    def _scripted(self, verb, default):
        with self.lock:
            q = self.script.get(verb)
            return q.pop(0) if q else default

    def _session(self, h):
        with self.lock:
            self.conn_count += 1
            conn = self.conn_count
            self._socks.add(h.connection)
        try:
            self._converse(h, conn)
        except (OSError, ValueError) as e:
            if not self._stopping.is_set():
                with self.lock:
                    self.errors.append("conn %d: %r" % (conn, e))
        finally:
            with self.lock:
                self._socks.discard(h.connection)

    def _send(self, h, reply):
        h.wfile.write(reply.encode() + b"\r\n")
        h.wfile.flush()

    def _converse(self, h, conn):
        if self.greeting_delay and self._stopping.wait(self.greeting_delay):
            return
        greeting = self._scripted("CONNECT", "220 %s ESMTP pyrecv" % self.name)
        self._send(h, greeting)
        if greeting[0] in "45":
            return
        txn = None
        while not self._stopping.is_set():
            raw = h.rfile.readline(4096)
            if not raw:
                return
            line = raw.rstrip(b"\r\n").decode("utf-8", "replace")
            with self.lock:
                self.commands.append((conn, line))
            verb = line.split(" ")[0].upper()
            if verb in ("EHLO", "HELO"):
                txn = None
                self._send(h, self._scripted(verb, self._hello_reply(verb)))
            elif verb == "MAIL":
                reply = self._scripted("MAIL", "250 2.1.0 Ok")
                if reply.startswith("2"):
                    sender = line[line.find(":") + 1:].strip().split(" ")[0].strip("<>")
                    txn = Transaction(conn, sender)
                    with self.lock:
                        self.transactions.append(txn)
                self._send(h, reply)
            elif verb == "RCPT":
                reply = self._scripted("RCPT", "250 2.1.5 Ok") if txn else "503 5.5.1 need MAIL"
                addr = line[line.find(":") + 1:].strip().split(" ")[0].strip("<>")
                if txn is not None:
                    (txn.rcpts if reply.startswith("2") else txn.refused_rcpts).append(addr)
                self._send(h, reply)
            elif verb == "DATA":
                if txn is None or not txn.rcpts:
                    self._send(h, "503 5.5.1 need RCPT")
                    continue
                reply = self._scripted("DATA", "354 End data with <CR><LF>.<CR><LF>")
                self._send(h, reply)
                if not reply.startswith("3"):
                    continue
                wire = self._read_data(h)
                if wire is None:
                    return
                txn.wire, txn.data = wire, unstuff(wire)
                txn.reply = self._scripted(".", "250 2.0.0 Ok: queued as PY%d"
                                           % len(self.transactions))
                self._send(h, txn.reply)
                done, txn = txn, None
                if self.after_message is not None:
                    self.after_message(done)
            elif verb == "RSET":
                txn = None
                self._send(h, self._scripted("RSET", "250 2.0.0 Ok"))
            elif verb == "NOOP":
                self._send(h, "250 2.0.0 Ok")
            elif verb == "QUIT":
                self._send(h, "221 2.0.0 Bye")
                return
            else:
                self._send(h, "502 5.5.2 Error: command not recognized")

    def _hello_reply(self, verb):
        if verb == "HELO":
            return "250 " + self.name
        lines = [self.name] + list(self.EHLO_KEYWORDS)
        return "\r\n".join("250-" + l for l in lines[:-1]) + "\r\n250 " + lines[-1]

    @staticmethod
    def _read_data(h):
        """The DATA bytes up to (not including) the line ".\\r\\n"; None at EOF."""
        buf = bytearray()
        while True:
            raw = h.rfile.readline(65536)
            if not raw:
                return None
            if raw == b".\r\n":
                return bytes(buf)
            buf += raw


# ---- a real Postfix as receiving MX -----------------------------------------------------------

class PostfixMX:
    """A private Postfix instance receiving mail for `domain` on addr:port into one Maildir
    (ROOT/mail/box/, via virtual(8) as uid/gid 65534). Own config dir, queue and data dir under
    root, started as `master -c CONF -d` (foreground), as bench/peers/postfix-common.sh does;
    /etc/postfix is only read (dynamicmaps.cf), never changed. Needs root (the queue dirs
    belong to the postfix user)."""

    def __init__(self, root, addr, port, domain="pf.test"):
        self.root = os.path.join(root, "postfix-%s" % addr)
        self.addr, self.port, self.domain = addr, port, domain
        self.conf = os.path.join(self.root, "conf")
        self.queue = os.path.join(self.root, "queue")
        self.data = os.path.join(self.root, "data")
        self.mail = os.path.join(self.root, "mail")
        self.box = os.path.join(self.mail, "box")
        self.maillog = os.path.join(self.root, "maillog")
        self.stderr_path = os.path.join(self.root, "master.stderr")
        self.proc = None

    def _main_cf(self):
        # inet_interfaces must name a configured interface address (127.0.0.x other than .1
        # is not one: master exits); smtpd binds the explicit address of its master.cf line.
        # maillog_file_prefixes admits a log file in the temp dir (default: /var, /dev/stdout).
        # local_header_rewrite_clients empty: the message is stored exactly as received.
        return """\
compatibility_level = 3.6
queue_directory = {queue}
data_directory = {data}
mail_owner = postfix
myhostname = pf-mx.test
mydomain = pf-mx.test
myorigin = pf-mx.test
mydestination =
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
smtpd_relay_restrictions = permit_mynetworks, reject
smtpd_peername_lookup = no
smtpd_banner = $myhostname ESMTP posthorn-relay-test
local_header_rewrite_clients =
biff = no
alias_maps =
alias_database =
local_recipient_maps =
relay_domains =
maillog_file = {maillog}
maillog_file_prefixes = {root}
virtual_mailbox_domains = {domain}
virtual_mailbox_base = {mail}
virtual_mailbox_maps = static:box/
virtual_uid_maps = static:65534
virtual_gid_maps = static:65534
virtual_transport = virtual
""".format(queue=self.queue, data=self.data, maillog=self.maillog,
           root=self.root, domain=self.domain, mail=self.mail)

    def _master_cf(self):
        services = [
            "%s:%d inet n - n - - smtpd" % (self.addr, self.port),
            "cleanup unix n - n - 0 cleanup",
            "qmgr unix n - n 300 1 qmgr",
            "rewrite unix - - n - - trivial-rewrite",
            "bounce unix - - n - 0 bounce",
            "defer unix - - n - 0 bounce",
            "trace unix - - n - 0 bounce",
            "verify unix - - n - 1 verify",
            "flush unix n - n 1000? 0 flush",
            "proxymap unix - - n - - proxymap",
            "showq unix n - n - - showq",
            "error unix - - n - - error",
            "retry unix - - n - - error",
            "discard unix - - n - - discard",
            "anvil unix - - n - 1 anvil",
            "scache unix - - n - 1 scache",
            "postlog unix-dgram n - n - 1 postlogd",
            "virtual unix - n n - - virtual",
        ]
        return "\n".join(services) + "\n"

    def _make_dirs(self):
        """Queue directories with the owners and modes of /etc/postfix/postfix-files (done by
        hand: `postfix set-permissions` wants a config dir listed in /etc/postfix/main.cf)."""
        pf = pwd.getpwnam("postfix")
        postdrop = grp.getgrnam("postdrop").gr_gid
        nobody = pwd.getpwnam(UNPRIVILEGED)

        def mk(path, mode, uid=0, gid=0):
            os.makedirs(path, exist_ok=True)
            os.chown(path, uid, gid)
            os.chmod(path, mode)

        mk(self.root, 0o755)
        mk(self.conf, 0o755)
        mk(self.queue, 0o755)
        mk(os.path.join(self.queue, "pid"), 0o755)
        for d in ("active", "bounce", "corrupt", "defer", "deferred", "flush", "hold",
                  "incoming", "private", "saved", "trace"):
            mk(os.path.join(self.queue, d), 0o700, pf.pw_uid, 0)
        mk(os.path.join(self.queue, "maildrop"), 0o730, pf.pw_uid, postdrop)
        mk(os.path.join(self.queue, "public"), 0o710, pf.pw_uid, postdrop)
        mk(self.data, 0o700, pf.pw_uid, 0)
        mk(self.mail, 0o700, nobody.pw_uid, nobody.pw_gid)
        for d in (self.box, os.path.join(self.box, "tmp"), os.path.join(self.box, "new"),
                  os.path.join(self.box, "cur")):
            mk(d, 0o700, nobody.pw_uid, nobody.pw_gid)

    def start(self):
        if not os.access(POSTFIX_MASTER, os.X_OK):
            raise unittest.SkipTest("%s is not installed (Debian package postfix)" % POSTFIX_MASTER)
        if os.geteuid() != 0:  # CI runs as root; a missing binary is the only reason to skip
            raise AssertionError("a private Postfix instance needs root "
                                 "(its queue belongs to the postfix user)")
        self._make_dirs()
        with open(os.path.join(self.conf, "main.cf"), "w") as f:
            f.write(self._main_cf())
        with open(os.path.join(self.conf, "master.cf"), "w") as f:
            f.write(self._master_cf())
        with open(self.stderr_path, "wb") as err:
            self.proc = subprocess.Popen([POSTFIX_MASTER, "-c", self.conf, "-d"],
                                         stdin=subprocess.DEVNULL, stdout=err, stderr=err,
                                         start_new_session=True)
        _wait_listening(self.proc, self.addr, self.port, "postfix master", self.log)
        return self

    def stop(self):
        _stop_process(self.proc)

    def log(self):
        return "--- maillog\n%s\n--- master stderr\n%s" % (_tail(self.maillog),
                                                             _tail(self.stderr_path))

    def delivered(self):
        """Message files in the Maildir's new/, oldest first."""
        d = os.path.join(self.box, "new")
        try:
            names = os.listdir(d)
        except OSError:
            return []
        paths = [os.path.join(d, n) for n in names]
        return sorted(paths, key=lambda p: (os.stat(p).st_mtime, p))

    def wait_delivered(self, n, timeout=WAIT):
        try:
            return wait_until(lambda: len(self.delivered()) >= n and self.delivered(), timeout,
                              "%d message(s) in Postfix's Maildir" % n)
        except AssertionError as e:
            raise AssertionError("%s\n%s" % (e, self.log())) from None


def split_trace_headers(data, names=(b"Return-Path:", b"X-Original-To:", b"Delivered-To:",
                                     b"Received:")):
    """Splits a stored message (LF line ends) into (list of the leading trace header fields,
    each unfolded, as str; the rest). Stops at the first field not named in names."""
    fields = []
    lines = data.split(b"\n")
    i = 0
    while i < len(lines) and lines[i].startswith(names):
        field = lines[i]
        i += 1
        while i < len(lines) and lines[i][:1] in (b" ", b"\t"):
            field += b" " + lines[i].strip()
            i += 1
        fields.append(field.decode("utf-8", "replace"))
    return fields, b"\n".join(lines[i:])


# ---- the test case base -----------------------------------------------------------------------

def mx(domain, *hosts):
    """DNS table entries: domain's MX records and each exchanger's A record.
    hosts: (preference, name, address)."""
    table = {(domain, "MX"): [(pref, name) for pref, name, _ in hosts]}
    for _, name, addr in hosts:
        table[(name, "A")] = [addr]
    return table


def norm(text):
    """Whitespace folded: for comparing header fields and replies."""
    return " ".join(str(text).split())


class RelayCase(PosthornTestCase):
    """Starts fake DNS, receivers and `posthorn serve` for relay tests; all stopped by cleanups.
    self.port is the MX port P (free on every MX address)."""

    def setUp(self):
        self.dir = self.tmpdir()
        os.chmod(self.dir, 0o755)  # smtp-sink (nobody) and Postfix's users work below it
        self.qdir = os.path.join(self.dir, "q")
        self.mail = os.path.join(self.dir, "mail")
        self.conf_path = os.path.join(self.dir, "posthorn.conf")
        self.port = pick_mx_port()
        self.dns = None

    # -- the pieces --
    def start_dns(self, table):
        """FakeDNS with table {(name, type): records or special}; returns it."""
        self.dns = FakeDNS(table).start()
        self.addCleanup(self.dns.stop)
        return self.dns

    def sink(self, addr, *options, port=None):
        s = SmtpSink(self.dir, addr, port or self.port, options)
        self.addCleanup(s.stop)
        return s.start()

    def receiver(self, addr, port=None, **kw):
        r = PyReceiver(addr, port or self.port, **kw)
        self.addCleanup(r.stop)
        return r.start()

    def postfix(self, addr, domain="pf.test", port=None):
        p = PostfixMX(self.dir, addr, port or self.port, domain)
        self.addCleanup(p.stop)
        return p.start()

    # -- the daemon --
    def conf(self, extra="", retry="1s", sections=""):
        """The daemon's config: relaying for 127.0.0.0/8 through the fake DNS, every MX on
        self.port, short timeouts; example.org local (alice, bob, postmaster in Maildirs)."""
        if self.dns is None:
            raise AssertionError("start_dns() before conf()")
        return ("hostname = %s\n"
                "delivery = queue\n"
                "queue_dir = %s\n"
                "queue_retry_schedule = %s\n"
                "relay_networks = 127.0.0.0/8\n"
                "dns_forwarders = %s\n"
                "dns_timeout = 2s\n"
                "smtp_mx_port = %d\n"
                "smtp_connect_stagger = 250ms\n"
                "smtp_connect_timeout = 5s\n"
                "smtp_command_timeout = 5s\n"
                "%s"
                "[listener mx]\n"
                "listen = 127.0.0.1:0\n"
                "[domain example.org]\n"
                "maildir = %s/%%d/%%u/Maildir\n"
                "users = alice bob postmaster\n"
                "%s" % (HOSTNAME, self.qdir, retry, self.dns.forwarder, self.port, extra,
                        self.mail, sections))

    def serve(self, text=None, check_exit=True):
        """Writes the config (default: conf()) and starts `posthorn serve --config`."""
        with open(self.conf_path, "w") as f:
            f.write(self.conf() if text is None else text)
        d = Daemon([BIN, "serve", "--config", self.conf_path], listeners=1)
        self.addCleanup(self._finish, d, check_exit)
        d.start()
        return d

    def send(self, d, rcpts, body, sender=SENDER, smtputf8=False):
        """One SMTP transaction to the daemon (smtplib: it dot-stuffs and ends the data with
        CRLF), with MAIL ... SMTPUTF8 if asked; returns the queue id from the 250."""
        s = smtplib.SMTP("127.0.0.1", d.port, local_hostname=HELO, timeout=TIMEOUT)
        try:
            s.ehlo(HELO)
            if smtputf8:
                self.assertTrue(s.has_extn("smtputf8"), "the daemon does not offer SMTPUTF8")
            code, text = s.mail(sender, options=["SMTPUTF8"] if smtputf8 else [])
            self.assertEqual(code, 250, text)
            for r in rcpts:
                code, text = s.rcpt(r)
                self.assertEqual(code, 250, (r, text))
            code, text = s.data(body)
            self.assertEqual(code, 250, text)
            return queued_qid_text(text)
        finally:
            try:
                s.quit()
            except (smtplib.SMTPException, OSError):
                s.close()

    # -- the queue and the sender's Maildir --
    def queued(self):
        q = os.path.join(self.qdir, "queue")
        try:
            return sorted(n[:-4] for n in os.listdir(q) if n.endswith(".env"))
        except FileNotFoundError:
            return []

    def queue_cmd(self, *args, expect_rc=0):
        p = subprocess.run([BIN, "queue", "--config", self.conf_path] + list(args),
                           capture_output=True, timeout=TIMEOUT)
        self.assertEqual(p.returncode, expect_rc, (args, p.stdout, p.stderr))
        return p.stdout.decode("utf-8", "replace")

    def wait_queue_empty(self, timeout=WAIT):
        try:
            wait_until(lambda: self.queued() == [], timeout, "the queue to empty")
        except AssertionError as e:
            raise AssertionError("%s; queue list:\n%s" % (e, self.queue_cmd("list"))) from None

    def maildir_new(self, user="alice", domain="example.org"):
        d = os.path.join(self.mail, domain, user, "Maildir", "new")
        try:
            return sorted(os.path.join(d, n) for n in os.listdir(d))
        except FileNotFoundError:
            return []

    def wait_bounce(self, user="alice", timeout=WAIT):
        """The first DSN in user's Maildir, parsed: (message, per-recipient status block)."""
        files = wait_until(lambda: self.maildir_new(user), timeout, "a bounce for " + user)
        msg = email.message_from_bytes(read_file(files[0]), policy=email.policy.default)
        self.assertEqual(msg.get_content_type(), "multipart/report", msg)
        parts = msg.get_payload()
        self.assertEqual(parts[1].get_content_type(), "message/delivery-status")
        blocks = parts[1].get_payload()
        self.assertGreaterEqual(len(blocks), 2, "no per-recipient block in the DSN")
        return msg, blocks[1]
