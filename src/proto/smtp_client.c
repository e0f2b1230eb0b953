/*
 * smtp_client.c - the SMTP/LMTP client state machine (see smtp_client.h).
 *
 * Input is cut into replies by the reply reader (client_reply.c); each complete reply goes to
 * the handler of the state that awaits it, and the lines of an EHLO/LHLO reply also go to the
 * capability parser as they pass. Transaction commands are numbered (0 RSET, 1 MAIL, 2..n+1
 * RCPT, n+2 DATA): next_cmd is the next one to emit, next_reply the one whose reply comes
 * next, so pipelining is just "emit ahead while the buffer has room", replies match by
 * counting, and an optional RSET is a transaction that starts at 0 instead of 1. After the
 * message, the open recipients are exactly those accepted at RCPT, so the final reply (or, in
 * LMTP, the replies) go to them without extra bookkeeping. Owns nothing.
 */
#include "proto/smtp_client.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "proto/base64.h"
#include "proto/text.h"

enum {
    ST_GREETING,
    ST_HELLO,     /* EHLO or LHLO sent */
    ST_HELO,      /* the fallback */
    ST_STARTTLS,
    ST_TLS_WAIT,  /* 220 to STARTTLS came: the driver does the handshake */
    ST_AUTH,
    ST_TXN,       /* RSET / MAIL / RCPT / DATA replies */
    ST_MESSAGE,   /* the driver streams the message */
    ST_DATA_END,  /* the final reply (LMTP: one per accepted recipient) */
    ST_IDLE,      /* between transactions */
    ST_QUIT,
    ST_DONE,
};

/* AUTH progress (auth_step): what was sent last. */
enum { AUTH_PLAIN_SENT, AUTH_LOGIN_SENT, AUTH_USER_SENT, AUTH_PASS_SENT };

/* Longest command we emit: "AUTH PLAIN " and the base64 of "\0user\0pass", or MAIL FROM with
 * a full path and every parameter; the output buffer holds several. */
#define CMD_MAX 1024
#define CMD_RSET 0
#define CMD_MAIL 1

_Static_assert(11 + BASE64_ENCODED_LEN(2 + 2 * PH_SMTP_CRED_MAX) + 2 < CMD_MAX,
               "AUTH PLAIN fits a command");
_Static_assert(PH_SMTP_PATH_MAX + 80 < CMD_MAX, "MAIL FROM fits a command");
_Static_assert(PH_SMTP_OUT_MAX >= 4 * CMD_MAX, "the output buffer holds several commands");

static const char *proto_name(const ph_smtp_client *c)
{
    return c->p.mode == PH_SMTP_MODE_LMTP ? "LMTP" : "SMTP";
}

static int reply_class(const ph_smtp_client *c)
{
    return c->rr.reply.code / 100;
}

/* ---- outcomes ----------------------------------------------------------------------------- */

/* Every recipient still open gets the outcome. */
static void fail_open(ph_smtp_client *c, ph_client_stage stage, bool remote, int code,
                      const char *enh, const char *text)
{
    for (size_t i = 0; i < c->env.nrcpts; i++)
        if (c->results[i].code == 0)
            ph_client_result_set(&c->results[i], stage, remote, code, enh, text);
}

/* The reply just received, for every open recipient, naming the step it answered. */
static void fail_open_reply(ph_smtp_client *c, ph_client_stage stage)
{
    char text[PH_CLIENT_TEXT_MAX + 64];
    const char *said = c->rr.reply.text;
    snprintf(text, sizeof(text), "%s%s(in reply to %s)", said, said[0] ? " " : "",
             ph_client_stage_name(stage));
    fail_open(c, stage, true, c->rr.reply.code, c->rr.reply.enh, text);
}

/* A local outcome for every open recipient whose text quotes the reply just received:
 * "<why>: 535 5.7.8 <the server's text>". The result's own code and enh are ours. */
