/*
 * qlist.h - the text `posthorn queue list` and `queue show` print, made from the queue files
 * alone: the same output whether the control socket answers (daemon running) or the tool reads
 * the spool directory itself (daemon stopped).
 *
 * list: one block per message, oldest first (queue ids sort by time):
 *   <qid>  <size>  <age>  <sender>[  HELD]
 *       <rcpt>  <state>[ attempts=N][ next=in <dur>][ error="..."]
 * followed by a summary line "-- N messages, B bytes" (or "-- queue is empty").
 * show: the envelope fields one per line, then the message's header section.
 * Text from the files is escaped (control bytes as \xNN) so it cannot drive a terminal.
 */
#ifndef POSTHORN_QUEUE_QLIST_H
#define POSTHORN_QUEUE_QLIST_H

#include <stdint.h>
#include <stdio.h>

#include "queue/qstore.h"

/* 0 or -errno. now: unix seconds (for ages). */
int ph_qlist_list(ph_qstore *qs, FILE *out, int64_t now);
/* 0, -ENOENT (no such message), -EBADMSG (corrupt: moved away) or -errno. */
int ph_qlist_show(ph_qstore *qs, const char *qid, FILE *out, int64_t now);

#endif
