/*
 * config.c - posthorn.conf(5): the line parser (logical lines, keys and their scopes), the
 * error list, `dump` and the public API of config.h. Section headers, resolution, the
 * cross-field checks and the relay lookups are in config_sections.c; the parameter table, the
 * value types and checks, the maildir expansion and the relay and forwarder readers in
 * config_table.c; the three share config_internal.h.
 *
 * Owns the ph_config it builds (every string is a heap copy) until ph_config_free(). Fails by
 * collecting "FILE:LINE: message" errors and handing out no config; nothing is ignored or
 * clamped. Any byte sequence is safe input: lines with control bytes are refused, logical
 * lines, lists, sections and stored errors are capped (config.h), numbers are overflow-checked,
 * so time and memory stay O(input). Needs only libc (no libevent): the fuzzer links it alone
 * with config_table.c and config_sections.c.
 */
#ifndef _GNU_SOURCE
#define _POSIX_C_SOURCE 200809L /* strdup, open_memstream when built standalone */
#endif
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "daemon/config_internal.h"

/* ---- errors ----------------------------------------------------------------------------- */

__attribute__((format(printf, 4, 0))) static void errs_vadd(ph_config_errors *e, const char *file,
                                                            unsigned line, const char *fmt,
                                                            va_list ap)
{
    char msg[512], where[24] = "";
    ph_config_error *grown = e->n % 16 ? e->v : realloc(e->v, (e->n + 16) * sizeof(*grown));
    if (!grown) {
        e->dropped++;
        return;
    }
    e->v = grown;
    vsnprintf(msg, sizeof(msg), fmt, ap);
    if (line)
        snprintf(where, sizeof(where), ":%u", line);
    size_t n = strlen(file) + strlen(where) + strlen(msg) + 3;
    if (!(e->v[e->n].text = malloc(n))) {
        e->dropped++;
        return;
    }
    snprintf(e->v[e->n].text, n, "%s%s: %s", file, where, msg);
    e->v[e->n++].line = line;
}

/* Adds an error unless PH_CONFIG_MAX_ERRORS are kept already; then it is only counted, before
 * any formatting, so a flood of errors stays cheap. */
void ph_cfg_errs_add(ph_config_errors *e, const char *file, unsigned line, const char *fmt, ...)
{
    va_list ap;
    if (e->n >= PH_CONFIG_MAX_ERRORS) {
        e->dropped++;
        return;
    }
    va_start(ap, fmt);
    errs_vadd(e, file, line, fmt, ap);
    va_end(ap);
}

/* The note about dropped errors: the one message allowed past the cap. */
__attribute__((format(printf, 4, 5))) static void errs_note(ph_config_errors *e, const char *file,
                                                            unsigned line, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    errs_vadd(e, file, line, fmt, ap);
    va_end(ap);
}

static unsigned sort_key(const ph_config_error *e)
{
    return e->line ? e->line : UINT_MAX;
}

/* Stable sort by line (file-wide errors last), then the note about dropped errors. */
static void errs_finish(ph_config_errors *e, const char *file)
{
    for (size_t i = 1; i < e->n; i++) {
        ph_config_error x = e->v[i];
        size_t j = i;
        for (; j > 0 && sort_key(&e->v[j - 1]) > sort_key(&x); j--)
            e->v[j] = e->v[j - 1];
        e->v[j] = x;
    }
    if (e->dropped)
        errs_note(e, file, 0, "%zu more errors not shown", e->dropped);
}

void ph_config_errors_free(ph_config_errors *errs)
{
    if (!errs)
        return;
    for (size_t i = 0; i < errs->n; i++)
        free(errs->v[i].text);
    free(errs->v);
    memset(errs, 0, sizeof(*errs));
}

/* ---- the parser ------------------------------------------------------------------------- */

#define perr(st, line, ...) ph_cfg_errs_add((st)->errs, (st)->cfg->file, (line), __VA_ARGS__)

