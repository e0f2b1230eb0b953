"""Fault injection for `delivery = queue` (issue 4): the daemon runs with the LD_PRELOAD shim
tests/fault/faultfs.c (BUILD/fault/libfaultfs.so), and each test arms one failure - ENOSPC or EIO
on the open, write, sync, close or rename of a message's data or envelope file, or on the sync of
queue/ - while a transaction is in flight. The client must get 452 4.3.1 (ENOSPC) or 451 4.3.0
(anything else), the session and the daemon must go on (the next transaction, with the fault
disarmed, gets 250 and is queued), and the spool must stay consistent: nothing of the failed
message in incoming/ or queue/, every acknowledged message intact (byte-exact .msg, .env with a
valid checksum). The shim's log proves that each fault really fired.

Rules are armed at run time by rewriting the rules file (temporary file + rename); the shim
re-reads it on its next intercepted call, so no restart is needed. Every rule names the SMTP
worker's pid (learnt from a logging-only rule on the first message), so a queue manager process
touching queue/ at the same time can neither take the fault nor be hurt by it. Acknowledged
messages may already have been delivered by it: each must be intact in queue/ or in the
Maildir, never missing; a refused one must be in neither.
"""
import os
import re
import time
import unittest

from phtest import (BIN, BUILD, Daemon, PosthornTestCase, dot_stuff, queued_qid,
                    simple_message, split_received)

FAULTFS = os.path.join(BUILD, "fault", "libfaultfs.so")

# errno name -> (reply code, enhanced code) the client must see
ERRNOS = {"ENOSPC": (452, "4.3.1"), "EIO": (451, "4.3.0")}

# name -> (rule with {err}, reply that fails: "data" = the reply to DATA, "end" = after the
# final dot, big message?). `sync` covers fsync and fdatasync, `anywrite` write/pwrite/writev:
# the tests name the file that fails, not the exact call the spool uses for it today.
CASES = {
    "open_data": ("open {err} path=*/incoming/*.msg count=1", "data", False),
    "write_data": ("anywrite {err} path=*/incoming/*.msg count=1", "end", False),
    "write_data_streaming": ("anywrite {err} path=*/incoming/*.msg count=1", "end", True),
    "open_envelope": ("open {err} path=*/incoming/*.env count=1", "end", False),
    "write_envelope": ("anywrite {err} path=*/incoming/*.env count=1", "end", False),
    "sync_data": ("sync {err} path=*/incoming/*.msg count=1", "end", False),
    "sync_envelope": ("sync {err} path=*/incoming/*.env count=1", "end", False),
    "close_data": ("close {err} path=*/incoming/*.msg count=1", "end", False),
    "close_envelope": ("close {err} path=*/incoming/*.env count=1", "end", False),
    "rename_data": ("rename {err} path=*/incoming/*.msg count=1", "end", False),
    "rename_envelope": ("rename {err} path=*/incoming/*.env count=1", "end", False),
    # delay: a failing disk is slow, and the window in which queue/ shows the message is real
    "sync_queue_dir": ("sync {err} path=*/queue count=1 delay=1000", "end", False),
}

# A failed fsync of queue/ refuses the whole batch: the queue manager must never see those
# messages. The spool renames the envelope to queue/<qid>.new first and publishes it as .env
# only after the directory fsync succeeded (spool.c, commit_one/publish); the directory-sync
# cases below check that a refused message is never delivered.

FIRED_RE = re.compile(r"^fired op=(\S+) errno=(\S+) path=(.*) pid=(\d+) rule=(\d+)$")
RACE_RETRIES = 20  # a file the queue manager removed while we read it: look again


def fnv1a64(data):
    h = 0xcbf29ce484222325
    for b in data:
        h = ((h ^ b) * 0x100000001b3) & 0xffffffffffffffff
    return h


def big_body(marker):
    line = ("%s " % marker + "x" * 70 + "\r\n").encode()
    return line * 2000  # ~150 KB: the spool writes it out while DATA still streams


