/*
 * cmd_sendmail.c - `posthorn sendmail` (also run as `sendmail`, e.g. through a symlink) and
 * `posthorn send`: a message on standard input goes into the local durable queue, from where
 * the running daemon's queue manager delivers it (local mailboxes now, other domains with the
 * relay). Sendmail-compatible options: -t, -i/-oi, -f ADDR, -F NAME, -C FILE, -bm (default),
 * -bp (list the queue), other -o* and -v accepted and ignored.
 *
 * The message is committed (fsync'd) before the command exits 0. Writing the queue needs root
 * or the daemon's user (there is no setgid drop program); the files are given to the daemon's
 * user and group. Exit codes follow sysexits: 64 usage, 67 unknown local user, 73 cannot
 * create, 75 temporary failure, 78 configuration error.
 */
#include <errno.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "daemon/commands.h"
#include "daemon/config.h"
#include "daemon/rcpt_policy.h"
#include "daemon/runner.h"
#include "proto/qid.h"
#include "queue/envelope.h"
#include "queue/spool.h"
#include "queue/submit.h"

#define DEFAULT_CONFIG "/etc/posthorn/posthorn.conf"
#define EX_USAGE 64
#define EX_NOUSER 67
#define EX_CANTCREAT 73
#define EX_TEMPFAIL 75
#define EX_CONFIG 78

static const char sendmail_help[] =
    "usage: posthorn sendmail [-t] [-i] [-f ADDR] [-F NAME] [-C FILE] [RECIPIENT...]\n"
    "       posthorn send [-f ADDR] [-C FILE] RECIPIENT...\n"
    "\n"
    "Reads a message from standard input and puts it into the durable queue of the server\n"
    "configured in FILE (default " DEFAULT_CONFIG "), fsync'd before the command exits.\n"
    "  -t        recipients also from the To:, Cc: and Bcc: headers (Bcc: is removed)\n"
    "  -i, -oi   a line with a single '.' does not end the message (always so for `send`)\n"
    "  -f ADDR   envelope sender (default: your login name @ the host name; -f '' or <> for\n"
    "            the null sender)\n"
    "  -F NAME   full name for a From: header that has to be added\n"
    "  -bp       list the queue (as `posthorn queue list`)\n"
    "Runs as root or as the daemon's user. Installable as `sendmail` (a symlink named\n"
    "sendmail to posthorn).\n";

typedef struct send_args {
    bool extract, dot_ends, list_queue;
    const char *sender, *full_name, *config;
    char **rcpts;
    size_t nrcpts;
} send_args;

/* Sendmail's options: getopt cannot take -oi / -bp / -f'' forms, so by hand. */
static int parse_args(int argc, char **argv, bool is_send, send_args *a)
{
    *a = (send_args){.dot_ends = !is_send};
    int i = 1;
    for (; i < argc && argv[i][0] == '-' && argv[i][1]; i++) {
        const char *o = argv[i];
        if (strcmp(o, "--") == 0) {
            i++;
            break;
        }
        if (strcmp(o, "--help") == 0 || strcmp(o, "-h") == 0)
            return fputs(sendmail_help, stdout), 1;
        if (strcmp(o, "-t") == 0)
            a->extract = true;
        else if (strcmp(o, "-i") == 0 || strcmp(o, "-oi") == 0)
            a->dot_ends = false;
        else if (strcmp(o, "-bp") == 0)
            a->list_queue = true;
        else if (strcmp(o, "-bm") == 0 || strcmp(o, "-v") == 0 || strncmp(o, "-o", 2) == 0)
            continue; /* the default mode, verbosity, other sendmail options: nothing to do */
        else if (o[1] == 'f' || o[1] == 'F' || o[1] == 'C' || o[1] == 'r') {
            const char *v = o[2] ? o + 2 : (i + 1 < argc ? argv[++i] : NULL);
            if (!v)
                return fprintf(stderr, "posthorn sendmail: %s needs a value\n", o), -1;
            if (o[1] == 'F')
                a->full_name = v;
            else if (o[1] == 'C')
                a->config = v;
            else
                a->sender = v;
        } else {
            return fprintf(stderr, "posthorn sendmail: unknown option %s\n", o), -1;
        }
    }
    a->rcpts = argv + i;
    a->nrcpts = (size_t)(argc - i);
    return 0;
}

