/*
 * config_internal.h - what the three parts of posthorn.conf(5) share: config_table.c (the
 * parameter table, the value types and their checks), config_sections.c (section headers,
 * adding sections, resolving them, the cross-field checks, relay lookup) and config.c (the line
 * parser, the error list, `dump` and the rest of the public API of config.h).
 *
 * Internal to those files: no other module includes it; everyone else uses config.h.
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
    S_GLOBAL = 1, S_LISTENER = 2, S_BOTH = S_GLOBAL | S_LISTENER, S_DOMAIN = 4, S_RELAY = 8
} pscope;

/* A place keys are set in: the global scope (l, d and r NULL), a listener, a domain or a
 * relay. */
typedef struct section {
    pscope kind; /* S_GLOBAL, S_LISTENER, S_DOMAIN or S_RELAY */
    const ph_config_listener *l;
    const ph_config_domain *d;
    const ph_config_relay *r;
} section;

/* Extra check of a string value or of one list entry: NULL if fine, else what is wrong. */
typedef const char *(*value_check)(const char *s);

typedef struct param {
    const char *name;
    ptype type;
    pscope scope;
    size_t offset;        /* into ph_config_global, ph_config_listener, ph_config_shared,
                             ph_config_domain or ph_config_relay */
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

/* The state of one parse (config.c reads lines, config_sections.c handles the headers). */
typedef struct parser {
    ph_config *cfg;
    ph_config_errors *errs;
    section cur;                /* where keys go: the global scope or a section */
    ph_config_listener scratch; /* a bad or surplus section: its keys are checked, then dropped */
    ph_config_domain scratch_domain; /* the same for [domain] headers */
    ph_config_relay scratch_relay;   /* and for [relay] headers */
    bool listener_headers;      /* a header other than [domain ...] or [relay ...] was seen */
    bool host_refused[PH_CONFIG_MAX_RELAYS]; /* relay i's host had a bad value: do not say it
                                                has none as well */
    bool oom;
    char *text;                 /* the logical line being gathered (continuations joined) */
    size_t len, cap;
    unsigned text_line;         /* where it started */
    bool pending, poisoned;     /* a line is gathered; it had an error and will be dropped */
} parser;

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

static inline section relay_section(const ph_config_relay *r)
{
    return (section){.kind = S_RELAY, .r = r};
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

/* s without the blanks around it (cut in place). */
static inline char *trim(char *s)
{
    while (is_blank(*s))
        s++;
    size_t n = strlen(s);
    while (n > 0 && is_blank(s[n - 1]))
        s[--n] = '\0';
    return s;
}

/* Whether a and b are equal, ASCII letters compared case-insensitively. */
static inline bool ascii_case_equal(const char *a, const char *b)
{
    for (; *a; a++, b++)
        if (ascii_lower(*a) != ascii_lower(*b)) /* also when b ends first */
            return false;
    return *b == '\0';
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

/* The first row called name, or NULL. A name has at most one row per scope ("tls" has two:
 * listener and relay), so lookups for one kind of section use ph_cfg_find_param_in(). */
const param *ph_cfg_find_param(const char *name);

/* The row called name that may be set in a section of one of the kinds in the mask, or NULL. */
const param *ph_cfg_find_param_in(const char *name, unsigned kinds);

/* The union of the scopes of every row called name (0: no such parameter). */
unsigned ph_cfg_scopes_of(const char *name);

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

/* ---- config_sections.c ------------------------------------------------------------------ */

/* Sets every parameter of a section to its table default (st->oom when out of memory). */
void ph_cfg_init_defaults(parser *st, section sec);

/* Frees the values of a section (not its name). */
void ph_cfg_release_section(const ph_config *cfg, section sec);

/* A line starting with '[': a section header. Whatever goes wrong, the keys that follow go to
 * a section of the kind the header names (a scratch one if it was not added), so they are
 * still checked. text is cut up on the way. */
void ph_cfg_do_section(parser *st, char *text, unsigned line);

/* After key p was parsed at line in the current section with result (0, BAD or NOMEM): a list
 * that grew from before entries records the line of its new entries where that is kept (a
 * relay's domains); a refused relay host is remembered (see parser.host_refused). */
void ph_cfg_key_parsed(parser *st, const param *p, int result, size_t before, unsigned line);

/* Resolves every section once the file is read: a listener inherits what it does not set and
 * gets its role's defaults; a relay's tls_verify follows its tls unless set. */
void ph_cfg_resolve(parser *st);

/* The cross-field checks of a resolved config: the global ones, then each listener's, each
 * domain's and each relay's, adding errors to st->errs. 0, or -ENOMEM. */
int ph_cfg_check(parser *st);

/* ---- config.c --------------------------------------------------------------------------- */

/* Adds "FILE:LINE: message" (line 0: about the whole file) unless PH_CONFIG_MAX_ERRORS are
 * kept already; then it is only counted. Out of memory: counted as dropped. */
__attribute__((format(printf, 4, 5))) void ph_cfg_errs_add(ph_config_errors *e, const char *file,
                                                           unsigned line, const char *fmt, ...);

#endif
