#!/usr/bin/env bash
# Issue 37's load run: N devices (default 200), each sending `GET /?id=&lat=&lon=` (no
# timestamp, as simple trackers do) once a second for S seconds (default 60) to the dedicated
# OsmAnd port of a default `fleetflow run` (durable broker). Reports the answers and their
# latency, then waits until `positions` holds every fix and the live view every device.
#
#   benches/scripts/osmand_load.sh [devices] [seconds]
set -euo pipefail
source "$(dirname "$0")/bench_common.sh"
devices="${1:-200}"
seconds="${2:-60}"
oport="$(free_port)"
FLEETFLOW_INGEST__OSMAND_LISTEN="127.0.0.1:$oport" FLEETFLOW_PIPELINE__FLUSH_SECS=1 start_run
python3 - "$oport" "$hport" "$devices" "$seconds" <<'PY'
import http.client, json, sys, threading, time
oport, hport, devices, seconds = (int(a) for a in sys.argv[1:5])
statuses, latencies, lock = {}, [], threading.Lock()
start = time.time() + 1.0

def device(d):
    conn = http.client.HTTPConnection("127.0.0.1", oport, timeout=30)
    for i in range(seconds):
        time.sleep(max(0.0, start + i + d / devices - time.time()))
        lat, lon = 37.5 + d * 1e-3 + i * 1e-5, 127.0 + i * 1e-5
        sent = time.time()
        try:
            conn.request("GET", f"/?id=tracker-{d:04}&lat={lat:.6f}&lon={lon:.6f}")
            response = conn.getresponse()
            response.read()
            status = response.status
        except Exception as error:
            status = type(error).__name__
            conn = http.client.HTTPConnection("127.0.0.1", oport, timeout=30)
        with lock:
            statuses[status] = statuses.get(status, 0) + 1
            latencies.append(time.time() - sent)

threads = [threading.Thread(target=device, args=(d,)) for d in range(devices)]
for t in threads: t.start()
for t in threads: t.join()
latencies.sort()
q = lambda p: latencies[min(len(latencies) - 1, int(p * len(latencies)))] * 1e3
print(f"requests: {len(latencies)} over {seconds} s from {devices} devices; answers: {statuses}")
print(f"latency ms: p50 {q(0.5):.1f}, p99 {q(0.99):.1f}, max {latencies[-1] * 1e3:.1f}")

def admin(method, path, body=None):
    conn = http.client.HTTPConnection("127.0.0.1", hport, timeout=60)
    conn.request(method, path, body=body, headers={"Authorization": "Bearer bench-admin", "Content-Type": "application/json"})
    return json.loads(conn.getresponse().read())

want = devices * seconds
waited = time.time()
while True:
    rows = admin("POST", "/v1/sql", json.dumps({"sql": "select count(*) as n, count(distinct vehicle) as v, sum(case when flags & 16 <> 0 then 1 else 0 end) as server_time from positions"}))
    row = rows["rows"][0] if "rows" in rows else rows
    live = len(admin("GET", "/v1/live/vehicles")["vehicles"])
    if row.get("n") == want and live == devices:
        break
    if time.time() - waited > 120:
        sys.exit(f"after 120 s: positions {row}, live vehicles {live}; want {want} fixes, {devices} vehicles")
    time.sleep(0.5)
print(f"positions: {row['n']} fixes of {row['v']} devices ({row['server_time']} at the time of receipt), "
      f"live view: {live} devices, {time.time() - waited:.1f} s after the load")
ok = statuses.get(200, 0) == want
sys.exit(0 if ok else f"not every request answered 200: {statuses}")
PY
