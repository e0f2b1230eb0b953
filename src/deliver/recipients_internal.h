/*
 * recipients_internal.h - what the two halves of the local recipient table share: recipients.c
 * (name and target validation, lookups, building the table from domain definitions, expansion,
 * mailboxes, checks: the public API of recipients.h) and recipients_files.c (the parsers of the
 * mailboxes and aliases files a domain names).
 *
 * Internal to those two files: no other module includes it; everyone else uses recipients.h.
 * The per-domain structs are here because the file parsers fill them; struct ph_rcpt_table (the
 * sorted domain array) stays private to recipients.c, the only file that walks it.
 * No mutable state. Errors as in recipients.h: 0 or a negative errno, with the reason in err
 * ("FILE:LINE: message" for a file error); whatever a failing function took over is freed.
 */
#ifndef POSTHORN_DELIVER_RECIPIENTS_INTERNAL_H
#define POSTHORN_DELIVER_RECIPIENTS_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>

#include "deliver/recipients.h"

typedef struct user_entry {
    char *name;     /* lowercase */
    char *maildir;  /* the mailboxes file's path override, or NULL */
    unsigned line;  /* line in the mailboxes file; 0 for inline users */
} user_entry;

typedef struct alias_entry {
    char *name;     /* lowercase */
    char **targets; /* as written (domains of full addresses lowercased) */
    size_t ntargets, cap;
    unsigned line;  /* where the alias starts in its file */
    size_t index;   /* table-wide, for the expansion's visit marks */
} alias_entry;

typedef struct domain {
    char *name;     /* lowercase */
    ph_transport_kind transport;
    char *pattern;  /* Maildir pattern, or NULL */
    char *lmtp;     /* LMTP destination, or NULL */
    char *catch_all;
    char *aliases_file;
    char delimiter;
    user_entry *users;
    size_t nusers, users_cap;
    alias_entry *aliases;
    size_t naliases, aliases_cap;
} domain;

/* ---- inline helpers of both files --------------------------------------------------------- */

static inline char ascii_lower(char c)
{
    return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

/* a equals b ignoring ASCII case. */
static inline bool ascii_ieq(const char *a, const char *b)
{
    while (*a && ascii_lower(*a) == ascii_lower(*b))
        a++, b++;
    return ascii_lower(*a) == ascii_lower(*b);
}

/* ---- recipients.c ------------------------------------------------------------------------- */

/* Formats the reason into err (when there is room) and returns code. */
__attribute__((format(printf, 4, 5))) int ph_rcpt_fail(char *err, size_t errlen, int code,
                                                       const char *fmt, ...);

/* A malloc'd ASCII-lowercase copy of s[0..n), or NULL when memory is short. */
char *ph_rcpt_lower_dup(const char *s, size_t n);

/* Grows *arr (elements of size elem) so that it holds at least need; 0 or -ENOMEM. */
int ph_rcpt_grow(void **arr, size_t *cap, size_t need, size_t elem);

/* Whether s[0..n) is a valid user (user set: also without '/') or alias name (recipients.h). */
bool ph_rcpt_valid_name(const char *s, size_t n, bool user);

/* Why s is not a valid alias target or catch-all, or NULL when it is. */
const char *ph_rcpt_target_problem(const char *s);

/* A malloc'd copy of a valid target with the domain of a full address lowercased; NULL when
 * memory is short. */
char *ph_rcpt_target_dup(const char *s);

/* Appends a user to d, taking over name and maildir (freed on error too); name NULL counts as
 * memory short. 0 or -ENOMEM. */
int ph_rcpt_add_user(domain *d, char *name, char *maildir, unsigned line);

/* Sorts d's users and merges an inline user into the mailboxes file's entry of the same name;
 * a name twice in file is -EINVAL ("FILE:LINE: duplicate user ..."). */
int ph_rcpt_finish_users(domain *d, const char *file, char *err, size_t errlen);

/* ---- recipients_files.c ------------------------------------------------------------------- */

/* Reads the mailboxes file `file` into d's users (after the inline ones) and finishes them
 * (ph_rcpt_finish_users). -EINVAL for a bad line, the file's errno, -ENOMEM. */
int ph_rcpt_load_mailboxes(domain *d, const char *file, char *err, size_t errlen);

/* Reads d->aliases_file into d's aliases, sorted by name; -EINVAL for a bad line, an alias
 * without targets or twice in the file, the file's errno, -ENOMEM. */
int ph_rcpt_load_aliases(domain *d, char *err, size_t errlen);

#endif
