/*
 * submit.c - locally submitted messages (see submit.h).
 *
 * Two passes: the input is copied with CRLF line ends into a body buffer (stopping at a lone
 * "." when dot_ends), then the header section is walked field by field: To/Cc/Bcc feed the
 * recipient list with -t, Bcc is dropped, and the presence of From/Date/Message-ID noted. The
 * output is Received: + the kept fields + the missing ones + the rest, unchanged.
 */
#include "queue/submit.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto/addr.h"
#include "proto/addrlist.h"
#include "proto/date.h"
#include "proto/strbuf.h"
#include "proto/text.h"

typedef struct prep {
    const ph_submit_opts *o;
    ph_submission *out;
    int error;
    bool oom;            /* an append failed */
    char *err;
    size_t errlen;
} prep;

static void put(prep *p, strbuf *b, const char *s, size_t n)
{
    if (strbuf_append(b, s, n) < 0)
        p->oom = true;
}

/* ---- input -> CRLF -------------------------------------------------------------------------- */

/* in -> CRLF lines in *buf, *len; stops at a lone "." line when dot_ends. */
static int normalize(const char *in, size_t inlen, const ph_submit_opts *o, char **buf,
                     size_t *len)
{
    char *out = malloc(inlen * 2 + 3);
    if (!out)
        return -ENOMEM;
    size_t n = 0;
    for (size_t i = 0; i < inlen;) {
        const char *nl = memchr(in + i, '\n', inlen - i);
        size_t end = nl ? (size_t)(nl - in) : inlen;
        size_t linelen = end - i;
        if (linelen && in[end - 1] == '\r' && nl)
            linelen--;
        if (o->dot_ends && linelen == 1 && in[i] == '.')
            break;
        memcpy(out + n, in + i, linelen);
        n += linelen;
        out[n++] = '\r';
        out[n++] = '\n';
        i = nl ? end + 1 : inlen;
        if (o->max_size && n > o->max_size) {
            free(out);
            return -EFBIG;
        }
    }
    *buf = out;
    *len = n;
    return 0;
}

/* ---- recipients --------------------------------------------------------------------------- */

static void add_rcpt(prep *p, const char *addr, size_t len)
{
    if (p->error)
        return;
    char full[PH_ADDRLIST_ADDR_MAX + 300];
    if (memchr(addr, '@', len))
        snprintf(full, sizeof(full), "%.*s", (int)len, addr);
    else
        snprintf(full, sizeof(full), "%.*s@%s", (int)len, addr, p->o->hostname);
    char path[sizeof(full) + 2];
    snprintf(path, sizeof(path), "<%s>", full);
    smtp_path sp;
    size_t used;
    if (smtp_parse_path(path, strlen(path), 0, &sp, &used) < 0 || used != strlen(path)) {
        snprintf(p->err, p->errlen, "not a valid recipient address: %s", full);
        p->error = -EINVAL;
        return;
    }
    ph_submission *s = p->out;
    for (size_t i = 0; i < s->nrcpts; i++)
        if (strcmp(s->rcpts[i], sp.mailbox) == 0)
            return;
    char **v = realloc(s->rcpts, (s->nrcpts + 1) * sizeof(*v));
    char *copy = v ? strdup(sp.mailbox) : NULL;
    if (v)
        s->rcpts = v;
    if (!copy) {
        p->error = -ENOMEM;
        return;
    }
    s->rcpts[s->nrcpts++] = copy;
}

static void addrlist_cb(const char *addr, size_t len, void *arg)
{
    add_rcpt(arg, addr, len);
}

/* ---- the header section ------------------------------------------------------------------- */

typedef struct fields {
    bool from, date, message_id;
    size_t header_end;   /* offset of the body (after the empty line), or len if none */
} fields;

static bool name_is(const char *f, size_t namelen, const char *want)
{
    return namelen == strlen(want) && text_ascii_ieq(f, want, namelen);
}

/* One field f[0..flen) (with continuation lines, CRLF-ended): note it, take recipients, and
 * copy it to hb unless it is Bcc. */
static void field(prep *p, const char *f, size_t flen, fields *seen, strbuf *hb)
{
    const char *colon = memchr(f, ':', flen);
    size_t namelen = colon ? (size_t)(colon - f) : 0;
    while (namelen && (f[namelen - 1] == ' ' || f[namelen - 1] == '\t'))
        namelen--;
    seen->from |= name_is(f, namelen, "From");
    seen->date |= name_is(f, namelen, "Date");
    seen->message_id |= name_is(f, namelen, "Message-ID");
    bool bcc = name_is(f, namelen, "Bcc");
    if (p->o->extract_rcpts && colon &&
        (bcc || name_is(f, namelen, "To") || name_is(f, namelen, "Cc"))) {
        size_t vlen = flen - (size_t)(colon + 1 - f);
        if (ph_addrlist_each(colon + 1, vlen, addrlist_cb, p) < 0 && !p->error) {
            snprintf(p->err, p->errlen, "cannot read the addresses in %.*s:", (int)namelen, f);
            p->error = -EINVAL;
        }
    }
    if (!bcc)
        put(p, hb, f, flen);
}

