#!/usr/bin/python3
"""maildir_bench.py - durable accept and delivery into a Maildir, Posthorn against Postfix.

Posthorn (`serve`, delivery = queue, one [domain] with transport maildir) side by side with
Postfix delivering with virtual(8) into one Maildir (bench/peers/postfix-maildir.sh), on the
same disk, in one interleaved run (every round visits every peer, rotating the start). Issue 4.

  bench/maildir_bench.py [--rounds 3] [--messages 10000] [--sessions 50] [--size 4096]
                         [--posthorn build/posthorn] [--variants w1,w2] [--no-postfix]
                         [--count-messages 2000] [--keep] [--alt-posthorn PATH]

Variants: `wN` is Posthorn with N worker processes, `wNcM` also sets queue_concurrency = M
(default 20), e.g. --variants w1,w2,w1c50,w1c5. --alt-posthorn PATH runs every variant also
with a second binary (peers posthorn-alt-*), interleaved with the first: A/B of a patch.

Load: Postfix's smtp-source, N messages of --size payload bytes over --sessions parallel
sessions, one message per connection (--keep: many per connection), from a@x.test to b@y.test.
Every server starts with an empty queue and an empty Maildir for each run and is stopped after
it. Measured per run:
  accept   N / seconds until smtp-source has its last 250 (each 250 = on disk, fsync'd)
  e2e      N / seconds until all N messages are in the Maildir's new/ and the queue is empty
           (delivery is part of the job: the fair number)
  CPU      the server's whole process tree from /proc (utime+stime, plus cutime+cstime of reaped
           children) from the start of the load until the end of delivery, per message; the
           client's CPU (wait4) and the rest of the machine (kernel threads such as jbd2, other
           programs) separately
A run in which the Maildir does not end with exactly N messages, the queue is not empty, or
smtp-source failed is a FAILURE and is not rated.
Then, per peer, one smaller counting run (--count-messages, same load) with `perf stat -e
syscalls:sys_enter_fsync,...` attached to every process of the server (forked children
inherit the counters), or `strace -f -c` when perf is missing (--fsync-tool): fsync and
fdatasync calls per message, split by process (Posthorn: receiving processes vs the queue
manager; Postfix: master and what it forks - smtpd, cleanup, virtual - vs qmgr).

Rows go to $BENCH_STATE/maildir-bench.jsonl (BENCH_STATE: /var/tmp/smtpbench, where the queues
and Maildirs are too). Runs inside a private network namespace (loopback only, via
compare.ensure_netns); every server is stopped at the end and every run is bounded (--timeout
for the load, --drain-timeout for the delivery).
"""
import argparse, json, os, re, resource, shutil, signal, subprocess, sys, tempfile, time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
import compare  # noqa: E402  ensure_netns, SHARED (the peer harness)
import tls_bench  # noqa: E402  Client (bounded child with rusage), med, spread
sys.path.insert(0, compare.SHARED)
import smtpbench as sb  # noqa: E402  Server (start/stop by pid), /proc accounting, quiet wait

POSTFIX_SCRIPT = os.path.join(HERE, "peers", "postfix-maildir.sh")
POSTFIX_STATE = os.path.join(sb.STATE, "postfix-maildir-issue4")   # as in postfix-maildir.sh
POSTFIX_QUEUES = ("incoming", "active", "deferred", "maildrop", "hold")
POSTHORN_STATE = os.path.join(sb.STATE, "posthorn-maildir-issue4")
SYNC_CALLS = ("fsync", "fdatasync", "sync_file_range", "msync", "syncfs")
RESULTS = os.path.join(sb.STATE, "maildir-bench.jsonl")


# ---- peers ----------------------------------------------------------------------------------

def posthorn_peer(binary, spec, port, prefix="posthorn"):
    """A Posthorn variant from "wN" or "wNcM"; its files live under POSTHORN_STATE/<name>."""
    m = re.fullmatch(r"w(\d+)(?:c(\d+))?", spec)
    if not m:
        sys.exit("bad variant %r (wN or wNcM)" % spec)
    workers, conc = int(m.group(1)), int(m.group(2) or 20)
    name = prefix + "-w%d" % workers + ("-c%d" % conc if m.group(2) else "")
    base = os.path.join(POSTHORN_STATE, name)
    conf = os.path.join(base, "posthorn.conf")
    return {"name": name, "port": port, "custom": True, "kind": "posthorn", "base": base,
            "conf": conf, "workers": workers, "concurrency": conc,
            "maildir": os.path.join(base, "mail", "b", "Maildir"),
            "queues": [os.path.join(base, "queue", d) for d in ("incoming", "queue")],
            # stderr goes to smtpbench's log file; log_level warn as a production setting would
            "argv": ["sh", "-c", "exec %s serve --config %s" % (binary, conf)]}


