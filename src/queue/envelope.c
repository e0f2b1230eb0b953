/*
 * envelope.c - the queue's envelope file format (specified in envelope.h): building envelopes,
 * serializing them, and parsing any bytes back with a precise reason for every rejection.
 *
 * Pure: no I/O, clock or globals; memory comes from malloc and belongs to the envelope (or, for
 * serialize, to the caller). Both directions are driven by one table of header fields and one
 * table of recipient keys, and share the validators, so serialize refuses (-EINVAL) exactly what
 * parse would reject. Parse checks the magic line, then the end line and checksum (a truncated
 * or damaged file is reported as such rather than by a symptom), then every field in order.
 * Canonical values are enforced by decoding and re-encoding: one envelope has one encoding.
 * How single values are written and read back (the output buffer, escaping, numbers, the
 * parser's error report) is in envelope_text.c; the two share envelope_internal.h.
 */
#include "queue/envelope.h"
#include "queue/envelope_internal.h"
#include "proto/text.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAGIC "posthorn-envelope"
#define MAGIC_LINE "posthorn-envelope 1"
#define NUM_MAX ((uint64_t)INT64_MAX)

/* --- small helpers --------------------------------------------------------------------------- */

static char *dupn(const char *s, size_t n)
{
    char *d = malloc(n + 1);
    if (d != NULL) {
        memcpy(d, s, n);
        d[n] = '\0';
    }
    return d;
}

/* --- shared validators ----------------------------------------------------------------------- */

static bool is_alnum(unsigned char c)
{
    return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
}

static bool id_ok(const char *s, size_t n)
{
    if (n == 0 || n > PH_ENVELOPE_ID_MAX)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!is_alnum((unsigned char)s[i]) && s[i] != '-' && s[i] != '_')
            return false;
    return true;
}

/* Length of the ESMTP keyword (ALPHA / DIGIT) *(ALPHA / DIGIT / "-") that s starts with and that
 * ends at '=' or the end, or 0. */
static size_t keyword_len(const char *s)
{
    size_t n = 0;
    while (is_alnum((unsigned char)s[n]) || (n > 0 && s[n] == '-'))
        n++;
    return (n > 0 && (s[n] == '\0' || s[n] == '=')) ? n : 0;
}

/* Index of the parameter params[0..upto) with the keyword of length kn at kw, or upto. */
static size_t param_find(const ph_envelope *e, size_t upto, const char *kw, size_t kn)
{
    for (size_t i = 0; i < upto; i++) {
        size_t n = keyword_len(e->params[i]);
        if (n == kn && text_ascii_ieq(e->params[i], kw, kn))
            return i;
    }
    return upto;
}

/* Why `param` cannot follow params[0..upto), or NULL when it can. */
static const char *param_problem(const ph_envelope *e, size_t upto, const char *param)
{
    size_t kn = keyword_len(param);
    if (kn == 0)
        return "bad ESMTP parameter keyword";
    if (param_find(e, upto, param, kn) < upto)
        return "duplicate parameter";
    if (upto >= PH_ENVELOPE_PARAMS_MAX)
        return "too many parameters";
    return NULL;
}

/* --- envelope objects ------------------------------------------------------------------------ */

ph_envelope *ph_envelope_new(void)
{
    return calloc(1, sizeof(ph_envelope));
}

void ph_envelope_free(ph_envelope *e)
{
    if (e == NULL)
        return;
    char **strs[] = {&e->id, &e->client, &e->helo, &e->protocol, &e->auth,
                     &e->tls_version, &e->tls_cipher, &e->from};
    for (size_t i = 0; i < sizeof(strs) / sizeof(strs[0]); i++)
        free(*strs[i]);
    for (size_t i = 0; i < e->nparams; i++)
        free(e->params[i]);
    free(e->params);
    for (size_t i = 0; i < e->nrcpts; i++) {
        free(e->rcpts[i].addr);
        free(e->rcpts[i].last_error);
    }
    free(e->rcpts);
    free(e);
}

