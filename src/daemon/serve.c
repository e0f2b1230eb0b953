/*
 * serve.c - `posthorn serve --config FILE`: the configured server. Loads and checks the file
 * (every error with file:line), turns each [listener] into library listener options (TLS mode,
 * certificates incl. SNI, AUTH policy, limits), loads the password file, and runs the message
 * store or discard delivery through the runner (workers, signals, privilege drop).
 *
 * Owns the parsed configuration and the option arrays for the life of the command. Errors in
 * the file or a listener that cannot be set up end the command with status 1 before serving.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "daemon/commands.h"
#include "daemon/config.h"
#include "daemon/delivery.h"
#include "daemon/logbuf.h"
#include "daemon/qmgr_main.h"
#include "daemon/rcpt_policy.h"
#include "daemon/runner.h"

static const char serve_help[] =
    "usage: posthorn serve --config FILE\n"
    "\n"
    "Runs the SMTP server described by FILE (see posthorn.conf(5)): listeners with their\n"
    "roles (mx, submission, submissions), STARTTLS or implicit TLS, AUTH, limits, and the\n"
    "delivery (store_dir, discard, or the durable queue). Runs in the foreground; logs\n"
    "go to stderr or syslog (log_target). SIGTERM/SIGINT: graceful stop; SIGHUP: reload\n"
    "certificates. Check a file first with `posthorn config check FILE`.\n";

/* Everything built from the file that must outlive the running server. */
typedef struct serve_state {
    ph_config *cfg;
    const char *listen[MAX_LISTEN];
    posthorn_listener_options opts[MAX_LISTEN];
    posthorn_limits limits[MAX_LISTEN];
    const posthorn_listener_options *optp[MAX_LISTEN];
    posthorn_tls_sni *sni;
    size_t nsni;
    unsigned nlisten;
    msg_store store;
    rcpt_policy policy;          /* delivery = queue: local domains, relay_networks */
    qmgr_process qmgr;           /* delivery = queue: the queue manager process */
    char hostname[256];
    char control_path[4096];
} serve_state;

static void print_errors(const ph_config_errors *errs)
{
    for (size_t i = 0; i < errs->n; i++)
        fprintf(stderr, "%s\n", errs->v[i].text);
}

/* tls_sni entries "NAME:CERTFILE:KEYFILE" (the parser checked their shape). */
static int build_sni(serve_state *st)
{
    const ph_strlist *l = &st->cfg->g.tls_sni;
    st->sni = calloc(l->n ? l->n : 1, sizeof(*st->sni));
    if (!st->sni)
        return -1;
    for (size_t i = 0; i < l->n; i++) {
        char *name = l->v[i], *c1 = strchr(name, ':');
        char *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
        if (!c2)
            return -1;
        *c1 = *c2 = '\0'; /* the config owns the string; it is not used as text again */
        st->sni[i] = (posthorn_tls_sni){name, c1 + 1, c2 + 1};
    }
    st->nsni = l->n;
    return 0;
}

static const posthorn_tls_mode tls_modes[] = {
    [PH_TLS_NONE] = POSTHORN_TLS_NONE, [PH_TLS_STARTTLS] = POSTHORN_TLS_STARTTLS,
    [PH_TLS_IMPLICIT] = POSTHORN_TLS_IMPLICIT};
static const posthorn_auth_mode auth_modes[] = {
    [PH_AUTH_NONE] = POSTHORN_AUTH_NONE, [PH_AUTH_TLS] = POSTHORN_AUTH_TLS,
    [PH_AUTH_INSECURE] = POSTHORN_AUTH_INSECURE};

