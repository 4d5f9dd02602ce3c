#!/usr/bin/env bash
# Starts Petrel for the shared load kit (../shared/bench): bench-serve.sh PORT DIR
# Writes DIR/petrel.toml (SMTP on 127.0.0.1:PORT, data in DIR, local domain example.test), creates
# user@example.test (smtp-source's default recipient) and runs `petrel serve` in the foreground.
# Messages land in DIR/mailboxes/example.test/user/new (STORE_SUBDIR for bench-peer.sh).
# The inbound checks (SPF/DKIM/DMARC/ARC, Bayes) are off unless BENCH_CHECKS=true: the Postfix it is
# compared with runs none, and with the system's resolver their DNS answers time the run, not Petrel.
set -euo pipefail
PORT=${1:?PORT}; DIR=${2:?DIR}
HERE=$(cd "$(dirname "$0")/.." && pwd)
mkdir -p "$DIR"
cat > "$DIR/petrel.toml" <<TOML
hostname = "bench.petrel.test"
domains = ["example.test"]
data_dir = "$DIR"
[listen]
smtp = ["127.0.0.1:$PORT"]
submission = []
submissions = []
pop3 = []
pop3s = []
[limits]
max_connections = 1000
max_junk_commands = 100000
[log]
level = "warn"
[auth]
checks = ${BENCH_CHECKS:-false}
[spam]
bayes = ${BENCH_CHECKS:-false}
TOML
"$HERE/bin/petrel" user add user@example.test --password-stdin --config "$DIR/petrel.toml" <<<"bench" >/dev/null 2>&1 || true
exec "$HERE/bin/petrel" serve --config "$DIR/petrel.toml"
