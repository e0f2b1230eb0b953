/*
 * qid.c - queue id text (see qid.h).
 */
#include "proto/qid.h"

#include <stddef.h>

/* Alphabet for queue ids: digits and upper-case letters without look-alikes. */
static const char qid_alphabet[] = "0123456789BCDFGHJKLMNPQRSTVWXYZ";

static size_t put_base(char *out, uint64_t v, unsigned digits)
{
    const uint64_t base = sizeof(qid_alphabet) - 1;
    for (unsigned i = digits; i-- > 0;) {
        out[i] = qid_alphabet[v % base];
        v /= base;
    }
    return digits;
}

void ph_qid_format(char out[PH_QID_LEN + 1], uint64_t usec, unsigned pid, unsigned counter)
{
    size_t n = put_base(out, usec, 10);
    n += put_base(out + n, pid & 0x7fff, 3);
    n += put_base(out + n, counter & 0x3ff, 2);
    out[n] = '\0';
}
