#!/bin/bash
# Postfix with STARTTLS as a benchmark peer: a private instance (own config dir, queue and data
# directory, `master -c $CONF`), never touching /etc/postfix or the Debian instance. Same approach
# as ../../../shared/bench/peers/postfix.sh ("discard" variant), plus TLS with the certificate and
# key given in the environment (the same files Posthorn gets).
#
# usage: BENCH_TLS_CERT=cert.pem BENCH_TLS_KEY=key.pem postfix-tls.sh VARIANT start PORT
#        postfix-tls.sh VARIANT queued | reset | clean
#   VARIANT disk  : smtpd -> cleanup (queue file fsync'd before 250) -> qmgr -> discard(8),
#                   queue under $BENCH_STATE (/var/tmp/smtpbench) on disk
#           tmpfs : the same with the queue in /dev/shm (fsync is ~free: shows the CPU cost alone)
#   queued: messages still in the queue; reset: nothing to wipe (discard); clean: remove the
#   instance's state (queue, config, logs) - only when it is stopped.
#
# TLS settings (all else Postfix 3.7 defaults): smtpd_tls_security_level = may (STARTTLS offered,
# not required), cert/key files as given, smtpd_tls_loglevel = 0, no TLS session cache database
# (the default; smtpd_tls_session_cache_database is empty), session tickets as by default
# (smtpd_tls_session_cache_timeout = 3600s, ticket keys from tlsmgr(8), which is in master.cf).
# The benchmark client does not resume, so the cache only matters for the tickets the server
# issues. Processes: default_process_limit = 200 (smtpd maxproc "-"), so 50 parallel sessions
# never wait for a free smtpd; max_use stays 100 (default), so smtpd processes are reused.
# BENCH_STATE must lie under /var (maillog_file_prefixes): elsewhere master exits at start with
# its fatal error sent only to syslog.
set -euo pipefail
. "$(dirname "$0")/postfix-common.sh"
VARIANT=$1; CMD=$2; PORT=${3:-2610}
case "$VARIANT" in
  disk)  STATE=${BENCH_STATE:-/var/tmp/smtpbench}/postfix-tls-disk; QUEUE=$STATE/queue ;;
  tmpfs) STATE=${BENCH_STATE:-/var/tmp/smtpbench}/postfix-tls-tmpfs
         QUEUE=/dev/shm/smtpbench-postfix-tls-tmpfs/queue ;;
  *) echo "unknown variant $VARIANT (disk or tmpfs)" >&2; exit 2 ;;
esac
CONF=$STATE/conf


case "$CMD" in
queued) count_queue; exit 0 ;;
reset)  exit 0 ;;
clean)  rm -rf "$STATE"
        if [ "$VARIANT" = tmpfs ]; then rm -rf "$(dirname "$QUEUE")"; fi
        exit 0 ;;
start)  ;;
*) echo "usage: $0 VARIANT start PORT|queued|reset|clean" >&2; exit 2 ;;
esac
: "${BENCH_TLS_CERT:?set BENCH_TLS_CERT}" "${BENCH_TLS_KEY:?set BENCH_TLS_KEY}"

mkdir -p "$CONF"
rm -f "$STATE/maillog"
{ main_cf_common bench-postfix-tls
  cat <<CF
default_transport = discard:bench
relay_transport = discard:bench
smtpd_tls_security_level = may
smtpd_tls_cert_file = $BENCH_TLS_CERT
smtpd_tls_key_file = $BENCH_TLS_KEY
smtpd_tls_loglevel = 0
CF
} > "$CONF/main.cf"
master_cf "tlsmgr    unix  - - n 1000? 1 tlsmgr" > "$CONF/master.cf"
make_queue_dirs
exec /usr/lib/postfix/sbin/master -c "$CONF" -s
