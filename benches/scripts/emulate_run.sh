#!/usr/bin/env bash
# The README's two commands under Monicar's fleet, sped up: `fleetflow run` (default flags but
# for the broker) and `fleetflow emulate --vehicles N --speedup X` for a number of seconds, then
# how long the pipeline takes to commit everything ingest delivered ("caught up").
#
#   benches/scripts/emulate_run.sh [durable|memory] [vehicles] [speedup] [seconds]
#                                  (default: durable 15000 20 60)
#   GEOFENCES=N benches/scripts/emulate_run.sh ...
#       first creates N geofences of the fleet's company over the emulator's city.
#   WEBHOOK=dead|live [WEBHOOK_EVENTS=trip_end,...] benches/scripts/emulate_run.sh ...
#       subscribes the fleet's company to every event kind (or those listed), at a port nothing listens on (dead:
#       every event is retried, then dead-lettered) or at `fleetflow webhook-test` (live), to
#       compare ingest's ack latency with and without webhook delivery.
#
# Prints the emulator's last reports (requests, points/s, errors, p50/p99 of the last
# interval), the worst interval p99, every interval's p99 and their median after the first, the
# catch-up time, the broker log's size on disk, and the CPU seconds each group of threads used.
set -euo pipefail
source "$(dirname "$0")/bench_common.sh"
broker="${1:-durable}"
vehicles="${2:-15000}"
speedup="${3:-20}"
seconds="${4:-60}"
start_run --broker "$broker"
case "${WEBHOOK:-none}" in
  none) ;;
  dead | live)
    wport="$(free_port)"
    # WEBHOOK_EVENTS=trip_end,overspeed: the kinds subscribed (default: every event kind).
    events="$(python3 -c 'import json, sys; print(json.dumps(sys.argv[1].split(",")))' \
      "${WEBHOOK_EVENTS:-ignition_on,ignition_off,trip_start,trip_end,overspeed,maintenance_due}")"
    if [ "$WEBHOOK" = live ]; then
      "$bin/fleetflow" webhook-test --listen "127.0.0.1:$wport" >"$work/receiver.log" 2>&1 &
      pids+=($!)
    fi
    curl -sf -H "Authorization: Bearer bench-admin" -H "Content-Type: application/json" \
      -d "{\"url\": \"http://127.0.0.1:$wport/hook\", \"company\": \"default\", \"events\": $events}" \
      "127.0.0.1:$hport/v1/webhooks" >/dev/null
    ;;
  *) echo "WEBHOOK is none, dead or live" >&2; exit 2 ;;
esac
if [ "${GEOFENCES:-0}" -gt 0 ]; then
  # GEOFENCES=N: N geofences of the fleet's company over the emulator's city (12 km around
  # Seoul City Hall): circles of 50-200 m and squares of 100-400 m, as customer sites and depots.
  python3 - "$GEOFENCES" "$hport" <<'PY'
import json, math, random, sys, urllib.request
n, port = int(sys.argv[1]), sys.argv[2]
rng = random.Random(42)
fences = []
for i in range(n):
    lat = 37.5665 + rng.uniform(-0.108, 0.108)
    lon = 126.9780 + rng.uniform(-0.136, 0.136)
    if i % 2 == 0:
        fences.append({"name": f"site {i}", "company": "default",
                       "center": {"lat": lat, "lon": lon}, "radius_m": rng.uniform(50, 200)})
    else:
        d = rng.uniform(100, 400) / 111_000
        e = d / math.cos(math.radians(lat))
        ring = [[lon, lat], [lon + e, lat], [lon + e, lat + d], [lon, lat + d], [lon, lat]]
        fences.append({"name": f"depot {i}", "company": "default",
                       "geometry": {"type": "Polygon", "coordinates": [ring]}})
for at in range(0, n, 5000):
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/v1/geofences", data=json.dumps(fences[at:at + 5000]).encode(),
        headers={"Authorization": "Bearer bench-admin", "Content-Type": "application/json"})
    urllib.request.urlopen(request).read()
print(f"{n} geofences created")
PY
  sleep 2
