#!/usr/bin/python3
"""relay_bench.py - relay throughput to a local smtp-sink MX, Posthorn against Postfix.

Issue 5, "Performance": messages accepted over SMTP from 50 parallel sessions and relayed to
an MX on this machine, Posthorn (`serve`, delivery = queue, relay_networks = 127.0.0.0/8) side
by side with Postfix relaying to the same sink (bench/peers/postfix-relay.sh), both queues on
the same disk, in one interleaved run (every round visits every peer, rotating the start).

  bench/relay_bench.py [--rounds 3] [--messages 10000] [--sessions 50] [--size 4096]
                       [--posthorn build/posthorn] [--variants w1,w2] [--no-posthorn]
                       [--no-postfix] [--alt-posthorn PATH] [--count-messages 0]

Variants as in maildir_bench.py: `wN` is Posthorn with N worker processes, `wNcM` also sets
queue_concurrency = M, `...dK` destination_concurrency = K (defaults 20 and 10), e.g.
--variants w1,w2,w1d20. --alt-posthorn PATH runs every variant also with a second binary
(peers posthorn-alt-*): A/B of a patch.

The receiving MX: Postfix's smtp-sink on 127.0.0.2:--sink-port (one process, greeting as
mx.sink.test), started afresh for every run, dumping each transaction to its own file in a
directory under /dev/shm (tmpfs: the sink's writes do not compete with the queues' disk). The
file's mtime is when the sink got the message's final "." (tmpfs keeps fine-grained times).
Posthorn finds it by DNS: a FakeDNS (tests/integration/fakedns.py, in this process, TTL 1 h so
the resolver may cache) answers sink.test MX 10 mx.sink.test, mx.sink.test A 127.0.0.2, and
smtp_mx_port points to the sink's port. Postfix needs no DNS (transport map to [127.0.0.2]).

Load: a load generator in this file (`relay_bench.py source ...`, one process, epoll, lockstep
like smtp-source, one message per connection): --sessions parallel sessions, N messages of
--size bytes (headers included) from a@x.test to b@sink.test, each with its own Message-ID, and
the time of each 250 after the final "." recorded (it reaches ~2,700 msg/s against smtp-sink
alone on the 2-core test machine, at ~0.2 ms of CPU per message, like smtp-source). Measured
per run:
  accept   N / seconds from the first connection to the last 250 (each 250 = queued durably)
  e2e      N / seconds from the first connection until the sink got the last message
  latency  per message, from the 250 to the client until the sink got it: p50, p99, max
  CPU      the server's whole process tree from /proc (utime+stime, plus cutime+cstime of reaped
           children) from the start of the load until the end of delivery, per message; the
           load generator's CPU (wait4), the sink's, and the rest of the machine separately
A run is a FAILURE and not rated unless the load had no error, the sink got exactly N complete
messages (N files, N distinct Message-IDs of this run, no duplicate, none incomplete) and the
server's queue ended empty. A server that does not deliver fails the run after --stall-timeout
seconds without progress at the sink (or --drain-timeout in all), naming its log file.
--count-messages M adds one counting run per peer with fsync/fdatasync counts per message, as
in maildir_bench.py.

Rows are appended to bench/results/relay-bench.jsonl, and the run's summary (medians per peer
and every row) is written to bench/results/relay-bench-TAG.json. Queues and server logs are
under $BENCH_STATE (/var/tmp/smtpbench). Runs inside a private network namespace (loopback
only, via compare.ensure_netns); every process started is stopped at the end, also on errors,
Ctrl-C, SIGTERM and SIGHUP, and every run is bounded in time.
"""
import argparse, json, math, os, pwd, re, resource, secrets, selectors, shutil, signal, socket
import subprocess, sys, tempfile, time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
import compare  # noqa: E402  ensure_netns, SHARED (the peer harness)
import tls_bench  # noqa: E402  Client (bounded child with rusage), med, spread, sha256
import maildir_bench  # noqa: E402  queued, count_files, SyncCounter
sys.path.insert(0, compare.SHARED)
import smtpbench as sb  # noqa: E402  Server (start/stop by pid), /proc accounting, quiet wait
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
from fakedns import FakeDNS  # noqa: E402

SINK_HOST = "127.0.0.2"
SINK_DOMAIN = "sink.test"
SINK_MX = "mx.sink.test"
SMTP_SINK = os.environ.get("SMTP_SINK", "/usr/sbin/smtp-sink")
SENDER, RECIPIENT = "a@x.test", "b@" + SINK_DOMAIN
END_MARK = b"--relaybench end of message--"
POSTFIX_SCRIPT = os.path.join(HERE, "peers", "postfix-relay.sh")
POSTFIX_STATE = os.path.join(sb.STATE, "postfix-relay-issue5")   # as in postfix-relay.sh
POSTFIX_QUEUES = ("incoming", "active", "deferred", "maildrop", "hold")
POSTHORN_STATE = os.path.join(sb.STATE, "posthorn-relay-issue5")
RESULTS_DIR = os.path.join(HERE, "results")
RESULTS = os.path.join(RESULTS_DIR, "relay-bench.jsonl")


