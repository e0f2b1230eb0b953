/*
 * hooks.c - turns the core's hook requests into calls of the embedder's hooks (a missing hook
 * accepts), assigns the queue id and builds the Received: trace header (RFC 5321 4.4) at the
 * start of a message, and writes the per-event log lines (key=value, with sid and qid).
 * Owns nothing long-lived; verdict strings stay the hook's until the core copies them.
 */
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "server_internal.h"
#include "proto/date.h"
#include "proto/qid.h"

#define LOG_SID "sid=%016llx"
#define SID(s) ((unsigned long long)(s)->id)
/* Client-supplied text in a log line: escaped so it cannot forge fields. One per statement. */
#define LOGV(v) ph_log_value((v), logv_buf, sizeof(logv_buf))
static _Thread_local char logv_buf[PH_LOG_VALUE_MAX];

/* Unique per machine: microseconds, process id, and a per-process counter. */
static void make_queue_id(posthorn_server *srv, char *out)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    uint64_t usec = (uint64_t)tv.tv_sec * 1000000u + (uint64_t)tv.tv_usec;
    ph_qid_format(out, usec, (unsigned)srv->pid, srv->qid_counter++);
}

static void client_literal(const posthorn_session *s, char *buf, size_t len)
{
    if (!s->client_ip[0])
        snprintf(buf, len, "localhost");
    else if (strchr(s->client_ip, ':'))
        snprintf(buf, len, "[IPv6:%s]", s->client_ip);
    else
        snprintf(buf, len, "[%s]", s->client_ip);
}

/* The Received: header: from (HELO name and address), by, with (protocol), id, for, date. */
static int build_received(posthorn_session *s, char *buf, size_t len)
{
    const smtp_txn *t = smtp_session_txn(s->core);
    char date[64], lit[80], forpart[300] = "";
    ph_format_date((int64_t)time(NULL), date, sizeof(date));
    client_literal(s, lit, sizeof(lit));
    char tls[200] = "";
    if (t->rcpt_count == 1 && strlen(t->rcpts[0]) < 280) /* name one recipient only */
        snprintf(forpart, sizeof(forpart), "\r\n\tfor <%s>", t->rcpts[0]);
    if (posthorn_session_tls(s)) /* the same wording as Postfix, which tools already parse */
        snprintf(tls, sizeof(tls), "\r\n\t(using %s with cipher %s (%d bits))",
                 ph_tls_version(s->tls), ph_tls_cipher(s->tls), ph_tls_cipher_bits(s->tls));
    int n = snprintf(buf, len,
                     "Received: from %s (%s)%s\r\n\tby %s (Posthorn) with %s id %s%s;\r\n\t%s\r\n",
                     smtp_session_helo(s->core), lit, tls, s->srv->hostname,
                     smtp_session_protocol(s->core), t->queue_id, forpart, date);
    return n > 0 && (size_t)n < len ? n : -1;
}

static posthorn_verdict data_start(posthorn_session *s)
{
    posthorn_server *srv = s->srv;
    smtp_txn *t = smtp_session_txn_mut(s->core);
    make_queue_id(srv, t->queue_id);
    ph_log(srv, POSTHORN_LOG_DEBUG, "event=data " LOG_SID " qid=%s", SID(s), t->queue_id);
    posthorn_verdict v = srv->hooks.on_data_start
                             ? srv->hooks.on_data_start(s, srv->user) : posthorn_accept();
    if (v.action == POSTHORN_ACCEPT || v.action == POSTHORN_PENDING) {
        char hdr[1024];
        int n = build_received(s, hdr, sizeof(hdr));
        if (n < 0 || smtp_session_set_prefix(s->core, hdr, (size_t)n) < 0)
            return posthorn_reject(451, "4.3.0", "Local error building the trace header");
    }
    return v;
}

static posthorn_verdict message_done(posthorn_session *s)
{
    posthorn_server *srv = s->srv;
    posthorn_verdict v = srv->hooks.on_message ? srv->hooks.on_message(s, srv->user)
                                               : posthorn_accept();
    if (v.action == POSTHORN_ACCEPT) {
        const smtp_txn *t = smtp_session_txn(s->core);
        s->rcpts_total += (unsigned)t->rcpt_count;
        ph_log(srv, POSTHORN_LOG_INFO,
               "event=accepted " LOG_SID " qid=%s size=%llu from=%s nrcpt=%zu", SID(s),
               t->queue_id, (unsigned long long)t->size, LOGV(t->mail_from), t->rcpt_count);
    }
    return v;
}

