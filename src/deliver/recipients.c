/*
 * recipients.c - the local recipient table (see recipients.h): building it from domain
 * definitions and files, expanding RCPT addresses through aliases, plus-addresses and
 * catch-alls, and resolving final addresses to mailboxes. The mailboxes and aliases files are
 * parsed in recipients_files.c; the two share recipients_internal.h.
 *
 * Users and aliases live in per-domain arrays sorted by lowercase name (binary search); domains
 * in one sorted array. After load nothing changes, so lookups need no locks. Each alias carries
 * a table-wide index so one expansion can mark aliases "being expanded" / "done" in a small
 * array it allocates only when it meets its first alias (most addresses are plain users).
 */
#include "deliver/recipients.h"
#include "deliver/recipients_internal.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define DOMAIN_MAX 255
#define TARGET_MAX (PH_RCPT_NAME_MAX + 1 + DOMAIN_MAX)

struct ph_rcpt_table {
    domain *domains;  /* sorted by name */
    size_t ndomains;
    char *primary;    /* name of the first domain defined: where a bare "postmaster" goes */
    size_t naliases;  /* over all domains */
};

/* ---- small helpers -------------------------------------------------------------------- */

int ph_rcpt_fail(char *err, size_t errlen, int code, const char *fmt, ...)
{
    if (err && errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return code;
}

/* A malloc'd ASCII-lowercase copy of s[0..n): locale-independent on purpose. */
char *ph_rcpt_lower_dup(const char *s, size_t n)
{
    char *p = malloc(n + 1);
    if (!p)
        return NULL;
    for (size_t i = 0; i < n; i++)
        p[i] = ascii_lower(s[i]);
    p[n] = '\0';
    return p;
}

static char *dup_or_null(const char *s)
{
    return s && *s ? strdup(s) : NULL;
}

/* Grows *arr (elements of size elem) so that it holds at least need; 0 or -ENOMEM. */
int ph_rcpt_grow(void **arr, size_t *cap, size_t need, size_t elem)
{
    if (need <= *cap)
        return 0;
    size_t ncap = *cap ? *cap * 2 : 8;
    while (ncap < need)
        ncap *= 2;
    void *p = realloc(*arr, ncap * elem);
    if (!p)
        return -ENOMEM;
    *arr = p;
    *cap = ncap;
    return 0;
}

static bool is_atext(unsigned char c)
{
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c >= 0x80)
        return true;
    return c && strchr("!#$%&'*+-/=?^_`{|}~", c) != NULL;
}

/* A dot-atom local part of at most PH_RCPT_NAME_MAX bytes; users also without '/', since %u
 * puts them into paths. */
bool ph_rcpt_valid_name(const char *s, size_t n, bool user)
{
    if (n == 0 || n > PH_RCPT_NAME_MAX || s[0] == '.' || s[n - 1] == '.')
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '.' ? s[i + 1] == '.' : !is_atext(c))
            return false;
        if (user && c == '/')
            return false;
    }
    return true;
}

/* Loose on purpose (address literals, U-labels), strict where it matters: %d puts the domain
 * into paths, so no '/', no "..", no leading dot, nothing that splits an address. */
static bool valid_domain(const char *s, size_t n)
{
    if (n == 0 || n > DOMAIN_MAX || s[0] == '.')
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c <= 0x20 || c == 0x7f || strchr("/@\\,\"", c) || (c == '.' && s[i + 1] == '.'))
            return false;
    }
    return true;
}

/* Checks a target (alias target or catch-all) and returns NULL if fine, else why not. */
const char *ph_rcpt_target_problem(const char *s)
{
    size_t n = strlen(s);
    if (s[0] == '|' || s[0] == '/' || strncmp(s, ":include:", 9) == 0)
        return "pipes, files and :include: are not supported";
    if (s[0] == '"')
        return "quoted local parts are not supported";
    if (n > TARGET_MAX)
        return "target too long";
    const char *at = strrchr(s, '@');
    if (!at)
        return ph_rcpt_valid_name(s, n, false) ? NULL : "invalid local part";
    if (!ph_rcpt_valid_name(s, (size_t)(at - s), false))
        return "invalid local part";
    return valid_domain(at + 1, strlen(at + 1)) ? NULL : "invalid domain";
}

