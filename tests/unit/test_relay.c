/*
 * test_relay.c - the relay engine (src/deliver/relay.c, relay_conn.c) for real, in-process,
 * without DNS: recipients are address literals ("a@[127.0.0.1]"), which ph_mx_lookup answers
 * without a query, so the resolver forwards to 127.0.0.1@9 and is never asked. options.mx_port
 * points at a scripted SMTP server on 127.0.0.1 (port 0), one thread per connection, that
 * records every command line and the raw DATA bytes and answers from a small rule table.
 *
 * Threads as in the daemon: the relay's event_base runs on a loop thread of the test;
 * ph_relay_deliver is called from the test's main thread or from helper threads (never the
 * loop's); ph_relay_shutdown runs on the loop thread, asked through a control pipe (the base
 * has no evthread locking, so nothing but a pipe write crosses threads).
 *
 * Cases: outcomes per recipient (accepted, partial acceptance, 4xx RCPT, 421 greeting, greeting
 * timeout, refused MAIL, refused end of data, server closing), connection refused, connection
 * reuse (one connection, MAIL directly or RSET first), destination_concurrency 1 with three
 * deliveries at once, shutdown while a delivery waits, and the bytes of message files on the
 * wire (dot-stuffing, a missing final CRLF, a message larger than the stream buffers).
 * Every wait is bounded: the server polls with short timeouts and gives up on a connection
 * after CONN_MAX_MS; the relay's own timeouts are a few seconds at most.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <arpa/inet.h>
#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "deliver/relay.h"
#include "dns/resolver.h"

#define SILENT ""          /* a reply that sends nothing: the server hangs */
#define CLOSE "<close>"    /* close the connection instead of replying */
#define EOD "<EOD>"        /* the rule name of the end of data (logged as ".") */
#define CONNS_MAX 8
#define CONN_MAX_MS 8000   /* a server connection never lives longer */
#define LINE_BUF 8192
#define LOG_MAX 4096
#define RCPTS_MAX 3
#define HELPERS_MAX 4

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(unsigned ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000};
    nanosleep(&ts, NULL);
}

/* ---- the scripted SMTP server ------------------------------------------------------------- */

typedef struct rule {
    const char *cmd;   /* a prefix of the command line, or EOD */
    const char *reply; /* without the final CRLF; SILENT or CLOSE */
} rule;

typedef struct script {
    const char *greeting;  /* NULL: "220 mx.test ESMTP"; SILENT: nothing */
    rule rules[3];         /* the first that matches wins; else the defaults below */
    unsigned eod_delay_ms; /* wait before the reply to the end of data */
} script;

typedef struct server server;

typedef struct srv_conn {
    server *srv;
    pthread_t th;
    int fd;
    bool in_data, ended;
    unsigned accepted;     /* RCPTs accepted in the transaction: DATA gets 354 or 554 */
    char log[LOG_MAX];     /* command lines, each ending in "\n" (under srv->mu) */
    size_t loglen;
    char *data;            /* DATA bytes as received, final ".\r\n" included (under srv->mu) */
    size_t datalen, datacap;
} srv_conn;

struct server {
    script sc;
    int lfd;
    unsigned port;
    pthread_t th;
    atomic_bool stop;
    pthread_mutex_t mu;
    srv_conn conns[CONNS_MAX];
    size_t nconns;
    unsigned active, max_active, overflow;
};

static const char *default_reply(const srv_conn *c, const char *line)
{
    static const rule defaults[] = {
        {"EHLO", "250-mx.test\r\n250-PIPELINING\r\n250-8BITMIME\r\n250 ENHANCEDSTATUSCODES"},
        {"HELO", "250 mx.test"},      {"MAIL", "250 2.1.0 ok"},     {"RCPT", "250 2.1.5 ok"},
        {"RSET", "250 2.0.0 ok"},     {"NOOP", "250 2.0.0 ok"},     {"QUIT", "221 2.0.0 bye"},
        {EOD, "250 2.0.0 queued"}};
    if (strcmp(line, "DATA") == 0)
        return c->accepted ? "354 go ahead" : "554 5.5.1 no valid recipients";
    for (size_t i = 0; i < sizeof(defaults) / sizeof(defaults[0]); i++)
        if (strncmp(line, defaults[i].cmd, strlen(defaults[i].cmd)) == 0)
            return defaults[i].reply;
    return "500 5.5.1 unknown command";
}

