/*
 * relay_conn.c - one outbound SMTP connection on the queue manager's loop (see
 * relay_internal.h): a non-blocking socket with read/write events and one timer, optional TLS
 * (implicit or after STARTTLS, through io/tls.h), the pure client machine (proto/smtp_client.h)
 * fed with what arrives, and the queued message streamed from its file through the
 * dot-stuffer with pread (regular files cannot be polled; a page-cache read is short).
 *
 * Owns: the socket, its TLS state, the events and the output buffer. The results array and
 * envelope the machine writes into belong to the request (relay.c) and are only borrowed.
 * Errors never escape as return values: an attempt that fails is reported with
 * relay_on_attempt_failed, a session that breaks fails its open recipients through
 * ph_smtp_client_fail and ends with relay_on_gone; the connection is freed right after either.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <event2/event.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "deliver/relay_internal.h"
#include "io/tls.h"

#define READ_CHUNK 16384
#define MSG_CHUNK 32768
#define WBUF_LOW 65536 /* refill the message stream while less than this waits to be sent */
#define WHY_MAX (PH_RELAY_EXCHANGER_MAX + 400)

static void pump(relay_conn *c);
static void on_read(evutil_socket_t fd, short what, void *arg);
static void on_write(evutil_socket_t fd, short what, void *arg);
static void on_timer(evutil_socket_t fd, short what, void *arg);

long long relay_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void relay_format_exchanger(char *buf, size_t size, const char *host, const ph_dns_addr *a,
                            unsigned port)
{
    char ip[INET6_ADDRSTRLEN] = "?";
    inet_ntop(a->family, a->bytes, ip, sizeof(ip));
    if (host[0] == '[') /* an address literal names itself */
        snprintf(buf, size, "%s:%u", host, port);
    else
        snprintf(buf, size, "%s[%s]:%u", host, ip, port);
}

/* ---- lifetime ------------------------------------------------------------------------------ */

static void arm_timer(relay_conn *c, unsigned ms)
{
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    event_add(c->timer, &tv);
}

static void free_conn(relay_conn *c)
{
    if (c->tls) {
        if (c->state == CONN_IDLE || c->state == CONN_QUITTING)
            ph_tls_close_notify(c->tls);
        ph_tls_free(c->tls);
    }
    if (c->rev)
        event_free(c->rev);
    if (c->wev)
        event_free(c->wev);
    if (c->timer)
        event_free(c->timer);
    if (c->fd >= 0)
        close(c->fd);
    free(c->wbuf);
    free(c);
}

void relay_conn_abort(relay_conn *c)
{
    if (c)
        free_conn(c);
}

static void attempt_failed(relay_conn *c, int code, const char *enh, const char *why,
                           bool remote)
{
    relay_on_attempt_failed(c, code, enh, why, remote);
    free_conn(c);
}

static void gone(relay_conn *c)
{
    relay_on_gone(c);
    free_conn(c);
}

/* ---- output -------------------------------------------------------------------------------- */

static int reserve(relay_conn *c, size_t more)
{
    if (c->woff > 0 && c->woff + c->wlen + more > c->wcap) {
        memmove(c->wbuf, c->wbuf + c->woff, c->wlen);
        c->woff = 0;
    }
    if (c->wlen + more <= c->wcap)
        return 0;
    size_t cap = c->wcap ? c->wcap : 16384;
    while (cap < c->wlen + more)
        cap *= 2;
    char *b = realloc(c->wbuf, cap);
    if (!b)
        return -1;
    c->wbuf = b;
    c->wcap = cap;
    return 0;
}

/* -EAGAIN: wait for writability; -EWOULDBLOCK is not used apart (same value), so a TLS write
 * that needs the peer's bytes first says -ENODATA: wait for readability. */
static ssize_t send_some(relay_conn *c, const char *p, size_t n)
{
    if (c->tls) {
        ssize_t r = ph_tls_write(c->tls, p, n);
        if (r == PH_TLS_WANT_WRITE)
            return -EAGAIN;
        if (r == PH_TLS_WANT_READ)
            return -ENODATA;
        return r < 0 ? -EIO : r;
    }
    ssize_t r = send(c->fd, p, n, MSG_NOSIGNAL);
    return r < 0 ? -errno : r;
}