/* A copy of a valid target with the domain of a full address lowercased. */
char *ph_rcpt_target_dup(const char *s)
{
    char *p = strdup(s);
    char *at = p ? strrchr(p, '@') : NULL;
    for (char *q = at; q && *q; q++)
        *q = ascii_lower(*q);
    return p;
}

/* Expands a Maildir pattern into out; -EINVAL for a stray '%', -ENAMETOOLONG. */
static int expand_pattern(const char *pat, const char *user, const char *dom, char *out,
                          size_t outlen)
{
    size_t o = 0;
    for (const char *p = pat; *p; p++) {
        const char *piece = p;
        size_t len = 1;
        if (*p == '%') {
            p++;
            if (*p == 'u')
                piece = user, len = strlen(user);
            else if (*p == 'd')
                piece = dom, len = strlen(dom);
            else if (*p != '%')
                return -EINVAL;
        }
        if (o + len >= outlen)
            return -ENAMETOOLONG;
        memcpy(out + o, piece, len);
        o += len;
    }
    out[o] = '\0';
    return 0;
}

/* ---- lookups -------------------------------------------------------------------------- */

static int cmp_user(const void *a, const void *b)
{
    const user_entry *x = a, *y = b;
    int c = strcmp(x->name, y->name);
    return c ? c : (x->line > y->line) - (x->line < y->line);
}

static int cmp_domain(const void *a, const void *b)
{
    return strcmp(((const domain *)a)->name, ((const domain *)b)->name);
}

static int key_user(const void *key, const void *elem)
{
    return strcmp(key, ((const user_entry *)elem)->name);
}

static int key_alias(const void *key, const void *elem)
{
    return strcmp(key, ((const alias_entry *)elem)->name);
}

static int key_domain(const void *key, const void *elem)
{
    return strcmp(key, ((const domain *)elem)->name);
}

static const user_entry *find_user(const domain *d, const char *lname)
{
    return d->nusers ? bsearch(lname, d->users, d->nusers, sizeof(*d->users), key_user) : NULL;
}

static const alias_entry *find_alias(const domain *d, const char *lname)
{
    if (!d->naliases)
        return NULL;
    return bsearch(lname, d->aliases, d->naliases, sizeof(*d->aliases), key_alias);
}

/* The domain s[0..n) in any case, or NULL. */
static const domain *find_domain(const ph_rcpt_table *t, const char *s, size_t n)
{
    char key[DOMAIN_MAX + 1];
    if (!t || t->ndomains == 0 || n > DOMAIN_MAX)
        return NULL;
    for (size_t i = 0; i < n; i++)
        key[i] = ascii_lower(s[i]);
    key[n] = '\0';
    return bsearch(key, t->domains, t->ndomains, sizeof(*t->domains), key_domain);
}

bool ph_rcpt_table_is_local(const ph_rcpt_table *t, const char *dom)
{
    return dom && find_domain(t, dom, strlen(dom)) != NULL;
}

/* ---- building ------------------------------------------------------------------------- */

static void free_domain(domain *d)
{
    for (size_t i = 0; i < d->nusers; i++) {
        free(d->users[i].name);
        free(d->users[i].maildir);
    }
    for (size_t i = 0; i < d->naliases; i++) {
        for (size_t j = 0; j < d->aliases[i].ntargets; j++)
            free(d->aliases[i].targets[j]);
        free(d->aliases[i].targets);
        free(d->aliases[i].name);
    }
    free(d->users);
    free(d->aliases);
    free(d->name);
    free(d->pattern);
    free(d->lmtp);
    free(d->catch_all);
    free(d->aliases_file);
}

void ph_rcpt_table_free(ph_rcpt_table *t)
{
    if (!t)
        return;
    for (size_t i = 0; i < t->ndomains; i++)
        free_domain(&t->domains[i]);
    free(t->domains);
    free(t->primary);
    free(t);
}

/* Takes over name and maildir (freed on error too). */
int ph_rcpt_add_user(domain *d, char *name, char *maildir, unsigned line)
{
    if (!name ||
        ph_rcpt_grow((void **)&d->users, &d->users_cap, d->nusers + 1, sizeof(*d->users))) {
        free(name);
        free(maildir);
        return -ENOMEM;
    }
    d->users[d->nusers++] = (user_entry){.name = name, .maildir = maildir, .line = line};
    return 0;
}

/* Sorts the users; an inline user also in the file merges into the file's entry (which sorts
 * after it: lines > 0); a name twice in the file is an error at the later line. */
