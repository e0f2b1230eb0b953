"""
test_dns.py - the MX lookup of src/dns/ end to end: the real libunbound resolver, driven by the
test tool BUILD/tools/mx_lookup, forwarding to the fake DNS server of fakedns.py on 127.0.0.1.
Covers MX ordering and the shuffle among equal preference, implicit MX, null MX (alone and among
others), NXDOMAIN, SERVFAIL and timeouts as temporary failures (the timeout bounded in time),
CNAME'd exchangers and domains, AAAA + A in parallel, hosts without addresses, unusable targets,
address literals, the 32-exchanger cap over a truncated-then-TCP answer, and .test names.

No query may leave 127.0.0.0/8: every lookup forwards to the fake server only, and the whole
DnsTests class runs a second time inside a private network namespace (`unshare -n`, loopback
only) when the machine allows it.

Environment: POSTHORN_BUILD (the CMake build dir; default <repo>/build). Standard library only;
run with /usr/bin/python3.
"""

import os
import shutil
import subprocess
import sys
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from fakedns import FakeDNS, Delayed, NULL_MX, NXDOMAIN, SERVFAIL, TIMEOUT  # noqa: E402

REPO = os.path.dirname(os.path.dirname(HERE))
BUILD = os.environ.get("POSTHORN_BUILD") or os.path.join(REPO, "build")
TOOL = os.path.join(BUILD, "tools", "mx_lookup")
RUN_TIMEOUT = 30  # seconds for one tool run, whatever happens
SANITIZER_MARKS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:")
NETNS_ENV = "PH_DNS_IN_NETNS"


class Lookup:
    """The parsed output of one mx_lookup run."""

    def __init__(self, out):
        self.hosts = []
        self.elapsed_ms = None
        for line in out.splitlines():
            words = line.split(" ")
            if words[0] == "result":
                self.verdict, self.code, self.status = words[1], int(words[2]), words[3]
                rest = words[4:]
                self.flags = set()
                while rest and rest[0] in ("implicit", "literal"):
                    self.flags.add(rest.pop(0))
                self.text = " ".join(rest)
            elif words[0] == "host":
                self.hosts.append((int(words[1]), words[2], words[3:]))
            elif words[0] == "elapsed_ms":
                self.elapsed_ms = int(words[1])

    @property
    def names(self):
        return [h[1] for h in self.hosts]