static void listener_options(serve_state *st, const ph_config_listener *l,
                             posthorn_listener_options *o, posthorn_limits *lim)
{
    posthorn_limits_default(lim);
    ph_config_listener_limits(st->cfg, l, lim);
    lim->auth_fail_limit = st->cfg->g.auth_fail_limit;
    lim->auth_fail_delay_ms = (unsigned)st->cfg->g.auth_fail_delay_ms;
    const ph_config_shared *s = &l->s;
    *o = (posthorn_listener_options){
        .tls = tls_modes[l->tls],
        .cert_file = s->tls_cert[0] ? s->tls_cert : NULL,
        .key_file = s->tls_key[0] ? s->tls_key : NULL,
        .sni = st->sni, .nsni = st->nsni,
        .tls_min_version = s->tls_min_version == PH_TLS_V1_3 ? "TLSv1.3" : "TLSv1.2",
        .tls_ciphers = s->tls_ciphers[0] ? s->tls_ciphers : NULL,
        .tls_ciphersuites = s->tls_ciphersuites[0] ? s->tls_ciphersuites : NULL,
        .no_session_tickets = !s->tls_session_tickets,
        .handshake_timeout_ms = (unsigned)s->handshake_timeout_ms,
        .require_tls = l->require_tls,
        .auth = auth_modes[l->auth],
        .require_auth = l->require_auth,
        .limits = lim,
    };
}

/* One library listener per address of every [listener] section. */
static int build_listeners(serve_state *st)
{
    for (size_t i = 0; i < st->cfg->nlisteners; i++) {
        const ph_config_listener *l = &st->cfg->listeners[i];
        for (size_t k = 0; k < l->listen.n; k++) {
            if (st->nlisten == MAX_LISTEN) {
                fprintf(stderr, "posthorn serve: more than %d listen addresses\n", MAX_LISTEN);
                return -1;
            }
            unsigned n = st->nlisten++;
            st->listen[n] = l->listen.v[k];
            listener_options(st, l, &st->opts[n], &st->limits[n]);
            st->optp[n] = &st->opts[n];
        }
    }
    return 0;
}

static void warn_config(void *arg, const char *text)
{
    (void)arg;
    logbuf_now(POSTHORN_LOG_WARN, "event=config_warning text=\"%s\"", text);
}

/* delivery = queue: the recipient table and relay rules (before the fork: every process shares
 * them), and the queue manager process. */
static int prepare_queue(serve_state *st)
{
    const ph_config *cfg = st->cfg;
    char err[1024];
    if (rcpt_policy_load(&st->policy, cfg, err, sizeof(err), warn_config, NULL) < 0) {
        fprintf(stderr, "posthorn serve: %s\n", err);
        return -1;
    }
    st->store.policy = &st->policy;
    st->store.max_received = cfg->g.max_received_headers;
    if (cfg->g.hostname[0])
        snprintf(st->hostname, sizeof(st->hostname), "%s", cfg->g.hostname);
    else if (gethostname(st->hostname, sizeof(st->hostname) - 1) < 0)
        snprintf(st->hostname, sizeof(st->hostname), "localhost");
    qmgr_control_path(cfg, st->control_path, sizeof(st->control_path));
    st->qmgr = (qmgr_process){.cfg = cfg, .policy = &st->policy, .hostname = st->hostname,
                              .control_path = st->control_path};
    return 0;
}

/* SIGHUP in the supervisor: the mailboxes and aliases files again (the config file itself is
 * read at start only). A table that fails to load leaves the old one in place. */
static int reload_recipients(void *arg)
{
    serve_state *st = arg;
    rcpt_policy fresh;
    char err[1024];
    if (rcpt_policy_load(&fresh, st->cfg, err, sizeof(err), warn_config, NULL) < 0) {
        logbuf_now(POSTHORN_LOG_ERROR, "event=reload result=failed error=\"%s\"", err);
        return -1;
    }
    rcpt_policy_free(&st->policy);
    st->policy = fresh; /* st->store and st->qmgr point at st->policy: they see the new one */
    logbuf_now(POSTHORN_LOG_INFO, "event=reload result=ok what=recipients");
    return 0;
}

