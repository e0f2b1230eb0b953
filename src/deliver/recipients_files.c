/*
 * recipients_files.c - the parsers of the two files a local domain may name (formats in
 * recipients.h): the mailboxes file (`user [maildir-path]` per line) and the aliases file
 * (/etc/aliases style, with continuation lines). They fill one domain's user and alias arrays;
 * building the table, expansion and mailboxes are in recipients.c.
 *
 * Separate from recipients.c because reading files (line reader, words, comments, file:line
 * errors) is its own job, apart from what the table means; the two share
 * recipients_internal.h. Each file is read once, line by line; the first bad line ends the
 * load with "FILE:LINE: message" in err, and whatever the domain took over so far is freed
 * with the rest of the table by the caller.
 */
#include "deliver/recipients_internal.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- reading lines and words -------------------------------------------------------------- */

typedef struct line_reader {
    FILE *f;
    const char *path;
    char *buf;
    size_t cap;
    unsigned line;
} line_reader;

static int reader_open(line_reader *r, const char *path, char *err, size_t errlen)
{
    *r = (line_reader){.path = path};
    r->f = fopen(path, "re");
    if (!r->f) {
        int e = errno;
        return ph_rcpt_fail(err, errlen, -e, "%s: %s", path, strerror(e));
    }
    return 0;
}

static void reader_close(line_reader *r)
{
    if (r->f)
        fclose(r->f);
    free(r->buf);
}

/* Next line without its line end into r->buf: 1, 0 at the end, or a negative errno. */
static int reader_next(line_reader *r, char *err, size_t errlen)
{
    errno = 0;
    ssize_t n = getline(&r->buf, &r->cap, r->f);
    if (n < 0) {
        if (!ferror(r->f))
            return 0;
        int e = errno ? errno : EIO;
        return ph_rcpt_fail(err, errlen, -e, "%s: %s", r->path, strerror(e));
    }
    r->line++;
    while (n > 0 && (r->buf[n - 1] == '\n' || r->buf[n - 1] == '\r'))
        r->buf[--n] = '\0';
    return 1;
}

static bool is_space(char c)
{
    return c == ' ' || c == '\t';
}

/* Splits the next word off *p (separators: whitespace, and commas when commas is set); NULL
 * at the end of the line or at a '#' starting a word (a comment). The word is NUL-terminated
 * in place. */
static char *next_word(char **p, bool commas)
{
    char *s = *p;
    while (is_space(*s) || (commas && *s == ','))
        s++;
    if (!*s || *s == '#') {
        *p = s + strlen(s);
        return NULL;
    }
    char *w = s;
    while (*s && !is_space(*s) && !(commas && *s == ','))
        s++;
    if (*s)
        *s++ = '\0';
    *p = s;
    return w;
}

/* "name" or "name@thisdomain" from a file: the lowercase name, or NULL with err set. */
static char *own_name(const domain *d, const char *word, bool user, const line_reader *r,
                      char *err, size_t errlen, int *code)
{
    const char *at = strrchr(word, '@');
    size_t n = at ? (size_t)(at - word) : strlen(word);
    *code = -EINVAL;
    if (at && !ascii_ieq(at + 1, d->name)) {
        ph_rcpt_fail(err, errlen, -EINVAL, "%s:%u: '%s' is not in domain %s", r->path, r->line,
                     word, d->name);
        return NULL;
    }
    if (!ph_rcpt_valid_name(word, n, user)) {
        ph_rcpt_fail(err, errlen, -EINVAL, "%s:%u: invalid %s name '%s'", r->path, r->line,
                     user ? "user" : "alias", word);
        return NULL;
    }
    char *name = ph_rcpt_lower_dup(word, n);
    if (!name)
        *code = ph_rcpt_fail(err, errlen, -ENOMEM, "out of memory");
    return name;
}

/* ---- mailboxes file ----------------------------------------------------------------------- */

static int mailboxes_line(domain *d, line_reader *r, char *err, size_t errlen)
{
    char *p = r->buf;
    char *user = next_word(&p, false);
    if (!user)
        return 0;
    char *path = next_word(&p, false);
    if (next_word(&p, false))
        return ph_rcpt_fail(err, errlen, -EINVAL,
                            "%s:%u: too many fields (expected: user [maildir])", r->path, r->line);
    if (path && path[0] != '/')
        return ph_rcpt_fail(err, errlen, -EINVAL, "%s:%u: maildir path must be absolute: '%s'",
                            r->path, r->line, path);
    if (path && strlen(path) >= PATH_MAX)
        return ph_rcpt_fail(err, errlen, -EINVAL, "%s:%u: maildir path too long", r->path, r->line);
    int code;
    char *name = own_name(d, user, true, r, err, errlen, &code);
    if (!name)
        return code;
    char *copy = NULL;
    if (path && !(copy = strdup(path))) {
        free(name);
        return ph_rcpt_fail(err, errlen, -ENOMEM, "out of memory");
    }
    if (ph_rcpt_add_user(d, name, copy, r->line) < 0)
        return ph_rcpt_fail(err, errlen, -ENOMEM, "out of memory");
    return 0;
}

