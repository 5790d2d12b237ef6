#!/usr/bin/env bash
# The pipeline alone against a real broker: fill Tansu with `seconds` of native ingest load
# first, then start `fleetflow pipeline` and time it until every record is committed to Parquet.
# It has both cores to itself, so this is its catch-up rate (after an outage, or at startup).
#
#   benches/scripts/pipeline_catchup.sh [seconds]      (default: 10)
#
# Prints the rate, the resident memory at the end, and the CPU seconds of each pipeline thread.
set -euo pipefail
cd "$(dirname "$0")/../.."
source scripts/env.sh
seconds="${1:-10}"
cargo build --release -q --locked --workspace --all-targets
bin="$CARGO_TARGET_DIR/release"
tansu="${TANSU_BIN:-$HOME/.cargo/bin/tansu}"
work="$(mktemp -d)"
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
kport="$(free_port)"; hport="$(free_port)"
cleanup() { kill "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$work"; }
pids=()
trap cleanup EXIT
RUST_LOG=warn "$tansu" broker --listener-url "tcp://127.0.0.1:$kport" \
  --advertised-listener-url "tcp://127.0.0.1:$kport" --storage-engine memory://tansu/ >"$work/tansu.log" 2>&1 &
pids+=($!)
sleep 1
"$bin/ingest_load" --broker "127.0.0.1:$kport" --scenarios native --seconds "$seconds" \
  --bodies $(( (seconds + 1) * 2000 )) >"$work/load.txt" &
load=$!
until grep -q '^acknowledged in total' "$work/load.txt"; do sleep 0.2; done
kill "$load" 2>/dev/null || true
wait "$load" 2>/dev/null || true
grep '^acknowledged in total' "$work/load.txt"
points=$(sed -n 's/^acknowledged in total: .* requests, \([0-9]*\) points.*/\1/p' "$work/load.txt")
records=$(sed -n 's/^acknowledged in total: .* points, \([0-9]*\) records.*/\1/p' "$work/load.txt")
start=$(date +%s.%N)
RUST_LOG=warn "$bin/fleetflow" pipeline --brokers "127.0.0.1:$kport" --data-dir "$work/data" \
  --http "127.0.0.1:$hport" >"$work/pipeline.log" 2>&1 &
pipeline=$!
pids+=($pipeline)
committed=0
while [ "$committed" -lt "$records" ]; do
  sleep 0.2
  committed=$(curl -s "127.0.0.1:$hport/status" 2>/dev/null \
    | python3 -c 'import json,sys; print(sum(json.load(sys.stdin)["pipeline"]["committed_offsets"].values()))' 2>/dev/null \
    || echo 0)
done
done_at=$(date +%s.%N)
grep -E 'VmRSS|VmHWM' "/proc/$pipeline/status"
echo "CPU seconds by thread (user + system):"
hz="$(getconf CLK_TCK)"
for task in /proc/"$pipeline"/task/*; do
  awk -v hz="$hz" '{printf "%s %.2f\n", $2, ($14 + $15) / hz}' "$task/stat"
done | awk '{cpu[$1] += $2} END {for (t in cpu) printf "  %-22s %7.2f\n", t, cpu[t]}' | sort -k2 -n -r | head -6
python3 -c 'import sys; s, e, p = map(float, sys.argv[1:]); print(f"pipeline caught up: {p:.0f} points in {e - s:.1f} s = {p / (e - s):,.0f} points/s")' \
  "$start" "$done_at" "$points"
