/*
 * config.c - posthorn.conf(5): the one table of parameters (name, scope, type, default,
 * bounds, help), the line parser, listener resolution (overrides, role defaults), the cross
 * checks and `dump`.
 *
 * Owns the ph_config it builds (every string is a heap copy) until ph_config_free(). Fails by
 * collecting "FILE:LINE: message" errors and handing out no config; nothing is ignored or
 * clamped. Any byte sequence is safe input: lines with control bytes are refused, logical
 * lines, lists, sections and stored errors are capped (config.h), numbers are overflow-checked,
 * so time and memory stay O(input). Needs only libc (no libevent): the fuzzer links it alone.
 */
#ifndef _GNU_SOURCE
#define _POSIX_C_SOURCE 200809L /* strdup, strndup, open_memstream when built standalone */
#endif
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "daemon/config.h"

#define BAD (-1)   /* a value parser's "not acceptable" (reason in why) */
#define NOMEM (-2) /* a value parser's "out of memory" */

typedef enum ptype {
    T_STRING, T_PATH, T_BOOL, T_UINT, T_SIZE, T_DURATION, T_ENUM, T_LIST, T__N
} ptype;
typedef enum pscope { S_GLOBAL = 1, S_LISTENER = 2, S_BOTH = S_GLOBAL | S_LISTENER } pscope;

/* Extra check of a string value or of one list entry: NULL if fine, else what is wrong. */
typedef const char *(*value_check)(const char *s);

typedef struct param {
    const char *name;
    ptype type;
    pscope scope;
    size_t offset;        /* into ph_config_global, ph_config_listener or ph_config_shared */
    const char *def;      /* default in file syntax; NULL: from role_def by the role */
    int role_def[3];      /* defaults for mx, submission, submissions; -1: computed (tls) */
    uint64_t min, max;    /* uint, size, duration (in ms) */
    const char *const *words; /* enum: the words, in the order of the C enum */
    value_check check;
    const char *help;
} param;

/* ---- character classes and value checks ---------------------------------------------- */

static bool is_blank(int c) { return c == ' ' || c == '\t'; }
static bool is_digit(int c) { return c >= '0' && c <= '9'; }
static bool is_alnum(int c)
{
    return is_digit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

/* True if s[0..n) is non-empty and only has alphanumerics and the bytes in extra. */
static bool only_chars(const char *s, size_t n, const char *extra)
{
    for (size_t i = 0; i < n; i++)
        if (!is_alnum((unsigned char)s[i]) && (s[i] == '\0' || !strchr(extra, s[i])))
            return false;
    return n > 0;
}

static bool host_ok(const char *s, size_t n)
{
    if (n > 253 || !only_chars(s, n, ".-") || s[0] == '.' || s[0] == '-' || s[n - 1] == '.')
        return false;
    for (size_t i = 1; i < n; i++)
        if (s[i] == '.' && s[i - 1] == '.')
            return false;
    return true;
}

static const char *check_hostname(const char *s)
{
    return !*s || host_ok(s, strlen(s)) ? NULL : "not a host name (letters, digits, '-', '.')";
}

/* The banner goes into the 220 reply: printable ASCII, short enough for one reply line. */
static const char *check_banner(const char *s)
{
    for (const char *p = s; *p; p++)
        if (*p < 0x20 || *p > 0x7e)
            return "only printable ASCII is allowed in a reply";
    return strlen(s) > 200 ? "longer than 200 characters" : NULL;
}

static const char *check_account(const char *s)
{
    size_t n = strlen(s);
    if (n == 0)
        return NULL;
    return n <= 32 && s[0] != '-' && only_chars(s, n, "._-") ? NULL : "not a user or group name";
}

static const char *check_port(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 5 || strspn(s, "0123456789") != n || strtoul(s, NULL, 10) > 65535)
        return "bad port (0..65535)";
    return NULL;
}

static const char *check_listen(const char *s)
{
    if (strncmp(s, "unix:", 5) == 0) {
        if (s[5] != '/')
            return "a unix socket path must be absolute (unix:/path)";
        return strlen(s + 5) < 108 ? NULL : "unix socket path longer than 107 bytes";
    }
    if (s[0] == '[') {
        const char *close = strchr(s, ']');
        char host[INET6_ADDRSTRLEN];
        struct in6_addr a;
        size_t n = close ? (size_t)(close - s - 1) : 0;
        if (!close || close[1] != ':' || n >= sizeof(host))
            return "expected [IPv6]:PORT";
        memcpy(host, s + 1, n);
        host[n] = '\0';
        return inet_pton(AF_INET6, host, &a) == 1 ? check_port(close + 2) : "bad IPv6 address";
    }
    const char *colon = strrchr(s, ':');
    if (!colon)
        return "expected HOST:PORT, [IPv6]:PORT, *:PORT or unix:/path";
    size_t n = (size_t)(colon - s);
    if (!(n == 1 && s[0] == '*') && !host_ok(s, n))
        return "bad host (an IPv4 address, a host name, [IPv6] or *)";
    return check_port(colon + 1);
}

