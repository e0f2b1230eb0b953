/*
 * lmtp_proto.c - the LMTP client state machine and the chunked dot-stuffer (see lmtp_proto.h).
 *
 * Input is cut into lines, lines into replies; each complete reply goes to the handler of the
 * state that awaits it. Transaction commands are numbered (0 MAIL, 1..n RCPT, n+1 DATA):
 * next_cmd is the next one to emit, next_reply the one whose reply comes next, so pipelining
 * is just "emit ahead while the buffer has room" and the replies match by counting. After the
 * message, the open recipients are exactly those accepted at RCPT, so the per-recipient
 * replies go to them in index order without any extra bookkeeping. Owns nothing.
 */
#include "deliver/lmtp_proto.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

enum {
    ST_GREETING,
    ST_LHLO,
    ST_TXN,      /* MAIL / RCPT / DATA replies */
    ST_MESSAGE,  /* the driver streams the message */
    ST_DATA_END, /* one reply per accepted recipient */
    ST_QUIT,
    ST_DONE,
};

/* Longest command we emit: "MAIL FROM:<path> BODY=8BITMIME SMTPUTF8\r\n" and a margin. */
#define CMD_MAX (PH_LMTP_PATH_MAX + 64)

/* ---- outcomes ----------------------------------------------------------------------------- */

/* Copies text into dst (cap bytes with NUL): control bytes become '?', and a cut never splits
 * a UTF-8 sequence. Appends to what dst holds already. */
static void text_append(char *dst, size_t cap, const char *src, size_t len)
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

static void set_result(ph_lmtp_result *r, int code, const char *enh, const char *text)
{
    r->code = code;
    snprintf(r->enh, sizeof(r->enh), "%s", enh ? enh : "");
    r->text[0] = '\0';
    text_append(r->text, sizeof(r->text), text, strlen(text));
}

/* Every recipient still open gets the outcome. */
static void fail_open(ph_lmtp_client *c, int code, const char *enh, const char *text)
{
    for (size_t i = 0; i < c->p.nrcpts; i++)
        if (c->results[i].code == 0)
            set_result(&c->results[i], code, enh, text);
}

/* The reply just received, for every open recipient, naming the command it answered. */
static void fail_open_reply(ph_lmtp_client *c, const char *command)
{
    char text[sizeof(c->reply.text) + 64];
    snprintf(text, sizeof(text), "%s (in reply to %s)", c->reply.text, command);
    fail_open(c, c->reply.code, c->reply.enh, text);
}

static void protocol_error(ph_lmtp_client *c, const char *what)
{
    char text[256];
    snprintf(text, sizeof(text), "LMTP protocol error: %s (waiting for %s)", what,
             ph_lmtp_waiting_for(c));
    fail_open(c, 451, "4.5.0", text);
    c->state = ST_DONE;
}

/* ---- output ------------------------------------------------------------------------------- */

static size_t out_room(const ph_lmtp_client *c)
{
    return sizeof(c->out) - c->out_start - c->out_len;
}

/* Appends one formatted command. Callers make sure it fits (CMD_MAX and the checks in init). */
__attribute__((format(printf, 2, 3))) static void emit(ph_lmtp_client *c, const char *fmt, ...)
{
    if (c->out_start > 0) { /* compact first: the buffer only ever holds a few commands */
        memmove(c->out, c->out + c->out_start, c->out_len);
        c->out_start = 0;
    }
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(c->out + c->out_len, out_room(c), fmt, ap);
    va_end(ap);
    if (n > 0 && (size_t)n < sizeof(c->out) - c->out_len)
        c->out_len += (size_t)n;
}

static void start_quit(ph_lmtp_client *c)
{
    emit(c, "QUIT\r\n");
    c->state = ST_QUIT;
}

/* Emits the transaction command number k. */
static void emit_txn_command(ph_lmtp_client *c, size_t k)
{
    if (k == 0) {
        bool body8 = c->p.body_8bitmime && (c->caps & PH_LMTP_CAP_8BITMIME);
        emit(c, "MAIL FROM:<%s>%s%s\r\n", c->p.from, body8 ? " BODY=8BITMIME" : "",
             c->p.smtputf8 ? " SMTPUTF8" : "");
    } else if (k <= c->p.nrcpts) {
        emit(c, "RCPT TO:<%s>\r\n", c->p.rcpts[k - 1]);
    } else {
        emit(c, "DATA\r\n");
    }
}

