/*
 * session.c - the SMTP server session state machine (see session.h): line assembly with the
 * strict CRLF policy, one table row per command (check -> hook -> proceed), hook verdicts,
 * DATA/BDAT framing and the error budget. AUTH's SASL exchange is in session_auth.c and BDAT's
 * chunk reading in session_bdat.c; the three share session_internal.h.
 *
 * Owns: the output buffer, the partial command line, the current transaction, copies of hook
 * arguments and verdict texts. Never blocks, never does I/O; memory shortage turns into a
 * 421 reply and a close, never a crash.
 */
#include "proto/session.h"
#include "proto/session_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto/text.h"

/* ---- small helpers ----------------------------------------------------------------- */

static void set_str(char **dst, const char *src)
{
    free(*dst);
    *dst = src ? text_dup(src, strlen(src)) : NULL;
}

/* Notifies the logger of a refusal: the first line of the reply just appended. */
static void note_refusal(smtp_session *s, const char *verb, int code, size_t start)
{
    if (code < 400 || !s->cfg.on_refusal || s->out.len <= start)
        return;
    const char *line = s->out.data + start;
    const char *end = memchr(line, '\r', s->out.len - start);
    size_t n = end ? (size_t)(end - line) : s->out.len - start;
    char buf[512];
    if (n >= sizeof(buf))
        n = sizeof(buf) - 1;
    memcpy(buf, line, n);
    buf[n] = '\0';
    s->cfg.on_refusal(s->cfg.ctx, verb, code, buf);
}

static const char *cur_verb(const smtp_session *s)
{
    return s->hook_verb == V_UNKNOWN ? "CONNECT" : smtp_verb_name(s->hook_verb);
}

void session_fail_memory(smtp_session *s)
{
    strbuf_clear(&s->out);
    strbuf_append(&s->out, "421 4.3.0 Out of memory, closing\r\n", 34);
    s->want_close = true;
    s->phase = PH_CLOSED;
}

void session_reply_id(smtp_session *s, smtp_reply_id id, const char *arg)
{
    size_t start = s->out.len;
    if (smtp_reply_append_id(&s->out, id, arg) < 0) {
        session_fail_memory(s);
        return;
    }
    note_refusal(s, smtp_verb_name(s->hook_verb), smtp_reply_get(id)->code, start);
}

static void reply_custom(smtp_session *s, int code, const char *enh, const char *text)
{
    size_t start = s->out.len;
    if (smtp_reply_append(&s->out, code, enh, text) < 0) {
        session_fail_memory(s);
        return;
    }
    note_refusal(s, cur_verb(s), code, start);
}

static void close_after_reply(smtp_session *s)
{
    s->want_close = true;
    s->phase = PH_CLOSED;
}

/* Ends the transaction; a transaction that did not end in a stored message is noted. */
void session_txn_end(smtp_session *s, bool stored)
{
    if (!s->txn)
        return;
    if (!stored)
        s->notes |= SN_TXN_ABORTED;
    smtp_txn_free(s->txn);
    s->txn = NULL;
    s->bdat_used = false;
    free(s->prefix);
    s->prefix = NULL;
    s->prefix_pending = false;
    set_str(&s->fail_enh, NULL);
    set_str(&s->fail_text, NULL);
    s->fail_code = 0;
}

/* A protocol error: reply, count it, and close when the budget is spent. */
void session_protocol_error(smtp_session *s, smtp_reply_id id)
{
    session_reply_id(s, id, NULL);
    if (s->cfg.max_errors && ++s->errors >= s->cfg.max_errors && !s->want_close) {
        session_reply_id(s, R_TOO_MANY_ERRORS, NULL);
        session_txn_end(s, false);
        close_after_reply(s);
    }
}

void session_want_hook(smtp_session *s, smtp_hook kind)
{
    memset(&s->hook, 0, sizeof(s->hook));
    s->hook.kind = kind;
}

/* ---- lifecycle ---------------------------------------------------------------------- */

smtp_session *smtp_session_new(const smtp_session_config *cfg)
{
    smtp_session *s = calloc(1, sizeof(*s));
    if (!s)
        return NULL;
    s->cfg = *cfg;
    strbuf_init(&s->out, 0);
    strbuf_init(&s->line, cfg->max_line ? cfg->max_line + 1 : 0);
    s->phase = PH_CONNECT;
    return s;
}

