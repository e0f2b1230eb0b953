/*
 * bounce_build.c - test tool: builds one bounce with ph_bounce_build (src/deliver/bounce.c) from
 * command-line arguments and writes it to stdout, so integration tests can parse it with a real
 * MIME parser (Python's email package).
 *
 * Usage: bounce_build --mta HOST --sender ADDR [--queue-id ID] [--arrival T] [--now T]
 *                     [--seed S] [--msg FILE]
 *                     --rcpt ADDR [--status CODE] [--diag TEXT] [--diag-type TYPE]
 *                                 [--remote-mta HOST] [--last-attempt T] [--rcpt ...]
 * Recipient options apply to the --rcpt before them (status defaults to 5.0.0). --msg gives the
 * original message (its size from fstat); without it the bounce has no headers part.
 * Exit: 0 with the bounce on stdout; 1 if ph_bounce_build failed ("error: <errno name>" on
 * stderr, e.g. "error: EINVAL"); 2 for bad usage.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "deliver/bounce.h"

#define MAX_RCPTS 1000

static ph_bounce_rcpt rcpts[MAX_RCPTS];

static void usage(const char *why)
{
    fprintf(stderr, "bounce_build: %s\n"
            "usage: bounce_build --mta HOST --sender ADDR [--queue-id ID] [--arrival T] "
            "[--now T] [--seed S] [--msg FILE] --rcpt ADDR [--status CODE] [--diag TEXT] "
            "[--diag-type TYPE] [--remote-mta HOST] [--last-attempt T] ...\n", why);
    exit(2);
}

static int64_t number(const char *s)
{
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || end == s || *end)
        usage("bad number");
    return (int64_t)v;
}

/* Sets a recipient option on the last --rcpt; returns 0 if opt is not one. */
static int rcpt_option(const char *opt, const char *val, size_t n)
{
    if (n == 0)
        usage("recipient option before --rcpt");
    ph_bounce_rcpt *r = &rcpts[n - 1];
    if (strcmp(opt, "--status") == 0)
        r->status = val;
    else if (strcmp(opt, "--diag") == 0)
        r->diagnostic = val;
    else if (strcmp(opt, "--diag-type") == 0)
        r->diagnostic_type = val;
    else if (strcmp(opt, "--remote-mta") == 0)
        r->remote_mta = val;
    else if (strcmp(opt, "--last-attempt") == 0)
        r->last_attempt = number(val);
    else
        return 0;
    return 1;
}

static void parse_args(int argc, char **argv, ph_bounce_info *in, const char **msg_path)
{
    for (int i = 1; i < argc; i += 2) {
        const char *opt = argv[i];
        if (i + 1 >= argc)
            usage("option without a value");
        const char *val = argv[i + 1];
        if (strcmp(opt, "--mta") == 0)
            in->reporting_mta = val;
        else if (strcmp(opt, "--sender") == 0)
            in->sender = val;
        else if (strcmp(opt, "--queue-id") == 0)
            in->queue_id = val;
        else if (strcmp(opt, "--arrival") == 0)
            in->arrival = number(val);
        else if (strcmp(opt, "--now") == 0)
            in->now = number(val);
        else if (strcmp(opt, "--seed") == 0)
            in->boundary_seed = val;
        else if (strcmp(opt, "--msg") == 0)
            *msg_path = val;
        else if (strcmp(opt, "--rcpt") == 0) {
            if (in->nrcpts == MAX_RCPTS)
                usage("too many recipients");
            rcpts[in->nrcpts++] = (ph_bounce_rcpt){.addr = val, .status = "5.0.0"};
        } else if (!rcpt_option(opt, val, in->nrcpts))
            usage("unknown option");
    }
}

int main(int argc, char **argv)
{
    ph_bounce_info in = {.msg_fd = -1, .rcpts = rcpts};
    const char *msg_path = NULL;
    parse_args(argc, argv, &in, &msg_path);
    if (msg_path) {
        in.msg_fd = open(msg_path, O_RDONLY | O_CLOEXEC);
        struct stat st;
        if (in.msg_fd < 0 || fstat(in.msg_fd, &st) < 0) {
            perror(msg_path);
            return 2;
        }
        in.msg_size = (uint64_t)st.st_size;
    }
    char *out = NULL;
    size_t len = 0;
    int rc = ph_bounce_build(&in, &out, &len);
    if (in.msg_fd >= 0)
        close(in.msg_fd);
    if (rc < 0) {
        fprintf(stderr, "error: %s\n", rc == -EINVAL ? "EINVAL" : rc == -ENOMEM ? "ENOMEM"
                                                                                : strerror(-rc));
        return 1;
    }
    int ok = fwrite(out, 1, len, stdout) == len && fflush(stdout) == 0;
    free(out);
    return ok ? 0 : 1;
}
