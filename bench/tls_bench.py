#!/usr/bin/python3
"""tls_bench.py - messages/s over STARTTLS, one message per connection (every message pays a full
TLS handshake), Posthorn side by side with Postfix using the same certificate, in one interleaved
run (every round visits every peer, rotating the start). Issue 3, "Performance (benchmark)".

  bench/tls_bench.py [--rounds 3] [--peers posthorn,posthorn-queue,postfix,postfix-tmpfs]
                     [--scenarios starttls,plain] [--sessions 50] [--messages 20000]
                     [--duration 15] [--size 4096] [--threads 2] [--posthorn build/posthorn]
  bench/tls_bench.py --profile posthorn     one STARTTLS run under `perf record` (DWARF call
                                            graphs); reports in /var/tmp/smtpbench/tls-profile/

Load: bench/tls_source.c (compiled here into a temporary directory): connect, EHLO, STARTTLS,
handshake (TLS 1.3, no resumption), EHLO, MAIL, RCPT, DATA, QUIT. Scenarios:
  starttls  the above            tls12   the same with TLS 1.2
  plain     no STARTTLS (same dialogue otherwise): the non-TLS cost, subtracted to get the
            server CPU that TLS adds per handshake
  resume    TLS 1.3 with session resumption (tickets)
Peers: posthorn (`posthorn sink`, 1 worker, stdout to /dev/null, log level warn, as in
compare.py), posthorn-w2 (the same with 2 workers), posthorn-queue (`posthorn serve`,
delivery = queue: the durable queue with group commit, fsync'd before the 250, like Postfix),
posthorn-store (`sink --store`: synchronous fsyncs on the event loop), postfix
(bench/peers/postfix-tls.sh disk: queue on disk, fsync before 250, delivery by discard(8)) and
postfix-tmpfs (its queue in /dev/shm). All get the same P-256 ECDSA certificate (made at start,
signed by a throw-away test CA).

Measured per run: msgs/s and handshakes/s (client side), session and handshake latency p50/p99,
server CPU of the whole process tree from /proc (utime+stime, plus cutime+cstime of reaped
children) during the run and while the queue drains, the client's CPU (wait4 rusage) and the
rest of the machine. Rows go to bench/results/tls/results.jsonl (not committed).

Runs inside a private network namespace (loopback only); every server is stopped at the end
and every run is bounded (--duration, then a hard limit).
"""
import argparse, json, os, resource, signal, shutil, statistics, subprocess, sys, tempfile
import threading, time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
SHARED = os.environ.get("SMTPBENCH_DIR", os.path.join(ROOT, "..", "shared", "bench"))
RESULTS = os.path.join(HERE, "results", "tls", "results.jsonl")
os.environ.setdefault("BENCH_RESULTS", RESULTS)

SCENARIOS = {   # name: tls_source flags
    "starttls": [],
    "plain": ["-S"],
    "tls12": ["-2"],
    "resume": ["-R"],
}
PEER_PORTS = {"posthorn": 2690, "posthorn-w2": 2692, "posthorn-store": 2694,
              "posthorn-queue": 2696, "postfix": 2610, "postfix-tmpfs": 2611}


def ensure_netns():
    """Re-executes this script under `unshare -n` so no peer can reach beyond loopback."""
    if os.environ.get("SMTPBENCH_NETNS") == "1":
        return
    env = dict(os.environ, SMTPBENCH_NETNS="1")
    cmd = ["unshare", "-n", "sh", "-c", 'ip link set lo up && exec "$@"', "sh",
           sys.executable, os.path.abspath(__file__)] + sys.argv[1:]
    os.execvpe("unshare", cmd, env)


def run(cmd, **kw):
    return subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, **kw)


def build_client(tmp):
    exe = os.path.join(tmp, "tls_source")
    run(["cc", "-O2", "-Wall", "-o", exe, os.path.join(HERE, "tls_source.c"),
         "-lssl", "-lcrypto", "-lpthread"])
    return exe


