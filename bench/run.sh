#!/bin/bash
# bench/run.sh - the issue's benchmark: posthorn sink (1 and 2 workers, stdout to /dev/null)
# against Postfix's smtp-sink, interleaved in one run: 50 parallel sessions x 4 KiB x 20,000
# messages, 1 sequential session, 50 sessions on kept connections, and 5,000 idle connections.
# usage: bench/run.sh [ROUNDS] [EXTRA PEERS, e.g. postfix-discard,aiosmtpd-discard]
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROUNDS=${1:-3}
PEERS=smtp-sink${2:+,$2}
export BENCH_SCALE=${BENCH_SCALE:-2}   # par50-4k: 2 x 10,000 = 20,000 messages
exec /usr/bin/python3 "$HERE/compare.py" --rounds "$ROUNDS" --peers "$PEERS" \
    --scenarios "${BENCH_SCENARIOS:-par50-4k,seq1,par50-4k-keep,idle}"
