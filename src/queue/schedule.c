/*
 * schedule.c - delivery outcomes and the retry schedule (see schedule.h).
 */
#include "queue/schedule.h"

#include <errno.h>
#include <stdio.h>

void ph_retry_policy_default(ph_retry_policy *p)
{
    static const uint64_t minutes[] = {1, 5, 15, 60, 240};
    p->n = sizeof(minutes) / sizeof(minutes[0]);
    for (size_t i = 0; i < p->n; i++)
        p->schedule_ms[i] = minutes[i] * 60000u;
    p->lifetime_ms = 5ull * 24 * 3600 * 1000;
}

int64_t ph_retry_delay(const ph_retry_policy *p, uint32_t attempts)
{
    size_t k = attempts == 0 ? 0 : attempts - 1;
    if (p->n == 0)
        return 60;
    if (k >= p->n)
        k = p->n - 1;
    int64_t s = (int64_t)((p->schedule_ms[k] + 999) / 1000);
    return s < 1 ? 1 : s;
}

bool ph_schedule_due(const ph_rcpt *r, int64_t now, bool force)
{
    if (r->state == PH_RCPT_PENDING)
        return true;
    return r->state == PH_RCPT_DEFERRED && (force || r->next_try <= now);
}

static int64_t expiry_of(const ph_envelope *e, const ph_retry_policy *p)
{
    return e->received + (int64_t)(p->lifetime_ms / 1000);
}

int ph_schedule_record(ph_envelope *e, size_t i, int code, const char *text, int64_t now,
                       const ph_retry_policy *p)
{
    if (i >= e->nrcpts || now < 0)
        return -EINVAL;
    ph_rcpt *r = &e->rcpts[i];
    if (r->attempts < UINT32_MAX)
        r->attempts++;
    int rc;
    if (code >= 200 && code < 300) {
        rc = ph_envelope_rcpt_set_state(e, i, PH_RCPT_DELIVERED, now, text);
        return rc < 0 ? rc : PH_RCPT_DELIVERED;
    }
    if (code >= 500 && code < 600) {
        rc = ph_envelope_rcpt_set_state(e, i, PH_RCPT_FAILED, now, text);
        return rc < 0 ? rc : PH_RCPT_FAILED;
    }
    int64_t end = expiry_of(e, p);
    if (now >= end) {
        char why[PH_ENVELOPE_ERROR_MAX + 64];
        snprintf(why, sizeof(why), "delivery time expired; last error: %s",
                 text ? text : "none");
        rc = ph_envelope_rcpt_set_state(e, i, PH_RCPT_FAILED, now, why);
        return rc < 0 ? rc : PH_RCPT_FAILED;
    }
    int64_t next = now + ph_retry_delay(p, r->attempts);
    if (next > end)
        next = end; /* one last attempt when the lifetime ends */
    rc = ph_envelope_rcpt_set_state(e, i, PH_RCPT_DEFERRED, next, text);
    return rc < 0 ? rc : PH_RCPT_DEFERRED;
}

int ph_schedule_fail(ph_envelope *e, size_t i, const char *text, int64_t now)
{
    if (i >= e->nrcpts || now < 0)
        return -EINVAL;
    return ph_envelope_rcpt_set_state(e, i, PH_RCPT_FAILED, now, text);
}
