/*
 * qid.h - the text form of queue ids: 15 characters from a look-alike-free alphabet, sortable
 * by time (fixed width, most significant first). Pure: the caller supplies the clock, process id
 * and counter, so the server (hooks.c) and the queue manager (bounces) make ids the same way.
 */
#ifndef POSTHORN_PROTO_QID_H
#define POSTHORN_PROTO_QID_H

#include <stdint.h>

#define PH_QID_LEN 15 /* characters, without the NUL */

/* Writes PH_QID_LEN characters and a NUL to out: usec (microseconds since the epoch, 10
 * digits), pid (low 15 bits, 3 digits) and counter (low 10 bits, 2 digits). Unique per machine
 * as long as one process makes fewer than 1024 ids per microsecond. */
void ph_qid_format(char out[PH_QID_LEN + 1], uint64_t usec, unsigned pid, unsigned counter);

#endif