def make_certs(tmp):
    """A test CA and a P-256 ECDSA server certificate signed by it (SAN bench.test, localhost,
    127.0.0.1). Both servers get the same cert.pem/key.pem."""
    d = os.path.join(tmp, "tls")
    os.makedirs(d)
    p = lambda n: os.path.join(d, n)
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"]
    run(["openssl", "req", "-x509"] + ec + ["-days", "2", "-subj", "/CN=tls_bench test CA",
                                             "-keyout", p("ca.key"), "-out", p("ca.pem")])
    run(["openssl", "req"] + ec + ["-subj", "/CN=bench.test", "-keyout", p("key.pem"),
                                   "-out", p("srv.csr")])
    with open(p("ext.cnf"), "w") as f:
        f.write("subjectAltName=DNS:bench.test,DNS:localhost,IP:127.0.0.1\n"
                "basicConstraints=CA:FALSE\nkeyUsage=digitalSignature\n"
                "extendedKeyUsage=serverAuth\n")
    run(["openssl", "x509", "-req", "-in", p("srv.csr"), "-CA", p("ca.pem"), "-CAkey", p("ca.key"),
         "-CAcreateserial", "-days", "2", "-extfile", p("ext.cnf"), "-out", p("cert.pem")])
    os.chmod(p("key.pem"), 0o600)
    return p("cert.pem"), p("key.pem"), p("ca.pem")


def serve_config(binary, port, cert, key, state):
    """posthorn serve with delivery = queue: the durable queue (data + envelope fsync'd, renamed,
    directory fsync'd, group commits on a worker thread) before the 250, as Postfix does."""
    path = os.path.join(state, "posthorn-tls-queue.conf")
    with open(path, "w") as f:
        f.write("hostname = bench.test\nlog_level = warn\ndelivery = queue\nqueue_dir = %s\n"
                "[listener mx]\nlisten = 127.0.0.1:%d\ntls_cert = %s\ntls_key = %s\n"
                "max_per_ip = 0\n" % (os.path.join(state, "posthorn-tls-queue"), port, cert, key))
    return {"name": "posthorn-queue", "port": port, "custom": True,
            "argv": ["sh", "-c", "exec %s serve --config %s" % (binary, path)]}


def make_peer(name, binary, cert, key, state):
    port = PEER_PORTS[name]
    if name == "posthorn-queue":
        return serve_config(binary, port, cert, key, state)
    if name.startswith("posthorn"):
        extra = ""
        if name == "posthorn-w2":
            extra = " --workers 2"
        if name == "posthorn-store":
            extra = " --store %s" % os.path.join(state, "posthorn-tls-store")
        # stdout to /dev/null (the sink prints every message; compare.py measures that path too)
        cmd = ("exec %s sink --listen 127.0.0.1:%d --tls-cert %s --tls-key %s --log-level warn%s"
               " >/dev/null" % (binary, port, cert, key, extra))
        return {"name": name, "port": port, "custom": True, "argv": ["sh", "-c", cmd]}
    variant = "disk" if name == "postfix" else "tmpfs"
    return {"name": name, "port": port, "custom": False, "variant": variant,
            "argv": ["env", "BENCH_TLS_CERT=" + cert, "BENCH_TLS_KEY=" + key,
                     os.path.join(HERE, "peers", "postfix-tls.sh"), variant]}


def reset_store(peer, state):
    """wipes what the previous run stored (the server keeps running: only files go)."""
    if peer["name"] == "posthorn-store":
        d = os.path.join(state, "posthorn-tls-store")
        shutil.rmtree(d, ignore_errors=True)
        os.makedirs(d)
    if peer["name"] == "posthorn-queue":   # nothing delivers from this queue yet
        d = os.path.join(state, "posthorn-tls-queue", "queue")
        for e in os.scandir(d) if os.path.isdir(d) else []:
            if e.is_file():
                os.unlink(e.path)


