/*
 * relay_state.h - the relay's own objects, shared by relay.c (requests, destinations, the
 * choice of exchanger) and relay_life.c (handing requests over, creation, shutdown). Not a
 * public interface: see relay.h. Everything here lives on the loop thread except the inbox
 * and the shut flag (under ph_relay.mu) and a waiting thread's batch.
 */
#ifndef POSTHORN_DELIVER_RELAY_STATE_H
#define POSTHORN_DELIVER_RELAY_STATE_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "deliver/logline.h"
#include "deliver/relay.h"
#include "deliver/relay_internal.h"
#include "deliver/relay_memory.h"
#include "dns/mx.h"

#define CANDS_MAX (PH_MX_HOSTS_MAX * PH_MX_ADDRS_MAX)
#define DEST_KEY_MAX 300

/* A log line through the relay's log hook (o.log, o.log_ctx). */
#define logf_(obj, level, ...) ph_logline((obj)->o.log, (obj)->o.log_ctx, (level), __VA_ARGS__)

/* The requests of one ph_relay_deliver (a waiting thread: mu/cv) or one ph_relay_submit
 * (done on the loop; the batch is freed after it). */
typedef struct batch {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    size_t left;
    ph_relay_done_fn done;
    void *done_arg;
} batch;

typedef struct cand {
    uint8_t host, addr;
} cand;

struct relay_req {
    ph_relay *relay;
    ph_relay_request *pub;
    batch *b;
    relay_req *next;            /* inbox, in-flight list */
    relay_req *wait_next;       /* a destination's waiters */
    relay_dest *dest;
    ph_mx_query *mxq;
    ph_mx_result *mx;
    char lookup[PH_DNS_NAME_MAX + 1]; /* the domain (or smarthost) as asked of the DNS */
    unsigned port;
    cand cands[CANDS_MAX];
    size_t ncand, next_cand;
    uint16_t group_pref;        /* the preference being tried */
    bool host_used[PH_MX_HOSTS_MAX];
    size_t hosts_used;
    relay_conn *attempts;
    struct event *stagger;
    bool waiting, fallback, holds_slot, tls_fallback;
    bool *final;
    size_t *open_idx;
    const char **open_rcpts;
    ph_client_result *txn_results;
    ph_smtp_envelope txn_env;
    ph_client_result last_error;
    char last_exchanger[PH_RELAY_EXCHANGER_MAX];
};

struct relay_dest {
    relay_dest *next;
    ph_relay *relay;
    char key[DEST_KEY_MAX];
    unsigned active;            /* sessions and connection rounds holding a slot */
    unsigned nreqs;             /* requests using this destination */
    relay_conn *sessions;       /* greeted connections: in a transaction, idle or quitting */
    relay_req *wait_head, **wait_tail;
    long long last_open_ms;
    struct event *timer;        /* rate limit: try the waiters again */
};

struct ph_relay {
    ph_relay_options o;
    struct event_base *base;
    pthread_mutex_t mu;
    relay_req *inbox;
    bool shut;                  /* under mu */
    bool shutting;              /* loop side: no new sessions while everything is torn down */
    int wake[2];
    struct event *wake_ev;
    relay_req *inflight;
    relay_dest *dests;
    relay_memory memory;
};

/* relay.c */
relay_req *relay_req_new(ph_relay *r, ph_relay_request *p, batch *b);
void relay_req_start(ph_relay *r, relay_req *q);
/* Ends q: every open recipient without a result gets one, q is freed, its batch told. */
void relay_req_finish(relay_req *q);
/* Every recipient of q not final yet gets this result (final unless 4xx). */
void relay_req_set_open(relay_req *q, int code, const char *enh, const char *text, bool remote,
                        ph_client_stage stage);
/* One request of b is done (the last one wakes the waiting thread or calls done). */
void relay_batch_done(batch *b);

#endif
