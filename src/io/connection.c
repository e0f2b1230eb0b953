/*
 * connection.c - one client connection around the pure session core. Input is read into the
 * server's shared buffer and fed to the core from there without copying; only bytes the core
 * could not take yet (a hook is pending) are kept per connection. Replies are written straight
 * to the socket; only what the socket refuses waits for a write event. So a synchronous
 * session costs one read and one write per round trip and no event changes, and an idle one
 * holds no buffers. Reading pauses while a hook is pending or the client does not read its
 * replies (backpressure). The read event's timeout is the idle timeout. Closing frees later,
 * from the server's reaper, so no callback ever touches freed memory.
 *
 * Owns: the socket, its events, the core session, the pending input.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <event2/event.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "server_internal.h"

/* Stop reading while this much output waits for a client that does not read (pipelining). */
#define OUTPUT_HIGH_WATER (256u * 1024u)
/* How long a closing connection may take to accept its last replies. */
#define CLOSE_FLUSH_SECONDS 5

static void read_cb(evutil_socket_t fd, short what, void *arg);
static void start_tls(posthorn_session *s);
static void write_cb(evutil_socket_t fd, short what, void *arg);

static void addr_to_text(const struct sockaddr *sa, char *ip, size_t iplen, int *port)
{
    ip[0] = '\0';
    *port = 0;
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
        inet_ntop(AF_INET, &in->sin_addr, ip, (socklen_t)iplen);
        *port = ntohs(in->sin_port);
    } else if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
        inet_ntop(AF_INET6, &in6->sin6_addr, ip, (socklen_t)iplen);
        *port = ntohs(in6->sin6_port);
    }
}

/* Refuses a connection over a limit without building a session. */
static void refuse(int fd, const char *reply)
{
    ssize_t n = send(fd, reply, strlen(reply), MSG_DONTWAIT | MSG_NOSIGNAL);
    (void)n; /* best effort: the client may already be gone */
    close(fd);
}

static bool over_limits(ph_listener *ls, int fd, const char *ip)
{
    posthorn_server *srv = ls->srv;
    const posthorn_limits *l = &ls->limits;
    if (srv->shutting_down) {
        refuse(fd, "421 4.3.2 Service shutting down, closing transmission channel\r\n");
        return true;
    }
    if (srv->limits.max_connections && srv->nsessions >= srv->limits.max_connections) {
        ph_log(srv, POSTHORN_LOG_WARN, "event=refused client=%s reason=max_connections", ip);
        refuse(fd, "421 4.7.0 Too many connections, try again later\r\n");
        return true;
    }
    if (ip[0] && l->max_per_ip && ph_ipcount_get(&srv->ipcount, ip) >= l->max_per_ip) {
        ph_log(srv, POSTHORN_LOG_WARN, "event=refused client=%s reason=max_per_ip", ip);
        refuse(fd, "421 4.7.0 Too many connections from your address, try again later\r\n");
        return true;
    }
    return false;
}

static smtp_session *new_core(posthorn_session *s, const ph_listener *ls)
{
    const posthorn_limits *l = &ls->limits;
    const posthorn_listener_options *o = &ls->opts;
    smtp_session_config cfg = {
        .hostname = s->srv->hostname,
        .banner = s->srv->banner,
        .max_line = l->max_line,
        .max_data_line = l->max_data_line,
        .max_message_size = l->max_message_size,
        .max_recipients = l->max_recipients,
        .max_errors = l->max_errors,
        .greeting_delayed = l->greeting_delay_ms > 0,
        .starttls = o->tls == POSTHORN_TLS_STARTTLS,
        .require_tls = o->require_tls,
        .auth = o->auth != POSTHORN_AUTH_NONE,
        .auth_insecure = o->auth == POSTHORN_AUTH_INSECURE,
        .require_auth = o->require_auth,
        .on_refusal = ph_hooks_on_refusal,
        .ctx = s,
    };
    return smtp_session_new(&cfg);
}

static void greet_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    posthorn_session *s = arg;
    smtp_session_greet(s->core);
    ph_connection_drive(s);
}

static int start_greeting_delay(posthorn_session *s)
{
    s->greet_timer = evtimer_new(s->srv->base, greet_cb, s);
    if (!s->greet_timer)
        return -1;
    struct timeval tv = {s->limits->greeting_delay_ms / 1000,
                         (s->limits->greeting_delay_ms % 1000) * 1000};
    return evtimer_add(s->greet_timer, &tv);
}