# ---- the load generator (`relay_bench.py source ...`, a child process) ----------------------

# The reply each step waits for, and the step after it.
EXPECT = {"greet": b"220", "ehlo": b"250", "mail": b"250", "rcpt": b"250", "data": b"354",
          "dot": b"250", "quit": b"221"}
NEXT = {"greet": "ehlo", "ehlo": "mail", "mail": "rcpt", "rcpt": "data", "data": "dot",
        "dot": "quit"}


def message_parts(size, run_id):
    """The message around its sequence number: (head, tail); head + b"%08d" % seq + tail is the
    whole message with its final ".", about `size` bytes. The Message-ID carries the sequence
    number and the run id, so the sink's copy can be matched to its 250."""
    head = ("From: <%s>\r\nTo: <%s>\r\nSubject: relay bench %s\r\nDate: %s\r\nMessage-ID: <"
            % (SENDER, RECIPIENT, run_id,
               time.strftime("%a, %d %b %Y %H:%M:%S +0000", time.gmtime()))).encode()
    tail = (".%s@relaybench.test>\r\n\r\n" % run_id).encode()
    fill = size - len(head) - 8 - len(tail) - len(END_MARK) - 2
    line = b"x" * 76 + b"\r\n"
    body = line * max(0, fill // len(line)) + b"y" * max(0, fill % len(line) - 2) + b"\r\n"
    return head, tail + body + END_MARK + b"\r\n.\r\n"


class Source:
    """Lockstep SMTP sessions over non-blocking sockets, one message per connection, until
    `messages` sequence numbers are used up (a failed session's number is lost: an error)."""

    def __init__(self, a):
        self.a = a
        self.addr = (a.host, a.port)
        self.head, self.tail = message_parts(a.size, a.run)
        self.sel = selectors.DefaultSelector()
        self.next_seq, self.open = 0, 0
        self.acked = []            # (seq, time.time() of the 250 after ".")
        self.errors, self.first_error = 0, None

    def start_session(self):
        if self.next_seq >= self.a.messages:
            return
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setblocking(False)
        s.connect_ex(self.addr)    # EINPROGRESS; the result shows when it is writable
        st = {"sock": s, "seq": self.next_seq, "step": "connect", "buf": b"", "out": b"",
              "since": time.monotonic(), "events": selectors.EVENT_WRITE}
        self.next_seq += 1
        self.open += 1
        self.sel.register(s, selectors.EVENT_WRITE, st)

    def fail(self, st, what):
        self.errors += 1
        if self.first_error is None:
            self.first_error = "message %d, %s: %s" % (st["seq"], st["step"], what)
        self.close(st)

    def close(self, st):
        self.sel.unregister(st["sock"])
        st["sock"].close()
        self.open -= 1
        self.start_session()

    def send(self, st, data):
        st["out"] = data
        self.flush(st)

    def flush(self, st):
        """Writes what is pending; waits for writability if the socket takes less."""
        try:
            n = st["sock"].send(st["out"])
        except BlockingIOError:
            n = 0
        except OSError as e:
            return self.fail(st, "send: %s" % e)
        st["out"] = st["out"][n:]
        self.watch(st, selectors.EVENT_WRITE if st["out"] else selectors.EVENT_READ)

    def watch(self, st, events):
        if st["events"] != events:   # one epoll_ctl per change, not per command
            st["events"] = events
            self.sel.modify(st["sock"], events, st)

    def command(self, st):
        """What to send on entering st's step."""
        step = st["step"]
        if step == "ehlo":
            return b"EHLO client.test\r\n"
        if step == "mail":
            return b"MAIL FROM:<%s>\r\n" % SENDER.encode()
        if step == "rcpt":
            return b"RCPT TO:<%s>\r\n" % RECIPIENT.encode()
        if step == "data":
            return b"DATA\r\n"
        if step == "dot":
            return self.head + b"%08d" % st["seq"] + self.tail
        return b"QUIT\r\n"

    def writable(self, st):
        if st["step"] != "connect":
            return self.flush(st)
        err = st["sock"].getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if err:
            return self.fail(st, os.strerror(err))
        st["step"] = "greet"
        self.watch(st, selectors.EVENT_READ)

    def readable(self, st):
        try:
            data = st["sock"].recv(65536)
        except BlockingIOError:
            return
        except OSError as e:
            return self.fail(st, "recv: %s" % e)
        if not data:
            return self.fail(st, "connection closed by the server")
        st["buf"] += data
        buf = st["buf"]
        if not buf.endswith(b"\n"):
            return
        last = buf[buf.rfind(b"\n", 0, len(buf) - 1) + 1:]
        if last[3:4] == b"-":      # a multi-line reply goes on
            return
        st["buf"], st["since"] = b"", time.monotonic()
        if last[:3] != EXPECT[st["step"]]:
            return self.fail(st, last.decode(errors="replace").strip())
        if st["step"] == "dot":
            self.acked.append((st["seq"], time.time()))
        if st["step"] == "quit":
            return self.close(st)
        st["step"] = NEXT[st["step"]]
        self.send(st, self.command(st))

    def expire(self, limit):
        now = time.monotonic()
        for key in list(self.sel.get_map().values()):
            if now - key.data["since"] > limit:
                self.fail(key.data, "no reply for %.0f s" % limit)

    def run(self):
        """Returns the summary printed as JSON; the 250 times go to --out."""
        t_start = time.time()
        deadline = time.monotonic() + self.a.deadline
        for _ in range(min(self.a.sessions, self.a.messages)):
            self.start_session()
        last_check = time.monotonic()
        while self.open and time.monotonic() < deadline:
            for key, ev in self.sel.select(timeout=1.0):
                if ev & selectors.EVENT_WRITE:
                    self.writable(key.data)
                else:
                    self.readable(key.data)
            if time.monotonic() - last_check >= 1.0:
                last_check = time.monotonic()
                self.expire(self.a.io_timeout)
        timed_out = self.open > 0
        for key in list(self.sel.get_map().values()):
            key.data["sock"].close()
        with open(self.a.out, "w") as f:
            f.writelines("%d %.6f\n" % sa for sa in self.acked)
        return {"acked": len(self.acked), "errors": self.errors, "first_error": self.first_error,
                "timed_out": timed_out, "unsent": self.a.messages - self.next_seq,
                "t_start": t_start, "t_last": max((t for _, t in self.acked), default=None)}


def source_main(argv):
    ap = argparse.ArgumentParser(prog="relay_bench.py source",
                                 description="the benchmark's load generator")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--sessions", type=int, default=50)
    ap.add_argument("--messages", type=int, default=1000)
    ap.add_argument("--size", type=int, default=4096)
    ap.add_argument("--run", required=True, help="run id (hex) in every Message-ID")
    ap.add_argument("--out", required=True, help="file for 'SEQ TIME' of every 250 after '.'")
    ap.add_argument("--deadline", type=float, default=300)
    ap.add_argument("--io-timeout", type=float, default=60)
    a = ap.parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    print(json.dumps(Source(a).run()), flush=True)


# ---- the receiving MX ------------------------------------------------------------------------

class Sink:
    """smtp-sink on SINK_HOST:port dumping every transaction to its own file in a fresh
    directory under /dev/shm (the file appears at DATA, empty, and is written at the "."),
    started and stopped by pid; cleanup() removes the directory."""

    def __init__(self, port):
        self.port, self.proc = port, None
        self.dir = tempfile.mkdtemp(prefix="relay-bench-sink-", dir="/dev/shm")
        self.log = os.path.join(sb.STATE, "logs", "relay-smtp-sink.log")
        self.root = os.geteuid() == 0
        if self.root:   # smtp-sink must drop to a user when started as root
            os.chown(self.dir, pwd.getpwnam("nobody").pw_uid, -1)

    def start(self, timeout=10):
        os.makedirs(os.path.dirname(self.log), exist_ok=True)
        cmd = [SMTP_SINK] + (["-u", "nobody"] if self.root else []) + [
            "-h", SINK_MX, "-m", "1000", "-d", os.path.join(self.dir, "m."),
            "%s:%d" % (SINK_HOST, self.port), "1000"]
        with open(self.log, "ab") as log:
            log.write(("\n=== start %s\n" % time.ctime()).encode())
            log.flush()
            self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                         start_new_session=True)
        t0 = time.monotonic()
        while time.monotonic() - t0 < timeout:
            if self.proc.poll() is not None:
                raise RuntimeError("smtp-sink exited with %s at start; see %s"
                                   % (self.proc.returncode, self.log))
            if self.answers():
                return
            time.sleep(0.05)
        raise RuntimeError("smtp-sink not answering on %s:%d; see %s"
                           % (SINK_HOST, self.port, self.log))

    def answers(self):
        try:
            with socket.create_connection((SINK_HOST, self.port), timeout=2) as s:
                return s.recv(512).startswith(b"220")
        except OSError:
            return False

    def received(self):
        """Transactions seen (files, including ones still being written)."""
        return maildir_bench.count_files(self.dir)

    def cpu(self):
        return sb.proc_cpu({self.proc.pid}) if self.proc else 0.0

    def stop(self):
        if not self.proc:
            return
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.proc = None

    def cleanup(self):
        shutil.rmtree(self.dir, ignore_errors=True)