/* Sends what is buffered: 0 (all sent or the rest waits for writability) or -1 (broken). */
static int flush(relay_conn *c)
{
    while (c->wlen > 0) {
        ssize_t n = send_some(c, c->wbuf + c->woff, c->wlen);
        if (n == -ENODATA) {
            c->tls_write_wants_read = true; /* on_read flushes again */
            return 0;
        }
        if (n == -EAGAIN || n == -EINTR) {
            event_add(c->wev, NULL);
            return 0;
        }
        if (n <= 0) {
            char why[WHY_MAX];
            snprintf(why, sizeof(why), "lost connection with %s while sending: %s", c->exchanger,
                     c->tls ? ph_tls_last_error(c->tls) : strerror((int)-n));
            if (c->state == CONN_SESSION) /* else the machine holds no transaction */
                ph_smtp_client_fail(&c->c, 451, "4.4.2", why);
            return -1;
        }
        c->woff += (size_t)n;
        c->wlen -= (size_t)n;
    }
    c->woff = 0;
    return 0;
}

/* ---- the message stream ------------------------------------------------------------------ */

static void stream_message(relay_conn *c)
{
    char chunk[MSG_CHUNK];
    while (c->streaming && c->wlen < WBUF_LOW) {
        ssize_t n = pread(relay_req_fd(c->req), chunk, sizeof(chunk), c->msg_off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 || reserve(c, PH_DOTSTUFF_BOUND((size_t)(n > 0 ? n : 0)) +
                                    PH_DOTSTUFF_END_MAX) < 0) {
            c->streaming = false;
            ph_smtp_client_fail(&c->c, 451, "4.3.0",
                                n < 0 ? "cannot read the queued message" : "out of memory");
            return;
        }
        char *out = c->wbuf + c->woff + c->wlen;
        if (n == 0) {
            c->wlen += ph_dotstuff_finish(&c->ds, out);
            c->streaming = false;
            ph_smtp_client_message_sent(&c->c);
            return;
        }
        c->wlen += ph_dotstuff(&c->ds, chunk, (size_t)n, out);
        c->msg_off += n;
    }
}

/* ---- driving the machine --------------------------------------------------------------------- */

static ph_tls *new_client_tls(relay_conn *c)
{
    ph_tls_ctx *ctx = relay_tls_ctx(c->relay, c->tls_verify);
    return ctx ? ph_tls_client_new(ctx, c->fd, c->host) : NULL;
}

static unsigned session_timeout(const relay_conn *c)
{
    const ph_relay_options *o = relay_options(c->relay);
    ph_client_stage st = ph_smtp_client_stage(&c->c);
    bool data = c->streaming || st == PH_STAGE_MESSAGE || st == PH_STAGE_END_OF_DATA;
    return data ? o->data_timeout_ms : o->command_timeout_ms;
}

static bool handshake_step(relay_conn *c);

/* Runs the machine until it waits for the network; ends the session when it is over. */
static void pump(relay_conn *c)
{
    for (;;) {
        unsigned w = ph_smtp_client_wants(&c->c);
        if (w == 0) {
            if (c->wlen > 0) { /* a QUIT may still be buffered: one try to send it */
                c->state = CONN_QUITTING;
                flush(c);
            }
            return gone(c);
        }
        if (w & PH_SMTP_WANT_WRITE) {
            size_t len = 0;
            const char *out = ph_smtp_client_output(&c->c, &len);
            if (reserve(c, len) < 0) {
                ph_smtp_client_fail(&c->c, 451, "4.3.0", "out of memory");
                continue;
            }
            memcpy(c->wbuf + c->woff + c->wlen, out, len);
            c->wlen += len;
            ph_smtp_client_output_done(&c->c, len);
            continue;
        }
        if ((w & PH_SMTP_WANT_MESSAGE) && !c->streaming) {
            c->streaming = true;
            c->msg_off = 0;
            ph_dotstuff_init(&c->ds);
        }
        if (c->streaming) {
            stream_message(c);
            if (ph_smtp_client_wants(&c->c) == 0)
                continue; /* the message file failed: the session is over */
        }
        if (flush(c) < 0)
            continue;
        if ((w & PH_SMTP_WANT_TLS) && !c->tls_handshake) {
            if (c->wlen > 0)
                return; /* STARTTLS still on its way: the handshake follows it */
            c->tls = new_client_tls(c);
            if (!c->tls) {
                ph_smtp_client_fail(&c->c, 451, "4.7.5", "cannot start TLS (out of memory)");
                continue;
            }
            if (!handshake_step(c))
                continue;
            if (c->tls_handshake)
                return;
            continue;
        }
        if (w & PH_SMTP_WANT_NEXT) {
            if (c->wlen > 0)
                return; /* the last bytes first */
            if (c->state == CONN_SESSION) {
                c->state = CONN_IDLE;
                c->transactions++;
                relay_on_txn_done(c); /* next transaction, idle or quit: it calls us back */
            }
            return;
        }
        if (c->streaming) {
            if (c->wlen > 0) { /* on_write refills */
                arm_timer(c, relay_options(c->relay)->data_timeout_ms);
                return;
            }
            continue; /* the socket took it all: read on */
        }
        arm_timer(c, session_timeout(c));
        return;
    }
}

