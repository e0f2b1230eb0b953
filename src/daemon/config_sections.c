/*
 * config_sections.c - the sections of posthorn.conf(5): section headers ([listener NAME],
 * [domain NAME], [relay NAME]), adding sections with their defaults, resolving them once the
 * file is read (listener inheritance and role defaults, a relay's tls_verify), the cross-field
 * checks of the global scope and of every section, and the relay lookups of config.h. The line
 * parser, `dump` and the value API are in config.c, the parameter table and value types in
 * config_table.c; the three share config_internal.h.
 *
 * Owns nothing of its own: sections belong to the ph_config being built (every string a heap
 * copy, freed by ph_config_free), scratch sections to the parser. Out of memory sets st->oom;
 * problems are "FILE:LINE: message" errors. Counts are capped (config.h), and the one check
 * over many entries (a domain listed twice among the relays, or local) sorts them, so time
 * stays O(n log n) in the input. Needs only libc.
 */
#ifndef _GNU_SOURCE
#define _POSIX_C_SOURCE 200809L /* strdup when built standalone */
#endif
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/config_internal.h"

#define perr(st, line, ...) ph_cfg_errs_add((st)->errs, (st)->cfg->file, (line), __VA_ARGS__)

/* ---- defaults and scratch sections ----------------------------------------------------- */

void ph_cfg_init_defaults(parser *st, section sec)
{
    char why[256];
    for (size_t i = 0; i < ph_cfg_nparams; i++) {
        const param *p = &ph_cfg_params[i];
        if (!in_scope(p, sec.kind) || !p->def)
            continue;
        void *slot = ph_cfg_slot(st->cfg, sec, p);
        int r = ph_cfg_types[p->type].parse(p, p->def, slot, why, sizeof(why));
        if (r == NOMEM)
            st->oom = true;
        else if (r != 0) /* a bug in the table; the unit tests load the defaults */
            perr(st, 0, "internal error: default of %s: %s", p->name, why);
    }
}

void ph_cfg_release_section(const ph_config *cfg, section sec)
{
    for (size_t i = 0; i < ph_cfg_nparams; i++)
        if (in_scope(&ph_cfg_params[i], sec.kind))
            ph_cfg_release_value(&ph_cfg_params[i], ph_cfg_slot(cfg, sec, &ph_cfg_params[i]));
    if (sec.kind == S_RELAY) {
        ph_config_relay *r = (ph_config_relay *)sec.r;
        free(r->domain_lines);
        r->domain_lines = NULL;
    }
}

/* Sends the keys that follow to a fresh scratch section of this kind. */
static void enter_scratch(parser *st, pscope kind)
{
    if (kind == S_DOMAIN) {
        ph_cfg_release_section(st->cfg, domain_section(&st->scratch_domain));
        memset(&st->scratch_domain, 0, sizeof(st->scratch_domain));
        st->cur = domain_section(&st->scratch_domain);
    } else if (kind == S_RELAY) {
        ph_cfg_release_section(st->cfg, relay_section(&st->scratch_relay));
        memset(&st->scratch_relay, 0, sizeof(st->scratch_relay));
        st->cur = relay_section(&st->scratch_relay);
    } else {
        ph_cfg_release_section(st->cfg, listener_section(&st->scratch));
        memset(&st->scratch, 0, sizeof(st->scratch));
        st->cur = listener_section(&st->scratch);
    }
    ph_cfg_init_defaults(st, st->cur);
}

/* ---- adding sections -------------------------------------------------------------------- */

/* The array v of n elements of size bytes with room for one more: arrays grow by doubling, so
 * they need to move only when n is 0 or a power of 2. NULL if out of memory (v is kept). */
static void *room_for_one_more(void *v, size_t n, size_t size)
{
    return n & (n - 1) ? v : realloc(v, (n ? 2 * n : 1) * size);
}

/* A listener or relay name. */
static bool valid_name(const char *s)
{
    size_t n = strlen(s);
    return n <= 64 && only_chars(s, n, "_-");
}