static void fail_open_quoting(ph_smtp_client *c, ph_client_stage stage, int code,
                              const char *enh, const char *why)
{
    char text[PH_CLIENT_TEXT_MAX + 128];
    const ph_client_result *r = &c->rr.reply;
    snprintf(text, sizeof(text), "%s: %d%s%s%s%s", why, r->code, r->enh[0] ? " " : "", r->enh,
             r->text[0] ? " " : "", r->text);
    fail_open(c, stage, false, code, enh, text);
}

/* The session is over: nothing more is sent, and no credential stays in the buffer. */
static void finish(ph_smtp_client *c)
{
    c->state = ST_DONE;
    c->out_start = c->out_len = 0;
    explicit_bzero(c->out, sizeof(c->out));
}

static void protocol_error(ph_smtp_client *c, const char *what)
{
    char text[256];
    snprintf(text, sizeof(text), "%s protocol error: %s (waiting for %s)", proto_name(c), what,
             ph_smtp_client_waiting_for(c));
    fail_open(c, ph_smtp_client_stage(c), false, 451, "4.5.0", text);
    finish(c);
}

/* ---- output ------------------------------------------------------------------------------- */

static size_t out_free(const ph_smtp_client *c)
{
    return sizeof(c->out) - c->out_len; /* after compaction */
}

/* Appends one formatted command. Callers make sure it fits (CMD_MAX, the checks in init, and
 * txn_step's room test); a command that would not fit is not sent at all, never cut. */
__attribute__((format(printf, 2, 3))) static void emit(ph_smtp_client *c, const char *fmt, ...)
{
    if (c->out_start > 0) { /* compact first: the buffer only ever holds a few commands */
        memmove(c->out, c->out + c->out_start, c->out_len);
        c->out_start = 0;
    }
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(c->out + c->out_len, out_free(c), fmt, ap);
    va_end(ap);
    if (n > 0 && (size_t)n < out_free(c))
        c->out_len += (size_t)n;
}

static void start_quit(ph_smtp_client *c)
{
    emit(c, "QUIT\r\n");
    c->state = ST_QUIT;
}

static void send_hello(ph_smtp_client *c)
{
    c->caps = 0; /* RFC 3207 4.2: forget what was said before TLS */
    c->auth_mechs = 0;
    c->size_max = 0;
    emit(c, "%s %s\r\n", c->p.mode == PH_SMTP_MODE_LMTP ? "LHLO" : "EHLO", c->p.helo_name);
    c->state = ST_HELLO;
}

/* ---- the transaction ---------------------------------------------------------------------- */

static size_t data_cmd(const ph_smtp_client *c)
{
    return c->env.nrcpts + 2;
}

static void emit_mail(ph_smtp_client *c)
{
    char size[32] = "";
    if ((c->caps & PH_SMTP_CAP_SIZE) && c->env.size > 0)
        snprintf(size, sizeof(size), " SIZE=%" PRIu64, c->env.size);
    bool body8 = c->env.body_8bitmime && (c->caps & PH_SMTP_CAP_8BITMIME);
    emit(c, "MAIL FROM:<%s>%s%s%s\r\n", c->env.from, size, body8 ? " BODY=8BITMIME" : "",
         c->needs_utf8 ? " SMTPUTF8" : "");
    c->dirty = true; /* from now on the server may hold a transaction */
}

static void emit_txn_command(ph_smtp_client *c, size_t k)
{
    if (k == CMD_RSET)
        emit(c, "RSET\r\n");
    else if (k == CMD_MAIL)
        emit_mail(c);
    else if (k < data_cmd(c))
        emit(c, "RCPT TO:<%s>\r\n", c->env.rcpts[k - 2]);
    else
        emit(c, "DATA\r\n");
}

/* The transaction is over (every recipient has its outcome): idle, or QUIT if the session
 * cannot carry another one. */