int ph_envelope_set_string(char **slot, const char *value)
{
    if (slot == NULL)
        return -EINVAL;
    char *copy = NULL;
    if (value != NULL && (copy = dupn(value, strlen(value))) == NULL)
        return -ENOMEM;
    free(*slot);
    *slot = copy;
    return 0;
}

/* Appends a parameter the caller has checked, taking over `param`. */
static int param_append(ph_envelope *e, char *param)
{
    char **np = realloc(e->params, (e->nparams + 1) * sizeof(*np));
    if (np == NULL)
        return -ENOMEM;
    e->params = np;
    e->params[e->nparams++] = param;
    return 0;
}

int ph_envelope_add_param(ph_envelope *e, const char *param)
{
    if (e == NULL || param == NULL || param_problem(e, e->nparams, param) != NULL)
        return -EINVAL;
    char *copy = dupn(param, strlen(param));
    if (copy == NULL)
        return -ENOMEM;
    int rc = param_append(e, copy);
    if (rc != 0)
        free(copy);
    return rc;
}

const char *ph_envelope_param(const ph_envelope *e, const char *keyword)
{
    size_t kn = keyword ? strlen(keyword) : 0;
    if (e == NULL || kn == 0 || keyword_len(keyword) != kn)
        return NULL;
    size_t i = param_find(e, e->nparams, keyword, kn);
    if (i == e->nparams)
        return NULL;
    const char *v = e->params[i] + kn;
    return *v == '=' ? v + 1 : v;
}

/* Appends a pending recipient, taking over `addr`. */
static int rcpt_append(ph_envelope *e, char *addr)
{
    if (e->nrcpts == e->rcpts_cap) {
        size_t cap = e->rcpts_cap ? e->rcpts_cap * 2 : 4;
        ph_rcpt *nr = realloc(e->rcpts, cap * sizeof(*nr));
        if (nr == NULL)
            return -ENOMEM;
        e->rcpts = nr;
        e->rcpts_cap = cap;
    }
    e->rcpts[e->nrcpts++] = (ph_rcpt){.addr = addr, .state = PH_RCPT_PENDING};
    return 0;
}

int ph_envelope_add_rcpt(ph_envelope *e, const char *addr)
{
    if (e == NULL || addr == NULL || *addr == '\0' || e->nrcpts >= PH_ENVELOPE_RCPTS_MAX)
        return -EINVAL;
    char *copy = dupn(addr, strlen(addr));
    if (copy == NULL)
        return -ENOMEM;
    int rc = rcpt_append(e, copy);
    if (rc != 0)
        free(copy);
    return rc;
}

/* A copy of error cut to PH_ENVELOPE_ERROR_MAX bytes, not inside a UTF-8 sequence. */
static char *error_copy(const char *error)
{
    size_t n = strlen(error);
    if (n > PH_ENVELOPE_ERROR_MAX) {
        n = PH_ENVELOPE_ERROR_MAX;
        while (n > 0 && ((unsigned char)error[n] & 0xC0) == 0x80)
            n--;
    }
    return dupn(error, n);
}

int ph_envelope_rcpt_set_state(ph_envelope *e, size_t i, ph_rcpt_state state, int64_t when,
                               const char *error)
{
    if (e == NULL || i >= e->nrcpts || (unsigned)state > PH_RCPT_FAILED ||
        (state != PH_RCPT_PENDING && when < 0))
        return -EINVAL;
    char *copy = NULL;
    if (error != NULL && (copy = error_copy(error)) == NULL)
        return -ENOMEM;
    ph_rcpt *r = &e->rcpts[i];
    free(r->last_error);
    r->last_error = copy;
    r->state = state;
    r->next_try = state == PH_RCPT_DEFERRED ? when : 0;
    r->done_at = state == PH_RCPT_DELIVERED || state == PH_RCPT_FAILED ? when : 0;
    return 0;
}

