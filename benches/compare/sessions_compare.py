"""Gap-based trip sessionization, side by side on the same input and machine, in one run:
fleetflow's dataflow vs DuckDB SQL (window functions, what an analyst does in batch) vs
Pathway (a streaming engine on differential dataflow, `windowby` with a session window).

    $(scripts/python-env) benches/compare/sessions_compare.py [--vehicles 4000] [--fixes 2500]

The input is fleetflow's seeded synthetic fleet, exported by `sessionize_bench --export`: the
very records fleetflow's run sessionizes, in arrival order (late and duplicate deliveries
included). DuckDB and Pathway compute gap sessions (a new session after more than GAP seconds
without a fix, per vehicle, duplicates removed); fleetflow computes its full trip rules (gap,
dwell, ignition, quality filters), which is strictly more work. Pathway runs on a prefix of the
input (it is ~1000x slower per point); its rate is per point of that prefix.
"""

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def bench_binary():
    target = os.environ.get("CARGO_TARGET_DIR") or os.path.expanduser("~/.cache/fleetflow/target")
    return os.path.join(target, "release", "sessionize_bench")


def run_fleetflow(args):
    """Points/s of fleetflow's dataflow at 1 and 2 workers, from sessionize_bench."""
    out = subprocess.run(
        [bench_binary(), "--vehicles", str(args.vehicles), "--fixes-per-vehicle", str(args.fixes),
         "--gap-secs", str(args.gap), "--only", "dataflow"],
        check=True, capture_output=True, text=True).stdout
    rates = {}
    for line in out.splitlines():
        m = re.match(r"dataflow \(decode \+ exchange \+ sessionize\), (\d) worker\(s\): ([0-9.]+)M fixes/s", line)
        if m:
            rates[int(m.group(1))] = float(m.group(2)) * 1e6
    return rates


DUCKDB_SQL = """
WITH pts AS (SELECT DISTINCT vehicle, time_ms FROM fixes),
marked AS (
  SELECT vehicle, time_ms,
         CASE WHEN time_ms - lag(time_ms) OVER w > {gap_ms} THEN 1 ELSE 0 END AS brk
  FROM pts WINDOW w AS (PARTITION BY vehicle ORDER BY time_ms)),
numbered AS (
  SELECT vehicle, time_ms,
         sum(brk) OVER (PARTITION BY vehicle ORDER BY time_ms ROWS UNBOUNDED PRECEDING) AS session
  FROM marked)
SELECT vehicle, session, min(time_ms) AS start_ms, max(time_ms) AS end_ms, count(*) AS points
FROM numbered GROUP BY vehicle, session
"""


def run_duckdb(csv_path, gap_s, threads):
    import duckdb
    con = duckdb.connect()
    con.execute(f"SET threads={threads}")
    con.execute(f"CREATE TABLE fixes AS SELECT * FROM read_csv('{csv_path}', header=true)")
    n = con.execute("SELECT count(*) FROM fixes").fetchone()[0]
    started = time.perf_counter()
    con.execute(f"CREATE TABLE sessions AS {DUCKDB_SQL.format(gap_ms=gap_s * 1000)}")
    secs = time.perf_counter() - started
    sessions = con.execute("SELECT count(*) FROM sessions").fetchone()[0]
    return n, secs, sessions


def run_pathway(csv_path, gap_s, limit):
    import pathway as pw
    prefix = csv_path + f".first{limit}.csv"
    with open(csv_path) as src, open(prefix, "w") as dst:
        for i, line in enumerate(src):
            if i > limit:
                break
            dst.write(line)

    class Fix(pw.Schema):
        vehicle: str
        time_ms: int
        lat: float
        lon: float
        speed_kmh: float

    fixes = pw.io.csv.read(prefix, schema=Fix, mode="static")
    distinct = fixes.groupby(fixes.vehicle, fixes.time_ms).reduce(fixes.vehicle, fixes.time_ms)
    sessions = distinct.windowby(
        distinct.time_ms,
        window=pw.temporal.session(max_gap=gap_s * 1000),
        instance=distinct.vehicle,
    ).reduce(
        vehicle=pw.this._pw_instance,
        start_ms=pw.this._pw_window_start,
        end_ms=pw.this._pw_window_end,
        points=pw.reducers.count(),
    )
    out = prefix + ".sessions.csv"
    pw.io.csv.write(sessions, out)
    started = time.perf_counter()
    pw.run(monitoring_level=pw.MonitoringLevel.NONE)
    secs = time.perf_counter() - started
    with open(out) as f:
        rows = sum(1 for _ in f) - 1
    return min(limit, count_lines(csv_path)), secs, rows


def count_lines(path):
    with open(path) as f:
        return sum(1 for _ in f) - 1


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--vehicles", type=int, default=4000)
    p.add_argument("--fixes", type=int, default=2500, help="fixes per vehicle")
    p.add_argument("--gap", type=int, default=3600, help="session gap, seconds")
    p.add_argument("--pathway-points", type=int, default=100_000)
    p.add_argument("--duckdb-threads", type=int, default=2)
    args = p.parse_args()

    subprocess.run(["cargo", "build", "--release", "-q", "-p", "fleetflow-benches", "--bin", "sessionize_bench"],
                   check=True, cwd=ROOT)
    with tempfile.TemporaryDirectory() as tmp:
        csv_path = os.path.join(tmp, "fixes.csv")
        subprocess.run([bench_binary(), "--vehicles", str(args.vehicles), "--fixes-per-vehicle", str(args.fixes),
                        "--export", csv_path], check=True)
        n_all = count_lines(csv_path)
        print(f"input: {n_all:,} fixes ({args.vehicles} vehicles, arrival order, late and duplicate deliveries)")

        ff = run_fleetflow(args)
        n, secs, sessions = run_duckdb(csv_path, args.gap, args.duckdb_threads)
        duck = n / secs
        print(f"duckdb {args.duckdb_threads} threads: {n:,} fixes in {secs:.2f}s = {duck:,.0f} fixes/s ({sessions:,} sessions)")
        n_pw, secs_pw, sessions_pw = run_pathway(csv_path, args.gap, args.pathway_points)
        pathway = n_pw / secs_pw
        print(f"pathway 1 thread: {n_pw:,} fixes in {secs_pw:.2f}s = {pathway:,.0f} fixes/s ({sessions_pw:,} sessions)")
        for workers, rate in sorted(ff.items()):
            print(f"fleetflow {workers} worker(s): {rate:,.0f} fixes/s")
        best = max(ff.values())
        print()
        print("| engine | fixes/s | fleetflow (2 workers) is ... x faster |")
        print("|---|---:|---:|")
        print(f"| DuckDB SQL, {args.duckdb_threads} threads, {n:,} fixes | {duck:,.0f} | {best / duck:.1f} |")
        print(f"| Pathway session window, 1 thread, {n_pw:,} fixes | {pathway:,.0f} | {best / pathway:.0f} |")
        print(f"| fleetflow dataflow, 1 worker, {n_all:,} fixes | {ff.get(1, 0):,.0f} | |")
        print(f"| fleetflow dataflow, 2 workers, {n_all:,} fixes | {ff.get(2, 0):,.0f} | 1 |")


if __name__ == "__main__":
    sys.exit(main())
