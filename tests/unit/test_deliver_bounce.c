/*
 * test_deliver_bounce.c - unit tests for src/deliver/bounce.c, the RFC 3464 bounce builder.
 * Every message built is checked for the output guarantees (CRLF line ends only, no NUL, lines
 * of at most 998 bytes, the boundary only on its delimiter lines) and cut into its parts, whose
 * headers and bodies are then checked exactly: the top header fields, the DSN fields per
 * recipient, the original header section (byte for byte, capped at a line end, normalised when
 * it has bare CR/LF, NUL or over-long lines). Hostile addresses, diagnostics and host names
 * must not create a single header line or part; invalid input is refused with -EINVAL and a
 * read error passed back, with the output pointers untouched. The original message is given
 * through a memfd. Owns only what each test allocates and frees.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cmocka.h>

#include "deliver/bounce.h"
#include "proto/base64.h"

#define T_ARRIVAL 1795480000 /* Tue, 24 Nov 2026 00:26:40 +0000 */
#define T_NOW 1795490000     /* Tue, 24 Nov 2026 03:13:20 +0000 */
#define T_LAST 1795489000    /* Tue, 24 Nov 2026 02:56:40 +0000 */

static const char ORIG[] = "Received: from client.example (client.example [127.0.0.1])\r\n"
                           "\tby mx.example.org (Posthorn) with ESMTP id 5X5CR29M3ZM2P00;\r\n"
                           "\tTue, 24 Nov 2026 00:26:40 +0000\r\n"
                           "From: Alice <alice@example.org>\r\n"
                           "To: bob@example.net\r\n"
                           "Subject: hello\r\n"
                           "\r\n"
                           "Body line\r\n"
                           "--not a boundary\r\n";

/* --- helpers ---------------------------------------------------------------------------- */

static int memfd_with(const void *data, size_t n)
{
    int fd = memfd_create("orig", MFD_CLOEXEC);
    assert_true(fd >= 0);
    size_t off = 0;
    while (off < n) {
        ssize_t w = write(fd, (const char *)data + off, n - off);
        assert_true(w > 0);
        off += (size_t)w;
    }
    return fd;
}

static ph_bounce_info base_info(const ph_bounce_rcpt *rcpts, size_t n, int fd, uint64_t size)
{
    return (ph_bounce_info){
        .reporting_mta = "mx.example.org", .queue_id = "5X5CR29M3ZM2P00",
        .sender = "alice@example.org", .arrival = T_ARRIVAL, .now = T_NOW, .rcpts = rcpts,
        .nrcpts = n, .msg_fd = fd, .msg_size = size, .boundary_seed = "6Y6DS30N4AN3Q11"};
}

/* CRLF only, no NUL, every line at most 998 bytes, the whole thing ending in CRLF. */
static void check_lines(const char *m, size_t len)
{
    size_t col = 0;
    assert_true(len >= 2 && m[len - 2] == '\r' && m[len - 1] == '\n');
    for (size_t i = 0; i < len; i++) {
        if (m[i] == '\0')
            fail_msg("NUL at %zu", i);
        if (m[i] == '\r' && (i + 1 == len || m[i + 1] != '\n'))
            fail_msg("bare CR at %zu", i);
        if (m[i] == '\n' && (i == 0 || m[i - 1] != '\r'))
            fail_msg("bare LF at %zu", i);
        if (m[i] == '\n') {
            col = 0;
        } else if (m[i] != '\r' && ++col > 998) {
            fail_msg("line over 998 bytes ending at %zu", i);
        }
    }
}

/* Lines of m (up to end) that start with prefix. */
static int count_line_starts(const char *m, size_t len, const char *prefix)
{
    int n = 0;
    size_t pl = strlen(prefix);
    for (size_t i = 0; i + pl <= len; i++)
        if ((i == 0 || m[i - 1] == '\n') && memcmp(m + i, prefix, pl) == 0)
            n++;
    return n;
}

static int count_occurrences(const char *m, size_t len, const char *s)
{
    int n = 0;
    size_t sl = strlen(s);
    for (const char *p = m; (p = memmem(p, len - (size_t)(p - m), s, sl)) != NULL; p++)
        n++;
    return n;
}

typedef struct parsed {
    char *msg;
    size_t len;
    char boundary[128];
    size_t head_len;         /* top header section, without its empty line */
    const char *part[4];     /* each part: its MIME headers, empty line, body */
    size_t part_len[4];
    size_t nparts;
} parsed;