/* Emits what the transaction allows now; starts QUIT once nothing is left to send or await. */
static void txn_step(ph_lmtp_client *c)
{
    size_t data_cmd = c->p.nrcpts + 1;
    while (c->state == ST_TXN) {
        bool idle = c->next_reply == c->next_cmd; /* no reply outstanding */
        bool nobody = c->next_reply >= data_cmd && c->naccepted == 0;
        if (c->txn_failed || (nobody && c->next_cmd == data_cmd)) {
            if (idle)
                start_quit(c);
            return; /* else drain the replies to what was sent */
        }
        if (c->next_cmd > data_cmd)
            return; /* all sent: the DATA reply moves on */
        if (!(c->caps & PH_LMTP_CAP_PIPELINING) && !idle)
            return;
        if (out_room(c) + c->out_start < CMD_MAX)
            return; /* more once the driver has written some */
        emit_txn_command(c, c->next_cmd++);
    }
}

/* ---- reply handlers ------------------------------------------------------------------------ */

static int code_class(const ph_lmtp_client *c)
{
    return c->reply.code / 100;
}

static void on_greeting(ph_lmtp_client *c)
{
    if (code_class(c) == 2) {
        emit(c, "LHLO %s\r\n", c->p.lhlo_name);
        c->state = ST_LHLO;
    } else if (code_class(c) >= 4) {
        fail_open_reply(c, "greeting");
        start_quit(c);
    } else {
        protocol_error(c, "unexpected greeting code");
    }
}

/* One line of the LHLO reply after the first: a capability keyword and its parameters. */
static void on_capability(ph_lmtp_client *c, const char *text, size_t len)
{
    static const struct {
        const char *name;
        unsigned bit;
    } caps[] = {
        {"PIPELINING", PH_LMTP_CAP_PIPELINING},
        {"8BITMIME", PH_LMTP_CAP_8BITMIME},
        {"SMTPUTF8", PH_LMTP_CAP_SMTPUTF8},
        {"ENHANCEDSTATUSCODES", PH_LMTP_CAP_ENHANCEDSTATUSCODES},
    };
    size_t kw = 0;
    while (kw < len && text[kw] != ' ')
        kw++;
    for (size_t i = 0; i < sizeof(caps) / sizeof(caps[0]); i++)
        if (strlen(caps[i].name) == kw && strncasecmp(text, caps[i].name, kw) == 0)
            c->caps |= caps[i].bit;
}

static void on_lhlo(ph_lmtp_client *c)
{
    if (code_class(c) == 3) {
        protocol_error(c, "unexpected reply code");
    } else if (code_class(c) != 2) {
        fail_open_reply(c, "LHLO");
        start_quit(c);
    } else if (c->p.smtputf8 && !(c->caps & PH_LMTP_CAP_SMTPUTF8)) {
        fail_open(c, 550, "5.6.7",
                  "the message needs SMTPUTF8 but the LMTP server does not offer it");
        start_quit(c);
    } else {
        c->state = ST_TXN;
        txn_step(c);
    }
}

static void on_data_reply(ph_lmtp_client *c)
{
    if (c->reply.code == 354) {
        /* 354 after a refused MAIL or with no recipient: nothing sensible can be sent, and
         * the server now reads message data; ending here closes the connection. */
        if (c->txn_failed || c->naccepted == 0)
            c->state = ST_DONE;
        else
            c->state = ST_MESSAGE;
    } else if (code_class(c) >= 4) {
        fail_open_reply(c, "DATA");
        start_quit(c);
    } else {
        protocol_error(c, "unexpected reply code");
    }
}

static void on_txn_reply(ph_lmtp_client *c)
{
    size_t k = c->next_reply;
    if (k > c->p.nrcpts) {
        c->next_reply++;
        on_data_reply(c);
        return;
    }
    if (code_class(c) == 3) {
        protocol_error(c, "unexpected reply code");
        return;
    }
    c->next_reply++;
    if (k == 0 && code_class(c) != 2) {
        fail_open_reply(c, "MAIL FROM");
        c->txn_failed = true;
    } else if (k > 0 && c->results[k - 1].code == 0) { /* not already failed by MAIL */
        if (code_class(c) == 2)
            c->naccepted++;
        else
            c->results[k - 1] = c->reply;
    }
    txn_step(c);
}

