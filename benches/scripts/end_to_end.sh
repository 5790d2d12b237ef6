#!/usr/bin/env bash
# End to end on one machine: load generator -> ingest (HTTP, acks after Kafka delivery) ->
# Tansu (a separate broker process) -> `fleetflow pipeline` -> committed Parquet.
#
#   benches/scripts/end_to_end.sh [seconds] [scenario]     (default: 20 native)
#   CONNECTIONS=160 benches/scripts/end_to_end.sh ...       (load generator connections; default 64)
#
# Prints the acknowledged points, when the last of them was committed to `positions`, and the
# end-to-end rate: acknowledged points / (first request -> last point committed).
set -euo pipefail
source "$(dirname "$0")/tansu_bench.sh"
seconds="${1:-20}"
scenario="${2:-native}"
start_pipeline
until status >/dev/null 2>&1; do sleep 0.2; done
# Every request carries distinct fixes (`--distinct`: past its 20,000 bodies, about 1.4 GB, the
# load generator sends copies with their fix times shifted), so every acknowledged point is
# written to `positions`. Each round of 20,000 requests moves the fix times 14 minutes on, from a
# day ago: they stay in the past for about 2 million requests (10 minutes at 3,400 requests/s).
"$bin/ingest_load" --broker "127.0.0.1:$kport" --scenarios "$scenario" --seconds "$seconds" \
  --connections "${CONNECTIONS:-64}" --bodies 20000 --distinct >"$work/load.txt" &
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
print(f"acknowledged points: {points:.0f}; committed to positions: {written:.0f}")
print(f"load ran {loaded-start:.1f}s; the last point was committed {done-loaded:.1f}s after the load ended")
print(f"end to end: {points/(done-start):,.0f} points/s (first request -> last point in Parquet)")
names = ["load generator + ingest", "broker (Tansu)", "pipeline"]
print("CPU per point (user + system, over the run):")
for name, seconds in zip(names, cpu):
    print(f"  {name:<24} {seconds:6.1f} s  {seconds / points * 1e6:5.2f} us/point")
print(f"  {'all':<24} {sum(cpu):6.1f} s  {sum(cpu) / points * 1e6:5.2f} us/point"
      f"  (2 cores for {done - start:.1f} s = {2 * (done - start):.1f} s)")
PY
echo "peak resident memory: pipeline $(awk '/VmHWM/ {printf "%.2f GB", $2/1e6}' /proc/$pipeline_pid/status), broker $(awk '/VmHWM/ {printf "%.2f GB", $2/1e6}' /proc/$tansu_pid/status)"
echo "pipeline CPU seconds by thread (user, system; minor page faults):"
thread_cpu "$pipeline_pid"
du -sb "$work/data/positions" | awk -v p="$points" '{printf "positions on disk: %.1f MB, %.1f bytes/point (small files, before compaction)\n", $1/1e6, $1/p}'