/* NAME:CERTFILE:KEYFILE, exactly three non-empty parts. */
static const char *check_sni(const char *s)
{
    const char *a = strchr(s, ':'), *b = a ? strchr(a + 1, ':') : NULL;
    if (!a || !b || strchr(b + 1, ':') || a == s || b == a + 1 || !b[1])
        return "expected NAME:CERTFILE:KEYFILE";
    return only_chars(s, (size_t)(a - s), ".-*") ? NULL : "bad server name before the first ':'";
}

/* ---- the parameter table ---------------------------------------------------------------- */

static const char *const w_level[] = {"error", "warn", "info", "debug", NULL};
static const char *const w_target[] = {"stderr", "syslog", NULL};
static const char *const w_delivery[] = {"store", "discard", NULL};
static const char *const w_role[] = {"mx", "submission", "submissions", NULL};
static const char *const w_tls[] = {"none", "starttls", "implicit", NULL};
static const char *const w_auth[] = {"none", "tls", "insecure", NULL};
static const char *const w_version[] = {"TLSv1.2", "TLSv1.3", NULL};

#define G(f) .scope = S_GLOBAL, .offset = offsetof(ph_config_global, f)
#define B(f) .scope = S_BOTH, .offset = offsetof(ph_config_shared, f)
#define L(f) .scope = S_LISTENER, .offset = offsetof(ph_config_listener, f)
#define SEC 1000ull
#define MIN (60 * SEC)
#define HOUR (60 * MIN)
#define DAY (24 * HOUR)

static const param params[] = {
    {.name = "hostname", .type = T_STRING, G(hostname), .def = "", .check = check_hostname,
     .help = "name in the banner, EHLO reply and Received: (empty: the machine's host name)"},
    {.name = "banner", .type = T_STRING, G(banner), .def = "Posthorn", .check = check_banner,
     .help = "text after \"220 HOSTNAME ESMTP\" in the greeting"},
    {.name = "user", .type = T_STRING, G(user), .def = "", .check = check_account,
     .help = "user to switch to after binding the listeners (empty: no privilege drop)"},
    {.name = "group", .type = T_STRING, G(group), .def = "", .check = check_account,
     .help = "group to switch to (empty: the user's primary group)"},
    {.name = "workers", .type = T_UINT, G(workers), .def = "1", .min = 1, .max = 64,
     .help = "worker processes, each with its own event loop"},
    {.name = "log_level", .type = T_ENUM, G(log_level), .def = "info", .words = w_level,
     .help = "least important log lines written"},
    {.name = "log_target", .type = T_ENUM, G(log_target), .def = "stderr", .words = w_target,
     .help = "where log lines go"},
    {.name = "delivery", .type = T_ENUM, G(delivery), .def = "store", .words = w_delivery,
     .help = "accepted messages are stored in store_dir or discarded"},
    {.name = "store_dir", .type = T_PATH, G(store_dir), .def = "",
     .help = "directory for accepted messages (.eml and .json); needed by delivery = store"},
    {.name = "passwd_file", .type = T_PATH, G(passwd_file), .def = "",
     .help = "user:crypt-hash lines checked by AUTH; needed when a listener offers AUTH"},
    {.name = "auth_fail_limit", .type = T_UINT, G(auth_fail_limit), .def = "5", .min = 1,
     .max = 1000, .help = "failed AUTH attempts per client address before 421 and close"},
    {.name = "auth_fail_delay", .type = T_DURATION, G(auth_fail_delay_ms), .def = "1s",
     .min = 0, .max = 10 * MIN, .help = "delay after a failed AUTH, doubled per further failure"},
    {.name = "tls_sni", .type = T_LIST, G(tls_sni), .def = "", .check = check_sni,
     .help = "more certificates chosen by SNI, NAME:CERTFILE:KEYFILE each (repeatable)"},
    {.name = "max_connections", .type = T_UINT, G(max_connections), .def = "10000", .min = 1,
     .max = 1000000, .help = "open sessions per worker process (421 4.7.0 beyond)"},

    {.name = "max_message_size", .type = T_SIZE, B(max_message_size), .def = "32M",
     .min = 1 << 10, .max = 1 << 30, .help = "largest message accepted (552 5.3.4 beyond)"},
    {.name = "max_recipients", .type = T_UINT, B(max_recipients), .def = "1000", .min = 1,
     .max = 100000, .help = "recipients per message (452 4.5.3 beyond)"},
    {.name = "max_errors", .type = T_UINT, B(max_errors), .def = "20", .min = 1, .max = 1000,
     .help = "protocol errors per session before 421 4.7.0 and close"},
    {.name = "max_line", .type = T_UINT, B(max_line), .def = "512", .min = 512, .max = 65536,
     .help = "longest command line in bytes with its CRLF (500 5.5.6 beyond)"},
    {.name = "max_per_ip", .type = T_UINT, B(max_per_ip), .def = "100", .min = 0,
     .max = 100000, .help = "open sessions per client address, 0 = no limit (421 4.7.0 beyond)"},
    {.name = "idle_timeout", .type = T_DURATION, B(idle_timeout_ms), .def = "300s", .min = SEC,
     .max = DAY, .help = "a session idle this long is closed with 421 4.4.2"},
    {.name = "session_timeout", .type = T_DURATION, B(session_timeout_ms), .def = "1h",
     .min = SEC, .max = 7 * DAY, .help = "longest session (421 4.4.2)"},
    {.name = "greeting_delay", .type = T_DURATION, B(greeting_delay_ms), .def = "0", .min = 0,
     .max = 60 * SEC, .help = "wait before the banner; clients talking first get 554 5.5.0"},
    {.name = "shutdown_grace", .type = T_DURATION, B(shutdown_grace_ms), .def = "30s",
     .min = 0, .max = HOUR, .help = "on SIGTERM, time messages in flight get to finish"},
    {.name = "handshake_timeout", .type = T_DURATION, B(handshake_timeout_ms), .def = "30s",
     .min = SEC, .max = 10 * MIN, .help = "longest TLS handshake before the connection is closed"},
    {.name = "tls_cert", .type = T_PATH, B(tls_cert), .def = "",
     .help = "certificate chain file (PEM)"},
    {.name = "tls_key", .type = T_PATH, B(tls_key), .def = "",
     .help = "private key file (PEM) of tls_cert"},
    {.name = "tls_min_version", .type = T_ENUM, B(tls_min_version), .def = "TLSv1.2",
     .words = w_version, .help = "oldest TLS version accepted"},
    {.name = "tls_ciphers", .type = T_STRING, B(tls_ciphers), .def = "",
     .help = "OpenSSL cipher list for TLS 1.2 (empty: OpenSSL's default)"},
    {.name = "tls_ciphersuites", .type = T_STRING, B(tls_ciphersuites), .def = "",
     .help = "OpenSSL cipher suites for TLS 1.3 (empty: OpenSSL's default)"},
    {.name = "tls_session_tickets", .type = T_BOOL, B(tls_session_tickets), .def = "yes",
     .help = "offer TLS session tickets (some Microsoft clients fail with them)"},

    {.name = "listen", .type = T_LIST, L(listen), .def = "", .check = check_listen,
     .help = "where to listen (required, repeatable): HOST:PORT, [IPv6]:PORT, *:PORT, unix:/path"},
    {.name = "role", .type = T_ENUM, L(role), .def = "mx", .words = w_role,
     .help = "mx (port 25), submission (587) or submissions (465, implicit TLS)"},
    {.name = "tls", .type = T_ENUM, L(tls), .role_def = {-1, -1, PH_TLS_IMPLICIT}, .words = w_tls,
     .help = "default: implicit for submissions, else starttls if tls_cert is set, else none"},
    {.name = "require_tls", .type = T_BOOL, L(require_tls), .role_def = {0, 1, 1},
     .help = "refuse MAIL before TLS (530 5.7.0); default: no for mx, yes otherwise"},
    {.name = "auth", .type = T_ENUM, L(auth), .role_def = {PH_AUTH_NONE, PH_AUTH_TLS, PH_AUTH_TLS},
     .words = w_auth, .help = "AUTH offered: never, only under TLS, or also in clear text; "
                              "default: none for mx, tls otherwise"},
    {.name = "require_auth", .type = T_BOOL, L(require_auth), .role_def = {0, 1, 1},
     .help = "refuse MAIL before AUTH (530 5.7.0); default: no for mx, yes otherwise"},
};