/* Builds, checks the line rules, and cuts the message at its boundary. */
static void build_ok(const ph_bounce_info *in, parsed *p)
{
    memset(p, 0, sizeof(*p));
    assert_int_equal(ph_bounce_build(in, &p->msg, &p->len), 0);
    assert_non_null(p->msg);
    assert_int_equal(strlen(p->msg), p->len); /* NUL-terminated, no NUL inside */
    check_lines(p->msg, p->len);
    const char *end = strstr(p->msg, "\r\n\r\n");
    assert_non_null(end);
    p->head_len = (size_t)(end - p->msg) + 2;
    const char *b = strstr(p->msg, "boundary=\"");
    assert_true(b != NULL && b < end);
    b += strlen("boundary=\"");
    size_t bl = strcspn(b, "\"");
    assert_true(bl > 0 && bl <= 70 && bl < sizeof(p->boundary));
    memcpy(p->boundary, b, bl);

    char delim[160], close[160];
    snprintf(delim, sizeof(delim), "\r\n--%s\r\n", p->boundary);
    snprintf(close, sizeof(close), "\r\n--%s--\r\n", p->boundary);
    const char *at = strstr(p->msg, delim);
    assert_non_null(at);
    while (at != NULL) {
        assert_true(p->nparts < 4);
        const char *body = at + strlen(delim);
        const char *next = strstr(body, delim);
        const char *stop = next ? next : strstr(body, close);
        assert_non_null(stop);
        p->part[p->nparts] = body;
        p->part_len[p->nparts++] = (size_t)(stop - body);
        at = next;
    }
    /* the close delimiter ends the message; the boundary occurs nowhere else */
    assert_true(p->len >= strlen(close) &&
                strcmp(p->msg + p->len - strlen(close), close) == 0);
    assert_int_equal(count_occurrences(p->msg, p->len, p->boundary), (int)p->nparts + 2);
}

static void parsed_free(parsed *p)
{
    free(p->msg);
}

/* Part i's body (after its headers' empty line) as a new string; the headers in *hdr. */
static char *part_body(const parsed *p, size_t i, char **hdr)
{
    const char *s = p->part[i];
    const char *sep = memmem(s, p->part_len[i], "\r\n\r\n", 4);
    assert_non_null(sep);
    *hdr = strndup(s, (size_t)(sep - s) + 2);
    return strndup(sep + 4, p->part_len[i] - (size_t)(sep + 4 - s));
}

static void assert_has_line(const char *m, size_t len, const char *line)
{
    char want[1200];
    snprintf(want, sizeof(want), "%s\r\n", line);
    for (const char *q = m; (q = memmem(q, len - (size_t)(q - m), want, strlen(want))); q++)
        if (q == m || q[-1] == '\n')
            return;
    fail_msg("missing line \"%s\"", line);
}

/* --- structure ------------------------------------------------------------------------- */