static void set_reading(posthorn_session *s, bool on)
{
    if (on != s->reading) {
        if (on)
            event_add(s->read_ev, s->idle_tv);
        else
            event_del(s->read_ev);
        s->reading = on;
    }
    /* bytes already decrypted (read-ahead) are announced by no socket event: look now */
    if (on && s->tls && !s->handshaking && ph_tls_pending(s->tls))
        event_active(s->read_ev, EV_READ, 0);
}

static posthorn_session *new_session(ph_listener *ls, int fd, const char *ip, int port)
{
    posthorn_server *srv = ls->srv;
    posthorn_session *s = calloc(1, sizeof(*s));
    if (!s) {
        refuse(fd, "421 4.3.0 Out of memory, try again later\r\n");
        return NULL;
    }
    s->srv = srv;
    s->fd = fd;
    s->id = srv->next_id++;
    snprintf(s->client_ip, sizeof(s->client_ip), "%s", ip);
    s->client_port = port;
    s->started_ms = ph_now_ms();
    s->limits = &ls->limits;
    s->idle_tv = ls->idle_tv;
    s->handshake_timeout_ms = ls->opts.handshake_timeout_ms;
    if (ls->tls) {
        s->tls_ctx = ls->tls;
        ph_tls_ctx_ref(s->tls_ctx);
    }
    strbuf_init(&s->inq, 0);
    s->core = new_core(s, ls);
    s->read_ev = event_new(srv->base, fd, EV_READ | EV_PERSIST, read_cb, s);
    s->write_ev = event_new(srv->base, fd, EV_WRITE, write_cb, s);
    if (!s->core || !s->read_ev || !s->write_ev ||
        (s->limits->greeting_delay_ms && start_greeting_delay(s) < 0)) {
        ph_connection_free(s); /* closes fd */
        return NULL;
    }
    return s;
}

void ph_connection_accept(ph_listener *ls, int fd, const struct sockaddr *sa, int salen)
{
    (void)salen;
    posthorn_server *srv = ls->srv;
    char ip[64];
    int port;
    addr_to_text(sa, ip, sizeof(ip), &port);
    if (over_limits(ls, fd, ip))
        return;
    posthorn_session *s = new_session(ls, fd, ip, port);
    if (!s) {
        ph_log(srv, POSTHORN_LOG_ERROR, "event=error what=session_alloc client=%s", ip);
        return;
    }
    if (ip[0]) {
        ph_ipcount_add(&srv->ipcount, ip);
        s->counted_ip = true;
    }
    ph_session_register(srv, s);
    ph_log(srv, POSTHORN_LOG_INFO, "event=connect sid=%016llx client=%s:%d",
           (unsigned long long)s->id, ip[0] ? ip : "unix", port);
    set_reading(s, true);
    if (ls->opts.tls == POSTHORN_TLS_IMPLICIT) {
        start_tls(s); /* the SMTP session begins when the handshake is done */
        return;
    }
    smtp_session_start(s->core);
    ph_connection_drive(s);
}

/* ---- driving the core ------------------------------------------------------------ */

/* Where the core's input comes from in one drive: pending bytes first, then fresh ones. */
typedef struct input {
    const char *fresh; /* the shared read buffer, or NULL */
    size_t len, pos;
    bool from_inq;     /* the last feed was from s->inq */
} input;

/* Drops the bytes the core consumed, once the hooks that borrowed them have run. */
static void drain_consumed(posthorn_session *s, input *in)
{
    if (!s->to_drain)
        return;
    if (in->from_inq)
        strbuf_consume(&s->inq, s->to_drain);
    else
        in->pos += s->to_drain;
    s->to_drain = 0;
}

static void run_notes(posthorn_session *s)
{
    unsigned notes = smtp_session_take_notes(s->core);
    if (notes & SN_TXN_ABORTED)
        ph_hooks_abort(s);
    if (notes & SN_RSET)
        ph_hooks_rset(s);
}

static smtp_verdict to_core_verdict(const posthorn_verdict *v)
{
    smtp_verdict sv = {
        .action = v->action == POSTHORN_REJECT ? SV_REJECT
                  : v->action == POSTHORN_DISCONNECT ? SV_DISCONNECT : SV_ACCEPT,
        .code = v->code, .enhanced = v->enhanced, .text = v->text,
    };
    return sv;
}

/* Keeps a verdict (with copies of its strings) to resolve later. */
static void hold_verdict(posthorn_session *s, const smtp_verdict *v)
{
    char *enh = v->enhanced ? strdup(v->enhanced) : NULL;
    char *text = v->text ? strdup(v->text) : NULL;
    free(s->verdict_enh);
    free(s->verdict_text);
    s->verdict = *v;
    s->verdict.enhanced = s->verdict_enh = enh;
    s->verdict.text = s->verdict_text = text;
}