static void add_listener(parser *st, const char *name, unsigned line)
{
    ph_config *cfg = st->cfg;
    const ph_config_listener *first = ph_config_find_listener(cfg, name);
    if (first) {
        perr(st, line, "duplicate listener name '%s' (first at line %u)", name, first->line);
        return;
    }
    if (cfg->nlisteners == PH_CONFIG_MAX_LISTENERS) {
        perr(st, line, "more than %d [listener] sections", PH_CONFIG_MAX_LISTENERS);
        return;
    }
    size_t n = cfg->nlisteners;
    char *copy = strdup(name);
    ph_config_listener *v = copy ? room_for_one_more(cfg->listeners, n, sizeof(*v)) : NULL;
    if (!copy || !v) { /* the keys that follow go to the scratch listener */
        free(copy);
        st->oom = true;
        return;
    }
    cfg->listeners = v;
    memset(&v[n], 0, sizeof(v[n]));
    v[n].name = copy;
    v[n].line = line;
    cfg->nlisteners++;
    st->cur = listener_section(&v[n]);
    ph_cfg_init_defaults(st, st->cur);
}

/* [domain NAME]: NAME is stored lowercased. The cap is checked before the duplicates, so a
 * flood of headers past it costs O(1) each. */
static void add_domain(parser *st, char *name, unsigned line)
{
    ph_config *cfg = st->cfg;
    const ph_config_domain *first;
    qbuf q;
    if (!ph_cfg_domain_name_ok(name)) {
        perr(st, line, "bad domain name '%s' (letters, digits, '-' and '.', at most 253 bytes; "
             "labels of 1 to 63, not starting or ending with '-')", ph_cfg_quote(&q, name));
        return;
    }
    for (char *c = name; *c; c++)
        *c = ascii_lower(*c);
    if (cfg->ndomains == PH_CONFIG_MAX_DOMAINS) {
        perr(st, line, "more than %d [domain] sections", PH_CONFIG_MAX_DOMAINS);
        return;
    }
    if ((first = ph_config_find_domain(cfg, name))) {
        perr(st, line, "duplicate domain '%s' (first at line %u)", name, first->line);
        return;
    }
    size_t n = cfg->ndomains;
    char *copy = strdup(name);
    ph_config_domain *v = copy ? room_for_one_more(cfg->domains, n, sizeof(*v)) : NULL;
    if (!copy || !v) { /* the keys that follow go to the scratch domain */
        free(copy);
        st->oom = true;
        return;
    }
    cfg->domains = v;
    memset(&v[n], 0, sizeof(v[n]));
    v[n].name = copy;
    v[n].line = line;
    cfg->ndomains++;
    st->cur = domain_section(&v[n]);
    ph_cfg_init_defaults(st, st->cur);
}

static void add_relay(parser *st, const char *name, unsigned line)
{
    ph_config *cfg = st->cfg;
    const ph_config_relay *first = ph_config_find_relay(cfg, name);
    qbuf q;
    if (!valid_name(name)) {
        perr(st, line, "bad relay name '%s' (1 to 64 letters, digits, '_' and '-')",
             ph_cfg_quote(&q, name));
        return;
    }
    if (first) {
        perr(st, line, "duplicate relay name '%s' (first at line %u)", name, first->line);
        return;
    }
    if (cfg->nrelays == PH_CONFIG_MAX_RELAYS) {
        perr(st, line, "more than %d [relay] sections", PH_CONFIG_MAX_RELAYS);
        return;
    }
    size_t n = cfg->nrelays;
    char *copy = strdup(name);
    ph_config_relay *v = copy ? room_for_one_more(cfg->relays, n, sizeof(*v)) : NULL;
    if (!copy || !v) { /* the keys that follow go to the scratch relay */
        free(copy);
        st->oom = true;
        return;
    }
    cfg->relays = v;
    memset(&v[n], 0, sizeof(v[n]));
    v[n].name = copy;
    v[n].line = line;
    cfg->nrelays++;
    st->cur = relay_section(&v[n]);
    ph_cfg_init_defaults(st, st->cur);
}

#define EXPECTED "(expected [listener NAME], [domain NAME] or [relay NAME])"