static void test_structure(void **state)
{
    (void)state;
    const ph_bounce_rcpt rcpts[] = {
        {"bob@example.net", "5.1.1", "550 5.1.1 <bob@example.net>: No such user", NULL,
         "mx.example.net", T_LAST},
        {"carol@example.net", "4.4.7", NULL, NULL, NULL, 0},
        {"dave@example.net", "5.0.0", "mailbox unavailable", "x-unix", NULL, 0},
    };
    int fd = memfd_with(ORIG, strlen(ORIG));
    ph_bounce_info in = base_info(rcpts, 3, fd, strlen(ORIG));
    parsed p;
    build_ok(&in, &p);
    const char *m = p.msg;
    size_t hl = p.head_len;

    assert_true(strncmp(m, "Date: Tue, 24 Nov 2026 03:13:20 +0000\r\n", 39) == 0);
    assert_has_line(m, hl, "From: Mail Delivery System <MAILER-DAEMON@mx.example.org>");
    assert_has_line(m, hl, "To: <alice@example.org>");
    assert_has_line(m, hl, "Subject: Undelivered Mail Returned to Sender");
    assert_has_line(m, hl, "Message-ID: <bounce.6Y6DS30N4AN3Q11.1795490000@mx.example.org>");
    assert_has_line(m, hl, "Auto-Submitted: auto-replied");
    assert_has_line(m, hl, "MIME-Version: 1.0");
    assert_has_line(m, hl, "Content-Type: multipart/report; report-type=delivery-status;");
    assert_true(strstr(p.boundary, "6Y6DS30N4AN3Q11") != NULL);
    assert_int_equal(p.nparts, 3);

    char *hdr, *body;
    body = part_body(&p, 0, &hdr);
    assert_non_null(strstr(hdr, "Content-Type: text/plain; charset=us-ascii\r\n"));
    assert_non_null(strstr(body, "<bob@example.net>\r\n    Status: 5.1.1\r\n"
                                 "    Remote server: mx.example.net\r\n"
                                 "    Reason: 550 5.1.1 <bob@example.net>: No such user\r\n"));
    assert_non_null(strstr(body, "<carol@example.net>\r\n    Status: 4.4.7\r\n"));
    assert_non_null(strstr(body, "Queue id of your message: 5X5CR29M3ZM2P00\r\n"));
    free(hdr);
    free(body);

    body = part_body(&p, 1, &hdr);
    assert_non_null(strstr(hdr, "Content-Type: message/delivery-status\r\n"));
    assert_string_equal(body,
                        "Reporting-MTA: dns; mx.example.org\r\n"
                        "X-Posthorn-Queue-ID: 5X5CR29M3ZM2P00\r\n"
                        "Arrival-Date: Tue, 24 Nov 2026 00:26:40 +0000\r\n"
                        "\r\n"
                        "Final-Recipient: rfc822; bob@example.net\r\n"
                        "Action: failed\r\n"
                        "Status: 5.1.1\r\n"
                        "Remote-MTA: dns; mx.example.net\r\n"
                        "Diagnostic-Code: smtp; 550 5.1.1 <bob@example.net>: No such user\r\n"
                        "Last-Attempt-Date: Tue, 24 Nov 2026 02:56:40 +0000\r\n"
                        "\r\n"
                        "Final-Recipient: rfc822; carol@example.net\r\n"
                        "Action: failed\r\n"
                        "Status: 4.4.7\r\n"
                        "\r\n"
                        "Final-Recipient: rfc822; dave@example.net\r\n"
                        "Action: failed\r\n"
                        "Status: 5.0.0\r\n"
                        "Diagnostic-Code: x-unix; mailbox unavailable\r\n");
    free(hdr);
    free(body);

    body = part_body(&p, 2, &hdr);
    assert_non_null(strstr(hdr, "Content-Type: text/rfc822-headers\r\n"));
    assert_null(strstr(hdr, "8bit"));
    size_t orig_head = (size_t)(strstr(ORIG, "\r\n\r\n") - ORIG) + 2;
    assert_int_equal(strlen(body), orig_head);
    assert_memory_equal(body, ORIG, orig_head);
    free(hdr);
    free(body);
    parsed_free(&p);
    close(fd);
}

/* Without the original message there is no headers part; without arrival or queue id, no
 * such fields; the seed falls back to the queue id. */
static void test_minimal(void **state)
{
    (void)state;
    const ph_bounce_rcpt r = {"bob@example.net", "5.1.1", NULL, NULL, NULL, 0};
    ph_bounce_info in = base_info(&r, 1, -1, 0);
    in.arrival = 0;
    in.boundary_seed = NULL;
    parsed p;
    build_ok(&in, &p);
    assert_int_equal(p.nparts, 2);
    assert_true(strstr(p.boundary, "5X5CR29M3ZM2P00") != NULL);
    assert_null(strstr(p.msg, "Arrival-Date"));
    assert_null(strstr(p.msg, "rfc822-headers"));
    parsed_free(&p);

    in.queue_id = NULL;
    build_ok(&in, &p);
    assert_null(strstr(p.msg, "X-Posthorn-Queue-ID"));
    assert_has_line(p.msg, p.len, "Message-ID: <bounce.1795490000@mx.example.org>");
    parsed_free(&p);
}

/* --- refusals ------------------------------------------------------------------------------ */

static void expect_refused(const ph_bounce_info *in, int want, const char *name)
{
    char *out = (char *)"untouched";
    size_t len = 42;
    int rc = ph_bounce_build(in, &out, &len);
    if (rc != want)
        fail_msg("%s: rc %d, want %d", name, rc, want);
    assert_string_equal(out, "untouched");
    assert_int_equal(len, 42);
}

