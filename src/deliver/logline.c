/*
 * logline.c - formatting a log line for a callback (see logline.h).
 */
#include "deliver/logline.h"

#include <stdarg.h>
#include <stdio.h>

void ph_logline(ph_logline_fn log, void *ctx, int level, const char *fmt, ...)
{
    if (!log)
        return;
    char line[PH_LOGLINE_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    log(ctx, level, line);
}