class DnsTests(unittest.TestCase):
    def start_dns(self, zone):
        dns = FakeDNS(zone).start()
        self.addCleanup(dns.stop)
        return dns

    def lookup(self, dns, domain, *extra, timeout_ms=3000):
        cmd = [TOOL, "--forwarder", dns.forwarder, "--timeout", str(timeout_ms)]
        p = subprocess.run(cmd + list(extra) + [domain], capture_output=True, text=True,
                           timeout=RUN_TIMEOUT)
        for mark in SANITIZER_MARKS:
            self.assertNotIn(mark, p.stderr)
        self.assertEqual(p.returncode, 0, "mx_lookup failed: %s %s" % (p.stdout, p.stderr))
        res = Lookup(p.stdout)
        self.assertIsNotNone(res.elapsed_ms, p.stdout)
        return res

    # ---- ordering ------------------------------------------------------------------------

    def test_mx_sorted_by_preference(self):
        dns = self.start_dns({
            ("example.com", "MX"): [(30, "c.example.com"), (10, "a.example.com"),
                                    (20, "b.example.com")],
            ("a.example.com", "A"): ["127.0.0.11"],
            ("b.example.com", "A"): ["127.0.0.12"],
            ("c.example.com", "A"): ["127.0.0.13"],
        })
        res = self.lookup(dns, "example.com")
        self.assertEqual((res.verdict, res.code, res.status), ("OK", 250, "2.0.0"))
        self.assertEqual(res.hosts, [(10, "a.example.com", ["127.0.0.11"]),
                                     (20, "b.example.com", ["127.0.0.12"]),
                                     (30, "c.example.com", ["127.0.0.13"])])
        self.assertNotIn("implicit", res.flags)
        self.assertEqual(len(dns.queried("example.com", "MX")), 1)

    def test_equal_preference_randomised(self):
        zone = {("example.com", "MX"): [(10, "a.example.com"), (10, "b.example.com"),
                                        (10, "c.example.com"), (5, "first.example.com"),
                                        (20, "last.example.com")]}
        for h in ("a", "b", "c", "first", "last"):
            zone[(h + ".example.com", "A")] = ["127.0.0.2"]
        dns = self.start_dns(zone)
        orders = set()
        for seed in range(1, 9):
            res = self.lookup(dns, "example.com", "--seed", str(seed))
            self.assertEqual(res.names[0], "first.example.com")
            self.assertEqual(res.names[-1], "last.example.com")
            self.assertEqual(sorted(res.names[1:4]),
                             ["a.example.com", "b.example.com", "c.example.com"])
            orders.add(tuple(res.names))
            again = self.lookup(dns, "example.com", "--seed", str(seed))
            self.assertEqual(again.names, res.names)  # a fixed RNG gives a fixed order
        self.assertGreater(len(orders), 1, "equal preferences were never shuffled")
        # Unseeded (arc4random): 12 runs of 3 equal hosts all in one order is a 1-in-6^11 event.
        free = {tuple(self.lookup(dns, "example.com").names) for _ in range(12)}
        self.assertGreater(len(free), 1)

    # ---- verdicts ------------------------------------------------------------------------

    def test_implicit_mx(self):
        dns = self.start_dns({
            ("plain.example.org", "A"): ["127.0.0.9"],
            ("plain.example.org", "AAAA"): ["::1"],
        })
        res = self.lookup(dns, "plain.example.org")
        self.assertEqual(res.verdict, "OK")
        self.assertIn("implicit", res.flags)
        self.assertEqual(res.hosts, [(0, "plain.example.org", ["::1", "127.0.0.9"])])

    def test_null_mx(self):
        dns = self.start_dns({("nomail.example.com", "MX"): NULL_MX,
                              ("nomail.example.com", "A"): ["127.0.0.3"]})
        res = self.lookup(dns, "nomail.example.com")
        self.assertEqual((res.verdict, res.code, res.status), ("NULL_MX", 556, "5.1.10"))
        self.assertEqual(res.text, "domain does not accept mail (null MX, RFC 7505)")
        self.assertEqual(res.hosts, [])
        self.assertEqual(dns.queried("nomail.example.com", "A"), [])  # no fallback to A
        self.assertEqual(dns.queried("."), [])

    def test_null_mx_among_others_is_ignored(self):
        dns = self.start_dns({
            ("mixed.example.com", "MX"): [(0, "."), (10, "mx.example.com")],
            ("mx.example.com", "A"): ["127.0.0.4"],
        })
        res = self.lookup(dns, "mixed.example.com")
        self.assertEqual(res.verdict, "OK")
        self.assertEqual(res.hosts, [(10, "mx.example.com", ["127.0.0.4"])])

    def test_nxdomain(self):
        dns = self.start_dns({("other.example.com", "A"): ["127.0.0.1"],
                              ("gone.example.com", "*"): NXDOMAIN})
        for domain in ("missing.example.com", "gone.example.com"):
            res = self.lookup(dns, domain)
            self.assertEqual((res.verdict, res.code, res.status), ("NXDOMAIN", 550, "5.1.2"))
            self.assertEqual(res.text, "domain not found")
            self.assertEqual(res.hosts, [])

    def test_servfail_is_temporary(self):
        dns = self.start_dns({("broken.example.com", "MX"): SERVFAIL})
        res = self.lookup(dns, "broken.example.com")
        self.assertEqual((res.verdict, res.code, res.status), ("TEMPORARY", 451, "4.4.3"))
        self.assertIn("SERVFAIL", res.text)

    def test_timeout_is_temporary_and_bounded(self):
        dns = self.start_dns({("slow.example.com", "*"): TIMEOUT})
        start = time.monotonic()
        res = self.lookup(dns, "slow.example.com", timeout_ms=1500)
        wall = time.monotonic() - start
        self.assertEqual((res.verdict, res.code, res.status), ("TEMPORARY", 451, "4.4.3"))
        self.assertIn("timeout", res.text)
        self.assertGreaterEqual(res.elapsed_ms, 1400)
        self.assertLess(res.elapsed_ms, 3000)
        self.assertLess(wall, 10)
        self.assertGreaterEqual(len(dns.queried("slow.example.com", "MX")), 1)

    def test_mx_host_timeout_skips_only_that_host(self):
        dns = self.start_dns({
            ("example.com", "MX"): [(10, "slow.example.com"), (20, "fine.example.com")],
            ("slow.example.com", "*"): TIMEOUT,
            ("fine.example.com", "A"): ["127.0.0.5"],
        })
        res = self.lookup(dns, "example.com", timeout_ms=1000)
        self.assertEqual(res.verdict, "OK")
        self.assertEqual(res.hosts, [(20, "fine.example.com", ["127.0.0.5"])])
        self.assertLess(res.elapsed_ms, 2500)

    def test_no_address(self):
        dns = self.start_dns({
            ("example.com", "MX"): [(10, "a.example.com"), (20, "b.example.com")],
            ("a.example.com", "TXT"): ["exists, no address"],
        })
        res = self.lookup(dns, "example.com")
        self.assertEqual((res.verdict, res.code, res.status), ("NO_ADDRESS", 451, "4.4.4"))
        self.assertEqual(res.hosts, [])
        # Both families of both hosts were asked.
        for host in ("a.example.com", "b.example.com"):
            self.assertGreaterEqual(len(dns.queried(host, "A")), 1)
            self.assertGreaterEqual(len(dns.queried(host, "AAAA")), 1)

    def test_address_servfail_is_temporary(self):
        dns = self.start_dns({
            ("example.com", "MX"): [(10, "mx.example.com")],
            ("mx.example.com", "A"): SERVFAIL,
            ("mx.example.com", "TXT"): ["here"],
        })
        res = self.lookup(dns, "example.com")
        self.assertEqual((res.verdict, res.status), ("TEMPORARY", "4.4.3"))
        self.assertIn("SERVFAIL", res.text)

    def test_numeric_mx_target_is_unusable(self):
        dns = self.start_dns({("example.com", "MX"): [(10, "192.0.2.1")]})
        res = self.lookup(dns, "example.com")
        self.assertEqual(res.verdict, "TEMPORARY")
        self.assertIn("no usable MX", res.text)
        self.assertEqual(dns.queried("192.0.2.1"), [])

    # ---- CNAMEs and addresses ------------------------------------------------------------

    def test_cname_exchanger(self):
        dns = self.start_dns({
            ("example.com", "MX"): [(10, "mx.alias.example")],
            ("mx.alias.example", "CNAME"): ["real.example.net"],
            ("real.example.net", "A"): ["127.0.0.6"],
            ("real.example.net", "AAAA"): ["::1"],
        })
        res = self.lookup(dns, "example.com")
        self.assertEqual(res.verdict, "OK")
        # The host keeps the name the MX gave it; the addresses are the alias target's.
        self.assertEqual(res.hosts, [(10, "mx.alias.example", ["::1", "127.0.0.6"])])

    def test_cname_domain(self):
        dns = self.start_dns({
            ("mail.example.com", "CNAME"): ["example.net"],
            ("example.net", "MX"): [(5, "mx.example.net")],
            ("mx.example.net", "A"): ["127.0.0.7"],
        })
        res = self.lookup(dns, "mail.example.com")
        self.assertEqual(res.verdict, "OK")
        self.assertEqual(res.hosts, [(5, "mx.example.net", ["127.0.0.7"])])

    def test_aaaa_and_a(self):
        dns = self.start_dns({
            ("example.com", "MX"): [(10, "dual.example.com")],
            ("dual.example.com", "A"): ["127.0.0.8", "127.0.0.9"],
            ("dual.example.com", "AAAA"): ["::1", "2001:db8::25"],
        })
        res = self.lookup(dns, "example.com")
        self.assertEqual(len(res.hosts), 1)
        addrs = res.hosts[0][2]
        self.assertEqual(sorted(addrs[:2]), ["2001:db8::25", "::1"])  # AAAA first
        self.assertEqual(sorted(addrs[2:]), ["127.0.0.8", "127.0.0.9"])

    def test_address_lookups_run_in_parallel(self):
        delay = 1.0
        zone = {("example.com", "MX"): [(i, "h%d.example.com" % i) for i in range(5)]}
        for i in range(5):
            zone[("h%d.example.com" % i, "A")] = Delayed(delay, ["127.0.1.%d" % i])
            zone[("h%d.example.com" % i, "AAAA")] = Delayed(delay, [])
        dns = self.start_dns(zone)
        res = self.lookup(dns, "example.com", timeout_ms=8000)
        self.assertEqual(res.names, ["h%d.example.com" % i for i in range(5)])
        self.assertEqual(res.hosts[4][2], ["127.0.1.4"])
        # All ten address queries were sent before the first answer could come back (one after
        # another they would be at least `delay` apart). Retransmissions come later; ignore them.
        first = {}
        for (name, tname, _), t in zip(dns.queries, dns.query_times):
            if name.startswith("h"):
                first.setdefault((name, tname), t)
        self.assertEqual(len(first), 10)
        self.assertLess(max(first.values()) - min(first.values()), delay / 2)

    def test_exchanger_cap_over_tcp(self):
        zone = {("big.example.com", "MX"): [
            (i, "mail-exchanger-number-%02d.big.example.com" % i) for i in range(40)]}
        for i in range(40):
            zone[("mail-exchanger-number-%02d.big.example.com" % i, "A")] = ["127.0.2.%d" % i]
        dns = self.start_dns(zone)
        res = self.lookup(dns, "big.example.com")
        self.assertEqual(res.verdict, "OK")
        self.assertEqual(len(res.hosts), 32)
        self.assertEqual([h[0] for h in res.hosts], list(range(32)))
        self.assertEqual(res.hosts[31][2], ["127.0.2.31"])
        transports = {q[2] for q in dns.queried("big.example.com", "MX")}
        self.assertIn("tcp", transports)  # the UDP answer was truncated
        self.assertEqual(dns.queried("mail-exchanger-number-35.big.example.com"), [])

    # ---- no DNS at all, and names libunbound would keep to itself --------------------------

    def test_address_literal_skips_dns(self):
        dns = self.start_dns({})
        res = self.lookup(dns, "[127.0.0.1]")
        self.assertEqual(res.verdict, "OK")
        self.assertIn("literal", res.flags)
        self.assertEqual(res.hosts, [(0, "[127.0.0.1]", ["127.0.0.1"])])
        res = self.lookup(dns, "[IPv6:::1]")
        self.assertEqual(res.hosts, [(0, "[IPv6:::1]", ["::1"])])
        res = self.lookup(dns, "[300.1.1.1]")
        self.assertEqual((res.verdict, res.code), ("BAD_DOMAIN", 550))
        self.assertEqual(dns.queries, [])

    def test_bad_domain(self):
        dns = self.start_dns({})
        res = self.lookup(dns, "bad..example.com")
        self.assertEqual((res.verdict, res.status), ("BAD_DOMAIN", "5.1.2"))
        self.assertEqual(dns.queries, [])

    def test_test_tld_reaches_the_forwarder(self):
        dns = self.start_dns({("relay.test", "MX"): [(1, "mx.relay.test")],
                              ("mx.relay.test", "A"): ["127.0.0.10"]})
        res = self.lookup(dns, "relay.test")
        self.assertEqual(res.hosts, [(1, "mx.relay.test", ["127.0.0.10"])])


