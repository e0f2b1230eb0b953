/*
 * reply.c - the one table of SMTP replies (code, RFC 3463 enhanced code, text) and the
 * formatter that turns a reply into wire lines (RFC 5321 4.2, RFC 2034).
 *
 * Owns nothing: it appends to the caller's strbuf. It is strict about what reaches the wire,
 * because hook texts come from embedders and may quote peer input:
 *   - every byte outside printable ASCII (controls, CR, LF inside a line, DEL, 8-bit) becomes
 *     '?', so no text can inject a reply line or break the RFC 5321 textstring grammar;
 *   - each line is cut to the RFC 5321 4.5.3.1.5 limit of 512 octets including CRLF;
 *   - an invalid code becomes 451 and an invalid enhanced code becomes "c.0.0" of the code's
 *     class, rather than emitting something a client would misparse.
 * Fails only when the strbuf cannot grow: -1, and nothing of the reply is left in it.
 */
#include "proto/reply.h"

#include <stdbool.h>
#include <string.h>

#define REPLY_LINE_MAX 512 /* RFC 5321 4.5.3.1.5, including the CRLF */

#define HELP_TEXT "Posthorn SMTP server: commands and replies as described in RFC 5321"

static const smtp_reply_def reply_table[R__COUNT] = {
    [R_NONE] = {0, NULL, NULL},
    [R_GREETING] = {220, NULL, "%s"},
    [R_BYE] = {221, "2.0.0", "Bye"},
    [R_HELO_OK] = {250, NULL, "%s"},
    [R_ACTION_OK] = {250, "2.0.0", "Ok"},
    [R_SENDER_OK] = {250, "2.1.0", "Ok"},
    [R_RCPT_OK] = {250, "2.1.5", "Ok"},
    [R_QUEUED] = {250, "2.0.0", "Ok: queued as %s"},
    [R_BDAT_OK] = {250, "2.0.0", "Ok: %s octets received"},
    [R_VRFY] = {252, "2.5.0", "Cannot VRFY user, but will accept message and attempt delivery"},
    [R_HELP] = {214, "2.0.0", HELP_TEXT},
    [R_DATA_GO] = {354, NULL, "End data with <CR><LF>.<CR><LF>"},
    [R_SHUTDOWN] = {421, "4.3.2", "Service shutting down, closing transmission channel"},
    [R_TIMEOUT] = {421, "4.4.2", "Timeout exceeded, closing transmission channel"},
    [R_TOO_MANY_ERRORS] = {421, "4.7.0", "Too many errors, closing transmission channel"},
    [R_TOO_MANY_CONNS] = {421, "4.7.0", "Too many connections, try again later"},
    [R_TOO_MANY_FROM_IP] = {421, "4.7.0",
                            "Too many connections from your address, try again later"},
    [R_DISCONNECT] = {421, "4.7.0", "Closing transmission channel"},
    [R_STORE_FAILED] = {451, "4.3.0", "Error: could not store the message, try again later"},
    [R_TEMP_REJECT] = {451, "4.3.0", "Temporary failure, try again later"},
    [R_TOO_MANY_RCPTS] = {452, "4.5.3", "Too many recipients"},
    [R_LINE_TOO_LONG] = {500, "5.5.6", "Line too long"},
    [R_BARE_LF] = {500, "5.5.2", "Bare LF or CR received: lines must end with CRLF"},
    [R_UNKNOWN_CMD] = {500, "5.5.2", "Command unrecognized"},
    [R_SYNTAX] = {501, "5.5.2", "Syntax error"},
    [R_SYNTAX_HELO] = {501, "5.5.2", "Syntax: EHLO hostname"},
    [R_SYNTAX_MAIL] = {501, "5.5.2", "Syntax: MAIL FROM:<address>"},
    [R_SYNTAX_RCPT] = {501, "5.5.2", "Syntax: RCPT TO:<address>"},
    [R_SYNTAX_BDAT] = {501, "5.5.4", "Syntax: BDAT size [LAST]"},
    [R_NO_ARGS] = {501, "5.5.4", "No parameters allowed"},
    [R_BAD_SENDER] = {501, "5.1.7", "Bad sender address syntax"},
    [R_BAD_RCPT] = {501, "5.1.3", "Bad recipient address syntax"},
    [R_BAD_PARAM] = {501, "5.5.4", "Invalid parameter value"},
    [R_NOT_IMPLEMENTED] = {502, "5.5.1", "Command not implemented"},
    [R_NEED_HELO] = {503, "5.5.1", "Send HELO/EHLO first"},
    [R_NESTED_MAIL] = {503, "5.5.1", "Sender already specified"},
    [R_NEED_MAIL] = {503, "5.5.1", "Need MAIL command first"},
    [R_NEED_RCPT] = {503, "5.5.1", "Need RCPT command first"},
    [R_BAD_SEQUENCE] = {503, "5.5.1", "Bad sequence of commands"},
    [R_DATA_AFTER_BDAT] = {503, "5.5.1", "DATA not allowed after BDAT"},
    [R_PARAM_UNKNOWN] = {555, "5.5.4", "Unsupported parameter"},
    [R_SIZE_EXCEEDED] = {552, "5.3.4", "Message size exceeds fixed limit"},
    [R_NEED_SMTPUTF8] = {553, "5.6.7", "Non-ASCII address requires SMTPUTF8"},
    [R_EARLY_TALKER] = {554, "5.5.0",
                        "Protocol error: client sent data before the greeting"},
    [R_DATA_BARE_LF] = {550, "5.6.0",
                        "Message contains bare LF or CR: lines must end with CRLF"},
    [R_DATA_LINE_LONG] = {550, "5.6.0", "Message line longer than 998 octets"},
    [R_REJECTED] = {550, "5.7.1", "Rejected"},
    [R_BODY_8BIT] = {554, "5.6.0", "8-bit data needs BODY=8BITMIME"},
    [R_TLS_READY] = {220, "2.0.0", "Ready to start TLS"},
    [R_NEED_STARTTLS] = {530, "5.7.0", "Must issue a STARTTLS command first"},
    [R_AUTH_REQUIRED] = {530, "5.7.0", "Authentication required"},
    [R_AUTH_OK] = {235, "2.7.0", "Authentication successful"},
    [R_AUTH_CHALLENGE] = {334, NULL, "%s"},
    [R_AUTH_CANCELLED] = {501, "5.7.0", "Authentication cancelled"},
    [R_AUTH_BAD_BASE64] = {501, "5.5.2", "Invalid base64 data"},
    [R_AUTH_BAD_MESSAGE] = {501, "5.5.2", "Malformed authentication response"},
    [R_AUTH_TOO_LONG] = {500, "5.5.6", "Authentication Exchange line is too long"},
    [R_AUTH_UNKNOWN_MECH] = {504, "5.5.4", "Unrecognized authentication mechanism"},
    [R_AUTH_FAILED] = {535, "5.7.8", "Authentication credentials invalid"},
    [R_AUTH_TEMP_FAIL] = {454, "4.7.0", "Temporary authentication failure"},
    [R_AUTH_NEED_TLS] = {538, "5.7.11",
                         "Encryption required for requested authentication mechanism"},
    [R_AUTH_ALREADY] = {503, "5.5.1", "Already authenticated"},
    [R_TLS_UNAVAILABLE] = {454, "4.7.0", "TLS not available due to temporary reason"},
    [R_AUTH_TOO_MANY] = {421, "4.7.0", "Too many failed authentication attempts"},
};