bool ph_envelope_all_done(const ph_envelope *e)
{
    return ph_envelope_next_due(e) < 0;
}

int64_t ph_envelope_next_due(const ph_envelope *e)
{
    int64_t due = -1;
    for (size_t i = 0; e != NULL && i < e->nrcpts; i++) {
        const ph_rcpt *r = &e->rcpts[i];
        if (r->state == PH_RCPT_PENDING)
            return 0;
        if (r->state == PH_RCPT_DEFERRED && (due < 0 || r->next_try < due))
            due = r->next_try < 0 ? 0 : r->next_try;
    }
    return due;
}

static const char *const state_names[] = {"pending", "deferred", "delivered", "failed"};
#define NSTATES (sizeof(state_names) / sizeof(state_names[0]))

const char *ph_rcpt_state_name(ph_rcpt_state s)
{
    return (unsigned)s < NSTATES ? state_names[s] : "?";
}

uint64_t ph_envelope_checksum(const void *buf, size_t len)
{
    const unsigned char *p = buf;
    uint64_t h = 0xcbf29ce484222325ULL;
    for (size_t i = 0; i < len; i++) {
        h ^= p[i];
        h *= 0x100000001b3ULL;
    }
    return h;
}

/* --- the parser's current line and tokens ---------------------------------------------------- */

static void set_line(parser *p, size_t lineno, size_t start, size_t n)
{
    p->lineno = lineno;
    p->line = p->buf + start;
    p->linelen = n;
}

/* Splits the next space-separated token off s[0..n), advancing past the space. */
static void take_token(const char **s, size_t *n, const char **tok, size_t *tn)
{
    const char *sp = memchr(*s, ' ', *n);
    *tok = *s;
    *tn = sp ? (size_t)(sp - *s) : *n;
    *s += *tn + (sp ? 1 : 0);
    *n -= *tn + (sp ? 1 : 0);
}

/* --- header fields: one row per line type, parse and write side by side ---------------------- */

typedef struct field field;
typedef int (*field_parse)(parser *p, const field *f, const char *v, size_t n);
typedef int (*field_write)(obuf *b, const field *f, const ph_envelope *e);

enum { F_REQUIRED = 1, F_REPEAT = 2 };

struct field {
    const char *name;
    unsigned flags;
    size_t off; /* offset of the field's member in ph_envelope (scalar fields) */
    field_parse parse;
    field_write write;
};

#define SLOT(e, f, type) ((type *)(void *)((char *)(e) + (f)->off))
#define CSLOT(e, f, type) ((const type *)(const void *)((const char *)(e) + (f)->off))

static size_t line_start(obuf *b, const char *name)
{
    size_t start = b->len;
    ob_puts(b, name);
    ob_putc(b, ' ');
    return start;
}

/* Ends the line begun at start; -EINVAL when it is too long to parse back. */
static int line_end(obuf *b, size_t start)
{
    if (!b->oom && b->len - start > PH_ENVELOPE_LINE_MAX)
        return -EINVAL;
    ob_putc(b, '\n');
    return 0;
}

static int parse_id(parser *p, const field *f, const char *v, size_t n)
{
    if (!id_ok(v, n))
        return ph_env_fail(p, "bad queue id (want 1-%d of A-Z a-z 0-9 - _)", PH_ENVELOPE_ID_MAX);
    char *s = dupn(v, n);
    if (s == NULL)
        return -ENOMEM;
    *SLOT(p->env, f, char *) = s;
    return 0;
}

static int write_id(obuf *b, const field *f, const ph_envelope *e)
{
    const char *id = *CSLOT(e, f, char *);
    if (id == NULL || !id_ok(id, strlen(id)))
        return -EINVAL;
    size_t start = line_start(b, f->name);
    ob_puts(b, id);
    return line_end(b, start);
}

/* received and size: both 64-bit, written and read through uint64_t (the corresponding unsigned
 * type may alias int64_t); a negative received reads as above NUM_MAX and is refused. */
