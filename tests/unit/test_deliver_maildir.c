/*
 * test_deliver_maildir.c - Maildir delivery on real files: byte-exact copies (prefix, CRLF to
 * LF, lone CR/LF kept, a CR at the 64 KiB boundary, empty and 1 MiB messages), the directories
 * it creates, unique names (also from several threads at once), a shared message fd, failures
 * that leave nothing in tmp/ or new/, ph_maildir_sync and the errno classes.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <sched.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "deliver/maildir.h"

#define CHUNK (64 * 1024) /* maildir.c's copy buffer */

typedef struct fixture {
    char dir[64];
    char md[128]; /* <dir>/Maildir */
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof(*f));
    snprintf(f->dir, sizeof(f->dir), "/tmp/posthorn-maildir-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->md, sizeof(f->md), "%s/Maildir", f->dir);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
    assert_int_equal(system(cmd), 0);
    free(f);
    return 0;
}

/* A message file holding data[0..len), as the queue's .msg would; its fd. */
static int message_fd(const fixture *f, const void *data, size_t len)
{
    char path[128];
    snprintf(path, sizeof(path), "%s/msg-XXXXXX", f->dir);
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    unlink(path);
    assert_int_equal(write(fd, data, len), (ssize_t)len);
    return fd;
}

static char *slurp(const char *path, size_t *len)
{
    FILE *fp = fopen(path, "rb");
    assert_non_null(fp);
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap);
    size_t r;
    while ((r = fread(buf + n, 1, cap - n, fp)) > 0) {
        n += r;
        if (n == cap)
            buf = realloc(buf, cap *= 2);
    }
    fclose(fp);
    *len = n;
    return buf;
}

/* Entries of dir other than . and .. (-1 if it cannot be opened). */
static int count_entries(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
            n++;
    closedir(d);
    return n;
}

static int count_sub(const char *md, const char *sub)
{
    char p[256];
    snprintf(p, sizeof(p), "%s/%s", md, sub);
    return count_entries(p);
}

/* The independent reference: every CRLF becomes LF, nothing else changes. */
static char *reference(const char *prefix, const char *in, size_t n, size_t *outlen)
{
    size_t plen = strlen(prefix);
    char *out = malloc(plen + n + 1);
    memcpy(out, prefix, plen);
    size_t o = plen;
    for (size_t i = 0; i < n; i++)
        if (!(in[i] == '\r' && i + 1 < n && in[i + 1] == '\n'))
            out[o++] = in[i];
    *outlen = o;
    return out;
}

/* Delivers data with prefix and checks the file in new/ against the reference, its name's
 * S= and that tmp/ is empty. */
static void deliver_and_check(fixture *f, const char *prefix, const char *data, size_t len)
{
    int fd = message_fd(f, data, len);
    char name[PH_MAILDIR_NAME_MAX], err[256] = "x";
    int rc = ph_maildir_deliver(f->md, prefix, strlen(prefix), fd, len, true, name,
                                sizeof(name), err, sizeof(err));
    if (rc != 0)
        fail_msg("deliver: %d %s", rc, err);
    close(fd);
    size_t wantlen, gotlen;
    char *want = reference(prefix, data, len, &wantlen);
    char path[PH_MAILDIR_NAME_MAX + 128];
    snprintf(path, sizeof(path), "%s/%s", f->md, name);
    char *got = slurp(path, &gotlen);
    assert_int_equal(gotlen, wantlen);
    assert_memory_equal(got, want, wantlen);
    char s_eq[64];
    snprintf(s_eq, sizeof(s_eq), ",S=%zu", wantlen);
    size_t nl = strlen(name), sl = strlen(s_eq);
    assert_true(nl > sl && strcmp(name + nl - sl, s_eq) == 0);
    assert_int_equal(count_sub(f->md, "tmp"), 0);
    unlink(path);
    free(got);
    free(want);
}

/* ---- content ---------------------------------------------------------------------------- */