int ph_rcpt_finish_users(domain *d, const char *file, char *err, size_t errlen)
{
    if (d->nusers)
        qsort(d->users, d->nusers, sizeof(*d->users), cmp_user);
    size_t out = 0;
    for (size_t i = 0; i < d->nusers; i++) {
        user_entry *u = &d->users[i];
        if (out && strcmp(d->users[out - 1].name, u->name) == 0) {
            user_entry *prev = &d->users[out - 1];
            if (prev->line) {
                unsigned line = u->line;
                for (size_t j = i; j < d->nusers; j++) {
                    free(d->users[j].name);
                    free(d->users[j].maildir);
                }
                d->nusers = out;
                return ph_rcpt_fail(err, errlen, -EINVAL,
                                    "%s:%u: duplicate user '%s' (first on line %u)", file, line,
                                    prev->name, prev->line);
            }
            free(prev->name);
            free(prev->maildir);
            *prev = *u;
            continue;
        }
        d->users[out++] = *u;
    }
    d->nusers = out;
    return 0;
}

/* ---- loading -------------------------------------------------------------------------- */

static int check_def(const ph_domain_def *def, char *err, size_t errlen)
{
    const char *name = def->name ? def->name : "";
    if (!valid_domain(name, strlen(name)))
        return ph_rcpt_fail(err, errlen, -EINVAL, "invalid domain name '%s'", name);
    if (def->transport == PH_DELIVER_LMTP && !(def->lmtp && *def->lmtp))
        return ph_rcpt_fail(err, errlen, -EINVAL, "domain %s: LMTP transport without a destination",
                            name);
    if (def->transport == PH_DELIVER_MAILDIR) {
        char path[PATH_MAX];
        if (!def->maildir || def->maildir[0] != '/')
            return ph_rcpt_fail(err, errlen, -EINVAL,
                                "domain %s: maildir pattern must be an absolute path", name);
        if (expand_pattern(def->maildir, "u", name, path, sizeof(path)) < 0)
            return ph_rcpt_fail(err, errlen, -EINVAL,
                                "domain %s: bad maildir pattern '%s' (only %%u, "
                                "%%d and %%%% are known)", name, def->maildir);
    } else if (def->transport != PH_DELIVER_LMTP) {
        return ph_rcpt_fail(err, errlen, -EINVAL, "domain %s: unknown transport", name);
    }
    const char *why =
        def->catch_all && *def->catch_all ? ph_rcpt_target_problem(def->catch_all) : NULL;
    if (why)
        return ph_rcpt_fail(err, errlen, -EINVAL, "domain %s: catch-all '%s': %s", name,
                            def->catch_all, why);
    if (def->delimiter && !is_atext((unsigned char)def->delimiter))
        return ph_rcpt_fail(err, errlen, -EINVAL, "domain %s: invalid delimiter", name);
    return 0;
}

static int copy_def(domain *d, const ph_domain_def *def)
{
    d->name = ph_rcpt_lower_dup(def->name, strlen(def->name));
    d->transport = def->transport;
    d->delimiter = def->delimiter;
    d->pattern = def->transport == PH_DELIVER_MAILDIR ? dup_or_null(def->maildir) : NULL;
    d->lmtp = def->transport == PH_DELIVER_LMTP ? dup_or_null(def->lmtp) : NULL;
    d->catch_all = def->catch_all && *def->catch_all ? ph_rcpt_target_dup(def->catch_all) : NULL;
    d->aliases_file = dup_or_null(def->aliases_file);
    bool short_of_memory = !d->name || (def->transport == PH_DELIVER_MAILDIR && !d->pattern) ||
                           (def->transport == PH_DELIVER_LMTP && !d->lmtp) ||
                           (def->catch_all && *def->catch_all && !d->catch_all) ||
                           (def->aliases_file && *def->aliases_file && !d->aliases_file);
    return short_of_memory ? -ENOMEM : 0;
}

static int inline_users(domain *d, const ph_domain_def *def, char *err, size_t errlen)
{
    for (size_t i = 0; i < def->nusers; i++) {
        const char *u = def->users[i] ? def->users[i] : "";
        if (!ph_rcpt_valid_name(u, strlen(u), true))
            return ph_rcpt_fail(err, errlen, -EINVAL, "domain %s: invalid user name '%s'",
                                d->name, u);
        if (ph_rcpt_add_user(d, ph_rcpt_lower_dup(u, strlen(u)), NULL, 0) < 0)
            return ph_rcpt_fail(err, errlen, -ENOMEM, "out of memory");
    }
    return 0;
}

