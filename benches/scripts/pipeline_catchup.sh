#!/usr/bin/env bash
# The pipeline alone against a real broker: fill Tansu with `seconds` of native ingest load
# first, then start `fleetflow pipeline` and time it until every record is committed to Parquet.
# It has both cores to itself, so this is its catch-up rate (after an outage, or at startup).
#
#   benches/scripts/pipeline_catchup.sh [seconds]      (default: 10)
#   BENCH_PROCESSES=2 BENCH_WORKERS=1 benches/scripts/pipeline_catchup.sh   (a 2-process cluster)
#
# Prints the rate, the resident memory at the end, and the CPU seconds of each pipeline thread,
# user and system apart (`thread_cpu` in tansu_bench.sh).
set -euo pipefail
source "$(dirname "$0")/tansu_bench.sh"
seconds="${1:-10}"
"$bin/ingest_load" --broker "127.0.0.1:$kport" --scenarios native --seconds "$seconds" \
  --bodies 20000 --distinct >"$work/load.txt" &
load=$!
until grep -q '^acknowledged in total' "$work/load.txt"; do sleep 0.2; done
kill "$load" 2>/dev/null || true
wait "$load" 2>/dev/null || true
grep '^acknowledged in total' "$work/load.txt"
points=$(acked_points "$work/load.txt")
records=$(acked_records "$work/load.txt")
start=$(date +%s.%N)
start_pipeline
wait_committed "$records"
done_at=$(date +%s.%N)
echo "source paused by flow control: $(status | python3 -c 'import json,sys; print(json.load(sys.stdin)["pipeline"]["source_throttled_ms"] / 1000)') s (summed over workers; FLEETFLOW_PIPELINE__SOURCE_MAX_IN_FLIGHT_MIB=${FLEETFLOW_PIPELINE__SOURCE_MAX_IN_FLIGHT_MIB:-64})"
for pid in "${cluster_pids[@]}"; do
  echo "pipeline process $pid: $(grep -E 'VmRSS|VmHWM' "/proc/$pid/status" | tr -s ' \t\n' ' ')"
  echo "CPU seconds by thread (user, system; minor page faults):"
  thread_cpu "$pid"
done
du -sb "$work/data/positions" | awk -v p="$points" '{printf "positions on disk: %.1f MB, %.1f bytes/point (flush files)\n", $1/1e6, $1/p}'
python3 -c 'import sys; s, e, p = map(float, sys.argv[1:]); print(f"pipeline caught up: {p:.0f} points in {e - s:.1f} s = {p / (e - s):,.0f} points/s")' \
  "$start" "$done_at" "$points"