void smtp_session_free(smtp_session *s)
{
    if (!s)
        return;
    smtp_txn_free(s->txn);
    strbuf_free(&s->out);
    strbuf_free(&s->line);
    free(s->helo);
    free(s->hook_arg);
    free(s->prefix);
    free(s->fail_enh);
    free(s->fail_text);
    if (s->sasl)
        sasl_wipe(s->sasl);
    free(s->sasl);
    free(s->auth_user);
    free(s);
}

void smtp_session_start(smtp_session *s)
{
    s->hook_verb = V_UNKNOWN;
    session_want_hook(s, HOOK_CONNECT);
}

static void send_banner(smtp_session *s)
{
    char text[600];
    snprintf(text, sizeof(text), "%s ESMTP %s", s->cfg.hostname,
             s->cfg.banner ? s->cfg.banner : "Posthorn");
    session_reply_id(s, R_GREETING, text);
    s->phase = PH_COMMAND;
}

void smtp_session_greet(smtp_session *s)
{
    s->greet_ok = true;
    if (s->connect_ok && s->phase == PH_CONNECT)
        send_banner(s);
}

void smtp_session_closed(smtp_session *s)
{
    session_txn_end(s, false);
    s->hook.kind = HOOK_NONE;
    s->phase = PH_CLOSED;
    s->want_close = true;
}

void smtp_session_abort(smtp_session *s, smtp_reply_id why)
{
    if (s->phase == PH_CLOSED)
        return;
    session_reply_id(s, why, NULL);
    session_txn_end(s, false);
    s->hook.kind = HOOK_NONE;
    close_after_reply(s);
}

/* ---- HELO / EHLO --------------------------------------------------------------------- */

static void cmd_helo(smtp_session *s, const smtp_command *c)
{
    if (smtp_parse_helo(c->arg, c->arg_len) != R_NONE) {
        session_protocol_error(s, R_SYNTAX_HELO);
        return;
    }
    set_str(&s->hook_arg, NULL);
    s->hook_arg = text_dup(c->arg, c->arg_len);
    if (!s->hook_arg) {
        session_fail_memory(s);
        return;
    }
    session_want_hook(s, HOOK_HELO);
    s->hook.arg = s->hook_arg;
    s->hook.ehlo = c->verb == V_EHLO;
}

static bool auth_offered(const smtp_session *s)
{
    return s->cfg.auth && !s->auth && (s->tls || s->cfg.auth_insecure);
}

/* The EHLO reply: host name, then one extension per line, as this session can use them now. */
static int ehlo_reply(const smtp_session *s, char *buf, size_t len)
{
    int n = snprintf(buf, len, "%s\nPIPELINING\nSIZE %llu\n8BITMIME\nSMTPUTF8\n"
                     "ENHANCEDSTATUSCODES\nCHUNKING%s%s", s->cfg.hostname,
                     (unsigned long long)s->cfg.max_message_size,
                     s->cfg.starttls && !s->tls ? "\nSTARTTLS" : "",
                     auth_offered(s) ? "\nAUTH PLAIN LOGIN" : "");
    return n > 0 && (size_t)n < len ? 0 : -1;
}

static void helo_accepted(smtp_session *s)
{
    session_txn_end(s, false); /* RFC 5321 4.1.4: HELO/EHLO resets the transaction */
    free(s->helo);
    s->helo = s->hook_arg;
    s->hook_arg = NULL;
    s->esmtp = s->hook.ehlo;
    if (!s->esmtp) {
        session_reply_id(s, R_HELO_OK, s->cfg.hostname);
        return;
    }
    char text[600];
    if (ehlo_reply(s, text, sizeof(text)) < 0)
        return session_fail_memory(s);
    session_reply_id(s, R_HELO_OK, text);
}

/* ---- MAIL / RCPT ------------------------------------------------------------------- */

static void cmd_mail(smtp_session *s, const smtp_command *c)
{
    if (!s->helo)
        return session_protocol_error(s, R_NEED_HELO);
    if (s->txn)
        return session_protocol_error(s, R_NESTED_MAIL);
    if (s->cfg.require_tls && !s->tls)
        return session_protocol_error(s, R_NEED_STARTTLS);
    if (s->cfg.require_auth && !s->auth)
        return session_protocol_error(s, R_AUTH_REQUIRED);
    smtp_reply_id err = smtp_parse_mail(c->arg, c->arg_len, &s->path, &s->mail);
    if (err != R_NONE)
        return session_protocol_error(s, err);
    if (!s->esmtp && (s->mail.has_size || s->mail.body || s->mail.smtputf8))
        return session_protocol_error(s, R_PARAM_UNKNOWN); /* parameters need EHLO */
    if (s->mail.has_size && s->cfg.max_message_size && s->mail.size > s->cfg.max_message_size)
        return session_reply_id(s, R_SIZE_EXCEEDED, NULL);
    session_want_hook(s, HOOK_MAIL);
    s->hook.path = &s->path;
}

