/*
 * rcpt_policy.c - relay permission and local recipients at RCPT time (see rcpt_policy.h).
 */
#include "daemon/rcpt_policy.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- relay_networks ------------------------------------------------------------------------ */

static int parse_net(const char *text, relay_net *out)
{
    char buf[128];
    snprintf(buf, sizeof(buf), "%s", text);
    char *slash = strchr(buf, '/');
    if (slash)
        *slash = '\0';
    out->family = strchr(buf, ':') ? AF_INET6 : AF_INET;
    unsigned max = out->family == AF_INET6 ? 128 : 32;
    if (inet_pton(out->family, buf, out->addr) != 1)
        return -EINVAL;
    out->prefix = slash ? (unsigned)strtoul(slash + 1, NULL, 10) : max;
    return out->prefix <= max ? 0 : -EINVAL;
}

static bool net_contains(const relay_net *n, int family, const uint8_t *addr)
{
    if (n->family != family)
        return false;
    unsigned full = n->prefix / 8, rest = n->prefix % 8;
    if (memcmp(n->addr, addr, full) != 0)
        return false;
    uint8_t mask = (uint8_t)(0xff << (8 - rest));
    return rest == 0 || ((n->addr[full] ^ addr[full]) & mask) == 0;
}

bool rcpt_policy_relay_client(const rcpt_policy *p, const char *ip)
{
    uint8_t addr[16];
    int family = strchr(ip, ':') ? AF_INET6 : AF_INET;
    if (!ip[0] || inet_pton(family, ip, addr) != 1)
        return false;
    /* an IPv4 client on a dual-stack socket shows as ::ffff:a.b.c.d */
    static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    bool v4mapped = family == AF_INET6 && memcmp(addr, mapped, 12) == 0;
    for (size_t i = 0; i < p->nnets; i++)
        if (net_contains(&p->nets[i], family, addr) ||
            (v4mapped && net_contains(&p->nets[i], AF_INET, addr + 12)))
            return true;
    return false;
}

/* ---- loading -------------------------------------------------------------------------------- */

static int load_table(rcpt_policy *p, const ph_config *cfg, char *err, size_t errlen)
{
    if (cfg->ndomains == 0)
        return 0;
    ph_domain_def *defs = calloc(cfg->ndomains, sizeof(*defs));
    if (!defs)
        return -ENOMEM;
    for (size_t i = 0; i < cfg->ndomains; i++) {
        const ph_config_domain *d = &cfg->domains[i];
        defs[i] = (ph_domain_def){
            .name = d->name,
            .transport = d->transport == PH_TRANSPORT_LMTP ? PH_DELIVER_LMTP : PH_DELIVER_MAILDIR,
            .maildir = d->maildir,
            .mailboxes_file = d->mailboxes,
            .users = (const char *const *)d->users.v,
            .nusers = d->users.n,
            .aliases_file = d->aliases,
            .catch_all = d->catch_all,
            .delimiter = d->recipient_delimiter[0],
            .lmtp = d->lmtp,
        };
    }
    int r = ph_rcpt_table_load(defs, cfg->ndomains, &p->table, err, errlen);
    free(defs);
    return r;
}

int rcpt_policy_load(rcpt_policy *p, const ph_config *cfg, char *err, size_t errlen,
                     void (*warn)(void *arg, const char *text), void *arg)
{
    *p = (rcpt_policy){0};
    const ph_strlist *nets = &cfg->g.relay_networks;
    p->nets = calloc(nets->n ? nets->n : 1, sizeof(*p->nets));
    if (!p->nets)
        return -ENOMEM;
    for (size_t i = 0; i < nets->n; i++, p->nnets++)
        if (parse_net(nets->v[i], &p->nets[i]) < 0) {
            snprintf(err, errlen, "relay_networks: bad network '%s'", nets->v[i]);
            rcpt_policy_free(p);
            return -EINVAL;
        }
    int r = load_table(p, cfg, err, errlen);
    if (r < 0) {
        rcpt_policy_free(p);
        return r;
    }
    if (p->table && warn)
        ph_rcpt_table_check(p->table, warn, arg);
    return 0;
}

void rcpt_policy_free(rcpt_policy *p)
{
    ph_rcpt_table_free(p->table);
    free(p->nets);
    *p = (rcpt_policy){0};
}

/* ---- RCPT ----------------------------------------------------------------------------------- */

static bool may_relay(const rcpt_policy *p, posthorn_session *s)
{
    return posthorn_session_auth_user(s) != NULL ||
           rcpt_policy_relay_client(p, posthorn_session_client_ip(s));
}

posthorn_verdict rcpt_policy_check(const rcpt_policy *p, posthorn_session *s, const char *addr)
{
    ph_expansion x;
    if (!p->table) {
        x = (ph_expansion){.kind = PH_EXPAND_NOT_LOCAL};
    } else if (ph_rcpt_table_expand(p->table, addr, &x) < 0) {
        return posthorn_reject(451, "4.3.0", "Temporary lookup failure");
    }
    ph_expand_kind kind = x.kind;
    ph_expansion_clear(&x);
    switch (kind) {
    case PH_EXPAND_LOCAL:
        return posthorn_accept();
    case PH_EXPAND_NOT_LOCAL:
        if (may_relay(p, s))
            return posthorn_accept();
        return posthorn_reject(550, "5.7.1", "Relay access denied");
    case PH_EXPAND_UNKNOWN:
        return posthorn_reject(550, "5.1.1", "Recipient address rejected: no such user here");
    case PH_EXPAND_LOOP:
        return posthorn_reject(550, "5.4.6", "Recipient address rejected: alias loop");
    case PH_EXPAND_TOO_MANY:
    case PH_EXPAND_BROKEN:
    default:
        return posthorn_reject(451, "4.3.0", "Recipient address rejected: temporary local problem");
    }
}

static int append_unique(char ***list, size_t *n, size_t *cap, const char *addr)
{
    for (size_t i = 0; i < *n; i++)
        if (strcmp((*list)[i], addr) == 0)
            return 0;
    if (*n == *cap) {
        size_t c = *cap ? *cap * 2 : 8;
        char **v = realloc(*list, c * sizeof(*v));
        if (!v)
            return -ENOMEM;
        *list = v;
        *cap = c;
    }
    if (!((*list)[*n] = strdup(addr)))
        return -ENOMEM;
    (*n)++;
    return 0;
}

int rcpt_policy_expand(const rcpt_policy *p, const char *addr, char ***list, size_t *n,
                       size_t *cap)
{
    ph_expansion x = {.kind = PH_EXPAND_NOT_LOCAL};
    if (p->table && ph_rcpt_table_expand(p->table, addr, &x) < 0)
        return -ENOMEM;
    int r = 0;
    if (x.kind == PH_EXPAND_NOT_LOCAL)
        r = append_unique(list, n, cap, addr);
    else if (x.kind == PH_EXPAND_LOCAL)
        for (size_t i = 0; i < x.ntargets && r == 0; i++)
            r = append_unique(list, n, cap, x.targets[i].addr);
    else
        r = -EINVAL;
    ph_expansion_clear(&x);
    return r;
}
