/*
 * passwd.c - the AUTH password file (see passwd.h): loading with file:line errors, constant-time
 * verification through libxcrypt's crypt_rn, and new yescrypt hashes for `posthorn passwd`.
 *
 * Owns the passwd_db (a sorted array of heap strings) and, per verification, one heap
 * struct crypt_data (32 KiB: too big for a worker's stack frame) that is wiped before it is
 * freed, because it held the password. Load errors are -errno with a message; verification
 * fails closed (false) on any error.
 */
#include "daemon/passwd.h"

#include <crypt.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto/addr.h"

#define LINE_MAX_LEN 1024 /* user (255) + ':' + a hash (< CRYPT_OUTPUT_SIZE), with room */

typedef struct pw_entry {
    char *user;
    char *hash;
    unsigned line;
} pw_entry;

struct passwd_db {
    pw_entry *e; /* sorted by user (strcmp) after load */
    size_t n, cap;
};

/*
 * Accepted methods: a complete hash has this prefix and, after its last '$', exactly tail
 * characters of hash output. Checking the tail catches truncated lines and bare settings, which
 * would otherwise load fine and then reject every password.
 */
typedef struct hash_method {
    const char *prefix;
    size_t tail;
} hash_method;

static const hash_method methods[] = {
    {"$y$", 43},  /* yescrypt */
    {"$2b$", 53}, /* bcrypt: 22 salt + 31 hash characters after the cost */
    {"$2y$", 53},
    {"$6$", 86}, /* sha512-crypt */
};

/* A yescrypt hash (default cost) used when the database is empty: the result is discarded,
 * only the time it takes matters. */
static const char dummy_hash[] =
    "$y$j9T$.zDWJ0xTz6/TRSIe5gIJg0$xUZEBHHA/gQ7qUjQUxQ.7T48n.yRNe.DAX5RPrd1PgB";

/* --- checking lines --------------------------------------------------------------------------- */

static bool hash_char(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '.' || c == '/' || c == '$' || c == '=' || c == ',';
}

static bool hash_ok(const char *h)
{
    size_t len = strlen(h);
    if (len >= PASSWD_HASH_CAP || crypt_checksalt(h) != CRYPT_SALT_OK)
        return false;
    for (size_t i = 0; i < len; i++)
        if (!hash_char((unsigned char)h[i]))
            return false;
    const char *last = strrchr(h, '$');
    for (size_t m = 0; m < sizeof methods / sizeof methods[0]; m++) {
        size_t pl = strlen(methods[m].prefix);
        if (strncmp(h, methods[m].prefix, pl) == 0)
            return (size_t)(last - h) >= pl && strlen(last + 1) == methods[m].tail;
    }
    return false;
}

/* Names reach logs and session records: no blanks or control characters (C0, DEL, C1), and no
 * ':' (the field separator). u[len] must be readable (a NUL or the separator). */
const char *passwd_user_problem(const char *u, size_t len)
{
    if (len == 0)
        return "empty user name";
    if (len > PASSWD_USER_MAX)
        return "user name longer than 255 octets";
    if (!smtp_valid_utf8(u, len))
        return "user name is not valid UTF-8";
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)u[i];
        if (c <= 0x20 || c == 0x7f || (c == 0xc2 && (unsigned char)u[i + 1] <= 0x9f))
            return "blank or control character in user name";
        if (c == ':')
            return "':' in user name";
    }
    return NULL;
}

static bool blank_or_comment(const char *s)
{
    s += strspn(s, " \t");
    return *s == '\0' || *s == '#';
}

/* --- loading ---------------------------------------------------------------------------------- */