static int parse_number(parser *p, const field *f, const char *v, size_t n)
{
    uint64_t x;
    if (!ph_env_num_parse(v, n, NUM_MAX, &x))
        return ph_env_fail(p, "bad number");
    *SLOT(p->env, f, uint64_t) = x;
    return 0;
}

static int write_number(obuf *b, const field *f, const ph_envelope *e)
{
    uint64_t x = *CSLOT(e, f, uint64_t);
    if (x > NUM_MAX)
        return -EINVAL;
    size_t start = line_start(b, f->name);
    ph_env_ob_putu(b, x);
    return line_end(b, start);
}

static int parse_token(parser *p, const field *f, const char *v, size_t n)
{
    return ph_env_decode(p, v, n, true, SLOT(p->env, f, char *));
}

static int write_token(obuf *b, const field *f, const ph_envelope *e)
{
    const char *s = *CSLOT(e, f, char *);
    if (s == NULL)
        return (f->flags & F_REQUIRED) ? -EINVAL : 0;
    if (*s == '\0')
        return -EINVAL;
    size_t start = line_start(b, f->name);
    ph_env_ob_escape(b, s, strlen(s), true);
    return line_end(b, start);
}

static int parse_tls(parser *p, const field *f, const char *v, size_t n)
{
    (void)f;
    const char *ver, *cip;
    size_t vn, cn;
    take_token(&v, &n, &ver, &vn);
    take_token(&v, &n, &cip, &cn);
    if (vn == 0 || cn == 0 || n != 0 || v[-1] == ' ')
        return ph_env_fail(p, "malformed tls line (want: tls VERSION CIPHER)");
    int rc = ph_env_decode(p, ver, vn, true, &p->env->tls_version);
    return rc ? rc : ph_env_decode(p, cip, cn, true, &p->env->tls_cipher);
}

static int write_tls(obuf *b, const field *f, const ph_envelope *e)
{
    if (e->tls_version == NULL && e->tls_cipher == NULL)
        return 0;
    if (e->tls_version == NULL || e->tls_cipher == NULL || !*e->tls_version ||
        !*e->tls_cipher)
        return -EINVAL;
    size_t start = line_start(b, f->name);
    ph_env_ob_escape(b, e->tls_version, strlen(e->tls_version), true);
    ob_putc(b, ' ');
    ph_env_ob_escape(b, e->tls_cipher, strlen(e->tls_cipher), true);
    return line_end(b, start);
}

static int parse_from(parser *p, const field *f, const char *v, size_t n)
{
    return ph_env_decode_path(p, v, n, SLOT(p->env, f, char *));
}

static int write_from(obuf *b, const field *f, const ph_envelope *e)
{
    const char *from = *CSLOT(e, f, char *);
    if (from == NULL)
        return -EINVAL;
    size_t start = line_start(b, f->name);
    ph_env_put_path(b, from);
    return line_end(b, start);
}

static int parse_param(parser *p, const field *f, const char *v, size_t n)
{
    (void)f;
    char *s;
    int rc = ph_env_decode(p, v, n, true, &s);
    if (rc != 0)
        return rc;
    const char *why = param_problem(p->env, p->env->nparams, s);
    if (why != NULL) {
        free(s);
        return ph_env_fail(p, "%s", why);
    }
    rc = param_append(p->env, s);
    if (rc != 0)
        free(s);
    return rc;
}

static int write_params(obuf *b, const field *f, const ph_envelope *e)
{
    for (size_t i = 0; i < e->nparams; i++) {
        if (e->params[i] == NULL || param_problem(e, i, e->params[i]) != NULL)
            return -EINVAL;
        size_t start = line_start(b, f->name);
        ph_env_ob_escape(b, e->params[i], strlen(e->params[i]), true);
        int rc = line_end(b, start);
        if (rc != 0)
            return rc;
    }
    return 0;
}

/* --- recipient lines ------------------------------------------------------------------------- */

