"""
fakedns.py - a fake DNS server for Posthorn's tests: UDP and TCP on 127.0.0.1 (one port, picked
by the kernel), answering from a table in background threads, like a recursive resolver that
knows only that table. Standard library only, with its own small DNS wire encoder/decoder.

    from fakedns import FakeDNS, SERVFAIL, NXDOMAIN, TIMEOUT, NULL_MX
    zone = {
        ("example.com", "MX"): [(10, "mx1.example.com"), (20, "mx2.example.com")],
        ("mx1.example.com", "A"): ["127.0.0.2"],
        ("mx1.example.com", "AAAA"): ["::1"],
        ("alias.example.com", "CNAME"): ["mx1.example.com"],
        ("nomail.example.com", "MX"): NULL_MX,
        ("broken.example.com", "MX"): SERVFAIL,
        ("slow.example.com", "*"): TIMEOUT,
    }
    with FakeDNS(zone) as dns:
        run_tool("--forwarder", dns.forwarder, ...)      # "127.0.0.1@PORT"
        dns.queries                                      # [(name, type, "udp"|"tcp"), ...]
        dns.query_times                                  # time.monotonic() of each query

The table: keys are (name, type); names are case-insensitive with an optional trailing dot;
types are "A", "AAAA", "MX", "CNAME", "TXT", "NS", "PTR", a number, or "*" (any type: for the
special values). Values are lists of records - A/AAAA: address strings; MX: (preference, target)
tuples; CNAME/NS/PTR: one target name; TXT: strings - or one of the specials:
    SERVFAIL, REFUSED  answer with that rcode
    NXDOMAIN           the name does not exist (even if it has other entries)
    TIMEOUT            never answer (UDP or TCP)
    Delayed(seconds, value)   answer value after a delay (a thread per delayed UDP answer)
    NULL_MX            the RFC 7505 null MX, [(0, ".")]
Answering: an entry for (name, type) wins over a special for (name, "*"). A (name, "CNAME") entry
answers any other type with the CNAME followed through the table (at most 8 links), as a
recursive resolver does. A name with entries but none for the type gets NODATA; a name without
entries gets NXDOMAIN; both with an SOA in the authority section. A UDP answer larger than the
query's EDNS payload size (512 without EDNS) is sent truncated (TC set, no records), so the client
retries over TCP. The table may be changed while the server runs (set/remove, under a lock).
Every socket read is bounded; stop() (or leaving the with block) closes everything and joins the
threads.
"""

import ipaddress
import socket
import struct
import threading
import time

POLL = 0.2           # seconds between checks of the stop flag
MAX_CNAME_CHAIN = 8

TYPES = {"A": 1, "NS": 2, "CNAME": 5, "SOA": 6, "PTR": 12, "MX": 15, "TXT": 16, "AAAA": 28,
         "OPT": 41, "ANY": 255}
TYPE_NAMES = {v: k for k, v in TYPES.items()}
CLASS_IN = 1
RCODE_NOERROR, RCODE_FORMERR, RCODE_SERVFAIL, RCODE_NXDOMAIN, RCODE_REFUSED = 0, 1, 2, 3, 5


class Special:
    """A canned behaviour instead of records."""

    def __init__(self, name, rcode=None):
        self.name = name
        self.rcode = rcode

    def __repr__(self):
        return self.name


SERVFAIL = Special("SERVFAIL", RCODE_SERVFAIL)
REFUSED = Special("REFUSED", RCODE_REFUSED)
NXDOMAIN = Special("NXDOMAIN", RCODE_NXDOMAIN)
TIMEOUT = Special("TIMEOUT")
NULL_MX = [(0, ".")]


class Delayed:
    """Answer `value` (records or a special) after `seconds`."""

    def __init__(self, seconds, value):
        self.seconds = seconds
        self.value = value


class FormatError(ValueError):
    """A query we cannot parse."""


# ---- names and types -----------------------------------------------------------------------

def norm_name(name):
    name = name.lower()
    if name.endswith(".") and name != ".":
        name = name[:-1]
    return name


def type_name(t):
    if isinstance(t, int):
        return TYPE_NAMES.get(t, str(t))
    return t.upper() if t != "*" else "*"


def encode_name(name):
    if name in (".", ""):
        return b"\x00"
    out = b""
    for label in name.rstrip(".").split("."):
        raw = label.encode("ascii")
        if not 0 < len(raw) < 64:
            raise ValueError("bad label in %r" % name)
        out += bytes([len(raw)]) + raw
    return out + b"\x00"


def decode_name(msg, off):
    """Reads a (possibly compressed) name at off; returns (text, offset after it)."""
    labels, end, jumps = [], None, 0
    while True:
        if off >= len(msg):
            raise FormatError("name runs past the message")
        n = msg[off]
        if n & 0xC0 == 0xC0:
            if off + 1 >= len(msg) or jumps > 16:
                raise FormatError("bad compression pointer")
            if end is None:
                end = off + 2
            off = ((n & 0x3F) << 8) | msg[off + 1]
            jumps += 1
            continue
        if n & 0xC0:
            raise FormatError("extended label type")
        off += 1
        if n == 0:
            break
        if off + n > len(msg):
            raise FormatError("label runs past the message")
        labels.append(msg[off:off + n].decode("latin-1"))
        off += n
    return (".".join(labels) or "."), (end if end is not None else off)


