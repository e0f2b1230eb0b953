/*
 * logline.h - one formatted key=value log line handed to a (ctx, level, line) callback, the
 * shape every delivery layer's log hook has (qmgr.h, relay.h). Lines longer than
 * PH_LOGLINE_MAX bytes are cut.
 */
#ifndef POSTHORN_DELIVER_LOGLINE_H
#define POSTHORN_DELIVER_LOGLINE_H

#define PH_LOGLINE_MAX 1024

typedef void (*ph_logline_fn)(void *ctx, int level, const char *line);

/* Formats and calls log(ctx, level, line); nothing when log is NULL. */
void ph_logline(ph_logline_fn log, void *ctx, int level, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

#endif