static void on_data_end(ph_lmtp_client *c)
{
    if (code_class(c) == 3) {
        protocol_error(c, "unexpected reply code");
        return;
    }
    while (c->data_cursor < c->p.nrcpts && c->results[c->data_cursor].code != 0)
        c->data_cursor++;
    if (c->data_cursor < c->p.nrcpts)
        c->results[c->data_cursor++] = c->reply;
    while (c->data_cursor < c->p.nrcpts && c->results[c->data_cursor].code != 0)
        c->data_cursor++;
    if (c->data_cursor >= c->p.nrcpts)
        start_quit(c);
}

static void on_reply(ph_lmtp_client *c)
{
    if (c->reply.code == 421 && c->state != ST_QUIT) { /* the server is going away */
        fail_open_reply(c, ph_lmtp_waiting_for(c));
        c->state = ST_DONE;
        return;
    }
    switch (c->state) {
    case ST_GREETING: on_greeting(c); break;
    case ST_LHLO: on_lhlo(c); break;
    case ST_TXN: on_txn_reply(c); break;
    case ST_MESSAGE: protocol_error(c, "reply while the message was being sent"); break;
    case ST_DATA_END: on_data_end(c); break;
    case ST_QUIT: c->state = ST_DONE; break;
    default: break;
    }
}

/* ---- reply parsing ------------------------------------------------------------------------ */

/* Length of an enhanced status code "c.d{1,3}.d{1,3}" of class cls at the start of t (followed
 * by a space or the end), or 0. */
static size_t enh_len(const char *t, size_t len, char cls)
{
    size_t i = 0;
    if (len < 5 || t[0] != cls || t[1] != '.')
        return 0;
    i = 2;
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

/* One complete reply line (without its line end). */
static void on_line(ph_lmtp_client *c, const char *line, size_t len)
{
    if (!valid_reply_start(line, len)) {
        protocol_error(c, "malformed reply line");
        return;
    }
    int code = (line[0] - '0') * 100 + (line[1] - '0') * 10 + (line[2] - '0');
    if (c->reply_lines > 0 && code != c->reply.code) {
        protocol_error(c, "multi-line reply with mixed codes");
        return;
    }
    if (++c->reply_lines > PH_LMTP_REPLY_LINES_MAX) {
        protocol_error(c, "too many lines in one reply");
        return;
    }
    c->reply.code = code;
    const char *text = len > 4 ? line + 4 : "";
    size_t tlen = len > 4 ? len - 4 : 0;
    size_t e = enh_len(text, tlen, line[0]);
    if (e > 0 && c->reply_lines == 1)
        snprintf(c->reply.enh, sizeof(c->reply.enh), "%.*s", (int)e, text);
    if (e > 0) {
        text += e;
        tlen -= e;
        if (tlen > 0) { /* the space after the code */
            text++;
            tlen--;
        }
    }
    if (c->state == ST_LHLO && line[0] == '2' && c->reply_lines > 1)
        on_capability(c, text, tlen);
    if (c->reply_lines > 1 && tlen > 0)
        text_append(c->reply.text, sizeof(c->reply.text), " ", 1);
    text_append(c->reply.text, sizeof(c->reply.text), text, tlen);
    if (len > 3 && line[3] == '-')
        return; /* more lines follow */
    on_reply(c);
    memset(&c->reply, 0, sizeof(c->reply));
    c->reply_lines = 0;
}

void ph_lmtp_feed(ph_lmtp_client *c, const void *data, size_t len)
{
    const char *p = data;
    while (len > 0 && c->state != ST_DONE) {
        const char *nl = memchr(p, '\n', len);
        size_t take = nl ? (size_t)(nl - p) : len;
        if (c->line_len + take > PH_LMTP_LINE_MAX + 1) { /* +1: room for the CR */
            c->line_overlong = true;
        } else {
            memcpy(c->line + c->line_len, p, take);
            c->line_len += take;
        }
        p += take;
        len -= take;
        if (!nl)
            return;
        p++;
        len--;
        size_t n = c->line_len;
        if (n > 0 && c->line[n - 1] == '\r')
            n--;
        if (c->line_overlong || n > PH_LMTP_LINE_MAX)
            protocol_error(c, "reply line too long");
        else
            on_line(c, c->line, n);
        c->line_len = 0;
        c->line_overlong = false;
    }
}

/* ---- the rest of the API ------------------------------------------------------------------ */

static bool valid_string(const char *s, size_t max, bool allow_empty, bool allow_space)
{
    if (!s)
        return false;
    size_t n = strlen(s);
    if (n > max || (n == 0 && !allow_empty))
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch < 0x20 || ch == 0x7F || (ch == ' ' && !allow_space))
            return false;
    }
    return true;
}

