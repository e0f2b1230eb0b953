/*
 * addrlist.c - addr-specs out of RFC 5322 address lists (see addrlist.h).
 *
 * One pass over the value. Each mailbox collects the text of its words; an angle address, when
 * one comes, replaces whatever was collected (that was the display name). ',' ends a mailbox,
 * ':' outside an angle address starts a group (the words before it were the group's name) and
 * ';' ends one. Comments and white space separate words and are dropped.
 */
#include "proto/addrlist.h"

#include <stdbool.h>
#include <string.h>

typedef struct scan {
    const char *s;
    size_t len, i;
    char addr[PH_ADDRLIST_ADDR_MAX + 1];
    size_t alen;
    bool angle_seen;  /* this mailbox had <...>: later words are not part of the address */
    bool overflow, bad;
    int count;
    ph_addrlist_fn fn;
    void *arg;
} scan;

static void put(scan *sc, const char *p, size_t n)
{
    if (sc->alen + n > PH_ADDRLIST_ADDR_MAX) {
        sc->overflow = true;
        return;
    }
    memcpy(sc->addr + sc->alen, p, n);
    sc->alen += n;
}

static bool has_control(const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)p[i] < 0x20 || p[i] == 0x7f)
            return true;
    return false;
}

/* End of a mailbox: report what was collected (never with control bytes: it goes on to an
 * envelope and into logs). */
static void flush(scan *sc)
{
    if (sc->overflow || (sc->alen && (sc->addr[0] == '@' || sc->addr[sc->alen - 1] == '@')) ||
        has_control(sc->addr, sc->alen))
        sc->bad = true;
    else if (sc->alen) {
        sc->addr[sc->alen] = '\0';
        sc->fn(sc->addr, sc->alen, sc->arg);
        sc->count++;
    }
    sc->alen = 0;
    sc->angle_seen = sc->overflow = false;
}

/* A comment at s[i] == '(' (nested, with quoted pairs): skipped. False if unterminated. */
static bool skip_comment(scan *sc)
{
    int depth = 0;
    for (; sc->i < sc->len; sc->i++) {
        char c = sc->s[sc->i];
        if (c == '\\')
            sc->i++;
        else if (c == '(')
            depth++;
        else if (c == ')' && --depth == 0) {
            sc->i++;
            return true;
        }
    }
    return false;
}

/* A quoted string at s[i] == '"', copied with its quotes when keep. False if unterminated. */
static bool quoted(scan *sc, bool keep)
{
    size_t start = sc->i++;
    for (; sc->i < sc->len; sc->i++) {
        char c = sc->s[sc->i];
        if (c == '\\')
            sc->i++;
        else if (c == '"') {
            sc->i++;
            if (keep)
                put(sc, sc->s + start, sc->i - start);
            return true;
        } else if (c == '\r' || c == '\n') {
            continue; /* folding inside a quoted string */
        }
    }
    return false;
}

static bool is_special(char c)
{
    return (c != '\0' && strchr("()<>[]:;@\\,.\"", c) != NULL) || c == ' ' || c == '\t' || c == '\r' ||
           c == '\n';
}

/* An angle address at s[i] == '<': its addr-spec replaces the collected words. */
static bool angle(scan *sc)
{
    sc->alen = 0;
    sc->overflow = false;
    sc->i++;
    bool route = false;
    size_t route_end = 0;
    while (sc->i < sc->len) {
        char c = sc->s[sc->i];
        if (c == '<' || c == ';' || c == ')' || ((c == ',' || c == ':') && !route))
            return false; /* not an address */
        if (c == '>') {
            sc->i++;
            sc->angle_seen = true;
            if (route) { /* "<@a,@b:user@c>": the route goes (RFC 5322 4.4) */
                memmove(sc->addr, sc->addr + route_end, sc->alen - route_end);
                sc->alen -= route_end;
            }
            return true;
        }
        if (c == '(') {
            if (!skip_comment(sc))
                return false;
        } else if (c == '"') {
            if (!quoted(sc, true))
                return false;
        } else if (c == ' ' || c == '\t' || c == '\r' || c == '\n') {
            sc->i++;
        } else {
            if (c == '@' && sc->alen == 0)
                route = true;
            if (c == ':' && route) {
                route_end = sc->alen; /* after the ':' is written below */
                sc->i++;
                continue;
            }
            if (c == ',' && route) { /* between route domains */
                sc->i++;
                put(sc, ",", 1);
                continue;
            }
            put(sc, &c, 1);
            sc->i++;
        }
    }
    return false;
}

int ph_addrlist_each(const char *value, size_t len, ph_addrlist_fn fn, void *arg)
{
    scan sc = {.s = value, .len = len, .fn = fn, .arg = arg};
    while (sc.i < sc.len) {
        char c = sc.s[sc.i];
        bool ok = true;
        if (c == '(') {
            ok = skip_comment(&sc);
        } else if (c == '"') {
            ok = quoted(&sc, !sc.angle_seen);
        } else if (c == '<') {
            ok = angle(&sc);
        } else if (c == ',' || c == ';') {
            flush(&sc);
            sc.i++;
        } else if (c == ':') { /* a group: its name is not an address */
            sc.alen = 0;
            sc.angle_seen = sc.overflow = false;
            sc.i++;
        } else if (c == ' ' || c == '\t' || c == '\r' || c == '\n') {
            sc.i++;
        } else if (c == '>' || c == ')') { /* stray closer: this mailbox is garbage */
            sc.overflow = true;
            sc.i++;
        } else {
            size_t start = sc.i;
            if (is_special(c)) /* '@', '.', '[', ']', '\\': one byte each */
                sc.i++;
            else
                while (sc.i < sc.len && !is_special(sc.s[sc.i]))
                    sc.i++;
            if (!sc.angle_seen)
                put(&sc, sc.s + start, sc.i - start);
        }
        if (!ok) { /* unterminated: drop this mailbox, stop */
            sc.bad = true;
            sc.alen = 0;
            break;
        }
    }
    flush(&sc);
    return sc.bad ? -1 : sc.count;
}