static bool send_reply(int fd, const char *reply)
{
    if (!reply[0])
        return true;
    char out[1024];
    int n = snprintf(out, sizeof(out), "%s\r\n", reply);
    return send(fd, out, (size_t)n, MSG_NOSIGNAL) == n;
}

static void log_line(srv_conn *c, const char *line)
{
    pthread_mutex_lock(&c->srv->mu);
    int n = snprintf(c->log + c->loglen, LOG_MAX - c->loglen, "%s\n", line);
    if (n > 0)
        c->loglen += (size_t)n < LOG_MAX - c->loglen ? (size_t)n : LOG_MAX - 1 - c->loglen;
    pthread_mutex_unlock(&c->srv->mu);
}

static void data_append(srv_conn *c, const char *p, size_t n)
{
    pthread_mutex_lock(&c->srv->mu);
    if (c->datalen + n > c->datacap) {
        size_t cap = (c->datalen + n) * 2;
        char *d = realloc(c->data, cap);
        if (d) {
            c->data = d;
            c->datacap = cap;
        }
    }
    if (c->datalen + n <= c->datacap) { /* a failed realloc shows as missing bytes */
        memcpy(c->data + c->datalen, p, n);
        c->datalen += n;
    }
    pthread_mutex_unlock(&c->srv->mu);
}

/* One command line (or EOD): logs it, answers; false when the connection is to end. */
static bool conn_command(srv_conn *c, const char *line)
{
    const script *sc = &c->srv->sc;
    bool eod = strcmp(line, EOD) == 0;
    log_line(c, eod ? "." : line);
    const char *reply = NULL;
    for (size_t i = 0; i < 3 && sc->rules[i].cmd && !reply; i++)
        if (strncmp(line, sc->rules[i].cmd, strlen(sc->rules[i].cmd)) == 0)
            reply = sc->rules[i].reply;
    if (!reply)
        reply = default_reply(c, line);
    if (eod && sc->eod_delay_ms)
        sleep_ms(sc->eod_delay_ms);
    if (strcmp(reply, CLOSE) == 0)
        return false;
    if (strncmp(line, "MAIL", 4) == 0 || strncmp(line, "RSET", 4) == 0 || eod)
        c->accepted = 0;
    else if (strncmp(line, "RCPT", 4) == 0 && reply[0] == '2')
        c->accepted++;
    else if (strcmp(line, "DATA") == 0 && strncmp(reply, "354", 3) == 0)
        c->in_data = true;
    return send_reply(c->fd, reply) && strncmp(reply, "221", 3) != 0 &&
           strncmp(reply, "421", 3) != 0;
}

/* Handles the complete CRLF lines in buf[0..*len); keeps the rest. */
static bool conn_lines(srv_conn *c, char *buf, size_t *len)
{
    char *start = buf, *end = buf + *len, *crlf;
    bool open = true;
    while (open && (crlf = memmem(start, (size_t)(end - start), "\r\n", 2))) {
        size_t n = (size_t)(crlf - start);
        if (c->in_data) {
            data_append(c, start, n + 2);
            if (n == 1 && start[0] == '.') {
                c->in_data = false;
                open = conn_command(c, EOD);
            }
        } else {
            char line[1024];
            snprintf(line, sizeof(line), "%.*s", (int)n, start);
            open = conn_command(c, line);
        }
        start = crlf + 2;
    }
    *len = (size_t)(end - start);
    memmove(buf, start, *len);
    return open && *len < LINE_BUF; /* a full buffer without CRLF: give up */
}

static void *conn_main(void *arg)
{
    srv_conn *c = arg;
    server *s = c->srv;
    bool open = send_reply(c->fd, s->sc.greeting ? s->sc.greeting : "220 mx.test ESMTP");
    char *buf = malloc(LINE_BUF);
    size_t len = 0;
    long long deadline = now_ms() + CONN_MAX_MS;
    while (buf && open && !atomic_load(&s->stop) && now_ms() < deadline) {
        struct pollfd p = {.fd = c->fd, .events = POLLIN};
        if (poll(&p, 1, 20) <= 0)
            continue;
        ssize_t n = recv(c->fd, buf + len, LINE_BUF - len, 0);
        if (n <= 0)
            break;
        len += (size_t)n;
        open = conn_lines(c, buf, &len);
    }
    free(buf);
    close(c->fd);
    pthread_mutex_lock(&s->mu);
    c->ended = true;
    s->active--;
    pthread_mutex_unlock(&s->mu);
    return NULL;
}