static void test_null_sender_refused(void **state)
{
    (void)state;
    const ph_bounce_rcpt r = {"bob@example.net", "5.1.1", NULL, NULL, NULL, 0};
    ph_bounce_info in = base_info(&r, 1, -1, 0);
    in.sender = "";
    expect_refused(&in, -EINVAL, "empty sender");
    in.sender = "<>";
    expect_refused(&in, -EINVAL, "<> sender");
    in.sender = NULL;
    expect_refused(&in, -EINVAL, "NULL sender");
}

static void test_invalid_input_refused(void **state)
{
    (void)state;
    static const struct {
        const char *name, *addr, *status, *dtype;
    } bad_rcpts[] = {
        {"empty address", "", "5.1.1", NULL},
        {"NULL address", NULL, "5.1.1", NULL},
        {"success status", "b@x", "2.0.0", NULL},
        {"short status", "b@x", "5.1", NULL},
        {"long status part", "b@x", "5.1.1234", NULL},
        {"status trailing junk", "b@x", "5.1.1 ", NULL},
        {"NULL status", "b@x", NULL, NULL},
        {"diagnostic type with ;", "b@x", "5.1.1", "smtp; x"},
        {"diagnostic type with CRLF", "b@x", "5.1.1", "smtp\r\nX: y"},
    };
    for (size_t i = 0; i < sizeof(bad_rcpts) / sizeof(bad_rcpts[0]); i++) {
        const ph_bounce_rcpt r = {bad_rcpts[i].addr, bad_rcpts[i].status, "x",
                                  bad_rcpts[i].dtype, NULL, 0};
        ph_bounce_info in = base_info(&r, 1, -1, 0);
        expect_refused(&in, -EINVAL, bad_rcpts[i].name);
    }
    const ph_bounce_rcpt r = {"bob@example.net", "5.1.1", NULL, NULL, NULL, 0};
    static const char *bad_senders[] = {"a\r\nBcc: x@y", "a\nb", "a\tb", "\x7f", "\xff@x",
                                        "\xc2\x85@x" /* NEL, a C1 control */};
    for (size_t i = 0; i < sizeof(bad_senders) / sizeof(bad_senders[0]); i++) {
        ph_bounce_info in = base_info(&r, 1, -1, 0);
        in.sender = bad_senders[i];
        expect_refused(&in, -EINVAL, bad_senders[i]);
    }
    ph_bounce_info in = base_info(&r, 1, -1, 0);
    char longaddr[PH_BOUNCE_ADDR_MAX + 2];
    memset(longaddr, 'a', sizeof(longaddr) - 1);
    longaddr[sizeof(longaddr) - 1] = '\0';
    in.sender = longaddr;
    expect_refused(&in, -EINVAL, "sender too long");
    in = base_info(&r, 1, -1, 0);
    in.reporting_mta = "mx example";
    expect_refused(&in, -EINVAL, "reporting MTA with a space");
    in.reporting_mta = "";
    expect_refused(&in, -EINVAL, "empty reporting MTA");
    in = base_info(&r, 1, -1, 0);
    in.queue_id = "Q 1";
    expect_refused(&in, -EINVAL, "queue id with a space");
    in = base_info(&r, 0, -1, 0);
    expect_refused(&in, -EINVAL, "no recipients");
    in = base_info(NULL, 1, -1, 0);
    expect_refused(&in, -EINVAL, "NULL recipients");
    in = base_info(&r, 1, -1, 0);
    in.now = -1;
    expect_refused(&in, -EINVAL, "negative date");
    in.now = 253402300800LL;
    expect_refused(&in, -EINVAL, "year 10000");
    in.now = T_NOW;
    in.arrival = -5;
    expect_refused(&in, -EINVAL, "negative arrival");
    assert_int_equal(ph_bounce_build(NULL, &(char *){NULL}, &(size_t){0}), -EINVAL);
    in = base_info(&r, 1, -1, 0);
    assert_int_equal(ph_bounce_build(&in, NULL, &(size_t){0}), -EINVAL);
    assert_int_equal(ph_bounce_build(&in, &(char *){NULL}, NULL), -EINVAL);
}

/* A descriptor that cannot be read gives pread's error back. */
static void test_read_error(void **state)
{
    (void)state;
    const ph_bounce_rcpt r = {"bob@example.net", "5.1.1", NULL, NULL, NULL, 0};
    int fd = open("/dev/null", O_WRONLY | O_CLOEXEC);
    assert_true(fd >= 0);
    ph_bounce_info in = base_info(&r, 1, fd, 100);
    expect_refused(&in, -EBADF, "write-only descriptor");
    close(fd);
}

