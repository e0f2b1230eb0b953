/*
 * fuzz_parse.c - libFuzzer driver for the command parsers (src/proto/parse.c, addr.c).
 *
 * Each input is one command line without CRLF. It is split with smtp_parse_command and the
 * argument goes to the parser of its verb (MAIL, RCPT, BDAT, HELO/EHLO; any other verb's
 * argument is tried as a bare path). Beyond ASan/UBSan, the driver checks the parsers'
 * promises and traps when one is broken: a parsed path is NUL-terminated, within its limits
 * and valid UTF-8 exactly when flagged; the argument lies inside the line. The same bytes are
 * also formatted as a reply text to check that no input can inject or overlong a reply line.
 * Owns nothing beyond one heap copy per input (freed before return).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proto/addr.h"
#include "proto/parse.h"
#include "proto/reply.h"
#include "proto/strbuf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                           \
    do {                                                                                      \
        if (!(cond))                                                                          \
            __builtin_trap();                                                                 \
    } while (0)

static void check_path(const smtp_path *p)
{
    CHECK(p->len <= SMTP_PATH_MAX - 2);
    CHECK(p->mailbox[p->len] == '\0' && strlen(p->mailbox) == p->len);
    CHECK(p->at <= p->len);
    CHECK(!p->is_null || p->len == 0);
    CHECK(p->is_null || p->len > 0);
    CHECK(smtp_valid_utf8(p->mailbox, p->len));
    for (size_t i = 0; i < p->len; i++)
        CHECK(p->utf8 || (unsigned char)p->mailbox[i] < 0x80);
    if (p->at < p->len) {
        CHECK(p->mailbox[p->at] == '@');
        CHECK(p->at <= SMTP_LOCAL_MAX);
    }
}

static void fuzz_mail(const char *arg, size_t len)
{
    smtp_path path;
    smtp_mail_params mp;
    smtp_reply_id r = smtp_parse_mail(arg, len, &path, &mp);
    CHECK(smtp_reply_get(r) != NULL || r == R_NONE);
    if (r == R_NONE) {
        check_path(&path);
        CHECK(!path.utf8 || mp.smtputf8);
        CHECK(mp.body == BODY_UNSPEC || mp.body == BODY_7BIT || mp.body == BODY_8BITMIME);
    }
}

static void fuzz_rcpt(const char *arg, size_t len, bool utf8_ok)
{
    smtp_path path;
    smtp_reply_id r = smtp_parse_rcpt(arg, len, utf8_ok, &path);
    CHECK(smtp_reply_get(r) != NULL || r == R_NONE);
    if (r == R_NONE) {
        check_path(&path);
        CHECK(!path.is_null);
        CHECK(utf8_ok || !path.utf8);
    }
}

static void fuzz_bdat(const char *arg, size_t len)
{
    uint64_t n = 0;
    bool last = false;
    smtp_reply_id r = smtp_parse_bdat(arg, len, &n, &last);
    CHECK(r == R_NONE || r == R_SYNTAX_BDAT);
    CHECK(r != R_NONE || n < 1000000000000000000ULL);
}

static void fuzz_path(const char *arg, size_t len)
{
    smtp_path path;
    size_t used = 0;
    unsigned flags = len > 0 ? (unsigned)(unsigned char)arg[len - 1] & 3u : 0;
    if (smtp_parse_path(arg, len, flags, &path, &used) == 0) {
        check_path(&path);
        CHECK(used >= 2 && used <= len && used <= SMTP_PATH_MAX && arg[used - 1] == '>');
    }
}

/* Formats the input as a reply text: every line must be "550-..." or "550 ...", printable, at
 * most 512 octets with its CRLF, and only the last one uses the space separator. */
static void fuzz_reply(const char *text)
{
    strbuf out;
    strbuf_init(&out, 0);
    if (smtp_reply_append(&out, 550, "5.7.1", text) == 0) {
        size_t i = 0;
        while (i < out.len) {
            const char *eol = memchr(out.data + i, '\n', out.len - i);
            CHECK(eol != NULL);
            size_t n = (size_t)(eol - (out.data + i)) + 1;
            CHECK(n >= 6 && n <= 512 && out.data[i + n - 2] == '\r');
            CHECK(memcmp(out.data + i, "550", 3) == 0);
            CHECK(out.data[i + 3] == (i + n == out.len ? ' ' : '-'));
            for (size_t k = i; k < i + n - 2; k++)
                CHECK(out.data[k] >= 0x20 && out.data[k] < 0x7f);
            i += n;
        }
    }
    strbuf_free(&out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* An exact-size copy so ASan catches any read past len; no NUL terminator on purpose. */
    char *line = malloc(size > 0 ? size : 1);
    if (line == NULL)
        return 0;
    memcpy(line, data, size);
    smtp_command cmd;
    smtp_parse_command(line, size, &cmd);
    CHECK(cmd.arg >= line && cmd.arg + cmd.arg_len <= line + size);
    CHECK(cmd.verb >= V_UNKNOWN && cmd.verb < V__COUNT);
    switch (cmd.verb) {
    case V_MAIL:
        fuzz_mail(cmd.arg, cmd.arg_len);
        break;
    case V_RCPT:
        fuzz_rcpt(cmd.arg, cmd.arg_len, false);
        fuzz_rcpt(cmd.arg, cmd.arg_len, true);
        break;
    case V_BDAT:
        fuzz_bdat(cmd.arg, cmd.arg_len);
        break;
    case V_HELO:
    case V_EHLO: {
        smtp_reply_id r = smtp_parse_helo(cmd.arg, cmd.arg_len);
        CHECK(r == R_NONE || r == R_SYNTAX_HELO);
        break;
    }
    default:
        fuzz_path(cmd.arg, cmd.arg_len);
        break;
    }
    free(line);

    char *text = malloc(size + 1);
    if (text == NULL)
        return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    fuzz_reply(text);
    free(text);
    return 0;
}