#define ST(s) (1u << (s))
#define ALL_STATES (ST(PH_RCPT_PENDING) | ST(PH_RCPT_DEFERRED) | ST(PH_RCPT_DELIVERED) | \
                    ST(PH_RCPT_FAILED))

/* The numeric keys of a recipient line, in their order. A key is written when its recipient's
 * state requires it, or when the state allows it and the value is not zero; min keeps "omit
 * zero" canonical. error= follows them all and is handled apart (it runs to the end of line). */
typedef struct rcpt_key {
    const char *name;
    size_t off;        /* offset in ph_rcpt */
    bool is_u32;       /* uint32_t, else int64_t */
    unsigned required; /* states needing the key */
    unsigned allowed;  /* states permitting it */
    uint64_t min, max;
} rcpt_key;

static const rcpt_key rcpt_keys[] = {
    {"next", offsetof(ph_rcpt, next_try), false, ST(PH_RCPT_DEFERRED), ST(PH_RCPT_DEFERRED),
     0, NUM_MAX},
    {"at", offsetof(ph_rcpt, done_at), false, ST(PH_RCPT_DELIVERED) | ST(PH_RCPT_FAILED),
     ST(PH_RCPT_DELIVERED) | ST(PH_RCPT_FAILED), 0, NUM_MAX},
    {"attempts", offsetof(ph_rcpt, attempts), true, 0, ALL_STATES, 1, UINT32_MAX},
};
#define NKEYS (sizeof(rcpt_keys) / sizeof(rcpt_keys[0]))

static int64_t key_get(const rcpt_key *k, const ph_rcpt *r)
{
    const void *base = (const char *)r + k->off;
    return k->is_u32 ? (int64_t)*(const uint32_t *)base : *(const int64_t *)base;
}

static void key_set(const rcpt_key *k, ph_rcpt *r, uint64_t v)
{
    void *base = (char *)r + k->off;
    if (k->is_u32)
        *(uint32_t *)base = (uint32_t)v;
    else
        *(int64_t *)base = (int64_t)v;
}

static int parse_state(parser *p, const char *s, size_t n, ph_rcpt_state *st)
{
    for (size_t i = 0; i < NSTATES; i++) {
        if (strlen(state_names[i]) == n && memcmp(state_names[i], s, n) == 0) {
            *st = (ph_rcpt_state)i;
            return 0;
        }
    }
    return ph_env_fail(p, "unknown recipient state (want pending, deferred, delivered or failed)");
}

/* Parses the key=value tokens after the state into r; *present gets a bit per key seen. */
static int parse_keys(parser *p, const char *v, size_t n, ph_rcpt *r, unsigned *present)
{
    size_t from = 0; /* keys must come in table order */
    while (n > 0) {
        if (n >= 6 && memcmp(v, "error=", 6) == 0)
            return ph_env_decode(p, v + 6, n - 6, false, &r->last_error);
        const char *tok, *eq;
        size_t tn, i;
        take_token(&v, &n, &tok, &tn);
        if (n == 0 && v[-1] == ' ')
            return ph_env_fail(p, "trailing space");
        eq = memchr(tok, '=', tn);
        for (i = from; eq && i < NKEYS; i++)
            if (strlen(rcpt_keys[i].name) == (size_t)(eq - tok) &&
                memcmp(rcpt_keys[i].name, tok, (size_t)(eq - tok)) == 0)
                break;
        if (eq == NULL || i >= NKEYS)
            return ph_env_fail(p, "unknown, repeated or misplaced recipient key (order: next= at= "
                               "attempts= error=)");
        uint64_t x;
        const rcpt_key *k = &rcpt_keys[i];
        if (!ph_env_num_parse(eq + 1, tn - (size_t)(eq + 1 - tok), k->max, &x) || x < k->min)
            return ph_env_fail(p, "bad value for recipient key '%s'", k->name);
        key_set(k, r, x);
        *present |= 1u << i;
        from = i + 1;
    }
    return 0;
}