void ph_cfg_do_section(parser *st, char *text, unsigned line)
{
    size_t n = strlen(text);
    bool closed = n >= 2 && text[n - 1] == ']';
    qbuf q;
    if (!closed) /* reported before the text is cut into kind and name */
        perr(st, line, "bad section header '%s' " EXPECTED, ph_cfg_quote(&q, text));
    else
        text[n - 1] = '\0';
    char *kind = trim(text + 1), *name = kind + strcspn(kind, " \t");
    if (*name)
        *name++ = '\0';
    name = trim(name);
    pscope sec = strcmp(kind, "domain") == 0  ? S_DOMAIN
                 : strcmp(kind, "relay") == 0 ? S_RELAY
                                              : S_LISTENER; /* also for a typo */
    st->listener_headers |= sec == S_LISTENER;
    enter_scratch(st, sec);
    if (!closed)
        return;
    if (sec == S_DOMAIN)
        add_domain(st, name, line);
    else if (sec == S_RELAY)
        add_relay(st, name, line);
    else if (strcmp(kind, "listener") != 0)
        perr(st, line, "unknown section type '%s' " EXPECTED, ph_cfg_quote(&q, kind));
    else if (!valid_name(name))
        perr(st, line, "bad listener name '%s' (1 to 64 letters, digits, '_' and '-')",
             ph_cfg_quote(&q, name));
    else
        add_listener(st, name, line);
}

void ph_cfg_key_parsed(parser *st, const param *p, int result, size_t before, unsigned line)
{
    if (st->cur.kind != S_RELAY)
        return;
    ph_config_relay *r = (ph_config_relay *)st->cur.r;
    if (result == BAD && strcmp(p->name, "host") == 0 && r != &st->scratch_relay)
        st->host_refused[r - st->cfg->relays] = true;
    if (result != 0 || strcmp(p->name, "domains") != 0)
        return;
    size_t n = r->domains.n;
    if (n == before)
        return;
    unsigned *lines = realloc(r->domain_lines, n * sizeof(*lines));
    if (!lines) {
        st->oom = true;
        return;
    }
    r->domain_lines = lines;
    for (size_t i = before; i < n; i++)
        lines[i] = line;
}

/* ---- resolution ------------------------------------------------------------------------- */

/* Inherits every overridable value not set in the section, then applies the role defaults
 * (after inheriting: the default tls mode depends on the effective tls_cert). */
static void resolve_listener(parser *st, ph_config_listener *l)
{
    section sec = listener_section(l);
    for (size_t i = 0; i < ph_cfg_nparams; i++) {
        const param *p = &ph_cfg_params[i];
        if (p->scope == S_BOTH && !l->set_line[i] &&
            ph_cfg_copy_value(p, ph_cfg_slot(st->cfg, sec, p),
                              ph_cfg_slot(st->cfg, global_section(), p)) != 0)
            st->oom = true;
    }
    for (size_t i = 0; i < ph_cfg_nparams; i++) {
        const param *p = &ph_cfg_params[i];
        if (p->def || l->set_line[i] || !in_scope(p, S_LISTENER))
            continue;
        int v = p->role_def[l->role];
        if (v < 0) /* tls: starttls when there is a certificate */
            v = *l->s.tls_cert ? PH_TLS_STARTTLS : PH_TLS_NONE;
        if (p->type == T_BOOL)
            *(bool *)ph_cfg_slot(st->cfg, sec, p) = v != 0;
        else
            *(int *)ph_cfg_slot(st->cfg, sec, p) = v;
    }
}

static unsigned set_line_in(const unsigned *set, const char *key, unsigned kind)
{
    return set[ph_cfg_find_param_in(key, kind) - ph_cfg_params];
}

/* No certificate to verify without required TLS: tls_verify (default yes) then means no, so
 * the effective value never promises what cannot happen. Set to yes there, it is an error. */
static void resolve_relay(ph_config_relay *r)
{
    if ((r->tls == PH_RELAY_TLS_NONE || r->tls == PH_RELAY_TLS_MAY) &&
        !set_line_in(r->set_line, "tls_verify", S_RELAY))
        r->tls_verify = false;
}

void ph_cfg_resolve(parser *st)
{
    for (size_t i = 0; i < st->cfg->nlisteners; i++)
        resolve_listener(st, &st->cfg->listeners[i]);
    for (size_t i = 0; i < st->cfg->nrelays; i++)
        resolve_relay(&st->cfg->relays[i]);
}

