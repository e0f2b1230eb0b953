/*
 * server.c - the posthorn_server object: creation on the caller's or its own event_base, the
 * session registry (list + id hash for posthorn_server_resume), logging, the once-a-second
 * sweep for session lifetimes, graceful shutdown and the session getters of the public API.
 *
 * Owns: listeners, sessions, the event_base if it created it. Public functions return 0 or a
 * negative errno; nothing here exits the process.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "server_internal.h"

uint64_t ph_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static const char *const level_names[] = {"error", "warn", "info", "debug"};

static void default_log(posthorn_log_level level, const char *line, void *user)
{
    (void)user;
    fprintf(stderr, "level=%s %s\n", level_names[level], line);
}

void ph_log(posthorn_server *srv, posthorn_log_level lvl, const char *fmt, ...)
{
    if (lvl > srv->log_min || !srv->log_fn)
        return;
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    srv->log_fn(lvl, line, srv->log_user);
}

/* A log value from the client (names, addresses, SNI): bytes that could end the value or
 * forge another key=value field (space, '=', '"', '\\', control bytes) become \xNN, so the
 * line splits the same for every reader. UTF-8 stays readable. */
static bool log_safe(unsigned char c)
{
    return c > ' ' && c != 0x7f && c != '"' && c != '=' && c != '\\';
}

const char *ph_log_value(const char *in, char *out, size_t cap)
{
    if (!in || !*in)
        return "-";
    bool plain = true;
    for (const unsigned char *p = (const unsigned char *)in; *p && plain; p++)
        plain = log_safe(*p);
    if (plain)
        return in;
    size_t n = 0;
    for (const unsigned char *p = (const unsigned char *)in; *p && n + 5 < cap; p++) {
        if (log_safe(*p))
            out[n++] = (char)*p;
        else
            n += (size_t)snprintf(out + n, cap - n, "\\x%02x", *p);
    }
    out[n] = '\0';
    return out;
}

void posthorn_limits_default(posthorn_limits *l)
{
    memset(l, 0, sizeof(*l));
    l->max_line = 512;
    l->max_data_line = 998;
    l->max_message_size = 32u << 20;
    l->max_recipients = 1000;
    l->max_errors = 20;
    l->max_connections = 10000;
    l->max_per_ip = 100;
    l->idle_timeout_ms = 300000;
    l->session_timeout_ms = 3600000;
    l->greeting_delay_ms = 0;
    l->shutdown_grace_ms = 30000;
    l->auth_fail_limit = 5;
    l->auth_fail_delay_ms = 1000;
}

/* ---- registry ----------------------------------------------------------------------- */

static int hash_grow(posthorn_server *srv)
{
    size_t n = srv->hash_size ? srv->hash_size * 2 : 256;
    posthorn_session **h = calloc(n, sizeof(*h));
    if (!h)
        return -1;
    for (posthorn_session *s = srv->sessions; s; s = s->next) {
        s->hash_next = h[s->id & (n - 1)];
        h[s->id & (n - 1)] = s;
    }
    free(srv->hash);
    srv->hash = h;
    srv->hash_size = n;
    return 0;
}

void ph_session_register(posthorn_server *srv, posthorn_session *s)
{
    s->next = srv->sessions;
    if (s->next)
        s->next->prev = s;
    srv->sessions = s;
    srv->nsessions++;
    if (srv->nsessions > srv->hash_size && hash_grow(srv) == 0)
        return; /* the rebuild inserted s */
    size_t b = s->id & (srv->hash_size - 1);
    s->hash_next = srv->hash[b];
    srv->hash[b] = s;
}

void ph_session_unregister(posthorn_server *srv, posthorn_session *s)
{
    posthorn_session **p = &srv->hash[s->id & (srv->hash_size - 1)];
    while (*p && *p != s)
        p = &(*p)->hash_next;
    if (*p)
        *p = s->hash_next;
    if (s->prev)
        s->prev->next = s->next;
    else
        srv->sessions = s->next;
    if (s->next)
        s->next->prev = s->prev;
    srv->nsessions--;
}

static posthorn_session *find_session(posthorn_server *srv, uint64_t id)
{
    if (!srv->hash_size)
        return NULL;
    for (posthorn_session *s = srv->hash[id & (srv->hash_size - 1)]; s; s = s->hash_next)
        if (s->id == id && !s->dead)
            return s;
    return NULL;
}

