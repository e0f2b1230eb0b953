/*
 * qlist.c - queue listings (see qlist.h).
 */
#include "queue/qlist.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define HEADERS_MAX (64 * 1024) /* bytes of a message's header section that show prints */

typedef struct idlist {
    char **v;
    size_t n, cap;
    int error;
} idlist;

static void collect(const char *qid, void *arg)
{
    idlist *l = arg;
    if (l->error)
        return;
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 64;
        char **v = realloc(l->v, cap * sizeof(*v));
        if (!v) {
            l->error = -ENOMEM;
            return;
        }
        l->v = v;
        l->cap = cap;
    }
    if (!(l->v[l->n] = strdup(qid)))
        l->error = -ENOMEM;
    else
        l->n++;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* s with control bytes, quotes and backslashes escaped. */
static void put_escaped(FILE *out, const char *s)
{
    for (; s && *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c < 0x20 || c == 0x7f || c == '"' || c == '\\')
            fprintf(out, "\\x%02x", c);
        else
            fputc(c, out);
    }
}

static void put_duration(FILE *out, int64_t s)
{
    if (s < 0)
        s = 0;
    if (s < 120)
        fprintf(out, "%llds", (long long)s);
    else if (s < 7200)
        fprintf(out, "%lldm", (long long)(s / 60));
    else if (s < 172800)
        fprintf(out, "%lldh", (long long)(s / 3600));
    else
        fprintf(out, "%lldd", (long long)(s / 86400));
}

static void put_rcpt(FILE *out, const ph_rcpt *r, int64_t now)
{
    fputs("    <", out);
    put_escaped(out, r->addr);
    fprintf(out, ">  %s", ph_rcpt_state_name(r->state));
    if (r->attempts)
        fprintf(out, " attempts=%u", r->attempts);
    if (r->state == PH_RCPT_DEFERRED) {
        fputs(" next=in ", out);
        put_duration(out, r->next_try - now);
    }
    if (r->last_error) {
        fputs(" error=\"", out);
        put_escaped(out, r->last_error);
        fputc('"', out);
    }
    fputc('\n', out);
}

static void put_summary(FILE *out, const ph_envelope *e, bool held, int64_t now)
{
    fprintf(out, "%s  %llu  ", e->id, (unsigned long long)e->size);
    put_duration(out, now - e->received);
    fputs("  <", out);
    put_escaped(out, e->from);
    fprintf(out, ">%s\n", held ? "  HELD" : "");
}

int ph_qlist_list(ph_qstore *qs, FILE *out, int64_t now)
{
    idlist l = {0};
    long r = ph_qstore_scan(qs, false, collect, &l);
    if (r >= 0 && l.error)
        r = l.error;
    if (r >= 0 && l.n > 1)
        qsort(l.v, l.n, sizeof(*l.v), cmp_str);
    unsigned long long bytes = 0, shown = 0;
    for (size_t i = 0; r >= 0 && i < l.n; i++) {
        ph_envelope *e = NULL;
        char err[256];
        if (ph_qstore_load(qs, l.v[i], &e, err, sizeof(err)) < 0)
            continue; /* delivered meanwhile, or corrupt (moved away) */
        put_summary(out, e, ph_qstore_is_held(qs, e->id), now);
        for (size_t k = 0; k < e->nrcpts; k++)
            put_rcpt(out, &e->rcpts[k], now);
        bytes += e->size;
        shown++;
        ph_envelope_free(e);
    }
    if (r >= 0 && shown)
        fprintf(out, "-- %llu message%s, %llu bytes\n", shown, shown == 1 ? "" : "s", bytes);
    else if (r >= 0)
        fputs("-- queue is empty\n", out);
    for (size_t i = 0; i < l.n; i++)
        free(l.v[i]);
    free(l.v);
    return r < 0 ? (int)r : 0;
}

/* The message's header section (to the first empty line), at most HEADERS_MAX bytes. */
static void put_headers(ph_qstore *qs, const char *qid, FILE *out)
{
    int fd = ph_qstore_open_data(qs, qid);
    if (fd < 0)
        return;
    char *buf = malloc(HEADERS_MAX + 1);
    ssize_t n = buf ? pread(fd, buf, HEADERS_MAX, 0) : -1;
    close(fd);
    if (n <= 0) {
        free(buf);
        return;
    }
    buf[n] = '\0';
    char *end = strstr(buf, "\r\n\r\n");
    size_t len = end ? (size_t)(end - buf) + 2 : (size_t)n;
    fputs("\n", out);
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)buf[i];
        if (c == '\r' && i + 1 < len && buf[i + 1] == '\n')
            continue;
        if ((c < 0x20 && c != '\n' && c != '\t') || c == 0x7f)
            fprintf(out, "\\x%02x", c);
        else
            fputc(c, out);
    }
    free(buf);
}

int ph_qlist_show(ph_qstore *qs, const char *qid, FILE *out, int64_t now)
{
    ph_envelope *e = NULL;
    char err[256];
    int r = ph_qstore_load(qs, qid, &e, err, sizeof(err));
    if (r < 0)
        return r;
    put_summary(out, e, ph_qstore_is_held(qs, qid), now);
    fprintf(out, "received: %lld\nclient: ", (long long)e->received);
    put_escaped(out, e->client);
    fputs("\nhelo: ", out);
    put_escaped(out, e->helo ? e->helo : "");
    fprintf(out, "\nprotocol: %s\n", e->protocol);
    if (e->auth) {
        fputs("auth: ", out);
        put_escaped(out, e->auth);
        fputc('\n', out);
    }
    if (e->tls_version)
        fprintf(out, "tls: %s %s\n", e->tls_version, e->tls_cipher);
    for (size_t i = 0; i < e->nparams; i++)
        fprintf(out, "param: %s\n", e->params[i]);
    for (size_t k = 0; k < e->nrcpts; k++)
        put_rcpt(out, &e->rcpts[k], now);
    put_headers(qs, qid, out);
    ph_envelope_free(e);
    return 0;
}