class Client:
    """tls_source as a child process: bounded in time, its CPU from wait4."""
    def __init__(self, cmd, limit):
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE)
        self.res = None
        self.out = {}
        t = threading.Thread(target=self._wait, daemon=True)
        t.start()
        try:
            t.join(limit)
        except BaseException:   # SIGTERM/SIGHUP to the runner: the client goes too
            self.proc.kill()
            raise
        self.timed_out = t.is_alive()
        if self.timed_out:
            self.proc.kill()
            t.join()

    def _wait(self):
        self.out["stdout"] = self.proc.stdout.read()
        self.out["stderr"] = self.proc.stderr.read()
        self.res = os.wait4(self.proc.pid, 0)
        self.proc.returncode = os.waitstatus_to_exitcode(self.res[1])


def run_load(sb, server, peer, scen, args, exe, rnd, tag, state):
    quiet_wait, pre_busy = sb.wait_quiet()
    reset_store(peer, state)
    cmd = [exe, "-s", str(args.sessions), "-m", str(args.messages), "-l", str(args.size),
           "-t", str(args.threads), "-D", str(args.duration), "-w", "30", "-j", "-q"]
    cmd += SCENARIOS[scen] + ["127.0.0.1:%d" % peer["port"]]
    pids = server.pids()
    cpu0, busy0, t0 = sb.proc_cpu(pids), sb.sys_busy(), time.monotonic()
    cl = Client(cmd, args.duration + 60)
    wall = time.monotonic() - t0
    pids = server.pids() | pids
    cpu1, busy1 = sb.proc_cpu(pids), sb.sys_busy()
    drain = None
    q = sb.peer_aux(peer, "queued")
    if q is not None and q.isdigit():
        td = time.monotonic()
        while int(q or 0) > 0 and time.monotonic() - td < 120:
            time.sleep(0.2)
            q = sb.peer_aux(peer, "queued") or "0"
        drain = round(time.monotonic() - td, 2)
    cpu2 = sb.proc_cpu(server.pids() | pids)
    res = {}
    for line in cl.out.get("stdout", b"").decode(errors="replace").splitlines():
        if line.startswith("{"):
            res = json.loads(line)
    ru = cl.res[2]
    cli = ru.ru_utime + ru.ru_stime
    srv, srv_total = cpu1 - cpu0, cpu2 - cpu0
    msgs = res.get("msgs", 0)
    hs = res.get("handshakes", 0)
    ok = bool(res) and not cl.timed_out and res.get("errors", 1) == 0 and msgs > 0
    row = {
        "tag": tag, "ts": time.strftime("%Y-%m-%dT%H:%M:%S"), "peer": peer["name"],
        "scenario": scen, "round": rnd, "ok": ok, "rc": cl.proc.returncode,
        "timed_out": cl.timed_out, "err": cl.out.get("stderr", b"").decode(errors="replace")[-300:],
        "cmd": " ".join(os.path.basename(c) if i == 0 else c for i, c in enumerate(cmd)),
        "msgs": msgs, "errors": res.get("errors"), "handshakes": hs,
        "resumed": res.get("resumed"), "elapsed_s": res.get("elapsed_s"), "wall_s": round(wall, 3),
        "msgs_per_s": res.get("msgs_per_s", 0.0), "hs_per_s": res.get("hs_per_s", 0.0),
        "p50_ms": res.get("p50_ms"), "p99_ms": res.get("p99_ms"),
        "hs_p50_ms": res.get("hs_p50_ms"), "hs_p99_ms": res.get("hs_p99_ms"),
        "tickets_per_conn": res.get("tickets_per_conn"),
        "srv_cpu_s": round(srv, 2), "srv_cpu_drain_s": round(cpu2 - cpu1, 2),
        "srv_cpu_pct": round(100 * srv / wall, 1),
        # CPU per message includes the queue's work after the run (Postfix: qmgr + discard)
        "srv_ms_per_msg": round(1e3 * srv_total / msgs, 3) if msgs else None,
        "srv_ms_per_hs": round(1e3 * srv_total / hs, 3) if hs else None,
        "cli_cpu_s": round(cli, 2), "cli_cpu_pct": round(100 * cli / wall, 1),
        "cli_ms_per_msg": round(1e3 * cli / msgs, 3) if msgs else None,
        "other_cpu_s": round((busy1 - busy0) - srv - cli, 2),
        "sys_busy_pct": round(100 * (busy1 - busy0) / wall / sb.NCPU, 1),
        "drain_s": drain, "quiet_wait_s": quiet_wait, "pre_busy_pct": pre_busy,
        "loadavg": open("/proc/loadavg").read().split()[0],
    }
    return row