MSGID = re.compile(rb"^Message-ID:[ \t]*<(\d{8})\.([0-9a-f]+)@relaybench\.test>", re.M | re.I)


def read_sink(dirpath, run_id):
    """What the sink got: {seq: mtime} of complete messages of this run, and the counts of
    files, duplicates, incomplete files and files of no (or another) run."""
    got, c = {}, {"files": 0, "dups": 0, "incomplete": 0, "foreign": 0}
    with os.scandir(dirpath) as it:
        for e in it:
            c["files"] += 1
            st = e.stat()
            with open(e.path, "rb") as f:
                data = f.read()
            if END_MARK not in data[-256:]:
                c["incomplete"] += 1
                continue
            m = MSGID.search(data, 0, 16384)
            if not m or m.group(2).decode() != run_id:
                c["foreign"] += 1
                continue
            seq = int(m.group(1))
            if seq in got:
                c["dups"] += 1
            got[seq] = min(got.get(seq, st.st_mtime), st.st_mtime)
    return got, c


def read_acks(path):
    acks = {}
    for line in open(path) if os.path.exists(path) else []:
        seq, t = line.split()
        acks[int(seq)] = float(t)
    return acks


def percentile(sorted_xs, p):
    """Nearest rank; None for no values."""
    if not sorted_xs:
        return None
    return sorted_xs[max(0, math.ceil(p / 100 * len(sorted_xs)) - 1)]


