/*
 * destlimit.h - at most N delivery sessions at once per destination (an LMTP server now, a
 * remote MX with the relay), shared by the queue manager's worker threads. A job that finds
 * its destination busy does not wait (that would tie up a worker other destinations could use):
 * it leaves those recipients untouched and asks to be run again shortly.
 *
 * Thread-safe. Owns its entries (one per destination name ever seen; destinations are few:
 * the configured LMTP servers, later the MX hosts).
 */
#ifndef POSTHORN_DELIVER_DESTLIMIT_H
#define POSTHORN_DELIVER_DESTLIMIT_H

#include <stdbool.h>

typedef struct ph_destlimit ph_destlimit;

/* limit >= 1 sessions per destination. NULL if memory is short. */
ph_destlimit *ph_destlimit_new(unsigned limit);
void ph_destlimit_free(ph_destlimit *dl); /* NULL is fine */

/* Takes a slot for dest if one is free (true), else false. Out of memory: true (no limit
 * rather than no delivery). */
bool ph_destlimit_try(ph_destlimit *dl, const char *dest);
/* Gives back a slot taken by ph_destlimit_try. */
void ph_destlimit_release(ph_destlimit *dl, const char *dest);
/* Sessions open to dest now. */
unsigned ph_destlimit_active(ph_destlimit *dl, const char *dest);

#endif
