"""
test_sink_security.py - hostile input: the SMTP smuggling family (CVE-2023-51764..51766: a bare
LF or bare CR can never end DATA, so no second transaction can hide in a message), bare LF/CR in
command lines, garbage and binary input (every line gets a well-formed reply, the server
survives), hostile BDAT sizes, control bytes echoed in replies, and clients that vanish mid-DATA
or mid-BDAT (no stored message, no temporary file left behind).
"""

import os
import random
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from phtest import (ProtocolError, PosthornTestCase, queued_qid, replies_from_bytes,  # noqa
                    split_received, store_files, wait_store)

# The sequences a lenient server might take for "end of data" (SEC Consult's list and more).
SMUGGLE = [
    b"\n.\n",
    b"\n.\r\n",
    b"\r\n.\n",
    b"\r.\r",
    b"\r.\r\n",
    b"\r\n.\r",
    b"\n.\r",
    b"\r.\n",
    b"\r\n.\r\r\n",
    b"\r\r\n.\r\r\n",
    b"\n\n.\n\n",
    b"\r\n.\x00\r\n",
    b"\r\n\x00.\r\n",
    b"\r\n .\r\n",
]
SMUGGLED = (b"MAIL FROM:<admin@example.com>\r\nRCPT TO:<victim@example.com>\r\nDATA\r\n"
            b"From: <admin@example.com>\r\nSubject: smuggled\r\n\r\nevil\r\n")
LEGIT_HEAD = b"From: <alice@example.com>\r\nTo: <bob@example.com>\r\nSubject: legit\r\n\r\nhello"


class Smuggling(PosthornTestCase):

    def check_outcome(self, d, store, reply, seq):
        """After the real end of data: one reply, 550 5.6.0 or the whole thing kept as body."""
        if reply.code == 250:
            qid = queued_qid(reply)
            files, _ = wait_store(store, 1)
            _, body = split_received(files[qid]["eml"])
            self.assertIn(b"MAIL FROM:<admin@example.com>", body,
                          "accepted, but the smuggled part is not in the body")
        elif b"\x00" in seq and reply.code == 554:
            self.assertReply(reply, 554, "5.6.0")  # NUL refused as bad content: also fine
        else:
            self.assertReply(reply, 550, "5.6.0")

    def check_no_second_transaction(self, d, store):
        d.stop()
        msgs = d.messages()
        self.assertLessEqual(len(msgs), 1, [m["raw"][:300] for m in msgs])
        for m in msgs:
            self.assertNotIn("victim@example.com", m["rcpt_to"])
            self.assertEqual(m["fields"]["Mail-From"], "alice@example.com")
        files, other = store_files(store)
        self.assertLessEqual(len(files), 1)
        self.assertEqual(other, [])
        self.assertLessEqual(len(d.log_events("accepted")), 1)
        self.assertFalse([e for e in d.log_events("rcpt") if "victim" in str(e)],
                         "a smuggled RCPT was processed")

    def test_interactive(self):
        for seq in SMUGGLE:
            with self.subTest(seq=seq):
                store = self.tmpdir()
                d = self.start_sink("--store", store)
                c = self.raw(d)
                self.ehlo(c)
                self.assertReply(c.cmd("MAIL FROM:<alice@example.com>"), 250, "2.1.0")
                self.assertReply(c.cmd("RCPT TO:<bob@example.com>"), 250, "2.1.5")
                self.assertReply(c.cmd("DATA"), 354)
                c.send(LEGIT_HEAD + seq)
                self.assertTrue(c.no_data_within(0.3),
                                "%r was taken as the end of data (reply: %r)" % (seq, c.buf))
                c.send(SMUGGLED + b".\r\n")
                reply = c.read_reply()
                self.check_outcome(d, store, reply, seq)
                # exactly one reply for the whole data: the next reply is the NOOP's
                self.assertReply(c.cmd("NOOP"), 250, "2.0.0")
                self.assertTrue(c.no_data_within(0.2), "extra replies: %r" % c.buf)
                self.assertReply(c.cmd("QUIT"), 221, "2.0.0")
                c.close()
                self.check_no_second_transaction(d, store)

    def test_one_write(self):
        for seq in SMUGGLE:
            with self.subTest(seq=seq):
                store = self.tmpdir()
                d = self.start_sink("--store", store)
                c = self.raw(d)
                self.ehlo(c)
                c.send(b"MAIL FROM:<alice@example.com>\r\nRCPT TO:<bob@example.com>\r\nDATA\r\n"
                       + LEGIT_HEAD + seq + SMUGGLED + b".\r\nNOOP\r\n")
                rs = c.read_replies(5)
                self.assertReply(rs[0], 250, "2.1.0")
                self.assertReply(rs[1], 250, "2.1.5")
                self.assertReply(rs[2], 354)
                self.check_outcome(d, store, rs[3], seq)
                self.assertReply(rs[4], 250, "2.0.0")
                self.assertTrue(c.no_data_within(0.3), "extra replies: %r" % c.buf)
                c.close()
                self.check_no_second_transaction(d, store)

    def test_byte_by_byte(self):
        for seq in (b"\n.\n", b"\r.\r", b"\r\n.\r\r\n"):
            with self.subTest(seq=seq):
                store = self.tmpdir()
                d = self.start_sink("--store", store)
                c = self.raw(d)
                self.ehlo(c)
                self.assertReply(c.cmd("MAIL FROM:<alice@example.com>"), 250, "2.1.0")
                self.assertReply(c.cmd("RCPT TO:<bob@example.com>"), 250, "2.1.5")
                self.assertReply(c.cmd("DATA"), 354)
                for b in LEGIT_HEAD + seq + SMUGGLED:
                    c.send(bytes([b]))
                self.assertTrue(c.no_data_within(0.2), "early reply: %r" % c.buf)
                c.send(b".\r\n")
                self.check_outcome(d, store, c.read_reply(), seq)
                self.assertReply(c.cmd("NOOP"), 250, "2.0.0")
                c.close()
                self.check_no_second_transaction(d, store)

    def test_bare_lf_message_refused_with_550(self):
        d = self.start_sink()
        c = self.raw(d)
        self.ehlo(c)
        self.assertReply(c.cmd("MAIL FROM:<alice@example.com>"), 250, "2.1.0")
        self.assertReply(c.cmd("RCPT TO:<bob@example.com>"), 250, "2.1.5")
        self.assertReply(c.cmd("DATA"), 354)
        c.send(b"Subject: bare lf\r\n\r\nline one\nline two\r\n.\r\n")
        self.assertReply(c.read_reply(), 550, "5.6.0")
        self.assertReply(c.cmd("NOOP"), 250, "2.0.0")
        time.sleep(0.1)
        self.assertEqual(d.messages(), [])
        d.wait_log("rejected")


