/*
 * sink.c - `posthorn sink`, the development sink: accepts every message and prints it with its
 * envelope (like python -m smtpd -c DebuggingServer), and with --store writes it durably as
 * DIR/<qid>.eml + DIR/<qid>.json before answering 250 (delivery.c). Here: its options, TLS
 * for development (a self-signed certificate when none is given) and AUTH switches. Built only
 * on the public library API.
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "daemon/commands.h"
#include "daemon/logbuf.h"
#include "daemon/delivery.h"
#include "daemon/passwd.h"
#include "daemon/runner.h"

/* ---- TLS for the sink ------------------------------------------------------------------ */

typedef struct sink_tls {
    bool on;
    const char *cert, *key;
    const char *implicit[MAX_LISTEN];
    unsigned nimplicit;
    posthorn_auth_mode auth;  /* what the listeners offer */
    char tmpdir[64];          /* self-signed certificate lives here, removed at exit */
    char cert_path[128], key_path[128];
} sink_tls;

/* Options in the order of the enum after OPT_TLS: --tls, --tls-cert, --tls-key, --listen-tls. */
static int sink_tls_option(sink_tls *t, int which, const char *arg)
{
    switch (which) {
    case 0: t->on = true; return 1;
    case 1: t->cert = arg; t->on = true; return 1;
    case 2: t->key = arg; return 1;
    case 3:
        if (t->nimplicit == MAX_LISTEN)
            return fprintf(stderr, "posthorn sink: too many --listen-tls\n"), -1;
        t->implicit[t->nimplicit++] = arg;
        return 1;
    }
    return 0;
}

/* Without --tls-cert: a self-signed certificate in a private temporary directory. */
static int make_self_signed(sink_tls *t, const char *hostname)
{
    snprintf(t->tmpdir, sizeof(t->tmpdir), "/tmp/posthorn-sink-XXXXXX");
    if (!mkdtemp(t->tmpdir)) {
        t->tmpdir[0] = '\0';
        return fprintf(stderr, "posthorn sink: mkdtemp: %s\n", strerror(errno)), -1;
    }
    snprintf(t->cert_path, sizeof(t->cert_path), "%s/cert.pem", t->tmpdir);
    snprintf(t->key_path, sizeof(t->key_path), "%s/key.pem", t->tmpdir);
    if (posthorn_tls_make_self_signed(hostname, t->cert_path, t->key_path) < 0)
        return -1;
    t->cert = t->cert_path;
    t->key = t->key_path;
    logbuf_now(POSTHORN_LOG_INFO, "event=tls_selfsigned cert=%s key=%s host=%s", t->cert,
               t->key, hostname);
    return 0;
}

static int sink_tls_setup(sink_tls *t, server_cli *cli, posthorn_listener_options *starttls,
                          posthorn_listener_options *implicit,
                          const posthorn_listener_options **lopts)
{
    static posthorn_listener_options plain;
    plain = (posthorn_listener_options){.auth = t->auth};
    for (unsigned i = 0; i < cli->nlisten; i++)
        lopts[i] = &plain;
    if ((t->cert == NULL) != (t->key == NULL))
        return fprintf(stderr, "posthorn sink: --tls-cert and --tls-key go together\n"), -1;
    if (!t->on && !t->nimplicit)
        return 0;
    char host[256] = "localhost";
    if (cli->options.hostname)
        snprintf(host, sizeof(host), "%s", cli->options.hostname);
    else
        gethostname(host, sizeof(host) - 1);
    if (!t->cert && make_self_signed(t, host) < 0)
        return -1;
    *starttls = (posthorn_listener_options){.tls = POSTHORN_TLS_STARTTLS, .cert_file = t->cert,
                                            .key_file = t->key, .auth = t->auth};
    *implicit = *starttls;
    implicit->tls = POSTHORN_TLS_IMPLICIT;
    for (unsigned i = 0; i < cli->nlisten; i++)
        lopts[i] = t->on ? starttls : &plain;
    for (unsigned i = 0; i < t->nimplicit && cli->nlisten < MAX_LISTEN; i++) {
        lopts[cli->nlisten] = implicit;
        cli->listen[cli->nlisten++] = t->implicit[i];
    }
    return 0;
}