/* Edit distance of a and b, both at most 64 bytes: for "did you mean". */
static size_t distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b), row[65];
    for (size_t j = 0; j <= lb; j++)
        row[j] = j;
    for (size_t i = 1; i <= la; i++) {
        size_t diag = row[0];
        row[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t up = row[j], best = diag + (a[i - 1] != b[j - 1]);
            best = up + 1 < best ? up + 1 : best;
            best = row[j - 1] + 1 < best ? row[j - 1] + 1 : best;
            diag = up;
            row[j] = best;
        }
    }
    return row[lb];
}

static const char *suggest(const char *key)
{
    if (strlen(key) > 64)
        return NULL;
    size_t best = 3, d; /* a different case first, else the closest within 2 edits */
    const char *hint = NULL;
    for (size_t i = 0; i < ph_cfg_nparams; i++)
        if (strcasecmp(key, ph_cfg_params[i].name) == 0)
            return ph_cfg_params[i].name;
    for (size_t i = 0; i < ph_cfg_nparams; i++)
        if ((d = distance(key, ph_cfg_params[i].name)) < best) {
            best = d;
            hint = ph_cfg_params[i].name;
        }
    return hint;
}

static void unknown_key(parser *st, const char *key, unsigned line)
{
    qbuf q;
    /* the suggestion costs a little: only for errors that will be shown */
    const char *hint = st->errs->n < PH_CONFIG_MAX_ERRORS ? suggest(key) : NULL;
    if (!*key)
        perr(st, line, "missing parameter name before '='");
    else if (hint)
        perr(st, line, "unknown parameter '%s' (did you mean '%s'?)", ph_cfg_quote(&q, key), hint);
    else
        perr(st, line, "unknown parameter '%s'", ph_cfg_quote(&q, key));
}

/* "[listener NAME] or [relay NAME]": the sections of the kinds in scopes. */
static const char *section_names(unsigned scopes, char *buf, size_t size)
{
    static const struct {
        pscope kind;
        const char *name;
    } names[] = {{S_LISTENER, "[listener NAME]"}, {S_DOMAIN, "[domain NAME]"},
                 {S_RELAY, "[relay NAME]"}};
    size_t used = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if (scopes & names[i].kind)
            used += (size_t)snprintf(buf + used, size - used, "%s%s", used ? " or " : "",
                                     names[i].name);
    return buf;
}

/* key is a parameter, but of none of the scopes here. */
static void scope_error(parser *st, const char *key, unsigned line)
{
    static const char *const here_words[] = {[S_LISTENER] = "listener", [S_DOMAIN] = "domain",
                                             [S_RELAY] = "relay"};
    unsigned scopes = ph_cfg_scopes_of(key);
    char sections[64];
    if (st->cur.kind == S_GLOBAL || !(scopes & S_BOTH)) /* key has sections of its own */
        perr(st, line, "%s: only allowed in a %s section", key,
             section_names(scopes, sections, sizeof(sections)));
    else if (scopes == S_GLOBAL)
        perr(st, line, "%s: a global parameter, not allowed in a [%s] section", key,
             here_words[st->cur.kind]);
    else
        perr(st, line, "%s: not allowed in a [%s] section", key, here_words[st->cur.kind]);
}

/* Parses value into slot. The first good line of a list replaces its default; a bad one
 * leaves it, so the cross-field checks do not pile onto the error with an empty list. */
static int parse_value(const param *p, const char *value, void *slot, bool first, char *why,
                       size_t n)
{
    if (p->type != T_LIST || !first)
        return ph_cfg_types[p->type].parse(p, value, slot, why, n);
    ph_strlist fresh = {0};
    int r = ph_cfg_types[T_LIST].parse(p, value, &fresh, why, n);
    if (r == 0) {
        ph_cfg_release_value(p, slot);
        *(ph_strlist *)slot = fresh;
    } else {
        ph_cfg_release_value(p, &fresh);
    }
    return r;
}