/* ---- timers ------------------------------------------------------------------------ */

static void reap_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    posthorn_server *srv = arg;
    while (srv->dead) {
        posthorn_session *s = srv->dead;
        srv->dead = s->dead_next;
        ph_connection_free(s);
    }
    ph_check_shutdown_done(srv);
}

/* Once a second: whole-session time limit and the shutdown deadline. */
static void sweep_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    posthorn_server *srv = arg;
    uint64_t now = ph_now_ms();
    bool closing = srv->shutting_down && !srv->draining;
    bool deadline = closing && now >= srv->shutdown_deadline_ms;
    posthorn_session *next;
    for (posthorn_session *s = srv->sessions; s; s = next) {
        next = s->next;
        if (s->dead || s->closing)
            continue;
        bool expired = s->limits->session_timeout_ms &&
                       now - s->started_ms >= s->limits->session_timeout_ms;
        if (expired || deadline || (closing && smtp_session_is_idle(s->core))) {
            ph_log(srv, POSTHORN_LOG_INFO, "event=timeout sid=%016llx reason=%s",
                   (unsigned long long)s->id, expired ? "session" : "shutdown");
            smtp_session_abort(s->core, expired ? R_TIMEOUT : R_SHUTDOWN);
            ph_connection_drive(s);
        }
    }
}

/* ---- lifecycle --------------------------------------------------------------------- */

static int copy_options(posthorn_server *srv, const posthorn_options *opts)
{
    char host[256] = "localhost";
    if (opts && opts->hostname)
        snprintf(host, sizeof(host), "%s", opts->hostname);
    else if (gethostname(host, sizeof(host) - 1) != 0)
        strcpy(host, "localhost");
    srv->hostname = strdup(host);
    srv->banner = strdup(opts && opts->banner ? opts->banner : "Posthorn");
    if (opts)
        srv->limits = opts->limits;
    else
        posthorn_limits_default(&srv->limits);
    return srv->hostname && srv->banner ? 0 : -ENOMEM;
}

posthorn_server *posthorn_server_new(struct event_base *base, const posthorn_hooks *hooks,
                                     const posthorn_options *opts, void *user)
{
    posthorn_server *srv = calloc(1, sizeof(*srv));
    if (!srv)
        return NULL;
    srv->base = base;
    if (!base) {
        srv->base = event_base_new();
        srv->own_base = true;
    }
    if (hooks)
        srv->hooks = *hooks;
    srv->user = user;
    srv->log_fn = default_log;
    srv->log_min = POSTHORN_LOG_INFO;
    srv->next_id = ((uint64_t)getpid() << 32) | 1;
    ph_ipcount_init(&srv->ipcount);
    ph_ipcount_init(&srv->auth_failures);
    srv->auth_fail_epoch_ms = ph_now_ms();
    if (!srv->base || copy_options(srv, opts) < 0 || hash_grow(srv) < 0)
        goto fail;
    srv->pid = getpid();
    srv->rbuf = malloc(PH_READ_BUFFER);
    if (!srv->rbuf)
        goto fail;
    srv->reaper = event_new(srv->base, -1, 0, reap_cb, srv);
    srv->sweeper = event_new(srv->base, -1, EV_PERSIST, sweep_cb, srv);
    if (!srv->reaper || !srv->sweeper)
        goto fail;
    struct timeval one = {1, 0};
    event_add(srv->sweeper, &one);
    return srv;
fail:
    posthorn_server_free(srv);
    errno = ENOMEM;
    return NULL;
}

void posthorn_server_free(posthorn_server *srv)
{
    if (!srv)
        return;
    ph_listeners_stop(srv);
    while (srv->sessions)
        ph_connection_free_later(srv->sessions); /* unregisters it */
    while (srv->dead) {
        posthorn_session *s = srv->dead;
        srv->dead = s->dead_next;
        ph_connection_free(s);
    }
    ph_listeners_close(srv); /* after the sessions: they point at their listener's limits */
    ph_workpool_free(srv->pool); /* runs what is queued; done callbacks may resume: harmless */
    if (srv->reaper)
        event_free(srv->reaper);
    if (srv->sweeper)
        event_free(srv->sweeper);
    ph_ipcount_free(&srv->ipcount);
    ph_ipcount_free(&srv->auth_failures);
    free(srv->hash);
    free(srv->rbuf);
    free(srv->hostname);
    free(srv->banner);
    if (srv->own_base && srv->base)
        event_base_free(srv->base);
    free(srv);
}

