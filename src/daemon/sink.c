/*
 * sink.c - `posthorn sink`, the development sink: accepts every message and prints it with its
 * envelope (like python -m smtpd -c DebuggingServer), and with --store writes it durably as
 * DIR/<qid>.eml + DIR/<qid>.json before answering 250. Built only on the public library API.
 *
 * Owns one message buffer per session (the session's user pointer), freed at disconnect.
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "daemon/commands.h"
#include "daemon/envelope.h"
#include "daemon/logbuf.h"
#include "daemon/runner.h"

#define KEEP_BUFFER_MAX (1u << 20) /* give back bigger buffers after each message */

typedef struct sink_config {
    const char *store_dir;
    bool quiet;
} sink_config;

typedef struct sink_msg {
    char *data;
    size_t len, cap;
} sink_msg;

static bool sink_buffers(const sink_config *sc)
{
    return sc->store_dir || !sc->quiet;
}

static posthorn_verdict on_data_start(posthorn_session *s, void *user)
{
    if (!sink_buffers(user))
        return posthorn_accept();
    sink_msg *m = posthorn_session_user(s);
    if (!m) {
        m = calloc(1, sizeof(*m));
        if (!m)
            return posthorn_reject(451, "4.3.0", "Out of memory, try again later");
        posthorn_session_set_user(s, m);
    }
    m->len = 0;
    return posthorn_accept();
}

static posthorn_verdict on_data_chunk(posthorn_session *s, const void *data, size_t len,
                                      void *user)
{
    sink_msg *m = posthorn_session_user(s);
    if (!sink_buffers(user) || !m)
        return posthorn_accept();
    if (m->len + len > m->cap) {
        size_t cap = m->cap ? m->cap : 8192;
        while (cap < m->len + len)
            cap *= 2;
        char *d = realloc(m->data, cap);
        if (!d)
            return posthorn_reject(451, "4.3.0", "Out of memory, try again later");
        m->data = d;
        m->cap = cap;
    }
    memcpy(m->data + m->len, data, len);
    m->len += len;
    return posthorn_accept();
}

static void release_big_buffer(sink_msg *m)
{
    m->len = 0;
    if (m->cap > KEEP_BUFFER_MAX) {
        free(m->data);
        m->data = NULL;
        m->cap = 0;
    }
}

static posthorn_verdict on_message(posthorn_session *s, void *user)
{
    const sink_config *sc = user;
    sink_msg *m = posthorn_session_user(s);
    if (!sink_buffers(sc) || !m)
        return posthorn_accept();
    size_t n = posthorn_session_rcpt_count(s);
    const char **rcpts = malloc((n ? n : 1) * sizeof(*rcpts));
    if (!rcpts)
        return posthorn_reject(451, "4.3.0", "Out of memory, try again later");
    for (size_t i = 0; i < n; i++)
        rcpts[i] = posthorn_session_rcpt(s, i);
    sink_envelope env = {
        .qid = posthorn_session_queue_id(s), .client_ip = posthorn_session_client_ip(s),
        .client_port = posthorn_session_client_port(s), .helo = posthorn_session_helo(s),
        .mail_from = posthorn_session_mail_from(s), .rcpts = rcpts, .nrcpts = n,
        .size = m->len, .tls = posthorn_session_tls(s), .auth = posthorn_session_auth_user(s),
        .received_at = time(NULL),
    };
    int r = sc->store_dir ? envelope_store(sc->store_dir, &env, m->data, m->len) : 0;
    if (r == 0 && !sc->quiet)
        envelope_print(stdout, &env, m->data, m->len);
    free(rcpts);
    release_big_buffer(m);
    if (r < 0) {
        logbuf_now(POSTHORN_LOG_ERROR, "event=store_failed qid=%s error=\"%s\"", env.qid,
                   strerror(-r));
        return posthorn_reject(451, "4.3.0", "Error: could not store the message, try again later");
    }
    return posthorn_accept();
}

static void on_abort(posthorn_session *s, void *user)
{
    (void)user;
    sink_msg *m = posthorn_session_user(s);
    if (m)
        release_big_buffer(m);
}

static void on_disconnect(posthorn_session *s, void *user)
{
    (void)user;
    sink_msg *m = posthorn_session_user(s);
    if (m) {
        free(m->data);
        free(m);
        posthorn_session_set_user(s, NULL);
    }
}

/* ---- command line ---------------------------------------------------------------------- */

static const char sink_help[] =
    "usage: posthorn sink [options]\n"
    "\n"
    "A development SMTP sink: accepts every message and prints it with its envelope to\n"
    "stdout (unless --quiet). With --store DIR each message is also written durably as\n"
    "DIR/<queue-id>.eml (exactly as received, plus a Received: header) and DIR/<queue-id>.json\n"
    "(id, received_at, client_ip, helo, mail_from, rcpt_to, size, tls, auth) before the 250\n"
    "reply, which names the queue id. Default listener: 127.0.0.1:2525.\n"
    "\n"
    "  --store DIR            also store each message in DIR (created if missing)\n"
    "  --quiet                do not print messages\n"
    "%s"
    "  -h, --help             this help\n";

int cmd_sink(int argc, char **argv)
{
    static sink_config sc;
    server_cli cli;
    server_cli_init(&cli);
    cli.options.limits.max_per_ip = 0; /* a development sink: local test clients open many */
    enum { OPT_STORE = 1, OPT_QUIET };
    struct option longopts[40] = {{"store", required_argument, NULL, OPT_STORE},
                                  {"quiet", no_argument, NULL, OPT_QUIET},
                                  {"help", no_argument, NULL, 'h'}};
    size_t n = 3;
    for (const struct option *o = server_cli_longopts; o->name; o++)
        longopts[n++] = *o;
    int opt;
    optind = 1;
    while ((opt = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        int r = server_cli_option(&cli, opt, optarg);
        if (r < 0)
            return 2;
        if (r > 0)
            continue;
        if (opt == OPT_STORE) {
            sc.store_dir = optarg;
        } else if (opt == OPT_QUIET) {
            sc.quiet = true;
        } else if (opt == 'h') {
            printf(sink_help, server_cli_help);
            return 0;
        } else {
            fprintf(stderr, "Try 'posthorn sink --help'.\n");
            return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "posthorn sink: unexpected argument '%s'\n", argv[optind]);
        return 2;
    }
    if (sc.store_dir && mkdir(sc.store_dir, 0750) < 0 && errno != EEXIST) {
        fprintf(stderr, "posthorn sink: cannot create %s: %s\n", sc.store_dir, strerror(errno));
        return 1;
    }
    if (!cli.nlisten)
        cli.listen[cli.nlisten++] = "127.0.0.1:2525";
    static char outbuf[1 << 16]; /* one write per printed message (flushed per message) */
    setvbuf(stdout, outbuf, _IOFBF, sizeof(outbuf));
    static const posthorn_hooks hooks = {
        .on_data_start = on_data_start, .on_data_chunk = on_data_chunk,
        .on_message = on_message, .on_abort = on_abort, .on_disconnect = on_disconnect,
    };
    runner_config rc = {.listen = cli.listen, .nlisten = cli.nlisten, .workers = cli.workers,
                        .log_level = cli.log_level, .hooks = &hooks, .options = &cli.options,
                        .user = &sc};
    return runner_run(&rc);
}
