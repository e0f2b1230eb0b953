#!/bin/bash
# Postfix relaying to a local smtp-sink as a benchmark peer (issue 5): a private instance (own
# config dir, queue and data directory, `master -c $CONF`), never touching /etc/postfix or the
# Debian instance. Built like postfix-maildir.sh (the shared settings and the hand-made queue
# directories come from postfix-common.sh).
#
# usage: BENCH_RELAY_SINK=127.0.0.2:2525 postfix-relay.sh start PORT
#                                          foreground, smtpd on 127.0.0.1:PORT
#        postfix-relay.sh queued           messages still in the queue (files in incoming,
#                                          active, deferred, maildrop, hold)
#        postfix-relay.sh reset            nothing to reset (the sink is the runner's)
#        postfix-relay.sh clean            remove the instance's state - only when it is stopped
#
# Path of a message: smtpd -> cleanup (queue file written and fsync'd before the 250) -> qmgr ->
# smtp(8), which connects to the sink, delivers, and reports back; qmgr then removes the queue
# file. Mail for sink.test goes to [BENCH_RELAY_SINK] through transport_maps (an inline: table;
# the brackets mean "this host, no MX lookup", so no DNS is involved at all); every other
# domain gets the error transport (the benchmark sends only to sink.test; a stray bounce must
# not try DNS).
#
# Changed from Postfix 3.7's defaults, and why:
#   smtp_tls_security_level = none   the sink offers no STARTTLS; said explicitly so the run
#                                    does not depend on a default (Posthorn: smtp_tls = none)
#   default_process_limit = 200      (postfix-common.sh) 50 parallel inbound sessions never wait
#                                    for a free smtpd
#   smtp and relay services in master.cf (the delivery agent; postfix-common.sh has neither)
# Everything else is the default, in particular the delivery concurrency: at most
# default_destination_concurrency_limit = 20 sessions to [127.0.0.2]:PORT at once, reached by
# slow start from initial_destination_concurrency = 5, and connection reuse when a destination
# has a backlog (smtp_connection_cache_on_demand = yes). The queue is on disk under
# $BENCH_STATE (/var/tmp/smtpbench), which must lie under /var (maillog_file_prefixes:
# elsewhere master exits at start with its fatal error sent only to syslog).
set -euo pipefail
. "$(dirname "$0")/postfix-common.sh"
CMD=${1:-}; PORT=${2:-2630}
SINK=${BENCH_RELAY_SINK:-127.0.0.2:2525}
STATE=${BENCH_STATE:-/var/tmp/smtpbench}/postfix-relay-issue5
QUEUE=$STATE/queue
CONF=$STATE/conf

case "$CMD" in
queued) count_queue; exit 0 ;;
reset)  exit 0 ;;
clean)  rm -rf "$STATE"; exit 0 ;;
start)  ;;
*) echo "usage: $0 start PORT | queued | reset | clean" >&2; exit 2 ;;
esac
case "$SINK" in
  *:*) ;;
  *) echo "BENCH_RELAY_SINK must be HOST:PORT, not '$SINK'" >&2; exit 2 ;;
esac

mkdir -p "$CONF"
rm -f "$STATE/maillog"
{ main_cf_common bench-postfix-relay
  cat <<CF
transport_maps = inline:{ sink.test=smtp:[${SINK%:*}]:${SINK##*:} }
default_transport = error:5.1.2 this benchmark relays only to sink.test
smtp_tls_security_level = none
CF
} > "$CONF/main.cf"
master_cf "smtp      unix  - - n - - smtp" \
          "relay     unix  - - n - - smtp" > "$CONF/master.cf"
make_queue_dirs
exec /usr/lib/postfix/sbin/master -c "$CONF" -s
