/*
 * tls_source.c - an smtp-source-like load generator that speaks STARTTLS (Postfix's smtp-source
 * has no TLS). One message per connection, so every message pays a full TLS handshake:
 *
 *   connect, 220, EHLO, STARTTLS, 220, TLS handshake, EHLO, MAIL, RCPT, DATA, message, ".", QUIT
 *
 * Non-blocking sockets, one epoll loop per thread (-t), the parallel sessions (-s) split over the
 * threads; the total message count (-m) is shared. No pipelining (lockstep, like smtp-source).
 * TLS 1.3 by default (-2: TLS 1.2), no certificate verification unless -C CAFILE, no session
 * resumption unless -R (then each thread offers the most recent session/ticket it received).
 * Prints messages/s, handshakes/s, session and handshake latency p50/p99, errors and its own CPU
 * time; -j adds one JSON line for scripts.
 *
 * A failed session (connect error, unexpected reply, TLS error, timeout) counts as an error and
 * the load goes on; exit status 1 if any message failed, 2 on a usage or set-up error.
 *
 * Build: cc -O2 -Wall -o tls_source tls_source.c -lssl -lcrypto -lpthread
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* ---- options ------------------------------------------------------------------------------ */

enum tls_mode { TLS_STARTTLS, TLS_NONE, TLS_IMPLICIT };

static struct {
    int sessions, threads;
    long messages, size;
    enum tls_mode mode;
    int tls12, resume, json, quiet;
    const char *cafile, *groups, *ciphers, *suites, *sni;
    const char *helo, *from, *rcpt;
    double duration, timeout;
    struct sockaddr_in addr;
} opt = {
    .sessions = 1, .threads = 1, .messages = 100, .size = 1024, .mode = TLS_STARTTLS,
    .helo = "client.test", .from = "a@x.test", .rcpt = "b@y.test", .timeout = 30,
};

static char *message; /* headers + body + ".\r\n", built once */
static size_t message_len;
static atomic_long to_start;  /* messages not yet claimed by a session */
static double t_begin, t_deadline;

/* ---- per-thread state --------------------------------------------------------------------- */

enum state {
    ST_CONNECT, ST_BANNER, ST_EHLO1, ST_STARTTLS, ST_HANDSHAKE, ST_EHLO2,
    ST_MAIL, ST_RCPT, ST_DATA, ST_DOT, ST_QUIT, ST_IDLE,
};
static const char *state_name[] = {
    "connect", "banner", "ehlo", "starttls", "handshake", "ehlo2",
    "mail", "rcpt", "data", "dot", "quit", "idle",
};
static const int expect_code[] = {0, 220, 250, 220, 0, 250, 250, 250, 354, 250, 221, 0};

typedef struct lat {
    uint32_t *v;
    size_t n, cap;
} lat;

struct worker;
typedef struct conn {
    struct worker *w;
    int fd;
    enum state st;
    SSL *ssl;
    double t0, t_hs;        /* session start, handshake start */
    char in[4096];
    size_t inlen;
    const char *out;        /* bytes still to send */
    size_t outlen;
    char cmd[600];
    int tickets;
} conn;

typedef struct worker {
    pthread_t th;
    int ep, nconn, active;
    conn *conns;
    SSL_CTX *ctx;
    SSL_SESSION *last;      /* -R: most recent session received */
    long done, errors, handshakes, resumed, tickets, bytes_app;
    long err_by_state[ST_IDLE + 1];
    double t_last;          /* time of the last completed session */
    lat sess, hs;
} worker;

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void lat_add(lat *l, double seconds)
{
    if (l->n == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 4096;
        l->v = realloc(l->v, l->cap * sizeof(*l->v));
        if (!l->v) {
            perror("realloc");
            exit(2);
        }
    }
    double us = seconds * 1e6;
    l->v[l->n++] = us > 4e9 ? 4000000000u : (uint32_t)us;
}

/* ---- TLS ------------------------------------------------------------------------------------ */

static int ex_conn; /* SSL ex_data index -> conn */

static int new_session_cb(SSL *ssl, SSL_SESSION *sess)
{
    conn *c = SSL_get_ex_data(ssl, ex_conn);
    if (!c)
        return 0;
    c->tickets++;
    if (!opt.resume)
        return 0; /* OpenSSL frees it */
    if (c->w->last)
        SSL_SESSION_free(c->w->last);
    c->w->last = sess; /* we keep the reference */
    return 1;
}