/* ---- cross-field checks: listeners and domains ------------------------------------------ */

static unsigned listener_set(const ph_config_listener *l, const char *key)
{
    return set_line_in(l->set_line, key, S_LISTENER);
}

/* The word of enum key for value v, in a section of this kind. */
static const char *word(const char *key, unsigned kind, int v)
{
    return ph_cfg_find_param_in(key, kind)->words[v];
}

/* Where to point for a listener problem about keys a and b: the line that set a, else the one
 * that set b, else the section header. */
static unsigned where(const ph_config_listener *l, const char *a, const char *b)
{
    unsigned line = listener_set(l, a);
    if (!line && b)
        line = listener_set(l, b);
    return line ? line : l->line;
}

/* " (the default for role X)" when key was not set in the section, else "". */
static const char *by_default(const ph_config_listener *l, const char *key)
{
    static const char *const note[] = {" (the default for role mx)",
                                       " (the default for role submission)",
                                       " (the default for role submissions)"};
    return listener_set(l, key) ? "" : note[l->role];
}

static void check_listen_set(parser *st, const ph_config_listener *l)
{
    if (l->listen.n == 0)
        perr(st, l->line, "listener '%s' has no listen address (listen = HOST:PORT)", l->name);
}

/* A certificate needs its key and vice versa; TLS needs both. A mismatch inherited from the
 * global values was reported there once, not again for every listener. */
static void check_tls_files(parser *st, const ph_config_listener *l)
{
    bool cert = *l->s.tls_cert, key = *l->s.tls_key;
    if (cert != key) {
        const char *has = cert ? "tls_cert" : "tls_key", *lacks = cert ? "tls_key" : "tls_cert";
        if (listener_set(l, "tls_cert") || listener_set(l, "tls_key"))
            perr(st, where(l, has, lacks), "listener '%s': %s without %s", l->name, has, lacks);
    } else if (l->tls != PH_TLS_NONE && !cert) {
        perr(st, where(l, "tls", NULL), "listener '%s': tls = %s%s needs tls_cert and tls_key",
             l->name, word("tls", S_LISTENER, l->tls), by_default(l, "tls"));
    }
}

static void check_require_tls(parser *st, const ph_config_listener *l)
{
    if (l->require_tls && l->tls == PH_TLS_NONE)
        perr(st, where(l, "require_tls", "tls"),
             "listener '%s': require_tls = yes%s but tls = none (set tls_cert and tls_key)",
             l->name, by_default(l, "require_tls"));
}

static void check_submissions(parser *st, const ph_config_listener *l)
{
    if (l->role == PH_ROLE_SUBMISSIONS && l->tls != PH_TLS_IMPLICIT)
        perr(st, where(l, "tls", "role"), "listener '%s': role submissions needs tls = implicit",
             l->name);
}

static void check_auth(parser *st, const ph_config_listener *l)
{
    if (l->auth != PH_AUTH_NONE && !*st->cfg->g.passwd_file)
        perr(st, where(l, "auth", NULL), "listener '%s': auth = %s%s needs passwd_file", l->name,
             word("auth", S_LISTENER, l->auth), by_default(l, "auth"));
    /* not in the list, but such a listener could never take a message */
    if (l->require_auth && l->auth == PH_AUTH_NONE)
        perr(st, where(l, "require_auth", "auth"),
             "listener '%s': require_auth = yes%s but auth = none", l->name,
             by_default(l, "require_auth"));
}

static void (*const listener_checks[])(parser *, const ph_config_listener *) = {
    check_listen_set, check_tls_files, check_require_tls, check_submissions, check_auth,
};

static void check_domain(parser *st, const ph_config_domain *d)
{
    unsigned line = set_line_in(d->set_line, "transport", S_DOMAIN);
    if (d->transport == PH_TRANSPORT_LMTP && !*d->lmtp)
        perr(st, line ? line : d->line,
             "domain '%s': transport = lmtp needs lmtp (unix:/path, HOST:PORT or [IPv6]:PORT)",
             d->name);
}

/* ---- cross-field checks: relays --------------------------------------------------------- */

static unsigned relay_set(const ph_config_relay *r, const char *key)
{
    return set_line_in(r->set_line, key, S_RELAY);
}