/* ---- TLS ------------------------------------------------------------------------------------ */

/* One handshake step: false when it failed (the failure is already reported). */
static bool handshake_step(relay_conn *c)
{
    c->tls_handshake = true;
    int r = ph_tls_handshake(c->tls);
    if (r == PH_TLS_WANT_READ)
        return true;
    if (r == PH_TLS_WANT_WRITE) {
        event_add(c->wev, NULL);
        return true;
    }
    c->tls_handshake = false;
    if (r == 0) {
        if (c->state == CONN_SESSION)
            ph_smtp_client_tls_started(&c->c);
        return true;
    }
    char why[WHY_MAX];
    snprintf(why, sizeof(why), "TLS handshake with %s failed: %s", c->exchanger,
             ph_tls_last_error(c->tls));
    if (c->state == CONN_SESSION)
        ph_smtp_client_fail(&c->c, 451, "4.7.5", why);
    else
        attempt_failed(c, 451, "4.7.5", why, false);
    return false;
}

/* ---- reading ------------------------------------------------------------------------------- */

static ssize_t recv_some(relay_conn *c, char *buf, size_t n)
{
    if (c->tls) {
        ssize_t r = ph_tls_read(c->tls, buf, n);
        if (r == PH_TLS_WANT_WRITE) {
            c->tls_read_wants_write = true; /* on_write reads again */
            event_add(c->wev, NULL);
            return -EAGAIN;
        }
        if (r == PH_TLS_WANT_READ)
            return -EAGAIN;
        return r < 0 ? -EIO : r;
    }
    ssize_t r = recv(c->fd, buf, n, 0);
    return r < 0 ? -errno : r;
}

/* A socket event during a handshake: one more step; a session goes on (or ends) either way,
 * an attempt has reported its failure already. */
static void handshake_event(relay_conn *c)
{
    if (c->state != CONN_SESSION) { /* implicit TLS: the greeting may be decrypted already */
        if (handshake_step(c) && !c->tls_handshake)
            on_read(c->fd, EV_READ, c);
        return;
    }
    if (!handshake_step(c) || !c->tls_handshake)
        pump(c);
}

/* The server names itself with our own name: we are talking to ourselves (an MX or relay
 * that points back here, under another name or address), and sending would loop. */
static bool greets_as_us(const relay_conn *c)
{
    const char *me = relay_options(c->relay)->helo_name, *text = c->rr.reply.text;
    size_t n = strcspn(text, " ");
    return n == strlen(me) && strncasecmp(text, me, n) == 0;
}

/* Collects the greeting; true when the attempt is still alive afterwards. */
static bool greeting_bytes(relay_conn *c, const char *buf, size_t n)
{
    if (c->greeting_len + n > sizeof(c->greeting)) {
        attempt_failed(c, 451, "4.5.0", "SMTP protocol error: overlong greeting", false);
        return false;
    }
    memcpy(c->greeting + c->greeting_len, buf, n);
    c->greeting_len += n;
    for (size_t off = 0; off < n;) {
        size_t used = 0;
        ph_reply_event ev = ph_reply_reader_feed(&c->rr, buf + off, n - off, &used);
        off += used;
        if (ev == PH_REPLY_ERROR) {
            char why[WHY_MAX];
            snprintf(why, sizeof(why), "SMTP protocol error in the greeting of %s: %s",
                     c->exchanger, c->rr.error);
            attempt_failed(c, 451, "4.5.0", why, false);
            return false;
        }
        if (ev != PH_REPLY_DONE)
            continue;
        if (c->rr.reply.code != 220) {
            attempt_failed(c, c->rr.reply.code, c->rr.reply.enh, c->rr.reply.text, true);
            return false;
        }
        if (greets_as_us(c)) {
            char why[WHY_MAX];
            snprintf(why, sizeof(why), "mail loops back to myself (%s greets as %s)",
                     c->exchanger, relay_options(c->relay)->helo_name);
            attempt_failed(c, 554, "5.4.6", why, false);
            return false;
        }
        c->state = CONN_GREETED;
        event_del(c->timer);
        relay_on_greeted(c);
        return false; /* relay.c took it over (begun) or dropped it */
    }
    return true;
}