static void mail_accepted(smtp_session *s)
{
    s->txn = smtp_txn_new(s->path.mailbox, s->path.len);
    if (!s->txn)
        return session_fail_memory(s);
    s->txn->smtputf8 = s->mail.smtputf8;
    s->txn->body = s->mail.body;
    s->txn->declared_size = s->mail.has_size ? s->mail.size : 0;
    session_reply_id(s, R_SENDER_OK, NULL);
}

static void cmd_rcpt(smtp_session *s, const smtp_command *c)
{
    if (!s->txn)
        return session_protocol_error(s, R_NEED_MAIL);
    if (s->bdat_used)
        return session_protocol_error(s, R_BAD_SEQUENCE);
    smtp_reply_id err = smtp_parse_rcpt(c->arg, c->arg_len, s->txn->smtputf8, &s->path);
    if (err != R_NONE)
        return session_protocol_error(s, err);
    if (s->cfg.max_recipients && s->txn->rcpt_count >= s->cfg.max_recipients)
        return session_reply_id(s, R_TOO_MANY_RCPTS, NULL);
    session_want_hook(s, HOOK_RCPT);
    s->hook.path = &s->path;
}

static void rcpt_accepted(smtp_session *s)
{
    if (smtp_txn_add_rcpt(s->txn, s->path.mailbox, s->path.len) < 0)
        return session_fail_memory(s);
    session_reply_id(s, R_RCPT_OK, NULL);
}

/* ---- DATA / BDAT ---------------------------------------------------------------------- */

static void cmd_data(smtp_session *s, const smtp_command *c)
{
    if (c->arg_len)
        return session_protocol_error(s, R_NO_ARGS);
    if (!s->txn)
        return session_protocol_error(s, R_NEED_MAIL);
    if (s->bdat_used)
        return session_protocol_error(s, R_DATA_AFTER_BDAT);
    if (!s->txn->rcpt_count)
        return session_protocol_error(s, R_NEED_RCPT);
    session_want_hook(s, HOOK_DATA_START);
}

static void data_start_accepted(smtp_session *s)
{
    s->txn->data_started = true;
    if (s->hook_verb == V_DATA) {
        session_reply_id(s, R_DATA_GO, NULL);
        smtp_data_init(&s->framer, s->cfg.max_message_size, s->cfg.max_data_line);
        s->phase = PH_DATA;
    } else {
        s->bdat_used = true;
        s->phase = PH_BDAT;
    }
    if (s->prefix_len) {
        s->prefix_pending = true;
        session_want_hook(s, HOOK_DATA_CHUNK);
        s->hook.chunk = s->prefix;
        s->hook.chunk_len = s->prefix_len;
        s->txn->size += s->prefix_len;
    } else if (s->phase == PH_BDAT) {
        session_bdat_begin(s);
    }
}

static void data_start_refused(smtp_session *s)
{
    if (s->hook_verb == V_BDAT) {
        /* the refusal is out; the chunk's octets must still be read and dropped */
        session_txn_end(s, false);
        s->bdat_error = R_NONE;
        s->bdat_silent = true;
        session_bdat_begin(s);
    }
}

/* The data is complete: refuse it for framing errors, else ask the message hook. */
void session_data_complete(smtp_session *s, unsigned errors)
{
    s->phase = PH_COMMAND;
    s->hook_verb = s->bdat_used ? V_BDAT : V_DATA;
    if (s->fail_code) {
        reply_custom(s, s->fail_code, s->fail_enh, s->fail_text);
        return session_txn_end(s, false);
    }
    if (errors || s->txn->failed) {
        smtp_reply_id id = (errors & DATA_ERR_SIZE) || !errors ? R_SIZE_EXCEEDED
                           : (errors & DATA_ERR_BARE_LF)         ? R_DATA_BARE_LF
                                                                 : R_DATA_LINE_LONG;
        session_reply_id(s, id, NULL);
        return session_txn_end(s, false);
    }
    session_want_hook(s, HOOK_MESSAGE);
}