def postfix_peer(port):
    return {"name": "postfix-maildir", "port": port, "custom": False, "kind": "postfix",
            "argv": [POSTFIX_SCRIPT], "maildir": os.path.join(POSTFIX_STATE, "mail", "box"),
            "queues": [os.path.join(POSTFIX_STATE, "queue", d) for d in POSTFIX_QUEUES]}


def prepare(peer):
    """Empty queue and Maildir before a start (the server is stopped)."""
    if peer["kind"] == "postfix":
        subprocess.run([POSTFIX_SCRIPT, "clean"], check=True)
        return
    shutil.rmtree(peer["base"], ignore_errors=True)
    os.makedirs(peer["base"])
    with open(peer["conf"], "w") as f:
        f.write("hostname = bench.test\nlog_level = warn\nworkers = %d\ndelivery = queue\n"
                "queue_dir = %s\nqueue_concurrency = %d\n"
                "[listener mx]\nlisten = 127.0.0.1:%d\nmax_per_ip = 0\n"
                "[domain y.test]\ntransport = maildir\nmaildir = %s\nusers = b postmaster\n"
                % (peer["workers"], os.path.join(peer["base"], "queue"), peer["concurrency"],
                   peer["port"], os.path.join(peer["base"], "mail", "%u", "Maildir")))


def count_files(d):
    try:
        with os.scandir(d) as it:
            return sum(1 for e in it if e.is_file(follow_symlinks=False))
    except FileNotFoundError:
        return 0


def delivered(peer):
    return count_files(os.path.join(peer["maildir"], "new"))


def queued(peer):
    n = 0
    for d in peer["queues"]:
        for _dir, _subdirs, files in os.walk(d):   # Postfix hashes queue files into subdirs
            n += len(files)
    return n


def wait_delivered(peer, n, t0, limit):
    """Polls until the Maildir holds n messages and the queue is empty. Returns (seconds since
    t0 or None on timeout, messages in new/, files queued). Sleeps by the remaining work so the
    counting costs little CPU; the last steps are 20 ms apart."""
    last, t_last, rate = delivered(peer), time.monotonic(), 0.0
    while True:
        now = time.monotonic()
        got = delivered(peer)
        if got >= n:
            q = queued(peer)
            if q == 0 or got > n:
                return now - t0, got, q
        if now - t0 > limit:
            return None, got, queued(peer)
        if now > t_last and got > last:
            rate = (got - last) / (now - t_last)
        last, t_last = got, now
        time.sleep(min(0.5, max(0.02, 0.5 * (n - got) / rate)) if rate and got < n else 0.02)


# ---- fsync counting -------------------------------------------------------------------------

def proc_label(pid):
    """comm, plus "/qmgr" for a process watching a directory with inotify (Posthorn's queue
    manager is the only one: its workers and parent do not)."""
    try:
        with open("/proc/%d/comm" % pid) as f:
            comm = f.read().strip()
        links = [os.readlink("/proc/%d/fd/%s" % (pid, fd)) for fd in os.listdir("/proc/%d/fd" % pid)]
    except OSError:
        return None
    return comm + ("/qmgr" if "anon_inode:inotify" in links else "")


