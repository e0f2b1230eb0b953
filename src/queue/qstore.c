/*
 * qstore.c - committed messages in queue/ (see qstore.h). Owns the directory descriptors.
 */
#include "queue/qstore.h"
#include "queue/fsutil.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define ENVELOPE_FILE_MAX (PH_ENVELOPE_RCPTS_MAX * 2048ull) /* far above any valid envelope */

struct ph_qstore {
    int queue_fd;
    int corrupt_fd;
};


int ph_qstore_open(const char *dir, ph_qstore **out, char *err, size_t errlen)
{
    ph_qstore *qs = malloc(sizeof(*qs));
    if (!qs)
        return -ENOMEM;
    qs->queue_fd = ph_open_subdir(dir, "queue", err, errlen);
    qs->corrupt_fd = qs->queue_fd < 0 ? -1 : ph_open_subdir(dir, "corrupt", err, errlen);
    if (qs->queue_fd < 0 || qs->corrupt_fd < 0) {
        int r = qs->queue_fd < 0 ? qs->queue_fd : qs->corrupt_fd;
        ph_qstore_close(qs);
        return r;
    }
    *out = qs;
    return 0;
}

void ph_qstore_close(ph_qstore *qs)
{
    if (!qs)
        return;
    if (qs->queue_fd >= 0)
        close(qs->queue_fd);
    if (qs->corrupt_fd >= 0)
        close(qs->corrupt_fd);
    free(qs);
}