class BareLineEndsInCommands(PosthornTestCase):

    def setUp(self):
        self.d = self.start_sink()

    def test_bare_lf_in_command(self):
        c = self.raw(self.d)
        c.send(b"NOOP\nNOOP\r\n")
        self.assertReply(c.read_reply(), 500, "5.5.2")
        self.assertTrue(c.no_data_within(0.2), "more than one reply: %r" % c.buf)
        self.assertReply(c.cmd("NOOP"), 250, "2.0.0")

    def test_bare_lf_never_ends_a_command(self):
        # "QUIT" after the bare LF belongs to the same (rejected) line: it must not run.
        c = self.raw(self.d)
        c.send(b"NOOP\nQUIT\r\n")
        self.assertReply(c.read_reply(), 500, "5.5.2")
        self.assertTrue(c.no_data_within(0.3), "second reply or close: %r eof=%s"
                        % (c.buf, c.eof))
        self.assertReply(c.cmd("NOOP"), 250, "2.0.0")

    def test_bare_cr_in_command(self):
        c = self.raw(self.d)
        c.send(b"NOOP\rNOOP\r\n")
        self.assertReply(c.read_reply(), 500, "5.5.2")
        self.assertTrue(c.no_data_within(0.2), "more than one reply: %r" % c.buf)
        self.assertReply(c.cmd("NOOP"), 250, "2.0.0")

    def test_bare_lf_does_not_split_commands(self):
        c = self.raw(self.d)
        self.ehlo(c)
        self.assertReply(c.cmd("MAIL FROM:<a@example.com>"), 250, "2.1.0")
        c.send(b"RCPT TO:<b@example.com>\nDATA\r\n")
        self.assertReply(c.read_reply(), 500, "5.5.2")
        self.assertReply(c.cmd("DATA"), 503, "5.5.1")  # the RCPT never happened

    def test_lf_terminated_client_gets_no_transaction(self):
        c = self.raw(self.d)
        c.send(b"EHLO lf.example\nMAIL FROM:<a@example.com>\nRCPT TO:<b@example.com>\nDATA\n"
               b"Subject: x\n\nbody\n.\n\r\n")
        self.assertReply(c.read_reply(), 500, "5.5.2")
        self.assertReply(c.cmd("NOOP"), 250, "2.0.0")
        time.sleep(0.1)
        self.assertEqual(self.d.messages(), [])


