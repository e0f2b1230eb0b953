/*
 * server_cli.c - the command-line options every serving subcommand shares: listeners, workers,
 * log level and every limit, each with its default from posthorn_limits_default(). Bad values
 * are reported with the option's name; nothing is silently clamped.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/commands.h"
#include "daemon/logbuf.h"

enum {
    OPT_LISTEN = 1000, OPT_WORKERS, OPT_LOG_LEVEL, OPT_HOSTNAME, OPT_MAX_SIZE, OPT_MAX_RCPTS,
    OPT_MAX_ERRORS, OPT_MAX_LINE, OPT_IDLE, OPT_SESSION, OPT_GREET, OPT_MAX_CONN, OPT_MAX_IP,
    OPT_GRACE,
};

const struct option server_cli_longopts[] = {
    {"listen", required_argument, NULL, OPT_LISTEN},
    {"workers", required_argument, NULL, OPT_WORKERS},
    {"log-level", required_argument, NULL, OPT_LOG_LEVEL},
    {"hostname", required_argument, NULL, OPT_HOSTNAME},
    {"max-size", required_argument, NULL, OPT_MAX_SIZE},
    {"max-recipients", required_argument, NULL, OPT_MAX_RCPTS},
    {"max-errors", required_argument, NULL, OPT_MAX_ERRORS},
    {"max-line", required_argument, NULL, OPT_MAX_LINE},
    {"idle-timeout", required_argument, NULL, OPT_IDLE},
    {"session-timeout", required_argument, NULL, OPT_SESSION},
    {"greeting-delay", required_argument, NULL, OPT_GREET},
    {"max-connections", required_argument, NULL, OPT_MAX_CONN},
    {"max-per-ip", required_argument, NULL, OPT_MAX_IP},
    {"shutdown-grace", required_argument, NULL, OPT_GRACE},
    {0, 0, 0, 0},
};

const char server_cli_help[] =
    "  --listen ADDR:PORT     listen here (repeatable): 127.0.0.1:2525, [::1]:2525, *:25,\n"
    "                         unix:/path/to/socket; port 0 picks a free port\n"
    "  --workers N            worker processes, each with its own event loop (default 1)\n"
    "  --log-level LEVEL      error, warn, info (default) or debug; logs go to stderr\n"
    "  --hostname NAME        name in the banner, EHLO reply and Received: (default: host name)\n"
    "  --max-size BYTES       message size limit (default 33554432 = 32 MiB; 552 5.3.4)\n"
    "  --max-recipients N     recipients per message (default 1000; 452 4.5.3)\n"
    "  --max-errors N         protocol errors per session before 421 4.7.0 (default 20)\n"
    "  --max-line N           command line length incl. CRLF (default 512; 500 5.5.6)\n"
    "  --idle-timeout SEC     close an idle session with 421 4.4.2 (default 300)\n"
    "  --session-timeout SEC  longest session (default 3600)\n"
    "  --greeting-delay MS    wait before the banner; clients talking first get 554 (default 0)\n"
    "  --max-connections N    open sessions per worker (default 10000; 421 4.7.0)\n"
    "  --max-per-ip N         open sessions per client address, 0 = no limit (421 4.7.0;\n"
    "                         default 0 for the sink, a local tool; 100 otherwise)\n"
    "  --shutdown-grace SEC   on SIGTERM, time in-flight messages get to finish (default 30)\n";

void server_cli_init(server_cli *c)
{
    memset(c, 0, sizeof(*c));
    c->workers = 1;
    c->log_level = POSTHORN_LOG_INFO;
    posthorn_limits_default(&c->options.limits);
}

static int parse_u64(const char *name, const char *arg, unsigned long long max,
                     unsigned long long *out)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(arg, &end, 10);
    if (errno || end == arg || *end || arg[0] == '-' || v > max) {
        fprintf(stderr, "posthorn: --%s: expected a number up to %llu, got '%s'\n", name, max,
                arg);
        return -1;
    }
    *out = v;
    return 0;
}

/* Options that set one unsigned limit: option id, name, field, scale (s -> ms). */
typedef struct uint_opt {
    int opt;
    const char *name;
    size_t offset;
    unsigned scale;
} uint_opt;

#define LIMIT(f) offsetof(posthorn_limits, f)
static const uint_opt uint_opts[] = {
    {OPT_MAX_RCPTS, "max-recipients", LIMIT(max_recipients), 1},
    {OPT_MAX_ERRORS, "max-errors", LIMIT(max_errors), 1},
    {OPT_IDLE, "idle-timeout", LIMIT(idle_timeout_ms), 1000},
    {OPT_SESSION, "session-timeout", LIMIT(session_timeout_ms), 1000},
    {OPT_GREET, "greeting-delay", LIMIT(greeting_delay_ms), 1},
    {OPT_MAX_CONN, "max-connections", LIMIT(max_connections), 1},
    {OPT_MAX_IP, "max-per-ip", LIMIT(max_per_ip), 1},
    {OPT_GRACE, "shutdown-grace", LIMIT(shutdown_grace_ms), 1000},
};

static int set_uint_limit(server_cli *c, const uint_opt *u, const char *arg)
{
    unsigned long long v;
    if (parse_u64(u->name, arg, 4000000000ull / u->scale, &v) < 0)
        return -1;
    *(unsigned *)((char *)&c->options.limits + u->offset) = (unsigned)(v * u->scale);
    return 1;
}

int server_cli_option(server_cli *c, int opt, const char *arg)
{
    unsigned long long v;
    for (size_t i = 0; i < sizeof(uint_opts) / sizeof(uint_opts[0]); i++)
        if (uint_opts[i].opt == opt)
            return set_uint_limit(c, &uint_opts[i], arg);
    switch (opt) {
    case OPT_LISTEN:
        if (c->nlisten == MAX_LISTEN) {
            fprintf(stderr, "posthorn: at most %d --listen options\n", MAX_LISTEN);
            return -1;
        }
        c->listen[c->nlisten++] = arg;
        return 1;
    case OPT_WORKERS:
        if (parse_u64("workers", arg, 64, &v) < 0 || v == 0)
            return -1;
        c->workers = (unsigned)v;
        return 1;
    case OPT_LOG_LEVEL: {
        int l = logbuf_parse_level(arg);
        if (l < 0) {
            fprintf(stderr, "posthorn: --log-level: error, warn, info or debug\n");
            return -1;
        }
        c->log_level = (posthorn_log_level)l;
        return 1;
    }
    case OPT_HOSTNAME:
        c->options.hostname = arg;
        return 1;
    case OPT_MAX_SIZE:
        if (parse_u64("max-size", arg, 1ull << 40, &v) < 0)
            return -1;
        c->options.limits.max_message_size = v;
        return 1;
    case OPT_MAX_LINE:
        if (parse_u64("max-line", arg, 65536, &v) < 0 || v < 64)
            return -1;
        c->options.limits.max_line = (size_t)v;
        return 1;
    }
    return 0;
}