def show(r):
    print("  %-15s %-9s r%d %s %7.1f msg/s %7.1f hs/s  p50 %6.1f p99 %6.1f ms  srv %5.1f%% "
          "%.3f ms/msg  cli %5.1f%%  other %.2fs  drain %s %s"
          % (r["peer"], r["scenario"], r["round"], "ok  " if r["ok"] else "FAIL",
             r["msgs_per_s"], r["hs_per_s"], r["p50_ms"] or 0, r["p99_ms"] or 0, r["srv_cpu_pct"],
             r["srv_ms_per_msg"] or 0, r["cli_cpu_pct"], r["other_cpu_s"], r["drain_s"],
             "" if r["ok"] else (r["err"] or "errors=%s" % r["errors"])[-150:]), flush=True)


def save(row):
    os.makedirs(os.path.dirname(RESULTS), exist_ok=True)
    with open(RESULTS, "a") as f:
        f.write(json.dumps(row) + "\n")


def sha256(path):
    import hashlib
    if not os.path.exists(path):
        return "-"
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


# ---- summary ------------------------------------------------------------------------------

def med(xs):
    return statistics.median(xs) if xs else float("nan")


def spread(xs):
    m = med(xs)
    if len(xs) < 2 or not m:
        return ""
    return " ±%d%%" % round(50 * (max(xs) - min(xs)) / m)