static SSL_CTX *make_ctx(void)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    if (!ctx)
        goto fail;
    int v = opt.tls12 ? TLS1_2_VERSION : TLS1_3_VERSION;
    SSL_CTX_set_min_proto_version(ctx, v);
    SSL_CTX_set_max_proto_version(ctx, v);
    SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    if (opt.groups && !SSL_CTX_set1_groups_list(ctx, opt.groups))
        goto fail;
    if (opt.ciphers && !SSL_CTX_set_cipher_list(ctx, opt.ciphers))
        goto fail;
    if (opt.suites && !SSL_CTX_set_ciphersuites(ctx, opt.suites))
        goto fail;
    if (opt.cafile) {
        if (!SSL_CTX_load_verify_locations(ctx, opt.cafile, NULL))
            goto fail;
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    } else {
        SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
    }
    /* the callback counts tickets always; it keeps one only with -R */
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
    SSL_CTX_sess_set_new_cb(ctx, new_session_cb);
    return ctx;
fail:
    ERR_print_errors_fp(stderr);
    exit(2);
}

/* ---- connections ---------------------------------------------------------------------------- */

static void conn_close(conn *c)
{
    if (c->ssl) {
        SSL_shutdown(c->ssl); /* one close_notify, as a polite client sends; no waiting */
        SSL_free(c->ssl);
        c->ssl = NULL;
    }
    if (c->fd >= 0) {
        close(c->fd); /* also removes it from epoll */
        c->fd = -1;
    }
    c->st = ST_IDLE;
    c->w->active--;
}

static void conn_fail(conn *c, const char *why)
{
    worker *w = c->w;
    w->errors++;
    w->err_by_state[c->st]++;
    if (!opt.quiet && w->errors <= 5) {
        char e[200] = "";
        unsigned long oe = ERR_get_error();
        if (oe)
            ERR_error_string_n(oe, e, sizeof(e));
        fprintf(stderr, "tls_source: session failed in %s: %s%s%s\n", state_name[c->st], why,
                oe ? ": " : "", e);
    }
    ERR_clear_error();
    conn_close(c);
}

/* Claims one message and opens a connection for it; false when no message is left. */
static bool conn_start(conn *c)
{
    for (;;) {
        if (t_deadline > 0 && now() >= t_deadline)
            return false;
        if (atomic_fetch_sub(&to_start, 1) <= 0)
            return false;
        worker *w = c->w;
        c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (c->fd < 0) {
            perror("socket");
            exit(2);
        }
        int one = 1;
        setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        c->st = ST_CONNECT;
        c->inlen = 0;
        c->outlen = 0;
        c->tickets = 0;
        c->t0 = now();
        w->active++;
        if (connect(c->fd, (struct sockaddr *)&opt.addr, sizeof(opt.addr)) < 0 &&
            errno != EINPROGRESS) {
            conn_fail(c, strerror(errno));
            continue;
        }
        struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLET | EPOLLRDHUP, .data.ptr = c};
        if (epoll_ctl(w->ep, EPOLL_CTL_ADD, c->fd, &ev) < 0) {
            perror("epoll_ctl");
            exit(2);
        }
        return true;
    }
}

static void send_cmd(conn *c, enum state next, const char *fmt, const char *arg)
{
    int n = snprintf(c->cmd, sizeof(c->cmd), fmt, arg);
    c->out = c->cmd;
    c->outlen = (size_t)n;
    c->st = next;
}

/* 1 when all output is sent, 0 when the socket is full (or TLS wants to read), -1 on error. */
static int flush_out(conn *c)
{
    while (c->outlen) {
        size_t put = 0;
        if (c->ssl) {
            if (SSL_write_ex(c->ssl, c->out, c->outlen, &put) != 1) {
                int e = SSL_get_error(c->ssl, 0);
                return e == SSL_ERROR_WANT_WRITE || e == SSL_ERROR_WANT_READ ? 0 : -1;
            }
        } else {
            ssize_t n = send(c->fd, c->out, c->outlen, MSG_NOSIGNAL);
            if (n < 0)
                return errno == EAGAIN || errno == EINTR ? 0 : -1;
            put = (size_t)n;
        }
        c->out += put;
        c->outlen -= put;
    }
    return 1;
}