static void eof_or_error(relay_conn *c, ssize_t n)
{
    char why[WHY_MAX];
    if (c->state == CONN_GREETING) {
        snprintf(why, sizeof(why), "%s closed the connection before its greeting%s%s",
                 c->exchanger, n < 0 ? ": " : "", n < 0 ? strerror((int)-n) : "");
        return attempt_failed(c, 451, "4.4.2", why, false);
    }
    if (c->state == CONN_IDLE || c->state == CONN_QUITTING)
        return gone(c);
    if (n == 0)
        ph_smtp_client_closed(&c->c);
    else {
        snprintf(why, sizeof(why), "lost connection with %s: %s", c->exchanger,
                 c->tls ? ph_tls_last_error(c->tls) : strerror((int)-n));
        ph_smtp_client_fail(&c->c, 451, "4.4.2", why);
    }
    pump(c);
}

static void on_read(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    relay_conn *c = arg;
    if (c->tls_handshake)
        return handshake_event(c);
    if (c->tls_write_wants_read) {
        c->tls_write_wants_read = false;
        if (c->state == CONN_SESSION)
            pump(c); /* flushes again */
        else if (c->state == CONN_QUITTING && flush(c) < 0)
            return gone(c);
        return;
    }
    char buf[READ_CHUNK];
    for (;;) {
        ssize_t n = recv_some(c, buf, sizeof(buf));
        if (n == -EAGAIN || n == -EINTR)
            break;
        if (n <= 0)
            return eof_or_error(c, n);
        if (c->state == CONN_QUITTING) /* the 221, or anything: we are done */
            return gone(c);
        if (c->state == CONN_GREETING) {
            if (!greeting_bytes(c, buf, (size_t)n))
                return;
            continue;
        }
        if (c->state == CONN_IDLE) /* a 421 or junk while idle: the session is of no use */
            return eof_or_error(c, 0);
        ph_smtp_client_feed(&c->c, buf, (size_t)n);
    }
    if (c->state == CONN_SESSION)
        pump(c);
}

/* ---- connecting ---------------------------------------------------------------------------- */

static void connected(relay_conn *c)
{
    int soerr = 0;
    socklen_t len = sizeof(soerr);
    if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &soerr, &len) < 0)
        soerr = errno;
    if (soerr != 0) {
        char why[WHY_MAX];
        snprintf(why, sizeof(why), "connect to %s: %s", c->exchanger, strerror(soerr));
        return attempt_failed(c, 451, "4.4.1", why, false);
    }
    c->state = CONN_GREETING;
    event_add(c->rev, NULL);
    arm_timer(c, relay_options(c->relay)->command_timeout_ms);
    if (c->params.tls_active) { /* implicit TLS: the handshake comes before the greeting */
        c->tls = new_client_tls(c);
        if (!c->tls)
            return attempt_failed(c, 451, "4.7.5", "cannot start TLS (out of memory)", false);
        handshake_step(c);
    }
}

static void on_write(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    relay_conn *c = arg;
    if (c->state == CONN_CONNECTING)
        return connected(c);
    if (c->tls_handshake)
        return handshake_event(c);
    if (c->tls_read_wants_write) {
        c->tls_read_wants_write = false;
        return on_read(fd, what, arg);
    }
    if (c->state == CONN_GREETING)
        return;
    if (c->state == CONN_QUITTING) {
        if (flush(c) < 0)
            return gone(c);
        return;
    }
    pump(c);
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    relay_conn *c = arg;
    char why[WHY_MAX];
    switch (c->state) {
    case CONN_CONNECTING:
        snprintf(why, sizeof(why), "connect to %s: timed out", c->exchanger);
        return attempt_failed(c, 451, "4.4.1", why, false);
    case CONN_GREETING:
        snprintf(why, sizeof(why), "timed out waiting for the greeting of %s", c->exchanger);
        return attempt_failed(c, 451, "4.4.2", why, false);
    case CONN_GREETED:
        return;
    case CONN_IDLE:
        return relay_conn_quit(c);
    case CONN_QUITTING:
        return gone(c);
    case CONN_SESSION:
        snprintf(why, sizeof(why), "timed out waiting for %s (%s)", c->exchanger,
                 ph_smtp_client_waiting_for(&c->c));
        ph_smtp_client_fail(&c->c, 451, "4.4.2", why);
        c->streaming = false;
        return pump(c);
    }
}