static void sink_tls_cleanup(sink_tls *t)
{
    if (!t->tmpdir[0])
        return;
    unlink(t->cert_path);
    unlink(t->key_path);
    rmdir(t->tmpdir);
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
    "  --tls                  offer STARTTLS on every --listen; without --tls-cert a\n"
    "                         self-signed certificate is made at start (path logged)\n"
    "  --tls-cert FILE        PEM certificate chain (implies --tls)\n"
    "  --tls-key FILE         PEM private key for --tls-cert\n"
    "  --listen-tls ADDR:PORT listen with implicit TLS (RFC 8314, port 465 style; repeatable)\n"
    "  --auth-file FILE       offer AUTH PLAIN/LOGIN (under TLS) checked against FILE, lines\n"
    "                         user:crypt-hash (see posthorn passwd)\n"
    "  --auth-accept-any      offer AUTH and accept any user and password (development)\n"
    "  --auth-insecure        offer AUTH on unencrypted sessions too\n"
    "%s"
    "  -h, --help             this help\n";

int cmd_sink(int argc, char **argv)
{
    static msg_store sc;
    server_cli cli;
    server_cli_init(&cli);
    cli.options.limits.max_per_ip = 0; /* a development sink: local test clients open many */
    enum { OPT_STORE = 1, OPT_QUIET, OPT_AUTH_FILE, OPT_AUTH_ANY, OPT_AUTH_INSECURE, OPT_TLS,
           OPT_TLS_CERT, OPT_TLS_KEY, OPT_LISTEN_TLS };
    struct option longopts[40] = {{"store", required_argument, NULL, OPT_STORE},
                                  {"quiet", no_argument, NULL, OPT_QUIET},
                                  {"tls", no_argument, NULL, OPT_TLS},
                                  {"tls-cert", required_argument, NULL, OPT_TLS_CERT},
                                  {"tls-key", required_argument, NULL, OPT_TLS_KEY},
                                  {"listen-tls", required_argument, NULL, OPT_LISTEN_TLS},
                                  {"auth-file", required_argument, NULL, OPT_AUTH_FILE},
                                  {"auth-accept-any", no_argument, NULL, OPT_AUTH_ANY},
                                  {"auth-insecure", no_argument, NULL, OPT_AUTH_INSECURE},
                                  {"help", no_argument, NULL, 'h'}};
    size_t n = 10;
    const char *auth_file = NULL;
    bool auth_insecure = false;
    sink_tls tls = {0};
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
        if (sink_tls_option(&tls, opt - OPT_TLS, optarg) > 0)
            continue;
        if (opt == OPT_AUTH_FILE) {
            auth_file = optarg;
        } else if (opt == OPT_AUTH_ANY) {
            sc.auth_any = true;
        } else if (opt == OPT_AUTH_INSECURE) {
            auth_insecure = true;
        } else if (opt == OPT_STORE) {
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
    if (!cli.nlisten && !tls.nimplicit)
        cli.listen[cli.nlisten++] = "127.0.0.1:2525";
    if (auth_file || sc.auth_any)
        tls.auth = auth_insecure ? POSTHORN_AUTH_INSECURE : POSTHORN_AUTH_TLS;
    char err[512];
    if (auth_file && passwd_db_load(auth_file, &sc.passwords, err, sizeof(err)) < 0) {
        fprintf(stderr, "posthorn sink: %s\n", err);
        return 1;
    }
    const posthorn_listener_options *lopts[MAX_LISTEN] = {0};
    posthorn_listener_options starttls, implicit;
    if (sink_tls_setup(&tls, &cli, &starttls, &implicit, lopts) < 0)
        return 1;
    static char outbuf[1 << 16]; /* one write per printed message (flushed per message) */
    setvbuf(stdout, outbuf, _IOFBF, sizeof(outbuf));
    static posthorn_hooks hooks;
    msg_store_hooks(&hooks);
    runner_config rc = {.listen = cli.listen, .listen_opts = lopts, .nlisten = cli.nlisten,
                        .workers = cli.workers, .log_level = cli.log_level, .hooks = &hooks,
                        .options = &cli.options, .user = &sc};
    int status = runner_run(&rc);
    sink_tls_cleanup(&tls);
    passwd_db_free(sc.passwords);
    return status;
}