/* --- hostile text ------------------------------------------------------------------------------ */

static void test_injection(void **state)
{
    (void)state;
    const ph_bounce_rcpt rcpts[] = {
        {"bob@example.net", "5.1.1",
         "550 no\r\nX-Injected: yes\r\n\r\nFinal-Recipient: rfc822; evil@x\r\n", NULL,
         "mx.example.net\r\nX-Injected: host", T_LAST},
        {"carol@example.net\r\nX-Injected: addr", "5.1.1", "550 bare\nX-Injected: lf", NULL,
         NULL, 0},
        {"dave@example.net", "5.1.1", "550 bare\rX-Injected: cr\r--=_ph_x\r\n--", NULL,
         "\r\n", 0},
        {"erin@example.net", "5.1.1", "\x01\x02\x1b[31m\x7f" "550 \xc2\x85" "C1 \xff\xfe", NULL,
         NULL, 0},
    };
    int fd = memfd_with(ORIG, strlen(ORIG));
    ph_bounce_info in = base_info(rcpts, 4, fd, strlen(ORIG));
    parsed p;
    build_ok(&in, &p);
    assert_int_equal(p.nparts, 3);
    assert_int_equal(count_line_starts(p.msg, p.len, "X-Injected"), 0);
    assert_int_equal(count_line_starts(p.msg, p.len, "Final-Recipient:"), 4);
    assert_int_equal(count_line_starts(p.msg, p.len, "Action: failed"), 4);
    assert_int_equal(count_line_starts(p.msg, p.len, "--"), 4); /* 3 delimiters + the close */

    char *hdr, *body = part_body(&p, 1, &hdr);
    for (const char *c = body; *c; c++)
        if ((unsigned char)*c >= 0x80 || ((unsigned char)*c < 0x20 && *c != '\r' && *c != '\n'))
            fail_msg("non-ASCII or control byte 0x%02x in the delivery-status part",
                     (unsigned char)*c);
    assert_non_null(strstr(body, "Diagnostic-Code: smtp; 550 no X-Injected: yes "
                                 "Final-Recipient: rfc822; evil@x\r\n"));
    assert_non_null(strstr(body, "Remote-MTA: dns; mx.example.net X-Injected: host\r\n"));
    assert_non_null(strstr(body, "Final-Recipient: utf-8; carol@example.net\\x{FFFD}"
                                 "\\x{FFFD}X-Injected:\\x{20}addr\r\n"));
    assert_non_null(strstr(body, "Diagnostic-Code: smtp; 550 bare X-Injected: lf\r\n"));
    assert_int_equal(count_line_starts(body, strlen(body), "Remote-MTA:"), 1); /* not dave's */
    assert_non_null(strstr(body, "Diagnostic-Code: smtp; [31m 550 C1 ??\r\n"));
    free(hdr);
    free(body);
    parsed_free(&p);
    close(fd);
}

/* Addresses with UTF-8, invalid UTF-8 and spaces are written in RFC 6533 utf-8 form; the text
 * part carries valid UTF-8 in base64. */