/* Writes a message into err (if any), always NUL-terminated. */
__attribute__((format(printf, 3, 4))) static void set_err(char *err, size_t errlen,
                                                          const char *fmt, ...)
{
    if (err == NULL || errlen == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

static int add_entry(passwd_db *db, const char *user, const char *hash, unsigned line)
{
    if (db->n == db->cap) {
        size_t cap = db->cap ? db->cap * 2 : 16;
        pw_entry *e = realloc(db->e, cap * sizeof *e);
        if (e == NULL)
            return -ENOMEM;
        db->e = e;
        db->cap = cap;
    }
    pw_entry *e = &db->e[db->n];
    e->user = strdup(user);
    e->hash = strdup(hash);
    e->line = line;
    if (e->user == NULL || e->hash == NULL) {
        free(e->user);
        free(e->hash);
        return -ENOMEM;
    }
    db->n++;
    return 0;
}

/*
 * Parses one line (newline stripped) and adds its entry. Returns NULL, or what is wrong with the
 * line; *who is set to the user name when the message is about that user's entry.
 */
static const char *parse_line(passwd_db *db, char *s, unsigned line, const char **who, int *rc)
{
    size_t len = strlen(s);
    if (len > 0 && s[len - 1] == '\r')
        s[--len] = '\0'; /* tolerate CRLF files */
    if (blank_or_comment(s))
        return NULL;
    char *colon = strchr(s, ':');
    if (colon == NULL)
        return "expected user:hash";
    *colon = '\0';
    const char *problem = passwd_user_problem(s, (size_t)(colon - s));
    if (problem != NULL)
        return problem;
    *who = s;
    if (!hash_ok(colon + 1))
        return "unsupported or malformed hash (want a complete yescrypt $y$, bcrypt $2b$ or "
               "sha512-crypt $6$ hash)";
    *rc = add_entry(db, s, colon + 1, line);
    return *rc < 0 ? "out of memory" : NULL;
}

static int cmp_entry(const void *a, const void *b)
{
    return strcmp(((const pw_entry *)a)->user, ((const pw_entry *)b)->user);
}

/* Sorts db and fails on the first user listed twice, naming both lines. */
static int check_duplicates(passwd_db *db, const char *path, char *err, size_t errlen)
{
    if (db->n < 2) /* also keeps a NULL array away from qsort */
        return 0;
    qsort(db->e, db->n, sizeof *db->e, cmp_entry);
    for (size_t i = 1; i < db->n; i++) {
        if (strcmp(db->e[i - 1].user, db->e[i].user) != 0)
            continue;
        unsigned a = db->e[i - 1].line, b = db->e[i].line;
        set_err(err, errlen, "%s:%u: duplicate user '%s' (first on line %u)", path,
                a < b ? b : a, db->e[i].user, a < b ? a : b);
        return -EINVAL;
    }
    return 0;
}

static int read_lines(FILE *f, passwd_db *db, const char *path, char *err, size_t errlen)
{
    char *buf = NULL;
    size_t bufcap = 0;
    ssize_t got;
    unsigned line = 0;
    int rc = 0;
    while (rc == 0 && (got = getline(&buf, &bufcap, f)) >= 0) {
        line++;
        if (got > 0 && buf[got - 1] == '\n')
            buf[--got] = '\0';
        const char *who = NULL, *problem = NULL;
        if ((size_t)got > LINE_MAX_LEN)
            problem = "line too long";
        else if (memchr(buf, '\0', (size_t)got) != NULL)
            problem = "NUL byte in line";
        else
            problem = parse_line(db, buf, line, &who, &rc);
        if (problem != NULL && who != NULL)
            set_err(err, errlen, "%s:%u: user '%s': %s", path, line, who, problem);
        else if (problem != NULL)
            set_err(err, errlen, "%s:%u: %s", path, line, problem);
        if (problem != NULL && rc == 0)
            rc = -EINVAL;
    }
    if (rc == 0 && ferror(f)) {
        rc = -EIO;
        set_err(err, errlen, "%s: %s", path, strerror(EIO));
    }
    if (buf != NULL)
        explicit_bzero(buf, bufcap);
    free(buf);
    return rc;
}

int passwd_db_load(const char *path, passwd_db **out, char *err, size_t errlen)
{
    *out = NULL;
    FILE *f = fopen(path, "re");
    if (f == NULL) {
        int e = errno;
        set_err(err, errlen, "%s: %s", path, strerror(e));
        return -e;
    }
    passwd_db *db = calloc(1, sizeof *db);
    int rc = db == NULL ? -ENOMEM : read_lines(f, db, path, err, errlen);
    fclose(f);
    if (rc == 0)
        rc = check_duplicates(db, path, err, errlen);
    if (rc < 0) {
        if (rc == -ENOMEM && db == NULL)
            set_err(err, errlen, "%s: %s", path, strerror(ENOMEM));
        passwd_db_free(db);
        return rc;
    }
    *out = db;
    return 0;
}

size_t passwd_db_count(const passwd_db *db)
{
    return db != NULL ? db->n : 0;
}

void passwd_db_free(passwd_db *db)
{
    if (db == NULL)
        return;
    for (size_t i = 0; i < db->n; i++) {
        explicit_bzero(db->e[i].hash, strlen(db->e[i].hash));
        free(db->e[i].user);
        free(db->e[i].hash);
    }
    free(db->e);
    free(db);
}

/* --- verifying -------------------------------------------------------------------------------- */

/* Compares without an early exit, so the time does not tell how much of the hash matched. */
static bool ct_equal(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    if (la != lb) /* lengths are fixed per method: not secret */
        return false;
    volatile unsigned char diff = 0;
    for (size_t i = 0; i < la; i++)
        diff |= (unsigned char)(a[i] ^ b[i]);
    return diff == 0;
}

/* True if crypt(password, hash) == hash. */
static bool hash_matches(const char *password, const char *hash)
{
    struct crypt_data *cd = calloc(1, sizeof *cd);
    if (cd == NULL)
        return false;
    const char *got = crypt_rn(password, hash, cd, (int)sizeof *cd);
    bool ok = got != NULL && ct_equal(got, hash);
    explicit_bzero(cd, sizeof *cd);
    free(cd);
    return ok;
}

bool passwd_db_verify(const passwd_db *db, const char *user, const char *password)
{
    const pw_entry *e = NULL;
    if (db != NULL && user != NULL && db->n > 0) {
        pw_entry key = {(char *)user, NULL, 0};
        e = bsearch(&key, db->e, db->n, sizeof *db->e, cmp_entry);
    }
    /* An unknown user costs a hash too: another entry's hash has a real method and cost. */
    const char *hash = e != NULL ? e->hash : db != NULL && db->n > 0 ? db->e[0].hash : dummy_hash;
    bool ok = hash_matches(password != NULL ? password : "", hash);
    return e != NULL && ok;
}

/* --- new hashes ------------------------------------------------------------------------------- */

int passwd_hash_new(const char *password, char *out, size_t cap)
{
    size_t len = strlen(password);
    if (len == 0 || len > PASSWD_PASSWORD_MAX)
        return -EINVAL;
    if (!smtp_valid_utf8(password, len))
        return -EILSEQ;
    char salt[CRYPT_GENSALT_OUTPUT_SIZE];
    /* NULL random bytes: libxcrypt takes them from the OS (getrandom). */
    if (crypt_gensalt_rn("$y$", 0, NULL, 0, salt, (int)sizeof salt) == NULL)
        return errno != 0 ? -errno : -EINVAL;
    struct crypt_data *cd = calloc(1, sizeof *cd);
    if (cd == NULL)
        return -ENOMEM;
    int rc = 0;
    const char *h = crypt_rn(password, salt, cd, (int)sizeof *cd);
    if (h == NULL)
        rc = errno != 0 ? -errno : -EINVAL;
    else if (strlen(h) >= cap)
        rc = -ERANGE;
    else
        memcpy(out, h, strlen(h) + 1);
    explicit_bzero(cd, sizeof *cd);
    free(cd);
    return rc;
}
