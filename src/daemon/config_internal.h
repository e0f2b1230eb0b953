/*
 * config_internal.h - what the two halves of posthorn.conf(5) share: config_table.c (the
 * parameter table, the value types and checks, the cross-field checks) and config.c (the line
 * parser, sections, listener resolution, the error list, `dump` and the public API of
 * config.h).
 *
 * Internal to those two files: no other module includes it; everyone else uses config.h.
 * No mutable state: the table is read-only and every function works on what it is given.
 * Value parsers fail with BAD (reason in why) or NOMEM; ph_cfg_copy_value() with -1; the
 * cross-field checks fail by adding "FILE:LINE: message" errors through ph_cfg_errs_add().
 */
#ifndef POSTHORN_DAEMON_CONFIG_INTERNAL_H
#define POSTHORN_DAEMON_CONFIG_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "daemon/config.h"

#define BAD (-1)   /* a value parser's "not acceptable" (reason in why) */
#define NOMEM (-2) /* a value parser's "out of memory" */

typedef enum ptype {
    T_STRING, T_PATH, T_BOOL, T_UINT, T_SIZE, T_DURATION, T_ENUM, T_LIST, T__N
} ptype;
/* Where a parameter may be set; also the kind of a section (S_GLOBAL: before any section). */
typedef enum pscope {
    S_GLOBAL = 1, S_LISTENER = 2, S_BOTH = S_GLOBAL | S_LISTENER, S_DOMAIN = 4
} pscope;

/* A place keys are set in: the global scope (l and d NULL), a listener or a domain. */
typedef struct section {
    pscope kind; /* S_GLOBAL, S_LISTENER or S_DOMAIN */
    const ph_config_listener *l;
    const ph_config_domain *d;
} section;

/* Extra check of a string value or of one list entry: NULL if fine, else what is wrong. */
typedef const char *(*value_check)(const char *s);

typedef struct param {
    const char *name;
    ptype type;
    pscope scope;
    size_t offset;        /* into ph_config_global, ph_config_listener, ph_config_shared or
                             ph_config_domain */
    const char *def;      /* default in file syntax; NULL: from role_def by the role */
    int role_def[3];      /* defaults for mx, submission, submissions; -1: computed (tls) */
    uint64_t min, max;    /* uint, size, duration (in ms); list: max entries (0: the cap) */
    const char *const *words; /* enum: the words, in the order of the C enum */
    value_check check;
    const char *help;
} param;

/* How one type is parsed and printed. parse stores into slot (replacing a string, appending
 * to a list): 0, BAD with the reason in why[n], or NOMEM. */
typedef struct type_ops {
    const char *name;
    size_t size;
    int (*parse)(const param *p, const char *v, void *slot, char *why, size_t n);
    void (*print)(const param *p, const void *slot, FILE *out);
    bool empty_ok; /* "key =" is a value (string, path, list), not a missing one */
} type_ops;

/* A quoted excerpt of file text for a message (see ph_cfg_quote). */
typedef struct qbuf {
    char s[72];
} qbuf;

/* ---- inline helpers of both files ------------------------------------------------------- */

/* Whether p may be set in a section of this kind (S_GLOBAL: before any section). */
static inline bool in_scope(const param *p, pscope kind)
{
    return (p->scope & kind) != 0;
}

static inline section global_section(void)
{
    return (section){.kind = S_GLOBAL};
}

/* l NULL: the global scope (the convention of the public API). */
static inline section listener_section(const ph_config_listener *l)
{
    return l ? (section){.kind = S_LISTENER, .l = l} : global_section();
}

static inline section domain_section(const ph_config_domain *d)
{
    return (section){.kind = S_DOMAIN, .d = d};
}

/* Character classes of the parser and the value checks (ASCII only, whatever the locale). */
static inline bool is_blank(int c) { return c == ' ' || c == '\t'; }
static inline bool is_digit(int c) { return c >= '0' && c <= '9'; }
static inline bool is_alnum(int c)
{
    return is_digit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static inline char ascii_lower(char c)
{
    return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

/* True if s[0..n) is non-empty and only has alphanumerics and the bytes in extra. */
static inline bool only_chars(const char *s, size_t n, const char *extra)
{
    for (size_t i = 0; i < n; i++)
        if (!is_alnum((unsigned char)s[i]) && (s[i] == '\0' || !strchr(extra, s[i])))
            return false;
    return n > 0;
}

/* ---- config_table.c --------------------------------------------------------------------- */

extern const param ph_cfg_params[];   /* the table, in documentation and dump order */
extern const size_t ph_cfg_nparams;   /* its rows (<= PH_CONFIG_MAX_PARAMS) */
extern const type_ops ph_cfg_types[T__N];

/* The row called name, or NULL. */
const param *ph_cfg_find_param(const char *name);

/* Where parameter p (in scope for sec.kind) lives in section sec. */
void *ph_cfg_slot(const ph_config *cfg, section sec, const param *p);

/* The set_line array of section sec. */
unsigned *ph_cfg_set_lines(const ph_config *cfg, section sec);

/* A duration in file syntax ("90", "5m", ...) in milliseconds: 0, or BAD if it is not one or
 * does not fit 64 bits (no bounds applied). */
int ph_cfg_duration_ms(const char *s, uint64_t *ms);

/* Whether s is a valid [domain NAME]: 1..253 bytes, dot-separated labels of 1..63 letters,
 * digits and '-', no label starting or ending with '-'. */
bool ph_cfg_domain_name_ok(const char *s);

/* s for a message: at most 56 bytes of it, anything but printable ASCII as \xNN (no byte of
 * the file can reach a terminal raw), "..." if shortened. Returns q->s. */
const char *ph_cfg_quote(qbuf *q, const char *s);

/* Frees what a string or list slot holds (leaving NULL / empty); other types own nothing. */
void ph_cfg_release_value(const param *p, void *slot);

/* dst = src for one parameter; deep copies. -1 if out of memory. */
int ph_cfg_copy_value(const param *p, void *dst, const void *src);

/* The accepted values of p for `config params`: "a | b", "yes | no", "LO..HI" or "". */
void ph_cfg_describe_values(const param *p, char *buf, size_t size);

/* The cross-field checks of a config whose listeners are resolved: the global ones, then each
 * listener's, then each domain's, adding errors to errs. listener_headers: a section header
 * other than [domain ...] was seen (so "no [listener] section" would only repeat an error). */
void ph_cfg_check(const ph_config *cfg, ph_config_errors *errs, bool listener_headers);

/* ---- config.c --------------------------------------------------------------------------- */

/* Adds "FILE:LINE: message" (line 0: about the whole file) unless PH_CONFIG_MAX_ERRORS are
 * kept already; then it is only counted. Out of memory: counted as dropped. */
__attribute__((format(printf, 4, 5))) void ph_cfg_errs_add(ph_config_errors *e, const char *file,
                                                           unsigned line, const char *fmt, ...);

#endif
