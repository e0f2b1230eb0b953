/*
 * test_passwd.c - unit tests for src/daemon/passwd.c: loading (comments, blanks, CRLF, every
 * malformed-line kind with its file:line message, duplicates, I/O errors), verification with
 * yescrypt, bcrypt and sha512-crypt hashes (Drepper's published sha512-crypt vectors among
 * them), unknown users costing a hash, concurrent verification, and new yescrypt hashes.
 * Files live in a fresh temporary directory removed at the end. Table-driven where it fits.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include <crypt.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "daemon/passwd.h"

/* "secret" */
#define H_YESCRYPT "$y$j9T$.zDWJ0xTz6/TRSIe5gIJg0$xUZEBHHA/gQ7qUjQUxQ.7T48n.yRNe.DAX5RPrd1PgB"
#define H_BCRYPT_B "$2b$05$MU9Lee7UafY76wbeOWS70OQeJpmhuwIVPN.oYrGDjDtrys15KgGqS"
#define H_BCRYPT_Y "$2y$05$gthDMZjUz//NRxPUzJWKLeMkFjFdtxuzr6ZZ0X.LkuUC1vGsi7JxO"
/* "Hello world!": the sha512-crypt specification's own test vectors (U. Drepper) */
#define H_SHA512 "$6$saltstring$svn8UoSVapNtMuq1ukKS4tPQd8iKwSMHWjl/O817G3uBnIFNjnQJuesI68u4" \
                 "OTLiBFdcbYEdFCoEOfaS35inz1"
#define H_SHA512_R "$6$rounds=10000$saltstringsaltst$OW1/O6BYHV6BcXZu8QVeXbDWra3Oeqh0sbHbbMC" \
                   "VNSnCM/UrjmM0Dp8vOuZeHBy/YTBmSK6H9qs/y3RnOaw5v."

static char tmpdir[256];