static void do_key(parser *st, char *text, unsigned line)
{
    char *eq = strchr(text, '='), why[256];
    qbuf q;
    if (!eq) {
        perr(st, line, "expected 'key = value' or '[listener NAME]', got '%s'",
             ph_cfg_quote(&q, text));
        return;
    }
    *eq = '\0';
    char *key = trim(text), *value = trim(eq + 1);
    const param *p = ph_cfg_find_param_in(key, st->cur.kind);
    if (!p) {
        if (ph_cfg_find_param(key))
            scope_error(st, key, line);
        else
            unknown_key(st, key, line);
        return;
    }
    unsigned *first = &ph_cfg_set_lines(st->cfg, st->cur)[p - ph_cfg_params];
    if (*first && p->type != T_LIST) {
        perr(st, line, "%s: set twice (first at line %u)", p->name, *first);
        return;
    }
    if (!*value && !ph_cfg_types[p->type].empty_ok) {
        perr(st, line, "%s: missing value", p->name);
        return;
    }
    void *slot = ph_cfg_slot(st->cfg, st->cur, p);
    size_t before = p->type == T_LIST && *first ? ((const ph_strlist *)slot)->n : 0;
    int r = parse_value(p, value, slot, !*first, why, sizeof(why));
    if (r == NOMEM)
        st->oom = true;
    else if (r == BAD)
        perr(st, line, "%s: %s", p->name, why);
    else if (!*first)
        *first = line;
    ph_cfg_key_parsed(st, p, r, before, line);
}

/* Processes the gathered logical line, if any and if it had no error, and forgets it. */
static void flush(parser *st)
{
    if (st->pending && !st->poisoned) {
        if (st->text[0] == '[')
            ph_cfg_do_section(st, st->text, st->text_line);
        else
            do_key(st, st->text, st->text_line);
    }
    st->pending = st->poisoned = false;
    st->len = 0;
}

static void start(parser *st, unsigned line)
{
    flush(st);
    st->pending = true;
    st->text_line = line;
}

static void append(parser *st, const char *s, size_t n, unsigned line)
{
    size_t sep = st->len ? 1 : 0;
    if (st->poisoned)
        return;
    if (n + sep > PH_CONFIG_MAX_LINE - st->len) {
        perr(st, line, "line too long (more than %d bytes with its continuations)",
             PH_CONFIG_MAX_LINE);
        st->poisoned = true;
        return;
    }
    if (st->len + sep + n + 1 > st->cap) {
        size_t cap = st->cap ? st->cap : 256;
        while (cap < st->len + sep + n + 1)
            cap *= 2;
        char *t = realloc(st->text, cap);
        if (!t) {
            st->oom = st->poisoned = true;
            return;
        }
        st->text = t;
        st->cap = cap;
    }
    if (sep)
        st->text[st->len++] = ' '; /* continuations are joined with one space */
    memcpy(st->text + st->len, s, n);
    st->len += n;
    st->text[st->len] = '\0';
}

static size_t find_control(const char *s, size_t n)
{
    size_t i = 0;
    while (i < n && (s[i] == '\t' || ((unsigned char)s[i] >= 0x20 && s[i] != 0x7f)))
        i++;
    return i;
}

/* One line of the file, without its newline. A line with a control byte (NUL included) is
 * refused along with the logical line it belongs to: never half-used. */
static void physical_line(parser *st, const char *s, size_t n, unsigned line)
{
    if (n > 0 && s[n - 1] == '\r')
        n--;
    bool cont = n > 0 && is_blank(s[0]);
    size_t bad = find_control(s, n), i = 0;
    if (bad < n) {
        perr(st, line, "control character 0x%02x at column %zu", (unsigned char)s[bad], bad + 1);
        if (!cont || !st->pending)
            start(st, line);
        st->poisoned = true;
        return;
    }
    while (i < n && is_blank(s[i]))
        i++;
    while (n > i && is_blank(s[n - 1]))
        n--;
    if (i == n) /* a blank line ends a logical line */
        flush(st);
    else if (s[i] == '#') /* a comment line; it does not end a continued value */
        ;
    else if (!cont) {
        start(st, line);
        append(st, s, n, line);
    } else if (st->pending) {
        append(st, s + i, n - i, line);
    } else {
        perr(st, line, "continuation line without a 'key = value' line before it");
        start(st, line);
        st->poisoned = true; /* and so are the continuation lines after it */
    }
}