/* The line that set a, else the one that set b, else the relay's header. */
static unsigned relay_where(const ph_config_relay *r, const char *a, const char *b)
{
    unsigned line = relay_set(r, a);
    if (!line && b)
        line = relay_set(r, b);
    return line ? line : r->line;
}

static void check_relay(parser *st, const ph_config_relay *r, bool host_refused)
{
    bool user = *r->auth_user, pass = *r->auth_password_file;
    bool weak = r->tls == PH_RELAY_TLS_NONE || r->tls == PH_RELAY_TLS_MAY;
    const char *tls = word("tls", S_RELAY, r->tls);
    if (!*r->host && !host_refused)
        perr(st, r->line, "relay '%s' has no host (host = HOST or HOST:PORT)", r->name);
    if (user != pass) {
        const char *has = user ? "auth_user" : "auth_password_file";
        perr(st, relay_set(r, has), "relay '%s': %s without %s", r->name, has,
             user ? "auth_password_file" : "auth_user");
    }
    if (user && weak && !r->auth_insecure)
        perr(st, relay_where(r, "tls", "auth_user"),
             "relay '%s': AUTH with tls = %s could send the password in clear text (set "
             "auth_insecure = yes to allow it)", r->name, tls);
    if (weak && r->tls_verify)
        perr(st, relay_set(r, "tls_verify"),
             "relay '%s': tls_verify = yes but tls = %s (only starttls and implicit verify)",
             r->name, tls);
}

/* At most one relay without domains: the default smarthost. */
static void check_default_relays(parser *st)
{
    const ph_config_relay *first = NULL;
    for (size_t i = 0; i < st->cfg->nrelays; i++) {
        const ph_config_relay *r = &st->cfg->relays[i];
        if (r->domains.n > 0)
            continue;
        if (first)
            perr(st, r->line, "relay '%s': a second default smarthost (no domains); '%s' (line "
                 "%u) is the first", r->name, first->name, first->line);
        else
            first = r;
    }
}

/* A domain named by a [domain] section (relay NULL) or listed by a relay. */
typedef struct domain_ref {
    const char *name;
    unsigned line;
    const ph_config_relay *relay;
} domain_ref;

/* Case-insensitive name, then the file's order; a line's entries keep their list order as qsort
 * may not: the name, line and relay decide (two equal entries of one line are equal). */
static int ref_cmp(const void *a, const void *b)
{
    const domain_ref *x = a, *y = b;
    for (const char *p = x->name, *q = y->name;; p++, q++) {
        int c = (unsigned char)ascii_lower(*p) - (unsigned char)ascii_lower(*q);
        if (c || !*p)
            return c ? c : x->line < y->line ? -1 : x->line > y->line;
    }
}

/* One group of refs with the same name, in file order: a local domain or an earlier relay
 * entry makes every relay entry after it an error. */
static void check_domain_group(parser *st, const domain_ref *g, size_t n)
{
    const domain_ref *local = NULL, *first = NULL;
    for (size_t i = 0; i < n; i++)
        if (!g[i].relay)
            local = &g[i];
    for (size_t i = 0; i < n; i++) {
        const domain_ref *e = &g[i];
        if (!e->relay)
            continue;
        if (local)
            perr(st, e->line, "relay '%s': '%s' is a local domain ([domain] at line %u)",
                 e->relay->name, e->name, local->line);
        else if (first && first->relay == e->relay)
            perr(st, e->line, "relay '%s': domain '%s' listed twice (first at line %u)",
                 e->relay->name, e->name, first->line);
        else if (first)
            perr(st, e->line, "relay '%s': domain '%s' is relayed by '%s' already (line %u)",
                 e->relay->name, e->name, first->relay->name, first->line);
        else
            first = e;
    }
}

