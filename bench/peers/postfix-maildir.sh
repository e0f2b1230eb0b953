#!/bin/bash
# Postfix delivering to ONE Maildir as a benchmark peer (issue 4): a private instance (own config
# dir, queue and data directory, `master -c $CONF`), never touching /etc/postfix or the Debian
# instance. Same settings as the "maildir" variant of ../../../shared/bench/peers/postfix.sh
# (which fails to start here: its post-install step wants /etc/postfix/main.cf); the queue
# directories are made by hand as in postfix-tls.sh, without TLS.
#
# usage: postfix-maildir.sh start PORT     foreground, 127.0.0.1:PORT
#        postfix-maildir.sh queued         messages still in the queue (files in incoming,
#                                          active, deferred, maildrop, hold)
#        postfix-maildir.sh delivered      messages in the Maildir's new/
#        postfix-maildir.sh reset          empty the Maildir (tmp, new, cur); run it only while
#                                          the queue is empty
#        postfix-maildir.sh clean          remove the instance's state - only when it is stopped
#
# Path of a message: smtpd -> cleanup (queue file written and fsync'd before the 250) -> qmgr ->
# virtual(8), which writes the Maildir file (tmp/, fsync, rename into new/) and reports back; qmgr
# then removes the queue file. Mail for any address @y.test goes to one Maildir,
# $STATE/mail/box/ (virtual_mailbox_maps = static:box/: the trailing slash means Maildir),
# owned by nobody:nogroup (virtual_uid_maps/virtual_gid_maps). The queue and the Maildir are on
# disk under $BENCH_STATE (/var/tmp/smtpbench), which must lie under /var (maillog_file_prefixes:
# elsewhere master exits at start with its fatal error sent only to syslog).
# Everything else is Postfix 3.7's default, in particular the delivery concurrency:
# virtual_destination_concurrency_limit = default_destination_concurrency_limit = 20 deliveries
# to y.test at once, reached by slow start from initial_destination_concurrency = 5.
# default_process_limit = 200, so 50 parallel sessions never wait for a free smtpd.
set -euo pipefail
. "$(dirname "$0")/postfix-common.sh"
CMD=${1:-}; PORT=${2:-2620}
STATE=${BENCH_STATE:-/var/tmp/smtpbench}/postfix-maildir-issue4
QUEUE=$STATE/queue
CONF=$STATE/conf
MAIL=$STATE/mail
BOX=$MAIL/box


# Maildir directories as virtual(8) would make them, owned by the delivery user.
make_box() {
  install -d -o nobody -g nogroup -m 700 "$MAIL" "$BOX" "$BOX/tmp" "$BOX/new" "$BOX/cur"
}

case "$CMD" in
queued)    count_queue; exit 0 ;;
delivered) if [ -d "$BOX/new" ]; then find "$BOX/new" -type f | wc -l; else echo 0; fi; exit 0 ;;
reset)     rm -rf "$BOX"; make_box; exit 0 ;;
clean)     rm -rf "$STATE"; exit 0 ;;
start)     ;;
*) echo "usage: $0 start PORT | queued | delivered | reset | clean" >&2; exit 2 ;;
esac

mkdir -p "$CONF"
rm -f "$STATE/maillog"
{ main_cf_common bench-postfix-maildir
  cat <<CF
virtual_mailbox_domains = y.test
virtual_mailbox_base = $MAIL
virtual_mailbox_maps = static:box/
virtual_uid_maps = static:65534
virtual_gid_maps = static:65534
virtual_transport = virtual
CF
} > "$CONF/main.cf"
master_cf "virtual   unix  - n n - - virtual" > "$CONF/master.cf"
make_queue_dirs
make_box
exec /usr/lib/postfix/sbin/master -c "$CONF" -s
