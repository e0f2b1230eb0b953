"""
test_sink_data.py - message content end to end: dot-stuffing, 8-bit and UTF-8 (SMTPUTF8), a
10 MiB message, BDAT/CHUNKING (several chunks, LAST, binary-looking content, chunk bytes never
read as commands), and PIPELINING (many commands and whole transactions in one write, answered
in order, nothing dropped).
"""

import hashlib
import os
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from phtest import (PosthornTestCase, dot_stuff, queued_qid, simple_message,  # noqa: E402
                    split_received, wait_store)


class DataBase(PosthornTestCase):

    def setUp(self):
        self.store = self.tmpdir()
        self.d = self.start_sink("--hostname", "mx.example.test", "--store", self.store)

    def stored(self, qid):
        deadline = time.monotonic() + 10
        while True:
            files, other = wait_store(self.store, 1)
            if len(files.get(qid, {})) == 2 or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        self.assertIn(qid, files, "no stored files for %s: %r" % (qid, sorted(files)))
        self.assertIn("eml", files[qid])
        self.assertIn("json", files[qid])
        self.assertEqual(other, [], "unexpected files in the store")
        return files[qid]

    def begin(self, c, params="", rcpt="rcpt@example.com", sender="sender@example.com"):
        self.assertReply(c.cmd("MAIL FROM:<%s>%s" % (sender, params)), 250, "2.1.0")
        self.assertReply(c.cmd("RCPT TO:<%s>" % rcpt), 250, "2.1.5")


DOT_BODY = (b"normal line\r\n"
            b".\r\n"
            b"..\r\n"
            b"...\r\n"
            b".leading dot\r\n"
            b"..two leading dots\r\n"
            b". space after dot\r\n"
            b"a..b dots inside\r\n"
            b"ends with dot.\r\n"
            b"\r\n"
            b".\r\n"
            b"last line\r\n")