/* Every key the state requires is there, and none it forbids. */
static int check_keys(parser *p, ph_rcpt_state st, unsigned present)
{
    for (size_t i = 0; i < NKEYS; i++) {
        const rcpt_key *k = &rcpt_keys[i];
        bool has = present & (1u << i);
        if (!has && (k->required & ST(st)))
            return ph_env_fail(p, "state '%s' needs key '%s'", state_names[st], k->name);
        if (has && !(k->allowed & ST(st)))
            return ph_env_fail(p, "key '%s' is not allowed in state '%s'", k->name,
                               state_names[st]);
    }
    return 0;
}

static int parse_rcpt_fields(parser *p, const char *v, size_t n, ph_rcpt *r)
{
    const char *path, *state;
    size_t pn, sn;
    unsigned present = 0;
    take_token(&v, &n, &path, &pn);
    take_token(&v, &n, &state, &sn);
    int rc = ph_env_decode_path(p, path, pn, &r->addr);
    if (rc == 0 && r->addr[0] == '\0')
        rc = ph_env_fail(p, "empty recipient address");
    if (rc == 0)
        rc = parse_state(p, state, sn, &r->state);
    if (rc == 0 && n == 0 && v[-1] == ' ')
        rc = ph_env_fail(p, "trailing space");
    if (rc == 0)
        rc = parse_keys(p, v, n, r, &present);
    return rc ? rc : check_keys(p, r->state, present);
}

static int parse_rcpt(parser *p, const field *f, const char *v, size_t n)
{
    (void)f;
    if (p->env->nrcpts >= PH_ENVELOPE_RCPTS_MAX)
        return ph_env_fail(p, "too many recipients (max %d)", PH_ENVELOPE_RCPTS_MAX);
    ph_rcpt r = {0};
    int rc = parse_rcpt_fields(p, v, n, &r);
    if (rc == 0 && (rc = rcpt_append(p->env, r.addr)) == 0) {
        p->env->rcpts[p->env->nrcpts - 1] = r;
        return 0;
    }
    free(r.addr);
    free(r.last_error);
    return rc;
}

static int write_rcpt(obuf *b, const char *name, const ph_rcpt *r)
{
    if (r->addr == NULL || r->addr[0] == '\0' || (unsigned)r->state >= NSTATES)
        return -EINVAL;
    size_t start = line_start(b, name);
    ph_env_put_path(b, r->addr);
    ob_putc(b, ' ');
    ob_puts(b, state_names[r->state]);
    for (size_t i = 0; i < NKEYS; i++) {
        const rcpt_key *k = &rcpt_keys[i];
        int64_t x = key_get(k, r);
        bool want = (k->required & ST(r->state)) || ((k->allowed & ST(r->state)) && x != 0);
        if (!want)
            continue;
        if (x < 0 || (uint64_t)x < k->min)
            return -EINVAL;
        ob_putc(b, ' ');
        ob_puts(b, k->name);
        ob_putc(b, '=');
        ph_env_ob_putu(b, (uint64_t)x);
    }
    if (r->last_error != NULL) {
        ob_puts(b, " error=");
        ph_env_ob_escape(b, r->last_error, strlen(r->last_error), false);
    }
    return line_end(b, start);
}

static int write_rcpts(obuf *b, const field *f, const ph_envelope *e)
{
    if (e->nrcpts == 0 || e->nrcpts > PH_ENVELOPE_RCPTS_MAX || e->rcpts == NULL)
        return -EINVAL;
    for (size_t i = 0; i < e->nrcpts; i++) {
        int rc = write_rcpt(b, f->name, &e->rcpts[i]);
        if (rc != 0)
            return rc;
    }
    return 0;
}