static void message_accepted(smtp_session *s)
{
    session_reply_id(s, R_QUEUED, s->txn->queue_id[0] ? s->txn->queue_id : "-");
    s->messages++;
    s->notes |= SN_MESSAGE_DONE;
    session_txn_end(s, true);
}

/* Feeds DATA bytes to the framer: stops after each span (handed to the chunk hook). */
static size_t feed_data(smtp_session *s, const char *p, size_t len)
{
    smtp_data_out o;
    size_t used = smtp_data_feed(&s->framer, p, len, &o);
    if (o.span && o.span_len && !s->fail_code) {
        s->txn->size += o.span_len;
        session_want_hook(s, HOOK_DATA_CHUNK);
        s->hook.chunk = o.span;
        s->hook.chunk_len = o.span_len;
    }
    if (o.done) {
        s->txn->data_errors = s->framer.errors;
        if (s->hook.kind == HOOK_DATA_CHUNK)
            s->data_done = true; /* finish after the last chunk's verdict */
        else
            session_data_complete(s, s->framer.errors);
    }
    return used;
}

/* ---- the other commands -------------------------------------------------------------- */

static void cmd_rset(smtp_session *s, const smtp_command *c)
{
    if (c->arg_len)
        return session_protocol_error(s, R_NO_ARGS);
    session_txn_end(s, false);
    s->notes |= SN_RSET;
    session_reply_id(s, R_ACTION_OK, NULL);
}

static void cmd_noop(smtp_session *s, const smtp_command *c)
{
    (void)c; /* RFC 5321 4.1.1.9: NOOP may have a string argument */
    session_reply_id(s, R_ACTION_OK, NULL);
}

static void cmd_quit(smtp_session *s, const smtp_command *c)
{
    if (c->arg_len)
        return session_protocol_error(s, R_NO_ARGS);
    session_reply_id(s, R_BYE, NULL);
    session_txn_end(s, false);
    close_after_reply(s);
}

static void cmd_vrfy(smtp_session *s, const smtp_command *c)
{
    if (!c->arg_len)
        return session_protocol_error(s, R_SYNTAX);
    session_reply_id(s, R_VRFY, NULL);
}

static void cmd_help(smtp_session *s, const smtp_command *c)
{
    (void)c;
    session_reply_id(s, R_HELP, NULL);
}

static void cmd_starttls(smtp_session *s, const smtp_command *c)
{
    if (s->tls) /* TLS is already on (also implicit TLS) */
        return session_protocol_error(s, R_BAD_SEQUENCE);
    if (!s->cfg.starttls)
        return session_protocol_error(s, R_NOT_IMPLEMENTED);
    if (c->arg_len)
        return session_protocol_error(s, R_NO_ARGS);
    session_reply_id(s, R_TLS_READY, NULL);
    s->want_tls = true; /* feeding stops here: the rest of the input is discarded */
}

static void cmd_not_implemented(smtp_session *s, const smtp_command *c)
{
    (void)c;
    session_protocol_error(s, R_NOT_IMPLEMENTED);
}

static void cmd_unknown(smtp_session *s, const smtp_command *c)
{
    (void)c;
    session_protocol_error(s, R_UNKNOWN_CMD);
}

typedef void (*cmd_fn)(smtp_session *s, const smtp_command *c);

/* One row per verb: the handler checks sequence and syntax and may ask for a hook. */
static const cmd_fn command_table[V__COUNT] = {
    [V_UNKNOWN] = cmd_unknown,   [V_HELO] = cmd_helo, [V_EHLO] = cmd_helo,
    [V_MAIL] = cmd_mail,         [V_RCPT] = cmd_rcpt, [V_DATA] = cmd_data,
    [V_BDAT] = session_cmd_bdat, [V_RSET] = cmd_rset, [V_NOOP] = cmd_noop,
    [V_QUIT] = cmd_quit,         [V_VRFY] = cmd_vrfy, [V_EXPN] = cmd_not_implemented,
    [V_HELP] = cmd_help,         [V_STARTTLS] = cmd_starttls,
    [V_AUTH] = session_cmd_auth,
};

static void run_command(smtp_session *s, const char *line, size_t len)
{
    smtp_command c;
    smtp_parse_command(line, len, &c);
    s->commands++;
    s->hook_verb = c.verb;
    command_table[c.verb](s, &c);
}

