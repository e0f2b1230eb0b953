#!/bin/sh
# check_install.sh - installs the build into a temporary prefix and builds an embedder's program
# from it the way a user would: the installed header, `pkg-config posthorn`, the shared library
# (and the static one), then runs it and talks SMTP to it. Proves the public header is
# self-contained and posthorn.pc is right.
# usage: check_install.sh BUILD_DIR SOURCE_DIR
set -eu
BUILD=$1
SRC=$2
TMP=$(mktemp -d)
PID=
cleanup() {
    [ -n "$PID" ] && kill "$PID" 2>/dev/null && wait "$PID" 2>/dev/null
    rm -rf "$TMP"
}
trap cleanup EXIT INT TERM
cmake --install "$BUILD" --prefix "$TMP/prefix" >/dev/null
PC=$(dirname "$(find "$TMP/prefix" -name posthorn.pc | head -1)")
export PKG_CONFIG_PATH="$PC"
LIBDIR=$(pkg-config --variable=libdir posthorn)
test -f "$TMP/prefix/include/posthorn/posthorn.h"
# shared
cc -std=c17 -Wall -Wextra -Werror "$SRC/examples/blocklist.c" $(pkg-config --cflags --libs posthorn) \
   -o "$TMP/blocklist"
# static: the same program with libposthorn.a
cc -std=c17 -Wall -Wextra -Werror "$SRC/examples/blocklist.c" $(pkg-config --cflags posthorn) \
   "$LIBDIR/libposthorn.a" $(pkg-config --libs libevent_core libevent_pthreads openssl) -o "$TMP/blocklist-static"
for prog in blocklist blocklist-static; do
    LD_LIBRARY_PATH="$LIBDIR" "$TMP/$prog" 127.0.0.1:0 spam.example 2>"$TMP/err" &
    PID=$!
    i=0
    while ! grep -q "event=listening" "$TMP/err" && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
    PORT=$(sed -n 's/.*address=127.0.0.1:\([0-9]*\).*/\1/p' "$TMP/err" | head -1)
    /usr/bin/python3 - "$PORT" <<'PY'
import smtplib, sys
s = smtplib.SMTP("127.0.0.1", int(sys.argv[1]), timeout=10)
s.ehlo("client.example")
code, _ = s.mail("bad@spam.example")
assert code == 550, code
s.rset()
code, _ = s.mail("ok@good.example")
assert code == 250, code
s.quit()
PY
    kill "$PID"
    wait "$PID"
    PID=
    echo "ok: $prog built from the installed tree and served SMTP"
done
echo "1 passed, 0 failed"