static void end_transaction(ph_smtp_client *c)
{
    if (c->quit_after_txn)
        start_quit(c);
    else
        c->state = ST_IDLE;
}

/* Emits what the transaction allows now; ends it once nothing is left to send or await. */
static void txn_step(ph_smtp_client *c)
{
    size_t data = data_cmd(c);
    while (c->state == ST_TXN) {
        bool idle = c->next_reply == c->next_cmd; /* no reply outstanding */
        bool nobody = c->next_reply >= data && c->naccepted == 0;
        if (c->txn_failed || (nobody && c->next_cmd == data)) {
            if (idle)
                end_transaction(c);
            return; /* else drain the replies to what was sent */
        }
        if (c->next_cmd > data)
            return; /* all sent: the DATA reply moves on */
        if (!(c->caps & PH_SMTP_CAP_PIPELINING) && !idle)
            return;
        if (out_free(c) < CMD_MAX)
            return; /* more once the driver has written some */
        emit_txn_command(c, c->next_cmd++);
    }
}

/* Starts the current envelope's transaction, after the checks that need no server reply. */
static void begin_transaction(ph_smtp_client *c)
{
    char text[160];
    c->transactions++;
    if (c->size_max > 0 && c->env.size > c->size_max) {
        snprintf(text, sizeof(text),
                 "message size %" PRIu64 " exceeds the %s server's limit of %" PRIu64 " bytes",
                 c->env.size, proto_name(c), c->size_max);
        fail_open(c, PH_STAGE_MAIL, false, 552, "5.3.4", text);
        c->state = ST_IDLE;
        return;
    }
    if (c->needs_utf8 && !(c->caps & PH_SMTP_CAP_SMTPUTF8)) {
        snprintf(text, sizeof(text),
                 "the message needs SMTPUTF8 but the %s server does not offer it",
                 proto_name(c));
        fail_open(c, PH_STAGE_MAIL, false, 550, "5.6.7", text);
        c->state = ST_IDLE;
        return;
    }
    c->first_cmd = c->dirty ? CMD_RSET : CMD_MAIL;
    c->next_cmd = c->next_reply = c->first_cmd;
    c->naccepted = 0;
    c->data_cursor = 0;
    c->txn_failed = false;
    c->quit_after_txn = false;
    c->state = ST_TXN;
    txn_step(c);
}

/* ---- AUTH --------------------------------------------------------------------------------- */

/* Emits "prefix base64(data)\r\n"; the plain and encoded copies on the stack are wiped. */
static void emit_base64(ph_smtp_client *c, const char *prefix, const void *data, size_t len)
{
    char b64[BASE64_ENCODED_LEN(2 + 2 * PH_SMTP_CRED_MAX) + 1];
    if (base64_encode(data, len, b64, sizeof(b64)) >= 0)
        emit(c, "%s%s\r\n", prefix, b64);
    explicit_bzero(b64, sizeof(b64));
}

static void emit_auth_plain(ph_smtp_client *c)
{
    char plain[2 + 2 * PH_SMTP_CRED_MAX];
    size_t ulen = strlen(c->p.auth_user), plen = strlen(c->p.auth_pass);
    plain[0] = '\0'; /* no authorization identity: act as the user we authenticate as */
    memcpy(plain + 1, c->p.auth_user, ulen);
    plain[1 + ulen] = '\0';
    memcpy(plain + 2 + ulen, c->p.auth_pass, plen);
    emit_base64(c, "AUTH PLAIN ", plain, 2 + ulen + plen);
    explicit_bzero(plain, sizeof(plain));
}

static void auth_fail_local(ph_smtp_client *c, const char *why)
{
    fail_open(c, PH_STAGE_AUTH, false, 454, "4.7.0", why);
    start_quit(c);
}

