/*
 * client_reply.c - reading SMTP/LMTP server replies and keeping outcomes (see client_reply.h).
 *
 * Bytes are copied into the line buffer up to the next LF (one memchr and one memcpy per
 * piece, never per byte); a line longer than the limit is not kept, only remembered as too
 * long, and reported when its LF arrives. Each complete line is checked, its enhanced code
 * split off, and its text appended to the reply. Owns nothing; fails only by PH_REPLY_ERROR.
 */
#include "proto/client_reply.h"

#include <stdio.h>
#include <string.h>

/* ---- outcomes ----------------------------------------------------------------------------- */

const char *ph_client_stage_name(ph_client_stage stage)
{
    static const char *const names[] = {
        [PH_STAGE_NONE] = "none",
        [PH_STAGE_CONNECT] = "connect",
        [PH_STAGE_GREETING] = "greeting",
        [PH_STAGE_EHLO] = "EHLO",
        [PH_STAGE_HELO] = "HELO",
        [PH_STAGE_LHLO] = "LHLO",
        [PH_STAGE_STARTTLS] = "STARTTLS",
        [PH_STAGE_TLS] = "TLS handshake",
        [PH_STAGE_AUTH] = "AUTH",
        [PH_STAGE_RSET] = "RSET",
        [PH_STAGE_MAIL] = "MAIL FROM",
        [PH_STAGE_RCPT] = "RCPT TO",
        [PH_STAGE_DATA] = "DATA",
        [PH_STAGE_MESSAGE] = "message data",
        [PH_STAGE_END_OF_DATA] = "end of data",
    };
    if ((unsigned)stage >= sizeof(names) / sizeof(names[0]) || !names[stage])
        return "none";
    return names[stage];
}

void ph_client_text_append(char *dst, size_t cap, const char *src, size_t len)
{
    size_t at = strlen(dst);
    if (at + 1 >= cap)
        return;
    if (len > cap - 1 - at) {
        len = cap - 1 - at;
        while (len > 0 && ((unsigned char)src[len] & 0xC0) == 0x80)
            len--; /* src[len] continues a character: cut before its lead byte */
    }
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)src[i];
        dst[at + i] = (ch < 0x20 || ch == 0x7F) ? '?' : (char)ch;
    }
    dst[at + len] = '\0';
}

void ph_client_result_set(ph_client_result *r, ph_client_stage stage, bool remote, int code,
                          const char *enh, const char *text)
{
    r->code = code;
    r->enh[0] = '\0';
    r->text[0] = '\0';
    if (enh)
        ph_client_text_append(r->enh, sizeof(r->enh), enh, strlen(enh));
    if (text)
        ph_client_text_append(r->text, sizeof(r->text), text, strlen(text));
    r->stage = stage;
    r->remote = remote;
}

/* ---- reading replies ---------------------------------------------------------------------- */

void ph_reply_reader_init(ph_reply_reader *r)
{
    memset(r, 0, sizeof(*r));
    r->reply.remote = true;
}

/* Length of an enhanced status code "c.d{1,3}.d{1,3}" of class cls at the start of t
 * (followed by a space or the end), or 0. */
static size_t enh_len(const char *t, size_t len, char cls)
{
    if (len < 5 || t[0] != cls || t[1] != '.')
        return 0;
    size_t i = 2;
    for (int part = 0; part < 2; part++) {
        size_t digits = 0;
        while (i < len && t[i] >= '0' && t[i] <= '9' && digits < 4) {
            i++;
            digits++;
        }
        if (digits == 0 || digits > 3)
            return 0;
        if (part == 0) {
            if (i >= len || t[i] != '.')
                return 0;
            i++;
        }
    }
    return (i == len || t[i] == ' ') ? i : 0;
}

static bool valid_reply_start(const char *line, size_t len)
{
    return len >= 3 && line[0] >= '2' && line[0] <= '5' && line[1] >= '0' && line[1] <= '5' &&
           line[2] >= '0' && line[2] <= '9' && (len == 3 || line[3] == ' ' || line[3] == '-');
}

static ph_reply_event reader_error(ph_reply_reader *r, const char *why)
{
    r->failed = true;
    r->error = why;
    return PH_REPLY_ERROR;
}

/* One complete line (without its line end): checked, split, added to the reply. */
static ph_reply_event on_line(ph_reply_reader *r, const char *line, size_t len)
{
    if (r->complete) { /* the previous reply was handed out: start afresh */
        memset(&r->reply, 0, sizeof(r->reply));
        r->reply.remote = true;
        r->lines = 0;
        r->complete = false;
    }
    if (!valid_reply_start(line, len))
        return reader_error(r, "malformed reply line");
    int code = (line[0] - '0') * 100 + (line[1] - '0') * 10 + (line[2] - '0');
    if (r->lines > 0 && code != r->reply.code)
        return reader_error(r, "multi-line reply with mixed codes");
    if (++r->lines > PH_CLIENT_REPLY_LINES_MAX)
        return reader_error(r, "too many lines in one reply");
    r->reply.code = code;
    const char *text = len > 4 ? line + 4 : "";
    size_t tlen = len > 4 ? len - 4 : 0;
    size_t e = enh_len(text, tlen, line[0]);
    if (e > 0 && r->lines == 1)
        snprintf(r->reply.enh, sizeof(r->reply.enh), "%.*s", (int)e, text);
    if (e > 0) {
        text += e;
        tlen -= e;
        if (tlen > 0) { /* the space after the code */
            text++;
            tlen--;
        }
    }
    r->line_text = text;
    r->line_text_len = tlen;
    if (r->lines > 1 && tlen > 0 && r->reply.text[0] != '\0')
        ph_client_text_append(r->reply.text, sizeof(r->reply.text), " ", 1);
    ph_client_text_append(r->reply.text, sizeof(r->reply.text), text, tlen);
    if (len > 3 && line[3] == '-')
        return PH_REPLY_LINE;
    r->complete = true;
    return PH_REPLY_DONE;
}

ph_reply_event ph_reply_reader_feed(ph_reply_reader *r, const char *data, size_t len,
                                    size_t *used)
{
    *used = 0;
    if (r->failed)
        return PH_REPLY_ERROR;
    const char *nl = len > 0 ? memchr(data, '\n', len) : NULL;
    size_t take = nl ? (size_t)(nl - data) : len;
    if (r->line_len + take > PH_CLIENT_LINE_MAX + 1) { /* +1: room for the CR */
        r->overlong = true;
    } else {
        memcpy(r->line + r->line_len, data, take);
        r->line_len += take;
    }
    *used = nl ? take + 1 : take;
    if (!nl)
        return PH_REPLY_NEED_MORE;
    size_t n = r->line_len;
    if (n > 0 && r->line[n - 1] == '\r')
        n--;
    bool overlong = r->overlong || n > PH_CLIENT_LINE_MAX;
    r->line_len = 0;
    r->overlong = false;
    if (overlong)
        return reader_error(r, "reply line too long");
    return on_line(r, r->line, n);
}
