/*
 * schedule.h - what one delivery attempt's outcome does to a recipient's state: the retry
 * schedule (exponential backoff, configurable) and the maximum queue lifetime. Pure: the caller
 * passes the time.
 *
 *   2xx              -> delivered (done_at = now)
 *   5xx              -> failed (a bounce is due unless the sender is null)
 *   4xx / no answer  -> deferred until now + schedule[min(attempts, n) - 1], but never past the
 *                       end of the message's lifetime (received + lifetime: one last attempt is
 *                       made then); an attempt that fails temporarily at or after that end fails
 *                       the recipient for good ("delivery time expired").
 */
#ifndef POSTHORN_QUEUE_SCHEDULE_H
#define POSTHORN_QUEUE_SCHEDULE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "queue/envelope.h"

#define PH_RETRY_SCHEDULE_MAX 32

typedef struct ph_retry_policy {
    uint64_t schedule_ms[PH_RETRY_SCHEDULE_MAX]; /* delay after attempt 1, 2, ... (last repeats) */
    size_t n;                                    /* >= 1 */
    uint64_t lifetime_ms;                        /* from arrival */
} ph_retry_policy;

/* The default: 1m 5m 15m 1h 4h, 5 days. */
void ph_retry_policy_default(ph_retry_policy *p);

/* Seconds to wait after the given number of attempts (>= 1), at least 1. */
int64_t ph_retry_delay(const ph_retry_policy *p, uint32_t attempts);

/* Whether recipient r should be tried at now: pending, or deferred and due (or force). */
bool ph_schedule_due(const ph_rcpt *r, int64_t now, bool force);

/*
 * Records an attempt for recipient i of e: attempts + 1, then the state from code (200-599; 0
 * or any other value counts as a temporary failure) as described above. text is the reply or
 * error (kept as last_error; may be NULL). Returns the new state, or -EINVAL / -ENOMEM (e
 * unchanged apart from attempts).
 */
int ph_schedule_record(ph_envelope *e, size_t i, int code, const char *text, int64_t now,
                       const ph_retry_policy *p);

/* Fails recipient i at once with text (an operator's `queue bounce`, a recipient that no longer
 * exists): attempts unchanged. 0 or -EINVAL / -ENOMEM. */
int ph_schedule_fail(ph_envelope *e, size_t i, const char *text, int64_t now);

#endif