static void start_auth(ph_smtp_client *c)
{
    if (!c->tls_active && !c->p.auth_insecure) {
        auth_fail_local(c, "AUTH credentials are not sent over a connection without TLS");
    } else if (!(c->caps & PH_SMTP_CAP_AUTH)) {
        auth_fail_local(c, "AUTH is configured but the server does not offer it");
    } else if (c->auth_mechs & PH_SMTP_AUTH_PLAIN) {
        emit_auth_plain(c);
        c->auth_step = AUTH_PLAIN_SENT;
        c->state = ST_AUTH;
    } else if (c->auth_mechs & PH_SMTP_AUTH_LOGIN) {
        emit(c, "AUTH LOGIN\r\n");
        c->auth_step = AUTH_LOGIN_SENT;
        c->state = ST_AUTH;
    } else {
        auth_fail_local(c, "the server offers no AUTH mechanism we support (PLAIN, LOGIN)");
    }
}

/* 334: the next LOGIN response (the challenges are always "Username:" then "Password:";
 * their wording varies, their order does not). */
static void on_auth_continue(ph_smtp_client *c)
{
    if (c->auth_step == AUTH_LOGIN_SENT) {
        emit_base64(c, "", c->p.auth_user, strlen(c->p.auth_user));
        c->auth_step = AUTH_USER_SENT;
    } else if (c->auth_step == AUTH_USER_SENT) {
        emit_base64(c, "", c->p.auth_pass, strlen(c->p.auth_pass));
        c->auth_step = AUTH_PASS_SENT;
    } else {
        protocol_error(c, "unexpected 334 to AUTH");
    }
}

static void on_auth(ph_smtp_client *c)
{
    int cls = reply_class(c);
    if (c->rr.reply.code == 334) {
        on_auth_continue(c);
    } else if (cls == 2 && (c->auth_step == AUTH_PLAIN_SENT || c->auth_step == AUTH_PASS_SENT)) {
        c->authenticated = true;
        begin_transaction(c);
    } else if (cls == 4) {
        fail_open_reply(c, PH_STAGE_AUTH);
        start_quit(c);
    } else if (cls == 5) {
        fail_open_quoting(c, PH_STAGE_AUTH, 454, "4.7.0", "authentication failed");
        start_quit(c);
    } else {
        protocol_error(c, "unexpected reply code");
    }
}

/* ---- session setup ------------------------------------------------------------------------ */

/* After a successful EHLO/HELO/LHLO: STARTTLS, AUTH or the transaction, as the policy says. */
static void after_hello(ph_smtp_client *c)
{
    if (!c->tls_active && c->p.tls != PH_SMTP_TLS_NONE && !c->starttls_refused) {
        if (c->caps & PH_SMTP_CAP_STARTTLS) {
            emit(c, "STARTTLS\r\n");
            c->state = ST_STARTTLS;
            return;
        }
        if (c->p.tls == PH_SMTP_TLS_REQUIRED) {
            fail_open(c, PH_STAGE_STARTTLS, false, 454, "4.7.4",
                      "TLS required but not offered by the server");
            start_quit(c);
            return;
        }
    }
    if (c->p.auth_user && !c->authenticated)
        start_auth(c);
    else
        begin_transaction(c);
}

static void on_greeting(ph_smtp_client *c)
{
    if (reply_class(c) == 2) {
        send_hello(c);
    } else if (reply_class(c) >= 4) {
        fail_open_reply(c, PH_STAGE_GREETING);
        start_quit(c);
    } else {
        protocol_error(c, "unexpected greeting code");
    }
}

static void on_hello(ph_smtp_client *c)
{
    int cls = reply_class(c);
    if (cls == 2) {
        c->esmtp = true;
        after_hello(c);
    } else if (cls == 3) {
        protocol_error(c, "unexpected reply code");
    } else if (cls == 5 && c->p.mode == PH_SMTP_MODE_SMTP) {
        c->caps = 0; /* HELO has no extensions */
        emit(c, "HELO %s\r\n", c->p.helo_name);
        c->state = ST_HELO;
    } else {
        fail_open_reply(c, ph_smtp_client_stage(c));
        start_quit(c);
    }
}