# ---- peers -----------------------------------------------------------------------------------

def posthorn_peer(binary, spec, port, prefix="posthorn"):
    """A Posthorn variant from "wN[cM][dK]"; its files live under POSTHORN_STATE/<name>."""
    m = re.fullmatch(r"w(\d+)(?:c(\d+))?(?:d(\d+))?", spec)
    if not m:
        sys.exit("bad variant %r (wN, wNcM, wNdK or wNcMdK)" % spec)
    name = prefix + "-" + spec
    base = os.path.join(POSTHORN_STATE, name)
    conf = os.path.join(base, "posthorn.conf")
    return {"name": name, "port": port, "custom": True, "kind": "posthorn", "base": base,
            "conf": conf, "workers": int(m.group(1)), "concurrency": m.group(2),
            "dest_concurrency": m.group(3),
            "queues": [os.path.join(base, "queue", d) for d in ("incoming", "queue")],
            # stderr goes to smtpbench's log file; log_level warn as a production setting would
            "argv": ["sh", "-c", "exec %s serve --config %s" % (binary, conf)]}


def postfix_peer(port, sink_port):
    return {"name": "postfix-relay", "port": port, "custom": False, "kind": "postfix",
            "argv": ["env", "BENCH_RELAY_SINK=%s:%d" % (SINK_HOST, sink_port), POSTFIX_SCRIPT],
            "queues": [os.path.join(POSTFIX_STATE, "queue", d) for d in POSTFIX_QUEUES]}


def prepare(peer, sink_port, forwarder):
    """Empty queue and a fresh configuration before a start (the server is stopped)."""
    if peer["kind"] == "postfix":
        subprocess.run([POSTFIX_SCRIPT, "clean"], check=True)
        return
    shutil.rmtree(peer["base"], ignore_errors=True)
    os.makedirs(peer["base"])
    extra = "".join("%s = %s\n" % (k, v) for k, v in (
        ("queue_concurrency", peer["concurrency"]),
        ("destination_concurrency", peer["dest_concurrency"])) if v)
    with open(peer["conf"], "w") as f:
        f.write("hostname = bench.test\nlog_level = warn\nworkers = %d\ndelivery = queue\n"
                "queue_dir = %s\n%srelay_networks = 127.0.0.0/8\ndns_forwarders = %s\n"
                "smtp_tls = none\n# FOR TESTS ONLY: the sink's port instead of 25\n"
                "smtp_mx_port = %d\n"
                "[listener mx]\nlisten = 127.0.0.1:%d\nmax_per_ip = 0\n"
                % (peer["workers"], os.path.join(peer["base"], "queue"), extra, forwarder,
                   sink_port, peer["port"]))


def server_log(peer):
    """Where a failed run's server log is: smtpbench's log of the peer's stderr, or for
    Postfix a copy of its maillog (the instance's own is removed with its state)."""
    if peer["kind"] == "postfix":
        return os.path.join(sb.STATE, "logs", peer["name"] + ".maillog")
    return os.path.join(sb.STATE, "logs", peer["name"] + ".log")


def keep_log(peer):
    """Copies Postfix's maillog where server_log() says (after a failed run)."""
    if peer["kind"] == "postfix" and os.path.exists(os.path.join(POSTFIX_STATE, "maillog")):
        shutil.copyfile(os.path.join(POSTFIX_STATE, "maillog"), server_log(peer))


def dns_zone():
    return {(SINK_DOMAIN, "MX"): [(10, SINK_MX)], (SINK_MX, "A"): [SINK_HOST]}


# ---- one run ---------------------------------------------------------------------------------