struct event_base *posthorn_server_base(posthorn_server *srv) { return srv->base; }
void *posthorn_server_user(posthorn_server *srv) { return srv->user; }
unsigned posthorn_server_session_count(posthorn_server *srv) { return srv->nsessions; }

void posthorn_server_set_log(posthorn_server *srv, posthorn_log_fn fn, posthorn_log_level min,
                             void *user)
{
    srv->log_fn = fn;
    srv->log_min = min;
    srv->log_user = user;
}

int posthorn_server_listen(posthorn_server *srv, const char *address)
{
    return ph_listener_open(srv, address, NULL);
}

int posthorn_server_listen_opts(posthorn_server *srv, const char *address,
                                const posthorn_listener_options *opts)
{
    return ph_listener_open(srv, address, opts);
}

int posthorn_server_listen_fd_opts(posthorn_server *srv, int fd,
                                   const posthorn_listener_options *opts)
{
    return ph_listener_adopt(srv, fd, opts);
}

int posthorn_tls_make_self_signed(const char *hostname, const char *cert_file,
                                  const char *key_file)
{
    char err[300];
    if (ph_tls_make_self_signed(hostname, cert_file, key_file, err, sizeof(err)) < 0) {
        fprintf(stderr, "level=error event=tls_error what=self_signed error=\"%s\"\n", err);
        return -EIO;
    }
    return 0;
}

int posthorn_server_reload_tls(posthorn_server *srv)
{
    return ph_listeners_reload_tls(srv);
}

int posthorn_listen_socket(const char *address, int *port)
{
    int dummy;
    return ph_listener_bind(address, port ? port : &dummy);
}

int posthorn_server_listen_fd(posthorn_server *srv, int fd)
{
    return ph_listener_adopt(srv, fd, NULL);
}

int posthorn_server_listener_port(posthorn_server *srv, unsigned i)
{
    return i < srv->nlisteners ? srv->listeners[i]->port : -ENOENT;
}

int posthorn_server_run(posthorn_server *srv)
{
    return event_base_dispatch(srv->base) < 0 ? -EIO : 0;
}

void ph_check_shutdown_done(posthorn_server *srv)
{
    if (!srv->shutting_down || srv->nsessions || srv->dead)
        return;
    srv->shutting_down = false;
    event_del(srv->sweeper);
    if (srv->shutdown_done)
        srv->shutdown_done(srv, srv->shutdown_arg);
    if (srv->own_base)
        event_base_loopbreak(srv->base);
}

/* Stops accepting; drain: sessions run to their natural end, else idle ones get 421 now.
 * A shutdown after a drain turns it into a shutdown (the later call decides). */
static void stop_serving(posthorn_server *srv, bool drain,
                         void (*done)(posthorn_server *, void *), void *arg)
{
    srv->draining = drain;
    srv->shutting_down = true;
    srv->shutdown_done = done;
    srv->shutdown_arg = arg;
    srv->shutdown_deadline_ms = ph_now_ms() + srv->limits.shutdown_grace_ms;
    ph_listeners_stop(srv); /* new clients are refused by the kernel, not left waiting */
    ph_log(srv, POSTHORN_LOG_INFO, "event=%s sessions=%u", srv->draining ? "drain" : "shutdown",
           srv->nsessions);
    sweep_cb(-1, 0, srv); /* closes idle sessions now */
    struct timeval tick = {0, 200000};
    event_add(srv->sweeper, &tick);
    if (!srv->nsessions)
        event_active(srv->reaper, 0, 0);
}

void posthorn_server_shutdown(posthorn_server *srv, void (*done)(posthorn_server *, void *),
                              void *arg)
{
    stop_serving(srv, false, done, arg);
}

void posthorn_server_drain(posthorn_server *srv, void (*done)(posthorn_server *, void *),
                           void *arg)
{
    stop_serving(srv, true, done, arg);
}

/* ---- async verdicts --------------------------------------------------------------- */

static char *dup_or_null(const char *s)
{
    return s ? strdup(s) : NULL;
}