/* ---- command line assembly: CRLF only ------------------------------------------------- */

/* A complete line ending in CRLF: reject a bare CR inside it, else run it. */
static void handle_line(smtp_session *s, const char *line, size_t len)
{
    s->hook_verb = V_UNKNOWN;
    if (s->phase == PH_AUTH) {
        if (len > AUTH_LINE_MAX || memchr(line, '\r', len - 2)) {
            session_auth_end(s);
            return session_protocol_error(s, len > AUTH_LINE_MAX ? R_AUTH_TOO_LONG : R_BARE_LF);
        }
        return session_auth_line(s, line, len - 2);
    }
    if (s->cfg.max_line && len > s->cfg.max_line)
        return session_protocol_error(s, R_LINE_TOO_LONG);
    if (memchr(line, '\r', len - 2))
        return session_protocol_error(s, R_BARE_LF);
    run_command(s, line, len - 2);
}

/* The end of a line (CRLF) in the discarding states: the reply owed, if any. */
static void end_discarded_line(smtp_session *s)
{
    line_state st = s->line_state;
    bool in_auth = s->phase == PH_AUTH;
    s->line_state = LS_NORMAL;
    if (in_auth)
        session_auth_end(s);
    strbuf_clear(&s->line);
    s->hook_verb = V_UNKNOWN;
    if (st == LS_OVERFLOW)
        session_protocol_error(s, in_auth ? R_AUTH_TOO_LONG : R_LINE_TOO_LONG);
}

/*
 * Consumes command bytes up to and including one LF (or all of them if there is none). Only
 * CRLF ends a line (RFC 5321 2.3.8). A bare LF is answered at once with 500 5.5.2 and the rest
 * of that "line", up to the next CRLF, is dropped unanswered: an LF-only client learns why it
 * fails, and nothing after a bare LF can ever run as a command.
 */
static size_t feed_command(smtp_session *s, const char *p, size_t len)
{
    const char *lf = memchr(p, '\n', len);
    size_t take = lf ? (size_t)(lf - p) + 1 : len;
    bool crlf = lf && (lf > p ? lf[-1] == '\r' : s->last_was_cr);
    s->last_was_cr = p[take - 1] == '\r';
    if (lf && !crlf) {
        if (s->line_state != LS_BARE_LF) {
            s->hook_verb = V_UNKNOWN;
            if (s->phase == PH_AUTH)
                session_auth_end(s);
            session_protocol_error(s, R_BARE_LF);
        }
        s->line_state = LS_BARE_LF;
        strbuf_clear(&s->line);
        return take;
    }
    if (s->line_state != LS_NORMAL) {
        if (lf)
            end_discarded_line(s);
        return take;
    }
    if (!s->line.len && lf) {
        handle_line(s, p, take); /* fast path: the whole line is in this input */
        return take;
    }
    if (strbuf_append(&s->line, p, take) < 0) {
        s->line_state = LS_OVERFLOW; /* over the limit: drop the rest of the line */
        strbuf_clear(&s->line);
        if (lf)
            end_discarded_line(s);
        return take;
    }
    if (lf) {
        handle_line(s, s->line.data, s->line.len);
        strbuf_clear(&s->line);
    }
    return take;
}

size_t smtp_session_feed(smtp_session *s, const char *p, size_t len)
{
    size_t used = 0;
    if (s->want_close)
        return len; /* closing: whatever else the client sends is dropped */
    if (s->phase == PH_CONNECT && len) {
        /* RFC 5321 4.3.1: the client waits for the greeting; talking first is a violation */
        s->early_talker = true;
        s->hook.kind = HOOK_NONE;
        s->hook_verb = V_UNKNOWN;
        session_reply_id(s, R_EARLY_TALKER, NULL);
        close_after_reply(s);
        return len;
    }
    while (used < len && s->hook.kind == HOOK_NONE && !s->want_close && !s->want_tls) {
        switch (s->phase) {
        case PH_COMMAND:
        case PH_AUTH: used += feed_command(s, p + used, len - used); break;
        case PH_DATA: used += feed_data(s, p + used, len - used); break;
        case PH_BDAT: used += session_feed_bdat(s, p + used, len - used); break;
        default: return len; /* closed: drop input */
        }
    }
    return used;
}