/* The store directory must exist and belong to the user the workers will run as. */
static int prepare_delivery(serve_state *st)
{
    const ph_config_global *g = &st->cfg->g;
    st->store.quiet = true;
    if (g->delivery == PH_DELIVERY_STORE) {
        st->store.store_dir = g->store_dir;
        if (mkdir(g->store_dir, 0750) < 0 && errno != EEXIST) {
            fprintf(stderr, "posthorn serve: cannot create %s: %s\n", g->store_dir,
                    strerror(errno));
            return -1;
        }
        if (runner_chown_for(g->user, g->group, g->store_dir) < 0)
            return -1;
    }
    char err[512];
    if (g->delivery == PH_DELIVERY_QUEUE) {
        st->store.queue_dir = g->queue_dir;
        if (msg_queue_recover(g->queue_dir, err, sizeof(err)) < 0) {
            fprintf(stderr, "posthorn serve: %s\n", err);
            return -1;
        }
        static const char *const subs[] = {"", "/incoming", "/queue", "/corrupt"};
        for (size_t i = 0; i < sizeof(subs) / sizeof(subs[0]); i++) {
            char path[4096];
            snprintf(path, sizeof(path), "%s%s", g->queue_dir, subs[i]);
            if (runner_chown_for(g->user, g->group, path) < 0)
                return -1;
        }
        if (prepare_queue(st) < 0)
            return -1;
    }
    if (g->passwd_file[0] && passwd_db_load(g->passwd_file, &st->store.passwords, err,
                                            sizeof(err)) < 0) {
        fprintf(stderr, "posthorn serve: %s\n", err);
        return -1;
    }
    return 0;
}

static int run(serve_state *st)
{
    const ph_config_global *g = &st->cfg->g;
    posthorn_options options = {.hostname = g->hostname[0] ? g->hostname : NULL,
                                .banner = g->banner};
    posthorn_limits_default(&options.limits);
    ph_config_listener_limits(st->cfg, NULL, &options.limits);
    options.limits.auth_fail_limit = g->auth_fail_limit;
    options.limits.auth_fail_delay_ms = (unsigned)g->auth_fail_delay_ms;
    static posthorn_hooks hooks;
    msg_store_hooks(&hooks); /* AUTH, and the store/discard delivery */
    if (g->delivery == PH_DELIVERY_QUEUE)
        msg_queue_hooks(&hooks);
    if (g->log_target == PH_LOG_SYSLOG)
        logbuf_use_syslog("posthorn");
    runner_config rc = {
        .listen = st->listen, .listen_opts = st->optp, .nlisten = st->nlisten,
        .workers = g->workers, .log_level = (posthorn_log_level)g->log_level,
        .hooks = &hooks, .options = &options, .user = &st->store,
        .run_as_user = g->user[0] ? g->user : NULL, .run_as_group = g->group[0] ? g->group : NULL,
    };
    if (g->delivery == PH_DELIVERY_QUEUE) {
        rc.aux_main = qmgr_process_main;
        rc.aux_arg = &st->qmgr;
        rc.reload = reload_recipients;
        rc.reload_arg = st;
    }
    return runner_run(&rc);
}

int cmd_serve(int argc, char **argv)
{
    static const struct option longopts[] = {{"config", required_argument, NULL, 'c'},
                                             {"help", no_argument, NULL, 'h'},
                                             {0, 0, 0, 0}};
    const char *file = NULL;
    int opt;
    optind = 1;
    while ((opt = getopt_long(argc, argv, "c:h", longopts, NULL)) != -1) {
        if (opt == 'c')
            file = optarg;
        else if (opt == 'h')
            return fputs(serve_help, stdout), 0;
        else
            return fputs("Try 'posthorn serve --help'.\n", stderr), 2;
    }
    if (!file || optind < argc)
        return fputs(serve_help, stderr), 2;
    serve_state *st = calloc(1, sizeof(*st));
    ph_config_errors errs = {0};
    if (!st)
        return 1;
    int status = 1;
    if (ph_config_load(file, &st->cfg, &errs) < 0)
        print_errors(&errs);
    else if (build_sni(st) == 0 && build_listeners(st) == 0 && prepare_delivery(st) == 0)
        status = run(st);
    ph_config_errors_free(&errs);
    passwd_db_free(st->store.passwords);
    rcpt_policy_free(&st->policy);
    free(st->sni);
    ph_config_free(st->cfg);
    free(st);
    return status;
}