static void test_utf8(void **state)
{
    (void)state;
    const ph_bounce_rcpt rcpts[] = {
        {"j\xc3\xb6rg@ex\xc3\xa4mple.net", "5.1.1", "550 unbekannt: j\xc3\xb6rg", NULL, NULL, 0},
        {"\"a b+c=d\\\\e\"@x.example", "5.1.1", NULL, NULL, NULL, 0},
        {"bad\xff\xc3(@x.example", "5.1.1", NULL, NULL, NULL, 0},
        {"\xf0\x9f\x93\xa8@x.example", "5.1.1", NULL, NULL, NULL, 0},
    };
    ph_bounce_info in = base_info(rcpts, 4, -1, 0);
    in.sender = "s\xc3\xa9nder@example.org"; /* valid UTF-8: written as it is */
    parsed p;
    build_ok(&in, &p);
    assert_has_line(p.msg, p.head_len, "To: <s\xc3\xa9nder@example.org>");
    char *hdr, *body = part_body(&p, 1, &hdr);
    assert_non_null(strstr(body, "Final-Recipient: utf-8; j\\x{F6}rg@ex\\x{E4}mple.net\r\n"));
    assert_non_null(strstr(body, "Diagnostic-Code: smtp; 550 unbekannt: j??rg\r\n"));
    assert_non_null(strstr(body, "Final-Recipient: utf-8; \"a\\x{20}b\\x{2B}c\\x{3D}d"
                                 "\\x{5C}\\x{5C}e\"@x.example\r\n"));
    assert_non_null(strstr(body, "Final-Recipient: utf-8; bad\\x{FFFD}\\x{FFFD}(@x.example\r\n"));
    assert_non_null(strstr(body, "Final-Recipient: utf-8; \\x{1F4E8}@x.example\r\n"));
    free(hdr);
    free(body);

    body = part_body(&p, 0, &hdr);
    assert_non_null(strstr(hdr, "Content-Type: text/plain; charset=utf-8\r\n"));
    assert_non_null(strstr(hdr, "Content-Transfer-Encoding: base64\r\n"));
    /* undo the 76-column lines, decode, look for the readable forms */
    size_t k = 0;
    for (const char *c = body; *c; c++)
        if (*c != '\r' && *c != '\n')
            body[k++] = *c;
    char *text = malloc(k + 1);
    assert_non_null(text);
    long n = base64_decode(body, k, text, k + 1);
    assert_true(n > 0);
    text[n] = '\0';
    assert_non_null(strstr(text, "<j\xc3\xb6rg@ex\xc3\xa4mple.net>\r\n"));
    assert_non_null(strstr(text, "Reason: 550 unbekannt: j\xc3\xb6rg\r\n"));
    assert_non_null(strstr(text, "<bad?\?(@x.example>\r\n"));
    free(text);
    free(hdr);
    free(body);
    parsed_free(&p);
}

/* Long diagnostics are folded near 78 columns at spaces, words longer than a line are cut,
 * and at most PH_BOUNCE_DIAG_MAX bytes are kept. */
static void test_long_diagnostics(void **state)
{
    (void)state;
    char words[3000], blob[5000];
    size_t n = 0;
    while (n + 6 < sizeof(words))
        n += (size_t)snprintf(words + n, sizeof(words) - n, "word%c ", 'a' + (int)(n % 26));
    memset(blob, 'x', sizeof(blob) - 1);
    blob[sizeof(blob) - 1] = '\0';
    char addr[1500];
    memset(addr, 'a', sizeof(addr) - 1);
    memcpy(addr + sizeof(addr) - 15, "@x.example.net", 14);
    addr[sizeof(addr) - 1] = '\0';
    const ph_bounce_rcpt rcpts[] = {
        {"bob@example.net", "5.1.1", words, NULL, NULL, 0},
        {"carol@example.net", "5.1.1", blob, NULL, NULL, 0},
        {addr, "5.1.1", NULL, NULL, NULL, 0},
    };
    ph_bounce_info in = base_info(rcpts, 3, -1, 0);
    parsed p;
    build_ok(&in, &p);
    char *hdr, *body = part_body(&p, 1, &hdr);
    /* folded lines in the words diagnostic stay at most 78 wide */
    const char *d = strstr(body, "Diagnostic-Code: smtp; worda");
    assert_non_null(d);
    size_t lines = 0, kept = 0;
    for (const char *line = d;;) {
        const char *eol = strstr(line, "\r\n");
        assert_true((size_t)(eol - line) <= 78);
        kept += (size_t)(eol - line);
        lines++;
        line = eol + 2;
        if (*line != ' ')
            break;
    }
    assert_true(lines > 20);
    assert_true(kept <= PH_BOUNCE_DIAG_MAX + strlen("Diagnostic-Code: smtp; ") + lines);
    /* the blob: cut to DIAG_MAX bytes, in lines of at most 998 (check_lines) */
    const char *c = strstr(body, "carol@example.net");
    assert_non_null(c);
    const char *x = strstr(c, "Diagnostic-Code:");
    assert_non_null(x);
    const char *next = strstr(x, "\r\n\r\n");
    assert_non_null(next);
    assert_int_equal(count_occurrences(x, (size_t)(next - x), "x"), PH_BOUNCE_DIAG_MAX);
    /* the long address: cut into continuation lines, all of it kept */
    const char *f = strstr(body, "Final-Recipient: rfc822; aaa");
    assert_non_null(f);
    const char *fe = strstr(f, "\r\nAction:");
    assert_int_equal(count_occurrences(f, (size_t)(fe - f), "a"), sizeof(addr) - 1 - 14 + 2);
    free(hdr);
    free(body);
    parsed_free(&p);
}

