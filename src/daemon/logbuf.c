/*
 * logbuf.c - buffered key=value logging to stderr (see logbuf.h). One process-wide buffer:
 * the daemon is one process per worker, so this global is the daemon's, never the library's.
 * A write error drops log lines, never mail.
 */
#include "daemon/logbuf.h"

#include <event2/event.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <syslog.h>
#include <unistd.h>

#define LOGBUF_SIZE 65536
#define LOGBUF_FLUSH_AT 49152

static char buf[LOGBUF_SIZE];
static size_t used;
static struct event *flush_timer;
static bool to_syslog;
static const char *const names[] = {"error", "warn", "info", "debug"};

int logbuf_parse_level(const char *name)
{
    for (int i = 0; i < 4; i++)
        if (strcmp(name, names[i]) == 0)
            return i;
    return -1;
}

/* syslog takes one record per line: split the buffer at its newlines. */
static void flush_syslog(void)
{
    static const int prio[] = {LOG_ERR, LOG_WARNING, LOG_INFO, LOG_DEBUG};
    size_t start = 0;
    for (size_t i = 0; i < used; i++) {
        if (buf[i] != '\n')
            continue;
        buf[i] = '\0';
        const char *line = buf + start;
        int level = 2;
        for (int k = 0; k < 4; k++)
            if (strncmp(line + 6, names[k], strlen(names[k])) == 0)
                level = k;
        syslog(prio[level], "%s", line);
        start = i + 1;
    }
    used = 0;
}

void logbuf_use_syslog(const char *ident)
{
    openlog(ident, LOG_PID | LOG_NDELAY, LOG_MAIL);
    to_syslog = true;
}

void logbuf_flush(void)
{
    if (to_syslog)
        return flush_syslog();
    size_t off = 0;
    while (off < used) {
        ssize_t n = write(STDERR_FILENO, buf + off, used - off);
        if (n <= 0)
            break;
        off += (size_t)n;
    }
    used = 0;
}

static void append_line(posthorn_log_level level, const char *line)
{
    char head[32];
    int h = snprintf(head, sizeof(head), "level=%s ", names[level]);
    size_t len = strlen(line);
    if (used + (size_t)h + len + 1 > sizeof(buf))
        logbuf_flush();
    if ((size_t)h + len + 1 > sizeof(buf))
        len = sizeof(buf) - (size_t)h - 1;
    memcpy(buf + used, head, (size_t)h);
    memcpy(buf + used + h, line, len);
    used += (size_t)h + len;
    buf[used++] = '\n';
}

void logbuf_log(posthorn_log_level level, const char *line, void *user)
{
    (void)user;
    append_line(level, line);
    if (used >= LOGBUF_FLUSH_AT || level <= POSTHORN_LOG_WARN || !flush_timer)
        logbuf_flush();
}

void logbuf_now(posthorn_log_level level, const char *fmt, ...)
{
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    append_line(level, line);
    logbuf_flush();
}

static void flush_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (void)arg;
    if (used)
        logbuf_flush();
}

int logbuf_start(struct event_base *base)
{
    flush_timer = event_new(base, -1, EV_PERSIST, flush_cb, NULL);
    if (!flush_timer)
        return -1;
    struct timeval tv = {0, 100000};
    return event_add(flush_timer, &tv);
}

void logbuf_stop(void)
{
    logbuf_flush();
    if (flush_timer)
        event_free(flush_timer);
    flush_timer = NULL;
}