/* Walks the header section of body[0..len) (CRLF lines), copying kept fields into hb. */
static void scan_header(prep *p, const char *body, size_t len, fields *seen, strbuf *hb)
{
    size_t i = 0;
    while (i < len) {
        if (len - i >= 2 && body[i] == '\r' && body[i + 1] == '\n') { /* the empty line */
            seen->header_end = i;
            return;
        }
        size_t start = i;
        do { /* a field: its first line, then continuation lines (starting with SP/HTAB) */
            const char *crlf = memchr(body + i, '\n', len - i);
            i = crlf ? (size_t)(crlf - body) + 1 : len;
        } while (i < len && (body[i] == ' ' || body[i] == '\t'));
        const char *colon = memchr(body + start, ':', i - start);
        if (!colon || colon == body + start) { /* not a field: the body starts here */
            seen->header_end = start;
            return;
        }
        field(p, body + start, i - start, seen, hb);
    }
    seen->header_end = len;
}

/* ---- assembling ------------------------------------------------------------------------------ */

static void put_missing(prep *p, const fields *seen, strbuf *out)
{
    const ph_submit_opts *o = p->o;
    char date[PH_DATE_MAX];
    ph_format_date(o->now, date, sizeof(date));
    char line[1200];
    if (!seen->from) {
        const char *who = o->sender[0] ? o->sender : "MAILER-DAEMON";
        if (o->full_name && o->full_name[0] && !strpbrk(o->full_name, "\"\\\r\n"))
            snprintf(line, sizeof(line), "From: \"%s\" <%s>\r\n", o->full_name, who);
        else
            snprintf(line, sizeof(line), "From: <%s>\r\n", who);
        put(p, out, line, strlen(line));
    }
    if (!seen->date) {
        snprintf(line, sizeof(line), "Date: %s\r\n", date);
        put(p, out, line, strlen(line));
    }
    if (!seen->message_id) {
        snprintf(line, sizeof(line), "Message-ID: <%s@%s>\r\n", o->qid, o->hostname);
        put(p, out, line, strlen(line));
    }
}

static int assemble(prep *p, const char *body, size_t len)
{
    const ph_submit_opts *o = p->o;
    strbuf hb, out;
    strbuf_init(&hb, 0);
    strbuf_init(&out, 0);
    fields seen = {0};
    scan_header(p, body, len, &seen, &hb);
    char date[PH_DATE_MAX], line[1200];
    ph_format_date(o->now, date, sizeof(date));
    snprintf(line, sizeof(line), "Received: by %s (Posthorn, from userid %u)\r\n\tid %s; %s\r\n",
             o->hostname, o->uid, o->qid, date);
    put(p, &out, line, strlen(line));
    put(p, &out, hb.data ? hb.data : "", hb.len);
    put_missing(p, &seen, &out);
    bool separated = len - seen.header_end >= 2 && body[seen.header_end] == '\r' &&
                     body[seen.header_end + 1] == '\n';
    if (!separated) /* no body, or text right after the fields: the empty line goes between */
        put(p, &out, "\r\n", 2);
    put(p, &out, body + seen.header_end, len - seen.header_end);
    strbuf_free(&hb);
    if (p->oom || p->error) {
        strbuf_free(&out);
        return p->error ? p->error : -ENOMEM;
    }
    p->out->data = out.data;
    p->out->len = out.len;
    return 0;
}

int ph_submit_prepare(const char *in, size_t inlen, const ph_submit_opts *o, ph_submission *out,
                      char *err, size_t errlen)
{
    *out = (ph_submission){0};
    prep p = {.o = o, .out = out, .err = err, .errlen = errlen};
    char *body = NULL;
    size_t len = 0;
    int r = normalize(in, inlen, o, &body, &len);
    if (r == -EFBIG)
        snprintf(err, errlen, "message larger than %zu bytes", o->max_size);
    for (size_t i = 0; r == 0 && i < o->nrcpts && !p.error; i++)
        add_rcpt(&p, o->rcpts[i], strlen(o->rcpts[i]));
    if (r == 0)
        r = p.error ? p.error : assemble(&p, body, len);
    if (r == 0 && out->nrcpts == 0) {
        snprintf(err, errlen, "no recipients");
        r = -EINVAL;
    }
    for (size_t i = 0; r == 0 && i < out->len && !out->eightbit; i++)
        out->eightbit = (unsigned char)out->data[i] >= 0x80;
    free(body);
    if (r < 0)
        ph_submission_free(out);
    return r;
}

void ph_submission_free(ph_submission *s)
{
    for (size_t i = 0; i < s->nrcpts; i++)
        free(s->rcpts[i]);
    free(s->rcpts);
    free(s->data);
    *s = (ph_submission){0};
}