class FaultCase(PosthornTestCase):
    def setUp(self):
        if not os.path.exists(FAULTFS):
            raise AssertionError("fault shim not built: %s (build target fault_faultfs)" % FAULTFS)
        self.dir = self.tmpdir()
        self.qdir = os.path.join(self.dir, "q")
        self.rules = os.path.join(self.dir, "faults.rules")
        self.fault_log = os.path.join(self.dir, "faults.log")
        self.maildir = os.path.join(self.dir, "mail", "example.net", "bob", "Maildir")
        self.generation = 0
        self.worker_pid = None
        self.arm()
        self.serial = 0

    # -- the daemon --
    def config(self):
        """The daemon's whole configuration (the one place that writes it). bob@example.net
        is local and delivered into self.maildir."""
        return ("hostname = mx.test\n"
                "delivery = queue\n"
                "queue_dir = %s\n"
                "[listener mx]\n"
                "listen = 127.0.0.1:0\n"
                "[domain example.net]\n"
                "users = bob postmaster\n"
                "maildir = %s/mail/%%d/%%u/Maildir\n" % (self.qdir, self.dir))

    def start(self, check_exit=True):
        path = os.path.join(self.dir, "posthorn.conf")
        with open(path, "w") as f:
            f.write(self.config())
        env = dict(os.environ)
        env["LD_PRELOAD"] = FAULTFS
        env["PH_FAULT_FILE"] = self.rules
        env["PH_FAULT_LOG"] = self.fault_log
        # a sanitizer runtime loaded as a shared library wants to come first; the shim does not
        # use it, so the check is off (harmless for a build without sanitizers)
        asan = env.get("ASAN_OPTIONS", "")
        env["ASAN_OPTIONS"] = (asan + ":" if asan else "") + "verify_asan_link_order=0"
        d = Daemon([BIN, "serve", "--config", path], listeners=1, env=env)
        self.addCleanup(self._finish, d, check_exit)
        d.start()
        return d

    # -- the shim --
    def arm(self, *rules):
        """Replaces the active rules (none: disarmed), each limited to the SMTP worker once its
        pid is known. The generation line makes every version differ, so the same rule armed
        again starts with fresh counters."""
        self.generation += 1
        tmp = self.rules + ".tmp"
        with open(tmp, "w") as f:
            f.write("# generation %d\n" % self.generation)
            for r in rules:
                f.write(r + (" pid=%d" % self.worker_pid if self.worker_pid else "") + "\n")
        os.rename(tmp, self.rules)

    def learn_worker(self, c, acked):
        """Sends one good message under a logging-only rule: the process that creates its
        data file is the SMTP worker, whose pid every later rule names."""
        self.arm("open none path=*/incoming/*.msg count=1")
        self.send_ok(c, self.message("before")[1], acked)
        traced = [l for l in self.fault_lines() if " errno=none " in l]
        self.assertEqual(len(traced), 1, "the shim did not see the spool open its file: %r"
                         % self.fault_lines())
        self.worker_pid = int(FIRED_RE.match(traced[0]).group(4))
        self.arm()

    def fault_lines(self):
        try:
            with open(self.fault_log) as f:
                return f.read().splitlines()
        except FileNotFoundError:
            return []

    def fired(self):
        """The faults that fired so far: dicts with op, errno, path."""
        out = []
        for line in self.fault_lines():
            self.assertFalse(line.startswith("bad-rule"), "shim refused a rule: " + line)
            m = FIRED_RE.match(line)
            if m and m.group(2) != "none":
                out.append({"op": m.group(1), "errno": m.group(2), "path": m.group(3)})
        return out

    # -- SMTP --
    def message(self, tag):
        self.serial += 1
        marker = "%s-%d-%s" % (tag, self.serial, os.urandom(4).hex())
        return marker, simple_message(subject=marker, to="bob@example.net")

    def ehlo_client(self, d):
        c = self.raw(d)
        self.ehlo(c)
        return c

    def start_transaction(self, c, sender="alice@example.org"):
        self.assertReply(c.cmd("MAIL FROM:<%s>" % sender), 250)
        self.assertReply(c.cmd("RCPT TO:<bob@example.net>"), 250)
        return c.cmd("DATA")

    def send_ok(self, c, body, acked):
        """One transaction that must be queued; records it in acked (qid -> body)."""
        self.assertReply(self.start_transaction(c), 354)
        c.send(dot_stuff(body))
        qid = queued_qid(c.read_reply())
        acked[qid] = body
        return qid

    def send_failing(self, c, body, where):
        """One transaction under an armed fault; returns the reply that reports it."""
        r = self.start_transaction(c)
        if where == "data":  # a refused DATA keeps the transaction: the client resets it
            self.assertReply(c.cmd("RSET"), 250)
            return r
        self.assertReply(r, 354)
        c.send(dot_stuff(body))
        return c.read_reply()

    # -- the spool --
    def listing(self, sub):
        return sorted(os.listdir(os.path.join(self.qdir, sub)))

    def read_queued(self, qid, ext):
        with open(os.path.join(self.qdir, "queue", qid + "." + ext), "rb") as f:
            return f.read()

    def delivered(self):
        """The messages in bob's Maildir (new/ and cur/), as bytes."""
        out = []
        for sub in ("new", "cur"):
            path = os.path.join(self.maildir, sub)
            for name in (os.listdir(path) if os.path.isdir(path) else []):
                with open(os.path.join(path, name), "rb") as f:
                    out.append(f.read())
        return out

    def check_envelope(self, qid, size):
        raw = self.read_queued(qid, "env")
        self.assertTrue(raw.endswith(b"\n"), raw[-100:])
        cut = raw.rstrip(b"\n").rfind(b"\n") + 1
        body, last = raw[:cut], raw[cut:].rstrip(b"\n").decode()
        self.assertEqual(last, "end %016x" % fnv1a64(body), "bad checksum line in %s.env" % qid)
        lines = body.decode().split("\n")
        self.assertEqual(lines[0], "posthorn-envelope 1")
        self.assertIn("id " + qid, lines)
        self.assertIn("size %d" % size, lines)
        self.assertTrue([l for l in lines if l.startswith("rcpt <bob@example.net> ")], lines)

    def spool_problems(self, acked, absent_markers, absent_qids):
        """What is wrong with the spool now (empty list: consistent)."""
        problems = []
        for sub in ("incoming", "corrupt"):
            if self.listing(sub):
                problems.append("files in %s/: %r" % (sub, self.listing(sub)))
        # queue/ before the Maildir: a message delivered in between is then seen in the Maildir,
        # so "in neither" never comes from a delivery in progress
        queue = self.listing("queue")
        strays = [n for n in queue if n.split(".")[0] not in acked]
        if strays:
            problems.append("queue/ holds files of no acknowledged message: %r" % strays)
        delivered = self.delivered()
        for qid, body in acked.items():
            mark = body.split(b"Subject: ")[1].split(b"\r\n")[0]
            copies = [m for m in delivered if mark in m]
            if qid + ".env" in queue:
                data = self.read_queued(qid, "msg")
                hdr, rest = split_received(data)
                if rest != body or qid not in hdr:
                    problems.append("queued message %s is not byte-exact" % qid)
                self.check_envelope(qid, len(data))
            elif (len(copies) != 1 or qid.encode() not in copies[0]
                  or not copies[0].endswith(body.replace(b"\r\n", b"\n"))):  # Maildir: LF
                problems.append("acknowledged %s is neither queued nor delivered intact (%d "
                                "copies in the Maildir)" % (qid, len(copies)))
        for marker in absent_markers:
            for name in queue:
                if name.endswith(".msg") and marker.encode() in self.read_queued(name[:-4], "msg"):
                    problems.append("refused message %s is in queue/%s" % (marker, name))
            if [m for m in delivered if marker.encode() in m]:
                problems.append("refused message %s was delivered" % marker)
        for qid in absent_qids:
            if [n for n in queue if n.startswith(qid + ".")] or qid in acked:
                problems.append("refused %s is in queue/ or was acknowledged" % qid)
        return problems

    def check_spool(self, acked, absent_markers=(), absent_qids=()):
        """incoming/ and corrupt/ are empty; every acknowledged message is intact in queue/
        (byte-exact .msg, .env with its checksum) or delivered once (a copy may be in both for
        the moment between the Maildir rename and the queue/ cleanup); nothing of a refused
        message (by marker or qid) is anywhere. Only a file vanishing while it is read (the
        queue manager at work) makes it look again."""
        for _ in range(RACE_RETRIES):
            try:
                problems = self.spool_problems(acked, absent_markers, absent_qids)
                break
            except FileNotFoundError as e:
                problems = [repr(e)]
                time.sleep(0.05)
        self.assertEqual(problems, [], "the spool is not consistent")

    def qid_of(self, path):
        """The queue id in a spool file's path (None for a directory)."""
        m = re.search(r"/(?:incoming|queue)/([^/.]+)\.(?:msg|env)$", path)
        return m.group(1) if m else None