def source_cmd(args, n, port, out, run_id):
    return [sys.executable, os.path.abspath(__file__), "source", "--port", str(port),
            "--sessions", str(args.sessions), "--messages", str(n), "--size", str(args.size),
            "--run", run_id, "--out", out, "--deadline", str(args.timeout)]


def wait_sink(srv, peer, sink, expected, args):
    """Polls until the sink has `expected` transactions and the server's queue is empty.
    Returns "" or why it gave up: the server died, no progress at the sink for
    --stall-timeout s, or --drain-timeout s in all. Sleeps by the remaining work so the
    counting costs little CPU (the times come from the sink's files, not from here)."""
    t0 = time.monotonic()
    last, t_progress, rate = -1, t0, 0.0
    while True:
        now = time.monotonic()
        got = sink.received()
        if got >= expected:
            q = maildir_bench.queued(peer)
            if q == 0:
                return ""
        if srv.proc.poll() is not None:
            return "server died (exit %s; see %s)" % (srv.proc.returncode, server_log(peer))
        if got > last:
            if last >= 0 and now > t_progress:
                rate = (got - last) / (now - t_progress)
            last, t_progress = got, now
        elif now - t_progress > args.stall_timeout:
            return ("stalled: nothing new at the sink for %.0f s (%d of %d there, %d files in "
                    "the queue; see %s)" % (args.stall_timeout, got, expected,
                                           maildir_bench.queued(peer), server_log(peer)))
        if now - t0 > args.drain_timeout:
            return ("delivery timed out after %.0f s (%d of %d at the sink, %d files in the "
                    "queue; see %s)" % (args.drain_timeout, got, expected,
                                       maildir_bench.queued(peer), server_log(peer)))
        left = expected - got
        time.sleep(min(0.5, max(0.02, 0.5 * left / rate)) if rate and left > 0 else 0.1)


def load_verdict(cl, res, n, args):
    """Why the load failed, or ""."""
    err = cl.out.get("stderr", b"").decode(errors="replace").strip()
    if cl.timed_out:
        return "load generator killed at its time limit"
    if cl.proc.returncode or not res:
        return "load generator exit %s: %s" % (cl.proc.returncode, err[-300:])
    if res["timed_out"]:
        return "load timed out after %s s (%d of %d acknowledged)" % (args.timeout,
                                                                      res["acked"], n)
    if res["errors"]:
        return "load: %d of %d failed (first: %s)" % (res["errors"], n, res["first_error"])
    return ""


def measure(peer, sink, n, args, dns, tmp, count_tool):
    """Starts the sink and the peer, sends n messages, waits until the sink has them all (or
    gives up), stops both (always). Returns what was measured; the sink's files stay."""
    m = {"run_id": secrets.token_hex(4), "acks": os.path.join(tmp, "acks"), "why": "",
         "res": {}, "cl": None, "syncs": None}
    srv, counter = sb.Server(peer), None
    try:
        sink.start()
        srv.start()
        m["quiet_wait"], m["pre_busy"] = sb.wait_quiet()
        pids = srv.pids()
        counter = maildir_bench.SyncCounter(pids, count_tool, tmp) if count_tool else None
        dns0 = len(dns.queries)
        cpu0, sink0, busy0, t0 = sb.proc_cpu(pids), sink.cpu(), sb.sys_busy(), time.monotonic()
        cl = m["cl"] = tls_bench.Client(
            source_cmd(args, n, peer["port"], m["acks"], m["run_id"]), args.timeout + 30)
        pids |= srv.pids()
        m["srv_cpu_accept"] = sb.proc_cpu(pids) - cpu0
        for line in cl.out.get("stdout", b"").decode(errors="replace").splitlines():
            if line.startswith("{"):
                m["res"] = json.loads(line)
        m["why"] = load_verdict(cl, m["res"], n, args)
        if not m["why"]:
            m["why"] = wait_sink(srv, peer, sink, m["res"]["acked"], args)
        pids |= srv.pids()
        m["srv_cpu"], m["sink_cpu"] = sb.proc_cpu(pids) - cpu0, sink.cpu() - sink0
        m["busy"], m["dns_queries"] = sb.sys_busy() - busy0, len(dns.queries) - dns0
        m["wall"] = time.monotonic() - t0   # the interval of the CPU figures
    finally:
        try:
            if counter:   # also on errors: no perf/strace is left attached
                m["syncs"] = counter.stop()
        finally:
            try:
                srv.stop()
            finally:
                sink.stop()
    return m


