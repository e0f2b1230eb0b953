/*
 * connection.c - one client connection: a libevent bufferevent around the pure session core.
 * Feeds input to the core without copying (chain by chain), runs the hooks the core asks for,
 * writes its replies, applies backpressure (reading pauses while a hook is pending or the
 * client does not read its replies) and the idle timeout, and closes with a deferred free so
 * no callback ever touches freed memory.
 *
 * Owns: the bufferevent (and so the socket), the core session, the greeting timer.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
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

static void read_cb(struct bufferevent *bev, void *arg);
static void write_cb(struct bufferevent *bev, void *arg);
static void event_cb(struct bufferevent *bev, short what, void *arg);

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

static bool over_limits(posthorn_server *srv, int fd, const char *ip)
{
    const posthorn_limits *l = &srv->limits;
    if (srv->shutting_down) {
        refuse(fd, "421 4.3.2 Service shutting down, closing transmission channel\r\n");
        return true;
    }
    if (l->max_connections && srv->nsessions >= l->max_connections) {
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

static smtp_session *new_core(posthorn_session *s)
{
    posthorn_server *srv = s->srv;
    smtp_session_config cfg = {
        .hostname = srv->hostname,
        .banner = srv->banner,
        .max_line = srv->limits.max_line,
        .max_data_line = srv->limits.max_data_line,
        .max_message_size = srv->limits.max_message_size,
        .max_recipients = srv->limits.max_recipients,
        .max_errors = srv->limits.max_errors,
        .greeting_delayed = srv->limits.greeting_delay_ms > 0,
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
    struct timeval tv = {s->srv->limits.greeting_delay_ms / 1000,
                         (s->srv->limits.greeting_delay_ms % 1000) * 1000};
    return evtimer_add(s->greet_timer, &tv);
}

static void set_idle_timeout(posthorn_session *s)
{
    unsigned ms = s->srv->limits.idle_timeout_ms;
    if (!ms)
        return;
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    bufferevent_set_timeouts(s->bev, &tv, &tv);
}

void ph_connection_accept(posthorn_server *srv, int fd, const struct sockaddr *sa, int salen)
{
    (void)salen;
    char ip[64];
    int port;
    addr_to_text(sa, ip, sizeof(ip), &port);
    if (over_limits(srv, fd, ip))
        return;
    posthorn_session *s = calloc(1, sizeof(*s));
    if (!s) {
        refuse(fd, "421 4.3.0 Out of memory\r\n");
        return;
    }
    s->srv = srv;
    s->id = srv->next_id++;
    memcpy(s->client_ip, ip, sizeof(ip));
    s->client_port = port;
    s->started_ms = ph_now_ms();
    s->core = new_core(s);
    s->bev = bufferevent_socket_new(srv->base, fd, BEV_OPT_CLOSE_ON_FREE);
    if (!s->core || !s->bev || (srv->limits.greeting_delay_ms && start_greeting_delay(s) < 0)) {
        if (!s->bev)
            close(fd);
        ph_connection_free(s);
        return;
    }
    if (sa->sa_family != AF_UNIX) {
        int one = 1; /* replies are small and latency-bound */
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    }
    if (ip[0]) {
        ph_ipcount_add(&srv->ipcount, ip);
        s->counted_ip = true;
    }
    ph_session_register(srv, s);
    bufferevent_setcb(s->bev, read_cb, write_cb, event_cb, s);
    set_idle_timeout(s);
    bufferevent_enable(s->bev, EV_READ | EV_WRITE);
    ph_log(srv, POSTHORN_LOG_INFO, "event=connect sid=%016llx client=%s:%d",
           (unsigned long long)s->id, ip[0] ? ip : "unix", port);
    smtp_session_start(s->core);
    ph_connection_drive(s);
}

/* ---- driving the core ------------------------------------------------------------ */

static void drain_consumed(posthorn_session *s)
{
    if (s->to_drain) {
        evbuffer_drain(bufferevent_get_input(s->bev), s->to_drain);
        s->to_drain = 0;
    }
}

static void run_notes(posthorn_session *s)
{
    unsigned notes = smtp_session_take_notes(s->core);
    if (notes & SN_TXN_ABORTED)
        ph_hooks_abort(s);
}

/* Runs the pending hook: true if the core may go on, false if the verdict is pending. */
static bool run_hook(posthorn_session *s, const smtp_hook_req *req)
{
    if (s->have_verdict) {
        s->have_verdict = false;
        smtp_session_resolve(s->core, &s->verdict);
        return true;
    }
    if (s->user_pending)
        return false;
    posthorn_verdict v = ph_hooks_call(s, req);
    drain_consumed(s); /* chunk bytes are borrowed only for the duration of the hook */
    if (v.action == POSTHORN_PENDING) {
        s->user_pending = true;
        return false;
    }
    smtp_verdict sv = {
        .action = v.action == POSTHORN_REJECT ? SV_REJECT
                  : v.action == POSTHORN_DISCONNECT ? SV_DISCONNECT : SV_ACCEPT,
        .code = v.code, .enhanced = v.enhanced, .text = v.text,
    };
    smtp_session_resolve(s->core, &sv);
    return true;
}