#define NPARAMS (sizeof(params) / sizeof(params[0]))
_Static_assert(NPARAMS <= PH_CONFIG_MAX_PARAMS, "raise PH_CONFIG_MAX_PARAMS");

static const param *find_param(const char *name)
{
    for (size_t i = 0; i < NPARAMS; i++)
        if (strcmp(params[i].name, name) == 0)
            return &params[i];
    return NULL;
}

static size_t param_index(const char *name)
{
    return (size_t)(find_param(name) - params);
}

/* Where parameter p lives for listener l (NULL: the global scope). */
static void *slot_of(const ph_config *cfg, const ph_config_listener *l, const param *p)
{
    const void *base = p->scope == S_GLOBAL     ? (const void *)&cfg->g
                       : p->scope == S_LISTENER ? (const void *)l
                       : l                      ? (const void *)&l->s
                                                : (const void *)&cfg->s;
    return (char *)base + p->offset;
}

/* ---- value types ------------------------------------------------------------------------ */

typedef struct qbuf {
    char s[72];
} qbuf;

/* s for a message: at most 56 bytes of it, anything but printable ASCII as \xNN (no byte of
 * the file can reach a terminal raw), "..." if shortened. */
static const char *quote(qbuf *q, const char *s)
{
    size_t o = 0;
    for (; *s && o < 56; s++) {
        unsigned char c = (unsigned char)*s;
        if (c >= 0x20 && c < 0x7f)
            q->s[o++] = (char)c;
        else
            o += (size_t)snprintf(q->s + o, 5, "\\x%02x", c);
    }
    snprintf(q->s + o, sizeof(q->s) - o, "%s", *s ? "..." : "");
    return q->s;
}

typedef struct unit {
    const char *suffix;
    uint64_t mul;
} unit;