static void *accept_main(void *arg)
{
    server *s = arg;
    while (!atomic_load(&s->stop)) {
        struct pollfd p = {.fd = s->lfd, .events = POLLIN};
        if (poll(&p, 1, 20) <= 0)
            continue;
        int fd = accept4(s->lfd, NULL, NULL, SOCK_CLOEXEC);
        if (fd < 0)
            continue;
        pthread_mutex_lock(&s->mu);
        srv_conn *c = s->nconns < CONNS_MAX ? &s->conns[s->nconns] : NULL;
        if (c) {
            *c = (srv_conn){.srv = s, .fd = fd};
            if (pthread_create(&c->th, NULL, conn_main, c) != 0)
                c = NULL;
        }
        if (c && ++s->active > s->max_active)
            s->max_active = s->active;
        s->nconns += c != NULL;
        s->overflow += c == NULL; /* more connections than any case makes */
        pthread_mutex_unlock(&s->mu);
        if (!c)
            close(fd);
    }
    return NULL;
}

/* A socket bound to 127.0.0.1 on a free port; listening or not. */
static int bound_socket(unsigned *port, bool listening)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(sin);
    if (fd < 0 || bind(fd, (struct sockaddr *)&sin, sizeof(sin)) < 0 ||
        (listening && listen(fd, 16) < 0) ||
        getsockname(fd, (struct sockaddr *)&sin, &len) < 0) {
        if (fd >= 0)
            close(fd);
        return -1;
    }
    *port = ntohs(sin.sin_port);
    return fd;
}

static int server_start(server *s, const script *sc)
{
    memset(s, 0, sizeof(*s));
    s->sc = *sc;
    atomic_init(&s->stop, false);
    pthread_mutex_init(&s->mu, NULL);
    if ((s->lfd = bound_socket(&s->port, true)) < 0)
        return -1;
    if (pthread_create(&s->th, NULL, accept_main, s) != 0) {
        close(s->lfd);
        return -1;
    }
    return 0;
}

static void server_stop(server *s)
{
    atomic_store(&s->stop, true);
    pthread_join(s->th, NULL);
    for (size_t i = 0; i < s->nconns; i++) {
        pthread_join(s->conns[i].th, NULL);
        free(s->conns[i].data);
    }
    close(s->lfd);
    pthread_mutex_destroy(&s->mu);
}

/* Copies of what the server saw, taken under its mutex. */
typedef struct server_view {
    size_t nconns;
    unsigned max_active, overflow;
    bool all_ended;
    char log0[LOG_MAX];   /* the first connection's command lines */
    size_t datalen;       /* the DATA bytes of every connection, in connection order */
    char data[512 * 1024];
} server_view;

static void server_look(server *s, server_view *v)
{
    pthread_mutex_lock(&s->mu);
    v->nconns = s->nconns;
    v->max_active = s->max_active;
    v->overflow = s->overflow;
    v->all_ended = true;
    v->datalen = 0;
    snprintf(v->log0, sizeof(v->log0), "%.*s", s->nconns ? (int)s->conns[0].loglen : 0,
             s->conns[0].log);
    for (size_t i = 0; i < s->nconns; i++) {
        const srv_conn *c = &s->conns[i];
        v->all_ended &= c->ended;
        size_t n = c->datalen < sizeof(v->data) - v->datalen ? c->datalen
                                                             : sizeof(v->data) - v->datalen;
        if (n) /* c->data is NULL before any DATA */
            memcpy(v->data + v->datalen, c->data, n);
        v->datalen += n;
    }
    pthread_mutex_unlock(&s->mu);
}

/* Waits (bounded) until the server's first connection logged a line starting with prefix,
 * or (prefix NULL) until every connection ended; false on timeout. */
static bool server_wait(server *s, const char *prefix, server_view *v, long long ms)
{
    for (long long end = now_ms() + ms; now_ms() < end; sleep_ms(10)) {
        server_look(s, v);
        if (prefix ? strstr(v->log0, prefix) != NULL : v->all_ended)
            return true;
    }
    return false;
}

/* ---- the relay on its loop thread ----------------------------------------------------------- */

typedef struct fixture {
    struct event_base *base;
    ph_resolver *resolver;
    ph_relay *relay;
    int ctl[2];               /* 'S': ph_relay_shutdown; 'Q': that and leave the loop */
    struct event *ctl_ev;
    pthread_t loop;
    bool loop_running, srv_running;
    server srv;
    int msg_fd;
    size_t msg_size;
    int refused_fd;           /* bound, not listening: connections to its port are refused */
    pthread_t helpers[HELPERS_MAX];
    size_t nhelpers;
    server_view view;
    const void *param;        /* the table row of a table-driven test */
    char *scratch[2];         /* a test's buffers, freed by teardown */
} fixture;