static const field fields[] = {
    {"id", F_REQUIRED, offsetof(ph_envelope, id), parse_id, write_id},
    {"received", F_REQUIRED, offsetof(ph_envelope, received), parse_number, write_number},
    {"client", F_REQUIRED, offsetof(ph_envelope, client), parse_token, write_token},
    {"helo", 0, offsetof(ph_envelope, helo), parse_token, write_token},
    {"protocol", F_REQUIRED, offsetof(ph_envelope, protocol), parse_token, write_token},
    {"auth", 0, offsetof(ph_envelope, auth), parse_token, write_token},
    {"tls", 0, 0, parse_tls, write_tls},
    {"from", F_REQUIRED, offsetof(ph_envelope, from), parse_from, write_from},
    {"param", F_REPEAT, 0, parse_param, write_params},
    {"size", F_REQUIRED, offsetof(ph_envelope, size), parse_number, write_number},
    {"rcpt", F_REQUIRED | F_REPEAT, 0, parse_rcpt, write_rcpts},
};
#define NFIELDS (sizeof(fields) / sizeof(fields[0]))

/* --- serialize ------------------------------------------------------------------------------- */

static int write_end(obuf *b)
{
    char line[32];
    uint64_t sum = ph_envelope_checksum(b->p, b->oom ? 0 : b->len);
    int n = snprintf(line, sizeof(line), "end %016llx\n", (unsigned long long)sum);
    ob_put(b, line, (size_t)n);
    ob_putc(b, '\0'); /* a NUL after the text, not counted */
    b->len -= b->oom ? 0 : 1;
    return b->oom ? -ENOMEM : 0;
}

int ph_envelope_serialize(const ph_envelope *e, char **out, size_t *len)
{
    if (out == NULL || len == NULL)
        return -EINVAL;
    *out = NULL;
    *len = 0;
    if (e == NULL)
        return -EINVAL;
    obuf b = {0};
    if (e->nrcpts <= PH_ENVELOPE_RCPTS_MAX)
        ph_env_ob_grow(&b, 512 + e->nrcpts * 48);
    ob_puts(&b, MAGIC_LINE "\n");
    int rc = 0;
    for (size_t i = 0; i < NFIELDS && rc == 0; i++)
        rc = fields[i].write(&b, &fields[i], e);
    if (rc == 0)
        rc = write_end(&b);
    if (rc == 0 && b.oom)
        rc = -ENOMEM;
    if (rc != 0) {
        free(b.p);
        return rc;
    }
    *out = b.p;
    *len = b.len;
    return 0;
}

/* --- parse ----------------------------------------------------------------------------------- */

static int check_magic(parser *p)
{
    const char *lf = memchr(p->buf, '\n', p->len);
    size_t n = lf ? (size_t)(lf - p->buf) : p->len;
    set_line(p, 1, 0, n);
    size_t mn = strlen(MAGIC);
    if (n == strlen(MAGIC_LINE) && memcmp(p->buf, MAGIC_LINE, n) == 0)
        return 0;
    if (n > mn && memcmp(p->buf, MAGIC " ", mn + 1) == 0)
        return ph_env_fail(p, "unsupported envelope version (this is version %d)",
                           PH_ENVELOPE_VERSION);
    return ph_env_fail(p, "not a posthorn envelope");
}

static size_t count_lines(const char *s, size_t n)
{
    size_t lines = 1;
    for (const char *q = s; (q = memchr(q, '\n', n - (size_t)(q - s))) != NULL; q++)
        lines++;
    return lines;
}

/* The last line must be "end <checksum of everything before it>". */
static int check_end(parser *p)
{
    bool terminated = p->buf[p->len - 1] == '\n';
    size_t stop = p->len - (terminated ? 1 : 0), start = stop;
    while (start > 0 && p->buf[start - 1] != '\n')
        start--;
    set_line(p, count_lines(p->buf, start), start, stop - start);
    if (p->linelen > PH_ENVELOPE_LINE_MAX)
        return ph_env_fail(p, "line too long (max %d bytes)", PH_ENVELOPE_LINE_MAX);
    if (!terminated || start == 0 || p->linelen < 4 || memcmp(p->line, "end ", 4) != 0)
        return ph_env_fail(p, "missing end line (truncated file?)");
    uint64_t want;
    if (!ph_env_parse_hex64(p->line + 4, p->linelen - 4, &want))
        return ph_env_fail(p, "malformed end line (want: end <16 lowercase hex digits>)");
    uint64_t got = ph_envelope_checksum(p->buf, start);
    if (got != want)
        return ph_env_fail(p, "checksum mismatch (computed %016llx)", (unsigned long long)got);
    p->body_end = start;
    return 0;
}