static char *read_stdin(size_t max, size_t *len)
{
    size_t cap = 65536, n = 0;
    char *buf = malloc(cap);
    while (buf) {
        if (n == cap) {
            char *b = cap < max * 2 + 65536 ? realloc(buf, cap * 2) : NULL;
            if (!b) {
                free(buf);
                return NULL;
            }
            buf = b;
            cap *= 2;
        }
        size_t got = fread(buf + n, 1, cap - n, stdin);
        n += got;
        if (got == 0)
            break;
    }
    *len = n;
    return buf;
}

static void make_qid(char *qid)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    ph_qid_format(qid, (uint64_t)tv.tv_sec * 1000000u + (uint64_t)tv.tv_usec, (unsigned)getpid(), 0);
}

/* The envelope of a local submission, serialized. */
static int build_envelope(const ph_submission *s, const char *qid, const char *sender,
                          const rcpt_policy *policy, char **out, size_t *len)
{
    ph_envelope *e = ph_envelope_new();
    if (!e)
        return -ENOMEM;
    int r = ph_envelope_set_string(&e->id, qid);
    r |= ph_envelope_set_string(&e->client, "local");
    r |= ph_envelope_set_string(&e->protocol, "local");
    r |= ph_envelope_set_string(&e->from, sender);
    if (s->eightbit)
        r |= ph_envelope_add_param(e, "BODY=8BITMIME");
    e->received = (int64_t)time(NULL);
    e->size = s->len;
    char **list = NULL;
    size_t n = 0, cap = 0;
    for (size_t i = 0; i < s->nrcpts && r == 0; i++)
        r = rcpt_policy_expand(policy, s->rcpts[i], &list, &n, &cap);
    for (size_t i = 0; i < n; i++) {
        if (r == 0)
            r = ph_envelope_add_rcpt(e, list[i]);
        free(list[i]);
    }
    free(list);
    if (r == 0)
        r = ph_envelope_serialize(e, out, len);
    ph_envelope_free(e);
    return r < 0 ? r : 0;
}

/* Every recipient must exist if its domain is local: refused now, not bounced later. */
static int check_recipients(const rcpt_policy *policy, const ph_submission *s)
{
    for (size_t i = 0; i < s->nrcpts; i++) {
        ph_expansion x = {.kind = PH_EXPAND_NOT_LOCAL};
        if (policy->table && ph_rcpt_table_expand(policy->table, s->rcpts[i], &x) < 0)
            return EX_TEMPFAIL;
        ph_expand_kind k = x.kind;
        ph_expansion_clear(&x);
        if (k != PH_EXPAND_LOCAL && k != PH_EXPAND_NOT_LOCAL) {
            fprintf(stderr, "posthorn sendmail: %s: %s\n", s->rcpts[i],
                    k == PH_EXPAND_UNKNOWN ? "no such user here" : ph_expand_kind_name(k));
            return k == PH_EXPAND_UNKNOWN ? EX_NOUSER : EX_TEMPFAIL;
        }
    }
    return 0;
}

static int store(const ph_config *cfg, const ph_submission *s, const char *qid,
                 const char *sender, const rcpt_policy *policy)
{
    char *env = NULL, err[512];
    size_t envlen = 0;
    int r = build_envelope(s, qid, sender, policy, &env, &envlen);
    ph_spool *sp = NULL;
    if (r == 0 && (r = ph_spool_open(cfg->g.queue_dir, NULL, NULL, NULL, false, &sp, err,
                                     sizeof(err))) < 0)
        fprintf(stderr, "posthorn sendmail: %s\n", err);
    uid_t uid;
    gid_t gid;
    if (r == 0 && runner_ids_for(cfg->g.user, cfg->g.group, &uid, &gid) == 0)
        ph_spool_set_owner(sp, uid, gid);
    if (r == 0 && (r = ph_spool_store(sp, qid, s->data, s->len, env, envlen)) < 0)
        fprintf(stderr, "posthorn sendmail: cannot queue the message in %s: %s%s\n",
                cfg->g.queue_dir, strerror(-r),
                r == -EACCES ? " (run as root or as the daemon's user)" : "");
    ph_spool_close(sp);
    free(env);
    return r == 0 ? 0 : r == -EACCES ? EX_CANTCREAT : EX_TEMPFAIL;
}