class SyncCounter:
    """Counts sync system calls of a server's processes and of everything they fork from now on:
    one `perf stat -p PID` per process (counters are inherited by children), or one
    `strace -f -c` over all of them. stop() returns {label: {call: count}}."""

    def __init__(self, pids, tool, outdir):
        self.tool, self.procs = tool, []
        pids = sorted(p for p in pids if proc_label(p))
        if tool == "perf":
            ev = ",".join("syscalls:sys_enter_" + c for c in SYNC_CALLS)
            for p in pids:
                out = os.path.join(outdir, "perf-%d.csv" % p)
                cmd = ["perf", "stat", "-x", ",", "-o", out, "-e", ev, "-p", str(p)]
                self.procs.append((proc_label(p), out, self._spawn(cmd)))
        else:
            out = os.path.join(outdir, "strace.txt")
            cmd = ["strace", "-f", "-c", "-o", out, "-e", "trace=" + ",".join(SYNC_CALLS)]
            for p in pids:
                cmd += ["-p", str(p)]
            self.procs.append(("all", out, self._spawn(cmd)))
        time.sleep(1.0)   # attached before the load starts

    @staticmethod
    def _spawn(cmd):
        return subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)

    def stop(self):
        """Detaches every counter, then reads them; RuntimeError if one wrote nothing (a run
        without counts must not pass for a run without fsyncs)."""
        for _label, _out, p in self.procs:
            p.send_signal(signal.SIGINT)
        for _label, _out, p in self.procs:
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        res = {}
        for label, out, _p in self.procs:
            if not os.path.exists(out):
                raise RuntimeError("%s wrote no counts (%s)" % (self.tool, label))
            got = self._perf(out) if self.tool == "perf" else self._strace(out)
            if self.tool == "perf" and not got:
                raise RuntimeError("perf stat counted nothing for %s: tracepoints?" % label)
            counts = res.setdefault(label, dict.fromkeys(SYNC_CALLS, 0))
            for call, k in got.items():
                counts[call] += k
        return res

    @staticmethod
    def _perf(path):
        got = {}
        for line in open(path) if os.path.exists(path) else []:
            f = line.strip().split(",")
            if len(f) > 2 and f[2].startswith("syscalls:sys_enter_"):
                # "<not counted>": the process never ran while attached (a parent asleep in
                # wait): no calls
                got[f[2][len("syscalls:sys_enter_"):]] = int(f[0]) if f[0].isdigit() else 0
        return got

    @staticmethod
    def _strace(path):
        got = {}
        for line in open(path) if os.path.exists(path) else []:
            f = line.split()
            if len(f) >= 5 and f[-1] in SYNC_CALLS and f[3].isdigit():
                got[f[-1]] = int(f[3])
        return got


# ---- one run --------------------------------------------------------------------------------

def smtp_source(args, n, port):
    return [sb.SMTP_SOURCE, "-c", "-M", "client.test", "-f", "a@x.test", "-t", "b@y.test",
            "-s", str(args.sessions), "-m", str(n), "-l", str(args.size)] + \
           (["-d"] if args.keep else []) + ["127.0.0.1:%d" % port]


def run_once(peer, n, args, rnd, tag, count_tool=None):
    """Starts the peer on empty state, sends n messages, waits for their delivery, stops it."""
    prepare(peer)
    srv = sb.Server(peer)
    tmp = tempfile.mkdtemp(prefix="maildir-bench-")
    counter = syncs = None
    try:
        srv.start()
        quiet_wait, pre_busy = sb.wait_quiet()
        pids = srv.pids()
        counter = SyncCounter(pids, count_tool, tmp) if count_tool else None
        cpu0, busy0, t0 = sb.proc_cpu(pids), sb.sys_busy(), time.monotonic()
        cl = tls_bench.Client(smtp_source(args, n, peer["port"]), args.timeout)
        t_accept = time.monotonic() - t0
        pids |= srv.pids()
        cpu1 = sb.proc_cpu(pids)
        t_e2e, got, q = wait_delivered(peer, n, t0, t_accept + args.drain_timeout)
        pids |= srv.pids()
        cpu2, busy2 = sb.proc_cpu(pids), sb.sys_busy()
        alive = srv.proc.poll() is None
    finally:
        try:
            if counter:   # also on errors: no perf/strace is left attached
                syncs = counter.stop()
        finally:
            srv.stop()
            shutil.rmtree(tmp, ignore_errors=True)
    ru = cl.res[2] if cl.res else None
    cli = ru.ru_utime + ru.ru_stime if ru else 0.0
    err = cl.out.get("stderr", b"").decode(errors="replace").strip()
    why = ("smtp-source timed out" if cl.timed_out else
           "smtp-source exit %s: %s" % (cl.proc.returncode, err[-200:]) if cl.proc.returncode else
           "server died" if not alive else
           "%d of %d messages in the Maildir, %d queue files left" % (got, n, q)
           if got != n or q else "")
    srv_cpu = cpu2 - cpu0
    row = {
        "tag": tag, "ts": time.strftime("%Y-%m-%dT%H:%M:%S"), "peer": peer["name"],
        "round": rnd, "counting": bool(count_tool), "ok": not why, "why": why,
        "messages": n, "sessions": args.sessions, "size": args.size, "keep": args.keep,
        "delivered": got, "queued_left": q,
        "accept_s": round(t_accept, 3), "e2e_s": round(t_e2e, 3) if t_e2e else None,
        "accept_msgs_per_s": round(n / t_accept, 1) if not why else 0.0,
        "e2e_msgs_per_s": round(n / t_e2e, 1) if not why else 0.0,
        "srv_cpu_s": round(srv_cpu, 2), "srv_cpu_accept_s": round(cpu1 - cpu0, 2),
        "srv_ms_per_msg": round(1e3 * srv_cpu / n, 3),
        "srv_cpu_pct": round(100 * srv_cpu / (t_e2e or t_accept), 1),
        "cli_cpu_s": round(cli, 2),
        "other_cpu_s": round((busy2 - busy0) - srv_cpu - cli, 2),
        "sys_busy_pct": round(100 * (busy2 - busy0) / (t_e2e or t_accept) / sb.NCPU, 1),
        "quiet_wait_s": quiet_wait, "pre_busy_pct": pre_busy,
        "loadavg": open("/proc/loadavg").read().split()[0],
    }
    add_syncs(row, syncs, n)
    return row