static void auth_timer_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    posthorn_session *s = arg;
    s->user_pending = false;
    s->have_verdict = true;
    ph_connection_drive(s);
}

/* A failed AUTH's reply waits (throttling guessers); false if it is being held. */
static bool auth_throttle(posthorn_session *s, const smtp_hook_req *req, smtp_verdict *v)
{
    if (s->auth_checked)
        return true; /* held already: this is the release */
    unsigned delay = ph_hooks_auth_result(s, req->user, v);
    if (!delay)
        return true;
    if (!s->auth_timer && !(s->auth_timer = evtimer_new(s->srv->base, auth_timer_cb, s)))
        return true;
    hold_verdict(s, v);
    s->auth_checked = true;
    s->user_pending = true;
    struct timeval tv = {delay / 1000, (delay % 1000) * 1000};
    evtimer_add(s->auth_timer, &tv);
    return false;
}

/* Runs the pending hook: true if the core may go on, false if the verdict is pending. */
static bool run_hook(posthorn_session *s, const smtp_hook_req *req, input *in)
{
    smtp_verdict sv;
    if (s->have_verdict) {
        s->have_verdict = false;
        sv = s->verdict;
    } else if (s->user_pending) {
        return false;
    } else {
        posthorn_verdict v = ph_hooks_call(s, req);
        drain_consumed(s, in); /* chunk bytes are borrowed only for the duration of the hook */
        if (v.action == POSTHORN_PENDING) {
            s->user_pending = true;
            return false;
        }
        sv = to_core_verdict(&v);
    }
    if (req->kind == HOOK_AUTH && !auth_throttle(s, req, &sv))
        return false;
    s->auth_checked = false;
    smtp_session_resolve(s->core, &sv);
    return true;
}

/* Feeds the next piece of input; false when there is none. */
static bool feed_input(posthorn_session *s, input *in)
{
    drain_consumed(s, in);
    if (s->inq.len) {
        in->from_inq = true;
        s->to_drain = smtp_session_feed(s->core, s->inq.data, s->inq.len);
        return true;
    }
    if (!in->fresh || in->pos == in->len)
        return false;
    in->from_inq = false;
    s->to_drain = smtp_session_feed(s->core, in->fresh + in->pos, in->len - in->pos);
    return true;
}

/* Writes to the socket or through TLS: bytes written, or PH_TLS_WANT_* / PH_TLS_ERROR. */
static ssize_t transport_write(posthorn_session *s, const char *p, size_t len)
{
    if (s->tls)
        return ph_tls_write(s->tls, p, len);
    ssize_t n = send(s->fd, p, len, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n >= 0)
        return n;
    return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR ? PH_TLS_WANT_WRITE
                                                                     : PH_TLS_ERROR;
}

/* Reads from the socket or through TLS into the shared buffer. */
static ssize_t transport_read(posthorn_session *s)
{
    if (s->tls)
        return ph_tls_read(s->tls, s->srv->rbuf, PH_READ_BUFFER);
    ssize_t n = recv(s->fd, s->srv->rbuf, PH_READ_BUFFER, 0);
    if (n >= 0)
        return n;
    return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR ? PH_TLS_WANT_READ
                                                                     : PH_TLS_ERROR;
}

/* Writes what the socket takes now; the rest waits for a write event. */
static void flush_output(posthorn_session *s)
{
    strbuf *out = smtp_session_output(s->core);
    if (!out->len || s->handshaking)
        return;
    ssize_t n = transport_write(s, out->data, out->len);
    if (n == PH_TLS_ERROR) {
        strbuf_clear(out); /* the peer is gone: nothing more can be delivered */
        smtp_session_closed(s->core);
        return;
    }
    if (n > 0)
        strbuf_consume(out, (size_t)n);
    if (n == PH_TLS_WANT_READ) {
        s->write_wants_read = true; /* retried from the read callback */
        return;
    }
    if (out->len && !event_pending(s->write_ev, EV_WRITE, NULL)) {
        struct timeval tv = {s->limits->idle_timeout_ms / 1000 + 1, 0};
        event_add(s->write_ev, s->closing ? &(struct timeval){CLOSE_FLUSH_SECONDS, 0} : &tv);
    }
}

static size_t output_pending(posthorn_session *s)
{
    return smtp_session_output(s->core)->len;
}