static void on_helo(ph_smtp_client *c)
{
    if (reply_class(c) == 2) {
        c->esmtp = false;
        after_hello(c);
    } else if (reply_class(c) == 3) {
        protocol_error(c, "unexpected reply code");
    } else {
        fail_open_reply(c, PH_STAGE_HELO);
        start_quit(c);
    }
}

static void on_starttls(ph_smtp_client *c)
{
    int cls = reply_class(c);
    if (cls == 2) {
        c->state = ST_TLS_WAIT;
    } else if (cls == 3) {
        protocol_error(c, "unexpected reply code");
    } else if (c->p.tls == PH_SMTP_TLS_REQUIRED) {
        fail_open_quoting(c, PH_STAGE_STARTTLS, 454, "4.7.4",
                          "TLS required but STARTTLS was refused");
        start_quit(c);
    } else {
        c->starttls_refused = true; /* opportunistic: carry on in clear */
        after_hello(c);
    }
}

/* "SIZE [n]": the limit; none, 0 or garbage means no limit, and a number too large for 64
 * bits is as good as none (never an overflow). */
static void parse_size(ph_smtp_client *c, const char *arg, size_t len)
{
    uint64_t v = 0;
    bool over = false;
    for (size_t j = 1; j < len && arg[j] >= '0' && arg[j] <= '9'; j++) {
        over = over || v > (UINT64_MAX - 9) / 10;
        v = v * 10 + (uint64_t)(arg[j] - '0');
    }
    c->size_max = over ? UINT64_MAX : v;
}

/* "AUTH PLAIN LOGIN ..." (or "AUTH=PLAIN LOGIN"): the mechanisms we can use. */
static void parse_auth(ph_smtp_client *c, const char *arg, size_t len)
{
    for (size_t j = 0; j < len;) {
        while (j < len && (arg[j] == ' ' || arg[j] == '='))
            j++;
        size_t start = j;
        while (j < len && arg[j] != ' ')
            j++;
        if (j - start == 5 && text_ascii_ieq(arg + start, "PLAIN", 5))
            c->auth_mechs |= PH_SMTP_AUTH_PLAIN;
        if (j - start == 5 && text_ascii_ieq(arg + start, "LOGIN", 5))
            c->auth_mechs |= PH_SMTP_AUTH_LOGIN;
    }
}

/* One line of a successful EHLO/LHLO reply after the first: a keyword and its parameters. */
static void on_capability(ph_smtp_client *c, const char *text, size_t len)
{
    static const struct {
        const char *name;
        unsigned bit;
        void (*parse)(ph_smtp_client *c, const char *arg, size_t len);
    } caps[] = {
        {"PIPELINING", PH_SMTP_CAP_PIPELINING, NULL},
        {"8BITMIME", PH_SMTP_CAP_8BITMIME, NULL},
        {"SMTPUTF8", PH_SMTP_CAP_SMTPUTF8, NULL},
        {"ENHANCEDSTATUSCODES", PH_SMTP_CAP_ENHANCEDSTATUSCODES, NULL},
        {"SIZE", PH_SMTP_CAP_SIZE, parse_size},
        {"STARTTLS", PH_SMTP_CAP_STARTTLS, NULL},
        {"AUTH", PH_SMTP_CAP_AUTH, parse_auth},
        {"CHUNKING", PH_SMTP_CAP_CHUNKING, NULL},
    };
    size_t kw = 0;
    while (kw < len && text[kw] != ' ' && text[kw] != '=') /* "AUTH=LOGIN": pre-RFC 4954 */
        kw++;
    for (size_t i = 0; i < sizeof(caps) / sizeof(caps[0]); i++) {
        if (strlen(caps[i].name) != kw || !text_ascii_ieq(text, caps[i].name, kw))
            continue;
        c->caps |= caps[i].bit;
        if (caps[i].parse)
            caps[i].parse(c, text + kw, len - kw);
    }
}

