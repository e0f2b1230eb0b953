#!/bin/sh
# setup.sh - install the Debian 12 packages Posthorn needs to build, test and benchmark.
# Idempotent: installs only what is missing; preseeds Postfix so it neither asks nor binds port 25.
set -eu
PKGS="build-essential cmake pkg-config libevent-dev libssl-dev libcrypt-dev libcmocka-dev clang llvm \
      libclang-rt-14-dev python3 swaks curl postfix openssl procps iproute2 util-linux man-db groff-base \
      libnet-ssleay-perl libio-socket-ssl-perl libauthen-sasl-perl dovecot-core dovecot-lmtpd \
      libunbound-dev dns-root-data libidn2-dev"
missing=""
for p in $PKGS; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
if [ "$(id -u)" != 0 ]; then
    echo "setup.sh: missing packages:$missing (run as root to install)" >&2
    exit 1
fi
echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# shellcheck disable=SC2086
apt-get install -y -qq --no-install-recommends $missing >/dev/null
# Postfix is only here for its smtp-source/smtp-sink test tools: keep the system instance down.
if command -v postfix >/dev/null 2>&1; then postfix stop >/dev/null 2>&1 || true; fi