class Garbage(PosthornTestCase):

    def setUp(self):
        self.d = self.start_sink("--max-errors", "100000")

    def assertServes(self):
        self.assertTrue(self.d.alive(), "daemon died:\n" + self.d.stderr_tail())
        c = self.raw(self.d)
        self.ehlo(c)
        self.transaction(c)

    def send_and_collect(self, data, timeout=10):
        """Sends data then QUIT; returns the replies after the banner up to the close."""
        c = self.raw(self.d)
        try:
            c.send(data + b"\r\nQUIT\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass
        raw = c.read_until_eof(timeout)
        replies = replies_from_bytes(raw)  # raises ProtocolError on anything malformed
        return replies

    def test_random_bytes(self):
        rng = random.Random(5321)
        for i in range(5):
            data = bytes(rng.getrandbits(8) for _ in range(20000))
            with self.subTest(round=i):
                replies = self.send_and_collect(data)
                self.assertTrue(replies)
                self.assertIn(replies[-1].code, (221, 421, 500), replies)
        self.assertServes()

    def test_random_lines_one_reply_each(self):
        rng = random.Random(2821)
        verbs = ["HELO", "EHLO", "MAIL", "RCPT", "RSET", "NOOP", "VRFY", "HELP", "EXPN", "TURN",
                 "ETRN", "mail from:", "rcpt to:", "MAIL FROM:", "RCPT TO:",
                 "X", "\x00", "\x7f", "\xff".encode("latin-1").decode("latin-1")]
        alphabet = (b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 <>@:\"\\[]"
                    b"().,;=-+_!#$%&'*/?^`{|}~\x00\x01\x1b\x7f\x80\xc3\xa9\xff\t")
        lines = []
        for _ in range(600):
            verb = rng.choice(verbs).encode("latin-1")
            arg = bytes(rng.choice(alphabet) for _ in range(rng.randrange(0, 120)))
            lines.append(verb + (b" " if rng.random() < 0.7 else b"") + arg)
        c = self.raw(self.d)
        c.send_async(b"".join(l + b"\r\n" for l in lines))
        for i, l in enumerate(lines):
            try:
                r = c.read_reply()
            except ProtocolError as e:
                self.fail("malformed reply to line %d %r: %s" % (i, l, e))
            self.assertIn(r.code // 100, (2, 3, 4, 5), r)
            self.assertNotEqual(r.code, 354, "random line %r started DATA" % l)
            self.assertNotEqual(r.code, 421, "server gave up at line %d %r: %r" % (i, l, r))
        c.join_senders()
        self.assertTrue(c.no_data_within(0.3), "extra replies: %r" % c.buf[:300])
        self.assertReply(c.cmd("NOOP"), 250, "2.0.0")
        self.assertServes()

    def test_http_request(self):
        replies = self.send_and_collect(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                                        b"User-Agent: curl\r\n\r\n")
        self.assertTrue(any(r.code == 500 for r in replies), replies)
        self.assertServes()

    def test_tls_client_hello(self):
        hello = bytes.fromhex(
            "16030100c4010000c00303" + "ab" * 32 + "20" + "cd" * 32 +
            "0020c02bc02fc02cc030cca9cca8c013c014009c009d002f0035c012000a13011302"
            "01000057000000140012000000096c6f63616c686f7374ff01000100000a00080006"
            "001d00170018000b00020100000d0012001004030804040105030805050108060601")
        replies = self.send_and_collect(hello)
        self.assertTrue(replies)
        self.assertServes()

    def test_nul_and_control_bytes_in_commands(self):
        c = self.raw(self.d)
        self.assertEqual(c.cmd(b"NO\x00OP").code // 100, 5)
        self.assertEqual(c.cmd(b"EHLO a\x00b").code // 100, 5)
        self.ehlo(c)
        r = c.cmd(b"MAIL FROM:<a\x00b@example.com>")
        self.assertEqual(r.code // 100, 5, r)
        self.assertReply(c.cmd("NOOP"), 250, "2.0.0")

    def test_reply_never_echoes_control_bytes(self):
        c = self.raw(self.d)
        for line in (b"EHLO \x1b[31mred\x1b[0m", b"HELO a\x07b", b"VRFY \x1b]0;x\x07",
                     b"HELO \xff\xfe"):
            c.send(line + b"\r\n")
            r = c.read_reply()
            for raw in r.raw:
                self.assertFalse(any(ord(ch) < 0x20 or ord(ch) == 0x7f for ch in raw),
                                 "control byte echoed in %r" % r)

    def test_telnet_iac(self):
        replies = self.send_and_collect(b"\xff\xf4\xff\xfd\x06NOOP\r\n\xff\xfb\x01")
        self.assertTrue(replies)
        self.assertEqual(replies[0].code // 100, 5, replies)
        self.assertServes()

    def test_hostile_bdat_sizes(self):
        for size in (b"18446744073709551615", b"18446744073709551616",
                     b"99999999999999999999999999999", b"0x10", b"1e3", b"+5"):
            with self.subTest(size=size):
                c = self.raw(self.d)
                self.ehlo(c)
                self.assertReply(c.cmd("MAIL FROM:<a@example.com>"), 250, "2.1.0")
                self.assertReply(c.cmd("RCPT TO:<b@example.com>"), 250, "2.1.5")
                r = c.cmd(b"BDAT " + size + b" LAST")
                self.assertIn(r.code, (501, 552), r)
                c.close()
        self.assertServes()

    def test_hostile_size_params(self):
        c = self.raw(self.d)
        self.ehlo(c)
        for p in (b"SIZE=18446744073709551616", b"SIZE=-1", b"SIZE=", b"SIZE",
                  b"BODY=", b"SMTPUTF8=yes", b"=", b"A" * 400):
            r = c.cmd(b"MAIL FROM:<a@example.com> " + p)
            self.assertIn(r.code, (501, 552, 555), "%r -> %r" % (p, r))
        self.assertReply(c.cmd("MAIL FROM:<a@example.com>"), 250, "2.1.0")

    def test_abrupt_resets(self):
        for i in range(100):
            c = self.raw(self.d, banner=(i % 2 == 0))
            if i % 3 == 0:
                c.send(b"EHLO x\r\nMAIL FROM:<a@example.com>\r\n")
            c.close(reset=True)
        self.assertServes()


class Vanishing(PosthornTestCase):

    def setUp(self):
        self.store = self.tmpdir()
        self.d = self.start_sink("--store", self.store)

    def start_data(self):
        c = self.raw(self.d)
        self.ehlo(c)
        self.assertReply(c.cmd("MAIL FROM:<gone@example.com>"), 250, "2.1.0")
        self.assertReply(c.cmd("RCPT TO:<b@example.com>"), 250, "2.1.5")
        return c

    def check_nothing_stored_then_works(self, sessions):
        self.d.wait_log("disconnect", n=sessions)
        time.sleep(0.3)
        files, other = store_files(self.store)
        self.assertEqual(files, {}, "a message from a vanished client was stored")
        self.assertEqual(other, [], "temporary files left behind")
        self.assertEqual(self.d.messages(), [])
        self.assertEqual(self.d.log_events("accepted"), [])
        c = self.raw(self.d)
        self.ehlo(c)
        qid = self.transaction(c)
        files, other = wait_store(self.store, 1)
        self.assertEqual(sorted(files), [qid])
        self.assertEqual(other, [])

    def test_disconnect_mid_data(self):
        c = self.start_data()
        self.assertReply(c.cmd("DATA"), 354)
        c.send(b"Subject: half\r\n\r\n" + b"partial line\r\n" * 1000)
        time.sleep(0.1)
        c.close()
        c = self.start_data()
        self.assertReply(c.cmd("DATA"), 354)
        c.send(b"Subject: half\r\n\r\nuntil the dot\r\n.")  # no CRLF after the dot
        time.sleep(0.1)
        c.close()
        c = self.start_data()
        self.assertReply(c.cmd("DATA"), 354)
        c.send(b"Subject: reset\r\n\r\n" + b"x" * 100000)
        time.sleep(0.1)
        c.close(reset=True)
        self.check_nothing_stored_then_works(3)

    def test_disconnect_mid_bdat(self):
        c = self.start_data()
        c.send(b"BDAT 1000 LAST\r\n" + b"y" * 500)
        time.sleep(0.1)
        c.close()
        c = self.start_data()
        c.send(b"BDAT 10\r\n0123456789")
        self.assertReply(c.read_reply(), 250, "2.0.0")
        c.send(b"BDAT 10 LAST\r\n01234")
        time.sleep(0.1)
        c.close(reset=True)
        self.check_nothing_stored_then_works(2)


if __name__ == "__main__":
    unittest.main()
