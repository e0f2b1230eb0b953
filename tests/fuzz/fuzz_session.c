/*
 * fuzz_session.c - libFuzzer driver for the whole protocol core: arbitrary client bytes through
 * smtp_session, split into pieces chosen by the input, with hook verdicts chosen by the input
 * too (accept, reject, disconnect, custom texts). Checks invariants with abort(): every reply
 * line is "NNN" + ' ' or '-' and ends in CRLF, feed never consumes more than it was given,
 * and a session that wants to close produces no further output.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proto/session.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_output(const strbuf *o)
{
    size_t i = 0;
    while (i < o->len) {
        const char *line = o->data + i;
        const char *end = memchr(line, '\n', o->len - i);
        if (!end || end == line || end[-1] != '\r')
            abort();
        size_t n = (size_t)(end - line) + 1;
        if (n < 5 || line[0] < '2' || line[0] > '5' || (line[3] != ' ' && line[3] != '-'))
            abort();
        for (size_t k = 0; k + 2 < n; k++)
            if (line[k] == '\r' || line[k] == '\n' || line[k] == '\0')
                abort(); /* no control byte from client input may reach a reply */
        i += n;
    }
}

static smtp_verdict pick_verdict(uint8_t b)
{
    static const char *const texts[] = {NULL, "custom text", "multi\nline", "x\r\ny"};
    smtp_verdict v = {SV_ACCEPT, 0, NULL, NULL};
    switch (b & 7) {
    case 5: v.action = SV_REJECT; break;
    case 6: v.action = SV_REJECT; v.code = 451 + (b >> 6); v.enhanced = "4.7.1"; break;
    case 7: v.action = (b & 0x80) ? SV_DISCONNECT : SV_REJECT; v.text = texts[(b >> 3) & 3]; break;
    default: break;
    }
    return v;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    uint8_t seed = data[0], step = (uint8_t)(data[1] | 1);
    data += 2;
    size -= 2;
    smtp_session_config cfg = {.hostname = "mx.test", .banner = "Posthorn", .max_line = 512,
                               .max_data_line = 998, .max_message_size = 4096,
                               .max_recipients = 5, .max_errors = 50,
                               /* the seed picks which of STARTTLS and AUTH are on */
                               .starttls = seed & 1, .auth = seed & 2,
                               .auth_insecure = seed & 4, .require_auth = seed & 8,
                               .require_tls = (seed & 16) && (seed & 1)};
    smtp_session *s = smtp_session_new(&cfg);
    if (!s)
        return 0;
    smtp_session_start(s);
    size_t pos = 0;
    unsigned rounds = 0;
    while (rounds++ < 100000) {
        const smtp_hook_req *h;
        while ((h = smtp_session_hook(s)) != NULL) {
            if (h->kind == HOOK_DATA_START)
                smtp_session_set_prefix(s, "Received: x\r\n", 13);
            smtp_verdict v = pick_verdict((uint8_t)(seed + pos + h->kind));
            smtp_session_resolve(s, &v);
        }
        strbuf *o = smtp_session_output(s);
        check_output(o);
        strbuf_clear(o);
        if (smtp_session_want_tls(s))
            smtp_session_tls_started(s); /* as if the handshake succeeded at once */
        if (pos >= size || smtp_session_want_close(s))
            break;
        size_t n = size - pos < step ? size - pos : step;
        size_t used = smtp_session_feed(s, (const char *)data + pos, n);
        if (used > n)
            abort();
        pos += used;
    }
    smtp_session_closed(s);
    smtp_session_take_notes(s);
    smtp_session_free(s);
    return 0;
}
