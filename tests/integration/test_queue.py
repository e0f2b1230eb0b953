"""Integration tests for `delivery = queue` (issue 4): the 250 after DATA comes only when the
message is durable in queue_dir/queue (data + envelope); kill -9 at chosen points, then a
restart, never loses an acknowledged message and never keeps an unacknowledged one."""
import os
import signal
import smtplib
import time
import unittest

from phtest import BIN, TIMEOUT, Daemon, PosthornTestCase, dns_blackhole, queued_qid

HELO = "client.example"


def envelope_fields(path):
    with open(path, "rb") as f:
        lines = f.read().decode().split("\n")
    return lines


class QueueCase(PosthornTestCase):
    def setUp(self):
        self.dir = self.tmpdir()
        self.qdir = os.path.join(self.dir, "q")

    def conf(self, extra=""):
        # recipients in example.net are not local: relaying from 127.0.0.1 is allowed, and
        # with a DNS that never answers they wait in the queue (deferred), where tests see them
        return ("hostname = mx.test\n"
                "delivery = queue\n"
                "relay_networks = 127.0.0.0/8\n"
                "dns_forwarders = %s\n"
                "dns_timeout = 1s\n" % dns_blackhole() +
                ("queue_dir = %s\n%s"
                 "[listener mx]\n"
                 "listen = 127.0.0.1:0\n" % (self.qdir, extra)))

    def serve(self, text, check_exit=True):
        path = os.path.join(self.dir, "posthorn.conf")
        with open(path, "w") as f:
            f.write(text)
        d = Daemon([BIN, "serve", "--config", path], listeners=1)
        self.addCleanup(self._finish, d, check_exit)
        d.start()
        return d

    def queued(self):
        q = os.path.join(self.qdir, "queue")
        return sorted(n[:-4] for n in os.listdir(q) if n.endswith(".env"))

    def incoming(self):
        return os.listdir(os.path.join(self.qdir, "incoming"))

    def test_250_means_on_disk(self):
        d = self.serve(self.conf())
        s = smtplib.SMTP("127.0.0.1", d.port, local_hostname=HELO, timeout=TIMEOUT)
        msg = b"Subject: queued\r\n\r\nline one\r\n.leading dot\r\n"
        s.sendmail("alice@example.org", ["bob@example.net", "carol@example.net"], msg)
        code, text = s.noop()
        s.quit()
        ids = self.queued()
        self.assertEqual(len(ids), 1)
        qid = ids[0]
        with open(os.path.join(self.qdir, "queue", qid + ".msg"), "rb") as f:
            data = f.read()
        self.assertTrue(data.startswith(b"Received: from " + HELO.encode()))
        self.assertTrue(data.endswith(msg), data)  # dot-unstuffed, byte-exact
        env = envelope_fields(os.path.join(self.qdir, "queue", qid + ".env"))
        self.assertEqual(env[0], "posthorn-envelope 1")
        self.assertIn("id " + qid, env)
        self.assertIn("from <alice@example.org>", env)
        # pending, or deferred once the queue manager has had a go at it
        rcpts = [l.split(" ")[1] for l in env if l.startswith("rcpt ")]
        self.assertEqual(rcpts, ["<bob@example.net>", "<carol@example.net>"])
        self.assertIn("size %d" % len(data), env)
        self.assertTrue([l for l in env if l.startswith("end ")])
        self.assertEqual(self.incoming(), [])

    def test_reply_names_the_queued_id(self):
        d = self.serve(self.conf())
        c = self.raw(d.addr)
        for line, code in (("EHLO " + HELO, 250), ("MAIL FROM:<a@example.org>", 250),
                           ("RCPT TO:<b@example.net>", 250), ("DATA", 354)):
            self.assertEqual(c.cmd(line).code, code)
        r = c.cmd("Subject: x\r\n\r\nbody\r\n.")
        self.assertEqual(r.code, 250)
        self.assertEqual([queued_qid(r)], self.queued())

    def test_many_sessions_group_commit(self):
        d = self.serve(self.conf())
        clients = []
        for i in range(20):
            c = self.raw(d.addr)
            c.cmd("EHLO " + HELO)
            c.cmd("MAIL FROM:<a@example.org>")
            c.cmd("RCPT TO:<b%d@example.net>" % i)
            c.cmd("DATA")
            clients.append(c)
        for c in clients:  # all finish at once: their commits can share batches
            c.send(b"Subject: g\r\n\r\nbody\r\n.\r\n")
        for c in clients:
            self.assertEqual(c.read_reply().code, 250)
        self.assertEqual(len(self.queued()), 20)

    def test_kill9_mid_data_leaves_nothing_acknowledged(self):
        d = self.serve(self.conf(), check_exit=False)
        s = smtplib.SMTP("127.0.0.1", d.port, local_hostname=HELO, timeout=TIMEOUT)
        s.sendmail("a@example.org", ["b@example.net"], b"Subject: kept\r\n\r\nkept\r\n")
        c = self.raw(d.addr)
        c.cmd("EHLO " + HELO)
        c.cmd("MAIL FROM:<a@example.org>")
        c.cmd("RCPT TO:<b@example.net>")
        self.assertEqual(c.cmd("DATA").code, 354)
        c.send(b"Subject: never acknowledged\r\n\r\n" + b"x" * 100000 + b"\r\n")
        time.sleep(0.3)
        self.assertNotEqual(self.incoming(), [])  # streaming into incoming/
        d.stop(sig=signal.SIGKILL)  # no chance to clean up: as a crash
        kept = self.queued()
        self.assertEqual(len(kept), 1)
        d2 = self.serve(self.conf())
        self.assertEqual(self.incoming(), [])  # purged at start: never acknowledged
        self.assertEqual(self.queued(), kept)  # the acknowledged one survived
        ev = d2.wait_log("queue_open")
        self.assertEqual(ev[0].get("queued"), "1")

    def test_client_gone_mid_data(self):
        d = self.serve(self.conf())
        c = self.raw(d.addr)
        c.cmd("EHLO " + HELO)
        c.cmd("MAIL FROM:<a@example.org>")
        c.cmd("RCPT TO:<b@example.net>")
        c.cmd("DATA")
        c.send(b"Subject: half\r\n\r\npart")
        c.close(reset=True)
        self.assertTrue(d.wait_for(lambda: self.incoming() == [], TIMEOUT))
        self.assertEqual(self.queued(), [])


if __name__ == "__main__":
    unittest.main()