fi
RUST_LOG=error "$bin/fleetflow" emulate --vehicles "$vehicles" --speedup "$speedup" \
  --duration "$seconds" --target "http://127.0.0.1:$hport" --report-every 5 >"$work/emulate.log" 2>&1
ended=$(date +%s.%N)
# Caught up: the committed offsets reach the records ingest delivered.
caught() {
  curl -s -H "Authorization: Bearer bench-admin" "127.0.0.1:$hport/status" | python3 -c '
import json, sys
s = json.load(sys.stdin)
committed = sum(s["pipeline"]["committed_offsets"].values())
delivered = s["ingest"]["records_delivered"]
print("yes" if committed >= delivered else "no", committed, delivered)'
}
until [ "$(caught | cut -d" " -f1)" = yes ]; do sleep 0.1; done
caught_up=$(python3 -c "import time; print(f'{time.time() - $ended:.1f}')")
echo "broker: $broker, vehicles: $vehicles, speedup: $speedup, seconds: $seconds"
grep -E '^(t=|total)' "$work/emulate.log" | tail -n 3
echo "worst interval p99: $(grep -oE 'p99=[0-9.]+' "$work/emulate.log" | cut -d= -f2 | sort -n | tail -n 1) ms"
# Every 5 s interval's p99, and their median past the first (start-up) interval: the total's
# p99 mixes start-up into the steady state.
p99s="$(grep -E '^t=' "$work/emulate.log" | grep -oE 'p99=[0-9.]+' | cut -d= -f2)"
echo "interval p99s, in order: $(echo $p99s) ms"
echo "median interval p99 after the first: $(echo "$p99s" | tail -n +2 | sort -n \
  | awk '{ v[NR] = $1 } END { print (NR ? v[int((NR + 1) / 2)] : "none") }') ms"
echo "caught up ${caught_up} s after the load ended ($(caught | cut -d" " -f2) records committed)"
echo "broker log on disk: $(du -sh "$work/data/broker" 2>/dev/null | cut -f1 || echo none)"
echo "peak resident memory: $(awk '/VmHWM/ {printf "%.2f GB", $2/1e6}' /proc/$run_pid/status)"
if [ "${GEOFENCES:-0}" -gt 0 ]; then
  curl -s -H "Authorization: Bearer bench-admin" "127.0.0.1:$hport/v1/sql" \
    -d '{"sql": "SELECT count(*) AS events, count(DISTINCT geofence_id) AS geofences FROM events WHERE kind IN ('"'"'geofence_enter'"'"', '"'"'geofence_exit'"'"')"}' \
    | head -c 300; echo
fi
if [ "${WEBHOOK:-none}" != none ]; then
  curl -s -H "Authorization: Bearer bench-admin" "127.0.0.1:$hport/status" | python3 -c '
import json, sys
w = json.load(sys.stdin)["webhooks"]
names = ["dispatched", "delivered", "failed_attempts", "dead_letters", "owed"]
print("webhooks (" + sys.argv[1] + " receiver): " + ", ".join(n + " " + str(w[n]) for n in names))' "$WEBHOOK"
fi
# CPU seconds per thread name (digits dropped), busiest first: where the process's CPU went,
# a measure with less noise than the latency percentiles.
python3 - "$run_pid" <<'PY'
import os, re, sys
pid, tick = sys.argv[1], os.sysconf("SC_CLK_TCK")
groups = {}
for task in os.listdir(f"/proc/{pid}/task"):
    try:
        stat = open(f"/proc/{pid}/task/{task}/stat").read()
    except OSError:
        continue
    name = re.sub(r"[-_:]?\d+$", "", stat[stat.index("(") + 1 : stat.rindex(")")])
    fields = stat[stat.rindex(")") + 2 :].split()
    groups[name] = groups.get(name, 0) + (int(fields[11]) + int(fields[12])) / tick
total = sum(groups.values())
print(f"cpu: {total:.1f} s in all; " + ", ".join(
    f"{n} {s:.1f}" for n, s in sorted(groups.items(), key=lambda g: -g[1]) if s >= 0.1))
PY