def add_syncs(row, syncs, n):
    """The fsync counts of a run (per process name) and their sum per message, into row."""
    if syncs is not None:
        row["syncs"] = syncs
        row["fsyncs_per_msg"] = round(sum(c["fsync"] + c["fdatasync"] for c in syncs.values()) / n, 3)


def syncs_text(r):
    """The fsync part of a run's progress line ("" when they were not counted)."""
    if r.get("syncs") is None:
        return ""
    return "  fsync+fdatasync %.2f/msg (%s)" % (r["fsyncs_per_msg"], " ".join(
        "%s:%d+%d" % (k, v["fsync"], v["fdatasync"]) for k, v in sorted(r["syncs"].items())))


def show(r):
    extra = syncs_text(r)
    print("  %-18s r%d %s accept %7.1f msg/s (%.2fs)  e2e %7.1f msg/s (%ss)  srv %.3f ms/msg "
          "%5.1f%%  other %.2fs%s %s" % (
              r["peer"], r["round"], "ok  " if r["ok"] else "FAIL", r["accept_msgs_per_s"],
              r["accept_s"], r["e2e_msgs_per_s"], r["e2e_s"], r["srv_ms_per_msg"],
              r["srv_cpu_pct"], r["other_cpu_s"], extra, r["why"]), flush=True)


def run_and_record(rows, peer, n, args, rnd, tag, count_tool=None):
    try:
        row = run_once(peer, n, args, rnd, tag, count_tool)
    except Exception as e:   # a peer that does not start costs its run, not the benchmark
        print("  !! %s: %r" % (peer["name"], e), flush=True)
        return
    rows.append(row)
    save(row)
    show(row)


def save(row):
    with open(RESULTS, "a") as f:
        f.write(json.dumps(row) + "\n")


# ---- summary --------------------------------------------------------------------------------

def summary(rows, reference):
    med, spread = tls_bench.med, tls_bench.spread
    timed = [r for r in rows if not r["counting"]]
    peers = list(dict.fromkeys(r["peer"] for r in rows))
    good = lambda p: [r for r in timed if r["peer"] == p and r["ok"]]
    ref = good(reference)
    ref_acc = med([r["accept_msgs_per_s"] for r in ref])
    ref_e2e = med([r["e2e_msgs_per_s"] for r in ref])
    out = ["| peer | accept msg/s | end-to-end msg/s | accept / %s | e2e / %s | fsync+fdatasync "
           "per msg | server CPU ms/msg | server CPU %% | other CPU s | runs ok |"
           % (reference, reference), "|---|---:|---:|---:|---:|---|---:|---:|---:|---:|"]
    for p in peers:
        g = good(p)
        n = len([r for r in timed if r["peer"] == p])
        cnt = [r for r in rows if r["peer"] == p and r["counting"] and r["ok"]]
        fs = "-"
        if cnt:
            c = cnt[-1]
            fs = "%.2f (%s)" % (c["fsyncs_per_msg"], ", ".join(
                "%s %.2f+%.2f" % (k, v["fsync"] / c["messages"], v["fdatasync"] / c["messages"])
                for k, v in sorted(c["syncs"].items()) if v["fsync"] or v["fdatasync"]))
        if not g:   # no timed run (--rounds 0) or none that passed
            out.append("| %s | %s | %s | | | %s | | | | 0/%d |" % (p, *(["FAIL"] * 2 if n else
                                                                      ["-"] * 2), fs, n))
            continue
        acc, e2e = [r["accept_msgs_per_s"] for r in g], [r["e2e_msgs_per_s"] for r in g]
        ratio = lambda x, y: "%.2f" % (x / y) if ref and y == y and y else "-"
        out.append("| %s | %.0f%s | %.0f%s | %s | %s | %s | %.3f | %.0f | %.1f | %d/%d |" % (
            p, med(acc), spread(acc), med(e2e), spread(e2e), ratio(med(acc), ref_acc),
            ratio(med(e2e), ref_e2e), fs, med([r["srv_ms_per_msg"] for r in g]),
            med([r["srv_cpu_pct"] for r in g]), med([r["other_cpu_s"] for r in g]), len(g), n))
    return "\n".join(out)


