#!/usr/bin/python3
"""compare.py - Posthorn against peer SMTP servers, side by side in one interleaved run.

Uses the peer harness in ../../shared/bench (smtpbench.py: Postfix's smtp-source as the load,
CPU/RSS sampling, the idle-connection test). Posthorn variants are added as peers next to the
peers.conf ones, every round visits every peer (rotating the start), and the table at the end
shows medians per peer and scenario plus Posthorn's ratio to the reference peer.

  bench/compare.py [--rounds N] [--scenarios a,b] [--peers smtp-sink,postfix-discard]
                   [--posthorn /path/to/posthorn] [--workers 1,2] [--reference smtp-sink]

Runs inside a private network namespace (loopback only), like smtpbench itself.
"""
import argparse, json, os, resource, signal, statistics, sys, time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
SHARED = os.environ.get("SMTPBENCH_DIR", os.path.join(ROOT, "..", "shared", "bench"))
os.environ.setdefault("BENCH_RESULTS", os.path.join(HERE, "results", "results.jsonl"))


def ensure_netns(script=None):
    """Re-executes a script (default: this one; bench/maildir_bench.py passes its own path) with
    the same arguments under `unshare -n`, so no peer can reach beyond loopback."""
    if os.environ.get("SMTPBENCH_NETNS") == "1":
        return
    env = dict(os.environ, SMTPBENCH_NETNS="1")
    cmd = ["unshare", "-n", "sh", "-c", 'ip link set lo up && exec "$@"', "sh",
           sys.executable, os.path.abspath(script or __file__)] + sys.argv[1:]
    os.execvpe("unshare", cmd, env)


def posthorn_peer(binary, workers, port):
    # stdout to /dev/null: the sink prints every message, as in normal use, and the bench
    # measures that path (no --quiet); logs at warn, as a production setting would
    cmd = ("exec %s sink --listen 127.0.0.1:%d --workers %d --log-level warn >/dev/null"
           % (binary, port, workers))
    return {"name": "posthorn-w%d" % workers, "port": port, "custom": True,
            "argv": ["sh", "-c", cmd]}


def medians(rows):
    by = {}
    for r in rows:
        if r.get("ok", True):
            by.setdefault((r["peer"], r["scenario"]), []).append(r)
    return by


def summary(rows, reference):
    by = medians(rows)
    peers = sorted({p for p, _ in by})
    scens = sorted({s for _, s in by})
    out = ["| scenario | peer | msgs/s | peak RSS MiB | srv CPU %% | per idle conn KiB | ratio to %s |"
           % reference, "|---|---|---|---|---|---|---|"]
    for sc in scens:
        ref = by.get((reference, sc))
        ref_rate = statistics.median(r.get("msgs_per_s", 0) for r in ref) if ref else 0
        for p in peers:
            rs = by.get((p, sc))
            if not rs:
                continue
            rate = statistics.median(r.get("msgs_per_s", 0) for r in rs)
            rss = statistics.median(r.get("peak_rss_mib", 0) or 0 for r in rs)
            cpu = statistics.median(r.get("srv_cpu_pct", 0) or 0 for r in rs)
            idle = [r.get("rss_kib_per_conn") for r in rs]
            idle = [x for x in idle if x is not None]
            ratio = "%.2f" % (rate / ref_rate) if ref_rate and sc != "idle" else "-"
            out.append("| %s | %s | %.0f | %.1f | %.0f | %s | %s |" % (
                sc, p, rate, rss, cpu, "%.1f" % statistics.median(idle) if idle else "-", ratio))
    return "\n".join(out)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--scenarios", default="par50-4k,seq1,par50-4k-keep,idle")
    ap.add_argument("--peers", default="smtp-sink")
    ap.add_argument("--posthorn", default=os.path.join(ROOT, "build", "posthorn"))
    ap.add_argument("--workers", default="1,2")
    ap.add_argument("--reference", default="smtp-sink")
    ap.add_argument("--tag", default=None)
    args = ap.parse_args()
    ensure_netns()
    sys.path.insert(0, SHARED)
    import smtpbench  # noqa: E402 (needs BENCH_RESULTS set first)
    signal.signal(signal.SIGTERM, lambda *a: sys.exit(143))
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 65536), min(hard, 65536)))
    os.makedirs(os.path.dirname(os.environ["BENCH_RESULTS"]), exist_ok=True)
    tag = args.tag or "posthorn-" + time.strftime("%Y%m%d-%H%M%S")
    known = smtpbench.load_peers()
    peers = [posthorn_peer(args.posthorn, int(w), 2590 + int(w)) for w in args.workers.split(",")]
    peers += [known[p] for p in args.peers.split(",") if p]
    scens = args.scenarios.split(",")
    print("# compare tag=%s scale=%s peers=%s" % (tag, smtpbench.SCALE,
                                                  ",".join(p["name"] for p in peers)), flush=True)
    rows = []
    for rnd in range(1, args.rounds + 1):
        k = (rnd - 1) % len(peers)
        order = peers[k:] + peers[:k]
        print("## round %d: %s" % (rnd, " ".join(p["name"] for p in order)), flush=True)
        for p in order:
            try:
                rows += smtpbench.run_scenarios(p, scens, rnd, tag)
            except Exception as e:
                print("  !! %s: %r" % (p["name"], e), flush=True)
    smtpbench.fmt_table(rows)
    print()
    print(summary(rows, args.reference))


if __name__ == "__main__":
    main()
