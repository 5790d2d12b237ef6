#!/usr/bin/env bash
# The dashboard under a large fleet: `fleetflow run` with N emulated vehicles (Monicar's shape: a
# 60-point batch per vehicle every 60 s), the page open in headless Chromium, and what the
# browser measured over a window: frame intervals, long tasks, draw time per frame, time to
# apply an update, and update latency (asking for the changes -> next frame drawn).
#
#   benches/scripts/dashboard.sh [vehicles] [seconds]      (default: 15000 60)
#
# Needs scripts/install-chromium (Debian's Chromium and playwright-core).
set -euo pipefail
source "$(dirname "$0")/bench_common.sh"
vehicles="${1:-15000}"
seconds="${2:-60}"
scripts/install-chromium
start_run
RUST_LOG=error "$bin/fleetflow" emulate --vehicles "$vehicles" --target "http://127.0.0.1:$hport" \
  --report-every 10 >"$work/emulate.log" 2>&1 &
pids+=($!)
# Every vehicle has posted once after a minute (they start spread over their first period).
sleep 65
echo "live vehicles: $(curl -s -H 'Authorization: Bearer bench-admin' "127.0.0.1:$hport/v1/live/summary" | python3 -c 'import json,sys; print(json.load(sys.stdin)["total"]["all"])')"
node dashboard/tests/dashboard_check.mjs measure "http://127.0.0.1:$hport/" bench-admin "$seconds"
tail -n 2 "$work/emulate.log"