/* Per numeric type: suffixes accepted (bare number last), suffixes printed (largest first,
 * ending with a factor 1), and what the value should look like. */
typedef struct num_format {
    const unit *in, *out;
    const char *shape;
} num_format;

static const unit u_plain[] = {{"", 1}, {NULL, 0}};
static const unit u_size_in[] = {{"k", 1 << 10}, {"K", 1 << 10}, {"m", 1 << 20}, {"M", 1 << 20},
                                 {"g", 1 << 30}, {"G", 1 << 30}, {"", 1}, {NULL, 0}};
static const unit u_size_out[] = {{"G", 1 << 30}, {"M", 1 << 20}, {"k", 1 << 10}, {"", 1}};
static const unit u_dur_in[] = {{"ms", 1},     {"s", SEC},   {"m", MIN},  {"h", HOUR},
                                {"d", DAY},    {"", SEC},    {NULL, 0}};
static const unit u_dur_out[] = {{"d", DAY}, {"h", HOUR}, {"m", MIN}, {"s", SEC}, {"ms", 1}};

static const num_format num_formats[T__N] = {
    [T_UINT] = {u_plain, u_plain, "a number"},
    [T_SIZE] = {u_size_in, u_size_out, "a size (a number, optionally with k, M or G)"},
    [T_DURATION] = {u_dur_in, u_dur_out,
                    "a duration (seconds, or a number with ms, s, m, h or d)"},
};

static uint64_t num_get(ptype t, const void *slot)
{
    return t == T_UINT ? *(const unsigned *)slot : *(const uint64_t *)slot;
}

static void format_number(ptype t, uint64_t v, char *buf, size_t size)
{
    const unit *u = num_formats[t].out;
    while (v != 0 && v % u->mul != 0)
        u++;
    snprintf(buf, size, "%" PRIu64 "%s", v / u->mul, v ? u->suffix : "");
}

/* Digits, then one of units' suffixes (exactly): 0; BAD if not that shape; 1 if the value
 * overflows 64 bits (reported as out of range, like any too big number). */
static int read_scaled(const char *v, const unit *units, uint64_t *out)
{
    const char *s = v;
    while (is_digit(*s))
        s++;
    const unit *u = units;
    while (u->suffix && strcmp(s, u->suffix) != 0)
        u++;
    if (s == v || !u->suffix)
        return BAD;
    uint64_t n = 0;
    for (const char *p = v; p < s; p++)
        if (__builtin_mul_overflow(n, 10, &n) || __builtin_add_overflow(n, *p - '0', &n))
            return 1;
    return __builtin_mul_overflow(n, u->mul, out) ? 1 : 0;
}

static int parse_number(const param *p, const char *v, void *slot, char *why, size_t n)
{
    const num_format *f = &num_formats[p->type];
    qbuf q;
    uint64_t x = 0;
    int r = read_scaled(v, f->in, &x);
    if (r == BAD) {
        snprintf(why, n, "'%s' is not %s", quote(&q, v), f->shape);
        return BAD;
    }
    if (r == 1 || x < p->min || x > p->max) {
        char lo[32], hi[32];
        format_number(p->type, p->min, lo, sizeof(lo));
        format_number(p->type, p->max, hi, sizeof(hi));
        snprintf(why, n, "'%s' is out of range (%s..%s)", quote(&q, v), lo, hi);
        return BAD;
    }
    if (p->type == T_UINT)
        *(unsigned *)slot = (unsigned)x; /* max <= UINT_MAX by the table */
    else
        *(uint64_t *)slot = x;
    return 0;
}

static void print_number(const param *p, const void *slot, FILE *out)
{
    char buf[32];
    format_number(p->type, num_get(p->type, slot), buf, sizeof(buf));
    fputs(buf, out);
}

static int parse_string(const param *p, const char *v, void *slot, char *why, size_t n)
{
    const char *bad = strlen(v) > PH_CONFIG_MAX_VALUE ? "longer than 4096 bytes"
                      : p->check                       ? p->check(v)
                                                       : NULL;
    qbuf q;
    if (bad) {
        snprintf(why, n, "'%s': %s", quote(&q, v), bad);
        return BAD;
    }
    char *copy = strdup(v);
    if (!copy)
        return NOMEM;
    free(*(char **)slot);
    *(char **)slot = copy;
    return 0;
}

static void print_string(const param *p, const void *slot, FILE *out)
{
    (void)p;
    fputs(*(char *const *)slot, out);
}

static const struct {
    const char *word;
    bool value;
} bool_words[] = {{"yes", true}, {"no", false}, {"true", true}, {"false", false},
                  {"on", true},  {"off", false}, {"1", true},   {"0", false}};

static int parse_bool(const param *p, const char *v, void *slot, char *why, size_t n)
{
    qbuf q;
    (void)p;
    for (size_t i = 0; i < sizeof(bool_words) / sizeof(bool_words[0]); i++)
        if (strcasecmp(v, bool_words[i].word) == 0) {
            *(bool *)slot = bool_words[i].value;
            return 0;
        }
    snprintf(why, n, "'%s' is not yes or no (also true/false, on/off, 1/0)", quote(&q, v));
    return BAD;
}