/* ---- verdicts ---------------------------------------------------------------------------- */

typedef struct hook_row {
    void (*accepted)(smtp_session *s);
    void (*refused)(smtp_session *s); /* after the refusal reply; may be NULL */
    smtp_reply_id reject5, reject4;   /* default refusal replies */
} hook_row;

static void connect_accepted(smtp_session *s)
{
    s->connect_ok = true;
    if (!s->cfg.greeting_delayed || s->greet_ok)
        send_banner(s);
}

static void connect_refused(smtp_session *s)
{
    close_after_reply(s);
}

static void chunk_accepted(smtp_session *s);

static const hook_row hook_table[] = {
    [HOOK_CONNECT] = {connect_accepted, connect_refused, R_REJECTED, R_TEMP_REJECT},
    [HOOK_HELO] = {helo_accepted, NULL, R_REJECTED, R_TEMP_REJECT},
    [HOOK_MAIL] = {mail_accepted, NULL, R_REJECTED, R_TEMP_REJECT},
    [HOOK_RCPT] = {rcpt_accepted, NULL, R_REJECTED, R_TEMP_REJECT},
    [HOOK_DATA_START] = {data_start_accepted, data_start_refused, R_REJECTED, R_TEMP_REJECT},
    [HOOK_DATA_CHUNK] = {chunk_accepted, NULL, R_REJECTED, R_TEMP_REJECT},
    [HOOK_MESSAGE] = {message_accepted, NULL, R_REJECTED, R_STORE_FAILED},
    [HOOK_AUTH] = {session_auth_accepted, session_auth_refused, R_AUTH_FAILED, R_AUTH_TEMP_FAIL},
};

/* After a chunk verdict: finish the data if its end was already seen. */
static void chunk_continue(smtp_session *s)
{
    if (s->prefix_pending) {
        s->prefix_pending = false;
        if (s->phase == PH_BDAT && s->bdat_left == 0)
            session_bdat_chunk_done(s);
        return;
    }
    if (s->phase == PH_DATA && s->data_done) {
        s->data_done = false;
        session_data_complete(s, s->framer.errors);
    } else if (s->phase == PH_BDAT && s->bdat_left == 0) {
        session_bdat_chunk_done(s);
    }
}

static void chunk_accepted(smtp_session *s)
{
    chunk_continue(s);
}

/* A chunk hook refused: remember the reply for the end of the data; keep reading. */
static void chunk_refused(smtp_session *s, const smtp_verdict *v, int code)
{
    if (!s->fail_code) {
        s->fail_code = code;
        set_str(&s->fail_enh, v->enhanced);
        set_str(&s->fail_text, v->text ? v->text : smtp_reply_get(R_REJECTED)->text);
        if (s->txn)
            s->txn->failed = true;
    }
    chunk_continue(s);
}

static int refusal_code(const smtp_verdict *v, const hook_row *row, smtp_reply_id *id)
{
    int code = v->code;
    if (code < 400 || code > 599)
        code = 0;
    *id = code >= 400 && code < 500 ? row->reject4 : row->reject5;
    return code ? code : smtp_reply_get(*id)->code;
}

static void resolve_refusal(smtp_session *s, const smtp_verdict *v, const hook_row *row,
                            smtp_hook kind)
{
    smtp_reply_id id;
    int code = refusal_code(v, row, &id);
    if (kind == HOOK_DATA_CHUNK)
        return chunk_refused(s, v, code);
    if (v->code || v->text)
        reply_custom(s, code, v->enhanced, v->text ? v->text : smtp_reply_get(id)->text);
    else
        session_reply_id(s, id, NULL);
    if (kind == HOOK_MESSAGE)
        session_txn_end(s, false);
    if (row->refused)
        row->refused(s);
}

static void resolve_disconnect(smtp_session *s, const smtp_verdict *v)
{
    int code = v->code >= 400 && v->code <= 599 ? v->code : 421;
    if (v->code || v->text)
        reply_custom(s, code, v->enhanced,
                     v->text ? v->text : smtp_reply_get(R_DISCONNECT)->text);
    else
        session_reply_id(s, R_DISCONNECT, NULL);
    session_txn_end(s, false);
    close_after_reply(s);
}