const smtp_reply_def *smtp_reply_get(smtp_reply_id id)
{
    if ((int)id <= (int)R_NONE || (int)id >= (int)R__COUNT)
        return NULL;
    return &reply_table[id];
}

/* Parses 1-3 digits at *p, advancing it. RFC 3463 2: subject and detail are 1*3digit. */
static bool enh_number(const char **p)
{
    size_t n = 0;
    while (n < 4 && (*p)[n] >= '0' && (*p)[n] <= '9')
        n++;
    *p += n;
    return n >= 1 && n <= 3;
}

int smtp_enhanced_valid(int code, const char *enhanced)
{
    if (enhanced == NULL || code < 200 || code > 599)
        return 0;
    int cls = code / 100;
    if (cls == 3 || enhanced[0] != (char)('0' + cls) || enhanced[1] != '.')
        return 0;
    const char *p = enhanced + 2;
    if (!enh_number(&p) || *p++ != '.' || !enh_number(&p))
        return 0;
    return *p == '\0';
}

/*
 * The reply text as up to three pieces (table text before %s, the argument, the rest), so a
 * substituted argument needs no temporary copy. Indices address the virtual concatenation.
 */
typedef struct vtext {
    const char *part[3];
    size_t n[3];
    size_t total;
} vtext;

static unsigned char vt_at(const vtext *t, size_t k)
{
    for (size_t i = 0; i < 3; i++) {
        if (k < t->n[i])
            return (unsigned char)t->part[i][k];
        k -= t->n[i];
    }
    return 0;
}

