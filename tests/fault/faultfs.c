/*
 * faultfs.c - an LD_PRELOAD shim that makes chosen file-system calls fail with a chosen errno,
 * armed and disarmed at run time, so integration tests can drive the durable queue into ENOSPC
 * and EIO at every step of its commit (write, fsync, close, rename) without a full disk.
 *
 * Use:   LD_PRELOAD=BUILD/fault/libfaultfs.so PH_FAULT_FILE=rules PH_FAULT_LOG=log posthorn ...
 * (under an ASan build with a shared sanitizer runtime also ASAN_OPTIONS=verify_asan_link_order=0)
 *
 * Rules file (PH_FAULT_FILE), one rule per line; blank lines and `#` comments are ignored:
 *
 *     OP ERRNO [path=GLOB] [pid=N] [count=N] [skip=N] [delay=MS]
 *
 *   OP     write | pwrite (pwrite, pwrite64) | writev | anywrite (all three) | fsync |
 *          fdatasync | sync (fsync and fdatasync) | close | open (open, open64, openat,
 *          openat64) | rename (rename, renameat, renameat2) | unlink (unlink, unlinkat).
 *          The aliases let a test say "the data file's sync fails" without depending on which
 *          call the code under test uses today.
 *   ERRNO  a name (ENOSPC, EIO, EDQUOT, EROFS, ...) or a positive number; `none` fires
 *          without failing: the call runs and the firing is logged (to learn which process
 *          makes a call, or to count calls)
 *   path=  glob (`*` any run of bytes, `/` included; `?` one byte) matched against the whole
 *          path: of the descriptor (readlink of /proc/self/fd/N) for write/fsync/close, of the
 *          file being opened, of the SOURCE of a rename, of the name being unlinked. Relative
 *          names are joined to their directory descriptor (or the working directory). Without
 *          path= a rule matches every call of its OP, sockets and stderr included.
 *   pid=N  only in process N (a daemon's processes inherit the shim and the rules: the
 *          SMTP worker and a queue manager may touch the same files)
 *   skip=N let the first N matching calls pass (default 0)
 *   count=N fire N times, then pass (default: without limit)
 *   delay=MS a firing first sleeps MS milliseconds (a failing disk is slow; it also holds open
 *          the window in which other processes can see what the call's caller did just before)
 *
 * A call is checked against the rules in file order; every matching rule counts it, and the first
 * matching rule that is past its skip and has firings left fires: the call is NOT performed and
 * returns -1 with errno set - except close, which releases the descriptor first (as Linux does
 * when close reports a deferred write error) and then fails. Counters live in each process.
 *
 * Arming at run time: the file is stat'ed on each intercepted call and re-read when it changed
 * (identity, size or times) or when it changed less than two seconds ago (file times are
 * coarse, so a quick rewrite may keep them). New content replaces all rules and resets every
 * counter; identical content keeps them (add a `# generation N` comment to re-arm the same
 * rules). Write it atomically (temporary file + rename); a missing file means no rules.
 *
 * Log (PH_FAULT_LOG, appended, one line per event, O_APPEND writes of a whole line):
 *     fired op=fsync errno=EIO path=/spool/queue pid=123 rule=1
 *     bad-rule line=3 reason="unknown errno"
 *
 * Limits: only calls that go through the dynamic symbol table are seen. glibc's stdio (fwrite,
 * fflush, fclose) and other libc internals call the kernel directly and cannot be failed here
 * (the spool uses plain write/fdatasync/close/renameat); neither are the fortified
 * __open_2/__openat_2 (used only for opens without a mode). At most MAX_RULES rules, a file of
 * at most RULES_MAX bytes and paths of PATH_MAX bytes.
 *
 * Threads: all state is behind one mutex (also held across fork by pthread_atfork, so a child
 * never inherits it locked); the shim's own I/O uses raw system calls, and a thread-local flag,
 * set before the lock is taken, makes any call it could still make into itself pass through -
 * as does a signal handler's write (libevent's) interrupting the shim on the same thread. No
 * allocation after the first dlsym of each real function.
 */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#define MAX_RULES 64
#define RULES_MAX 16384 /* bytes of the rules file that are read */
#define GLOB_MAX 512
#define RECENT_NS 2000000000LL /* a file younger than this is always re-read */

enum op {
    OP_WRITE = 1 << 0,
    OP_PWRITE = 1 << 1,
    OP_WRITEV = 1 << 2,
    OP_FSYNC = 1 << 3,
    OP_FDATASYNC = 1 << 4,
    OP_CLOSE = 1 << 5,
    OP_OPEN = 1 << 6,
    OP_RENAME = 1 << 7,
    OP_UNLINK = 1 << 8,
};