static void test_content_conversion(void **state)
{
    fixture *f = *state;
    static const char msg[] = "Subject: hi\r\n\r\nline one\r\nlone LF\nlone CR\rx\r\r\nend\r";
    deliver_and_check(f, "Return-Path: <a@b>\nDelivered-To: c@d\n", msg, sizeof(msg) - 1);
    /* checked by hand too, so the reference cannot share a mistake with the code */
    int fd = message_fd(f, msg, sizeof(msg) - 1);
    char name[PH_MAILDIR_NAME_MAX], err[256], path[PH_MAILDIR_NAME_MAX + 128];
    assert_int_equal(ph_maildir_deliver(f->md, "P\n", 2, fd, sizeof(msg) - 1, false, name,
                                        sizeof(name), err, sizeof(err)), 0);
    close(fd);
    snprintf(path, sizeof(path), "%s/%s", f->md, name);
    size_t n;
    char *got = slurp(path, &n);
    static const char want[] = "P\nSubject: hi\n\nline one\nlone LF\nlone CR\rx\r\nend\r";
    assert_int_equal(n, sizeof(want) - 1);
    assert_memory_equal(got, want, n);
    free(got);
}

static void test_cr_at_chunk_boundary(void **state)
{
    fixture *f = *state;
    size_t len = 2 * CHUNK + 10;
    char *data = malloc(len);
    memset(data, 'a', len);
    /* CRLF split by the first boundary; a lone CR at the second; CRLF right after it */
    data[CHUNK - 1] = '\r';
    data[CHUNK] = '\n';
    data[2 * CHUNK - 1] = '\r';
    data[2 * CHUNK] = 'b';
    data[2 * CHUNK + 1] = '\r';
    data[2 * CHUNK + 2] = '\n';
    deliver_and_check(f, "", data, len);
    /* a CR at the boundary followed by another CR, then LF */
    data[2 * CHUNK - 1] = '\r';
    data[2 * CHUNK] = '\r';
    data[2 * CHUNK + 1] = '\n';
    deliver_and_check(f, "X: y\n", data, len);
    /* the message ends in a CR exactly at the boundary */
    deliver_and_check(f, "", data, CHUNK);
    free(data);
}

static void test_empty_and_large(void **state)
{
    fixture *f = *state;
    deliver_and_check(f, "", "", 0);
    deliver_and_check(f, "Delivered-To: x@y\n", "", 0);
    size_t len = 1024 * 1024;
    char *data = malloc(len);
    srand(4711);
    for (size_t i = 0; i < len; i++) {
        int r = rand() % 100;
        data[i] = r < 4 ? '\r' : r < 8 ? '\n' : (char)('a' + r % 26);
    }
    for (size_t i = 70; i + 1 < len; i += 77) {
        data[i] = '\r';
        data[i + 1] = '\n';
    }
    deliver_and_check(f, "Return-Path: <>\n", data, len);
    free(data);
}

/* ---- directories and names -------------------------------------------------------------- */

static void test_creates_directories(void **state)
{
    fixture *f = *state;
    char md[256];
    snprintf(md, sizeof(md), "%s/vmail/example.com/alice/", f->dir);
    int fd = message_fd(f, "x\r\n", 3);
    char err[256], name[PH_MAILDIR_NAME_MAX];
    assert_int_equal(ph_maildir_deliver(md, NULL, 0, fd, 3, false, name, sizeof(name), err,
                                        sizeof(err)), 0);
    static const char *const subs[] = {"", "tmp", "new", "cur"};
    for (size_t i = 0; i < 4; i++) {
        char p[300];
        struct stat st;
        snprintf(p, sizeof(p), "%s%s", md, subs[i]);
        assert_int_equal(stat(p, &st), 0);
        assert_true(S_ISDIR(st.st_mode));
        assert_int_equal(st.st_mode & 0777, 0700);
    }
    assert_int_equal(count_sub(md, "new"), 1);
    assert_int_equal(count_sub(md, "cur"), 0);
    assert_int_equal(count_sub(md, "tmp"), 0);
    /* new/ gone while tmp/ is there: made again at the link */
    char p[PH_MAILDIR_NAME_MAX + 300];
    snprintf(p, sizeof(p), "%snew/%s", md, name + 4);
    assert_int_equal(unlink(p), 0);
    snprintf(p, sizeof(p), "%snew", md);
    assert_int_equal(rmdir(p), 0);
    assert_int_equal(ph_maildir_deliver(md, NULL, 0, fd, 3, false, NULL, 0, err, sizeof(err)),
                     0);
    assert_int_equal(count_sub(md, "new"), 1);
    close(fd);
}

