"""Replays real AIS vessel tracks through fleetflow's ingest endpoint.

The tracks are MarineCadastre AIS data (public domain) shipped in the PyPI package
`tracktable-data`: `NYHarbor_2020_12_first_week.traj`, New York Harbor, 1-7 December 2020,
513 trajectories. Each vessel (MMSI) becomes a vehicle `mmsi-<MMSI>`; its fixes are posted in
event-time order, all vessels interleaved, as NDJSON batches to `/v1/ingest`.

    $(scripts/python-env) datasets/ais_replay.py --target http://127.0.0.1:8080 [--token T]

AIS position reports in this file carry no speed, so the replay sends the speed implied by the
previous fix of the same vessel (km/h), which the trip rules use to tell a vessel at rest from
one under way. Vessels never report ignition: their trips come from the dwell and gap rules.
"""

import argparse
import datetime as dt
import json
import math
import os
import sys
import time
import urllib.error
import urllib.request
from collections import defaultdict

from tqdm import tqdm

DEFAULT_FILE = "NYHarbor_2020_12_first_week.traj"
EARTH_RADIUS_M = 6_371_008.8


def data_file(name):
    import tracktable_data
    return os.path.join(os.path.dirname(tracktable_data.__file__), "python_example_data", name)


def is_time(text):
    return len(text) == 19 and text[4] == "-" and text[10] == " "


def parse_traj(path):
    """{mmsi: [(time_ms, lat, lon)]} from a tracktable .traj file."""
    tracks = defaultdict(dict)
    with open(path) as f:
        for line in f:
            fields = line.rstrip("\n").split(",")
            # A header (`*T*,uuid,...,*P*,...`), then groups of mmsi, "YYYY-MM-DD HH:MM:SS", lon, lat.
            start = next(i for i in range(len(fields) - 1) if is_time(fields[i + 1]))
            for i in range(start, len(fields) - 3, 4):
                mmsi, stamp, lon, lat = fields[i:i + 4]
                t = dt.datetime.strptime(stamp, "%Y-%m-%d %H:%M:%S").replace(tzinfo=dt.timezone.utc)
                tracks[mmsi][int(t.timestamp() * 1000)] = (float(lat), float(lon))
    return {m: sorted((t, la, lo) for t, (la, lo) in fixes.items()) for m, fixes in tracks.items()}


def haversine_m(a, b):
    la1, lo1, la2, lo2 = map(math.radians, (a[0], a[1], b[0], b[1]))
    h = math.sin((la2 - la1) / 2) ** 2 + math.cos(la1) * math.cos(la2) * math.sin((lo2 - lo1) / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(h)))


def items(tracks):
    """Every fix as a native ingest item, in event-time order across vessels."""
    out = []
    for mmsi, fixes in tracks.items():
        prev = None
        for t, lat, lon in fixes:
            speed = 0.0
            if prev is not None and t > prev[0]:
                speed = haversine_m((prev[1], prev[2]), (lat, lon)) / ((t - prev[0]) / 1000) * 3.6
            out.append({"vehicle": f"mmsi-{mmsi}", "time": t, "lat": lat, "lon": lon,
                        "speed": round(min(speed, 250.0), 1), "gps": "A"})
            prev = (t, lat, lon)
    out.sort(key=lambda item: (item["time"], item["vehicle"]))
    return out


def post(target, token, batch):
    body = "\n".join(json.dumps(item) for item in batch).encode()
    headers = {"Content-Type": "application/x-ndjson"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    for attempt in range(20):
        request = urllib.request.Request(target + "/v1/ingest", data=body, headers=headers, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                return response.status
        except urllib.error.HTTPError as e:
            if e.code in (429, 503):
                time.sleep(float(e.headers.get("Retry-After", "1")))
                continue
            sys.exit(f"ingest refused a batch: {e.code} {e.read().decode(errors='replace')}")
        except urllib.error.URLError as e:
            time.sleep(min(2 ** attempt * 0.1, 5))
            last = e
    sys.exit(f"ingest unreachable: {last}")


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--target", default="http://127.0.0.1:8080")
    p.add_argument("--token", help="company ingest token (when ingest auth is on)")
    p.add_argument("--file", default=DEFAULT_FILE, help="a .traj file of tracktable-data")
    p.add_argument("--batch", type=int, default=1000, help="fixes per request")
    args = p.parse_args()

    tracks = parse_traj(data_file(args.file))
    replay = items(tracks)
    first = dt.datetime.fromtimestamp(replay[0]["time"] / 1000, dt.timezone.utc)
    last = dt.datetime.fromtimestamp(replay[-1]["time"] / 1000, dt.timezone.utc)
    print(f"{args.file}: {len(tracks)} vessels, {len(replay)} fixes, {first:%Y-%m-%d %H:%M} to {last:%Y-%m-%d %H:%M} UTC")
    started = time.perf_counter()
    with tqdm(total=len(replay), unit="fix", unit_scale=True) as bar:
        for i in range(0, len(replay), args.batch):
            batch = replay[i:i + args.batch]
            post(args.target.rstrip("/"), args.token, batch)
            bar.update(len(batch))
    secs = time.perf_counter() - started
    print(f"replayed {len(replay)} fixes in {secs:.1f}s ({len(replay) / secs:,.0f} fixes/s); every batch acknowledged")


if __name__ == "__main__":
    main()