/* A word that ends a line exactly at 998 bytes, then a word too long to fold: the second goes on
 * a continuation line, never past the limit (regression: it used to make a 999-byte line). */
static void test_word_at_line_limit(void **state)
{
    (void)state;
    char diag[1100];
    /* "Diagnostic-Code: smtp; " is 23 bytes: 975 more end the line at exactly 998 */
    for (size_t first = 970; first <= 980; first++) {
        memset(diag, 'x', first);
        diag[first] = ' ';
        memset(diag + first + 1, 'y', 100);
        diag[first + 101] = '\0';
        const ph_bounce_rcpt r = {"bob@example.net", "5.1.1", diag, NULL, NULL, 0};
        ph_bounce_info in = base_info(&r, 1, -1, 0);
        parsed p;
        build_ok(&in, &p); /* check_lines: no line over 998 */
        char *hdr, *body = part_body(&p, 1, &hdr);
        const char *d = strstr(body, "Diagnostic-Code:");
        assert_non_null(d);
        assert_int_equal(count_occurrences(d, strlen(d), "x"), first);
        assert_int_equal(count_occurrences(d, strlen(d), "y"), 100);
        free(hdr);
        free(body);
        parsed_free(&p);
    }
}

/* --- the original header section ------------------------------------------------------------- */

static char *headers_part(const char *orig, size_t n, uint64_t size, parsed *p, char **hdr)
{
    const ph_bounce_rcpt r = {"bob@example.net", "5.1.1", NULL, NULL, NULL, 0};
    int fd = memfd_with(orig, n);
    ph_bounce_info in = base_info(&r, 1, fd, size);
    build_ok(&in, p);
    close(fd);
    assert_int_equal(p->nparts, 3);
    return part_body(p, 2, hdr);
}

static void test_headers_capped(void **state)
{
    (void)state;
    size_t cap = 300 * 1024, n = 0;
    char *orig = malloc(cap);
    assert_non_null(orig);
    for (int i = 0; n + 200 < cap - 100; i++)
        n += (size_t)snprintf(orig + n, cap - n, "X-Filler-%05d: %090d\r\n", i, i);
    n += (size_t)snprintf(orig + n, cap - n, "\r\nbody\r\n");
    parsed p;
    char *hdr, *body = headers_part(orig, n, n, &p, &hdr);
    size_t bl = strlen(body);
    assert_true(bl <= PH_BOUNCE_HEADERS_MAX);
    assert_true(bl > PH_BOUNCE_HEADERS_MAX - 200); /* only the line that did not fit is cut */
    assert_memory_equal(body, orig, bl);           /* a prefix, ending at a line end */
    assert_true(body[bl - 2] == '\r' && body[bl - 1] == '\n');
    assert_true(strncmp(orig + bl, "X-Filler-", 9) == 0);
    free(hdr);
    free(body);
    parsed_free(&p);

    /* a header section of exactly the cap, then the empty line: all of it */
    size_t exact = PH_BOUNCE_HEADERS_MAX, k = 0;
    while (k + 100 < exact)
        k += (size_t)snprintf(orig + k, cap - k, "X-A: %093d\r\n", 7);
    size_t last = exact - k; /* one last line of the remaining length */
    memcpy(orig + k, "X-B: ", 5);
    memset(orig + k + 5, 'b', last - 7);
    memcpy(orig + exact - 2, "\r\n\r\nbody\r\n", 10);
    body = headers_part(orig, exact + 8, exact + 8, &p, &hdr);
    assert_int_equal(strlen(body), exact);
    assert_memory_equal(body, orig, exact);
    free(hdr);
    free(body);
    parsed_free(&p);
    free(orig);
}