/* Looks for one complete reply in the input buffer: its code, or 0 if incomplete, -1 if bad. */
static int take_reply(conn *c)
{
    size_t pos = 0;
    while (pos < c->inlen) {
        char *eol = memchr(c->in + pos, '\n', c->inlen - pos);
        if (!eol)
            return c->inlen == sizeof(c->in) ? -1 : 0;
        size_t linelen = (size_t)(eol - (c->in + pos)) + 1;
        const char *l = c->in + pos;
        if (linelen < 4 || l[0] < '2' || l[0] > '5')
            return -1;
        pos += linelen;
        if (l[3] != '-') {
            int code = (l[0] - '0') * 100 + (l[1] - '0') * 10 + (l[2] - '0');
            memmove(c->in, c->in + pos, c->inlen - pos);
            c->inlen -= pos;
            return code;
        }
    }
    return 0;
}

/* Reads what is there: 1 got bytes, 0 would block, -1 EOF or error. */
static int fill_in(conn *c)
{
    size_t room = sizeof(c->in) - c->inlen;
    if (room == 0)
        return -1;
    if (c->ssl) {
        size_t got = 0;
        if (SSL_read_ex(c->ssl, c->in + c->inlen, room, &got) == 1) {
            c->inlen += got;
            return 1;
        }
        int e = SSL_get_error(c->ssl, 0);
        return e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE ? 0 : -1;
    }
    ssize_t n = recv(c->fd, c->in + c->inlen, room, 0);
    if (n > 0) {
        c->inlen += (size_t)n;
        return 1;
    }
    return n < 0 && (errno == EAGAIN || errno == EINTR) ? 0 : -1;
}

static int begin_tls(conn *c)
{
    if (c->inlen) /* bytes after the 220 to STARTTLS: refuse, as RFC 3207 clients must */
        return -1;
    c->ssl = SSL_new(c->w->ctx);
    if (!c->ssl || SSL_set_fd(c->ssl, c->fd) != 1)
        return -1;
    SSL_set_ex_data(c->ssl, ex_conn, c);
    if (opt.sni)
        SSL_set_tlsext_host_name(c->ssl, opt.sni);
    if (opt.resume && c->w->last)
        SSL_set_session(c->ssl, c->w->last);
    SSL_set_connect_state(c->ssl);
    c->t_hs = now();
    c->st = ST_HANDSHAKE;
    return 0;
}

static void session_done(conn *c)
{
    worker *w = c->w;
    double t = now();
    w->done++;
    w->t_last = t;
    lat_add(&w->sess, t - c->t0);
    w->tickets += c->tickets;
    conn_close(c);
}

/* Acts on a reply; -1 if it was not the expected one. */
static int on_reply(conn *c, int code)
{
    if (code != expect_code[c->st])
        return -1;
    switch (c->st) {
    case ST_BANNER:
        send_cmd(c, ST_EHLO1, "EHLO %s\r\n", opt.helo);
        return 0;
    case ST_EHLO1:
        if (opt.mode == TLS_STARTTLS)
            send_cmd(c, ST_STARTTLS, "STARTTLS\r\n%s", "");
        else
            send_cmd(c, ST_MAIL, "MAIL FROM:<%s>\r\n", opt.from);
        return 0;
    case ST_STARTTLS:
        return begin_tls(c);
    case ST_EHLO2:
        send_cmd(c, ST_MAIL, "MAIL FROM:<%s>\r\n", opt.from);
        return 0;
    case ST_MAIL:
        send_cmd(c, ST_RCPT, "RCPT TO:<%s>\r\n", opt.rcpt);
        return 0;
    case ST_RCPT:
        send_cmd(c, ST_DATA, "DATA\r\n%s", "");
        return 0;
    case ST_DATA:
        c->out = message;
        c->outlen = message_len;
        c->st = ST_DOT;
        return 0;
    case ST_DOT:
        send_cmd(c, ST_QUIT, "QUIT\r\n%s", "");
        return 0;
    case ST_QUIT:
        session_done(c);
        return 1;
    default:
        return -1;
    }
}