/* ---- transaction replies ------------------------------------------------------------------ */

static void on_data_reply(ph_smtp_client *c)
{
    if (c->rr.reply.code == 354) {
        /* 354 after a refused RSET/MAIL or with no recipient: nothing sensible can be sent,
         * and the server now reads message data; ending here closes the connection. */
        if (c->txn_failed || c->naccepted == 0)
            finish(c);
        else
            c->state = ST_MESSAGE;
    } else if (reply_class(c) >= 4) {
        fail_open_reply(c, PH_STAGE_DATA);
        end_transaction(c);
    } else {
        protocol_error(c, "unexpected reply code");
    }
}

static void on_txn_reply(ph_smtp_client *c)
{
    size_t k = c->next_reply;
    if (k == data_cmd(c)) {
        c->next_reply++;
        on_data_reply(c);
        return;
    }
    if (reply_class(c) == 3) {
        protocol_error(c, "unexpected reply code");
        return;
    }
    c->next_reply++;
    bool ok = reply_class(c) == 2;
    if (k == CMD_RSET) {
        if (ok) {
            c->dirty = false;
        } else { /* a server that cannot reset cannot be trusted with this message */
            fail_open_reply(c, PH_STAGE_RSET);
            c->txn_failed = c->quit_after_txn = true;
        }
    } else if (k == CMD_MAIL) {
        if (!ok && !c->txn_failed) {
            fail_open_reply(c, PH_STAGE_MAIL);
            c->txn_failed = true;
        }
    } else if (c->results[k - 2].code == 0) { /* not already failed by RSET or MAIL */
        if (ok) {
            c->naccepted++;
        } else {
            c->results[k - 2] = c->rr.reply;
            c->results[k - 2].stage = PH_STAGE_RCPT;
        }
    }
    txn_step(c);
}

/* The final reply after the message. SMTP: it applies to every accepted recipient; LMTP: to
 * the next accepted recipient in RCPT order. */
static void on_data_end(ph_smtp_client *c)
{
    if (reply_class(c) == 3) {
        protocol_error(c, "unexpected reply code");
        return;
    }
    ph_client_result r = c->rr.reply;
    r.stage = PH_STAGE_END_OF_DATA;
    size_t n = c->env.nrcpts;
    if (c->p.mode == PH_SMTP_MODE_SMTP) {
        for (size_t i = 0; i < n; i++)
            if (c->results[i].code == 0)
                c->results[i] = r;
        c->data_cursor = n;
    } else {
        while (c->data_cursor < n && c->results[c->data_cursor].code != 0)
            c->data_cursor++;
        if (c->data_cursor < n)
            c->results[c->data_cursor++] = r;
        while (c->data_cursor < n && c->results[c->data_cursor].code != 0)
            c->data_cursor++;
    }
    if (c->data_cursor >= n) {
        c->dirty = false; /* the transaction ended as RFC 5321 says: MAIL may follow */
        end_transaction(c);
    }
}

/* ---- dispatch ----------------------------------------------------------------------------- */

static void on_reply(ph_smtp_client *c)
{
    if (c->rr.reply.code == 421 && c->state != ST_QUIT) { /* the server is going away */
        fail_open_reply(c, ph_smtp_client_stage(c));
        finish(c);
        return;
    }
    switch (c->state) {
    case ST_GREETING: on_greeting(c); break;
    case ST_HELLO: on_hello(c); break;
    case ST_HELO: on_helo(c); break;
    case ST_STARTTLS: on_starttls(c); break;
    case ST_AUTH: on_auth(c); break;
    case ST_TXN: on_txn_reply(c); break;
    case ST_MESSAGE: protocol_error(c, "reply while the message was being sent"); break;
    case ST_DATA_END: on_data_end(c); break;
    case ST_IDLE: protocol_error(c, "reply while no command was sent"); break;
    case ST_QUIT: finish(c); break;
    default: break;
    }
}

