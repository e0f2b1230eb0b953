"""
test_bounce_format.py - the bounces Posthorn builds (src/deliver/bounce.c), read by an independent
MIME parser: Python's email package with policy=email.policy.default.

Runs the test tool BUILD/tools/bounce_build (tests/tools/bounce_build.c) with the bounce's inputs
as arguments and an original message file, then checks what Python makes of the output: a
multipart/report of report-type delivery-status with exactly three parts of the right types and
no parser defects, the delivery-status part's per-message and per-recipient field blocks, the
human part's text, and the text/rfc822-headers part equal to the original header section. Also:
CRLF and line lengths on the raw bytes, hostile diagnostics and addresses that must not add a
field or a part, UTF-8 addresses, the 64 KiB header cap, and the null sender refused.

Environment: POSTHORN_BUILD (the CMake build dir holding tools/bounce_build). Standard library
only; run with /usr/bin/python3. Each run of the tool is bounded by a timeout.
"""

import email
import email.policy
import email.utils
import os
import subprocess
import tempfile
import unittest

import phtest

TOOL = os.path.join(phtest.BUILD, "tools", "bounce_build")
TOOL_TIMEOUT = 30
NOW = 1795490000      # Tue, 24 Nov 2026 03:13:20 +0000
ARRIVAL = 1795480000
LAST = 1795489000

ORIG_HEADERS = (b"Received: from client.example (client.example [127.0.0.1])\r\n"
                b"\tby mx.example.org (Posthorn) with ESMTP id 5X5CR29M3ZM2P00;\r\n"
                b"\tTue, 24 Nov 2026 00:26:40 +0000\r\n"
                b"From: Alice <alice@example.org>\r\n"
                b"To: bob@example.net, carol@example.net\r\n"
                b"Subject: quarterly report\r\n"
                b"Message-ID: <orig.1@example.org>\r\n")
ORIG = ORIG_HEADERS + b"\r\nHello Bob,\r\n\r\nthe report.\r\n--\r\nAlice\r\n"

LONG_DIAG = ("550-5.1.1 The email account that you tried to reach does not exist. Please try "
             "double-checking the recipient's email address for typos or unnecessary spaces. "
             "Learn more at https://support.example/mail/?p=NoSuchUser x12si3456789abc.42 - gsmtp")