# ---- records -------------------------------------------------------------------------------

def encode_rdata(tname, value):
    if tname == "A":
        return ipaddress.IPv4Address(value).packed
    if tname == "AAAA":
        return ipaddress.IPv6Address(value).packed
    if tname == "MX":
        pref, target = value
        return struct.pack("!H", pref) + encode_name(target)
    if tname in ("CNAME", "NS", "PTR"):
        return encode_name(value)
    if tname == "TXT":
        raw = value.encode() if isinstance(value, str) else value
        chunks = [raw[i:i + 255] for i in range(0, len(raw), 255)] or [b""]
        return b"".join(bytes([len(c)]) + c for c in chunks)
    if isinstance(value, bytes):
        return value
    raise ValueError("cannot encode %s record %r" % (tname, value))


def encode_rr(name, tnum, ttl, rdata, rclass=CLASS_IN):
    return encode_name(name) + struct.pack("!HHIH", tnum, rclass, ttl, len(rdata)) + rdata


def soa_rdata(zone, ttl):
    return (encode_name("ns." + zone if zone != "." else "ns.invalid") +
            encode_name("hostmaster." + zone if zone != "." else "hostmaster.invalid") +
            struct.pack("!IIIII", 1, 3600, 600, 86400, ttl))


def zone_of(name):
    labels = name.split(".")
    return ".".join(labels[-2:]) if len(labels) >= 2 else name


# ---- queries -------------------------------------------------------------------------------

class Query:
    """A parsed query: id, flags, question bytes, name, type, EDNS payload size (None: no EDNS)."""

    def __init__(self, msg):
        if len(msg) < 12:
            raise FormatError("short header")
        self.id, self.flags, qd, an, ns, ar = struct.unpack("!HHHHHH", msg[:12])
        if qd != 1:
            raise FormatError("qdcount %d" % qd)
        name, off = decode_name(msg, 12)
        if off + 4 > len(msg):
            raise FormatError("short question")
        self.qtype, self.qclass = struct.unpack("!HH", msg[off:off + 4])
        self.question = msg[12:off + 4]
        self.name = norm_name(name)
        self.edns_size = self._find_edns(msg, off + 4, an + ns + ar)

    @staticmethod
    def _find_edns(msg, off, count):
        for _ in range(count):
            _, off = decode_name(msg, off)
            if off + 10 > len(msg):
                raise FormatError("short record")
            rtype, rclass, _, rdlen = struct.unpack("!HHIH", msg[off:off + 10])
            off += 10 + rdlen
            if rtype == TYPES["OPT"]:
                return max(512, rclass)
        return None