static void print_bool(const param *p, const void *slot, FILE *out)
{
    (void)p;
    fputs(*(const bool *)slot ? "yes" : "no", out);
}

static void join_words(const char *const *w, const char *sep, char *buf, size_t size)
{
    size_t used = 0;
    buf[0] = '\0';
    for (size_t i = 0; w[i] && used < size; i++)
        used += (size_t)snprintf(buf + used, size - used, "%s%s", i ? sep : "", w[i]);
}

static int parse_enum(const param *p, const char *v, void *slot, char *why, size_t n)
{
    char words[96];
    qbuf q;
    for (int i = 0; p->words[i]; i++)
        if (strcasecmp(v, p->words[i]) == 0) {
            *(int *)slot = i;
            return 0;
        }
    join_words(p->words, ", ", words, sizeof(words));
    snprintf(why, n, "'%s' is not one of %s", quote(&q, v), words);
    return BAD;
}

static void print_enum(const param *p, const void *slot, FILE *out)
{
    fputs(p->words[*(const int *)slot], out);
}

static void list_release(ph_strlist *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->v[i]);
    free(l->v);
    l->v = NULL;
    l->n = 0;
}

/* Next word of a list value (separated by blanks and/or commas): its start, or NULL. */
static const char *next_word(const char *s, size_t *len)
{
    s += strspn(s, " \t,");
    *len = strcspn(s, " \t,");
    return *len ? s : NULL;
}

/* Appends every word or, if one is bad or the list would grow too long, none. */
static int parse_list(const param *p, const char *v, void *slot, char *why, size_t n)
{
    ph_strlist *l = slot;
    size_t count = 0, len, k = 0;
    for (const char *s = v; (s = next_word(s, &len)); s += len)
        count++;
    if (count == 0)
        return 0;
    if (count > PH_CONFIG_MAX_LIST - l->n) {
        snprintf(why, n, "more than %d entries", PH_CONFIG_MAX_LIST);
        return BAD;
    }
    char **grown = realloc(l->v, (l->n + count) * sizeof(*grown));
    if (!grown)
        return NOMEM;
    l->v = grown;
    for (const char *s = v; (s = next_word(s, &len)); s += len, k++) {
        char *w = strndup(s, len);
        const char *bad = !w                          ? NULL
                          : len > PH_CONFIG_MAX_VALUE ? "longer than 4096 bytes"
                          : p->check                  ? p->check(w)
                                                      : NULL;
        qbuf q;
        if (!w || bad) {
            if (bad)
                snprintf(why, n, "'%s': %s", quote(&q, w), bad);
            free(w);
            while (k > 0)
                free(l->v[l->n + --k]);
            return bad ? BAD : NOMEM;
        }
        l->v[l->n + k] = w;
    }
    l->n += count;
    return 0;
}

static void print_list(const param *p, const void *slot, FILE *out)
{
    const ph_strlist *l = slot;
    (void)p;
    for (size_t i = 0; i < l->n; i++)
        fprintf(out, "%s%s", i ? " " : "", l->v[i]);
}

typedef struct type_ops {
    const char *name;
    size_t size;
    int (*parse)(const param *p, const char *v, void *slot, char *why, size_t n);
    void (*print)(const param *p, const void *slot, FILE *out);
    bool empty_ok; /* "key =" is a value (string, path, list), not a missing one */
} type_ops;

static const type_ops types[T__N] = {
    [T_STRING] = {"string", sizeof(char *), parse_string, print_string, true},
    [T_PATH] = {"path", sizeof(char *), parse_string, print_string, true},
    [T_BOOL] = {"bool", sizeof(bool), parse_bool, print_bool, false},
    [T_UINT] = {"uint", sizeof(unsigned), parse_number, print_number, false},
    [T_SIZE] = {"size", sizeof(uint64_t), parse_number, print_number, false},
    [T_DURATION] = {"duration", sizeof(uint64_t), parse_number, print_number, false},
    [T_ENUM] = {"enum", sizeof(int), parse_enum, print_enum, false},
    [T_LIST] = {"list", sizeof(ph_strlist), parse_list, print_list, true},
};

static void release_value(const param *p, void *slot)
{
    if (p->type == T_LIST) {
        list_release(slot);
    } else if (p->type == T_STRING || p->type == T_PATH) {
        free(*(char **)slot);
        *(char **)slot = NULL;
    }
}

/* dst = src for one parameter; deep copies. -1 if out of memory. */
static int copy_value(const param *p, void *dst, const void *src)
{
    release_value(p, dst);
    if (p->type == T_STRING || p->type == T_PATH)
        return (*(char **)dst = strdup(*(char *const *)src)) ? 0 : -1;
    if (p->type == T_LIST) {
        const ph_strlist *from = src;
        for (size_t i = 0; i < from->n; i++)
            if (parse_list(p, from->v[i], dst, NULL, 0) != 0)
                return -1;
        return 0;
    }
    memcpy(dst, src, types[p->type].size);
    return 0;
}

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
__attribute__((format(printf, 4, 5))) static void errs_add(ph_config_errors *e, const char *file,
                                                           unsigned line, const char *fmt, ...)
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

