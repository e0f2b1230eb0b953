/*
 * qmgr_relay.c - the relay of the queue manager process, from the configuration (see
 * qmgr_relay.h). Smarthost passwords are read here once, at start, into memory owned by this
 * object (wiped when freed); a password file that cannot be read leaves that relay without a
 * password, so its mail is deferred with the server's AUTH refusal instead of going out
 * unauthenticated.
 */
#include "daemon/qmgr_relay.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dns/resolver.h"
#include "io/tls.h"

typedef struct relay_route_entry {
    const ph_config_relay *cfg;
    char host[256];
    unsigned port;
    char *password;
} relay_route_entry;

struct qmgr_relay {
    const ph_config *cfg;
    ph_resolver *resolver;
    ph_tls_ctx *tls, *tls_verify;
    ph_relay *relay;
    relay_route_entry *routes; /* one per [relay], same order */
};

static char *read_password(const char *file, char *err, size_t errlen)
{
    FILE *f = fopen(file, "re");
    char line[PH_SMTP_CRED_MAX + 2] = "";
    if (!f || !fgets(line, sizeof(line), f)) {
        snprintf(err, errlen, "cannot read %s: %s", file, f ? "empty" : strerror(errno));
        if (f)
            fclose(f);
        return NULL;
    }
    fclose(f);
    line[strcspn(line, "\r\n")] = '\0';
    char *p = strdup(line);
    memset(line, 0, sizeof(line));
    return p;
}

static int make_resolver(qmgr_relay *q, struct event_base *base, char *err, size_t errlen)
{
    const ph_config_global *g = &q->cfg->g;
    const char *fw[PH_RESOLVER_FORWARDERS_MAX];
    size_t n = g->dns_forwarders.n < PH_RESOLVER_FORWARDERS_MAX ? g->dns_forwarders.n
                                                                 : PH_RESOLVER_FORWARDERS_MAX;
    for (size_t i = 0; i < n; i++)
        fw[i] = g->dns_forwarders.v[i];
    ph_resolver_opts o = {.forwarders = fw, .nforwarders = n,
                          .timeout_ms = (unsigned)g->dns_timeout_ms};
    return ph_resolver_new(base, &o, &q->resolver, err, errlen);
}

static int load_routes(qmgr_relay *q, ph_relay_log_fn log, void *log_ctx)
{
    const ph_config *cfg = q->cfg;
    q->routes = calloc(cfg->nrelays ? cfg->nrelays : 1, sizeof(*q->routes));
    if (!q->routes)
        return -ENOMEM;
    for (size_t i = 0; i < cfg->nrelays; i++) {
        relay_route_entry *e = &q->routes[i];
        e->cfg = &cfg->relays[i];
        if (ph_config_relay_endpoint(e->cfg, e->host, sizeof(e->host), &e->port) < 0)
            return -EINVAL;
        char err[300];
        if (e->cfg->auth_password_file[0] &&
            !(e->password = read_password(e->cfg->auth_password_file, err, sizeof(err))) &&
            log) {
            char line[400];
            snprintf(line, sizeof(line), "event=relay_error relay=%s error=\"%s\"", e->cfg->name,
                     err);
            log(log_ctx, 0, line);
        }
    }
    return 0;
}

static ph_smtp_tls_policy mx_policy(int smtp_tls)
{
    return smtp_tls == PH_CONFIG_SMTP_TLS_ENCRYPT ? PH_SMTP_TLS_REQUIRED
           : smtp_tls == PH_CONFIG_SMTP_TLS_MAY     ? PH_SMTP_TLS_OPPORTUNISTIC
                                           : PH_SMTP_TLS_NONE;
}

qmgr_relay *qmgr_relay_new(struct event_base *base, const ph_config *cfg, const char *hostname,
                           ph_relay_log_fn log, void *log_ctx, char *err, size_t errlen)
{
    qmgr_relay *q = calloc(1, sizeof(*q));
    if (!q) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    q->cfg = cfg;
    const ph_config_global *g = &cfg->g;
    ph_tls_client_config plain = {.verify = false}, checked = {.verify = true};
    if (make_resolver(q, base, err, errlen) < 0 ||
        !(q->tls = ph_tls_client_ctx_new(&plain, err, errlen)) ||
        !(q->tls_verify = ph_tls_client_ctx_new(&checked, err, errlen)) ||
        load_routes(q, log, log_ctx) < 0) {
        if (!err[0])
            snprintf(err, errlen, "cannot set up the relay");
        qmgr_relay_free(q);
        return NULL;
    }
    ph_relay_options o = {
        .resolver = q->resolver, .tls_ctx = q->tls, .tls_ctx_verify = q->tls_verify,
        .helo_name = hostname, .mx_port = g->smtp_mx_port ? g->smtp_mx_port : 25,
        .mx_tls = mx_policy(g->smtp_tls), .mx_tls_verify = g->smtp_tls_verify,
        .connect_timeout_ms = (unsigned)g->smtp_connect_timeout_ms,
        .command_timeout_ms = (unsigned)g->smtp_command_timeout_ms,
        .data_timeout_ms = (unsigned)g->smtp_data_timeout_ms,
        .stagger_ms = (unsigned)g->smtp_connect_stagger_ms,
        .host_memory_ms = (unsigned)g->smtp_host_memory_ms,
        .dest_concurrency = g->destination_concurrency ? g->destination_concurrency : 10,
        .dest_rate = g->destination_rate, .log = log, .log_ctx = log_ctx};
    if (!(q->relay = ph_relay_new(base, &o))) {
        snprintf(err, errlen, "cannot start the relay: %s", strerror(errno));
        qmgr_relay_free(q);
        return NULL;
    }
    return q;
}

void qmgr_relay_shutdown(qmgr_relay *q)
{
    if (q)
        ph_relay_shutdown(q->relay);
}

void qmgr_relay_free(qmgr_relay *q)
{
    if (!q)
        return;
    ph_relay_free(q->relay);
    ph_tls_ctx_unref(q->tls);
    ph_tls_ctx_unref(q->tls_verify);
    ph_resolver_free(q->resolver);
    for (size_t i = 0; q->routes && i < q->cfg->nrelays; i++)
        if (q->routes[i].password) {
            memset(q->routes[i].password, 0, strlen(q->routes[i].password));
            free(q->routes[i].password);
        }
    free(q->routes);
    free(q);
}

ph_relay *qmgr_relay_engine(qmgr_relay *q)
{
    return q->relay;
}

static ph_smtp_tls_policy relay_policy(int tls)
{
    return tls == PH_RELAY_TLS_STARTTLS ? PH_SMTP_TLS_REQUIRED
           : tls == PH_RELAY_TLS_MAY    ? PH_SMTP_TLS_OPPORTUNISTIC
                                        : PH_SMTP_TLS_NONE;
}

void qmgr_relay_route(void *ctx, const char *domain, ph_relay_route *route)
{
    qmgr_relay *q = ctx;
    *route = (ph_relay_route){0};
    const ph_config_relay *r = ph_config_relay_for(q->cfg, domain);
    if (!r)
        return; /* the domain's MX hosts */
    const relay_route_entry *e = &q->routes[r - q->cfg->relays];
    *route = (ph_relay_route){
        .smarthost = true, .name = r->name, .host = e->host, .port = e->port,
        .tls = relay_policy(r->tls), .implicit_tls = r->tls == PH_RELAY_TLS_IMPLICIT,
        .tls_verify = r->tls_verify, .auth_insecure = r->auth_insecure};
    if (r->auth_user[0]) {
        route->auth_user = r->auth_user;
        route->auth_pass = e->password ? e->password : "";
    }
}