static const struct { const char *name; unsigned ops; } op_names[] = {
    {"write", OP_WRITE},   {"pwrite", OP_PWRITE},       {"writev", OP_WRITEV},
    {"fsync", OP_FSYNC},   {"fdatasync", OP_FDATASYNC}, {"sync", OP_FSYNC | OP_FDATASYNC},
    {"close", OP_CLOSE},   {"open", OP_OPEN},           {"rename", OP_RENAME},
    {"unlink", OP_UNLINK}, {"anywrite", OP_WRITE | OP_PWRITE | OP_WRITEV},
};

#define E(x) {#x, x}
static const struct { const char *name; int value; } errno_names[] = {
    E(ENOSPC), E(EIO),    E(EDQUOT), E(EROFS),  E(EPERM),  E(EACCES),       E(EINTR),
    E(EAGAIN), E(ENOMEM), E(EBADF),  E(EFBIG),  E(EXDEV),  E(ENOENT),       E(EEXIST),
    E(EMFILE), E(ENFILE), E(EINVAL), E(ESTALE), E(EBUSY),  E(ENAMETOOLONG), E(ETIMEDOUT),
};
#undef E

typedef struct rule {
    unsigned ops;
    int err;          /* 0: `none`, log only */
    long pid;         /* 0: any process */
    bool has_glob;
    char glob[GLOB_MAX];
    long skip, count; /* count < 0: no limit */
    long delay_ms;
    long seen, fired;
} rule;

/* The rules file as last read and what it said; all guarded by lock. */
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct stat rules_stat;
static bool rules_present;
static char rules_text[RULES_MAX];
static size_t rules_len;
static rule rules[MAX_RULES];
static int nrules;

/* initial-exec: a preloaded library has static TLS, and access then never allocates */
static _Thread_local int in_shim __attribute__((tls_model("initial-exec")));

/* ---- the real functions ------------------------------------------------------------------ */