def run_once(peer, n, args, rnd, tag, dns, count_tool=None):
    """One rated run on empty state: measure(), then the sink's files against the 250s."""
    prepare(peer, args.sink_port, dns.forwarder)
    sink = Sink(args.sink_port)
    tmp = tempfile.mkdtemp(prefix="relay-bench-")
    try:
        m = measure(peer, sink, n, args, dns, tmp, count_tool)
        got, c = read_sink(sink.dir, m["run_id"])
        acks = read_acks(m["acks"])
    finally:
        sink.cleanup()
        shutil.rmtree(tmp, ignore_errors=True)
    why, res, cl = m["why"], m["res"], m["cl"]
    q = maildir_bench.queued(peer)
    missing = len(set(acks) - set(got))
    if not why and (c["files"] != n or len(got) != n or c["dups"] or c["incomplete"]
                    or c["foreign"] or missing or q):
        why = ("the sink got %d files for %d messages: %d distinct of this run, %d duplicates, "
               "%d incomplete, %d foreign, %d acknowledged but missing; %d queue files left"
               % (c["files"], n, len(got), c["dups"], c["incomplete"], c["foreign"], missing, q))
    if why:
        keep_log(peer)
    lat = sorted(1e3 * (got[s] - t) for s, t in acks.items() if s in got)
    t_start, t_last = res.get("t_start"), res.get("t_last")
    accept_s = (t_last - t_start) if t_start and t_last else None
    e2e_s = (max(got.values()) - t_start) if got and t_start else None
    ru = cl.res[2] if cl.res else None
    cli = ru.ru_utime + ru.ru_stime if ru else 0.0
    r = lambda x, k=3: round(x, k) if x is not None else None
    row = {
        "tag": tag, "ts": time.strftime("%Y-%m-%dT%H:%M:%S"), "peer": peer["name"],
        "round": rnd, "counting": bool(count_tool), "ok": not why, "why": why,
        "messages": n, "sessions": args.sessions, "size": args.size, "run_id": m["run_id"],
        "acked": res.get("acked", 0), "load_errors": res.get("errors"),
        "sink_files": c["files"], "sink_distinct": len(got), "sink_dups": c["dups"],
        "sink_incomplete": c["incomplete"], "sink_foreign": c["foreign"], "missing": missing,
        "queued_left": q, "dns_queries": m["dns_queries"],
        "accept_s": r(accept_s), "e2e_s": r(e2e_s), "wall_s": round(m["wall"], 2),
        "accept_msgs_per_s": round(n / accept_s, 1) if not why else 0.0,
        "e2e_msgs_per_s": round(n / e2e_s, 1) if not why else 0.0,
        "lat_min_ms": r(lat[0] if lat else None, 1), "lat_p50_ms": r(percentile(lat, 50), 1),
        "lat_p99_ms": r(percentile(lat, 99), 1), "lat_max_ms": r(lat[-1] if lat else None, 1),
        "srv_cpu_s": round(m["srv_cpu"], 2), "srv_cpu_accept_s": round(m["srv_cpu_accept"], 2),
        "srv_ms_per_msg": round(1e3 * m["srv_cpu"] / n, 3),
        "srv_cpu_pct": round(100 * m["srv_cpu"] / m["wall"], 1),
        "sink_cpu_s": round(m["sink_cpu"], 2), "cli_cpu_s": round(cli, 2),
        "cli_ms_per_msg": round(1e3 * cli / n, 3),
        "other_cpu_s": round(m["busy"] - m["srv_cpu"] - cli - m["sink_cpu"], 2),
        "sys_busy_pct": round(100 * m["busy"] / m["wall"] / sb.NCPU, 1),
        "quiet_wait_s": m["quiet_wait"], "pre_busy_pct": m["pre_busy"],
        "loadavg": open("/proc/loadavg").read().split()[0],
    }
    maildir_bench.add_syncs(row, m["syncs"], n)
    return row


def show(r):
    extra = maildir_bench.syncs_text(r)
    lat = lambda k: "%.1f" % r[k] if r[k] is not None else "-"
    secs = lambda k: "%.2fs" % r[k] if r[k] is not None else "-"
    print("  %-20s r%d %s accept %7.1f msg/s (%s)  e2e %7.1f msg/s (%s)  latency p50 %s p99 %s "
          "ms  srv %.3f ms/msg %5.1f%%  sink %d/%d  cli %.2fs other %.2fs%s %s" % (
              r["peer"], r["round"], "ok  " if r["ok"] else "FAIL", r["accept_msgs_per_s"],
              secs("accept_s"), r["e2e_msgs_per_s"], secs("e2e_s"), lat("lat_p50_ms"),
              lat("lat_p99_ms"), r["srv_ms_per_msg"], r["srv_cpu_pct"], r["sink_distinct"],
              r["messages"], r["cli_cpu_s"], r["other_cpu_s"], extra, r["why"]), flush=True)


def run_and_record(rows, peer, n, args, rnd, tag, dns, count_tool=None):
    try:
        row = run_once(peer, n, args, rnd, tag, dns, count_tool)
    except Exception as e:   # a peer that does not start costs its run, not the benchmark
        print("  !! %s: %r" % (peer["name"], e), flush=True)
        return
    rows.append(row)
    os.makedirs(RESULTS_DIR, exist_ok=True)
    with open(RESULTS, "a") as f:
        f.write(json.dumps(row) + "\n")
    show(row)