void smtp_session_resolve(smtp_session *s, const smtp_verdict *v)
{
    smtp_hook kind = s->hook.kind;
    if (kind == HOOK_NONE)
        return;
    const hook_row *row = &hook_table[kind];
    s->hook.kind = HOOK_NONE;
    if (v->action == SV_DISCONNECT)
        return resolve_disconnect(s, v);
    if (v->action == SV_REJECT)
        return resolve_refusal(s, v, row, kind);
    if (v->text && kind != HOOK_DATA_CHUNK && kind != HOOK_CONNECT) {
        /* an accepting hook chose its own text: reply with it instead of the default */
        int code = v->code >= 200 && v->code < 400 ? v->code : 0;
        if (kind == HOOK_DATA_START && s->hook_verb == V_DATA)
            code = 354;
        if (kind == HOOK_HELO || kind == HOOK_MESSAGE || (kind == HOOK_DATA_START && s->hook_verb == V_BDAT)) {
            row->accepted(s); /* these have structured replies: keep them */
            return;
        }
        size_t mark = s->out.len;
        row->accepted(s);
        if (s->out.len > mark && code) {
            s->out.len = mark; /* replace the default reply with the hook's */
            reply_custom(s, code, v->enhanced, v->text);
        }
        return;
    }
    row->accepted(s);
}

/* ---- accessors ------------------------------------------------------------------------ */

const smtp_hook_req *smtp_session_hook(const smtp_session *s)
{
    return s->hook.kind == HOOK_NONE ? NULL : &s->hook;
}

strbuf *smtp_session_output(smtp_session *s) { return &s->out; }
bool smtp_session_want_close(const smtp_session *s) { return s->want_close; }
smtp_phase smtp_session_phase(const smtp_session *s) { return s->phase; }

bool smtp_session_is_idle(const smtp_session *s)
{
    return s->hook.kind == HOOK_NONE && (s->phase == PH_COMMAND || s->phase == PH_CONNECT) &&
           !(s->txn && s->txn->data_started);
}

unsigned smtp_session_take_notes(smtp_session *s)
{
    unsigned n = s->notes;
    s->notes = 0;
    return n;
}

int smtp_session_set_prefix(smtp_session *s, const char *p, size_t len)
{
    free(s->prefix);
    s->prefix = text_dup(p, len);
    s->prefix_len = s->prefix ? len : 0;
    return s->prefix ? 0 : -1;
}

void smtp_session_set_tls(smtp_session *s, bool tls) { s->tls = tls; }
bool smtp_session_want_tls(const smtp_session *s) { return s->want_tls; }
bool smtp_session_tls(const smtp_session *s) { return s->tls; }
const char *smtp_session_auth_user(const smtp_session *s) { return s->auth_user; }

void smtp_session_tls_started(smtp_session *s)
{
    s->want_tls = false;
    s->tls = true;
    session_txn_end(s, false);
    free(s->helo); /* RFC 3207 4.2: the client must say EHLO again */
    s->helo = NULL;
    s->esmtp = false;
    s->auth = false;
    free(s->auth_user);
    s->auth_user = NULL;
    session_auth_end(s);
    strbuf_clear(&s->line);
    s->line_state = LS_NORMAL;
    s->last_was_cr = false;
}
const char *smtp_session_helo(const smtp_session *s) { return s->helo; }
bool smtp_session_esmtp(const smtp_session *s) { return s->esmtp; }
const smtp_txn *smtp_session_txn(const smtp_session *s) { return s->txn; }
smtp_txn *smtp_session_txn_mut(smtp_session *s) { return s->txn; }
unsigned smtp_session_error_count(const smtp_session *s) { return s->errors; }
unsigned smtp_session_messages(const smtp_session *s) { return s->messages; }
unsigned smtp_session_commands(const smtp_session *s) { return s->commands; }

/* RFC 3848 / RFC 6531 protocol names for the Received: header's WITH clause. */
const char *smtp_session_protocol(const smtp_session *s)
{
    static const char *const names[2][2][2][2] = {
        {{{"SMTP", "SMTPA"}, {"SMTPS", "SMTPSA"}},
         {{"ESMTP", "ESMTPA"}, {"ESMTPS", "ESMTPSA"}}},
        {{{"SMTP", "SMTPA"}, {"SMTPS", "SMTPSA"}},
         {{"UTF8SMTP", "UTF8SMTPA"}, {"UTF8SMTPS", "UTF8SMTPSA"}}},
    };
    bool utf8 = s->txn && s->txn->smtputf8;
    return names[utf8][s->esmtp][s->tls][s->auth];
}