class SingleFaults(FaultCase):
    """One fault per test, in the middle of a session between two good transactions."""

    def run_case(self, rule, err, where, big):
        code, enhanced = ERRNOS[err]
        d = self.start()
        c = self.raw(d)
        self.ehlo(c)
        acked = {}
        self.learn_worker(c, acked)
        self.assertEqual(self.fired(), [], "a fault fired before it was armed")

        self.arm(rule.format(err=err))
        marker, body = self.message("failing")
        if big:
            body = simple_message(subject=marker, to="bob@example.net", body=big_body(marker))
        r = self.send_failing(c, body, where)
        self.assertReply(r, code, enhanced)
        fired = self.fired()
        self.assertEqual(len(fired), 1, "the fault did not fire exactly once: %r" % fired)
        self.assertEqual(fired[0]["errno"], err)
        failed_qid = self.qid_of(fired[0]["path"])
        # the reply came after the rollback: nothing of the failed message may be left
        self.check_spool(acked, [marker], [failed_qid] if failed_qid else [])

        self.arm()  # disarmed: the same session goes on
        self.send_ok(c, self.message("after")[1], acked)
        self.assertReply(c.cmd("NOOP"), 250)
        self.assertTrue(d.alive())
        self.check_spool(acked, [marker])
        self.assertEqual(len(self.fired()), 1)
        self.assertReply(c.cmd("QUIT"), 221)