class PrivateNetnsTests(unittest.TestCase):
    """Runs DnsTests again in a network namespace with only loopback: any query meant for
    anything but 127.0.0.1 would fail there instead of leaving the machine."""

    def test_dns_tests_in_private_netns(self):
        if os.environ.get(NETNS_ENV):
            self.skipTest("already inside the private namespace")
        unshare = ["unshare", "-n"] if os.geteuid() == 0 else ["unshare", "-rn"]
        if not shutil.which("unshare") or not shutil.which("ip"):
            self.skipTest("unshare or ip not installed")
        probe = subprocess.run(unshare + ["true"], capture_output=True, timeout=10)
        if probe.returncode != 0:
            self.skipTest("no network namespaces here: %s" % probe.stderr.decode().strip())
        env = dict(os.environ, **{NETNS_ENV: "1", "POSTHORN_BUILD": BUILD})
        script = 'ip link set lo up && exec "$0" "$@"'
        p = subprocess.run(unshare + ["sh", "-c", script, sys.executable, os.path.abspath(__file__),
                                      "-v", "DnsTests"],
                           capture_output=True, text=True, timeout=240, env=env)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertRegex(p.stderr, r"Ran [1-9]\d* tests")
        self.assertNotIn("skipped", p.stderr.splitlines()[-1])


if __name__ == "__main__":
    unittest.main()