static int step_handshake(conn *c)
{
    int r = SSL_do_handshake(c->ssl);
    if (r == 1) {
        worker *w = c->w;
        w->handshakes++;
        if (SSL_session_reused(c->ssl))
            w->resumed++;
        lat_add(&w->hs, now() - c->t_hs);
        send_cmd(c, ST_EHLO2, "EHLO %s\r\n", opt.helo);
        return 1;
    }
    int e = SSL_get_error(c->ssl, r);
    return e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE ? 0 : -1;
}

/* Drives one connection as far as it goes without blocking. */
static void conn_run(conn *c, uint32_t events)
{
    if (c->st == ST_CONNECT) {
        if (!(events & (EPOLLOUT | EPOLLERR | EPOLLHUP)))
            return;
        int err = 0;
        socklen_t len = sizeof(err);
        getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len);
        if (err) {
            conn_fail(c, strerror(err));
            return;
        }
        if (opt.mode == TLS_IMPLICIT) {
            if (begin_tls(c) < 0) {
                conn_fail(c, "TLS set-up");
                return;
            }
        } else {
            c->st = ST_BANNER;
        }
    }
    for (;;) {
        int f = flush_out(c);
        if (f < 0) {
            conn_fail(c, "write");
            return;
        }
        if (f == 0)
            return;
        if (c->st == ST_HANDSHAKE) {
            int r = step_handshake(c);
            if (r < 0) {
                conn_fail(c, "TLS handshake");
                return;
            }
            if (r == 0)
                return;
            continue;
        }
        int code = take_reply(c);
        if (code < 0) {
            conn_fail(c, "malformed reply");
            return;
        }
        if (code > 0) {
            int r = on_reply(c, code);
            if (r < 0) {
                char why[64];
                snprintf(why, sizeof(why), "unexpected reply %d", code);
                conn_fail(c, why);
                return;
            }
            if (r == 1)
                return; /* session over */
            continue;
        }
        int g = fill_in(c);
        if (g < 0) {
            conn_fail(c, "connection closed or read error");
            return;
        }
        if (g == 0)
            return;
    }
}

static void check_timeouts(worker *w)
{
    double t = now();
    for (int i = 0; i < w->nconn; i++) {
        conn *c = &w->conns[i];
        if (c->st != ST_IDLE && t - c->t0 > opt.timeout)
            conn_fail(c, "timeout");
    }
}

static void refill(worker *w)
{
    for (int i = 0; i < w->nconn; i++) {
        conn *c = &w->conns[i];
        while (c->st == ST_IDLE && conn_start(c))
            conn_run(c, 0);
    }
}

static void *worker_main(void *arg)
{
    worker *w = arg;
    struct epoll_event evs[256];
    double last_check = now();
    refill(w);
    while (w->active > 0) {
        int n = epoll_wait(w->ep, evs, 256, 100);
        if (n < 0 && errno != EINTR) {
            perror("epoll_wait");
            exit(2);
        }
        for (int i = 0; i < n; i++) {
            conn *c = evs[i].data.ptr;
            if (c->st != ST_IDLE)
                conn_run(c, evs[i].events);
        }
        if (now() - last_check > 0.1) {
            check_timeouts(w);
            last_check = now();
        }
        refill(w);
    }
    return NULL;
}

/* ---- message, options, report ------------------------------------------------------------- */