static const char *write_file(const char *name, const char *content)
{
    static char path[512];
    snprintf(path, sizeof path, "%s/%s", tmpdir, name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    assert_int_equal(fwrite(content, 1, strlen(content), f), strlen(content));
    assert_int_equal(fclose(f), 0);
    return path;
}

static int setup(void **state)
{
    (void)state;
    const char *t = getenv("TMPDIR");
    snprintf(tmpdir, sizeof tmpdir, "%s/test_passwd.XXXXXX", t != NULL && *t ? t : "/tmp");
    return mkdtemp(tmpdir) != NULL ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    return system(cmd) == 0 ? 0 : -1;
}

static const char good_file[] =
    "# Posthorn users\n"
    "\n"
    "   \t\n"
    "  # indented comment\n"
    "alice:" H_YESCRYPT "\n"
    "bob:" H_BCRYPT_B "\r\n"
    "carol@example.org:" H_SHA512 "\n"
    "dave:" H_SHA512_R "\n"
    "\xc3\xa9mile:" H_BCRYPT_Y; /* no final newline */

typedef struct verify_case {
    const char *user, *password;
    bool want;
} verify_case;

static const verify_case verify_cases[] = {
    {"alice", "secret", true},
    {"alice", "Secret", false},
    {"alice", "secret ", false},
    {"alice", "", false},
    {"bob", "secret", true},
    {"bob", "secreT", false},
    {"carol@example.org", "Hello world!", true},
    {"carol@example.org", "Hello world", false},
    {"dave", "Hello world!", true},
    {"\xc3\xa9mile", "secret", true},
    {"emile", "secret", false},
    {"Alice", "secret", false}, /* names are exact */
    {"alice ", "secret", false},
    {"mallory", "secret", false},
    {"mallory", "Hello world!", false},
    {"", "secret", false},
    {"carol", "Hello world!", false},
};

static void test_load_and_verify(void **state)
{
    (void)state;
    passwd_db *db = NULL;
    char err[256] = "";
    assert_int_equal(passwd_db_load(write_file("good", good_file), &db, err, sizeof err), 0);
    assert_non_null(db);
    assert_int_equal(passwd_db_count(db), 5);
    for (size_t i = 0; i < sizeof verify_cases / sizeof verify_cases[0]; i++) {
        const verify_case *c = &verify_cases[i];
        if (passwd_db_verify(db, c->user, c->password) != c->want)
            fail_msg("verify case %zu (%s/%s)", i, c->user, c->password);
    }
    /* a password with a NUL in the SASL field cannot reach here; NULL is treated as "" */
    assert_false(passwd_db_verify(db, "alice", NULL));
    assert_false(passwd_db_verify(db, NULL, "secret"));
    passwd_db_free(db);
    assert_false(passwd_db_verify(NULL, "alice", "secret"));
    passwd_db_free(NULL);
}

typedef struct bad_case {
    const char *content;
    const char *want; /* expected message after the path */
} bad_case;

static const bad_case bad_cases[] = {
    {"alice\n", ":1: expected user:hash"},
    {"# c\n\nalice " H_YESCRYPT "\n", ":3: expected user:hash"},
    {":" H_YESCRYPT "\n", ":1: empty user name"},
    {" alice:" H_YESCRYPT "\n", ":1: blank or control character in user name"},
    {"al ice:" H_YESCRYPT "\n", ":1: blank or control character in user name"},
    {"al\tice:" H_YESCRYPT "\n", ":1: blank or control character in user name"},
    {"al\x7f" "ice:" H_YESCRYPT "\n", ":1: blank or control character in user name"},
    {"al\xc2\x85ice:" H_YESCRYPT "\n", ":1: blank or control character in user name"},
    {"al\xe9:" H_YESCRYPT "\n", ":1: user name is not valid UTF-8"},
    {"alice:\n", ":1: user 'alice': unsupported or malformed hash"},
    {"alice:secret\n", ":1: user 'alice': unsupported or malformed hash"},
    {"alice:" H_YESCRYPT " \n", ":1: user 'alice': unsupported or malformed hash"},
    {"alice:" H_YESCRYPT "x\n", ":1: user 'alice': unsupported or malformed hash"},
    {"alice:$y$j9T$.zDWJ0xTz6/TRSIe5gIJg0\n", ":1: user 'alice': unsupported"}, /* a salt */
    {"alice:$6$saltstring\n", ":1: user 'alice': unsupported"},
    {"alice:$2b$05$MU9Lee7UafY76wbeOWS70O\n", ":1: user 'alice': unsupported"},
    {"alice:$1$abcdefgh$G//4keteveJEaXOHGh.8z.\n", ":1: user 'alice': unsupported"}, /* md5 */
    {"alice:abJnggxhB/yWI\n", ":1: user 'alice': unsupported"},                     /* DES */
    {"alice:!" H_YESCRYPT "\n", ":1: user 'alice': unsupported"},
    {"alice:" H_YESCRYPT ":extra\n", ":1: user 'alice': unsupported"},
    {"alice:" H_YESCRYPT "\nbob\n", ":2: expected user:hash"},
    {"alice:" H_YESCRYPT "\nalice:" H_SHA512 "\n", ":2: duplicate user 'alice' (first on line 1)"},
    {"alice:" H_YESCRYPT "\nbob:" H_BCRYPT_B "\n#\nalice:" H_SHA512 "\n",
     ":4: duplicate user 'alice' (first on line 1)"},
    {"a\0b:" H_YESCRYPT "\n", ":1: NUL byte in line"},
};

static void test_bad_lines(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof bad_cases / sizeof bad_cases[0]; i++) {
        const bad_case *c = &bad_cases[i];
        /* the NUL case needs an explicit length: write up to the final newline */
        const char *content = c->content;
        char path[512];
        snprintf(path, sizeof path, "%s/bad%zu", tmpdir, i);
        FILE *f = fopen(path, "w");
        assert_non_null(f);
        size_t len = strlen(content);
        if (strncmp(content, "a\0b", 3) == 0)
            len = 3 + strlen(content + 3);
        assert_int_equal(fwrite(content, 1, len, f), len);
        fclose(f);
        passwd_db *db = (passwd_db *)&db; /* must be reset to NULL */
        char err[300] = "";
        int rc = passwd_db_load(path, &db, err, sizeof err);
        if (rc != -EINVAL || db != NULL || strncmp(err, path, strlen(path)) != 0 ||
            strstr(err + strlen(path), c->want) != err + strlen(path))
            fail_msg("bad case %zu: rc %d err '%s', want '%s'", i, rc, err, c->want);
    }
}