/* Runs the core over `fresh` (may be NULL) and whatever input was pending. */
static void drive(posthorn_session *s, const char *fresh, size_t len)
{
    if (s->in_drive || s->dead || s->closing)
        return;
    s->in_drive = true;
    input in = {.fresh = fresh, .len = len};
    bool blocked = false;
    for (;;) {
        run_notes(s);
        const smtp_hook_req *req = smtp_session_hook(s->core);
        if (req) {
            if (!(blocked = !run_hook(s, req, &in)))
                continue;
            break;
        }
        if (smtp_session_want_close(s->core) || smtp_session_want_tls(s->core) ||
            output_pending(s) > OUTPUT_HIGH_WATER || !feed_input(s, &in))
            break;
    }
    drain_consumed(s, &in);
    bool tls_next = smtp_session_want_tls(s->core);
    if (tls_next)
        strbuf_clear(&s->inq); /* CVE-2011-0411: nothing sent before TLS counts after it */
    else if (in.fresh && in.pos < in.len && !smtp_session_want_close(s->core) &&
             strbuf_append(&s->inq, in.fresh + in.pos, in.len - in.pos) < 0)
        smtp_session_abort(s->core, R_TIMEOUT); /* out of memory: give up on this client */
    run_notes(s);
    flush_output(s);
    s->in_drive = false;
    if (tls_next && !smtp_session_want_close(s->core)) {
        start_tls(s); /* after the 220 went out in the clear */
        return;
    }
    bool input_left = s->inq.len > 0;
    if (smtp_session_want_close(s->core) || (s->eof && !blocked && !input_left)) {
        ph_connection_close(s);
        return;
    }
    set_reading(s, !blocked && !s->eof && !input_left && output_pending(s) <= OUTPUT_HIGH_WATER);
}

void ph_connection_drive(posthorn_session *s)
{
    drive(s, NULL, 0);
}

/* ---- event callbacks -------------------------------------------------------------- */

static void idle_timeout(posthorn_session *s)
{
    ph_log(s->srv, POSTHORN_LOG_INFO, "event=timeout sid=%016llx reason=idle",
           (unsigned long long)s->id);
    smtp_session_abort(s->core, R_TIMEOUT);
    ph_connection_drive(s);
}

static void continue_handshake(posthorn_session *s);

static void read_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    posthorn_session *s = arg;
    if (s->handshaking)
        return continue_handshake(s);
    if (what & EV_TIMEOUT)
        return idle_timeout(s);
    if (s->write_wants_read) {
        s->write_wants_read = false;
        flush_output(s);
    }
    ssize_t n = transport_read(s);
    if (n > 0)
        return drive(s, s->srv->rbuf, (size_t)n);
    if (n == PH_TLS_WANT_READ)
        return;
    if (n == PH_TLS_WANT_WRITE) { /* TLS needs to send first (e.g. a key update) */
        event_add(s->write_ev, NULL);
        return;
    }
    if (n == 0) {
        s->eof = true; /* a half-closed client may still read the replies to what it sent */
        set_reading(s, false);
        return ph_connection_drive(s);
    }
    if (s->tls)
        ph_log(s->srv, POSTHORN_LOG_INFO, "event=tls_error sid=%016llx error=\"%s\"",
               (unsigned long long)s->id, ph_tls_last_error(s->tls));
    smtp_session_closed(s->core); /* reset or error: nothing more can be sent */
    run_notes(s);
    ph_connection_free_later(s);
}

static void write_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    posthorn_session *s = arg;
    if (s->handshaking)
        return continue_handshake(s);
    if (what & EV_TIMEOUT) { /* the client stopped reading its replies */
        if (!s->closing)
            smtp_session_closed(s->core);
        return ph_connection_free_later(s);
    }
    flush_output(s);
    if (s->closing) {
        if (!output_pending(s))
            ph_connection_free_later(s);
        return;
    }
    if (s->tls_after_flush && !output_pending(s)) {
        s->tls_after_flush = false;
        return start_tls(s);
    }
    if (!s->reading && !s->user_pending)
        ph_connection_drive(s); /* the client caught up with its replies */
}

/* ---- TLS ------------------------------------------------------------------------------ */

static void handshake_timeout(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    posthorn_session *s = arg;
    ph_log(s->srv, POSTHORN_LOG_INFO, "event=tls_failed sid=%016llx client=%s reason=timeout",
           (unsigned long long)s->id, s->client_ip);
    smtp_session_closed(s->core);
    ph_connection_free_later(s);
}