class FakeDNS:
    def __init__(self, table=None, ttl=0):
        self._table = {}
        self._lock = threading.Lock()
        for (name, tname), value in (table or {}).items():
            self.set(name, tname, value)
        self.ttl = ttl
        self.queries = []      # (name, type, transport) in arrival order
        self.query_times = []  # time.monotonic() of each, same order
        self.port = None
        self._stop = threading.Event()
        self._threads = []
        self._socks = []

    # -- the table --
    def set(self, name, tname, value):
        with self._lock:
            self._table[(norm_name(name), type_name(tname))] = value

    def remove(self, name, tname):
        with self._lock:
            self._table.pop((norm_name(name), type_name(tname)), None)

    def _get(self, name, tname):
        """The entry for (name, type), else a special for (name, "*"), else None."""
        with self._lock:
            v = self._table.get((name, tname))
            if v is None:
                star = self._table.get((name, "*"))
                if isinstance(star, (Special, Delayed)):
                    v = star
            return v

    def _exists(self, name):
        with self._lock:
            return any(k[0] == name for k in self._table)

    # -- answering --
    def _resolve(self, name, tname):
        """Returns (rcode, answer RR bytes list, delay, timeout) for one question."""
        answers, delay = [], 0.0
        for depth in range(MAX_CNAME_CHAIN + 1):
            v = self._get(name, tname)
            if isinstance(v, Delayed):
                delay = max(delay, v.seconds)
                v = v.value
            if v is TIMEOUT:
                return None, [], delay, True
            if isinstance(v, Special):
                return v.rcode, (answers if v is NXDOMAIN else []), delay, False
            if v is not None:
                tnum = TYPES.get(tname) if not tname.isdigit() else int(tname)
                answers += [encode_rr(name, tnum, self.ttl, encode_rdata(tname, r)) for r in v]
                return RCODE_NOERROR, answers, delay, False
            cname = self._get(name, "CNAME") if tname != "CNAME" else None
            if isinstance(cname, list) and cname and depth < MAX_CNAME_CHAIN:
                answers.append(encode_rr(name, TYPES["CNAME"], self.ttl,
                                         encode_name(cname[0])))
                name = norm_name(cname[0])
                continue
            break
        rcode = RCODE_NOERROR if self._exists(name) else RCODE_NXDOMAIN
        return rcode, answers, delay, False

    def _respond(self, q, transport):
        tname = type_name(q.qtype)
        with self._lock:
            self.queries.append((q.name, tname, transport))
            self.query_times.append(time.monotonic())
        rcode, answers, delay, timeout = self._resolve(q.name, tname)
        if timeout:
            return None, 0.0
        authority = []
        if rcode in (RCODE_NOERROR, RCODE_NXDOMAIN) and not answers:
            zone = zone_of(q.name)
            authority.append(encode_rr(zone, TYPES["SOA"], self.ttl, soa_rdata(zone, self.ttl)))
        return self._message(q, rcode, answers, authority, transport), delay

    def _message(self, q, rcode, answers, authority, transport, truncated=False):
        opt = []
        if q.edns_size is not None:
            opt.append(encode_name(".") + struct.pack("!HHIH", TYPES["OPT"], 1232, 0, 0))
        flags = 0x8000 | (q.flags & 0x7900) | 0x0080 | rcode  # QR, opcode+RD kept, RA
        if truncated:
            flags |= 0x0200
        head = struct.pack("!HHHHHH", q.id, flags, 1, len(answers), len(authority), len(opt))
        msg = head + q.question + b"".join(answers) + b"".join(authority) + b"".join(opt)
        limit = q.edns_size or 512
        if transport == "udp" and len(msg) > limit and not truncated:
            return self._message(q, rcode, [], [], transport, truncated=True)
        return msg

    def _formerr(self, msg):
        if len(msg) < 12:
            return None
        qid, flags = struct.unpack("!HH", msg[:4])
        return struct.pack("!HHHHHH", qid, 0x8000 | (flags & 0x7900) | RCODE_FORMERR, 0, 0, 0, 0)

    def _answer(self, msg, transport):
        """Returns (reply bytes or None, delay)."""
        try:
            return self._respond(Query(msg), transport)
        except (FormatError, ValueError, struct.error):
            return self._formerr(msg), 0.0

    # -- sockets --
    def start(self):
        for _ in range(50):
            udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            udp.bind(("127.0.0.1", 0))
            port = udp.getsockname()[1]
            tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                tcp.bind(("127.0.0.1", port))
            except OSError:
                udp.close()
                tcp.close()
                continue
            tcp.listen(16)
            break
        else:
            raise RuntimeError("fakedns: no port free for both UDP and TCP")
        udp.settimeout(POLL)
        tcp.settimeout(POLL)
        self.port = port
        self._socks = [udp, tcp]
        self._spawn(self._serve_udp, udp)
        self._spawn(self._serve_tcp, tcp)
        return self

    @property
    def forwarder(self):
        return "127.0.0.1@%d" % self.port

    def _spawn(self, fn, *args):
        t = threading.Thread(target=fn, args=args, daemon=True)
        self._threads.append(t)
        t.start()

    def _serve_udp(self, sock):
        while not self._stop.is_set():
            try:
                msg, peer = sock.recvfrom(65535)
            except socket.timeout:
                continue
            except OSError:
                return
            reply, delay = self._answer(msg, "udp")
            if reply is None:
                continue
            if delay:
                self._spawn(self._send_later, sock, reply, peer, delay)
            else:
                self._sendto(sock, reply, peer)

    @staticmethod
    def _sendto(sock, reply, peer):
        try:
            sock.sendto(reply, peer)
        except OSError:
            pass

    def _send_later(self, sock, reply, peer, delay):
        if not self._stop.wait(delay):
            self._sendto(sock, reply, peer)

    def _serve_tcp(self, sock):
        while not self._stop.is_set():
            try:
                conn, _ = sock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            conn.settimeout(POLL)
            self._socks.append(conn)
            self._spawn(self._serve_conn, conn)

    def _read_exact(self, conn, n):
        buf = b""
        while len(buf) < n and not self._stop.is_set():
            try:
                chunk = conn.recv(n - len(buf))
            except socket.timeout:
                continue
            except OSError:
                return None
            if not chunk:
                return None
            buf += chunk
        return buf if len(buf) == n else None

    def _serve_conn(self, conn):
        with conn:
            while not self._stop.is_set():
                head = self._read_exact(conn, 2)
                msg = head and self._read_exact(conn, struct.unpack("!H", head)[0])
                if not msg:
                    return
                reply, delay = self._answer(msg, "tcp")
                if reply is None:
                    continue  # TIMEOUT: keep the connection, never answer
                if delay and self._stop.wait(delay):
                    return
                try:
                    conn.sendall(struct.pack("!H", len(reply)) + reply)
                except OSError:
                    return

    def stop(self):
        self._stop.set()
        for s in list(self._socks):
            try:
                s.close()
            except OSError:
                pass
        for t in self._threads:
            t.join(timeout=2 * POLL + 1)

    def queried(self, name, tname=None):
        """The queries seen for name (and type, if given)."""
        name = norm_name(name)
        with self._lock:
            return [q for q in self.queries
                    if q[0] == name and (tname is None or q[1] == type_name(tname))]

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
        return False