static void test_limits(void **state)
{
    (void)state;
    char content[2200];
    passwd_db *db;
    char err[300];
    /* a 255-octet user is fine, 256 is not */
    memset(content, 'u', 255);
    snprintf(content + 255, sizeof content - 255, ":%s\n", H_YESCRYPT);
    assert_int_equal(passwd_db_load(write_file("u255", content), &db, err, sizeof err), 0);
    passwd_db_free(db);
    memset(content, 'u', 256);
    snprintf(content + 256, sizeof content - 256, ":%s\n", H_YESCRYPT);
    assert_int_equal(passwd_db_load(write_file("u256", content), &db, err, sizeof err), -EINVAL);
    assert_non_null(strstr(err, ":1: user name longer than 255 octets"));
    /* an overlong line */
    memset(content, '#', 2000);
    content[2000] = '\0';
    assert_int_equal(passwd_db_load(write_file("long", content), &db, err, sizeof err), -EINVAL);
    assert_non_null(strstr(err, ":1: line too long"));
    /* errors are cut to errlen, NUL-terminated; err may be NULL */
    char small[8];
    assert_int_equal(passwd_db_load(write_file("long", content), &db, small, sizeof small),
                     -EINVAL);
    assert_int_equal(strlen(small), 7);
    assert_int_equal(passwd_db_load(write_file("long", content), &db, NULL, 0), -EINVAL);
}

static void test_io_errors(void **state)
{
    (void)state;
    passwd_db *db;
    char err[300], path[300];
    snprintf(path, sizeof path, "%s/missing", tmpdir);
    assert_int_equal(passwd_db_load(path, &db, err, sizeof err), -ENOENT);
    assert_null(db);
    assert_non_null(strstr(err, "/missing: No such file or directory"));
    int rc = passwd_db_load(tmpdir, &db, err, sizeof err); /* a directory */
    assert_true(rc == -EIO || rc == -EISDIR);
    assert_null(db);
    /* an empty file and a comment-only file are empty databases */
    assert_int_equal(passwd_db_load(write_file("empty", ""), &db, err, sizeof err), 0);
    assert_int_equal(passwd_db_count(db), 0);
    assert_false(passwd_db_verify(db, "alice", "secret"));
    passwd_db_free(db);
    assert_int_equal(passwd_db_load(write_file("comments", "# none\n"), &db, err, sizeof err), 0);
    assert_int_equal(passwd_db_count(db), 0);
    passwd_db_free(db);
}

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static double time_verify(const passwd_db *db, const char *user)
{
    double best = 1e12;
    for (int i = 0; i < 5; i++) { /* the best of 5 filters out scheduling noise */
        double t0 = now_ms();
        (void)passwd_db_verify(db, user, "wrong password");
        double t = now_ms() - t0;
        best = t < best ? t : best;
    }
    return best;
}

/* An unknown user costs about as much as a known one (same method and cost). */
static void test_unknown_user_timing(void **state)
{
    (void)state;
    passwd_db *db;
    char err[300];
    assert_int_equal(
        passwd_db_load(write_file("y", "alice:" H_YESCRYPT "\n"), &db, err, sizeof err), 0);
    double known = time_verify(db, "alice"), unknown = time_verify(db, "nobody");
    print_message("verify: known user %.1f ms, unknown user %.1f ms\n", known, unknown);
    assert_true(known > 1.0);
    assert_true(unknown > known * 0.3); /* loose: only a skipped hash must fail this */
    passwd_db_free(db);
    /* an empty database still hashes (the built-in yescrypt hash) */
    assert_int_equal(passwd_db_load(write_file("e", ""), &db, err, sizeof err), 0);
    assert_true(time_verify(db, "nobody") > known * 0.3);
    passwd_db_free(db);
}