class DotStuffing(DataBase):

    def test_dot_lines_preserved_raw(self):
        msg = simple_message("dots", body=DOT_BODY)
        c = self.raw(self.d)
        self.ehlo(c)
        self.begin(c)
        self.assertReply(c.cmd("DATA"), 354)
        wire = dot_stuff(msg)
        self.assertIn(b"\r\n...\r\n", wire)  # sanity: the stuffing really happened
        c.send(wire)
        qid = queued_qid(c.read_reply())
        self.assertStoredBody(self.stored(qid)["eml"], msg)
        m = self.d.wait_messages(1)[0]
        self.assertTrue(m["data"].endswith(DOT_BODY.replace(b"\r\n", b"\n")), m["data"])

    def test_dot_lines_preserved_smtplib(self):
        msg = simple_message("dots smtplib", body=DOT_BODY)
        s = self.smtp(self.d)
        s.ehlo()
        s.mail("sender@example.com")
        s.rcpt("rcpt@example.com")
        code, text = s.data(msg)
        self.assertEqual(code, 250, text)
        qid = text.decode().split()[-1]
        self.assertStoredBody(self.stored(qid)["eml"], msg)

    def test_dot_stuffing_split_byte_by_byte(self):
        msg = simple_message("bytewise", body=DOT_BODY)
        c = self.raw(self.d)
        self.ehlo(c)
        self.begin(c)
        self.assertReply(c.cmd("DATA"), 354)
        for b in dot_stuff(msg):
            c.send(bytes([b]))
        qid = queued_qid(c.read_reply())
        self.assertStoredBody(self.stored(qid)["eml"], msg)

    def test_terminator_split_across_writes(self):
        msg = simple_message("split end", body=b"body\r\n")
        c = self.raw(self.d)
        self.ehlo(c)
        self.begin(c)
        self.assertReply(c.cmd("DATA"), 354)
        c.send(msg[:-2])
        time.sleep(0.05)
        c.send(b"\r")
        time.sleep(0.05)
        c.send(b"\n.")
        self.assertTrue(c.no_data_within(0.3), "server replied before the end of data")
        c.send(b"\r")
        time.sleep(0.05)
        c.send(b"\n")
        qid = queued_qid(c.read_reply())
        self.assertStoredBody(self.stored(qid)["eml"], msg)

    def test_empty_message(self):
        c = self.raw(self.d)
        self.ehlo(c)
        self.begin(c)
        self.assertReply(c.cmd("DATA"), 354)
        c.send(b".\r\n")
        r = c.read_reply()
        if r.code == 250:
            qid = queued_qid(r)
            received, rest = split_received(self.stored(qid)["eml"])
            self.assertEqual(rest, b"")
        else:
            self.assertIn(r.code // 100, (5,), r)
        self.assertReply(c.cmd("NOOP"), 250, "2.0.0")

    def test_longest_text_line_998(self):
        line = b"L" * 998
        msg = simple_message("998", body=line + b"\r\n")
        c = self.raw(self.d)
        self.ehlo(c)
        self.begin(c)
        self.assertReply(c.cmd("DATA"), 354)
        c.send(dot_stuff(msg))
        qid = queued_qid(c.read_reply())
        self.assertStoredBody(self.stored(qid)["eml"], msg)


class Atomicity(DataBase):

    def visible(self):
        return sorted(n for n in os.listdir(self.store) if n.endswith((".eml", ".json")))

    def test_no_partial_message_visible_and_durable_at_250(self):
        c = self.raw(self.d, timeout=20)
        self.ehlo(c)
        self.begin(c)
        self.assertReply(c.cmd("DATA"), 354)
        c.send(b"Subject: atomic\r\n\r\n" + (b"a" * 78 + b"\r\n") * 40000)
        time.sleep(0.3)
        self.assertEqual(self.visible(), [], "files visible before the end of data")
        c.send(b"tail\r\n.\r\n")
        qid = queued_qid(c.read_reply())
        # never acknowledge what is not durable: both files exist when the 250 arrives
        self.assertEqual(self.visible(), [qid + ".eml", qid + ".json"])
        self.assertReply(c.cmd("QUIT"), 221, "2.0.0")
        c.closed_by_server(5)
        self.d.wait_log("disconnect")
        self.assertEqual(sorted(os.listdir(self.store)), [qid + ".eml", qid + ".json"],
                         "temporary files left in the store")

    def test_bdat_no_partial_message_visible(self):
        c = self.raw(self.d)
        self.ehlo(c)
        self.begin(c)
        part = b"Subject: atomic bdat\r\n\r\n" + b"b" * 70 + b"\r\n"
        c.send(b"BDAT %d\r\n" % len(part) + part)
        self.assertReply(c.read_reply(), 250, "2.0.0")
        self.assertEqual(self.visible(), [])
        c.send(b"BDAT 5 LAST\r\nend\r\n")
        qid = queued_qid(c.read_reply())
        self.assertEqual(self.visible(), [qid + ".eml", qid + ".json"])


class EightBit(DataBase):

    SENDER = "jörg@exämple.org"
    RCPT = "用户@例子.广告"
    BODY = ("Grüße aus Köln — €100, 日本語のテキスト, emoji \U0001F4EC\r\n".encode("utf-8")
            + bytes(range(0x80, 0x100)) + b"\r\n"
            + b"\xff\xfe\xc3\x28 invalid utf-8 too\r\n")

    def test_utf8_envelope_and_8bit_body_raw(self):
        msg = (("From: Jörg <%s>\r\nTo: <%s>\r\nSubject: Grüße 日本\r\n\r\n"
                % (self.SENDER, self.RCPT)).encode("utf-8") + self.BODY)
        c = self.raw(self.d)
        self.ehlo(c)
        r = c.cmd(("MAIL FROM:<%s> SMTPUTF8 BODY=8BITMIME" % self.SENDER).encode("utf-8"))
        self.assertReply(r, 250, "2.1.0")
        self.assertReply(c.cmd(("RCPT TO:<%s>" % self.RCPT).encode("utf-8")), 250, "2.1.5")
        self.assertReply(c.cmd("DATA"), 354)
        c.send(dot_stuff(msg))
        qid = queued_qid(c.read_reply())
        f = self.stored(qid)
        self.assertStoredBody(f["eml"], msg)
        self.assertEqual(f["json"]["mail_from"], self.SENDER)
        self.assertEqual(f["json"]["rcpt_to"], [self.RCPT])
        m = self.d.wait_messages(1)[0]
        self.assertEqual(m["fields"]["Mail-From"], self.SENDER)
        self.assertEqual(m["rcpt_to"], [self.RCPT])
        self.assertTrue(m["data"].endswith(self.BODY.replace(b"\r\n", b"\n")))

    def test_8bit_body_smtplib(self):
        msg = simple_message("8bit", body=self.BODY)
        s = self.smtp(self.d)
        s.ehlo()
        self.assertEqual(s.mail("sender@example.com", ["BODY=8BITMIME"])[0], 250)
        self.assertEqual(s.rcpt("rcpt@example.com")[0], 250)
        code, text = s.data(msg)
        self.assertEqual(code, 250, text)
        qid = text.decode().split()[-1]
        self.assertStoredBody(self.stored(qid)["eml"], msg)

    def test_smtputf8_smtplib(self):
        msg = (("From: <%s>\r\nTo: <%s>\r\nSubject: utf8\r\n\r\n"
                % (self.SENDER, self.RCPT)).encode("utf-8") + self.BODY)
        s = self.smtp(self.d)
        refused = s.sendmail(self.SENDER, [self.RCPT], msg,
                             mail_options=["SMTPUTF8", "BODY=8BITMIME"])
        self.assertEqual(refused, {})
        m = self.d.wait_messages(1)[0]
        self.assertEqual(m["fields"]["Mail-From"], self.SENDER)
        self.assertStoredBody(self.stored(m["qid"])["eml"], msg)

    def test_utf8_address_without_smtputf8_refused(self):
        c = self.raw(self.d)
        self.ehlo(c)
        r = c.cmd(("MAIL FROM:<%s>" % self.SENDER).encode("utf-8"))
        self.assertReply(r, 553, "5.6.7")
        self.assertReply(c.cmd("MAIL FROM:<plain@example.com>"), 250, "2.1.0")
        r = c.cmd(("RCPT TO:<%s>" % self.RCPT).encode("utf-8"))
        self.assertReply(r, 553, "5.6.7")


class BigMessage(DataBase):

    def make_10mib(self):
        lines = []
        size = 0
        i = 0
        while size < 10 * 1024 * 1024:
            line = b"%08d " % i + b"abcdefghijklmnopqrstuvwxyz0123456789" * 2 + b"\r\n"
            if i % 1000 == 0:
                line = b"." + line  # some dot lines in there too
            lines.append(line)
            size += len(line)
            i += 1
        return simple_message("10 MiB", body=b"".join(lines))

    def test_10_mib_smtplib(self):
        msg = self.make_10mib()
        self.assertGreaterEqual(len(msg), 10 * 1024 * 1024)
        s = self.smtp(self.d, timeout=30)
        s.ehlo()
        s.mail("big@example.com", ["SIZE=%d" % len(msg)])
        s.rcpt("rcpt@example.com")
        t0 = time.monotonic()
        code, text = s.data(msg)
        self.assertEqual(code, 250, text)
        qid = text.decode().split()[-1]
        f = self.stored(qid)
        _, rest = split_received(f["eml"])
        self.assertEqual(len(rest), len(msg))
        self.assertEqual(hashlib.sha256(rest).hexdigest(), hashlib.sha256(msg).hexdigest())
        self.assertEqual(f["json"]["size"], len(f["eml"]))
        m = self.d.wait_messages(1, timeout=30)[0]
        self.assertEqual(m["qid"], qid)
        self.assertEqual(int(m["fields"]["Size"]), len(f["eml"]))
        self.assertEqual(len(m["data"]), len(f["eml"].replace(b"\r\n", b"\n")))
        self.assertLess(time.monotonic() - t0, 30)

    def test_10_mib_bdat_chunks(self):
        msg = self.make_10mib()
        c = self.raw(self.d, timeout=30)
        self.ehlo(c)
        self.begin(c)
        chunk = 1024 * 1024 + 7  # odd size: chunks end in the middle of lines
        pos = 0
        while pos < len(msg):
            part = msg[pos:pos + chunk]
            pos += len(part)
            last = pos >= len(msg)
            c.send(b"BDAT %d%s\r\n" % (len(part), b" LAST" if last else b"") + part)
            r = c.read_reply()
            if not last:
                self.assertReply(r, 250, "2.0.0", r"^Ok: %d octets received$" % len(part))
        qid = queued_qid(r)
        _, rest = split_received(self.stored(qid)["eml"])
        self.assertEqual(hashlib.sha256(rest).hexdigest(), hashlib.sha256(msg).hexdigest())


class Chunking(DataBase):

    def test_bdat_multiple_chunks_and_last(self):
        msg = simple_message("bdat", body=b".\r\n..dots are not unstuffed in BDAT\r\n.\r\n")
        c = self.raw(self.d)
        self.ehlo(c)
        self.begin(c)
        parts = [msg[:10], msg[10:57], msg[57:]]
        for p in parts[:-1]:
            c.send(b"BDAT %d\r\n" % len(p) + p)
            self.assertReply(c.read_reply(), 250, "2.0.0", r"^Ok: %d octets received$" % len(p))
        c.send(b"BDAT %d LAST\r\n" % len(parts[-1]) + parts[-1])
        qid = queued_qid(c.read_reply())
        self.assertStoredBody(self.stored(qid)["eml"], msg)
        m = self.d.wait_messages(1)[0]
        self.assertEqual(m["qid"], qid)
        self.assertReply(c.cmd("NOOP"), 250, "2.0.0")

    def test_bdat_zero_last(self):
        msg = simple_message("bdat zero last")
        c = self.raw(self.d)
        self.ehlo(c)
        self.begin(c)
        c.send(b"BDAT %d\r\n" % len(msg) + msg)
        self.assertReply(c.read_reply(), 250, "2.0.0")
        c.send(b"BDAT 0 LAST\r\n")
        qid = queued_qid(c.read_reply())
        self.assertStoredBody(self.stored(qid)["eml"], msg)

    def test_bdat_single_chunk_last_lowercase(self):
        msg = simple_message("bdat lower")
        c = self.raw(self.d)
        self.ehlo(c)
        self.begin(c)
        c.send(b"bdat %d last\r\n" % len(msg) + msg)
        qid = queued_qid(c.read_reply())
        self.assertStoredBody(self.stored(qid)["eml"], msg)

    def test_bdat_pipelined(self):
        msg = simple_message("bdat pipelined")
        a, b = msg[:33], msg[33:]
        c = self.raw(self.d)
        self.ehlo(c)
        c.send(b"MAIL FROM:<p@example.com>\r\nRCPT TO:<q@example.com>\r\n"
               + b"BDAT %d\r\n" % len(a) + a + b"BDAT %d LAST\r\n" % len(b) + b + b"NOOP\r\n")
        rs = c.read_replies(5)
        self.assertReply(rs[0], 250, "2.1.0")
        self.assertReply(rs[1], 250, "2.1.5")
        self.assertReply(rs[2], 250, "2.0.0", r"^Ok: 33 octets received$")
        qid = queued_qid(rs[3])
        self.assertReply(rs[4], 250, "2.0.0")
        self.assertStoredBody(self.stored(qid)["eml"], msg)

    def test_bdat_binary_looking_content_is_data(self):
        # CRLF-clean but hostile: a dot line, SMTP commands, 8-bit bytes. All of it is message.
        chunk = (b"Subject: binary-looking\r\n\r\n"
                 b"\r\n.\r\nMAIL FROM:<evil@example.net>\r\nRCPT TO:<victim@example.net>\r\n"
                 b"DATA\r\nSubject: smuggled\r\n\r\n.\r\nQUIT\r\n"
                 + bytes(range(0x80, 0x100)) + b"\r\nBDAT 5 LAST\r\n")
        c = self.raw(self.d)
        self.ehlo(c)
        self.begin(c, params=" BODY=8BITMIME")
        c.send(b"BDAT %d LAST\r\n" % len(chunk) + chunk)
        qid = queued_qid(c.read_reply())
        self.assertReply(c.cmd("NOOP"), 250, "2.0.0")  # QUIT inside the chunk was not run
        self.assertStoredBody(self.stored(qid)["eml"], chunk)
        time.sleep(0.2)
        msgs = self.d.messages()
        self.assertEqual(len(msgs), 1)
        self.assertNotIn("victim@example.net", msgs[0]["rcpt_to"])

    def test_bdat_bare_lf_cr_nul(self):
        # Bare LF/CR inside a chunk: either stored verbatim or refused with 550 5.6.0 -- in both
        # cases exactly one reply per chunk and the session goes on.
        chunk = b"Subject: raw\r\n\r\nbare\nLF, bare\rCR, NUL\x00 and \xff\xfe\r\n.\n.\r.\r\n"
        c = self.raw(self.d)
        self.ehlo(c)
        self.begin(c, params=" BODY=8BITMIME")
        c.send(b"BDAT %d LAST\r\n" % len(chunk) + chunk)
        r = c.read_reply()
        if r.code == 250:
            qid = queued_qid(r)
            self.assertStoredBody(self.stored(qid)["eml"], chunk)
        else:
            self.assertReply(r, 550, "5.6.0")
        self.assertReply(c.cmd("NOOP"), 250, "2.0.0")
        qid2 = self.transaction(c, body=simple_message("after raw bdat"))
        self.assertTrue(qid2)

    def test_bdat_without_transaction_consumes_chunk(self):
        c = self.raw(self.d)
        self.ehlo(c)
        c.send(b"BDAT 6\r\nQUIT\r\n")  # the 6 octets are chunk data, not a command
        self.assertReply(c.read_reply(), 503, "5.5.1")
        self.assertReply(c.cmd("NOOP"), 250, "2.0.0")
        self.begin(c)
        c.send(b"BDAT 6\r\nRSET\r\n")
        self.assertReply(c.read_reply(), 250, "2.0.0", r"^Ok: 6 octets received$")

    def test_data_after_bdat_refused(self):
        c = self.raw(self.d)
        self.ehlo(c)
        self.begin(c)
        c.send(b"BDAT 3\r\nabc")
        self.assertReply(c.read_reply(), 250, "2.0.0")
        self.assertReply(c.cmd("DATA"), 503, "5.5.1")
        self.assertReply(c.cmd("RSET"), 250, "2.0.0")
        self.transaction(c)

    def test_bdat_syntax(self):
        c = self.raw(self.d)
        self.ehlo(c)
        self.begin(c)
        for bad in ("BDAT", "BDAT abc", "BDAT -1", "BDAT 5 FIRST", "BDAT 5 LAST extra"):
            r = c.cmd(bad)
            self.assertEqual(r.code, 501, "%s -> %r" % (bad, r))
        self.assertReply(c.cmd("NOOP"), 250, "2.0.0")

    def test_bdat_stdout_block(self):
        msg = simple_message("bdat stdout")
        c = self.raw(self.d)
        self.ehlo(c)
        self.begin(c, sender="bdat@example.com")
        c.send(b"BDAT %d LAST\r\n" % len(msg) + msg)
        qid = queued_qid(c.read_reply())
        m = self.d.wait_messages(1)[0]
        self.assertEqual(m["qid"], qid)
        self.assertEqual(m["fields"]["Mail-From"], "bdat@example.com")
        self.assertTrue(m["data"].endswith(msg.replace(b"\r\n", b"\n")))


class Pipelining(DataBase):

    def test_many_commands_one_write(self):
        c = self.raw(self.d)
        cmds = (["EHLO client.example"] + ["NOOP"] * 50 +
                ["MAIL FROM:<a@example.com>", "RCPT TO:<b@example.com>", "RCPT TO:<bad@>",
                 "RCPT TO:<c@example.com>", "VRFY x", "FOO", "RSET", "RCPT TO:<d@example.com>",
                 "NOOP"])
        expected = ([(250, None)] + [(250, "2.0.0")] * 50 +
                    [(250, "2.1.0"), (250, "2.1.5"), (501, "5.1.3"), (250, "2.1.5"),
                     (252, "2.5.0"), (500, "5.5.2"), (250, "2.0.0"), (503, "5.5.1"),
                     (250, "2.0.0")])
        c.send("".join(x + "\r\n" for x in cmds))
        replies = c.read_replies(len(cmds))
        for cmd, r, (code, enh) in zip(cmds, replies, expected):
            self.assertEqual(r.code, code, "%s -> %r" % (cmd, r))
            if enh:
                self.assertEqual(r.enhanced, enh, "%s -> %r" % (cmd, r))
        self.assertTrue(c.no_data_within(0.2), "extra replies")

    def test_whole_transactions_one_write(self):
        n = 100
        c = self.raw(self.d)
        self.ehlo(c)
        burst = b""
        for i in range(n):
            burst += (b"MAIL FROM:<s%d@example.com>\r\nRCPT TO:<r%d@example.com>\r\nDATA\r\n" % (i, i)
                      + dot_stuff(simple_message("pipelined %d" % i, body=b".dot %d\r\n" % i)))
        burst += b"QUIT\r\n"
        c.send_async(burst)
        qids = []
        for i in range(n):
            rs = c.read_replies(4)
            self.assertReply(rs[0], 250, "2.1.0")
            self.assertReply(rs[1], 250, "2.1.5")
            self.assertReply(rs[2], 354)
            qids.append(queued_qid(rs[3]))
        self.assertReply(c.read_reply(), 221, "2.0.0")
        c.join_senders()
        self.assertEqual(len(set(qids)), n)
        msgs = self.d.wait_messages(n)
        self.assertEqual([m["qid"] for m in msgs], qids)
        for i, m in enumerate(msgs):
            self.assertEqual(m["fields"]["Mail-From"], "s%d@example.com" % i)
            self.assertEqual(m["rcpt_to"], ["r%d@example.com" % i])
            self.assertTrue(m["data"].endswith(b"\n.dot %d\n" % i), m["data"][-50:])

    def test_large_burst_of_noops(self):
        n = 5000
        c = self.raw(self.d)
        c.send_async(b"NOOP\r\n" * n)
        for i in range(n):
            r = c.read_reply()
            self.assertEqual((r.code, r.enhanced), (250, "2.0.0"), "reply %d: %r" % (i, r))
        c.join_senders()
        self.assertReply(c.cmd("QUIT"), 221, "2.0.0")

    def test_pipelined_rcpt_failure_then_data(self):
        c = self.raw(self.d)
        self.ehlo(c)
        c.send(b"MAIL FROM:<a@example.com>\r\nRCPT TO:<bad@>\r\nRCPT TO:<ok@example.com>\r\n"
               b"DATA\r\n")
        rs = c.read_replies(4)
        self.assertEqual([r.code for r in rs], [250, 501, 250, 354], rs)
        c.send(dot_stuff(simple_message("after failed rcpt")))
        qid = queued_qid(c.read_reply())
        m = self.d.wait_messages(1)[0]
        self.assertEqual((m["qid"], m["rcpt_to"]), (qid, ["ok@example.com"]))

    def test_pipelined_no_valid_rcpt_data_refused(self):
        # RFC 2920: DATA after all RCPTs failed gets 503 / 554 and the following data lines are
        # then commands, which must produce replies rather than a message.
        c = self.raw(self.d)
        self.ehlo(c)
        c.send(b"MAIL FROM:<a@example.com>\r\nRCPT TO:<bad@>\r\nDATA\r\n")
        rs = c.read_replies(3)
        self.assertEqual(rs[0].code, 250)
        self.assertEqual(rs[1].code, 501)
        self.assertIn(rs[2].code, (503, 554), rs[2])
        self.assertReply(c.cmd("NOOP"), 250, "2.0.0")
        time.sleep(0.1)
        self.assertEqual(self.d.messages(), [])


if __name__ == "__main__":
    unittest.main()