/* Feeds one contiguous piece of buffered input; false when there is none. */
static bool feed_input(posthorn_session *s)
{
    struct evbuffer *in = bufferevent_get_input(s->bev);
    drain_consumed(s);
    struct evbuffer_iovec vec;
    if (evbuffer_peek(in, -1, NULL, &vec, 1) < 1 || vec.iov_len == 0)
        return false;
    s->to_drain = smtp_session_feed(s->core, vec.iov_base, vec.iov_len);
    return true;
}

static void flush_output(posthorn_session *s)
{
    strbuf *out = smtp_session_output(s->core);
    if (out->len) {
        bufferevent_write(s->bev, out->data, out->len);
        strbuf_clear(out);
    }
}

/* Reading is on only when the core can take input and the client reads its replies. */
static void update_reading(posthorn_session *s, bool blocked)
{
    struct evbuffer *out = bufferevent_get_output(s->bev);
    bool pause = blocked || s->eof || evbuffer_get_length(out) > OUTPUT_HIGH_WATER;
    if (pause && !s->read_paused)
        bufferevent_disable(s->bev, EV_READ);
    else if (!pause && s->read_paused)
        bufferevent_enable(s->bev, EV_READ);
    s->read_paused = pause;
}

void ph_connection_drive(posthorn_session *s)
{
    if (s->in_drive || s->dead || s->closing)
        return;
    s->in_drive = true;
    bool blocked = false;
    for (;;) {
        run_notes(s);
        const smtp_hook_req *req = smtp_session_hook(s->core);
        if (req) {
            if (!run_hook(s, req)) {
                blocked = true;
                break;
            }
            continue;
        }
        if (smtp_session_want_close(s->core) || !feed_input(s))
            break;
        if (evbuffer_get_length(bufferevent_get_output(s->bev)) > OUTPUT_HIGH_WATER)
            break;
    }
    drain_consumed(s);
    run_notes(s);
    flush_output(s);
    s->in_drive = false;
    bool input_left = evbuffer_get_length(bufferevent_get_input(s->bev)) > 0;
    if (smtp_session_want_close(s->core) || (s->eof && !blocked && !input_left)) {
        ph_connection_close(s);
        return;
    }
    update_reading(s, blocked);
}

/* ---- libevent callbacks --------------------------------------------------------------- */

static void read_cb(struct bufferevent *bev, void *arg)
{
    (void)bev;
    ph_connection_drive(arg);
}

static void write_cb(struct bufferevent *bev, void *arg)
{
    posthorn_session *s = arg;
    if (s->closing) {
        if (evbuffer_get_length(bufferevent_get_output(bev)) == 0)
            ph_connection_free_later(s);
        return;
    }
    if (s->read_paused && !s->user_pending)
        ph_connection_drive(s); /* the client caught up with its replies */
}

static void event_cb(struct bufferevent *bev, short what, void *arg)
{
    (void)bev;
    posthorn_session *s = arg;
    if (s->closing) {
        ph_connection_free_later(s);
        return;
    }
    if (what & BEV_EVENT_TIMEOUT) {
        ph_log(s->srv, POSTHORN_LOG_INFO, "event=timeout sid=%016llx reason=idle",
               (unsigned long long)s->id);
        smtp_session_abort(s->core, R_TIMEOUT);
        ph_connection_drive(s);
        return;
    }
    if (what & BEV_EVENT_EOF) {
        s->eof = true; /* a half-closed client may still read the replies to what it sent */
        ph_connection_drive(s);
        return;
    }
    smtp_session_closed(s->core); /* reset or error: nothing more can be sent */
    run_notes(s);
    ph_connection_free_later(s);
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
    bufferevent_disable(s->bev, EV_READ);
    struct timeval flush = {5, 0}; /* a client that never reads cannot hold the slot */
    bufferevent_set_timeouts(s->bev, NULL, &flush);
    if (evbuffer_get_length(bufferevent_get_output(s->bev)) == 0)
        ph_connection_free_later(s);
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
    ph_hooks_disconnect(s);
    ph_session_unregister(srv, s);
    if (s->counted_ip)
        ph_ipcount_del(&srv->ipcount, s->client_ip);
    s->counted_ip = false;
    bufferevent_disable(s->bev, EV_READ | EV_WRITE);
    s->dead_next = srv->dead;
    srv->dead = s;
    event_active(srv->reaper, 0, 0);
}

void ph_connection_free(posthorn_session *s)
{
    if (s->greet_timer)
        event_free(s->greet_timer);
    if (s->bev)
        bufferevent_free(s->bev);
    smtp_session_free(s->core);
    free(s->verdict_enh);
    free(s->verdict_text);
    free(s);
}