static void ctl_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)what;
    fixture *f = arg;
    char cmd;
    while (read(fd, &cmd, 1) == 1) {
        ph_relay_shutdown(f->relay);
        if (cmd == 'Q')
            event_base_loopbreak(f->base);
    }
}

static void ctl_send(fixture *f, char cmd)
{
    assert_int_equal(write(f->ctl[1], &cmd, 1), 1);
}

static void *loop_main(void *arg)
{
    fixture *f = arg;
    event_base_loop(f->base, EVLOOP_NO_EXIT_ON_EMPTY);
    return NULL;
}

/* The queued message: a temporary file of CRLF text, read by the relay with pread. */
static void set_message(fixture *f, const char *text, size_t len)
{
    if (f->msg_fd >= 0)
        close(f->msg_fd);
    char path[] = "/tmp/test_relay.XXXXXX";
    f->msg_fd = mkstemp(path);
    assert_true(f->msg_fd >= 0);
    unlink(path);
    assert_int_equal(write(f->msg_fd, text, len), (ssize_t)len);
    f->msg_size = len;
}

static const char DEFAULT_MSG[] = "Subject: relay test\r\n\r\nline one\r\n.leading dot\r\n";
static const char DEFAULT_WIRE[] = "Subject: relay test\r\n\r\nline one\r\n..leading dot\r\n.\r\n";

static int teardown(void **state);

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof(*f));
    if (!f)
        return -1;
    f->param = *state;
    *state = f;
    f->msg_fd = f->refused_fd = f->ctl[0] = f->ctl[1] = -1;
    const char *fwd[] = {"127.0.0.1@9"}; /* never asked: address literals need no DNS */
    ph_resolver_opts ro = {.forwarders = fwd, .nforwarders = 1, .timeout_ms = 1000};
    char err[200];
    if (!(f->base = event_base_new()) ||
        ph_resolver_new(f->base, &ro, &f->resolver, err, sizeof(err)) < 0 ||
        pipe2(f->ctl, O_NONBLOCK | O_CLOEXEC) < 0 ||
        !(f->ctl_ev = event_new(f->base, f->ctl[0], EV_READ | EV_PERSIST, ctl_cb, f)) ||
        event_add(f->ctl_ev, NULL) < 0) {
        teardown(state);
        return -1;
    }
    set_message(f, DEFAULT_MSG, sizeof(DEFAULT_MSG) - 1);
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    if (f->loop_running) {
        ctl_send(f, 'Q');
        pthread_join(f->loop, NULL);
    }
    for (size_t i = 0; i < f->nhelpers; i++) /* the shutdown answered them all */
        pthread_join(f->helpers[i], NULL);
    ph_relay_free(f->relay);
    if (f->srv_running)
        server_stop(&f->srv);
    if (f->ctl_ev)
        event_free(f->ctl_ev);
    ph_resolver_free(f->resolver);
    if (f->base)
        event_base_free(f->base);
    int fds[] = {f->ctl[0], f->ctl[1], f->msg_fd, f->refused_fd};
    for (size_t i = 0; i < sizeof(fds) / sizeof(fds[0]); i++)
        if (fds[i] >= 0)
            close(fds[i]);
    free(f->scratch[0]);
    free(f->scratch[1]);
    free(f);
    return 0;
}

/* mx_port 0: the scripted server's (start fills it in) */
static ph_relay_options default_options(fixture *f)
{
    return (ph_relay_options){.resolver = f->resolver, .helo_name = "relay.test",
                              .mx_tls = PH_SMTP_TLS_NONE,
                              .connect_timeout_ms = 3000, .command_timeout_ms = 3000,
                              .data_timeout_ms = 3000, .dest_concurrency = 4, .idle_ms = 3000};
}

/* The server (sc NULL: none) and the relay with its loop thread; o NULL: the defaults. */
static void start(fixture *f, const script *sc, const ph_relay_options *o)
{
    if (sc) {
        assert_int_equal(server_start(&f->srv, sc), 0);
        f->srv_running = true;
    }
    ph_relay_options opts = o ? *o : default_options(f);
    if (!opts.mx_port)
        opts.mx_port = f->srv.port;
    f->relay = ph_relay_new(f->base, &opts);
    assert_non_null(f->relay);
    assert_int_equal(pthread_create(&f->loop, NULL, loop_main, f), 0);
    f->loop_running = true;
}