static void test_name_format(void **state)
{
    fixture *f = *state;
    int fd = message_fd(f, "abc\r\n", 5);
    char name[PH_MAILDIR_NAME_MAX], err[256];
    assert_int_equal(ph_maildir_deliver(f->md, "H: v\n", 5, fd, 5, false, name, sizeof(name),
                                        err, sizeof(err)), 0);
    close(fd);
    long long secs;
    long usecs, pid;
    unsigned long long q;
    int used = 0;
    assert_int_equal(sscanf(name, "new/%lld.M%ldP%ldQ%llu.%n", &secs, &usecs, &pid, &q, &used),
                     4);
    assert_true(used > 0);
    assert_true(secs > 1600000000);
    assert_true(usecs >= 0 && usecs < 1000000);
    assert_int_equal(pid, (long)getpid());
    const char *host = name + used;
    assert_non_null(strstr(host, ",S=9"));
    assert_null(strchr(host, '/'));
    assert_null(strchr(host, ':'));
    /* the counter counts: the next delivery's Q is larger */
    fd = message_fd(f, "x", 1);
    char next[PH_MAILDIR_NAME_MAX];
    unsigned long long q2;
    assert_int_equal(ph_maildir_deliver(f->md, NULL, 0, fd, 1, false, next, sizeof(next), err,
                                        sizeof(err)), 0);
    assert_non_null(strchr(next, 'Q'));
    assert_int_equal(sscanf(strchr(next, 'Q'), "Q%llu.", &q2), 1);
    assert_true(q2 > q);
    /* a short name_out is cut, not overrun */
    char small[8];
    memset(small, 'Z', sizeof(small));
    assert_int_equal(ph_maildir_deliver(f->md, NULL, 0, fd, 1, false, small, 5, err,
                                        sizeof(err)), 0);
    assert_string_equal(small, "new/");
    assert_int_equal(small[5], 'Z');
    close(fd);
}

/* In a child with its own UTS namespace (skipped where that is not allowed): a host name
 * with '/' and ':' is escaped as the spec says. */
static void test_host_escaping(void **state)
{
    fixture *f = *state;
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        if (unshare(CLONE_NEWUTS) != 0 || sethostname("a/b:c", 5) != 0)
            _exit(77);
        int fd = message_fd(f, "x", 1);
        char name[PH_MAILDIR_NAME_MAX], err[256];
        if (ph_maildir_deliver(f->md, NULL, 0, fd, 1, false, name, sizeof(name), err,
                               sizeof(err)) != 0)
            _exit(1);
        _exit(strstr(name, ".a\\057b\\072c,S=1") ? 0 : 2);
    }
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    if (WEXITSTATUS(status) == 77)
        skip();
    assert_int_equal(WEXITSTATUS(status), 0);
}

typedef struct worker {
    const fixture *f;
    int fd;
    int failures;
    char names[50][PH_MAILDIR_NAME_MAX];
} worker;

static void *deliver_many(void *arg)
{
    worker *w = arg;
    char err[256];
    for (int i = 0; i < 50; i++)
        if (ph_maildir_deliver(w->f->md, "T: 1\n", 5, w->fd, 12, false, w->names[i],
                               sizeof(w->names[i]), err, sizeof(err)) != 0)
            w->failures++;
    return NULL;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(a, b);
}