static int load_domain(domain *d, const ph_domain_def *def, char *err, size_t errlen)
{
    int rc = check_def(def, err, errlen);
    if (rc == 0 && copy_def(d, def) < 0)
        rc = ph_rcpt_fail(err, errlen, -ENOMEM, "out of memory");
    if (rc == 0)
        rc = inline_users(d, def, err, errlen);
    if (rc == 0 && def->mailboxes_file && *def->mailboxes_file)
        rc = ph_rcpt_load_mailboxes(d, def->mailboxes_file, err, errlen);
    else if (rc == 0)
        rc = ph_rcpt_finish_users(d, "", err, errlen);
    if (rc == 0 && d->aliases_file)
        rc = ph_rcpt_load_aliases(d, err, errlen);
    return rc;
}

/* Sorts the domains (refusing duplicates) and numbers the aliases table-wide. */
static int index_table(ph_rcpt_table *t, char *err, size_t errlen)
{
    if (t->ndomains > 1)
        qsort(t->domains, t->ndomains, sizeof(*t->domains), cmp_domain);
    for (size_t i = 1; i < t->ndomains; i++)
        if (strcmp(t->domains[i - 1].name, t->domains[i].name) == 0)
            return ph_rcpt_fail(err, errlen, -EINVAL, "domain %s defined twice",
                                t->domains[i].name);
    for (size_t i = 0; i < t->ndomains; i++)
        for (size_t j = 0; j < t->domains[i].naliases; j++)
            t->domains[i].aliases[j].index = t->naliases++;
    return 0;
}

int ph_rcpt_table_load(const ph_domain_def *defs, size_t n, ph_rcpt_table **out, char *err,
                       size_t errlen)
{
    *out = NULL;
    ph_rcpt_table *t = calloc(1, sizeof(*t));
    if (!t || (n && !(t->domains = calloc(n, sizeof(*t->domains))))) {
        free(t);
        return ph_rcpt_fail(err, errlen, -ENOMEM, "out of memory");
    }
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++, t->ndomains++)
        rc = load_domain(&t->domains[i], &defs[i], err, errlen);
    if (rc == 0 && n && !(t->primary = strdup(t->domains[0].name)))
        rc = ph_rcpt_fail(err, errlen, -ENOMEM, "out of memory");
    if (rc == 0)
        rc = index_table(t, err, errlen);
    if (rc < 0) {
        ph_rcpt_table_free(t);
        return rc;
    }
    *out = t;
    return 0;
}

/* ---- expansion ------------------------------------------------------------------------ */

enum { MARK_NONE, MARK_ACTIVE, MARK_DONE };

typedef struct expander {
    const ph_rcpt_table *t;
    ph_expansion *res;
    size_t cap;
    unsigned char *marks; /* per alias index; allocated at the first alias */
    unsigned depth;
} expander;

/* Internal outcomes; UNKNOWN below the top level becomes BROKEN. */
enum { X_OK = 0, X_UNKNOWN = 1, X_LOOP, X_TOO_MANY, X_BROKEN, X_NOMEM };

__attribute__((format(printf, 3, 4)))
static int stop(expander *x, int outcome, const char *fmt, ...)
{
    if (!x->res->detail[0]) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(x->res->detail, sizeof(x->res->detail), fmt, ap);
        va_end(ap);
    }
    return outcome;
}

/* Appends a final address (taken over) unless it is there already. */
static int add_final(expander *x, char *addr, bool local)
{
    ph_expansion *r = x->res;
    if (!addr)
        return X_NOMEM;
    for (size_t i = 0; i < r->ntargets; i++)
        if (strcmp(r->targets[i].addr, addr) == 0) {
            free(addr);
            return X_OK;
        }
    if (r->ntargets == PH_RCPT_TARGETS_MAX) {
        free(addr);
        return stop(x, X_TOO_MANY, "more than %d final addresses", PH_RCPT_TARGETS_MAX);
    }
    if (ph_rcpt_grow((void **)&r->targets, &x->cap, r->ntargets + 1, sizeof(*r->targets))) {
        free(addr);
        return X_NOMEM;
    }
    r->targets[r->ntargets++] = (ph_rcpt_target){.addr = addr, .local = local};
    return X_OK;
}

