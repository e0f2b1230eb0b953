/*
 * destlimit.c - per-destination session limits (see destlimit.h): a mutex-protected list.
 */
#include "deliver/destlimit.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

typedef struct dest {
    struct dest *next;
    unsigned active;
    char name[];
} dest;

struct ph_destlimit {
    pthread_mutex_t lock;
    unsigned limit;
    dest *list;
};

ph_destlimit *ph_destlimit_new(unsigned limit)
{
    ph_destlimit *dl = calloc(1, sizeof(*dl));
    if (!dl)
        return NULL;
    pthread_mutex_init(&dl->lock, NULL);
    dl->limit = limit ? limit : 1;
    return dl;
}

void ph_destlimit_free(ph_destlimit *dl)
{
    if (!dl)
        return;
    for (dest *d = dl->list, *next; d; d = next) {
        next = d->next;
        free(d);
    }
    pthread_mutex_destroy(&dl->lock);
    free(dl);
}

/* Caller holds the lock. */
static dest *find(ph_destlimit *dl, const char *name, bool create)
{
    for (dest *d = dl->list; d; d = d->next)
        if (strcmp(d->name, name) == 0)
            return d;
    if (!create)
        return NULL;
    size_t n = strlen(name) + 1;
    dest *d = calloc(1, sizeof(*d) + n);
    if (!d)
        return NULL;
    memcpy(d->name, name, n);
    d->next = dl->list;
    dl->list = d;
    return d;
}

bool ph_destlimit_try(ph_destlimit *dl, const char *name)
{
    pthread_mutex_lock(&dl->lock);
    dest *d = find(dl, name, true);
    bool ok = !d || d->active < dl->limit;
    if (d && ok)
        d->active++;
    pthread_mutex_unlock(&dl->lock);
    return ok;
}

void ph_destlimit_release(ph_destlimit *dl, const char *name)
{
    pthread_mutex_lock(&dl->lock);
    dest *d = find(dl, name, false);
    if (d && d->active)
        d->active--;
    pthread_mutex_unlock(&dl->lock);
}

unsigned ph_destlimit_active(ph_destlimit *dl, const char *name)
{
    pthread_mutex_lock(&dl->lock);
    dest *d = find(dl, name, false);
    unsigned n = d ? d->active : 0;
    pthread_mutex_unlock(&dl->lock);
    return n;
}
