/*
 * test_spool.c - the durable spool on real files: a committed message is in queue/ (data and
 * envelope, byte-exact) when its done callback says 0; aborted and failed ones leave nothing;
 * start-up purges incoming/ and orphaned data files; messages finishing in the same loop turn
 * share one group commit (one directory fsync). The offload runs the work inline, like a
 * worker thread that is always free.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "queue/spool.h"

typedef struct fixture {
    char dir[64];
    struct event_base *base;
    ph_spool *sp;
    int done_calls, last_result;
} fixture;

/* Runs work now and done on the next loop turn, as a worker thread would. */
typedef struct deferred {
    void (*done)(void *);
    void *arg;
} deferred;

static void run_done(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    deferred *d = arg;
    d->done(d->arg);
    free(d);
}

static int inline_offload(void *ctx, void (*work)(void *), void (*done)(void *), void *arg)
{
    work(arg);
    deferred *d = malloc(sizeof(*d));
    d->done = done;
    d->arg = arg;
    return event_base_once(ctx, -1, EV_TIMEOUT, run_done, d, NULL);
}

static void on_done(void *arg, int result)
{
    fixture *f = arg;
    f->done_calls++;
    f->last_result = result;
}

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof(*f));
    snprintf(f->dir, sizeof(f->dir), "/tmp/posthorn-spool-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    f->base = event_base_new();
    char err[256];
    assert_int_equal(ph_spool_open(f->dir, f->base, inline_offload, f->base, true, &f->sp, err,
                                   sizeof(err)), 0);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    ph_spool_close(f->sp);
    event_base_free(f->base);
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
    assert_int_equal(system(cmd), 0);
    free(f);
    return 0;
}

static char *read_file(const char *dir, const char *sub, const char *name, size_t *len)
{
    char path[256];
    snprintf(path, sizeof(path), "%s/%s/%s", dir, sub, name);
    FILE *fp = fopen(path, "rb");
    if (!fp)
        return NULL;
    static char buf[1 << 20];
    *len = fread(buf, 1, sizeof(buf), fp);
    fclose(fp);
    return buf;
}

static bool exists(const char *dir, const char *sub, const char *name)
{
    char path[256];
    snprintf(path, sizeof(path), "%s/%s/%s", dir, sub, name);
    return access(path, F_OK) == 0;
}

static void test_commit_is_durable_and_exact(void **state)
{
    fixture *f = *state;
    ph_spool_msg *m = ph_spool_begin(f->sp, "QID1");
    assert_non_null(m);
    char big[40000];
    memset(big, 'x', sizeof(big)); /* larger than the write buffer */
    assert_int_equal(ph_spool_append(m, "Subject: a\r\n\r\n", 14), 0);
    assert_int_equal(ph_spool_append(m, big, sizeof(big)), 0);
    assert_int_equal(ph_spool_append(m, "end\r\n", 5), 0);
    assert_int_equal(ph_spool_commit(m, "ENV\n", 4, on_done, f), 0);
    assert_int_equal(f->done_calls, 0); /* nothing is acknowledged before the batch ran */
    assert_true(exists(f->dir, "incoming", "QID1.env"));
    event_base_loop(f->base, 0);
    assert_int_equal(f->done_calls, 1);
    assert_int_equal(f->last_result, 0);
    size_t len;
    char *data = read_file(f->dir, "queue", "QID1.msg", &len);
    assert_non_null(data);
    assert_int_equal(len, 14 + sizeof(big) + 5);
    assert_memory_equal(data + 14 + sizeof(big), "end\r\n", 5);
    assert_non_null(read_file(f->dir, "queue", "QID1.env", &len));
    assert_int_equal(len, 4);
    assert_false(exists(f->dir, "incoming", "QID1.msg"));
    assert_int_equal(ph_spool_count(f->sp), 1);
}

static void test_abort_leaves_nothing(void **state)
{
    fixture *f = *state;
    ph_spool_msg *m = ph_spool_begin(f->sp, "QID2");
    assert_int_equal(ph_spool_append(m, "partial", 7), 0);
    ph_spool_abort(m);
    assert_false(exists(f->dir, "incoming", "QID2.msg"));
    assert_int_equal(ph_spool_count(f->sp), 0);
}

static void test_same_turn_is_one_group_commit(void **state)
{
    fixture *f = *state;
    for (int i = 0; i < 10; i++) {
        char qid[16];
        snprintf(qid, sizeof(qid), "G%02d", i);
        ph_spool_msg *m = ph_spool_begin(f->sp, qid);
        assert_int_equal(ph_spool_append(m, "body\r\n", 6), 0);
        assert_int_equal(ph_spool_commit(m, "ENV\n", 4, on_done, f), 0);
    }
    event_base_loop(f->base, 0);
    ph_spool_stats st = ph_spool_get_stats(f->sp);
    assert_int_equal(f->done_calls, 10);
    assert_int_equal(st.committed, 10);
    assert_int_equal(st.batches, 1);
    assert_int_equal(st.fsyncs, 10 * 2 + 1); /* two files each, one directory sync for all */
    assert_int_equal(ph_spool_count(f->sp), 10);
}