/* "user[<delim>ext]@domain". */
static int add_user_final(expander *x, const domain *d, const user_entry *u, const char *ext)
{
    size_t len = strlen(u->name) + (ext ? 1 + strlen(ext) : 0) + 1 + strlen(d->name) + 1;
    char *a = malloc(len);
    if (!a)
        return X_NOMEM;
    if (ext)
        snprintf(a, len, "%s%c%s@%s", u->name, d->delimiter, ext, d->name);
    else
        snprintf(a, len, "%s@%s", u->name, d->name);
    return add_final(x, a, true);
}

static int expand_local(expander *x, const domain *d, const char *local, bool via_catch_all);

/* A target of an alias or catch-all in domain d: a local part of d or a full address. */
static int expand_target(expander *x, const domain *d, const char *target, bool via_catch_all)
{
    const char *at = strrchr(target, '@');
    const domain *td = at ? find_domain(x->t, at + 1, strlen(at + 1)) : d;
    if (!td)
        return add_final(x, ph_rcpt_target_dup(target), false);
    char *local = at ? strndup(target, (size_t)(at - target)) : strdup(target);
    if (!local)
        return X_NOMEM;
    int rc = expand_local(x, td, local, via_catch_all);
    if (rc == X_UNKNOWN)
        rc = stop(x, X_BROKEN, "%s '%s@%s' names no user or alias",
                  via_catch_all ? "catch-all" : "alias target", local, td->name);
    free(local);
    return rc;
}

static int expand_alias(expander *x, const domain *d, const alias_entry *a, bool via_catch_all)
{
    if (!x->marks && !(x->marks = calloc(x->t->naliases, 1)))
        return X_NOMEM;
    unsigned char *mark = &x->marks[a->index];
    if (*mark == MARK_DONE)
        return X_OK; /* reached again by another path: its targets are in already */
    if (*mark == MARK_ACTIVE) {
        const user_entry *u = find_user(d, a->name);
        return u ? add_user_final(x, d, u, NULL)
                 : stop(x, X_LOOP, "alias loop at %s@%s", a->name, d->name);
    }
    if (x->depth == PH_RCPT_ALIAS_DEPTH_MAX)
        return stop(x, X_LOOP, "aliases nested deeper than %d at %s@%s",
                     PH_RCPT_ALIAS_DEPTH_MAX, a->name, d->name);
    *mark = MARK_ACTIVE;
    x->depth++;
    int rc = X_OK;
    for (size_t i = 0; i < a->ntargets && rc == X_OK; i++)
        rc = expand_target(x, d, a->targets[i], via_catch_all);
    x->depth--;
    *mark = MARK_DONE;
    return rc;
}

/* A name split for lookup: the whole local part lowercased, and where its extension starts. */
typedef struct split_name {
    char *name;      /* lowercase local part; cut at the delimiter by split_off_extension */
    const char *ext; /* the extension as written (inside the caller's local part), or NULL */
} split_name;

/* Cuts name at the first delimiter after its first byte; false when there is none. */
static bool split_off_extension(const domain *d, const char *local, split_name *s)
{
    char *delim = d->delimiter && s->name[0] ? strchr(s->name + 1, d->delimiter) : NULL;
    if (!delim)
        return false;
    s->ext = local + (delim - s->name) + 1;
    *delim = '\0';
    return true;
}

/* Alias, then user, by the name itself and then without its extension; then the catch-all. */
static int expand_local(expander *x, const domain *d, const char *local, bool via_catch_all)
{
    split_name s = {.name = ph_rcpt_lower_dup(local, strlen(local))};
    if (!s.name)
        return X_NOMEM;
    const alias_entry *a = find_alias(d, s.name);
    const user_entry *u = a ? NULL : find_user(d, s.name);
    if (!a && !u && split_off_extension(d, local, &s)) {
        a = find_alias(d, s.name);
        u = a ? NULL : find_user(d, s.name);
    }
    int rc = X_UNKNOWN;
    if (a)
        rc = expand_alias(x, d, a, via_catch_all);
    else if (u)
        rc = add_user_final(x, d, u, s.ext);
    else if (d->catch_all && !via_catch_all)
        rc = expand_target(x, d, d->catch_all, true);
    free(s.name);
    return rc;
}