/* Every relay entry and every local domain, sorted by name: O(n log n) for any input. */
static int check_relay_domains(parser *st)
{
    const ph_config *cfg = st->cfg;
    size_t n = cfg->ndomains, k = 0;
    for (size_t i = 0; i < cfg->nrelays; i++)
        n += cfg->relays[i].domains.n;
    if (n == cfg->ndomains)
        return 0;
    domain_ref *refs = malloc(n * sizeof(*refs));
    if (!refs)
        return -ENOMEM;
    for (size_t i = 0; i < cfg->ndomains; i++)
        refs[k++] = (domain_ref){cfg->domains[i].name, cfg->domains[i].line, NULL};
    for (size_t i = 0; i < cfg->nrelays; i++)
        for (size_t j = 0; j < cfg->relays[i].domains.n; j++)
            refs[k++] = (domain_ref){cfg->relays[i].domains.v[j],
                                     cfg->relays[i].domain_lines[j], &cfg->relays[i]};
    qsort(refs, n, sizeof(*refs), ref_cmp);
    for (size_t i = 0, end; i < n; i = end) {
        for (end = i + 1; end < n && ascii_case_equal(refs[i].name, refs[end].name);)
            end++;
        if (end - i > 1)
            check_domain_group(st, refs + i, end - i);
    }
    free(refs);
    return 0;
}

/* ---- cross-field checks: the whole file ------------------------------------------------- */

static void check_global(parser *st)
{
    const ph_config *cfg = st->cfg;
    if (cfg->g.delivery == PH_DELIVERY_STORE && !*cfg->g.store_dir) {
        unsigned line = set_line_in(cfg->set_line, "delivery", S_GLOBAL);
        perr(st, line, "delivery = store%s needs store_dir", line ? "" : " (the default)");
    }
    if (!*cfg->s.tls_cert != !*cfg->s.tls_key) {
        const char *has = *cfg->s.tls_cert ? "tls_cert" : "tls_key";
        perr(st, set_line_in(cfg->set_line, has, S_GLOBAL), "%s without %s", has,
             *cfg->s.tls_cert ? "tls_key" : "tls_cert");
    }
    if (cfg->g.queue_retry_schedule.n == 0) /* only "queue_retry_schedule =" empties it */
        perr(st, set_line_in(cfg->set_line, "queue_retry_schedule", S_GLOBAL),
             "queue_retry_schedule: needs at least one delay");
    if (cfg->g.smtp_tls_verify && cfg->g.smtp_tls != PH_CONFIG_SMTP_TLS_ENCRYPT) {
        unsigned line = set_line_in(cfg->set_line, "smtp_tls", S_GLOBAL);
        perr(st, set_line_in(cfg->set_line, "smtp_tls_verify", S_GLOBAL),
             "smtp_tls_verify = yes needs smtp_tls = encrypt (smtp_tls = %s%s)",
             word("smtp_tls", S_GLOBAL, cfg->g.smtp_tls), line ? "" : ", the default");
    }
    if (!st->listener_headers)
        perr(st, 0, "no [listener] section");
}

int ph_cfg_check(parser *st)
{
    const ph_config *cfg = st->cfg;
    check_global(st);
    for (size_t i = 0; i < cfg->nlisteners; i++)
        for (size_t k = 0; k < sizeof(listener_checks) / sizeof(listener_checks[0]); k++)
            listener_checks[k](st, &cfg->listeners[i]);
    for (size_t i = 0; i < cfg->ndomains; i++)
        check_domain(st, &cfg->domains[i]);
    for (size_t i = 0; i < cfg->nrelays; i++)
        check_relay(st, &cfg->relays[i], st->host_refused[i]);
    check_default_relays(st);
    return check_relay_domains(st);
}

/* ---- relay lookups ---------------------------------------------------------------------- */

const ph_config_relay *ph_config_find_relay(const ph_config *cfg, const char *name)
{
    for (size_t i = 0; i < cfg->nrelays; i++)
        if (strcmp(cfg->relays[i].name, name) == 0)
            return &cfg->relays[i];
    return NULL;
}

const ph_config_relay *ph_config_relay_for(const ph_config *cfg, const char *domain)
{
    const ph_config_relay *fallback = NULL;
    for (size_t i = 0; i < cfg->nrelays; i++) {
        const ph_config_relay *r = &cfg->relays[i];
        if (r->domains.n == 0 && !fallback)
            fallback = r;
        for (size_t j = 0; j < r->domains.n; j++)
            if (ascii_case_equal(r->domains.v[j], domain))
                return r;
    }
    return fallback;
}
