# postfix-common.sh - what the private Postfix benchmark peers (postfix-tls.sh,
# postfix-maildir.sh) share; sourced, not run. Each peer is its own instance (own config dir,
# queue and data directory, `master -c $CONF`), never touching /etc/postfix or the Debian
# instance. Needs QUEUE, STATE, CONF and PORT set by the caller.

# Messages still in the queue (files in incoming, active, deferred, maildrop, hold).
count_queue() {
  local n=0
  for d in incoming active deferred maildrop hold; do
    [ -d "$QUEUE/$d" ] && n=$((n + $(find "$QUEUE/$d" -type f 2>/dev/null | wc -l)))
  done
  echo $n
}

# main.cf lines every peer has; $1 names the peer in the banner. The caller appends its own.
main_cf_common() {
  cat <<CF
compatibility_level = 3.6
queue_directory = $QUEUE
data_directory = $STATE/data
myhostname = bench.test
mydomain = bench.test
myorigin = bench.test
mydestination =
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
smtpd_relay_restrictions = permit_mynetworks, reject
smtpd_peername_lookup = no
smtpd_banner = \$myhostname ESMTP $1
biff = no
alias_maps =
alias_database =
local_recipient_maps =
relay_domains =
message_size_limit = 20971520
maillog_file = $STATE/maillog
default_process_limit = 200
CF
}

# master.cf with the services every peer runs, plus the extra lines given as arguments.
master_cf() {
  cat <<CF
127.0.0.1:$PORT inet n - n - - smtpd
cleanup   unix  n - n - 0 cleanup
qmgr      unix  n - n 300 1 qmgr
rewrite   unix  - - n - - trivial-rewrite
bounce    unix  - - n - 0 bounce
defer     unix  - - n - 0 bounce
trace     unix  - - n - 0 bounce
verify    unix  - - n - 1 verify
flush     unix  n - n 1000? 0 flush
proxymap  unix  - - n - - proxymap
showq     unix  n - n - - showq
error     unix  - - n - - error
retry     unix  - - n - - error
discard   unix  - - n - - discard
anvil     unix  - - n - 1 anvil
scache    unix  - - n - 1 scache
postlog   unix-dgram n - n - 1 postlogd
CF
  for line in "$@"; do echo "$line"; done
}

# Queue directories with the owners and modes of /etc/postfix/postfix-files (idempotent). Done by
# hand: `postfix -c DIR set-permissions` and post-install refuse a config directory that is not
# listed in /etc/postfix/main.cf (absent on a "No configuration" install), and we must not edit it.
make_queue_dirs() {
  install -d -o root -g root -m 755 "$QUEUE" "$QUEUE/pid"
  for d in active bounce corrupt defer deferred flush hold incoming private saved trace; do
    install -d -o postfix -g root -m 700 "$QUEUE/$d"
  done
  install -d -o postfix -g postdrop -m 730 "$QUEUE/maildrop"
  install -d -o postfix -g postdrop -m 710 "$QUEUE/public"
  install -d -o postfix -m 700 "$STATE/data"
}