void ph_expansion_clear(ph_expansion *res)
{
    if (!res)
        return;
    for (size_t i = 0; i < res->ntargets; i++)
        free(res->targets[i].addr);
    free(res->targets);
    *res = (ph_expansion){.kind = PH_EXPAND_NOT_LOCAL};
}

/* Runs the expansion of local@d at the top level and turns the outcome into res->kind; a
 * failed expansion keeps only its detail. */
static int expand_top(const ph_rcpt_table *t, const domain *d, const char *local,
                      ph_expansion *res)
{
    static const ph_expand_kind kinds[] = {
        [X_OK] = PH_EXPAND_LOCAL,       [X_UNKNOWN] = PH_EXPAND_UNKNOWN,
        [X_LOOP] = PH_EXPAND_LOOP,      [X_TOO_MANY] = PH_EXPAND_TOO_MANY,
        [X_BROKEN] = PH_EXPAND_BROKEN,
    };
    *res = (ph_expansion){.kind = PH_EXPAND_NOT_LOCAL};
    expander x = {.t = t, .res = res};
    int rc = expand_local(&x, d, local, false);
    free(x.marks);
    if (rc == X_NOMEM) {
        ph_expansion_clear(res);
        return -ENOMEM;
    }
    if (rc != X_OK) {
        for (size_t i = 0; i < res->ntargets; i++)
            free(res->targets[i].addr);
        free(res->targets);
        res->targets = NULL;
        res->ntargets = 0;
    }
    res->kind = kinds[rc];
    return 0;
}

int ph_rcpt_table_expand(const ph_rcpt_table *t, const char *addr, ph_expansion *res)
{
    *res = (ph_expansion){.kind = PH_EXPAND_NOT_LOCAL};
    if (!t || !addr)
        return -EINVAL;
    const char *at = strrchr(addr, '@');
    if (!at) {
        /* RCPT TO:<Postmaster> (RFC 5321 4.5.1): the primary domain's postmaster */
        const domain *pd = t->primary ? find_domain(t, t->primary, strlen(t->primary)) : NULL;
        return pd && ascii_ieq(addr, "postmaster") ? expand_top(t, pd, addr, res) : 0;
    }
    const domain *d = find_domain(t, at + 1, strlen(at + 1));
    if (!d)
        return 0;
    char *local = strndup(addr, (size_t)(at - addr));
    if (!local)
        return -ENOMEM;
    int rc = expand_top(t, d, local, res);
    free(local);
    return rc;
}

const char *ph_expand_kind_name(ph_expand_kind k)
{
    static const char *const names[] = {
        [PH_EXPAND_NOT_LOCAL] = "not-local", [PH_EXPAND_LOCAL] = "local",
        [PH_EXPAND_UNKNOWN] = "unknown",     [PH_EXPAND_LOOP] = "loop",
        [PH_EXPAND_TOO_MANY] = "too-many",   [PH_EXPAND_BROKEN] = "broken",
    };
    return (unsigned)k < sizeof(names) / sizeof(*names) ? names[k] : "?";
}

/* ---- mailboxes ------------------------------------------------------------------------ */

void ph_mailbox_clear(ph_mailbox *mbox)
{
    if (!mbox)
        return;
    free(mbox->user);
    free(mbox->extension);
    free(mbox->maildir);
    free(mbox->folder);
    free(mbox->lmtp);
    *mbox = (ph_mailbox){0};
}

/* "<maildir>/.<ext>" if ext is a plain folder name and that directory exists, else NULL
 * (also when memory is short: INBOX is always a correct place). */