/* ---- deliveries ------------------------------------------------------------------------------ */

typedef struct delivery {
    fixture *f;
    const char *rcpts[RCPTS_MAX];
    ph_client_result results[RCPTS_MAX];
    char exchanger[RCPTS_MAX][PH_RELAY_EXCHANGER_MAX];
    ph_relay_request req;
    long long elapsed_ms;
    atomic_bool done;
} delivery;

static void delivery_init(delivery *d, fixture *f, size_t nrcpts)
{
    static const char *const names[RCPTS_MAX] = {"a@[127.0.0.1]", "b@[127.0.0.1]",
                                                 "c@[127.0.0.1]"};
    memset(d, 0, sizeof(*d));
    atomic_init(&d->done, false);
    d->f = f;
    for (size_t i = 0; i < nrcpts; i++)
        d->rcpts[i] = names[i];
    d->req = (ph_relay_request){
        .qid = "TESTQID", .domain = "[127.0.0.1]", .msg_fd = f->msg_fd,
        .env = {.from = "s@example.test", .rcpts = d->rcpts, .nrcpts = nrcpts,
                .size = f->msg_size},
        .results = d->results, .exchanger = d->exchanger};
}

static void deliver(delivery *d)
{
    ph_relay_request *p = &d->req;
    long long t0 = now_ms();
    ph_relay_deliver(d->f->relay, &p, 1);
    d->elapsed_ms = now_ms() - t0;
    atomic_store(&d->done, true);
}

static void *deliver_main(void *arg)
{
    deliver(arg);
    return NULL;
}

static void deliver_async(fixture *f, delivery *d)
{
    assert_true(f->nhelpers < HELPERS_MAX);
    assert_int_equal(pthread_create(&f->helpers[f->nhelpers], NULL, deliver_main, d), 0);
    f->nhelpers++;
}

static void join_helpers(fixture *f)
{
    for (size_t i = 0; i < f->nhelpers; i++)
        pthread_join(f->helpers[i], NULL);
    f->nhelpers = 0;
}

/* The exchanger ends with "[127.0.0.1]:PORT" (what precedes it is the host's name). */
static void assert_exchanger(const char *ex, unsigned port)
{
    char want[64];
    snprintf(want, sizeof(want), "[127.0.0.1]:%u", port);
    size_t n = strlen(ex), m = strlen(want);
    if (n < m || strcmp(ex + n - m, want) != 0)
        fail_msg("exchanger \"%s\" does not name %s", ex, want);
}

/* ---- outcomes of one delivery ---------------------------------------------------------------- */

typedef struct want_result {
    int code;
    const char *enh, *text; /* text: a part of the result's text */
    bool remote;
} want_result;

typedef struct outcome_case {
    const char *name;
    script sc;
    unsigned command_timeout_ms; /* 0: the default */
    size_t nrcpts;
    want_result want[2];
    bool conn_ends;              /* the connection ends: wait for it before looking */
    const char *want_log;        /* the server's command lines; NULL: not checked */
    bool want_data;              /* the server got DEFAULT_WIRE */
} outcome_case;