static void test_headers_edge_cases(void **state)
{
    (void)state;
    parsed p;
    char *hdr, *body;

    /* no empty line: the whole message is the header section */
    static const char nosep[] = "Subject: a\r\nX-B: b\r\n";
    body = headers_part(nosep, strlen(nosep), strlen(nosep), &p, &hdr);
    assert_string_equal(body, nosep);
    free(hdr), free(body), parsed_free(&p);

    /* no final CRLF: one is added */
    body = headers_part("Subject: a", 10, 10, &p, &hdr);
    assert_string_equal(body, "Subject: a\r\n");
    free(hdr), free(body), parsed_free(&p);

    /* starts with the empty line: an empty part */
    body = headers_part("\r\nbody\r\n", 8, 8, &p, &hdr);
    assert_string_equal(body, "");
    free(hdr), free(body), parsed_free(&p);

    /* bare LF, bare CR and NUL are normalised; 8-bit text is kept and declared */
    static const char odd[] = "A: 1\nB: 2\rC: \xc3\xa9\0x\r\n\r\nbody";
    body = headers_part(odd, sizeof(odd) - 1, sizeof(odd) - 1, &p, &hdr);
    assert_string_equal(body, "A: 1\r\nB: 2\r\nC: \xc3\xa9 x\r\n");
    assert_non_null(strstr(hdr, "Content-Transfer-Encoding: 8bit\r\n"));
    free(hdr), free(body), parsed_free(&p);

    /* bare LF LF ends the header section too */
    body = headers_part("A: 1\n\nB: 2\r\n", 12, 12, &p, &hdr);
    assert_string_equal(body, "A: 1\r\n");
    free(hdr), free(body), parsed_free(&p);

    /* a 3000-byte line is cut into continuation lines, nothing lost */
    char longline[3100];
    memcpy(longline, "X-Long: ", 8);
    memset(longline + 8, 'L', 2992);
    memcpy(longline + 3000, "\r\n\r\n", 4);
    body = headers_part(longline, 3004, 3004, &p, &hdr);
    assert_int_equal(count_occurrences(body, strlen(body), "L"), 2992 + 1);
    assert_int_equal(count_line_starts(body, strlen(body), "\t"), 3);
    free(hdr), free(body), parsed_free(&p);

    /* msg_size bounds the read: bytes past it are not the message */
    static const char more[] = "A: 1\r\nB: 2\r\n";
    body = headers_part(more, strlen(more), 6, &p, &hdr);
    assert_string_equal(body, "A: 1\r\n");
    free(hdr), free(body), parsed_free(&p);
}

/* Original headers full of near-boundaries, and a boundary-looking diagnostic: the boundary
 * chosen occurs only on its delimiter lines (build_ok counts it) and differs from all of them. */
static void test_boundary_not_in_content(void **state)
{
    (void)state;
    char orig[8192];
    size_t n = 0;
    for (int i = 0; i < 64; i++)
        n += (size_t)snprintf(orig + n, sizeof(orig) - n,
                              "X-B%d: --=_ph_6Y6DS30N4AN3Q11_%016x\r\n", i, i);
    n += (size_t)snprintf(orig + n, sizeof(orig) - n, "\r\n");
    const ph_bounce_rcpt r = {"bob@example.net", "5.1.1", "--=_ph_6Y6DS30N4AN3Q11_", NULL,
                              NULL, 0};
    int fd = memfd_with(orig, n);
    ph_bounce_info in = base_info(&r, 1, fd, n);
    parsed p1, p2;
    build_ok(&in, &p1);
    /* the boundary depends on the content: put the first one into the headers, build again */
    n -= 2;
    n += (size_t)snprintf(orig + n, sizeof(orig) - n, "X-Prev: %s\r\n\r\n", p1.boundary);
    close(fd);
    fd = memfd_with(orig, n);
    in.msg_fd = fd;
    in.msg_size = n;
    build_ok(&in, &p2);
    assert_string_not_equal(p1.boundary, p2.boundary);
    char *hdr, *body = part_body(&p2, 2, &hdr);
    orig[n - 2] = '\0'; /* the part ends before the empty line */
    assert_string_equal(body, orig); /* still copied exactly, boundary look-alikes included */
    free(hdr), free(body);
    parsed_free(&p1);
    parsed_free(&p2);
    close(fd);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_structure),
        cmocka_unit_test(test_minimal),
        cmocka_unit_test(test_null_sender_refused),
        cmocka_unit_test(test_invalid_input_refused),
        cmocka_unit_test(test_read_error),
        cmocka_unit_test(test_injection),
        cmocka_unit_test(test_utf8),
        cmocka_unit_test(test_long_diagnostics),
        cmocka_unit_test(test_word_at_line_limit),
        cmocka_unit_test(test_headers_capped),
        cmocka_unit_test(test_headers_edge_cases),
        cmocka_unit_test(test_boundary_not_in_content),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