static void read_lines(parser *st, const char *buf, size_t len)
{
    unsigned line = 0;
    const char *p = buf, *end = buf + len;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *e = nl ? nl : end;
        if (line < UINT_MAX)
            line++;
        physical_line(st, p, (size_t)(e - p), line);
        p = nl ? nl + 1 : end;
    }
    flush(st);
}

/* ---- after the last line --------------------------------------------------------------- */

static void finish(parser *st)
{
    ph_cfg_resolve(st);
    if (!st->oom && ph_cfg_check(st) < 0)
        st->oom = true;
}

/* ---- public API ------------------------------------------------------------------------- */

void ph_config_free(ph_config *cfg)
{
    if (!cfg)
        return;
    ph_cfg_release_section(cfg, global_section());
    for (size_t i = 0; i < cfg->nlisteners; i++) {
        ph_cfg_release_section(cfg, listener_section(&cfg->listeners[i]));
        free(cfg->listeners[i].name);
    }
    for (size_t i = 0; i < cfg->ndomains; i++) {
        ph_cfg_release_section(cfg, domain_section(&cfg->domains[i]));
        free(cfg->domains[i].name);
    }
    for (size_t i = 0; i < cfg->nrelays; i++) {
        ph_cfg_release_section(cfg, relay_section(&cfg->relays[i]));
        free(cfg->relays[i].name);
    }
    free(cfg->listeners);
    free(cfg->domains);
    free(cfg->relays);
    free(cfg->file);
    free(cfg);
}

int ph_config_parse(const char *name, const char *buf, size_t len, ph_config **out,
                    ph_config_errors *errs)
{
    ph_config_errors local = {0};
    parser st = {.errs = errs ? errs : &local, .cur = global_section()};
    memset(st.errs, 0, sizeof(*st.errs));
    *out = NULL;
    if (!(st.cfg = calloc(1, sizeof(*st.cfg))) || !(st.cfg->file = strdup(name ? name : "-"))) {
        free(st.cfg);
        return -ENOMEM;
    }
    ph_cfg_init_defaults(&st, global_section());
    read_lines(&st, buf, len);
    ph_cfg_release_section(st.cfg, listener_section(&st.scratch));
    ph_cfg_release_section(st.cfg, domain_section(&st.scratch_domain));
    ph_cfg_release_section(st.cfg, relay_section(&st.scratch_relay));
    free(st.text);
    if (!st.oom)
        finish(&st);
    errs_finish(st.errs, st.cfg->file);
    int r = st.oom ? -ENOMEM : st.errs->n || st.errs->dropped ? -EINVAL : 0;
    if (r)
        ph_config_free(st.cfg);
    else
        *out = st.cfg;
    ph_config_errors_free(&local);
    return r;
}

/* The whole file in *buf (caller frees): 0 or a negative errno. */
static int read_file(const char *path, char **buf, size_t *len)
{
    struct stat sb;
    size_t n = 0, cap = 0;
    char *b = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    int r = fstat(fd, &sb) < 0 ? -errno : S_ISDIR(sb.st_mode) ? -EISDIR : 0;
    while (r == 0 && n <= PH_CONFIG_MAX_FILE) {
        if (n == cap) {
            char *t = realloc(b, cap = cap ? 2 * cap : 4096);
            if (!t) {
                r = -ENOMEM;
                break;
            }
            b = t;
        }
        ssize_t got = read(fd, b + n, cap - n);
        if (got == 0)
            break;
        if (got > 0)
            n += (size_t)got;
        else if (errno != EINTR)
            r = -errno;
    }
    close(fd);
    if (r == 0 && n > PH_CONFIG_MAX_FILE)
        r = -EFBIG;
    if (r) {
        free(b);
        b = NULL;
    }
    *buf = b;
    *len = n;
    return r;
}