static void test_duplicate_id_refused(void **state)
{
    fixture *f = *state;
    ph_spool_msg *m = ph_spool_begin(f->sp, "DUP");
    assert_non_null(m);
    errno = 0;
    assert_null(ph_spool_begin(f->sp, "DUP"));
    assert_int_equal(errno, EEXIST);
    ph_spool_abort(m);
}

static void test_open_recovers(void **state)
{
    fixture *f = *state;
    ph_spool_msg *m = ph_spool_begin(f->sp, "KEEP");
    ph_spool_append(m, "x", 1);
    ph_spool_commit(m, "ENV\n", 4, on_done, f);
    event_base_loop(f->base, 0);
    ph_spool_msg *unacked = ph_spool_begin(f->sp, "UNACKED"); /* a crash mid-DATA */
    ph_spool_append(unacked, "y", 1);
    char path[256];
    snprintf(path, sizeof(path), "%s/queue/ORPHAN.msg", f->dir); /* crash between renames */
    int fd = open(path, O_CREAT | O_WRONLY, 0640);
    assert_true(fd >= 0);
    close(fd);
    ph_spool_abort(unacked); /* frees; then put the file back as the crash would leave it */
    snprintf(path, sizeof(path), "%s/incoming/UNACKED.msg", f->dir);
    fd = open(path, O_CREAT | O_WRONLY, 0640);
    close(fd);
    ph_spool_close(f->sp);
    char err[256];
    assert_int_equal(ph_spool_open(f->dir, f->base, inline_offload, f->base, true, &f->sp, err,
                                   sizeof(err)), 0);
    assert_false(exists(f->dir, "incoming", "UNACKED.msg"));
    assert_false(exists(f->dir, "queue", "ORPHAN.msg"));
    assert_true(exists(f->dir, "queue", "KEEP.msg"));
    assert_int_equal(ph_spool_count(f->sp), 1);
}

static void touch(const char *dir, const char *sub, const char *name)
{
    char path[256];
    snprintf(path, sizeof(path), "%s/%s/%s", dir, sub, name);
    int fd = open(path, O_CREAT | O_WRONLY, 0640);
    assert_true(fd >= 0);
    close(fd);
}

/* A crash after the directory fsync but before <qid>.new became <qid>.env: the message was
 * durable (and maybe acknowledged), so recovery publishes it; a .new without data goes. */
static void test_recovery_publishes_durable_new(void **state)
{
    fixture *f = *state;
    touch(f->dir, "queue", "SYNCED.msg");
    touch(f->dir, "queue", "SYNCED.new");
    touch(f->dir, "queue", "NODATA.new");
    ph_spool_close(f->sp);
    char err[256];
    assert_int_equal(ph_spool_open(f->dir, f->base, inline_offload, f->base, true, &f->sp, err,
                                   sizeof(err)), 0);
    assert_true(exists(f->dir, "queue", "SYNCED.env"));
    assert_true(exists(f->dir, "queue", "SYNCED.msg"));
    assert_false(exists(f->dir, "queue", "SYNCED.new"));
    assert_false(exists(f->dir, "queue", "NODATA.new"));
    assert_int_equal(ph_spool_count(f->sp), 1);
}

/* ph_spool_store (bounces): the whole message at once, published as .env, no .new left. */
static void test_store_at_once(void **state)
{
    fixture *f = *state;
    assert_int_equal(ph_spool_store(f->sp, "BOUNCE", "data", 4, "ENV\n", 4), 0);
    size_t len = 0;
    char *d = read_file(f->dir, "queue", "BOUNCE.msg", &len);
    assert_non_null(d);
    assert_memory_equal(d, "data", 4);
    assert_true(exists(f->dir, "queue", "BOUNCE.env"));
    assert_false(exists(f->dir, "queue", "BOUNCE.new"));
    assert_int_equal(ph_spool_store(f->sp, "BOUNCE", "data", 4, "ENV\n", 4), -EEXIST);
    assert_true(exists(f->dir, "queue", "BOUNCE.env")); /* the first copy is untouched */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_commit_is_durable_and_exact, setup, teardown),
        cmocka_unit_test_setup_teardown(test_abort_leaves_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_same_turn_is_one_group_commit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_duplicate_id_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_open_recovers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_recovery_publishes_durable_new, setup, teardown),
        cmocka_unit_test_setup_teardown(test_store_at_once, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