static char *find_folder(const char *maildir, const char *ext)
{
    char name[PH_RCPT_NAME_MAX + 1];
    size_t n = strlen(ext);
    if (n == 0 || n > PH_RCPT_NAME_MAX)
        return NULL;
    for (size_t i = 0; i <= n; i++) {
        name[i] = ascii_lower(ext[i]);
        char c = name[i];
        if (c && !((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-'))
            return NULL;
    }
    char path[PATH_MAX];
    struct stat st;
    if (snprintf(path, sizeof(path), "%s/.%s", maildir, name) >= (int)sizeof(path) ||
        stat(path, &st) != 0 || !S_ISDIR(st.st_mode))
        return NULL;
    return strdup(path);
}

static int fill_mailbox(const domain *d, const user_entry *u, const char *ext, ph_mailbox *mbox)
{
    char path[PATH_MAX];
    mbox->transport = d->transport;
    size_t len = strlen(u->name) + 1 + strlen(d->name) + 1;
    if (!(mbox->user = malloc(len)))
        return -ENOMEM;
    snprintf(mbox->user, len, "%s@%s", u->name, d->name);
    if (ext && !(mbox->extension = strdup(ext)))
        return -ENOMEM;
    if (d->transport == PH_DELIVER_LMTP)
        return (mbox->lmtp = strdup(d->lmtp)) ? 0 : -ENOMEM;
    if (u->maildir)
        snprintf(path, sizeof(path), "%s", u->maildir);
    else if (expand_pattern(d->pattern, u->name, d->name, path, sizeof(path)) < 0)
        return -ENAMETOOLONG; /* the pattern itself was checked at load */
    if (!(mbox->maildir = strdup(path)))
        return -ENOMEM;
    mbox->folder = ext ? find_folder(path, ext) : NULL;
    return 0;
}

int ph_rcpt_table_mailbox(const ph_rcpt_table *t, const char *final_addr, ph_mailbox *mbox)
{
    *mbox = (ph_mailbox){0};
    const char *at = final_addr ? strrchr(final_addr, '@') : NULL;
    const domain *d = at ? find_domain(t, at + 1, strlen(at + 1)) : NULL;
    if (!d)
        return -ENOENT;
    char *local = strndup(final_addr, (size_t)(at - final_addr));
    split_name s = {.name = local ? ph_rcpt_lower_dup(local, strlen(local)) : NULL};
    int rc = -ENOMEM;
    if (s.name) {
        const user_entry *u = find_user(d, s.name);
        if (!u && split_off_extension(d, local, &s))
            u = find_user(d, s.name);
        rc = u ? fill_mailbox(d, u, s.ext, mbox) : -ENOENT;
    }
    if (rc < 0)
        ph_mailbox_clear(mbox);
    free(s.name);
    free(local);
    return rc;
}

/* ---- checks --------------------------------------------------------------------------- */

typedef struct checker {
    void (*warn)(void *arg, const char *message);
    void *arg;
    int problems;
} checker;

__attribute__((format(printf, 2, 3)))
static void report(checker *c, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    c->warn(c->arg, msg);
    c->problems++;
}

static int check_domain(const ph_rcpt_table *t, const domain *d, checker *c)
{
    ph_expansion res;
    for (size_t i = 0; i < d->naliases; i++) {
        const alias_entry *a = &d->aliases[i];
        if (expand_top(t, d, a->name, &res) < 0)
            return -ENOMEM;
        if (res.kind != PH_EXPAND_LOCAL)
            report(c, "%s:%u: alias '%s': %s: %s", d->aliases_file, a->line, a->name,
                   ph_expand_kind_name(res.kind), res.detail);
        ph_expansion_clear(&res);
    }
    if (d->catch_all) {
        res = (ph_expansion){.kind = PH_EXPAND_NOT_LOCAL};
        expander x = {.t = t, .res = &res};
        int rc = expand_target(&x, d, d->catch_all, true);
        free(x.marks);
        if (rc == X_NOMEM) {
            ph_expansion_clear(&res);
            return -ENOMEM;
        }
        if (rc != X_OK)
            report(c, "domain %s: catch-all '%s': %s", d->name, d->catch_all, res.detail);
        ph_expansion_clear(&res);
    }
    if (expand_top(t, d, "postmaster", &res) < 0)
        return -ENOMEM;
    if (res.kind != PH_EXPAND_LOCAL)
        report(c, "domain %s: postmaster is %s%s%s (RFC 5321 4.5.1 requires it)", d->name,
               res.kind == PH_EXPAND_UNKNOWN ? "not defined" : ph_expand_kind_name(res.kind),
               res.detail[0] ? ": " : "", res.detail);
    ph_expansion_clear(&res);
    return 0;
}

int ph_rcpt_table_check(const ph_rcpt_table *t, void (*warn)(void *arg, const char *message),
                        void *arg)
{
    checker c = {.warn = warn, .arg = arg};
    for (size_t i = 0; t && i < t->ndomains; i++)
        if (check_domain(t, &t->domains[i], &c) < 0)
            return -ENOMEM;
    return c.problems;
}