int ph_rcpt_load_mailboxes(domain *d, const char *file, char *err, size_t errlen)
{
    line_reader r;
    int rc = reader_open(&r, file, err, errlen);
    while (rc == 0 && (rc = reader_next(&r, err, errlen)) == 1)
        rc = mailboxes_line(d, &r, err, errlen);
    reader_close(&r);
    return rc < 0 ? rc : ph_rcpt_finish_users(d, file, err, errlen);
}

/* ---- aliases file ------------------------------------------------------------------------- */

static int alias_add_target(alias_entry *a, const char *word, const line_reader *r, char *err,
                            size_t errlen)
{
    const char *why = ph_rcpt_target_problem(word);
    if (why)
        return ph_rcpt_fail(err, errlen, -EINVAL, "%s:%u: alias '%s': target '%s': %s", r->path,
                            r->line, a->name, word, why);
    char *t = ph_rcpt_target_dup(word);
    if (!t || ph_rcpt_grow((void **)&a->targets, &a->cap, a->ntargets + 1, sizeof(*a->targets))) {
        free(t);
        return ph_rcpt_fail(err, errlen, -ENOMEM, "out of memory");
    }
    a->targets[a->ntargets++] = t;
    return 0;
}

static int alias_targets(alias_entry *a, char *p, const line_reader *r, char *err,
                         size_t errlen)
{
    char *w;
    while ((w = next_word(&p, true)) != NULL) {
        int rc = alias_add_target(a, w, r, err, errlen);
        if (rc < 0)
            return rc;
    }
    return 0;
}

/* Starts an alias on a line "name: targets...". */
static int alias_start(domain *d, line_reader *r, char *err, size_t errlen)
{
    char *colon = strchr(r->buf, ':');
    if (!colon)
        return ph_rcpt_fail(err, errlen, -EINVAL, "%s:%u: expected 'alias: target, ...'", r->path,
                            r->line);
    *colon = '\0';
    char *p = r->buf, *word = next_word(&p, false);
    if (!word || next_word(&p, false))
        return ph_rcpt_fail(err, errlen, -EINVAL, "%s:%u: expected one alias name before ':'",
                            r->path, r->line);
    int code;
    char *name = own_name(d, word, false, r, err, errlen, &code);
    if (!name)
        return code;
    if (ph_rcpt_grow((void **)&d->aliases, &d->aliases_cap, d->naliases + 1, sizeof(*d->aliases))) {
        free(name);
        return ph_rcpt_fail(err, errlen, -ENOMEM, "out of memory");
    }
    alias_entry *a = &d->aliases[d->naliases++];
    *a = (alias_entry){.name = name, .line = r->line};
    return alias_targets(a, colon + 1, r, err, errlen);
}

static int alias_end(const domain *d, const line_reader *r, char *err, size_t errlen)
{
    const alias_entry *a = d->naliases ? &d->aliases[d->naliases - 1] : NULL;
    if (a && a->ntargets == 0)
        return ph_rcpt_fail(err, errlen, -EINVAL, "%s:%u: alias '%s' has no targets", r->path,
                            a->line, a->name);
    return 0;
}

static int aliases_line(domain *d, line_reader *r, bool *open, char *err, size_t errlen)
{
    const char *s = r->buf;
    while (is_space(*s))
        s++;
    if (!*s || *s == '#')
        return 0; /* comments and blank lines neither end nor continue an alias */
    if (is_space(r->buf[0])) {
        if (!*open)
            return ph_rcpt_fail(err, errlen, -EINVAL, "%s:%u: continuation line without an alias",
                                r->path, r->line);
        return alias_targets(&d->aliases[d->naliases - 1], r->buf, r, err, errlen);
    }
    int rc = *open ? alias_end(d, r, err, errlen) : 0;
    if (rc == 0)
        rc = alias_start(d, r, err, errlen);
    *open = true;
    return rc;
}

static int cmp_alias(const void *a, const void *b)
{
    const alias_entry *x = a, *y = b;
    int c = strcmp(x->name, y->name);
    return c ? c : (x->line > y->line) - (x->line < y->line);
}

static int finish_aliases(domain *d, char *err, size_t errlen)
{
    if (d->naliases)
        qsort(d->aliases, d->naliases, sizeof(*d->aliases), cmp_alias);
    for (size_t i = 1; i < d->naliases; i++)
        if (strcmp(d->aliases[i - 1].name, d->aliases[i].name) == 0)
            return ph_rcpt_fail(err, errlen, -EINVAL,
                                "%s:%u: duplicate alias '%s' (first on line %u)", d->aliases_file,
                                d->aliases[i].line, d->aliases[i].name, d->aliases[i - 1].line);
    return 0;
}

int ph_rcpt_load_aliases(domain *d, char *err, size_t errlen)
{
    line_reader r;
    bool open = false;
    int rc = reader_open(&r, d->aliases_file, err, errlen);
    while (rc == 0 && (rc = reader_next(&r, err, errlen)) == 1)
        rc = aliases_line(d, &r, &open, err, errlen);
    if (rc == 0 && open)
        rc = alias_end(d, &r, err, errlen);
    reader_close(&r);
    return rc < 0 ? rc : finish_aliases(d, err, errlen);
}