posthorn_verdict ph_hooks_call(posthorn_session *s, const smtp_hook_req *req)
{
    posthorn_server *srv = s->srv;
    const posthorn_hooks *h = &srv->hooks;
    switch (req->kind) {
    case HOOK_CONNECT:
        return h->on_connect ? h->on_connect(s, srv->user) : posthorn_accept();
    case HOOK_HELO:
        ph_log(srv, POSTHORN_LOG_INFO, "event=helo " LOG_SID " name=%s ehlo=%d", SID(s),
               LOGV(req->arg), req->ehlo);
        return h->on_helo ? h->on_helo(s, req->arg, req->ehlo, srv->user) : posthorn_accept();
    case HOOK_MAIL:
        ph_log(srv, POSTHORN_LOG_INFO, "event=mail " LOG_SID " from=%s", SID(s),
               LOGV(req->path->mailbox));
        return h->on_mail ? h->on_mail(s, req->path->mailbox, srv->user) : posthorn_accept();
    case HOOK_RCPT:
        ph_log(srv, POSTHORN_LOG_INFO, "event=rcpt " LOG_SID " to=%s", SID(s),
               LOGV(req->path->mailbox));
        return h->on_rcpt ? h->on_rcpt(s, req->path->mailbox, srv->user) : posthorn_accept();
    case HOOK_DATA_START:
        return data_start(s);
    case HOOK_DATA_CHUNK:
        return h->on_data_chunk ? h->on_data_chunk(s, req->chunk, req->chunk_len, srv->user)
                                : posthorn_accept();
    case HOOK_MESSAGE:
        return message_done(s);
    case HOOK_AUTH:
        return h->on_auth ? h->on_auth(s, req->mechanism, req->authzid, req->user,
                                       req->password, srv->user)
                          : posthorn_reject(535, "5.7.8", NULL); /* no checker: nobody gets in */
    case HOOK_NONE:
        break;
    }
    return posthorn_accept();
}

/* Windows of this length forget failed AUTHs (coarse: the whole table is cleared). */
#define AUTH_FAIL_WINDOW_MS (3600u * 1000u)

unsigned ph_hooks_auth_result(posthorn_session *s, const char *user, smtp_verdict *v)
{
    posthorn_server *srv = s->srv;
    const posthorn_limits *l = s->limits;
    uint64_t now = ph_now_ms();
    if (now - srv->auth_fail_epoch_ms > AUTH_FAIL_WINDOW_MS) {
        ph_ipcount_free(&srv->auth_failures);
        ph_ipcount_init(&srv->auth_failures);
        srv->auth_fail_epoch_ms = now;
    }
    const char *ip = s->client_ip[0] ? s->client_ip : "unix";
    if (v->action == SV_ACCEPT) {
        while (ph_ipcount_get(&srv->auth_failures, ip))
            ph_ipcount_del(&srv->auth_failures, ip);
        ph_log(srv, POSTHORN_LOG_INFO, "event=auth " LOG_SID " user=%s result=ok", SID(s),
               LOGV(user));
        return 0;
    }
    unsigned n = ph_ipcount_add(&srv->auth_failures, ip);
    ph_log(srv, POSTHORN_LOG_WARN, "event=auth " LOG_SID " client=%s user=%s result=failed failures=%u",
           SID(s), ip, LOGV(user), n);
    if (l->auth_fail_limit && n >= l->auth_fail_limit) {
        *v = (smtp_verdict){SV_DISCONNECT, 421, "4.7.0", "Too many failed authentication attempts"};
        return 0;
    }
    unsigned shift = n > 0 ? (n - 1 < 5 ? n - 1 : 5) : 0; /* 1x, 2x, 4x ... at most 32x */
    return l->auth_fail_delay_ms << shift;
}

void ph_hooks_abort(posthorn_session *s)
{
    if (s->srv->hooks.on_abort)
        s->srv->hooks.on_abort(s, s->srv->user);
}

void ph_hooks_rset(posthorn_session *s)
{
    if (s->srv->hooks.on_rset)
        s->srv->hooks.on_rset(s, s->srv->user);
}

void ph_hooks_disconnect(posthorn_session *s)
{
    posthorn_server *srv = s->srv;
    ph_log(srv, POSTHORN_LOG_INFO,
           "event=disconnect " LOG_SID " client=%s commands=%u messages=%u rcpts=%u errors=%u "
           "duration_ms=%llu",
           SID(s), s->client_ip[0] ? s->client_ip : "unix", smtp_session_commands(s->core),
           smtp_session_messages(s->core), s->rcpts_total, smtp_session_error_count(s->core),
           (unsigned long long)(ph_now_ms() - s->started_ms));
    if (srv->hooks.on_disconnect)
        srv->hooks.on_disconnect(s, srv->user);
}

/* Splits "550 5.7.1 text" into the enhanced code and the text; quotes become '. */
static void split_reply(const char *line, char *enh, size_t enhlen, char *reason, size_t rlen)
{
    const char *p = line + (strlen(line) > 4 ? 4 : strlen(line));
    size_t n = strcspn(p, " ");
    bool has_enh = n > 0 && p[0] >= '2' && p[0] <= '5' && p[1] == '.';
    snprintf(enh, enhlen, "%.*s", has_enh ? (int)n : 1, has_enh ? p : "-");
    if (has_enh)
        p += n + (p[n] == ' ');
    snprintf(reason, rlen, "%s", p);
    for (char *c = reason; *c; c++)
        if (*c == '"' || *c == '\\')
            *c = '\'';
}

void ph_hooks_on_refusal(void *ctx, const char *verb, int code, const char *line)
{
    posthorn_session *s = ctx;
    const smtp_txn *t = smtp_session_txn(s->core);
    char enh[16], reason[512];
    split_reply(line, enh, sizeof(enh), reason, sizeof(reason));
    ph_log(s->srv, POSTHORN_LOG_INFO,
           "event=rejected " LOG_SID " qid=%s command=%s code=%d enhanced=%s reason=\"%s\"",
           SID(s), t && t->queue_id[0] ? t->queue_id : "-", verb, code, enh, reason);
}
