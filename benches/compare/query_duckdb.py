"""DuckDB's side of query_bench: the same queries over the same Parquet files.

Usage: query_duckdb.py DATA_DIR VEHICLE DATE RUNS THREADS
Prints one JSON object: {query name: [seconds per run, ...]}.
"""
import json
import sys
import time

import duckdb

data, vehicle, day, runs, threads = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
con = duckdb.connect()
con.execute(f"SET threads = {threads}")


def table(name):
    return f"read_parquet('{data}/{name}/*/*.parquet', hive_partitioning = true)"


QUERIES = {
    "route": f"""SELECT time, lat, lon FROM {table('positions')}
                 WHERE vehicle = '{vehicle}' AND date = DATE '{day}' ORDER BY time""",
    "daily_distance": f"""SELECT date, sum(distance_m) FROM (
                 SELECT * FROM {table('trips')}
                 QUALIFY row_number() OVER (PARTITION BY company, vehicle, trip_id ORDER BY version DESC) = 1)
                 WHERE NOT deleted GROUP BY date ORDER BY date""",
    "daily_points": f"""SELECT date, count(*), avg(speed_kmh) FROM {table('positions')}
                 GROUP BY date ORDER BY date""",
}
# The rollups' questions, answered from positions and trips (DuckDB has no rollups): the same
# SQL as query_bench's `*_scan` queries.
HOURLY_CHART = f"""SELECT date_trunc('hour', time) AS hour, count(*), avg(speed_kmh)
                 FROM {table('positions')} WHERE NOT invalid AND NOT jump GROUP BY 1 ORDER BY 1"""
TRIPS_LATEST = f"""(SELECT * FROM {table('trips')}
                 QUALIFY row_number() OVER (PARTITION BY company, vehicle, trip_id ORDER BY version DESC) = 1
                 AND NOT deleted)"""
VEHICLE_DAILY = f"""SELECT p.company, p.vehicle, p.date, t.trips, t.distance_m, p.fixes, p.max_speed_kmh FROM
     (SELECT company, vehicle, date, count(*) AS fixes, max(speed_kmh) AS max_speed_kmh
      FROM {table('positions')} WHERE NOT invalid AND NOT jump GROUP BY 1, 2, 3) p
     LEFT JOIN (SELECT company, vehicle, date, count(*) AS trips, sum(distance_m) AS distance_m
      FROM {TRIPS_LATEST} GROUP BY 1, 2, 3) t
     ON p.company = t.company AND p.vehicle = t.vehicle AND p.date = t.date
     ORDER BY p.vehicle, p.date"""
QUERIES["hourly_chart"] = HOURLY_CHART
QUERIES["vehicle_daily"] = VEHICLE_DAILY

out = {}
for name, sql in QUERIES.items():
    con.execute(sql).fetchall()  # warm: footers and the OS page cache, as for fleetflow
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        con.execute(sql).fetchall()
        times.append(time.perf_counter() - start)
    out[name] = times
print(json.dumps(out))