typedef struct thread_arg {
    const passwd_db *db;
    int ok;
} thread_arg;

static void *verify_thread(void *p)
{
    thread_arg *a = p;
    for (int i = 0; i < 4; i++) {
        a->ok += passwd_db_verify(a->db, "bob", "secret");
        a->ok += !passwd_db_verify(a->db, "bob", "nope");
    }
    return NULL;
}

/* The database is read-only after load: verification from several threads at once. */
static void test_threads(void **state)
{
    (void)state;
    passwd_db *db;
    char err[300];
    assert_int_equal(passwd_db_load(write_file("good", good_file), &db, err, sizeof err), 0);
    pthread_t t[4];
    thread_arg a[4];
    for (int i = 0; i < 4; i++) {
        a[i] = (thread_arg){db, 0};
        assert_int_equal(pthread_create(&t[i], NULL, verify_thread, &a[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(t[i], NULL);
        assert_int_equal(a[i].ok, 8);
    }
    passwd_db_free(db);
}

typedef struct hash_case {
    const char *password;
    size_t cap;
    int want;
} hash_case;

static const hash_case hash_cases[] = {
    {"secret", PASSWD_HASH_CAP, 0},
    {"p\xc3\xa4ss w\xc3\xb6rd \xf0\x9f\x93\xaf", PASSWD_HASH_CAP, 0},
    {"", PASSWD_HASH_CAP, -EINVAL},
    {"p\xe4ss", PASSWD_HASH_CAP, -EILSEQ},
    {"\xc0\xaf", PASSWD_HASH_CAP, -EILSEQ},
    {"secret", 73, -ERANGE}, /* the hash is 73 characters: 74 with the NUL */
    {"secret", 74, 0},
    {"secret", 0, -ERANGE},
};

static void test_hash_new(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof hash_cases / sizeof hash_cases[0]; i++) {
        const hash_case *c = &hash_cases[i];
        char out[PASSWD_HASH_CAP];
        int rc = passwd_hash_new(c->password, out, c->cap);
        if (rc != c->want)
            fail_msg("hash case %zu: got %d want %d", i, rc, c->want);
        if (rc != 0)
            continue;
        assert_int_equal(strncmp(out, "$y$", 3), 0);
        struct crypt_data cd;
        memset(&cd, 0, sizeof cd);
        const char *h = crypt_rn(c->password, out, &cd, (int)sizeof cd);
        assert_non_null(h);
        assert_string_equal(h, out);
    }
    /* salts are random: two hashes of one password differ; both load and verify */
    char a[PASSWD_HASH_CAP], b[PASSWD_HASH_CAP], content[1024];
    assert_int_equal(passwd_hash_new("secret", a, sizeof a), 0);
    assert_int_equal(passwd_hash_new("secret", b, sizeof b), 0);
    assert_string_not_equal(a, b);
    snprintf(content, sizeof content, "a:%s\nb:%s\n", a, b);
    passwd_db *db;
    char err[300];
    assert_int_equal(passwd_db_load(write_file("new", content), &db, err, sizeof err), 0);
    assert_true(passwd_db_verify(db, "a", "secret"));
    assert_true(passwd_db_verify(db, "b", "secret"));
    assert_false(passwd_db_verify(db, "a", "secreT"));
    passwd_db_free(db);
    /* the longest password SASL can carry */
    char longpw[PASSWD_PASSWORD_MAX + 2];
    memset(longpw, 'x', sizeof longpw);
    longpw[PASSWD_PASSWORD_MAX] = '\0';
    assert_int_equal(passwd_hash_new(longpw, a, sizeof a), 0);
    longpw[PASSWD_PASSWORD_MAX] = 'x';
    longpw[PASSWD_PASSWORD_MAX + 1] = '\0';
    assert_int_equal(passwd_hash_new(longpw, a, sizeof a), -EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_load_and_verify), cmocka_unit_test(test_bad_lines),
        cmocka_unit_test(test_limits),          cmocka_unit_test(test_io_errors),
        cmocka_unit_test(test_unknown_user_timing), cmocka_unit_test(test_threads),
        cmocka_unit_test(test_hash_new),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