relay_conn *relay_conn_start(ph_relay *r, relay_req *q, size_t cand, const char *host,
                             const ph_dns_addr *addr, unsigned port,
                             const ph_smtp_client_params *params, char *err, size_t errlen)
{
    relay_conn *c = calloc(1, sizeof(*c));
    if (!c) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    c->relay = r;
    c->req = q;
    c->cand = cand;
    c->fd = -1;
    c->port = port;
    c->addr = *addr;
    c->params = *params;
    c->started_ms = relay_now_ms();
    snprintf(c->host, sizeof(c->host), "%s", host);
    relay_format_exchanger(c->exchanger, sizeof(c->exchanger), host, addr, port);
    ph_reply_reader_init(&c->rr);
    struct sockaddr_storage ss = {0};
    socklen_t sslen;
    if (addr->family == AF_INET6) {
        struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
        s6->sin6_family = AF_INET6;
        s6->sin6_port = htons((uint16_t)port);
        memcpy(&s6->sin6_addr, addr->bytes, 16);
        sslen = sizeof(*s6);
    } else {
        struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
        s4->sin_family = AF_INET;
        s4->sin_port = htons((uint16_t)port);
        memcpy(&s4->sin_addr, addr->bytes, 4);
        sslen = sizeof(*s4);
    }
    struct event_base *base = relay_base(r);
    c->fd = socket(addr->family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c->fd < 0 || !(c->rev = event_new(base, c->fd, EV_READ | EV_PERSIST, on_read, c)) ||
        !(c->wev = event_new(base, c->fd, EV_WRITE, on_write, c)) ||
        !(c->timer = event_new(base, -1, 0, on_timer, c))) {
        snprintf(err, errlen, "connect to %s: %s", c->exchanger, strerror(errno ? errno : ENOMEM));
        free_conn(c);
        return NULL;
    }
    if (connect(c->fd, (struct sockaddr *)&ss, sslen) < 0 && errno != EINPROGRESS) {
        snprintf(err, errlen, "connect to %s: %s", c->exchanger, strerror(errno));
        free_conn(c);
        return NULL;
    }
    c->state = CONN_CONNECTING;
    event_add(c->wev, NULL); /* writable = connected (or failed: SO_ERROR says) */
    arm_timer(c, relay_options(r)->connect_timeout_ms);
    return c;
}

/* ---- sessions ------------------------------------------------------------------------------- */

void relay_conn_begin(relay_conn *c, relay_req *q, const ph_smtp_envelope *env,
                      ph_client_result *results)
{
    c->req = q;
    c->state = CONN_SESSION;
    if (ph_smtp_client_init(&c->c, &c->params, env, results) < 0) {
        for (size_t i = 0; i < env->nrcpts; i++)
            ph_client_result_set(&results[i], PH_STAGE_MAIL, false, 501, "5.1.3",
                                 "invalid address or name for the SMTP client");
        c->state = CONN_QUITTING;
        return gone(c);
    }
    ph_smtp_client_feed(&c->c, c->greeting, c->greeting_len);
    pump(c);
}

void relay_conn_next(relay_conn *c, relay_req *q, const ph_smtp_envelope *env,
                     ph_client_result *results)
{
    event_del(c->timer);
    c->req = q;
    c->state = CONN_SESSION;
    if (ph_smtp_client_next(&c->c, env, results) < 0) {
        for (size_t i = 0; i < env->nrcpts; i++)
            ph_client_result_set(&results[i], PH_STAGE_MAIL, false, 501, "5.1.3",
                                 "invalid address for the SMTP client");
        c->state = CONN_IDLE;
        relay_on_txn_done(c);
        return;
    }
    pump(c);
}

void relay_conn_idle(relay_conn *c, unsigned idle_ms)
{
    c->req = NULL;
    c->state = CONN_IDLE;
    /* the request's recipients and results are freed when it finishes: the machine must not
     * keep pointers to them (a failure while idle or quitting has nothing to report) */
    c->c.env.from = "";
    c->c.env.rcpts = NULL;
    c->c.env.nrcpts = 0;
    c->c.results = NULL;
    arm_timer(c, idle_ms);
}

void relay_conn_quit(relay_conn *c)
{
    c->req = NULL;
    c->state = CONN_QUITTING;
    if (ph_smtp_client_quit(&c->c) < 0)
        return gone(c);
    arm_timer(c, 2000); /* the 221 is a courtesy: do not wait long for it */
    size_t len = 0;
    const char *out = ph_smtp_client_output(&c->c, &len);
    if (reserve(c, len) == 0) {
        memcpy(c->wbuf + c->woff + c->wlen, out, len);
        c->wlen += len;
        ph_smtp_client_output_done(&c->c, len);
    }
    if (flush(c) < 0 || ph_smtp_client_wants(&c->c) == 0)
        return gone(c);
}
