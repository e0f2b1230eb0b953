/*
 * logbuf.h - the daemon's log sink: key=value lines to stderr, buffered so a busy server pays
 * one write per batch instead of one per event, flushed by a short timer and at exit.
 */
#ifndef POSTHORN_DAEMON_LOGBUF_H
#define POSTHORN_DAEMON_LOGBUF_H

#include "posthorn/posthorn.h"

struct event_base;

/* Parses "error|warn|info|debug"; returns -1 if unknown. */
int logbuf_parse_level(const char *name);
/* posthorn_log_fn writing into the buffer (user is unused). */
void logbuf_log(posthorn_log_level level, const char *line, void *user);
/* Logs a line directly and flushes at once (startup messages). */
void logbuf_now(posthorn_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Starts the periodic flush on base; 0 or -1. */
int logbuf_start(struct event_base *base);
void logbuf_flush(void);
void logbuf_stop(void);
/* Sends log lines to syslog (facility mail) instead of stderr. */
void logbuf_use_syslog(const char *ident);

#endif
