# Sourced by every benchmark script: the shared set-up, once.
#
# - Builds the workspace with every target, as the tests build it (building only some packages
#   resolves other dependency features and rebuilds the DataFusion stack). BENCH_NO_BUILD=1
#   skips the build (e.g. right after CI built the same commit from another checkout, whose
#   path makes cargo rebuild every workspace crate).
# - Sets `bin` (BENCH_BIN_DIR overrides it: another build's binaries, copied aside, to compare
#   two builds in alternating runs), `work` (a temp dir, removed on exit), `hport` (a free
#   port for fleetflow's HTTP) and `pids` (killed on exit).
# - Defines `free_port` and `start_run`.
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
source scripts/env.sh
if [ "${BENCH_NO_BUILD:-0}" != 1 ]; then
  cargo build --release -q --locked --workspace --all-targets
fi
bin="${BENCH_BIN_DIR:-$CARGO_TARGET_DIR/release}"
work="$(mktemp -d)"
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
hport="$(free_port)"
cleanup() { kill "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$work"; }
pids=()
trap cleanup EXIT

# `fleetflow run` (its default durable broker unless an argument says otherwise) on `hport`,
# Postgres off, data in the work dir, admin token `bench-admin`, with the extra arguments; its
# output in `$work/run.log`. Returns once `/status` answers; sets `run_pid`. Settings go in the
# environment (`FLEETFLOW_...=... start_run`).
start_run() {
  RUST_LOG="${RUN_LOG:-warn}" "$bin/fleetflow" run --http "127.0.0.1:$hport" --postgres off \
    --data-dir "$work/data" --admin-token bench-admin "$@" >"$work/run.log" 2>&1 &
  run_pid=$!
  pids+=($run_pid)
  until curl -s "127.0.0.1:$hport/status" >/dev/null 2>&1; do sleep 0.2; done
}
