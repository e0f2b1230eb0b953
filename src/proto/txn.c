/*
 * txn.c - one mail transaction (see txn.h). Owns its strings; smtp_txn_free releases all.
 * Fails only on memory shortage, reported as NULL / -1.
 */
#include "proto/txn.h"
#include "proto/text.h"

#include <stdlib.h>
#include <string.h>

smtp_txn *smtp_txn_new(const char *mail_from, size_t len)
{
    smtp_txn *t = calloc(1, sizeof(*t));
    if (!t)
        return NULL;
    t->mail_from = text_dup(mail_from, len);
    if (!t->mail_from) {
        free(t);
        return NULL;
    }
    return t;
}

void smtp_txn_free(smtp_txn *t)
{
    if (!t)
        return;
    for (size_t i = 0; i < t->rcpt_count; i++)
        free(t->rcpts[i]);
    free(t->rcpts);
    free(t->mail_from);
    free(t);
}

int smtp_txn_add_rcpt(smtp_txn *t, const char *rcpt, size_t len)
{
    if (t->rcpt_count == t->rcpt_cap) {
        size_t cap = t->rcpt_cap ? t->rcpt_cap * 2 : 4;
        char **r = realloc(t->rcpts, cap * sizeof(*r));
        if (!r)
            return -1;
        t->rcpts = r;
        t->rcpt_cap = cap;
    }
    char *c = text_dup(rcpt, len);
    if (!c)
        return -1;
    t->rcpts[t->rcpt_count++] = c;
    return 0;
}