class BounceFormatTest(unittest.TestCase):

    def setUp(self):
        if not os.access(TOOL, os.X_OK):
            self.fail("bounce_build tool not built at %s" % TOOL)
        tmp = tempfile.TemporaryDirectory(prefix="posthorn-bounce-")
        self.addCleanup(tmp.cleanup)
        self.tmp = tmp.name

    # ---- helpers ---------------------------------------------------------------------------

    def write_orig(self, data):
        path = os.path.join(self.tmp, "orig.eml")
        with open(path, "wb") as f:
            f.write(data)
        return path

    def run_tool(self, args):
        return subprocess.run([TOOL] + args, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              timeout=TOOL_TIMEOUT, check=False)

    def build(self, args, orig=ORIG):
        base = ["--mta", "mx.example.org", "--sender", "alice@example.org",
                "--queue-id", "5X5CR29M3ZM2P00", "--arrival", str(ARRIVAL), "--now", str(NOW),
                "--seed", "6Y6DS30N4AN3Q11"]
        if orig is not None:
            base += ["--msg", self.write_orig(orig)]
        res = self.run_tool(base + args)
        self.assertEqual(res.returncode, 0, res.stderr.decode(errors="replace"))
        raw = res.stdout
        self.check_raw(raw)
        msg = email.message_from_bytes(raw, policy=email.policy.default)
        self.assertEqual(msg.defects, [])
        for part in msg.walk():
            self.assertEqual(part.defects, [], part.get_content_type())
        return raw, msg

    def check_raw(self, raw):
        self.assertTrue(raw.endswith(b"\r\n"))
        lines = raw.split(b"\r\n")
        for i, line in enumerate(lines):
            self.assertNotIn(b"\r", line, "bare CR in line %d" % i)
            self.assertNotIn(b"\n", line, "bare LF in line %d" % i)
            self.assertNotIn(b"\0", line, "NUL in line %d" % i)
            self.assertLessEqual(len(line), 998, "line %d too long" % i)

    def parts(self, msg, n=3):
        self.assertTrue(msg.is_multipart())
        self.assertEqual(msg.get_content_type(), "multipart/report")
        self.assertEqual(msg.get_param("report-type"), "delivery-status")
        parts = list(msg.iter_parts())
        self.assertEqual(len(parts), n)
        want = ["text/plain", "message/delivery-status", "text/rfc822-headers"][:n]
        self.assertEqual([p.get_content_type() for p in parts], want)
        return parts

    def dsn_blocks(self, part):
        blocks = part.get_payload()
        self.assertIsInstance(blocks, list)
        return [{k: str(v) for k, v in b.items()} for b in blocks]

    # ---- tests ----------------------------------------------------------------------------

    def test_top_headers(self):
        _, msg = self.build(["--rcpt", "bob@example.net", "--status", "5.1.1"])
        self.assertEqual(msg["From"].addresses[0].addr_spec, "MAILER-DAEMON@mx.example.org")
        self.assertEqual(msg["From"].addresses[0].display_name, "Mail Delivery System")
        self.assertEqual(msg["To"].addresses[0].addr_spec, "alice@example.org")
        self.assertEqual(msg["Subject"], "Undelivered Mail Returned to Sender")
        self.assertEqual(msg["Auto-Submitted"], "auto-replied")
        self.assertEqual(msg["MIME-Version"], "1.0")
        self.assertEqual(email.utils.parsedate_to_datetime(msg["Date"]).timestamp(), NOW)
        self.assertRegex(msg["Message-ID"], r"^<[^<>@\s]+@mx\.example\.org>$")

    def test_three_parts_and_status_fields(self):
        _, msg = self.build([
            "--rcpt", "bob@example.net", "--status", "5.1.1", "--diag", LONG_DIAG,
            "--remote-mta", "mx.example.net", "--last-attempt", str(LAST),
            "--rcpt", "carol@example.net", "--status", "4.4.7",
            "--diag", "451 4.4.7 Message expired", "--diag-type", "x-posthorn"])
        text, status, headers = self.parts(msg)
        blocks = self.dsn_blocks(status)
        self.assertEqual(len(blocks), 3)
        self.assertEqual(blocks[0]["Reporting-MTA"], "dns; mx.example.org")
        self.assertEqual(blocks[0]["X-Posthorn-Queue-ID"], "5X5CR29M3ZM2P00")
        self.assertEqual(email.utils.parsedate_to_datetime(blocks[0]["Arrival-Date"]).timestamp(),
                         ARRIVAL)
        bob, carol = blocks[1], blocks[2]
        self.assertEqual(bob["Final-Recipient"], "rfc822; bob@example.net")
        self.assertEqual(bob["Action"], "failed")
        self.assertEqual(bob["Status"], "5.1.1")
        self.assertEqual(bob["Remote-MTA"], "dns; mx.example.net")
        self.assertEqual(bob["Diagnostic-Code"], "smtp; " + LONG_DIAG)  # folded, then unfolded
        self.assertEqual(email.utils.parsedate_to_datetime(bob["Last-Attempt-Date"]).timestamp(),
                         LAST)
        self.assertEqual(carol["Final-Recipient"], "rfc822; carol@example.net")
        self.assertEqual(carol["Action"], "failed")
        self.assertEqual(carol["Status"], "4.4.7")
        self.assertEqual(carol["Diagnostic-Code"], "x-posthorn; 451 4.4.7 Message expired")
        self.assertNotIn("Remote-MTA", carol)
        self.assertNotIn("Last-Attempt-Date", carol)

        body = text.get_content()
        self.assertEqual(text.get_content_charset(), "us-ascii")
        self.assertIn("<bob@example.net>", body)
        self.assertIn("<carol@example.net>", body)
        self.assertIn("Message expired", body)
        self.assertIn("mx.example.net", body)

        self.assertEqual(headers.get_payload(decode=True), ORIG_HEADERS)

    def test_no_message_no_headers_part(self):
        _, msg = self.build(["--rcpt", "bob@example.net", "--status", "5.1.1"], orig=None)
        self.parts(msg, n=2)

    def test_injection_stays_inside_fields(self):
        _, msg = self.build([
            "--rcpt", "bob@example.net\r\nX-Injected: rcpt", "--status", "5.1.1",
            "--diag", "550 no\r\nX-Injected: yes\r\n\r\nFinal-Recipient: rfc822; evil@x\r\n",
            "--remote-mta", "mx.example.net\nX-Injected: lf",
            "--rcpt", "carol@example.net", "--status", "5.1.1",
            "--diag", "550 x\r\n--=_ph_6Y6DS30N4AN3Q11_0000000000000000--\r\n"])
        _, status, headers = self.parts(msg)
        self.assertNotIn("X-Injected", msg)
        blocks = self.dsn_blocks(status)
        self.assertEqual(len(blocks), 3)
        for block in blocks:
            self.assertNotIn("X-Injected", block)
        self.assertTrue(blocks[1]["Final-Recipient"].startswith("utf-8; bob@example.net"))
        self.assertIn("X-Injected: yes", blocks[1]["Diagnostic-Code"])
        self.assertEqual(blocks[2]["Final-Recipient"], "rfc822; carol@example.net")
        self.assertEqual(headers.get_payload(decode=True), ORIG_HEADERS)

    def test_utf8_address(self):
        _, msg = self.build(["--rcpt", "j\u00f6rg@ex\u00e4mple.net", "--status", "5.1.1",
                             "--diag", "550 5.1.1 unknown"])
        text, status, _ = self.parts(msg)
        blocks = self.dsn_blocks(status)
        self.assertEqual(blocks[1]["Final-Recipient"], "utf-8; j\\x{F6}rg@ex\\x{E4}mple.net")
        self.assertEqual(text.get_content_charset(), "utf-8")
        self.assertIn("<j\u00f6rg@ex\u00e4mple.net>", text.get_content())

    def test_large_headers_capped(self):
        lines = [b"X-Filler-%05d: %s\r\n" % (i, b"f" * 90) for i in range(2000)]
        orig = b"".join(lines) + b"\r\nbody\r\n"
        _, msg = self.build(["--rcpt", "bob@example.net", "--status", "5.1.1"], orig=orig)
        _, _, headers = self.parts(msg)
        got = headers.get_payload(decode=True)
        self.assertLessEqual(len(got), 64 * 1024)
        self.assertGreater(len(got), 64 * 1024 - 200)
        self.assertTrue(orig.startswith(got))
        self.assertTrue(got.endswith(b"\r\n"))
        self.assertTrue(orig[len(got):].startswith(b"X-Filler-"))  # cut at a line end

    def test_null_sender_refused(self):
        for sender in ("", "<>"):
            res = self.run_tool(["--mta", "mx.example.org", "--sender", sender, "--now", str(NOW),
                                 "--rcpt", "bob@example.net", "--status", "5.1.1"])
            self.assertEqual(res.returncode, 1, sender)
            self.assertEqual(res.stdout, b"")
            self.assertIn(b"EINVAL", res.stderr)


if __name__ == "__main__":
    unittest.main()