void ph_smtp_client_feed(ph_smtp_client *c, const void *data, size_t len)
{
    const char *p = data;
    while (len > 0 && c->state != ST_DONE) {
        if (c->state == ST_TLS_WAIT) {
            protocol_error(c, "data after the 220 to STARTTLS, before TLS");
            return;
        }
        size_t used;
        ph_reply_event ev = ph_reply_reader_feed(&c->rr, p, len, &used);
        p += used;
        len -= used;
        if (ev == PH_REPLY_ERROR) {
            protocol_error(c, c->rr.error);
            return;
        }
        if (ev == PH_REPLY_NEED_MORE)
            return;
        if (c->state == ST_HELLO && c->rr.lines > 1 && reply_class(c) == 2)
            on_capability(c, c->rr.line_text, c->rr.line_text_len);
        if (ev == PH_REPLY_DONE)
            on_reply(c);
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

static bool valid_params(const ph_smtp_client_params *p)
{
    if ((unsigned)p->mode > PH_SMTP_MODE_LMTP || (unsigned)p->tls > PH_SMTP_TLS_REQUIRED ||
        !valid_string(p->helo_name, PH_SMTP_NAME_MAX, false, false))
        return false;
    if (!p->auth_user)
        return true;
    size_t u = strlen(p->auth_user);
    return u > 0 && u <= PH_SMTP_CRED_MAX && p->auth_pass &&
           strlen(p->auth_pass) <= PH_SMTP_CRED_MAX;
}

static bool valid_envelope(const ph_smtp_envelope *e)
{
    if (!e || !e->rcpts || e->nrcpts == 0 || !valid_string(e->from, PH_SMTP_PATH_MAX, true, true))
        return false;
    for (size_t i = 0; i < e->nrcpts; i++)
        if (!valid_string(e->rcpts[i], PH_SMTP_PATH_MAX, false, true))
            return false;
    return true;
}

static bool has_non_ascii(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s >= 0x80)
            return true;
    return false;
}

/* Takes the envelope over: results cleared, SMTPUTF8 need worked out. */
static void set_envelope(ph_smtp_client *c, const ph_smtp_envelope *env,
                         ph_client_result *results)
{
    c->env = *env;
    c->results = results;
    memset(results, 0, env->nrcpts * sizeof(*results));
    c->needs_utf8 = env->smtputf8 || has_non_ascii(env->from);
    for (size_t i = 0; i < env->nrcpts && !c->needs_utf8; i++)
        c->needs_utf8 = has_non_ascii(env->rcpts[i]);
}

int ph_smtp_client_init(ph_smtp_client *c, const ph_smtp_client_params *p,
                        const ph_smtp_envelope *env, ph_client_result *results)
{
    if (!c || !p || !results || !valid_params(p) || !valid_envelope(env))
        return -EINVAL;
    memset(c, 0, sizeof(*c));
    c->p = *p;
    c->tls_active = p->tls_active;
    ph_reply_reader_init(&c->rr);
    set_envelope(c, env, results);
    c->state = ST_GREETING;
    return 0;
}

int ph_smtp_client_next(ph_smtp_client *c, const ph_smtp_envelope *env,
                        ph_client_result *results)
{
    if (c->state != ST_IDLE || !results || !valid_envelope(env))
        return -EINVAL;
    set_envelope(c, env, results);
    begin_transaction(c);
    return 0;
}

int ph_smtp_client_quit(ph_smtp_client *c)
{
    if (c->state != ST_IDLE)
        return -EINVAL;
    start_quit(c);
    return 0;
}

unsigned ph_smtp_client_wants(const ph_smtp_client *c)
{
    unsigned w = c->out_len > 0 ? PH_SMTP_WANT_WRITE : 0;
    /* A server can only answer what it has received, but a hostile one may send replies
     * ahead: commands still unwritten (DATA, STARTTLS, ...) always go out before the message,
     * the handshake or the next envelope, never after them. */
    switch (c->state) {
    case ST_DONE: return 0;
    case ST_MESSAGE: return w ? w : PH_SMTP_WANT_MESSAGE;
    case ST_IDLE: return w ? w : PH_SMTP_WANT_NEXT;
    case ST_TLS_WAIT: return w ? w : PH_SMTP_WANT_TLS;
    default: break;
    }
    if (c->state != ST_TXN || c->next_reply < c->next_cmd)
        w |= PH_SMTP_WANT_READ;
    return w ? w : PH_SMTP_WANT_READ;
}

const char *ph_smtp_client_output(const ph_smtp_client *c, size_t *len)
{
    *len = c->state == ST_DONE ? 0 : c->out_len;
    return *len ? c->out + c->out_start : NULL;
}

void ph_smtp_client_output_done(ph_smtp_client *c, size_t n)
{
    if (n > c->out_len)
        n = c->out_len;
    explicit_bzero(c->out + c->out_start, n); /* sent: AUTH secrets must not linger */
    c->out_start += n;
    c->out_len -= n;
    if (c->out_len == 0)
        c->out_start = 0;
    txn_step(c);
}

void ph_smtp_client_closed(ph_smtp_client *c)
{
    if (c->state != ST_QUIT && c->state != ST_DONE) {
        char text[128];
        snprintf(text, sizeof(text), "connection closed by the %s server (waiting for %s)",
                 proto_name(c), ph_smtp_client_waiting_for(c));
        fail_open(c, ph_smtp_client_stage(c), false, 451, "4.4.2", text);
    }
    finish(c);
}

int ph_smtp_client_tls_started(ph_smtp_client *c)
{
    if (c->state != ST_TLS_WAIT)
        return -EINVAL;
    c->tls_active = true;
    send_hello(c);
    return 0;
}

void ph_smtp_client_message_sent(ph_smtp_client *c)
{
    if (c->state == ST_MESSAGE)
        c->state = ST_DATA_END;
}

void ph_smtp_client_fail(ph_smtp_client *c, int code, const char *enh, const char *text)
{
    if (c->state != ST_DONE)
        fail_open(c, ph_smtp_client_stage(c), false, code, enh, text);
    finish(c);
}

ph_client_stage ph_smtp_client_stage(const ph_smtp_client *c)
{
    switch (c->state) {
    case ST_GREETING: return PH_STAGE_GREETING;
    case ST_HELLO: return c->p.mode == PH_SMTP_MODE_LMTP ? PH_STAGE_LHLO : PH_STAGE_EHLO;
    case ST_HELO: return PH_STAGE_HELO;
    case ST_STARTTLS: return PH_STAGE_STARTTLS;
    case ST_TLS_WAIT: return PH_STAGE_TLS;
    case ST_AUTH: return PH_STAGE_AUTH;
    case ST_TXN:
        if (c->next_reply == CMD_RSET)
            return PH_STAGE_RSET;
        if (c->next_reply == CMD_MAIL)
            return PH_STAGE_MAIL;
        return c->next_reply < data_cmd(c) ? PH_STAGE_RCPT : PH_STAGE_DATA;
    case ST_MESSAGE: return PH_STAGE_MESSAGE;
    case ST_DATA_END: return PH_STAGE_END_OF_DATA;
    default: return PH_STAGE_NONE;
    }
}

const char *ph_smtp_client_waiting_for(const ph_smtp_client *c)
{
    switch (c->state) {
    case ST_QUIT: return "QUIT";
    case ST_IDLE: return "next message";
    case ST_DONE: return "nothing";
    default: return ph_client_stage_name(ph_smtp_client_stage(c));
    }
}