/* Fields that are required, lie in fields[from..to), and were not seen. */
static int check_missing(parser *p, size_t from, size_t to)
{
    for (size_t i = from; i < to; i++)
        if ((fields[i].flags & F_REQUIRED) && !(p->seen & (1u << i)))
            return ph_env_fail(p, "missing required field '%s'", fields[i].name);
    return 0;
}

/* fields[i] may come now: not a duplicate, not out of order, skipping no required field. */
static int check_order(parser *p, size_t i)
{
    if ((p->seen & (1u << i)) && !(fields[i].flags & F_REPEAT))
        return ph_env_fail(p, "duplicate field '%s'", fields[i].name);
    if (i < p->next)
        return ph_env_fail(p, "field '%s' out of order (must come before '%s')", fields[i].name,
                           fields[p->next].name);
    int rc = check_missing(p, p->next, i);
    p->seen |= 1u << i;
    p->next = i;
    return rc;
}

static int parse_line(parser *p)
{
    if (p->linelen > PH_ENVELOPE_LINE_MAX)
        return ph_env_fail(p, "line too long (max %d bytes)", PH_ENVELOPE_LINE_MAX);
    if (p->linelen == 0)
        return ph_env_fail(p, "empty line");
    const char *v = p->line, *name;
    size_t n = p->linelen, nn, i;
    take_token(&v, &n, &name, &nn);
    for (i = 0; i < NFIELDS; i++)
        if (strlen(fields[i].name) == nn && memcmp(fields[i].name, name, nn) == 0)
            break;
    if (i == NFIELDS)
        return ph_env_fail(p, nn == 3 && memcmp(name, "end", 3) == 0
                                  ? "end line before the last line"
                                  : "unknown field");
    int rc = check_order(p, i);
    if (rc != 0)
        return rc;
    if (n == 0)
        return ph_env_fail(p, "field '%s' without a value", fields[i].name);
    return fields[i].parse(p, &fields[i], v, n);
}

static int parse_fields(parser *p)
{
    size_t pos = strlen(MAGIC_LINE) + 1, lineno = 2;
    while (pos < p->body_end) {
        const char *lf = memchr(p->buf + pos, '\n', p->body_end - pos);
        size_t n = (size_t)(lf - (p->buf + pos)); /* body_end follows an LF */
        set_line(p, lineno++, pos, n);
        int rc = parse_line(p);
        if (rc != 0)
            return rc;
        pos += n + 1;
    }
    size_t end_len = p->len - 1 - p->body_end;
    set_line(p, lineno, p->body_end, end_len);
    return check_missing(p, p->next, NFIELDS);
}

int ph_envelope_parse(const char *buf, size_t len, ph_envelope **out, char *err, size_t errlen)
{
    if (out == NULL || (buf == NULL && len > 0))
        return -EINVAL;
    *out = NULL;
    if (err != NULL && errlen > 0)
        err[0] = '\0';
    parser p = {.buf = buf ? buf : "", .len = len, .err = err, .errlen = errlen};
    if ((p.env = ph_envelope_new()) == NULL)
        return -ENOMEM;
    int rc = check_magic(&p);
    if (rc == 0)
        rc = check_end(&p);
    if (rc == 0)
        rc = parse_fields(&p);
    free(p.scratch.p);
    if (rc != 0) {
        ph_envelope_free(p.env);
        return rc;
    }
    *out = p.env;
    return 0;
}