int ph_config_load(const char *path, ph_config **out, ph_config_errors *errs)
{
    char *buf = NULL;
    size_t len = 0;
    int r = read_file(path, &buf, &len);
    if (r < 0) {
        *out = NULL;
        if (errs) {
            memset(errs, 0, sizeof(*errs));
            ph_cfg_errs_add(errs, path, 0, "%s", r == -EFBIG ? "larger than 16 MiB" : strerror(-r));
        }
        return r;
    }
    r = ph_config_parse(path, buf, len, out, errs);
    free(buf);
    return r;
}

static void dump_param(const ph_config *cfg, section sec, const param *p, FILE *out)
{
    const void *slot = ph_cfg_slot(cfg, sec, p);
    if (p->type == T_LIST) { /* one line per entry: any list re-parses within line limits */
        const ph_strlist *list = slot;
        for (size_t i = 0; i < list->n; i++)
            fprintf(out, "%s = %s\n", p->name, list->v[i]);
        if (list->n == 0)
            fprintf(out, "%s =\n", p->name);
        return;
    }
    bool empty = (p->type == T_STRING || p->type == T_PATH) && !**(char *const *)slot;
    fprintf(out, "%s =%s", p->name, empty ? "" : " ");
    ph_cfg_types[p->type].print(p, slot, out);
    fputc('\n', out);
}

static void dump_section(const ph_config *cfg, section sec, bool only_set, FILE *out)
{
    const unsigned *set = ph_cfg_set_lines(cfg, sec);
    /* a section starts with what only a listener has (listen first), then its overrides */
    for (int pass = 0; pass < 2; pass++)
        for (size_t i = 0; i < ph_cfg_nparams; i++)
            if (in_scope(&ph_cfg_params[i], sec.kind) && (!only_set || set[i]) &&
                (ph_cfg_params[i].scope == S_BOTH) == (pass == 1))
                dump_param(cfg, sec, &ph_cfg_params[i], out);
}

int ph_config_dump(const ph_config *cfg, FILE *out, bool only_set)
{
    dump_section(cfg, global_section(), only_set, out);
    for (size_t i = 0; i < cfg->nlisteners; i++) {
        fprintf(out, "\n[listener %s]\n", cfg->listeners[i].name);
        dump_section(cfg, listener_section(&cfg->listeners[i]), only_set, out);
    }
    for (size_t i = 0; i < cfg->ndomains; i++) {
        fprintf(out, "\n[domain %s]\n", cfg->domains[i].name);
        dump_section(cfg, domain_section(&cfg->domains[i]), only_set, out);
    }
    for (size_t i = 0; i < cfg->nrelays; i++) {
        fprintf(out, "\n[relay %s]\n", cfg->relays[i].name);
        dump_section(cfg, relay_section(&cfg->relays[i]), only_set, out);
    }
    return fflush(out) != 0 || ferror(out) ? -EIO : 0;
}

void ph_config_listener_limits(const ph_config *cfg, const ph_config_listener *l,
                               posthorn_limits *out)
{
    const ph_config_shared *s = l ? &l->s : &cfg->s;
    /* the bounds in the table keep every duration below 2^32 ms */
    out->max_line = s->max_line;
    out->max_message_size = s->max_message_size;
    out->max_recipients = s->max_recipients;
    out->max_errors = s->max_errors;
    out->max_connections = cfg->g.max_connections;
    out->max_per_ip = s->max_per_ip;
    out->idle_timeout_ms = (unsigned)s->idle_timeout_ms;
    out->session_timeout_ms = (unsigned)s->session_timeout_ms;
    out->greeting_delay_ms = (unsigned)s->greeting_delay_ms;
    out->shutdown_grace_ms = (unsigned)s->shutdown_grace_ms;
}

const ph_config_listener *ph_config_find_listener(const ph_config *cfg, const char *name)
{
    for (size_t i = 0; i < cfg->nlisteners; i++)
        if (strcmp(cfg->listeners[i].name, name) == 0)
            return &cfg->listeners[i];
    return NULL;
}