def summary(rows, reference):
    by = {}
    for r in rows:
        by.setdefault((r["peer"], r["scenario"]), []).append(r)
    peers = []
    for r in rows:
        if r["peer"] not in peers:
            peers.append(r["peer"])
    scens = [s for s in SCENARIOS if any(k[1] == s for k in by)]
    out = []
    out.append("| scenario | peer | msgs/s | handshakes/s | server CPU ms/msg | server CPU %% "
               "| client CPU %% | p50 ms | p99 ms | handshake p50/p99 ms | n | ratio to %s |"
               % reference)
    out.append("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for sc in scens:
        ref = [r["msgs_per_s"] for r in by.get((reference, sc), []) if r["ok"]]
        for p in peers:
            rr = by.get((p, sc), [])
            good = [r for r in rr if r["ok"]]
            if not rr:
                continue
            if not good:
                out.append("| %s | %s | FAIL (%d runs) | | | | | | | | | |" % (sc, p, len(rr)))
                continue
            g = lambda k: [r[k] for r in good if r.get(k) is not None]
            rate = g("msgs_per_s")
            ratio = "%.2f" % (med(rate) / med(ref)) if ref else "-"
            hs = ("%.0f" % med(g("hs_per_s"))) if sc != "plain" else "-"
            hsl = ("%.1f / %.1f" % (med(g("hs_p50_ms")), med(g("hs_p99_ms")))) if sc != "plain" else "-"
            fail = " (%d failed)" % (len(rr) - len(good)) if len(rr) > len(good) else ""
            out.append("| %s | %s | %.0f%s | %s | %.2f%s | %.0f | %.0f | %.1f | %.1f | %s | %d%s | %s |" % (
                sc, p, med(rate), spread(rate), hs, med(g("srv_ms_per_msg")), spread(g("srv_ms_per_msg")),
                med(g("srv_cpu_pct")), med(g("cli_cpu_pct")), med(g("p50_ms")), med(g("p99_ms")),
                hsl, len(good), fail, ratio))
    # what TLS adds: per round, ms/msg (starttls) - ms/msg (plain), then the median
    if "starttls" in scens and "plain" in scens:
        out.append("")
        out.append("| peer | server CPU ms/msg, STARTTLS | plain | TLS adds per handshake (ms) "
                   "| client CPU ms/msg, STARTTLS | plain |")
        out.append("|---|---:|---:|---:|---:|---:|")
        for p in peers:
            t = {r["round"]: r for r in by.get((p, "starttls"), []) if r["ok"]}
            n = {r["round"]: r for r in by.get((p, "plain"), []) if r["ok"]}
            both = sorted(set(t) & set(n))
            if not both:
                continue
            d = [t[k]["srv_ms_per_msg"] - n[k]["srv_ms_per_msg"] for k in both]
            out.append("| %s | %.3f | %.3f | %.3f%s | %.3f | %.3f |" % (
                p, med([t[k]["srv_ms_per_msg"] for k in both]),
                med([n[k]["srv_ms_per_msg"] for k in both]), med(d), spread(d),
                med([t[k]["cli_ms_per_msg"] for k in both]),
                med([n[k]["cli_ms_per_msg"] for k in both])))
    return "\n".join(out)


# ---- profile ------------------------------------------------------------------------------

def profile(sb, server, peer, args, exe, outdir):
    """One STARTTLS run with `perf record -g` attached to the server's processes."""
    pids = sorted(server.pids())
    os.makedirs(outdir, exist_ok=True)
    data = os.path.join(outdir, "perf-%s.data" % peer["name"])
    # DWARF unwinding: OpenSSL and Posthorn are built without frame pointers
    perf = subprocess.Popen(["perf", "record", "-F", "499", "--call-graph", "dwarf,16384", "-o", data,
                             "-p", ",".join(map(str, pids))],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(1)
    cmd = [exe, "-s", str(args.sessions), "-m", str(args.messages), "-l", str(args.size),
           "-t", str(args.threads), "-D", str(min(args.duration, 10)), "-q",
           "127.0.0.1:%d" % peer["port"]]
    cl = Client(cmd, args.duration + 60)
    perf.send_signal(signal.SIGINT)
    try:
        perf.wait(timeout=60)
    except subprocess.TimeoutExpired:
        perf.kill()
        perf.wait()
    print(cl.out.get("stdout", b"").decode(errors="replace"))
    for mode, extra in (("self", ["--no-children"]), ("children", ["--children"])):
        txt = os.path.join(outdir, "perf-%s-%s.txt" % (peer["name"], mode))
        with open(txt, "w") as f:
            subprocess.run(["perf", "report", "-i", data, "--stdio", "--percent-limit", "0.5",
                            "-g", "none", "--sort", "dso,sym"] + extra,
                           stdout=f, stderr=subprocess.DEVNULL, timeout=300)
        print("perf report (%s) -> %s" % (mode, txt))


# ---- main ---------------------------------------------------------------------------------

def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--peers", default="posthorn,posthorn-queue,postfix,postfix-tmpfs")
    ap.add_argument("--scenarios", default="starttls,plain")
    ap.add_argument("--sessions", type=int, default=50)
    ap.add_argument("--messages", type=int, default=20000)
    ap.add_argument("--duration", type=float, default=15, help="start no session after this")
    ap.add_argument("--size", type=int, default=4096)
    ap.add_argument("--threads", type=int, default=2, help="tls_source threads")
    ap.add_argument("--posthorn", default=os.path.join(ROOT, "build", "posthorn"))
    ap.add_argument("--reference", default="postfix")
    ap.add_argument("--tag")
    ap.add_argument("--profile", metavar="PEER", help="only: one STARTTLS run under perf record")
    ap.add_argument("--keep-state", action="store_true", help="leave Postfix's state dirs")
    args = ap.parse_args()
    for p in args.peers.split(","):
        if p not in PEER_PORTS:
            sys.exit("unknown peer %s (known: %s)" % (p, ", ".join(PEER_PORTS)))
    for s in args.scenarios.split(","):
        if s not in SCENARIOS:
            sys.exit("unknown scenario %s (known: %s)" % (s, ", ".join(SCENARIOS)))
    if not os.access(args.posthorn, os.X_OK) and "posthorn" in args.peers:
        sys.exit("no %s: build first (cmake --build build)" % args.posthorn)
    ensure_netns()
    sys.path.insert(0, SHARED)
    import smtpbench as sb  # noqa: E402 (process handling, /proc accounting, quiet wait)
    signal.signal(signal.SIGTERM, lambda *a: sys.exit(143))   # so `finally:` stops the peers
    signal.signal(signal.SIGHUP, lambda *a: sys.exit(129))
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 65536), min(hard, 65536)))
    tmp = tempfile.mkdtemp(prefix="tls-bench-")
    state = sb.STATE
    tag = args.tag or "tls-" + time.strftime("%Y%m%d-%H%M%S")
    rows = []
    try:
        exe = build_client(tmp)
        # a private copy: others may rebuild build/posthorn while the benchmark runs
        binary = os.path.join(tmp, "posthorn")
        if os.path.exists(args.posthorn):
            shutil.copy2(args.posthorn, binary)
        cert, key, _ca = make_certs(tmp)
        os.chmod(tmp, 0o755)
        names = [args.profile] if args.profile else args.peers.split(",")
        peers = [make_peer(n, binary, cert, key, state) for n in names]
        if args.profile:
            srv = sb.Server(peers[0])
            try:
                srv.start()
                profile(sb, srv, peers[0], args, exe, os.path.join(state, "tls-profile"))
            finally:
                srv.stop()
            return
        scens = args.scenarios.split(",")
        print("# tls_bench tag=%s peers=%s scenarios=%s sessions=%d size=%d messages<=%d "
              "duration<=%gs client threads=%d posthorn=%s (sha256 %s)" % (
                  tag, ",".join(names), ",".join(scens), args.sessions, args.size, args.messages,
                  args.duration, args.threads, args.posthorn, sha256(binary)[:12]), flush=True)
        for rnd in range(1, args.rounds + 1):
            k = (rnd - 1) % len(peers)
            order = peers[k:] + peers[:k]
            print("## round %d: %s" % (rnd, " ".join(p["name"] for p in order)), flush=True)
            for p in order:
                srv = sb.Server(p)
                try:
                    srv.start()
                    for sc in (scens if rnd % 2 else scens[::-1]):
                        row = run_load(sb, srv, p, sc, args, exe, rnd, tag, state)
                        save(row); show(row); rows.append(row)
                        if srv.proc.poll() is not None:
                            print("  !! %s died; restarting" % p["name"], flush=True)
                            srv.stop(); srv.start()
                except Exception as e:
                    print("  !! %s: %r" % (p["name"], e), flush=True)
                finally:
                    srv.stop()
        print()
        print(summary(rows, args.reference))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        for d in ("posthorn-tls-store", "posthorn-tls-queue"):
            shutil.rmtree(os.path.join(state, d), ignore_errors=True)
        if os.path.exists(os.path.join(state, "posthorn-tls-queue.conf")):
            os.unlink(os.path.join(state, "posthorn-tls-queue.conf"))
        if not args.keep_state:
            for v in ("disk", "tmpfs"):
                subprocess.run([os.path.join(HERE, "peers", "postfix-tls.sh"), v, "clean"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


if __name__ == "__main__":
    main()