# ---- summary ---------------------------------------------------------------------------------

def medians(rows, reference):
    """Per peer: medians (and spreads) of the good timed runs, ratios to the reference."""
    med = tls_bench.med
    timed = [r for r in rows if not r["counting"]]
    good = lambda p: [r for r in timed if r["peer"] == p and r["ok"]]
    ref = good(reference)
    ref_acc = med([r["accept_msgs_per_s"] for r in ref])
    ref_e2e = med([r["e2e_msgs_per_s"] for r in ref])
    out = {}
    for p in dict.fromkeys(r["peer"] for r in rows):
        g, runs = good(p), [r for r in timed if r["peer"] == p]
        cnt = [r for r in rows if r["peer"] == p and r["counting"] and r["ok"]]
        s = {"runs": len(runs), "runs_ok": len(g), "sink_got": [r["sink_distinct"] for r in runs],
             "fsyncs_per_msg": cnt[-1]["fsyncs_per_msg"] if cnt else None,
             "syncs": cnt[-1]["syncs"] if cnt else None,
             "syncs_messages": cnt[-1]["messages"] if cnt else None}
        if g:
            for k in ("accept_msgs_per_s", "e2e_msgs_per_s", "lat_p50_ms", "lat_p99_ms",
                      "srv_ms_per_msg", "srv_cpu_pct", "cli_ms_per_msg", "other_cpu_s"):
                xs = [r[k] for r in g if r[k] is not None]
                s[k] = med(xs)
                s[k + "_spread"] = tls_bench.spread(xs).strip()
            ok_ref = ref and ref_acc == ref_acc and ref_acc
            s["accept_ratio"] = round(s["accept_msgs_per_s"] / ref_acc, 2) if ok_ref else None
            s["e2e_ratio"] = round(s["e2e_msgs_per_s"] / ref_e2e, 2) if ok_ref else None
        out[p] = s
    return out


def table(summ, reference):
    out = ["| peer | accept msg/s | end-to-end msg/s | accept / %s | e2e / %s | latency p50 ms "
           "| latency p99 ms | server CPU ms/msg | server CPU %% | fsync+fdatasync per msg "
           "| sink got (per run) | runs ok |" % (reference, reference),
           "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|---|---:|"]
    for p, s in summ.items():
        fs = "-"
        if s["syncs"]:
            fs = "%.2f (%s)" % (s["fsyncs_per_msg"], ", ".join(
                "%s %.2f+%.2f" % (k, v["fsync"] / s["syncs_messages"],
                                  v["fdatasync"] / s["syncs_messages"])
                for k, v in sorted(s["syncs"].items()) if v["fsync"] or v["fdatasync"]))
        got = " ".join(str(x) for x in s["sink_got"]) or "-"
        if not s["runs_ok"]:
            out.append("| %s | %s | %s | | | | | | | %s | %s | 0/%d |" % (
                p, *(["FAIL"] * 2 if s["runs"] else ["-"] * 2), fs, got, s["runs"]))
            continue
        v = lambda k, f="%.0f": (f % s[k] + (" " + s[k + "_spread"] if s[k + "_spread"] else "")
                                 if s[k] is not None else "-")
        r = lambda k: "%.2f" % s[k] if s.get(k) is not None else "-"
        out.append("| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %d/%d |" % (
            p, v("accept_msgs_per_s"), v("e2e_msgs_per_s"), r("accept_ratio"), r("e2e_ratio"),
            v("lat_p50_ms", "%.1f"), v("lat_p99_ms", "%.1f"), v("srv_ms_per_msg", "%.3f"),
            v("srv_cpu_pct"), fs, got, s["runs_ok"], s["runs"]))
    return "\n".join(out)


# ---- main ------------------------------------------------------------------------------------

def parse_args():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                 epilog="`relay_bench.py source --help`: the load generator")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--messages", type=int, default=10000)
    ap.add_argument("--sessions", type=int, default=50)
    ap.add_argument("--size", type=int, default=4096, help="message size in bytes, headers included")
    ap.add_argument("--posthorn", default=os.path.join(ROOT, "build", "posthorn"))
    ap.add_argument("--variants", default="w1",
                    help="Posthorn variants, comma-separated: wN[cM][dK] (workers, "
                    "queue_concurrency, destination_concurrency)")
    ap.add_argument("--alt-posthorn", metavar="PATH",
                    help="A/B: run every variant also with this binary (peers posthorn-alt-...)")
    ap.add_argument("--no-posthorn", action="store_true", help="Postfix only")
    ap.add_argument("--no-postfix", action="store_true")
    ap.add_argument("--sink-port", type=int, default=2525, help="smtp-sink's port on 127.0.0.2")
    ap.add_argument("--count-messages", type=int, default=0,
                    help="messages in each peer's fsync counting run (0: none)")
    ap.add_argument("--fsync-tool", choices=("perf", "strace"),
                    default="perf" if shutil.which("perf") else "strace")
    ap.add_argument("--timeout", type=float, default=300, help="limit of one load run (s)")
    ap.add_argument("--drain-timeout", type=float, default=300,
                    help="limit for the delivery after the load (s)")
    ap.add_argument("--stall-timeout", type=float, default=30,
                    help="give up when nothing new reaches the sink for this long (s)")
    ap.add_argument("--tag")
    args = ap.parse_args()
    if args.no_posthorn:
        args.variants = ""
    return args