int ph_lmtp_client_init(ph_lmtp_client *c, const ph_lmtp_params *p, ph_lmtp_result *results)
{
    if (!c || !p || !results || !p->rcpts || p->nrcpts == 0 ||
        !valid_string(p->lhlo_name, PH_LMTP_NAME_MAX, false, false) ||
        !valid_string(p->from, PH_LMTP_PATH_MAX, true, true))
        return -EINVAL;
    for (size_t i = 0; i < p->nrcpts; i++)
        if (!valid_string(p->rcpts[i], PH_LMTP_PATH_MAX, false, true))
            return -EINVAL;
    memset(c, 0, sizeof(*c));
    c->p = *p;
    c->results = results;
    c->state = ST_GREETING;
    memset(results, 0, p->nrcpts * sizeof(*results));
    return 0;
}

unsigned ph_lmtp_wants(const ph_lmtp_client *c)
{
    switch (c->state) {
    case ST_DONE: return 0;
    case ST_MESSAGE: return PH_LMTP_WANT_MESSAGE;
    default: break;
    }
    unsigned w = c->out_len > 0 ? PH_LMTP_WANT_WRITE : 0;
    if (c->state != ST_TXN || c->next_reply < c->next_cmd)
        w |= PH_LMTP_WANT_READ;
    return w ? w : PH_LMTP_WANT_READ;
}

const char *ph_lmtp_output(const ph_lmtp_client *c, size_t *len)
{
    *len = c->state == ST_DONE ? 0 : c->out_len;
    return *len ? c->out + c->out_start : NULL;
}

void ph_lmtp_output_done(ph_lmtp_client *c, size_t n)
{
    if (n > c->out_len)
        n = c->out_len;
    c->out_start += n;
    c->out_len -= n;
    if (c->out_len == 0)
        c->out_start = 0;
    txn_step(c);
}

void ph_lmtp_closed(ph_lmtp_client *c)
{
    if (c->state != ST_QUIT && c->state != ST_DONE) {
        char text[128];
        snprintf(text, sizeof(text), "connection closed by the LMTP server (waiting for %s)",
                 ph_lmtp_waiting_for(c));
        fail_open(c, 451, "4.4.2", text);
    }
    c->state = ST_DONE;
}

void ph_lmtp_message_sent(ph_lmtp_client *c)
{
    if (c->state == ST_MESSAGE)
        c->state = ST_DATA_END;
}

void ph_lmtp_fail(ph_lmtp_client *c, int code, const char *enh, const char *text)
{
    fail_open(c, code, enh, text ? text : "");
    c->state = ST_DONE;
}

const char *ph_lmtp_waiting_for(const ph_lmtp_client *c)
{
    switch (c->state) {
    case ST_GREETING: return "greeting";
    case ST_LHLO: return "LHLO";
    case ST_TXN:
        if (c->next_reply == 0)
            return "MAIL FROM";
        return c->next_reply <= c->p.nrcpts ? "RCPT TO" : "DATA";
    case ST_MESSAGE: return "message data";
    case ST_DATA_END: return "end of data";
    case ST_QUIT: return "QUIT";
    default: return "nothing";
    }
}

/* ---- dot-stuffing ------------------------------------------------------------------------- */

void ph_lmtp_dotstuff_init(ph_lmtp_dotstuffer *d)
{
    memset(d, 0, sizeof(*d));
    d->line_start = true;
}

size_t ph_lmtp_dotstuff(ph_lmtp_dotstuffer *d, const void *in, size_t len, char *out)
{
    const char *p = in;
    char *o = out;
    if (len == 0)
        return 0;
    if (len >= 2) {
        d->tail[0] = (unsigned char)p[len - 2];
    } else {
        d->tail[0] = d->tail[1];
    }
    d->tail[1] = (unsigned char)p[len - 1];
    d->any = true;
    while (len > 0) {
        if (d->line_start && *p == '.')
            *o++ = '.';
        const char *nl = memchr(p, '\n', len);
        size_t take = nl ? (size_t)(nl - p) + 1 : len;
        memcpy(o, p, take);
        o += take;
        p += take;
        len -= take;
        d->line_start = nl != NULL;
    }
    return (size_t)(o - out);
}

size_t ph_lmtp_dotstuff_finish(ph_lmtp_dotstuffer *d, char *out)
{
    bool crlf = d->tail[0] == '\r' && d->tail[1] == '\n';
    if (d->any && !crlf) {
        memcpy(out, "\r\n.\r\n", 5);
        return 5;
    }
    memcpy(out, ".\r\n", 3);
    return 3;
}