/* The default sender: login name @ host name. */
static void default_sender(const char *hostname, char *buf, size_t size, const char **login)
{
    struct passwd *pw = getpwuid(getuid());
    *login = pw ? pw->pw_name : "unknown";
    snprintf(buf, size, "%s@%s", *login, hostname);
}

static int submit(const send_args *a, const ph_config *cfg, bool is_send)
{
    char hostname[256], sender[600], qid[PH_QID_LEN + 1], err[512];
    if (cfg->g.hostname[0])
        snprintf(hostname, sizeof(hostname), "%s", cfg->g.hostname);
    else if (gethostname(hostname, sizeof(hostname) - 1) < 0)
        snprintf(hostname, sizeof(hostname), "localhost");
    const char *login;
    default_sender(hostname, sender, sizeof(sender), &login);
    if (a->sender)
        snprintf(sender, sizeof(sender), "%s", strcmp(a->sender, "<>") == 0 ? "" : a->sender);
    make_qid(qid);
    size_t inlen = 0;
    char *in = read_stdin(cfg->s.max_message_size, &inlen);
    if (!in)
        return fputs("posthorn sendmail: out of memory\n", stderr), EX_TEMPFAIL;
    ph_submit_opts o = {.extract_rcpts = a->extract, .dot_ends = a->dot_ends, .sender = sender,
                        .full_name = a->full_name, .hostname = hostname, .qid = qid,
                        .login = login, .uid = (unsigned)getuid(), .now = (int64_t)time(NULL),
                        .rcpts = (const char *const *)a->rcpts, .nrcpts = a->nrcpts,
                        .max_size = cfg->s.max_message_size};
    ph_submission s;
    int r = ph_submit_prepare(in, inlen, &o, &s, err, sizeof(err));
    free(in);
    if (r < 0)
        return fprintf(stderr, "posthorn sendmail: %s\n", err), r == -ENOMEM ? EX_TEMPFAIL
                                                                              : EX_USAGE;
    rcpt_policy policy;
    int status = rcpt_policy_load(&policy, cfg, err, sizeof(err), NULL, NULL) < 0 ? EX_CONFIG : 0;
    if (status)
        fprintf(stderr, "posthorn sendmail: %s\n", err);
    if (!status)
        status = check_recipients(&policy, &s);
    if (!status)
        status = store(cfg, &s, qid, sender, &policy);
    if (!status && is_send)
        printf("queued as %s\n", qid);
    rcpt_policy_free(&policy); /* emptied by a failed load: freeing it again is fine */
    ph_submission_free(&s);
    return status;
}

static int run(int argc, char **argv, bool is_send)
{
    send_args a;
    int r = parse_args(argc, argv, is_send, &a);
    if (r != 0)
        return r > 0 ? 0 : EX_USAGE;
    const char *config = a.config ? a.config : DEFAULT_CONFIG;
    if (a.list_queue) {
        char *qargv[] = {"queue", "--config", (char *)config, "list", NULL};
        return cmd_queue(4, qargv);
    }
    if (a.nrcpts == 0 && !a.extract)
        return fputs("posthorn sendmail: no recipients (give some, or -t)\n", stderr), EX_USAGE;
    ph_config *cfg = NULL;
    ph_config_errors errs = {0};
    if (ph_config_load(config, &cfg, &errs) < 0) {
        for (size_t i = 0; i < errs.n; i++)
            fprintf(stderr, "%s\n", errs.v[i].text);
        ph_config_errors_free(&errs);
        return EX_CONFIG;
    }
    ph_config_errors_free(&errs);
    int status = cfg->g.delivery == PH_DELIVERY_QUEUE
                     ? submit(&a, cfg, is_send)
                     : (fprintf(stderr, "posthorn sendmail: %s has no durable queue (delivery "
                                        "= queue)\n", config), EX_CONFIG);
    ph_config_free(cfg);
    return status;
}

int cmd_sendmail(int argc, char **argv)
{
    return run(argc, argv, false);
}

int cmd_send(int argc, char **argv)
{
    return run(argc, argv, true);
}