def _make_case(rule, err, where, big):
    def test(self):
        self.run_case(rule, err, where, big)
    return test


for _name, (_rule, _where, _big) in CASES.items():
    for _err in ERRNOS:
        _test_name = "test_%s_%s" % (_name, _err.lower())
        _fn = _make_case(_rule, _err, _where, _big)
        _fn.__name__ = _test_name
        _fn.__doc__ = "%s -> %d %s" % (_rule.format(err=_err), *ERRNOS[_err])
        setattr(SingleFaults, _test_name, _fn)


class ShimBehaviour(FaultCase):
    def test_skip_and_count(self):
        """skip=1 count=1: the first message passes, the second fails, the third passes: the
        shim fires exactly where it is told (and the spool recovers in between)."""
        d = self.start()
        c = self.raw(d)
        self.ehlo(c)
        acked = {}
        self.learn_worker(c, acked)
        self.arm("sync EIO path=*/incoming/*.msg skip=1 count=1")
        first = self.send_ok(c, self.message("first")[1], acked)
        marker, body = self.message("second")
        self.assertReply(self.send_failing(c, body, "end"), 451, "4.3.0")
        third = self.send_ok(c, self.message("third")[1], acked)
        fired = self.fired()
        self.assertEqual(len(fired), 1, fired)
        failed = self.qid_of(fired[0]["path"])
        self.assertNotIn(failed, (first, third))
        self.check_spool(acked, [marker], [failed])

    def test_unarmed_shim_changes_nothing(self):
        """Rules for other files never fire on the spool's files."""
        d = self.start()
        c = self.raw(d)
        self.ehlo(c)
        acked = {}
        self.learn_worker(c, acked)
        self.arm("sync EIO path=*/nowhere/*", "anywrite ENOSPC path=/nonexistent/*")
        for i in range(3):
            self.send_ok(c, self.message("plain")[1], acked)
        self.assertEqual(self.fired(), [])
        self.check_spool(acked)


class ConcurrentFaults(FaultCase):
    """Ten sessions finish DATA at the same moment, so their commits share group-commit
    batches, and one fault fires inside a batch: every 250 must be a queued (or delivered)
    message and every 451/452 a message that is nowhere."""

    SESSIONS = 10

    def run_concurrent(self, rule, code, enhanced):
        d = self.start()
        acked = {}
        self.learn_worker(self.ehlo_client(d), acked)
        clients = []
        for i in range(self.SESSIONS):
            c = self.raw(d)
            self.ehlo(c)
            self.assertReply(self.start_transaction(c), 354)
            marker, body = self.message("client%d" % i)
            clients.append((c, marker, body))
        self.arm(rule)
        for c, _, body in clients:
            c.send(dot_stuff(body))
        refused = []
        for c, marker, body in clients:
            r = c.read_reply()
            if r.code == 250:
                acked[queued_qid(r)] = body
            else:
                self.assertReply(r, code, enhanced)
                refused.append(marker)
        fired = self.fired()
        self.assertEqual(len(fired), 1, "the fault did not fire exactly once: %r" % fired)
        self.assertTrue(refused, "the fault fired but every client got 250")
        self.check_spool(acked, refused)

        self.arm()
        for c, _, _ in clients:  # every session goes on
            self.send_ok(c, self.message("again")[1], acked)
        self.assertTrue(d.alive())
        self.check_spool(acked, refused)
        return len(refused)

    def test_one_data_sync_fails_in_a_batch(self):
        n = self.run_concurrent("sync EIO path=*/incoming/*.msg skip=4 count=1", 451, "4.3.0")
        self.assertEqual(n, 1)  # only the message whose sync failed is refused

    def test_one_envelope_rename_fails_in_a_batch(self):
        n = self.run_concurrent("rename ENOSPC path=*/incoming/*.env skip=3 count=1",
                                452, "4.3.1")
        self.assertEqual(n, 1)

    def test_directory_sync_fails_for_a_whole_batch(self):
        # the whole first batch is refused (its durability is unknown), later batches pass
        self.run_concurrent("sync ENOSPC path=*/queue count=1 delay=1000", 452, "4.3.1")


if __name__ == "__main__":
    unittest.main()