def make_peers(args, bindir):
    """Posthorn variants (private copies of the binaries: others may rebuild them while the
    benchmark runs), then Postfix. Returns (peers, [(label, path, copy)])."""
    variants = [v for v in args.variants.split(",") if v]
    bins = [("posthorn", args.posthorn)] + ([("posthorn-alt", args.alt_posthorn)]
                                            if args.alt_posthorn else [])
    peers, copies = [], []
    for j, (label, path) in enumerate(bins if variants else []):
        if not os.access(path, os.X_OK):
            sys.exit("no %s: build first (cmake --build build --target posthorn_bin)" % path)
        copy = os.path.join(bindir, label)
        shutil.copy2(path, copy)
        copies.append((label, path, copy))
        peers += [posthorn_peer(copy, v, 2730 + 100 * j + i, label) for i, v in enumerate(variants)]
    if not args.no_postfix:
        peers.append(postfix_peer(2630, args.sink_port))
    if not peers:
        sys.exit("no peers: give --variants or drop --no-postfix")
    return peers, copies


def write_summary(tag, args, peers, copies, rows, reference):
    summ = medians(rows, reference)
    path = os.path.join(RESULTS_DIR, "relay-bench-%s.json" % tag)
    os.makedirs(RESULTS_DIR, exist_ok=True)
    with open(path, "w") as f:
        json.dump({"tag": tag, "args": vars(args), "reference": reference,
                   "peers": [p["name"] for p in peers],
                   "binaries": {label: {"path": path_, "sha256": tls_bench.sha256(copy)}
                                for label, path_, copy in copies},
                   "summary": summ, "rows": rows}, f, indent=1)
    print()
    print(table(summ, reference))
    print("\nrows: %s\nsummary: %s" % (RESULTS, path))


def main():
    if sys.argv[1:2] == ["source"]:
        return source_main(sys.argv[2:])
    args = parse_args()
    compare.ensure_netns(__file__)
    signal.signal(signal.SIGTERM, lambda *a: sys.exit(143))   # so `finally:` stops the peers
    signal.signal(signal.SIGHUP, lambda *a: sys.exit(129))
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 65536), min(hard, 65536)))
    os.makedirs(sb.STATE, exist_ok=True)
    tag = args.tag or "relay-" + time.strftime("%Y%m%d-%H%M%S")
    bindir = tempfile.mkdtemp(prefix="relay-bench-bin-")
    rows, peers = [], []
    dns = FakeDNS(dns_zone(), ttl=3600)
    try:
        dns.start()
        os.chmod(bindir, 0o755)
        peers, copies = make_peers(args, bindir)
        reference = "postfix-relay" if not args.no_postfix else peers[0]["name"]
        print("# relay_bench tag=%s peers=%s messages=%d sessions=%d size=%d sink=%s:%d dns=%s "
              "state=%s%s" % (tag, ",".join(p["name"] for p in peers), args.messages,
                              args.sessions, args.size, SINK_HOST, args.sink_port, dns.forwarder,
                              sb.STATE, "".join(" %s=%s (sha256 %s)" % (
                                  label, path, tls_bench.sha256(copy)[:12])
                                  for label, path, copy in copies)), flush=True)
        for rnd in range(1, args.rounds + 1):
            k = (rnd - 1) % len(peers)
            order = peers[k:] + peers[:k]
            print("## round %d: %s" % (rnd, " ".join(p["name"] for p in order)), flush=True)
            for p in order:
                run_and_record(rows, p, args.messages, args, rnd, tag, dns)
        if args.count_messages > 0:
            print("## fsync counting (%s, %d messages)" % (args.fsync_tool, args.count_messages),
                  flush=True)
            for p in peers:
                run_and_record(rows, p, args.count_messages, args, 0, tag, dns, args.fsync_tool)
        write_summary(tag, args, peers, copies, rows, reference)
    finally:
        dns.stop()
        shutil.rmtree(bindir, ignore_errors=True)
        shutil.rmtree(POSTHORN_STATE, ignore_errors=True)
        if not args.no_postfix:
            subprocess.run([POSTFIX_SCRIPT, "clean"],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:   # the `finally:` blocks have stopped everything by now
        sys.exit("interrupted")