bool ph_qstore_valid_id(const char *qid)
{
    size_t n = strlen(qid);
    if (n == 0 || n > PH_ENVELOPE_ID_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = qid[i];
        if (!((c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
              c == '_' || c == '-'))
            return false;
    }
    return true;
}

/* queue/<qid>.<ext> into buf; false when qid is not an id (then no file may be touched). */
static bool file_name(char *buf, size_t size, const char *qid, const char *ext)
{
    if (!ph_qstore_valid_id(qid))
        return false;
    snprintf(buf, size, "%s.%s", qid, ext);
    return true;
}

static bool has_suffix(const char *name, size_t n, const char *ext)
{
    size_t e = strlen(ext);
    return n > e && strcmp(name + n - e, ext) == 0;
}

long ph_qstore_scan(ph_qstore *qs, bool clean_tmp, void (*fn)(const char *qid, void *arg),
                    void *arg)
{
    int fd = dup(qs->queue_fd);
    DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
    if (!d) {
        int e = errno;
        if (fd >= 0)
            close(fd);
        return -e;
    }
    rewinddir(d); /* the copy shares the offset with earlier scans */
    long n = 0;
    struct dirent *de;
    char qid[PH_ENVELOPE_ID_MAX + 1];
    while ((de = readdir(d)) != NULL) {
        size_t len = strlen(de->d_name);
        if (clean_tmp && has_suffix(de->d_name, len, ".tmp")) {
            unlinkat(qs->queue_fd, de->d_name, 0);
            continue;
        }
        if (!has_suffix(de->d_name, len, ".env") || len - 4 > PH_ENVELOPE_ID_MAX)
            continue;
        memcpy(qid, de->d_name, len - 4);
        qid[len - 4] = '\0';
        if (!ph_qstore_valid_id(qid))
            continue;
        n++;
        fn(qid, arg);
    }
    closedir(d);
    return n;
}

static int read_file(int dirfd, const char *name, char **out, size_t *len)
{
    int fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    struct stat st;
    int r = fstat(fd, &st) < 0 ? -errno : 0;
    if (r == 0 && (uint64_t)st.st_size > ENVELOPE_FILE_MAX)
        r = -EFBIG;
    char *buf = r == 0 ? malloc((size_t)st.st_size + 1) : NULL;
    size_t got = 0;
    while (buf && r == 0 && got < (size_t)st.st_size) {
        ssize_t n = read(fd, buf + got, (size_t)st.st_size - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break; /* shorter than fstat said: parse what is there (it will not validate) */
        got += (size_t)n;
    }
    close(fd);
    if (r == 0 && !buf)
        r = -ENOMEM;
    if (r < 0) {
        free(buf);
        return r;
    }
    *out = buf;
    *len = got;
    return 0;
}

/* Moves the message's files out of the queue for people to look at. */
static void move_to_corrupt(ph_qstore *qs, const char *qid)
{
    static const char *const exts[] = {"msg", "hold", "env"};
    char name[PH_ENVELOPE_ID_MAX + 8];
    for (size_t i = 0; i < sizeof(exts) / sizeof(exts[0]); i++)
        if (file_name(name, sizeof(name), qid, exts[i]))
            renameat(qs->queue_fd, name, qs->corrupt_fd, name);
}

int ph_qstore_load(ph_qstore *qs, const char *qid, ph_envelope **out, char *err, size_t errlen)
{
    char name[PH_ENVELOPE_ID_MAX + 8];
    if (!file_name(name, sizeof(name), qid, "env"))
        return -ENOENT;
    char *buf = NULL;
    size_t len = 0;
    int r = read_file(qs->queue_fd, name, &buf, &len);
    if (r < 0)
        return r;
    r = ph_envelope_parse(buf, len, out, err, errlen);
    free(buf);
    if (r == -EINVAL || (r == 0 && strcmp((*out)->id, qid) != 0)) {
        if (r == 0) {
            snprintf(err, errlen, "envelope id %s does not match its file name", (*out)->id);
            ph_envelope_free(*out);
            *out = NULL;
        }
        move_to_corrupt(qs, qid);
        return -EBADMSG;
    }
    return r;
}


int ph_qstore_save(ph_qstore *qs, const ph_envelope *e)
{
    char tmp[PH_ENVELOPE_ID_MAX + 8], env[PH_ENVELOPE_ID_MAX + 8];
    if (!file_name(tmp, sizeof(tmp), e->id, "tmp") || !file_name(env, sizeof(env), e->id, "env"))
        return -EINVAL;
    char *text;
    size_t len;
    int r = ph_envelope_serialize(e, &text, &len);
    if (r < 0)
        return r;
    int fd = openat(qs->queue_fd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
    if (fd < 0) {
        r = -errno;
        free(text);
        return r;
    }
    r = ph_write_all(fd, text, len);
    free(text);
    if (r == 0 && fdatasync(fd) < 0)
        r = -errno;
    if (close(fd) < 0 && r == 0)
        r = -errno;
    if (r == 0 && renameat(qs->queue_fd, tmp, qs->queue_fd, env) < 0)
        r = -errno;
    if (r < 0)
        unlinkat(qs->queue_fd, tmp, 0);
    return r;
}

int ph_qstore_remove(ph_qstore *qs, const char *qid)
{
    static const char *const exts[] = {"env", "msg", "hold"};
    char name[PH_ENVELOPE_ID_MAX + 8];
    int r = 0;
    for (size_t i = 0; i < sizeof(exts) / sizeof(exts[0]); i++) {
        if (!file_name(name, sizeof(name), qid, exts[i]))
            return -EINVAL;
        /* already gone is fine: a message may be removed twice (delete during delivery) */
        if (unlinkat(qs->queue_fd, name, 0) < 0 && errno != ENOENT && r == 0)
            r = -errno;
    }
    return r;
}

int ph_qstore_open_data(ph_qstore *qs, const char *qid)
{
    char name[PH_ENVELOPE_ID_MAX + 8];
    if (!file_name(name, sizeof(name), qid, "msg"))
        return -ENOENT;
    int fd = openat(qs->queue_fd, name, O_RDONLY | O_CLOEXEC);
    return fd < 0 ? -errno : fd;
}

long long ph_qstore_data_size(ph_qstore *qs, const char *qid)
{
    char name[PH_ENVELOPE_ID_MAX + 8];
    struct stat st;
    if (!file_name(name, sizeof(name), qid, "msg"))
        return -ENOENT;
    if (fstatat(qs->queue_fd, name, &st, 0) < 0)
        return -errno;
    return (long long)st.st_size;
}

int ph_qstore_hold(ph_qstore *qs, const char *qid)
{
    char name[PH_ENVELOPE_ID_MAX + 8], env[PH_ENVELOPE_ID_MAX + 8];
    if (!file_name(name, sizeof(name), qid, "hold") || !file_name(env, sizeof(env), qid, "env"))
        return -ENOENT;
    if (faccessat(qs->queue_fd, env, F_OK, 0) != 0)
        return -ENOENT;
    int fd = openat(qs->queue_fd, name, O_WRONLY | O_CREAT | O_CLOEXEC, 0640);
    if (fd < 0)
        return -errno;
    int r = fsync(fd) < 0 ? -errno : 0;
    close(fd);
    return r;
}

int ph_qstore_release(ph_qstore *qs, const char *qid)
{
    char name[PH_ENVELOPE_ID_MAX + 8];
    if (!file_name(name, sizeof(name), qid, "hold"))
        return -ENOENT;
    return unlinkat(qs->queue_fd, name, 0) < 0 ? -errno : 0;
}

bool ph_qstore_is_held(ph_qstore *qs, const char *qid)
{
    char name[PH_ENVELOPE_ID_MAX + 8];
    return file_name(name, sizeof(name), qid, "hold") &&
           faccessat(qs->queue_fd, name, F_OK, 0) == 0;
}
