#!/usr/bin/env bash
# End to end on one machine: load generator -> ingest (HTTP, acks after Kafka delivery) ->
# Tansu (a separate broker process) -> `fleetflow pipeline` -> committed Parquet.
#
#   benches/scripts/end_to_end.sh [seconds] [scenario]     (default: 20 native)
#   CONNECTIONS=160 benches/scripts/end_to_end.sh ...       (load generator connections; default 64)
#   BODIES_PER_SEC=1700 benches/scripts/end_to_end.sh 60    (distinct bodies per second of load)
#
# Prints the acknowledged points, when the last of them was committed to `positions`, and the
# end-to-end rate: acknowledged points / (first request -> last point committed).
set -euo pipefail
source "$(dirname "$0")/tansu_bench.sh"
seconds="${1:-20}"
scenario="${2:-native}"
start_pipeline
until status >/dev/null 2>&1; do sleep 0.2; done
# Enough distinct bodies that no fix is sent twice (up to 4,000 native requests/s; 3,400 were
# measured here with 160 connections). Once they run out, the load re-sends bodies whose fixes
# the pipeline drops as duplicates, and a window of nothing but duplicates commits no offsets
# (RESULTS.md, session 22), so the run would never see its last records committed.
# Each body is about 72 KB in the load generator's memory: for runs over ~40 s, lower
# BODIES_PER_SEC (at 4,000 a 60 s run needs 17.6 GB and was OOM-killed).
bodies=$(( (seconds + 1) * ${BODIES_PER_SEC:-4000} ))
"$bin/ingest_load" --broker "127.0.0.1:$kport" --scenarios "$scenario" --seconds "$seconds" \
  --connections "${CONNECTIONS:-64}" \
  --bodies "$bodies" >"$work/load.txt" &
load=$!
# The clock starts when the load does (after the bodies are generated).
until grep -q 'bodies ready' "$work/load.txt"; do sleep 0.05; done
start=$(date +%s.%N)
cpu_start="$(cpu "$load") $(cpu "$tansu_pid") $(cpu "$pipeline_pid")"
# (ingest_load does not exit by itself against an external broker: wait for its summary line.)
until grep -q '^acknowledged in total' "$work/load.txt"; do sleep 0.05; done
loaded=$(date +%s.%N)
cpu_load="$(cpu "$load")"
kill "$load" 2>/dev/null || true
cat "$work/load.txt"
points=$(acked_points "$work/load.txt")
records=$(acked_records "$work/load.txt")
# Done when the tables are committed up to every record ingest acknowledged.
wait_committed "$records"
done_at=$(date +%s.%N)
cpu_end="$cpu_load $(cpu "$tansu_pid") $(cpu "$pipeline_pid")"
written=$(status | python3 -c 'import json,sys; print(json.load(sys.stdin)["pipeline"]["rows_written"]["positions"])')
python3 - "$start" "$loaded" "$done_at" "$points" "$written" $cpu_start $cpu_end <<'PY'
import sys
start, loaded, done, points, written = map(float, sys.argv[1:6])
cpu = [b - a for a, b in zip(map(float, sys.argv[6:9]), map(float, sys.argv[9:12]))]
print(f"acknowledged points: {points:.0f}; distinct fixes committed to positions: {written:.0f}"
      " (the load generator's 1 s warm-up re-sends its first bodies; the pipeline drops those fixes as duplicates)")
print(f"load ran {loaded-start:.1f}s; the last point was committed {done-loaded:.1f}s after the load ended")
print(f"end to end: {points/(done-start):,.0f} points/s (first request -> last point in Parquet)")
names = ["load generator + ingest", "broker (Tansu)", "pipeline"]
print("CPU per point (user + system, over the run):")
for name, seconds in zip(names, cpu):
    print(f"  {name:<24} {seconds:6.1f} s  {seconds / points * 1e6:5.2f} us/point")
print(f"  {'all':<24} {sum(cpu):6.1f} s  {sum(cpu) / points * 1e6:5.2f} us/point"
      f"  (2 cores for {done - start:.1f} s = {2 * (done - start):.1f} s)")
PY
echo "pipeline CPU seconds by thread (user, system; minor page faults):"
thread_cpu "$pipeline_pid"
du -sb "$work/data/positions" | awk -v p="$points" '{printf "positions on disk: %.1f MB, %.1f bytes/point (small files, before compaction)\n", $1/1e6, $1/p}'