static void build_message(void)
{
    size_t cap = (size_t)opt.size + 1024 + (size_t)opt.size / 70 * 2;
    message = malloc(cap);
    if (!message) {
        perror("malloc");
        exit(2);
    }
    int n = snprintf(message, cap,
                     "From: <%s>\r\nTo: <%s>\r\nSubject: tls_source test message\r\n"
                     "Message-ID: <tls-source@%s>\r\n\r\n",
                     opt.from, opt.rcpt, opt.helo);
    size_t len = (size_t)n;
    long left = opt.size;
    while (left > 0) { /* lines of at most 78 payload bytes, never starting with a dot */
        long k = left > 78 ? 78 : left;
        memset(message + len, 'x', (size_t)k);
        len += (size_t)k;
        memcpy(message + len, "\r\n", 2);
        len += 2;
        left -= k;
    }
    memcpy(message + len, ".\r\n", 3);
    message_len = len + 3;
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

static double pct(lat *l, double p)
{
    if (!l->n)
        return 0;
    size_t i = (size_t)(p * (double)(l->n - 1) + 0.5);
    return l->v[i] / 1000.0; /* ms */
}

static void merge(lat *dst, lat *src)
{
    for (size_t i = 0; i < src->n; i++)
        lat_add(dst, src->v[i] / 1e6);
}

static void usage(void)
{
    fprintf(stderr,
            "usage: tls_source [options] HOST:PORT   (HOST is an IPv4 address)\n"
            "  -s N     parallel sessions (1)             -m N   total messages (100)\n"
            "  -l N     payload bytes per message (1024)  -t N   threads (1)\n"
            "  -S       plain SMTP, no STARTTLS (same dialogue otherwise)\n"
            "  -T       implicit TLS (handshake right after connect, RFC 8314)\n"
            "  -2       TLS 1.2 (default TLS 1.3)         -R     resume sessions (tickets/IDs)\n"
            "  -C FILE  verify the server against this CA file (default: no verification)\n"
            "  -g LIST  key exchange groups, e.g. X25519 or P-256\n"
            "  -c LIST  TLS 1.2 cipher list               -u LIST TLS 1.3 ciphersuites\n"
            "  -n NAME  send SNI NAME\n"
            "  -M NAME  EHLO name (client.test)   -f FROM (a@x.test)   -r RCPT (b@y.test)\n"
            "  -D SEC   start no new session after SEC seconds (0 = until -m is done)\n"
            "  -w SEC   per-session timeout (30)\n"
            "  -j       also print one JSON line          -q     no error details\n");
    exit(2);
}

static void parse_args(int argc, char **argv)
{
    int ch;
    while ((ch = getopt(argc, argv, "s:m:l:t:ST2RC:g:c:u:n:M:f:r:D:w:jqh")) != -1) {
        switch (ch) {
        case 's': opt.sessions = atoi(optarg); break;
        case 'm': opt.messages = atol(optarg); break;
        case 'l': opt.size = atol(optarg); break;
        case 't': opt.threads = atoi(optarg); break;
        case 'S': opt.mode = TLS_NONE; break;
        case 'T': opt.mode = TLS_IMPLICIT; break;
        case '2': opt.tls12 = 1; break;
        case 'R': opt.resume = 1; break;
        case 'C': opt.cafile = optarg; break;
        case 'g': opt.groups = optarg; break;
        case 'c': opt.ciphers = optarg; break;
        case 'u': opt.suites = optarg; break;
        case 'n': opt.sni = optarg; break;
        case 'M': opt.helo = optarg; break;
        case 'f': opt.from = optarg; break;
        case 'r': opt.rcpt = optarg; break;
        case 'D': opt.duration = atof(optarg); break;
        case 'w': opt.timeout = atof(optarg); break;
        case 'j': opt.json = 1; break;
        case 'q': opt.quiet = 1; break;
        default: usage();
        }
    }
    if (optind != argc - 1 || opt.sessions < 1 || opt.threads < 1 || opt.messages < 1 ||
        opt.size < 0)
        usage();
    if (opt.threads > opt.sessions)
        opt.threads = opt.sessions;
    char host[64];
    const char *colon = strrchr(argv[optind], ':');
    if (!colon || (size_t)(colon - argv[optind]) >= sizeof(host))
        usage();
    memcpy(host, argv[optind], (size_t)(colon - argv[optind]));
    host[colon - argv[optind]] = 0;
    opt.addr.sin_family = AF_INET;
    opt.addr.sin_port = htons((uint16_t)atoi(colon + 1));
    if (inet_pton(AF_INET, host, &opt.addr.sin_addr) != 1)
        usage();
}

int main(int argc, char **argv)
{
    parse_args(argc, argv);
    signal(SIGPIPE, SIG_IGN);
    build_message();
    ex_conn = SSL_get_ex_new_index(0, NULL, NULL, NULL, NULL);
    atomic_init(&to_start, opt.messages);

    worker *ws = calloc((size_t)opt.threads, sizeof(*ws));
    for (int i = 0; i < opt.threads; i++) {
        worker *w = &ws[i];
        w->nconn = opt.sessions / opt.threads + (i < opt.sessions % opt.threads);
        w->conns = calloc((size_t)w->nconn, sizeof(conn));
        w->ep = epoll_create1(EPOLL_CLOEXEC);
        w->ctx = opt.mode == TLS_NONE ? NULL : make_ctx();
        for (int k = 0; k < w->nconn; k++) {
            w->conns[k].w = w;
            w->conns[k].fd = -1;
            w->conns[k].st = ST_IDLE;
        }
    }
    t_begin = now();
    t_deadline = opt.duration > 0 ? t_begin + opt.duration : 0;
    for (int i = 0; i < opt.threads; i++)
        pthread_create(&ws[i].th, NULL, worker_main, &ws[i]);
    long done = 0, errors = 0, hs = 0, resumed = 0, tickets = 0;
    long err_by_state[ST_IDLE + 1] = {0};
    double t_end = t_begin;
    lat sess = {0}, hsl = {0};
    for (int i = 0; i < opt.threads; i++) {
        worker *w = &ws[i];
        pthread_join(w->th, NULL);
        done += w->done;
        errors += w->errors;
        hs += w->handshakes;
        resumed += w->resumed;
        tickets += w->tickets;
        for (int k = 0; k <= ST_IDLE; k++)
            err_by_state[k] += w->err_by_state[k];
        if (w->t_last > t_end)
            t_end = w->t_last;
        merge(&sess, &w->sess);
        merge(&hsl, &w->hs);
    }
    double wall = now() - t_begin;
    double el = t_end > t_begin ? t_end - t_begin : wall; /* up to the last completed session */
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    double cpu_u = ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6;
    double cpu_s = ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
    qsort(sess.v, sess.n, sizeof(uint32_t), cmp_u32);
    qsort(hsl.v, hsl.n, sizeof(uint32_t), cmp_u32);
    const char *proto = opt.mode == TLS_NONE ? "none" : opt.tls12 ? "TLSv1.2" : "TLSv1.3";

    printf("tls_source: %ld messages in %.3f s: %.1f msgs/s, %ld handshakes (%ld resumed): "
           "%.1f handshakes/s, %ld errors\n",
           done, el, done / el, hs, resumed, hs / el, errors);
    printf("tls_source: session latency p50 %.2f ms p99 %.2f ms; handshake p50 %.2f ms p99 %.2f ms; "
           "tickets/conn %.2f\n",
           pct(&sess, 0.5), pct(&sess, 0.99), pct(&hsl, 0.5), pct(&hsl, 0.99),
           done ? (double)tickets / done : 0);
    printf("tls_source: client CPU user %.2f s sys %.2f s = %.0f%% of one core; %s, %d sessions, "
           "%d threads, %ld bytes payload\n",
           cpu_u, cpu_s, 100 * (cpu_u + cpu_s) / wall, proto, opt.sessions, opt.threads, opt.size);
    if (errors) {
        printf("tls_source: errors by state:");
        for (int k = 0; k <= ST_IDLE; k++)
            if (err_by_state[k])
                printf(" %s=%ld", state_name[k], err_by_state[k]);
        printf("\n");
    }
    if (opt.json)
        printf("{\"msgs\": %ld, \"errors\": %ld, \"handshakes\": %ld, \"resumed\": %ld, "
               "\"elapsed_s\": %.4f, \"wall_s\": %.4f, \"msgs_per_s\": %.1f, \"hs_per_s\": %.1f, "
               "\"p50_ms\": %.3f, \"p99_ms\": %.3f, \"hs_p50_ms\": %.3f, \"hs_p99_ms\": %.3f, "
               "\"tickets_per_conn\": %.2f, \"cli_user_s\": %.3f, \"cli_sys_s\": %.3f, "
               "\"proto\": \"%s\", \"sessions\": %d, \"threads\": %d, \"size\": %ld}\n",
               done, errors, hs, resumed, el, wall, done / el, hs / el, pct(&sess, 0.5),
               pct(&sess, 0.99), pct(&hsl, 0.5), pct(&hsl, 0.99),
               done ? (double)tickets / done : 0, cpu_u, cpu_s, proto, opt.sessions, opt.threads,
               opt.size);
    return errors ? 1 : 0;
}
