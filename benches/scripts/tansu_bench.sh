# Sourced by the benchmarks that run fleetflow against Tansu (end_to_end.sh, pipeline_catchup.sh):
# the common set-up (`bench_common.sh`), then Tansu (`fleetflow broker`; memory storage unless
# BENCH_BROKER_STORAGE=sqlite) on a free port, and the helpers they share. Sets `kport` and
# `tansu_pid` besides what `bench_common.sh` sets.
source "$(dirname "${BASH_SOURCE[0]}")/bench_common.sh"
kport="$(free_port)"
# `fleetflow broker`: the Tansu library `fleetflow run` embeds, as its own process.
# BENCH_BROKER_STORAGE: `memory://tansu/` (default) or `sqlite` (durable, in the work dir).
case "${BENCH_BROKER_STORAGE:-memory}" in
  sqlite) broker_storage=(--dir "$work/broker") ;;
  *) broker_storage=(--storage memory://tansu/) ;;
esac
RUST_LOG=warn "$bin/fleetflow" broker --listen "127.0.0.1:$kport" "${broker_storage[@]}" >"$work/tansu.log" 2>&1 &
tansu_pid=$!
pids+=($tansu_pid)
sleep 1

# Starts `fleetflow pipeline` against Tansu, status on `hport`; sets `pipeline_pid` (process 0)
# and `cluster_pids` (every process). BENCH_PROCESSES=N (default 1) runs it as a timely cluster
# of N processes on this machine, each with BENCH_WORKERS workers (default: pipeline.workers, the
# cores); process 0 reports on `hport`.
start_pipeline() {
  local processes="${BENCH_PROCESSES:-1}" addresses="" i http
  local workers=()
  [ -n "${BENCH_WORKERS:-}" ] && workers=(--workers "$BENCH_WORKERS")
  local cluster=()
  if [ "$processes" -gt 1 ]; then
    for ((i = 0; i < processes; i++)); do addresses+="${addresses:+,}127.0.0.1:$(free_port)"; done
  fi
  cluster_pids=()
  for ((i = 0; i < processes; i++)); do
    [ "$processes" -gt 1 ] && cluster=(--process "$i" --cluster "$addresses")
    http="127.0.0.1:$hport"
    [ "$i" -gt 0 ] && http="127.0.0.1:0"
    RUST_LOG=${PIPELINE_LOG:-warn} "$bin/fleetflow" pipeline --brokers "127.0.0.1:$kport" --data-dir "$work/data" \
      --http "$http" --postgres off --admin-token bench-admin "${workers[@]}" "${cluster[@]}" \
      >"$work/pipeline-$i.log" 2>&1 &
    cluster_pids+=($!)
    pids+=($!)
  done
  pipeline_pid=${cluster_pids[0]}
  ln -sf "$work/pipeline-0.log" "$work/pipeline.log"
}

status() { curl -s -H "Authorization: Bearer bench-admin" "127.0.0.1:$hport/status"; }

# Waits until the pipeline has committed `$1` records (the sum of its committed offsets). If
# the sum stops moving for `STALL_SECS` (default 120) while records remain, prints what the
# pipeline is doing (its status, each thread's state and wait channel, its log's tail) and fails:
# a stalled commit is a bug to catch in the act, not a benchmark to wait out.
wait_committed() {
  local committed=0 last=-1 since
  since=$(date +%s)
  while [ "$committed" -lt "$1" ]; do
    sleep 0.2
    committed=$(status 2>/dev/null \
      | python3 -c 'import json,sys; print(sum(json.load(sys.stdin)["pipeline"]["committed_offsets"].values()))' 2>/dev/null \
      || echo 0)
    if [ "$committed" != "$last" ]; then
      last=$committed
      since=$(date +%s)
    elif [ $(( $(date +%s) - since )) -ge "${STALL_SECS:-120}" ]; then
      echo "STALLED: committed $committed of $1 records, unchanged for ${STALL_SECS:-120} s" >&2
      status >&2 || true
      echo >&2
      for task in /proc/"$pipeline_pid"/task/*; do
        printf '%s %s %s\n' "$(cat "$task/comm")" "$(awk '{print $3}' "$task/stat")" "$(cat "$task/wchan")"
      done >&2
      tail -20 "$work/pipeline.log" >&2
      return 1
    fi
  done
}

# CPU seconds (user + system) a process has used so far.
cpu() { awk -v hz="$(getconf CLK_TCK)" '{printf "%.2f", ($14 + $15) / hz}' "/proc/$1/stat"; }

# Prints the CPU seconds of each thread of process `$1` (user, system; minor page faults), by
# thread name, the busiest first. System time in the pipeline's threads is mostly the kernel
# zeroing memory touched for the first time (RESULTS.md, sessions 19 and 20).
thread_cpu() {
  local hz; hz="$(getconf CLK_TCK)"
  for task in /proc/"$1"/task/*; do
    awk -v hz="$hz" '{printf "%s %.2f %.2f %d\n", $2, $14 / hz, $15 / hz, $10}' "$task/stat"
  done | awk '{u[$1] += $2; s[$1] += $3; f[$1] += $4} END {for (t in u) printf "  %-22s %7.2f %7.2f %9d\n", t, u[t], s[t], f[t]}' \
    | sort -k2 -n -r | head -6
}

# The points and records of ingest_load's summary line in `$1`.
acked_points() { sed -n 's/^acknowledged in total: .* requests, \([0-9]*\) points.*/\1/p' "$1"; }
acked_records() { sed -n 's/^acknowledged in total: .* points, \([0-9]*\) records.*/\1/p' "$1"; }