/* Four threads share one message fd (pread: its offset is never used) and deliver 50 each
 * at once: 200 distinct names, 200 files, each byte-exact. */
static void test_unique_across_threads(void **state)
{
    fixture *f = *state;
    int fd = message_fd(f, "Hello\r\nWorld", 12);
    assert_int_equal(lseek(fd, 3, SEEK_SET), 3);
    worker *w = calloc(4, sizeof(*w));
    pthread_t th[4];
    for (int i = 0; i < 4; i++) {
        w[i].f = f;
        w[i].fd = fd;
        assert_int_equal(pthread_create(&th[i], NULL, deliver_many, &w[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        assert_int_equal(pthread_join(th[i], NULL), 0);
        assert_int_equal(w[i].failures, 0);
    }
    assert_int_equal(lseek(fd, 0, SEEK_CUR), 3);
    close(fd);
    char(*all)[PH_MAILDIR_NAME_MAX] = malloc(200 * sizeof(*all));
    for (int i = 0; i < 200; i++)
        memcpy(all[i], w[i / 50].names[i % 50], sizeof(*all));
    qsort(all, 200, sizeof(*all), cmp_str);
    for (int i = 1; i < 200; i++)
        assert_string_not_equal(all[i - 1], all[i]);
    assert_int_equal(count_sub(f->md, "new"), 200);
    assert_int_equal(count_sub(f->md, "tmp"), 0);
    char path[PH_MAILDIR_NAME_MAX + 128];
    snprintf(path, sizeof(path), "%s/%s", f->md, all[123]);
    size_t n;
    char *got = slurp(path, &n);
    assert_int_equal(n, 16);
    assert_memory_equal(got, "T: 1\nHello\nWorld", 16);
    free(got);
    free(all);
    free(w);
}

/* ---- failures --------------------------------------------------------------------------- */

static void test_path_is_a_file(void **state)
{
    fixture *f = *state;
    char file[128], under[192];
    snprintf(file, sizeof(file), "%s/plain", f->dir);
    fclose(fopen(file, "w"));
    int fd = message_fd(f, "x\r\n", 3);
    char err[256] = "";
    int rc = ph_maildir_deliver(file, NULL, 0, fd, 3, true, NULL, 0, err, sizeof(err));
    assert_int_equal(rc, -ENOTDIR);
    assert_non_null(strstr(err, file));
    assert_false(ph_maildir_error_is_temporary(rc));
    /* a Maildir below a regular file: ENOTDIR while creating the directories */
    snprintf(under, sizeof(under), "%s/sub/Maildir", file);
    err[0] = '\0';
    rc = ph_maildir_deliver(under, NULL, 0, fd, 3, true, NULL, 0, err, sizeof(err));
    assert_int_equal(rc, -ENOTDIR);
    assert_true(err[0] != '\0');
    struct stat st;
    assert_int_equal(stat(file, &st), 0);
    assert_true(S_ISREG(st.st_mode));
    assert_int_equal(st.st_size, 0);
    close(fd);
}

/* Failures after tmp/ was written leave nothing in tmp/ or new/. */
static void test_failures_leave_nothing(void **state)
{
    fixture *f = *state;
    int fd = message_fd(f, "short\r\n", 7);
    char err[256] = "", name[PH_MAILDIR_NAME_MAX] = "junk";
    /* the message file is shorter than its size */
    int rc = ph_maildir_deliver(f->md, "P: 1\n", 5, fd, 70000, true, name, sizeof(name), err,
                                sizeof(err));
    assert_int_equal(rc, -EIO);
    assert_non_null(strstr(err, "shorter"));
    assert_string_equal(name, "");
    assert_int_equal(count_sub(f->md, "tmp"), 0);
    assert_int_equal(count_sub(f->md, "new"), 0);
    /* an fd that cannot be read */
    int wfd = open("/dev/null", O_WRONLY);
    rc = ph_maildir_deliver(f->md, NULL, 0, wfd, 3, false, NULL, 0, err, sizeof(err));
    assert_int_equal(rc, -EBADF);
    close(wfd);
    assert_int_equal(count_sub(f->md, "tmp"), 0);
    assert_int_equal(count_sub(f->md, "new"), 0);
    /* bad arguments */
    assert_int_equal(ph_maildir_deliver(f->md, NULL, 3, fd, 7, false, NULL, 0, err,
                                        sizeof(err)), -EINVAL);
    assert_int_equal(ph_maildir_deliver("", NULL, 0, fd, 7, false, NULL, 0, err, sizeof(err)),
                     -EINVAL);
    assert_int_equal(ph_maildir_deliver(f->md, NULL, 0, -1, 7, false, NULL, 0, NULL, 0),
                     -EINVAL);
    /* a path too long for PATH_MAX */
    char *longp = malloc(5000);
    memset(longp, 'x', 4999);
    longp[0] = '/';
    longp[4999] = '\0';
    rc = ph_maildir_deliver(longp, NULL, 0, fd, 7, false, NULL, 0, err, sizeof(err));
    assert_int_equal(rc, -ENAMETOOLONG);
    assert_false(ph_maildir_error_is_temporary(rc));
    free(longp);
    close(fd);
}

static void test_sync(void **state)
{
    fixture *f = *state;
    assert_int_equal(ph_maildir_sync(f->md), -ENOENT);
    int fd = message_fd(f, "x", 1);
    char err[256];
    for (int i = 0; i < 3; i++)
        assert_int_equal(ph_maildir_deliver(f->md, NULL, 0, fd, 1, false, NULL, 0, err,
                                            sizeof(err)), 0);
    close(fd);
    assert_int_equal(ph_maildir_sync(f->md), 0);
    assert_int_equal(count_sub(f->md, "new"), 3);
    assert_int_equal(ph_maildir_sync(f->dir), -ENOENT); /* no new/ there */
}

static void test_error_classes(void **state)
{
    (void)state;
    static const int temporary[] = {ENOSPC, EDQUOT, EIO,    EAGAIN, EMFILE, ENFILE, EINTR,
                                    ENOMEM, EBUSY,  EROFS,  ESTALE, ENOENT, EEXIST, EMLINK,
                                    ETIMEDOUT};
    static const int permanent[] = {ENOTDIR, EISDIR, EACCES, EPERM,
                                    ENAMETOOLONG, ELOOP, EINVAL, EFBIG, EXDEV};
    for (size_t i = 0; i < sizeof(temporary) / sizeof(*temporary); i++)
        if (!ph_maildir_error_is_temporary(-temporary[i]))
            fail_msg("%s should be temporary", strerror(temporary[i]));
    for (size_t i = 0; i < sizeof(permanent) / sizeof(*permanent); i++)
        if (ph_maildir_error_is_temporary(-permanent[i]))
            fail_msg("%s should be permanent", strerror(permanent[i]));
    assert_false(ph_maildir_error_is_temporary(0));
    assert_false(ph_maildir_error_is_temporary(ENOSPC));
    assert_true(ph_maildir_error_is_temporary(-9999));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_content_conversion, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cr_at_chunk_boundary, setup, teardown),
        cmocka_unit_test_setup_teardown(test_empty_and_large, setup, teardown),
        cmocka_unit_test_setup_teardown(test_creates_directories, setup, teardown),
        cmocka_unit_test_setup_teardown(test_name_format, setup, teardown),
        cmocka_unit_test_setup_teardown(test_host_escaping, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unique_across_threads, setup, teardown),
        cmocka_unit_test_setup_teardown(test_path_is_a_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_failures_leave_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sync, setup, teardown),
        cmocka_unit_test(test_error_classes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