typedef struct parser {
    ph_config *cfg;
    ph_config_errors *errs;
    ph_config_listener *cur;    /* the section keys go to; NULL: the global scope */
    ph_config_listener scratch; /* a bad or surplus section: its keys are checked, then dropped */
    bool sections;              /* a section header was seen */
    bool oom;
    char *text;                 /* the logical line being gathered (continuations joined) */
    size_t len, cap;
    unsigned text_line;         /* where it started */
    bool pending, poisoned;     /* a line is gathered; it had an error and will be dropped */
} parser;

#define perr(st, line, ...) errs_add((st)->errs, (st)->cfg->file, (line), __VA_ARGS__)

static bool in_scope(const param *p, bool listener)
{
    return (p->scope & (listener ? S_LISTENER : S_GLOBAL)) != 0;
}

/* Sets every parameter of a scope (l NULL: global) to its table default. */
static void init_defaults(parser *st, ph_config_listener *l)
{
    char why[256];
    for (size_t i = 0; i < NPARAMS; i++) {
        const param *p = &params[i];
        if (!in_scope(p, l != NULL) || !p->def)
            continue;
        int r = types[p->type].parse(p, p->def, slot_of(st->cfg, l, p), why, sizeof(why));
        if (r == NOMEM)
            st->oom = true;
        else if (r != 0) /* a bug in the table; the unit tests load the defaults */
            perr(st, 0, "internal error: default of %s: %s", p->name, why);
    }
}

static void release_scope(ph_config *cfg, ph_config_listener *l)
{
    for (size_t i = 0; i < NPARAMS; i++)
        if (in_scope(&params[i], l != NULL))
            release_value(&params[i], slot_of(cfg, l, &params[i]));
    if (l) {
        free(l->name);
        l->name = NULL;
    }
}

static void enter_scratch(parser *st)
{
    release_scope(st->cfg, &st->scratch);
    memset(&st->scratch, 0, sizeof(st->scratch));
    init_defaults(st, &st->scratch);
    st->cur = &st->scratch;
}

static bool valid_name(const char *s)
{
    size_t n = strlen(s);
    return n <= 64 && only_chars(s, n, "_-");
}

static void add_listener(parser *st, const char *name, unsigned line)
{
    ph_config *cfg = st->cfg;
    for (size_t i = 0; i < cfg->nlisteners; i++)
        if (strcmp(cfg->listeners[i].name, name) == 0) {
            perr(st, line, "duplicate listener name '%s' (first at line %u)", name,
                 cfg->listeners[i].line);
            return;
        }
    if (cfg->nlisteners == PH_CONFIG_MAX_LISTENERS) {
        perr(st, line, "more than %d [listener] sections", PH_CONFIG_MAX_LISTENERS);
        return;
    }
    /* grow by doubling; the array holds at most PH_CONFIG_MAX_LISTENERS */
    size_t n = cfg->nlisteners;
    char *copy = strdup(name);
    ph_config_listener *v = !copy || (n & (n - 1)) != 0
                                ? cfg->listeners
                                : realloc(cfg->listeners, (n ? 2 * n : 1) * sizeof(*v));
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
    init_defaults(st, &v[n]);
    st->cur = &v[n];
}

static char *trim(char *s)
{
    while (is_blank(*s))
        s++;
    size_t n = strlen(s);
    while (n > 0 && is_blank(s[n - 1]))
        s[--n] = '\0';
    return s;
}

/* "[listener NAME]". Whatever goes wrong, the keys that follow go to the scratch listener,
 * so they are still checked but a typo in a header does not cascade into scope errors. */
static void do_section(parser *st, char *text, unsigned line)
{
    size_t n = strlen(text);
    qbuf q;
    st->sections = true;
    enter_scratch(st);
    if (n < 2 || text[n - 1] != ']') {
        perr(st, line, "bad section header '%s' (expected [listener NAME])", quote(&q, text));
        return;
    }
    text[n - 1] = '\0';
    char *kind = trim(text + 1), *name = kind + strcspn(kind, " \t");
    if (*name)
        *name++ = '\0';
    name = trim(name);
    if (strcmp(kind, "listener") != 0)
        perr(st, line, "unknown section type '%s' (expected [listener NAME])", quote(&q, kind));
    else if (!valid_name(name))
        perr(st, line, "bad listener name '%s' (1 to 64 letters, digits, '_' and '-')",
             quote(&q, name));
    else
        add_listener(st, name, line);
}

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
    for (size_t i = 0; i < NPARAMS; i++)
        if (strcasecmp(key, params[i].name) == 0)
            return params[i].name;
    for (size_t i = 0; i < NPARAMS; i++)
        if ((d = distance(key, params[i].name)) < best) {
            best = d;
            hint = params[i].name;
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
        perr(st, line, "unknown parameter '%s' (did you mean '%s'?)", quote(&q, key), hint);
    else
        perr(st, line, "unknown parameter '%s'", quote(&q, key));
}