# ---- main -----------------------------------------------------------------------------------

def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--messages", type=int, default=10000)
    ap.add_argument("--sessions", type=int, default=50)
    ap.add_argument("--size", type=int, default=4096)
    ap.add_argument("--keep", action="store_true", help="many messages per connection (-d)")
    ap.add_argument("--posthorn", default=os.path.join(ROOT, "build", "posthorn"))
    ap.add_argument("--variants", default="w1,w2", help="Posthorn variants: wN or wNcM, comma-separated")
    ap.add_argument("--alt-posthorn", metavar="PATH", action="append", default=[],
                    help="A/B: run every variant also with this binary (peers posthorn-alt-..., "
                    "or posthorn-altN-... when given more than once)")
    ap.add_argument("--no-postfix", action="store_true")
    ap.add_argument("--count-messages", type=int, default=2000,
                    help="messages in each peer's fsync counting run (0: none)")
    ap.add_argument("--fsync-tool", choices=("perf", "strace"),
                    default="perf" if shutil.which("perf") else "strace")
    ap.add_argument("--timeout", type=float, default=120, help="limit of one load run (s)")
    ap.add_argument("--drain-timeout", type=float, default=120,
                    help="limit for delivery after the load (s)")
    ap.add_argument("--tag")
    args = ap.parse_args()
    variants = [v for v in args.variants.split(",") if v]
    for b in [args.posthorn] + args.alt_posthorn:
        if variants and not os.access(b, os.X_OK):
            sys.exit("no %s: build first (cmake --build build --target posthorn_bin)" % b)
    compare.ensure_netns(__file__)
    signal.signal(signal.SIGTERM, lambda *a: sys.exit(143))   # so `finally:` stops the peers
    signal.signal(signal.SIGHUP, lambda *a: sys.exit(129))
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 65536), min(hard, 65536)))
    os.makedirs(sb.STATE, exist_ok=True)
    tag = args.tag or "maildir-" + time.strftime("%Y%m%d-%H%M%S")
    bindir = tempfile.mkdtemp(prefix="maildir-bench-bin-")
    rows = []
    try:
        # a private copy: others may rebuild the binary while the benchmark runs
        binary = os.path.join(bindir, "posthorn")
        if variants:
            shutil.copy2(args.posthorn, binary)
        os.chmod(bindir, 0o755)
        peers = [posthorn_peer(binary, v, 2700 + i) for i, v in enumerate(variants)]
        alts = []
        for j, path in enumerate(args.alt_posthorn if variants else []):
            label = "posthorn-alt" + ("%d" % (j + 1) if len(args.alt_posthorn) > 1 else "")
            alts.append((label, path, os.path.join(bindir, label)))
            shutil.copy2(path, alts[-1][2])
            peers += [posthorn_peer(alts[-1][2], v, 2800 + 100 * j + i, label)
                      for i, v in enumerate(variants)]
        if not args.no_postfix:
            peers.append(postfix_peer(2620))
        print("# maildir_bench tag=%s peers=%s messages=%d sessions=%d size=%d keep=%s "
              "posthorn=%s (sha256 %s) state=%s" % (
                  tag, ",".join(p["name"] for p in peers), args.messages, args.sessions,
                  args.size, args.keep, args.posthorn, tls_bench.sha256(binary)[:12], sb.STATE)
              + "".join(" %s=%s (sha256 %s)" % (label, path, tls_bench.sha256(copy)[:12])
                        for label, path, copy in alts),
              flush=True)
        for rnd in range(1, args.rounds + 1):
            k = (rnd - 1) % len(peers)
            order = peers[k:] + peers[:k]
            print("## round %d: %s" % (rnd, " ".join(p["name"] for p in order)), flush=True)
            for p in order:
                run_and_record(rows, p, args.messages, args, rnd, tag)
        if args.count_messages > 0:
            print("## fsync counting (%s, %d messages)" % (args.fsync_tool, args.count_messages),
                  flush=True)
            for p in peers:
                run_and_record(rows, p, args.count_messages, args, 0, tag, args.fsync_tool)
        print()
        print(summary(rows, "postfix-maildir" if not args.no_postfix else peers[0]["name"]))
    finally:
        shutil.rmtree(bindir, ignore_errors=True)
        shutil.rmtree(POSTHORN_STATE, ignore_errors=True)
        if not args.no_postfix:
            subprocess.run([POSTFIX_SCRIPT, "clean"], stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)


if __name__ == "__main__":
    main()