/* The handshake is done: implicit TLS starts the SMTP session, STARTTLS resets it. */
static void handshake_done(posthorn_session *s)
{
    s->handshaking = false;
    event_del(s->tls_timer);
    const char *sni = ph_tls_sni(s->tls);
    char snibuf[600];
    ph_log(s->srv, POSTHORN_LOG_INFO,
           "event=tls sid=%016llx version=%s cipher=%s bits=%d sni=%s", (unsigned long long)s->id,
           ph_tls_version(s->tls), ph_tls_cipher(s->tls), ph_tls_cipher_bits(s->tls),
           ph_log_value(sni, snibuf, sizeof(snibuf)));
    if (smtp_session_phase(s->core) == PH_CONNECT) {
        smtp_session_set_tls(s->core, true);
        smtp_session_start(s->core);
    } else {
        smtp_session_tls_started(s->core); /* RFC 3207 4.2: forget everything said before */
    }
    set_reading(s, true);
    ph_connection_drive(s);
}

static void continue_handshake(posthorn_session *s)
{
    int r = ph_tls_handshake(s->tls);
    if (r == 0)
        return handshake_done(s);
    if (r == PH_TLS_WANT_WRITE) {
        event_add(s->write_ev, NULL);
        return;
    }
    if (r == PH_TLS_WANT_READ) {
        set_reading(s, true);
        return;
    }
    ph_log(s->srv, POSTHORN_LOG_INFO, "event=tls_failed sid=%016llx client=%s error=\"%s\"",
           (unsigned long long)s->id, s->client_ip, ph_tls_last_error(s->tls));
    smtp_session_closed(s->core);
    ph_connection_free_later(s);
}

/* Begins the server side of a handshake, bounded by the handshake timeout. */
static void start_tls(posthorn_session *s)
{
    if (smtp_session_output(s->core)->len) { /* the 220 must leave in the clear first */
        s->tls_after_flush = true;
        return;
    }
    s->tls = s->tls_ctx ? ph_tls_new(s->tls_ctx, s->fd) : NULL;
    s->tls_timer = s->tls ? evtimer_new(s->srv->base, handshake_timeout, s) : NULL;
    if (!s->tls_timer) {
        ph_log(s->srv, POSTHORN_LOG_ERROR, "event=tls_failed sid=%016llx reason=setup",
               (unsigned long long)s->id);
        smtp_session_closed(s->core);
        return ph_connection_free_later(s);
    }
    s->handshaking = true;
    struct timeval tv = {s->handshake_timeout_ms / 1000, (s->handshake_timeout_ms % 1000) * 1000};
    evtimer_add(s->tls_timer, &tv);
    continue_handshake(s);
}

/* ---- closing ---------------------------------------------------------------------- */

/* Stops reading, aborts what is in flight, and frees once the replies are written. */
void ph_connection_close(posthorn_session *s)
{
    if (s->closing || s->dead)
        return;
    s->closing = true;
    smtp_session_closed(s->core);
    run_notes(s);
    set_reading(s, false);
    if (!output_pending(s) || s->handshaking) { /* mid-handshake nothing can be said */
        ph_connection_free_later(s);
        return;
    }
    event_del(s->write_ev); /* re-armed with the short closing deadline */
    flush_output(s);
}

void ph_connection_free_later(posthorn_session *s)
{
    if (s->dead)
        return;
    s->dead = true;
    if (!s->closing) {
        s->closing = true;
        smtp_session_closed(s->core);
        run_notes(s);
    }
    posthorn_server *srv = s->srv;
    if (s->tls && !s->handshaking)
        ph_tls_close_notify(s->tls); /* a TLS client can tell a clean end from a cut */
    ph_hooks_disconnect(s);
    ph_session_unregister(srv, s);
    if (s->counted_ip)
        ph_ipcount_del(&srv->ipcount, s->client_ip);
    s->counted_ip = false;
    set_reading(s, false);
    event_del(s->write_ev);
    if (s->tls_timer)
        event_del(s->tls_timer);
    if (s->auth_timer)
        event_del(s->auth_timer);
    s->dead_next = srv->dead;
    srv->dead = s;
    event_active(srv->reaper, 0, 0);
}

void ph_connection_free(posthorn_session *s)
{
    if (s->greet_timer)
        event_free(s->greet_timer);
    if (s->tls_timer)
        event_free(s->tls_timer);
    if (s->auth_timer)
        event_free(s->auth_timer);
    ph_tls_free(s->tls);
    ph_tls_ctx_unref(s->tls_ctx);
    if (s->read_ev)
        event_free(s->read_ev);
    if (s->write_ev)
        event_free(s->write_ev);
    if (s->fd >= 0)
        close(s->fd);
    smtp_session_free(s->core);
    strbuf_free(&s->inq);
    free(s->verdict_enh);
    free(s->verdict_text);
    free(s);
}