static const outcome_case OUTCOMES[] = {
    {.name = "accepted", .nrcpts = 1, .want = {{250, "2.0.0", "queued", true}},
     .want_log = "EHLO relay.test\nMAIL FROM:<s@example.test>\nRCPT TO:<a@[127.0.0.1]>\nDATA\n.\n",
     .want_data = true},
    {.name = "partial acceptance", .nrcpts = 2,
     .sc = {.rules = {{"RCPT TO:<b@", "550 5.1.1 no such user"}}},
     .want = {{250, "2.0.0", "queued", true}, {550, "5.1.1", "no such user", true}},
     .want_log = "EHLO relay.test\nMAIL FROM:<s@example.test>\nRCPT TO:<a@[127.0.0.1]>\n"
                 "RCPT TO:<b@[127.0.0.1]>\nDATA\n.\n",
     .want_data = true},
    {.name = "4xx to RCPT", .nrcpts = 1, .sc = {.rules = {{"RCPT", "450 4.2.1 mailbox busy"}}},
     .want = {{450, "4.2.1", "mailbox busy", true}}},
    {.name = "421 greeting", .nrcpts = 2, .sc = {.greeting = "421 4.3.2 try later"},
     .want = {{421, "4.3.2", "try later", true}, {421, "4.3.2", "try later", true}},
     .conn_ends = true, .want_log = ""},
    {.name = "greeting timeout", .nrcpts = 1, .sc = {.greeting = SILENT},
     .command_timeout_ms = 300, .want = {{451, "4.4.2", "greeting", false}}, .conn_ends = true,
     .want_log = ""},
    {.name = "MAIL refused", .nrcpts = 2, .sc = {.rules = {{"MAIL", "553 5.7.1 sender refused"}}},
     .want = {{553, "5.7.1", "sender refused", true}, {553, "5.7.1", "sender refused", true}}},
    {.name = "end of data refused", .nrcpts = 2,
     .sc = {.rules = {{EOD, "554 5.6.0 content refused"}, {"RCPT TO:<b@", "550 5.1.1 no"}}},
     .want = {{554, "5.6.0", "content refused", true}, {550, "5.1.1", "no", true}},
     .want_data = true},
    {.name = "server closes at MAIL", .nrcpts = 1, .sc = {.rules = {{"MAIL", CLOSE}}},
     .want = {{451, "4.4.2", "", false}}, .conn_ends = true},
};

static void run_outcome(void **state, const outcome_case *oc)
{
    fixture *f = *state;
    ph_relay_options o = default_options(f);
    if (oc->command_timeout_ms)
        o.command_timeout_ms = oc->command_timeout_ms;
    start(f, &oc->sc, &o);
    delivery d;
    delivery_init(&d, f, oc->nrcpts);
    deliver(&d);
    for (size_t i = 0; i < oc->nrcpts; i++) {
        const ph_client_result *r = &d.results[i];
        const want_result *w = &oc->want[i];
        if (r->code != w->code || strcmp(r->enh, w->enh) != 0 || !strstr(r->text, w->text) ||
            r->remote != w->remote)
            fail_msg("%s: rcpt %zu: got %d %s \"%s\" remote=%d, want %d %s \"%s\" remote=%d",
                     oc->name, i, r->code, r->enh, r->text, r->remote, w->code, w->enh, w->text,
                     w->remote);
        assert_exchanger(d.exchanger[i], f->srv.port);
    }
    assert_true(d.elapsed_ms < 2500);
    if (oc->conn_ends)
        assert_true(server_wait(&f->srv, NULL, &f->view, 3000));
    else
        server_look(&f->srv, &f->view);
    assert_int_equal(f->view.nconns, 1); /* no second attempt: one host, one address */
    if (oc->want_log)
        assert_string_equal(f->view.log0, oc->want_log);
    if (oc->want_data) {
        assert_int_equal(f->view.datalen, sizeof(DEFAULT_WIRE) - 1);
        assert_memory_equal(f->view.data, DEFAULT_WIRE, sizeof(DEFAULT_WIRE) - 1);
    }
}

static void test_outcome(void **state)
{
    run_outcome(state, ((fixture *)*state)->param);
}

/* ---- connections ------------------------------------------------------------------------------ */

static void test_connection_refused(void **state)
{
    fixture *f = *state;
    unsigned port = 0;
    f->refused_fd = bound_socket(&port, false);
    assert_true(f->refused_fd >= 0);
    ph_relay_options o = default_options(f);
    o.mx_port = port;
    start(f, NULL, &o);
    delivery d;
    delivery_init(&d, f, 2);
    deliver(&d);
    char where[64];
    snprintf(where, sizeof(where), "[127.0.0.1]:%u", port);
    for (size_t i = 0; i < 2; i++) {
        assert_int_equal(d.results[i].code, 451);
        assert_string_equal(d.results[i].enh, "4.4.1");
        assert_false(d.results[i].remote);
        assert_non_null(strstr(d.results[i].text, where));
        assert_exchanger(d.exchanger[i], port);
    }
    assert_true(d.elapsed_ms < 2500);
}

/* Two deliveries one after the other: one connection, one EHLO, two transactions; the
 * second starts with MAIL after a final reply, with RSET after a refused transaction. */
typedef struct reuse_case {
    const char *name;
    script sc;
    int first_code;
    const char *want_log;
} reuse_case;