int posthorn_server_resume(posthorn_server *srv, uint64_t session_id, posthorn_verdict v)
{
    posthorn_session *s = find_session(srv, session_id);
    if (!s)
        return -ENOENT;
    if (!s->user_pending || v.action == POSTHORN_PENDING)
        return -EINVAL;
    char *enh = dup_or_null(v.enhanced), *text = dup_or_null(v.text);
    free(s->verdict_enh);
    free(s->verdict_text);
    s->verdict_enh = enh;
    s->verdict_text = text;
    s->verdict.action = v.action == POSTHORN_REJECT ? SV_REJECT
                        : v.action == POSTHORN_DISCONNECT ? SV_DISCONNECT : SV_ACCEPT;
    s->verdict.code = v.code;
    s->verdict.enhanced = s->verdict_enh;
    s->verdict.text = s->verdict_text;
    s->user_pending = false;
    s->have_verdict = true;
    if (!s->in_drive)
        ph_connection_drive(s);
    return 0;
}

#define OFFLOAD_THREADS 2 /* password hashes are CPU-bound: no more than the cores we share */

int posthorn_server_offload(posthorn_server *srv, void (*work)(void *arg),
                            void (*done)(void *arg), void *arg)
{
    if (!srv->pool && !(srv->pool = ph_workpool_new(srv->base, OFFLOAD_THREADS)))
        return -ENOMEM;
    return ph_workpool_submit(srv->pool, work, done, arg);
}

/* ---- session getters -------------------------------------------------------------- */

uint64_t posthorn_session_id(const posthorn_session *s) { return s->id; }
posthorn_server *posthorn_session_server(const posthorn_session *s) { return s->srv; }
void *posthorn_session_user(const posthorn_session *s) { return s->user; }
void posthorn_session_set_user(posthorn_session *s, void *user) { s->user = user; }
const char *posthorn_session_client_ip(const posthorn_session *s) { return s->client_ip; }
int posthorn_session_client_port(const posthorn_session *s) { return s->client_port; }
const char *posthorn_session_helo(const posthorn_session *s) { return smtp_session_helo(s->core); }
bool posthorn_session_tls(const posthorn_session *s) { return s->tls && !s->handshaking; }

const char *posthorn_session_tls_version(const posthorn_session *s)
{
    return posthorn_session_tls(s) ? ph_tls_version(s->tls) : NULL;
}

const char *posthorn_session_tls_cipher(const posthorn_session *s)
{
    return posthorn_session_tls(s) ? ph_tls_cipher(s->tls) : NULL;
}
const char *posthorn_session_auth_user(const posthorn_session *s)
{
    return smtp_session_auth_user(s->core);
}

const char *posthorn_session_protocol(const posthorn_session *s)
{
    return smtp_session_protocol(s->core);
}

const char *posthorn_session_mail_from(const posthorn_session *s)
{
    const smtp_txn *t = smtp_session_txn(s->core);
    return t ? t->mail_from : NULL;
}

size_t posthorn_session_rcpt_count(const posthorn_session *s)
{
    const smtp_txn *t = smtp_session_txn(s->core);
    return t ? t->rcpt_count : 0;
}

const char *posthorn_session_rcpt(const posthorn_session *s, size_t i)
{
    const smtp_txn *t = smtp_session_txn(s->core);
    return t && i < t->rcpt_count ? t->rcpts[i] : NULL;
}

const char *posthorn_session_queue_id(const posthorn_session *s)
{
    const smtp_txn *t = smtp_session_txn(s->core);
    return t && t->queue_id[0] ? t->queue_id : NULL;
}

uint64_t posthorn_session_message_size(const posthorn_session *s)
{
    const smtp_txn *t = smtp_session_txn(s->core);
    return t ? t->size : 0;
}

uint64_t posthorn_session_declared_size(const posthorn_session *s)
{
    const smtp_txn *t = smtp_session_txn(s->core);
    return t ? t->declared_size : 0;
}

const char *posthorn_session_body_type(const posthorn_session *s)
{
    const smtp_txn *t = smtp_session_txn(s->core);
    if (!t || t->body == BODY_UNSPEC)
        return NULL;
    return t->body == BODY_8BITMIME ? "8BITMIME" : "7BIT";
}

bool posthorn_session_smtputf8(const posthorn_session *s)
{
    const smtp_txn *t = smtp_session_txn(s->core);
    return t && t->smtputf8;
}
