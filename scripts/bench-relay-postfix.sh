#!/usr/bin/env bash
# The Postfix side of the relay benchmark (scripts/bench-relay.mjs is Petrel's): a private Postfix
# (../shared/bench/peers/postfix.sh) with relayhost = Postfix's smtp-sink on loopback takes N 1 KB
# messages to D domains over SMTP while its relay transport is held (defer_transports), then the hold
# is lifted and the time until its queue is empty is measured, the same "queue full → empty" as Petrel's.
# Usage: scripts/bench-relay-postfix.sh [N=10000] [D=100]   (root; ports 2690 and a free sink port)
set -euo pipefail
N=${1:-10000}; D=${2:-100}
KIT=$(cd "$(dirname "$0")/../../shared/bench" && pwd)
DIR=$(mktemp -d /tmp/pf-relay-XXXX); chmod 755 "$DIR"; PORT=2690
SINKPORT=$(python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])')
/usr/sbin/smtp-sink -u nobody -c "127.0.0.1:$SINKPORT" 1000 >/dev/null 2>&1 & SINK=$!
PF_IN_FLOW_DELAY=0 PF_EXTRA="relayhost = [127.0.0.1]:$SINKPORT
defer_transports = relay smtp
default_destination_concurrency_limit = 20
smtp_tls_security_level = none" "$KIT/peers/postfix.sh" start $PORT "$DIR" >/dev/null
python3 - "$PORT" "$N" "$D" <<'PY'
import smtplib, sys
port, n, d = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
body = ("From: bench@example.test\r\nSubject: relay bench\r\n\r\n" + "x" * 70 + "\r\n").ljust(1024, "y") + "\r\n"
s = smtplib.SMTP("127.0.0.1", port)
for i in range(n):
    s.sendmail("bench@example.test", [f"user{i}@domain{i % d}.test"], body)
s.quit()
PY
CONF=$DIR/etc
until [ "$(postqueue -c "$CONF" -j | wc -l)" -ge "$N" ]; do sleep 0.2; done
t0=$(date +%s.%N)
postconf -c "$CONF" -e "defer_transports ="
postfix -c "$CONF" reload >/dev/null 2>&1
postqueue -c "$CONF" -f
until "$KIT/peers/postfix.sh" drained $PORT "$DIR"; do sleep 0.1; done
t1=$(date +%s.%N)
"$KIT/peers/postfix.sh" stop $PORT "$DIR" >/dev/null
kill $SINK
rm -rf "$DIR"
awk -v n="$N" -v d="$D" -v a="$t0" -v b="$t1" 'BEGIN{s=b-a; printf "{\"postfix\":true,\"messages\":%d,\"domains\":%d,\"drained_in_s\":%.2f,\"msgs_per_s\":%d}\n", n, d, s, n/s}'