static bool scope_ok(parser *st, const param *p, unsigned line)
{
    if (st->cur && !in_scope(p, true)) {
        perr(st, line, "%s: a global parameter, not allowed in a [listener] section", p->name);
        return false;
    }
    if (!st->cur && !in_scope(p, false)) {
        perr(st, line, "%s: only allowed in a [listener NAME] section", p->name);
        return false;
    }
    return true;
}

static void do_key(parser *st, char *text, unsigned line)
{
    char *eq = strchr(text, '='), why[256];
    qbuf q;
    if (!eq) {
        perr(st, line, "expected 'key = value' or '[listener NAME]', got '%s'", quote(&q, text));
        return;
    }
    *eq = '\0';
    char *key = trim(text), *value = trim(eq + 1);
    const param *p = find_param(key);
    if (!p) {
        unknown_key(st, key, line);
        return;
    }
    if (!scope_ok(st, p, line))
        return;
    unsigned *set = st->cur ? st->cur->set_line : st->cfg->set_line, *first = &set[p - params];
    if (*first && p->type != T_LIST) {
        perr(st, line, "%s: set twice (first at line %u)", p->name, *first);
        return;
    }
    if (!*value && !types[p->type].empty_ok) {
        perr(st, line, "%s: missing value", p->name);
        return;
    }
    int r = types[p->type].parse(p, value, slot_of(st->cfg, st->cur, p), why, sizeof(why));
    if (r == NOMEM)
        st->oom = true;
    else if (r == BAD)
        perr(st, line, "%s: %s", p->name, why);
    else if (!*first)
        *first = line;
}

/* Processes the gathered logical line, if any and if it had no error, and forgets it. */
static void flush(parser *st)
{
    if (st->pending && !st->poisoned) {
        if (st->text[0] == '[')
            do_section(st, st->text, st->text_line);
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

/* ---- resolution and cross checks ---------------------------------------------------------- */

static unsigned set_line_of(const unsigned *set, const char *key)
{
    return set[param_index(key)];
}

/* Inherits every overridable value not set in the section, then applies the role defaults
 * (after inheriting: the default tls mode depends on the effective tls_cert). */
static void resolve_listener(parser *st, ph_config_listener *l)
{
    for (size_t i = 0; i < NPARAMS; i++) {
        const param *p = &params[i];
        if (p->scope == S_BOTH && !l->set_line[i] &&
            copy_value(p, slot_of(st->cfg, l, p), slot_of(st->cfg, NULL, p)) != 0)
            st->oom = true;
    }
    for (size_t i = 0; i < NPARAMS; i++) {
        const param *p = &params[i];
        if (p->def || l->set_line[i])
            continue;
        int v = p->role_def[l->role];
        if (v < 0) /* tls: starttls when there is a certificate */
            v = *l->s.tls_cert ? PH_TLS_STARTTLS : PH_TLS_NONE;
        if (p->type == T_BOOL)
            *(bool *)slot_of(st->cfg, l, p) = v != 0;
        else
            *(int *)slot_of(st->cfg, l, p) = v;
    }
}

/* Where to point for a listener problem about keys a and b: the line that set a, else the one
 * that set b, else the section header. */
static unsigned where(const ph_config_listener *l, const char *a, const char *b)
{
    unsigned line = set_line_of(l->set_line, a);
    if (!line && b)
        line = set_line_of(l->set_line, b);
    return line ? line : l->line;
}

/* " (the default for role X)" when key was not set in the section, else "". */
static const char *by_default(const ph_config_listener *l, const char *key)
{
    static const char *const note[] = {" (the default for role mx)",
                                       " (the default for role submission)",
                                       " (the default for role submissions)"};
    return set_line_of(l->set_line, key) ? "" : note[l->role];
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
        if (set_line_of(l->set_line, "tls_cert") || set_line_of(l->set_line, "tls_key"))
            perr(st, where(l, has, lacks), "listener '%s': %s without %s", l->name, has, lacks);
    } else if (l->tls != PH_TLS_NONE && !cert) {
        perr(st, where(l, "tls", NULL), "listener '%s': tls = %s%s needs tls_cert and tls_key",
             l->name, w_tls[l->tls], by_default(l, "tls"));
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
             w_auth[l->auth], by_default(l, "auth"));
    /* not in the list, but such a listener could never take a message */
    if (l->require_auth && l->auth == PH_AUTH_NONE)
        perr(st, where(l, "require_auth", "auth"),
             "listener '%s': require_auth = yes%s but auth = none", l->name,
             by_default(l, "require_auth"));
}

static void (*const listener_checks[])(parser *, const ph_config_listener *) = {
    check_listen_set, check_tls_files, check_require_tls, check_submissions, check_auth,
};

static void check_global(parser *st)
{
    const ph_config *cfg = st->cfg;
    if (cfg->g.delivery == PH_DELIVERY_STORE && !*cfg->g.store_dir) {
        unsigned line = set_line_of(cfg->set_line, "delivery");
        perr(st, line, "delivery = store%s needs store_dir", line ? "" : " (the default)");
    }
    if (!*cfg->s.tls_cert != !*cfg->s.tls_key) {
        const char *has = *cfg->s.tls_cert ? "tls_cert" : "tls_key";
        perr(st, set_line_of(cfg->set_line, has), "%s without %s", has,
             *cfg->s.tls_cert ? "tls_key" : "tls_cert");
    }
    if (!st->sections)
        perr(st, 0, "no [listener] section");
}

static void finish(parser *st)
{
    for (size_t i = 0; i < st->cfg->nlisteners; i++)
        resolve_listener(st, &st->cfg->listeners[i]);
    if (st->oom)
        return;
    check_global(st);
    for (size_t i = 0; i < st->cfg->nlisteners; i++)
        for (size_t k = 0; k < sizeof(listener_checks) / sizeof(listener_checks[0]); k++)
            listener_checks[k](st, &st->cfg->listeners[i]);
}

/* ---- public API -------------------------------------------------------------------------- */

void ph_config_free(ph_config *cfg)
{
    if (!cfg)
        return;
    release_scope(cfg, NULL);
    for (size_t i = 0; i < cfg->nlisteners; i++)
        release_scope(cfg, &cfg->listeners[i]);
    free(cfg->listeners);
    free(cfg->file);
    free(cfg);
}

int ph_config_parse(const char *name, const char *buf, size_t len, ph_config **out,
                    ph_config_errors *errs)
{
    ph_config_errors local = {0};
    parser st = {.errs = errs ? errs : &local};
    memset(st.errs, 0, sizeof(*st.errs));
    *out = NULL;
    if (!(st.cfg = calloc(1, sizeof(*st.cfg))) || !(st.cfg->file = strdup(name ? name : "-"))) {
        free(st.cfg);
        return -ENOMEM;
    }
    init_defaults(&st, NULL);
    read_lines(&st, buf, len);
    release_scope(st.cfg, &st.scratch);
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
            errs_add(errs, path, 0, "%s", r == -EFBIG ? "larger than 16 MiB" : strerror(-r));
        }
        return r;
    }
    r = ph_config_parse(path, buf, len, out, errs);
    free(buf);
    return r;
}