static const reuse_case REUSES[] = {
    {.name = "reuse after a delivery", .first_code = 250,
     .want_log = "EHLO relay.test\nMAIL FROM:<s@example.test>\nRCPT TO:<a@[127.0.0.1]>\nDATA\n.\n"
                 "MAIL FROM:<s@example.test>\nRCPT TO:<a@[127.0.0.1]>\nDATA\n.\n"},
    {.name = "reuse after a refusal (RSET)",
     .sc = {.rules = {{"RCPT TO:<a@", "450 4.2.1 busy"}, {"RCPT TO:<b@", "250 2.1.5 ok"}}},
     .first_code = 450,
     .want_log = "EHLO relay.test\nMAIL FROM:<s@example.test>\nRCPT TO:<a@[127.0.0.1]>\nDATA\n"
                 "RSET\nMAIL FROM:<s@example.test>\nRCPT TO:<a@[127.0.0.1]>\n"
                 "RCPT TO:<b@[127.0.0.1]>\nDATA\n.\n"},
};

static void run_reuse(void **state, const reuse_case *rc)
{
    fixture *f = *state;
    start(f, &rc->sc, NULL);
    delivery d1, d2;
    delivery_init(&d1, f, 1);
    deliver(&d1);
    assert_int_equal(d1.results[0].code, rc->first_code);
    delivery_init(&d2, f, rc->first_code == 250 ? 1 : 2);
    deliver(&d2);
    for (size_t i = 0; i < d2.req.env.nrcpts; i++)
        assert_int_equal(d2.results[i].code, i == 0 && rc->first_code != 250 ? 450 : 250);
    server_look(&f->srv, &f->view);
    assert_int_equal(f->view.nconns, 1);
    assert_string_equal(f->view.log0, rc->want_log);
}

static void test_reuse(void **state)
{
    run_reuse(state, ((fixture *)*state)->param);
}

static void test_concurrency_one(void **state)
{
    fixture *f = *state;
    ph_relay_options o = default_options(f);
    o.dest_concurrency = 1;
    start(f, &(script){.eod_delay_ms = 150}, &o); /* the deliveries overlap */
    delivery d[3];
    for (size_t i = 0; i < 3; i++) {
        delivery_init(&d[i], f, 1);
        deliver_async(f, &d[i]);
    }
    join_helpers(f);
    for (size_t i = 0; i < 3; i++)
        assert_int_equal(d[i].results[0].code, 250);
    server_look(&f->srv, &f->view);
    assert_int_equal(f->view.max_active, 1);
    assert_int_equal(f->view.overflow, 0);
    assert_int_equal(f->view.nconns, 1); /* the waiters took the session over */
    assert_int_equal(f->view.datalen, 3 * (sizeof(DEFAULT_WIRE) - 1));
}

/* destination_rate 2: a second session only 500 ms after the first, so a third delivery
 * takes over the first session when its transaction ends (800 ms) instead of a new one. */
static void test_rate_limit(void **state)
{
    fixture *f = *state;
    ph_relay_options o = default_options(f);
    o.dest_concurrency = 3;
    o.dest_rate = 2;
    start(f, &(script){.eod_delay_ms = 800}, &o);
    delivery d[3];
    for (size_t i = 0; i < 3; i++) {
        delivery_init(&d[i], f, 1);
        deliver_async(f, &d[i]);
    }
    join_helpers(f);
    long long slowest = 0;
    for (size_t i = 0; i < 3; i++) {
        assert_int_equal(d[i].results[0].code, 250);
        slowest = d[i].elapsed_ms > slowest ? d[i].elapsed_ms : slowest;
    }
    server_look(&f->srv, &f->view);
    assert_int_equal(f->view.nconns, 2);
    assert_true(slowest >= 1200); /* the second session started >= 500 ms after the first */
}

/* ---- shutdown ---------------------------------------------------------------------------------- */

static void test_shutdown_while_waiting(void **state)
{
    fixture *f = *state;
    ph_relay_options o = default_options(f);
    o.command_timeout_ms = o.data_timeout_ms = 10000; /* only the shutdown can end it */
    start(f, &(script){.rules = {{"MAIL", SILENT}}}, &o);
    delivery d;
    delivery_init(&d, f, 2);
    deliver_async(f, &d);
    assert_true(server_wait(&f->srv, "MAIL FROM", &f->view, 3000));
    long long t0 = now_ms();
    ctl_send(f, 'S');
    while (!atomic_load(&d.done) && now_ms() - t0 < 3000)
        sleep_ms(5);
    assert_true(atomic_load(&d.done));
    join_helpers(f);
    for (size_t i = 0; i < 2; i++) {
        assert_int_equal(d.results[i].code, 451);
        assert_string_equal(d.results[i].enh, "4.3.2");
        assert_false(d.results[i].remote);
    }
    /* later calls return at once, deferred the same way */
    delivery late;
    delivery_init(&late, f, 1);
    deliver(&late);
    assert_int_equal(late.results[0].code, 451);
    assert_string_equal(late.results[0].enh, "4.3.2");
    assert_string_equal(late.exchanger[0], "");
    assert_true(server_wait(&f->srv, NULL, &f->view, 3000)); /* the session was closed */
}