const ph_config_domain *ph_config_find_domain(const ph_config *cfg, const char *name)
{
    for (size_t i = 0; i < cfg->ndomains; i++)
        if (ascii_case_equal(cfg->domains[i].name, name))
            return &cfg->domains[i];
    return NULL;
}

size_t ph_config_retry_schedule(const ph_config *cfg, uint64_t *ms, size_t max)
{
    const ph_strlist *delays = &cfg->g.queue_retry_schedule;
    size_t n = 0;
    /* every entry was checked by the parser; stop at one that is not a duration all the same */
    while (n < delays->n && n < max && ph_cfg_duration_ms(delays->v[n], &ms[n]) == 0)
        n++;
    return n;
}

/* p's value in section sec as dumped, into buf (see ph_config_value). */
static int print_value(const ph_config *cfg, section sec, const param *p, char *buf,
                       size_t size)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    if (!f)
        return -ENOMEM;
    ph_cfg_types[p->type].print(p, ph_cfg_slot(cfg, sec, p), f);
    if (fclose(f) != 0) {
        free(text);
        return -ENOMEM;
    }
    if (size)
        snprintf(buf, size, "%s", text);
    free(text);
    return len < size ? 0 : -ENOSPC;
}

int ph_config_value(const ph_config *cfg, const ph_config_listener *l, const char *key,
                    char *buf, size_t size)
{
    const param *p = ph_cfg_find_param_in(key, l ? S_BOTH : S_GLOBAL);
    if (!p)
        return ph_cfg_find_param(key) ? -EINVAL : -ENOENT;
    return print_value(cfg, listener_section(l), p, buf, size);
}

int ph_config_domain_value(const ph_config *cfg, const ph_config_domain *d, const char *key,
                           char *buf, size_t size)
{
    const param *p = ph_cfg_find_param_in(key, S_DOMAIN);
    if (!p)
        return ph_cfg_find_param(key) ? -EINVAL : -ENOENT;
    return print_value(cfg, domain_section(d), p, buf, size);
}

int ph_config_relay_value(const ph_config *cfg, const ph_config_relay *r, const char *key,
                          char *buf, size_t size)
{
    const param *p = ph_cfg_find_param_in(key, S_RELAY);
    if (!p)
        return ph_cfg_find_param(key) ? -EINVAL : -ENOENT;
    return print_value(cfg, relay_section(r), p, buf, size);
}

unsigned ph_config_set_line(const ph_config *cfg, const ph_config_listener *l, const char *key)
{
    section sec = listener_section(l);
    const param *p = ph_cfg_find_param_in(key, sec.kind);
    return p ? ph_cfg_set_lines(cfg, sec)[p - ph_cfg_params] : 0;
}

unsigned ph_config_domain_set_line(const ph_config_domain *d, const char *key)
{
    const param *p = ph_cfg_find_param_in(key, S_DOMAIN);
    return p ? d->set_line[p - ph_cfg_params] : 0;
}

unsigned ph_config_relay_set_line(const ph_config_relay *r, const char *key)
{
    const param *p = ph_cfg_find_param_in(key, S_RELAY);
    return p ? r->set_line[p - ph_cfg_params] : 0;
}

int ph_config_param_info_get(size_t i, ph_config_param_info *info)
{
    static const char *const scopes[] = {[S_GLOBAL] = "global", [S_LISTENER] = "listener",
                                         [S_BOTH] = "global, listener", [S_DOMAIN] = "domain",
                                         [S_RELAY] = "relay"};
    if (i >= ph_cfg_nparams)
        return -ENOENT;
    const param *p = &ph_cfg_params[i];
    info->name = p->name;
    info->scope = scopes[p->scope];
    info->type = ph_cfg_types[p->type].name;
    info->def = p->def;
    info->help = p->help;
    ph_cfg_describe_values(p, info->values, sizeof(info->values));
    return 0;
}