static size_t vt_find_nl(const vtext *t, size_t from)
{
    while (from < t->total && vt_at(t, from) != '\n')
        from++;
    return from;
}

/*
 * One wire line: the code, sep ('-' continues, ' ' ends the reply), then the enhanced code
 * and/or the text with a space between them, then CRLF. The text is scrubbed and cut so the
 * line fits in 512 octets.
 */
static int emit_line(strbuf *out, int code, char sep, const char *enh, const vtext *t,
                     size_t from, size_t to)
{
    char line[REPLY_LINE_MAX];
    size_t n = 0;
    line[n++] = (char)('0' + code / 100);
    line[n++] = (char)('0' + code / 10 % 10);
    line[n++] = (char)('0' + code % 10);
    line[n++] = sep;
    if (enh != NULL) {
        size_t el = strlen(enh); /* validated: at most 9 bytes */
        memcpy(line + n, enh, el);
        n += el;
        if (to > from)
            line[n++] = ' ';
    }
    for (size_t k = from; k < to && n < sizeof line - 2; k++) {
        unsigned char c = vt_at(t, k);
        line[n++] = (c >= 0x20 && c < 0x7f) ? (char)c : '?';
    }
    /* "250 " with nothing after it: drop the dangling separator space of a last line. Not for
     * 334: RFC 4954 4 requires "334" SP even before an empty challenge (AUTH PLAIN). */
    if (n == 4 && sep == ' ' && code != 334)
        n = 3;
    line[n++] = '\r';
    line[n++] = '\n';
    return strbuf_append(out, line, n);
}

static int emit_reply(strbuf *out, int code, const char *enhanced, const vtext *t)
{
    char derived[6];
    /* Codes outside 200..599 are a caller bug; 451 is the safe answer (retry later) and
     * keeps the client in a state it understands. */
    if (code < 200 || code > 599)
        code = 451;
    const char *enh = enhanced;
    if (enh != NULL && !smtp_enhanced_valid(code, enh)) {
        int cls = code / 100;
        enh = NULL; /* 3xx (354) has no enhanced class: omit it */
        if (cls == 2 || cls == 4 || cls == 5) {
            memcpy(derived, "X.0.0", 6);
            derived[0] = (char)('0' + cls);
            enh = derived;
        }
    }
    size_t start = out->len;
    size_t pos = 0;
    bool last;
    do {
        size_t eol = vt_find_nl(t, pos);
        /* A trailing '\n' ends the text; it does not open an empty last line. */
        last = eol >= t->total || eol + 1 >= t->total;
        if (emit_line(out, code, last ? ' ' : '-', enh, t, pos, eol) < 0) {
            out->len = start;
            if (out->data != NULL)
                out->data[start] = '\0';
            return -1;
        }
        pos = eol + 1;
    } while (!last);
    return 0;
}

int smtp_reply_append(strbuf *out, int code, const char *enhanced, const char *text)
{
    vtext t = {{text != NULL ? text : "", "", ""}, {0, 0, 0}, 0};
    t.n[0] = strlen(t.part[0]);
    t.total = t.n[0];
    return emit_reply(out, code, enhanced, &t);
}

int smtp_reply_append_id(strbuf *out, smtp_reply_id id, const char *arg)
{
    const smtp_reply_def *d = smtp_reply_get(id);
    if (d == NULL)
        return -1;
    vtext t = {{d->text, "", ""}, {strlen(d->text), 0, 0}, 0};
    const char *hole = strstr(d->text, "%s");
    if (hole != NULL) {
        t.n[0] = (size_t)(hole - d->text);
        t.part[1] = arg != NULL ? arg : "";
        t.n[1] = strlen(t.part[1]);
        t.part[2] = hole + 2;
        t.n[2] = strlen(t.part[2]);
    }
    t.total = t.n[0] + t.n[1] + t.n[2];
    return emit_reply(out, d->code, d->enhanced, &t);
}