/* dlsym once per name; a race only repeats an idempotent lookup. */
#define REAL(name)                                                                        \
    ({                                                                                    \
        static __typeof__(&name) real_;                                                   \
        __typeof__(&name) f_ = __atomic_load_n(&real_, __ATOMIC_ACQUIRE);                 \
        if (!f_) {                                                                        \
            f_ = (__typeof__(&name))dlsym(RTLD_NEXT, #name);                              \
            __atomic_store_n(&real_, f_, __ATOMIC_RELEASE);                               \
        }                                                                                 \
        f_;                                                                               \
    })

/* ---- small helpers ----------------------------------------------------------------------- */

/* Glob with `*` (any run, `/` included) and `?`; iterative, backtracking to the last star. */
static bool glob_match(const char *pat, const char *s)
{
    const char *star = NULL, *resume = NULL;
    while (*s) {
        if (*pat == '*') {
            star = pat++;
            resume = s;
        } else if (*pat == '?' || *pat == *s) {
            pat++;
            s++;
        } else if (star) {
            pat = star + 1;
            s = ++resume;
        } else {
            return false;
        }
    }
    while (*pat == '*')
        pat++;
    return *pat == '\0';
}

static const char *errno_name(int err)
{
    if (err == 0)
        return "none";
    for (size_t i = 0; i < sizeof(errno_names) / sizeof(errno_names[0]); i++)
        if (errno_names[i].value == err)
            return errno_names[i].name;
    return "?";
}

static const char *op_name(unsigned op)
{
    for (size_t i = 0; i < sizeof(op_names) / sizeof(op_names[0]); i++)
        if (op_names[i].ops == op)
            return op_names[i].name;
    return "?";
}

/* Appends one whole line to PH_FAULT_LOG with raw system calls (never through the shim). */
static void log_line(const char *line)
{
    const char *path = getenv("PH_FAULT_LOG");
    if (!path || !*path)
        return;
    int fd = (int)syscall(SYS_openat, AT_FDCWD, path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC,
                          0644);
    if (fd < 0)
        return;
    size_t n = strlen(line);
    while (n) {
        long w = syscall(SYS_write, fd, line, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            break;
        line += w;
        n -= (size_t)w;
    }
    syscall(SYS_close, fd);
}

static void log_bad_rule(int lineno, const char *reason)
{
    char line[256];
    snprintf(line, sizeof(line), "bad-rule line=%d reason=\"%s\"\n", lineno, reason);
    log_line(line);
}

/* ---- parsing the rules file -------------------------------------------------------------- */

static bool parse_long(const char *s, long *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < 0)
        return false;
    *out = v;
    return true;
}

static bool parse_errno(const char *s, int *out)
{
    if (strcmp(s, "none") == 0)
        return (*out = 0), true;
    for (size_t i = 0; i < sizeof(errno_names) / sizeof(errno_names[0]); i++)
        if (strcmp(errno_names[i].name, s) == 0)
            return (*out = errno_names[i].value), true;
    long v;
    if (!parse_long(s, &v) || v == 0 || v > 4095)
        return false;
    *out = (int)v;
    return true;
}

static bool parse_op(const char *s, unsigned *out)
{
    for (size_t i = 0; i < sizeof(op_names) / sizeof(op_names[0]); i++)
        if (strcmp(op_names[i].name, s) == 0)
            return (*out = op_names[i].ops), true;
    return false;
}

/* One key=value option of a rule; the reason on failure. */
static const char *parse_option(rule *r, const char *tok)
{
    if (strncmp(tok, "path=", 5) == 0) {
        if (strlen(tok + 5) >= sizeof(r->glob))
            return "path glob too long";
        strcpy(r->glob, tok + 5);
        r->has_glob = true;
        return NULL;
    }
    if (strncmp(tok, "pid=", 4) == 0)
        return parse_long(tok + 4, &r->pid) && r->pid > 0 ? NULL : "bad pid";
    if (strncmp(tok, "count=", 6) == 0)
        return parse_long(tok + 6, &r->count) ? NULL : "bad count";
    if (strncmp(tok, "skip=", 5) == 0)
        return parse_long(tok + 5, &r->skip) ? NULL : "bad skip";
    if (strncmp(tok, "delay=", 6) == 0)
        return parse_long(tok + 6, &r->delay_ms) && r->delay_ms <= 600000 ? NULL : "bad delay";
    return "unknown option";
}

/* Parses one line (modified in place) into r. NULL when it is a rule, "" when it is blank or
 * a comment, else the reason it is bad. */
static const char *parse_rule(char *line, rule *r)
{
    char *hash = strchr(line, '#');
    if (hash)
        *hash = '\0';
    char *save = NULL;
    char *op = strtok_r(line, " \t\r", &save);
    if (!op)
        return "";
    memset(r, 0, sizeof(*r));
    r->count = -1;
    char *err = strtok_r(NULL, " \t\r", &save);
    if (!parse_op(op, &r->ops))
        return "unknown op";
    if (!err || !parse_errno(err, &r->err))
        return "unknown errno";
    for (char *tok; (tok = strtok_r(NULL, " \t\r", &save)) != NULL;) {
        const char *why = parse_option(r, tok);
        if (why)
            return why;
    }
    return NULL;
}

/* Replaces every rule by those in rules_text (lines are parsed from a copy). */
static void parse_rules(void)
{
    static char copy[RULES_MAX + 1];
    memcpy(copy, rules_text, rules_len);
    copy[rules_len] = '\0';
    nrules = 0;
    int lineno = 0;
    char *save = NULL;
    /* strtok_r would skip empty lines and so miscount: walk the LFs by hand */
    for (char *line = copy; line; line = save) {
        save = strchr(line, '\n');
        if (save)
            *save++ = '\0';
        lineno++;
        rule r;
        const char *why = parse_rule(line, &r);
        if (why && *why)
            log_bad_rule(lineno, why);
        else if (!why && nrules < MAX_RULES)
            rules[nrules++] = r;
        else if (!why)
            log_bad_rule(lineno, "too many rules");
    }
}

/* ---- keeping the rules current ----------------------------------------------------------- */

static bool same_file(const struct stat *a, const struct stat *b)
{
    return a->st_dev == b->st_dev && a->st_ino == b->st_ino && a->st_size == b->st_size &&
           a->st_mtim.tv_sec == b->st_mtim.tv_sec && a->st_mtim.tv_nsec == b->st_mtim.tv_nsec &&
           a->st_ctim.tv_sec == b->st_ctim.tv_sec && a->st_ctim.tv_nsec == b->st_ctim.tv_nsec;
}

/* Changed in the last RECENT_NS: its times may not show a rewrite within the same tick. */
static bool recently_changed(const struct stat *st)
{
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    long long age = (long long)(now.tv_sec - st->st_ctim.tv_sec) * 1000000000LL +
                    (now.tv_nsec - st->st_ctim.tv_nsec);
    return age < RECENT_NS;
}

/* Reads the file; a new content replaces the rules (and their counters). Caller holds lock. */
static void read_rules(const char *path)
{
    static char buf[RULES_MAX];
    size_t len = 0;
    int fd = (int)syscall(SYS_openat, AT_FDCWD, path, O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
        long n;
        while (len < sizeof(buf) &&
               ((n = syscall(SYS_read, fd, buf + len, sizeof(buf) - len)) > 0 ||
                (n < 0 && errno == EINTR)))
            len += n > 0 ? (size_t)n : 0;
        syscall(SYS_close, fd);
    }
    if (len == rules_len && memcmp(buf, rules_text, len) == 0)
        return;
    memcpy(rules_text, buf, len);
    rules_len = len;
    parse_rules();
}

/* Brings the rules up to date with PH_FAULT_FILE. Caller holds lock. */
static void refresh_rules(void)
{
    const char *path = getenv("PH_FAULT_FILE");
    struct stat st;
    if (!path || !*path || stat(path, &st) < 0) {
        if (rules_present || nrules) {
            rules_present = false;
            rules_len = 0;
            nrules = 0;
        }
        return;
    }
    if (rules_present && same_file(&st, &rules_stat) && !recently_changed(&st))
        return;
    rules_present = true;
    rules_stat = st;
    read_rules(path);
}

/* ---- the decision ------------------------------------------------------------------------ */

/* The path of fd, or "" if it has none we can read. */
static void fd_path(int fd, char *out, size_t outlen)
{
    char link[64];
    snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
    ssize_t n = readlink(link, out, outlen - 1);
    out[n > 0 ? n : 0] = '\0';
}

/* dir (a descriptor or AT_FDCWD) joined with name, as the kernel would resolve it. Caller
 * holds lock. */
static void at_path(int dirfd, const char *name, char *out, size_t outlen)
{
    if (!name)
        name = "";
    if (name[0] == '/') {
        snprintf(out, outlen, "%s", name);
        return;
    }
    static char dir[PATH_MAX]; /* caller holds lock */
    if (dirfd == AT_FDCWD) {
        if (!getcwd(dir, sizeof(dir)))
            dir[0] = '\0';
    } else {
        fd_path(dirfd, dir, sizeof(dir));
    }
    snprintf(out, outlen, "%s/%s", dir, name);
}

typedef struct target {
    int fd;           /* >= 0: the path is that of this descriptor */
    int dirfd;        /* otherwise dirfd + name */
    const char *name;
} target;

static bool any_rule_for(unsigned op)
{
    for (int i = 0; i < nrules; i++)
        if (rules[i].ops & op)
            return true;
    return false;
}

/* The rule that fires for this call (counting it in every matching rule), or -1. */
static int pick_rule(unsigned op, const char *path)
{
    int chosen = -1;
    long pid = (long)getpid();
    for (int i = 0; i < nrules; i++) {
        rule *r = &rules[i];
        if (!(r->ops & op) || (r->pid && r->pid != pid) ||
            (r->has_glob && !glob_match(r->glob, path)))
            continue;
        r->seen++;
        if (chosen < 0 && r->seen > r->skip && (r->count < 0 || r->fired < r->count)) {
            r->fired++;
            chosen = i;
        }
    }
    return chosen;
}

/* 0 to let the call run, or the errno it must fail with (firings are logged). errno is
 * kept: a call that goes on must not see the shim's stat/readlink errors. */
static int fault_for(unsigned op, target t)
{
    if (in_shim || !getenv("PH_FAULT_FILE"))
        return 0;
    in_shim = 1;
    int saved_errno = errno;
    int err = 0;
    long delay_ms = 0;
    pthread_mutex_lock(&lock);
    refresh_rules();
    if (any_rule_for(op)) {
        static char path[PATH_MAX + 64]; /* under lock: no large frame on small thread stacks */
        if (t.fd >= 0)
            fd_path(t.fd, path, sizeof(path));
        else
            at_path(t.dirfd, t.name, path, sizeof(path));
        int i = pick_rule(op, path);
        if (i >= 0) {
            err = rules[i].err;
            delay_ms = rules[i].delay_ms;
            static char line[PATH_MAX + 160];
            snprintf(line, sizeof(line), "fired op=%s errno=%s path=%s pid=%ld rule=%d\n",
                     op_name(op), errno_name(err), path, (long)getpid(), i + 1);
            log_line(line);
        }
    }
    pthread_mutex_unlock(&lock);
    /* outside the lock: other threads' calls go on meanwhile */
    struct timespec left = {delay_ms / 1000, (delay_ms % 1000) * 1000000L};
    while (delay_ms && nanosleep(&left, &left) < 0 && errno == EINTR)
        ;
    errno = saved_errno;
    in_shim = 0;
    return err;
}

static target on_fd(int fd)
{
    return (target){fd, AT_FDCWD, NULL};
}

static target on_name(int dirfd, const char *name)
{
    return (target){-1, dirfd, name};
}

#define FAIL_IF(op, t, failed)                                                            \
    do {                                                                                  \
        int e_ = fault_for(op, t);                                                        \
        if (e_) {                                                                         \
            errno = e_;                                                                   \
            return failed;                                                                \
        }                                                                                 \
    } while (0)

/* ---- fork safety ------------------------------------------------------------------------- */

static void before_fork(void)
{
    pthread_mutex_lock(&lock);
}

static void after_fork(void)
{
    pthread_mutex_unlock(&lock);
}

__attribute__((constructor)) static void faultfs_init(void)
{
    pthread_atfork(before_fork, after_fork, after_fork);
}

/* ---- the interposed functions ------------------------------------------------------------ */

ssize_t write(int fd, const void *buf, size_t n)
{
    FAIL_IF(OP_WRITE, on_fd(fd), -1);
    return REAL(write)(fd, buf, n);
}

ssize_t pwrite(int fd, const void *buf, size_t n, off_t off)
{
    FAIL_IF(OP_PWRITE, on_fd(fd), -1);
    return REAL(pwrite)(fd, buf, n, off);
}

ssize_t pwrite64(int fd, const void *buf, size_t n, off64_t off)
{
    FAIL_IF(OP_PWRITE, on_fd(fd), -1);
    return REAL(pwrite64)(fd, buf, n, off);
}

ssize_t writev(int fd, const struct iovec *iov, int iovcnt)
{
    FAIL_IF(OP_WRITEV, on_fd(fd), -1);
    return REAL(writev)(fd, iov, iovcnt);
}

int fsync(int fd)
{
    FAIL_IF(OP_FSYNC, on_fd(fd), -1);
    return REAL(fsync)(fd);
}

int fdatasync(int fd)
{
    FAIL_IF(OP_FDATASYNC, on_fd(fd), -1);
    return REAL(fdatasync)(fd);
}

/* The descriptor is released either way: a caller must never close it twice. */
int close(int fd)
{
    int e = fault_for(OP_CLOSE, on_fd(fd));
    int r = REAL(close)(fd);
    if (e && r == 0) {
        errno = e;
        return -1;
    }
    return r;
}

/* open's mode argument exists only with O_CREAT or O_TMPFILE. */
#define MODE_ARG(flags, last)                                                             \
    mode_t mode = 0;                                                                      \
    if ((flags) & (O_CREAT | __O_TMPFILE)) {                                              \
        va_list ap;                                                                       \
        va_start(ap, last);                                                               \
        mode = (mode_t)va_arg(ap, unsigned);                                              \
        va_end(ap);                                                                       \
    }

int open(const char *path, int flags, ...)
{
    MODE_ARG(flags, flags);
    FAIL_IF(OP_OPEN, on_name(AT_FDCWD, path), -1);
    return REAL(open)(path, flags, mode);
}

int open64(const char *path, int flags, ...)
{
    MODE_ARG(flags, flags);
    FAIL_IF(OP_OPEN, on_name(AT_FDCWD, path), -1);
    return REAL(open64)(path, flags, mode);
}

int openat(int dirfd, const char *path, int flags, ...)
{
    MODE_ARG(flags, flags);
    FAIL_IF(OP_OPEN, on_name(dirfd, path), -1);
    return REAL(openat)(dirfd, path, flags, mode);
}

int openat64(int dirfd, const char *path, int flags, ...)
{
    MODE_ARG(flags, flags);
    FAIL_IF(OP_OPEN, on_name(dirfd, path), -1);
    return REAL(openat64)(dirfd, path, flags, mode);
}

int rename(const char *from, const char *to)
{
    FAIL_IF(OP_RENAME, on_name(AT_FDCWD, from), -1);
    return REAL(rename)(from, to);
}

int renameat(int fromdir, const char *from, int todir, const char *to)
{
    FAIL_IF(OP_RENAME, on_name(fromdir, from), -1);
    return REAL(renameat)(fromdir, from, todir, to);
}

int renameat2(int fromdir, const char *from, int todir, const char *to, unsigned flags)
{
    FAIL_IF(OP_RENAME, on_name(fromdir, from), -1);
    return REAL(renameat2)(fromdir, from, todir, to, flags);
}

int unlink(const char *path)
{
    FAIL_IF(OP_UNLINK, on_name(AT_FDCWD, path), -1);
    return REAL(unlink)(path);
}

int unlinkat(int dirfd, const char *path, int flags)
{
    FAIL_IF(OP_UNLINK, on_name(dirfd, path), -1);
    return REAL(unlinkat)(dirfd, path, flags);
}