/* ---- message files on the wire ---------------------------------------------------------------- */

static void test_message_files(void **state)
{
    fixture *f = *state;
    start(f, &(script){0}, NULL);
    /* a message larger than the stream's chunks and buffers, dots at line starts throughout,
     * one line of a dot alone (which would end the data unstuffed) */
    size_t big_cap = 200 * 1024;
    char *big = f->scratch[0] = malloc(big_cap), *big_wire = f->scratch[1] = malloc(big_cap * 2);
    assert_true(big && big_wire);
    size_t bl = 0, wl = 0;
    for (unsigned i = 0; bl + 100 < big_cap; i++) {
        const char *lead = i % 3 == 0 ? "." : i % 3 == 1 ? ".." : "x";
        int n = snprintf(big + bl, big_cap - bl, "%s%s line %u\r\n", lead,
                         i % 7 == 0 ? "" : "0123456789abcdefghijklmnopqrstuvwxyz", i);
        wl += (size_t)snprintf(big_wire + wl, big_cap * 2 - wl, "%s%.*s",
                               lead[0] == '.' ? "." : "", n, big + bl);
        bl += (size_t)n;
    }
    memcpy(big + bl, ".\r\n", 3);
    bl += 3;
    wl += (size_t)snprintf(big_wire + wl, big_cap * 2 - wl, "..\r\n.\r\n");
    struct {
        const char *text, *wire;
        size_t tlen, wlen;
    } rows[] = {
        {DEFAULT_MSG, DEFAULT_WIRE, 0, 0},
        {".first\r\nno final CRLF", "..first\r\nno final CRLF\r\n.\r\n", 0, 0},
        {"a\r\n.\r\n..\r\n", "a\r\n..\r\n...\r\n.\r\n", 0, 0}, /* dot lines */
        {"", ".\r\n", 0, 0}, /* empty: no CRLF before the dot */
        {big, big_wire, bl, wl}, /* not NUL-terminated: lengths given */
    };
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        if (!rows[i].tlen) {
            rows[i].tlen = strlen(rows[i].text);
            rows[i].wlen = strlen(rows[i].wire);
        }
        set_message(f, rows[i].text, rows[i].tlen);
        server_look(&f->srv, &f->view);
        size_t before = f->view.datalen; /* the session is reused: its bytes add up */
        delivery d;
        delivery_init(&d, f, 1);
        deliver(&d);
        if (d.results[0].code != 250)
            fail_msg("row %zu: %d %s", i, d.results[0].code, d.results[0].text);
        server_look(&f->srv, &f->view);
        if (f->view.datalen - before != rows[i].wlen ||
            memcmp(f->view.data + before, rows[i].wire, rows[i].wlen) != 0)
            fail_msg("row %zu: the server got %zu bytes, want %zu", i, f->view.datalen - before,
                     rows[i].wlen);
    }
}

int main(void)
{
    enum { NOUT = sizeof(OUTCOMES) / sizeof(OUTCOMES[0]) };
    enum { NREUSE = sizeof(REUSES) / sizeof(REUSES[0]) };
    struct CMUnitTest tests[NOUT + NREUSE + 4] = {
        cmocka_unit_test_setup_teardown(test_connection_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_concurrency_one, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rate_limit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_shutdown_while_waiting, setup, teardown),
        cmocka_unit_test_setup_teardown(test_message_files, setup, teardown),
    };
    size_t n = 4;
    for (size_t i = 0; i < NOUT; i++)
        tests[n++] = (struct CMUnitTest){OUTCOMES[i].name, test_outcome, setup, teardown,
                                         (void *)&OUTCOMES[i]};
    for (size_t i = 0; i < NREUSE; i++)
        tests[n++] = (struct CMUnitTest){REUSES[i].name, test_reuse, setup, teardown,
                                         (void *)&REUSES[i]};
    return _cmocka_run_group_tests("test_relay", tests, n, NULL, NULL);
}