static void dump_param(const ph_config *cfg, const ph_config_listener *l, const param *p,
                       FILE *out)
{
    const void *slot = slot_of(cfg, l, p);
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
    types[p->type].print(p, slot, out);
    fputc('\n', out);
}

static void dump_scope(const ph_config *cfg, const ph_config_listener *l, bool only_set,
                       FILE *out)
{
    const unsigned *set = l ? l->set_line : cfg->set_line;
    /* a section starts with what only a listener has (listen first), then its overrides */
    for (int pass = 0; pass < 2; pass++)
        for (size_t i = 0; i < NPARAMS; i++)
            if (in_scope(&params[i], l != NULL) && (!only_set || set[i]) &&
                (params[i].scope == S_BOTH) == (pass == 1))
                dump_param(cfg, l, &params[i], out);
}

int ph_config_dump(const ph_config *cfg, FILE *out, bool only_set)
{
    dump_scope(cfg, NULL, only_set, out);
    for (size_t i = 0; i < cfg->nlisteners; i++) {
        fprintf(out, "\n[listener %s]\n", cfg->listeners[i].name);
        dump_scope(cfg, &cfg->listeners[i], only_set, out);
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

int ph_config_value(const ph_config *cfg, const ph_config_listener *l, const char *key,
                    char *buf, size_t size)
{
    const param *p = find_param(key);
    char *text = NULL;
    size_t len = 0;
    if (!p)
        return -ENOENT;
    if (!l && !in_scope(p, false))
        return -EINVAL;
    FILE *f = open_memstream(&text, &len);
    if (!f)
        return -ENOMEM;
    types[p->type].print(p, slot_of(cfg, l, p), f);
    if (fclose(f) != 0) {
        free(text);
        return -ENOMEM;
    }
    if (size)
        snprintf(buf, size, "%s", text);
    free(text);
    return len < size ? 0 : -ENOSPC;
}

unsigned ph_config_set_line(const ph_config *cfg, const ph_config_listener *l, const char *key)
{
    const param *p = find_param(key);
    if (!p || !in_scope(p, l != NULL))
        return 0;
    return (l ? l->set_line : cfg->set_line)[p - params];
}

static void describe_values(const param *p, char *buf, size_t size)
{
    char lo[32], hi[32];
    buf[0] = '\0';
    if (p->words) {
        join_words(p->words, " | ", buf, size);
    } else if (p->type == T_BOOL) {
        snprintf(buf, size, "yes | no");
    } else if (num_formats[p->type].in) {
        format_number(p->type, p->min, lo, sizeof(lo));
        format_number(p->type, p->max, hi, sizeof(hi));
        snprintf(buf, size, "%s..%s", lo, hi);
    }
}

int ph_config_param_info_get(size_t i, ph_config_param_info *info)
{
    static const char *const scopes[] = {"", "global", "listener", "global, listener"};
    if (i >= NPARAMS)
        return -ENOENT;
    const param *p = &params[i];
    info->name = p->name;
    info->scope = scopes[p->scope];
    info->type = types[p->type].name;
    info->def = p->def;
    info->help = p->help;
    describe_values(p, info->values, sizeof(info->values));
    return 0;
}
