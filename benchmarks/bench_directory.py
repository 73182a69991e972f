"""How long a postal directory takes to load in a fresh worker process, and to look a code up.

Each load runs in a new Python process (as a worker starts), after numpy and docsort are
imported: first with an empty cache folder (the package's own data read and the compact form
built), then again with the cache the first run left. Lookups are timed on a loaded directory.

    python benchmarks/bench_directory.py --country US --country DE
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

_LOAD = """
import json, sys, time
from docsort.page import directory
import numpy
start = time.perf_counter()
d = directory.load(sys.argv[1])
loaded = time.perf_counter() - start
codes = d.codes()[:: max(1, len(d) // 1000)]
start = time.perf_counter()
for _ in range(10):
    for code in codes:
        _ = code in d, d.place(code)
lookup = (time.perf_counter() - start) / (10 * len(codes))
print(json.dumps({"load_s": loaded, "lookup_ms": 1000 * lookup, "codes": len(d)}))
"""


def measure(country: str, cache: str) -> dict:
    env = {**os.environ, "DOCSORT_CACHE": cache}
    out = subprocess.run([sys.executable, "-c", _LOAD, country], capture_output=True, text=True, env=env, check=True)
    return json.loads(out.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--country", action="append", default=None)
    parser.add_argument("--repeat", type=int, default=3, help="cached loads per country (the worst is reported)")
    args = parser.parse_args()
    report = {}
    for country in args.country or ["US", "DE"]:
        with tempfile.TemporaryDirectory() as cache:
            first = measure(country, cache)
            again = [measure(country, cache) for _ in range(args.repeat)]
        report[country] = {"codes": first["codes"], "first_load_s": round(first["load_s"], 3),
                           "cached_load_s_worst": round(max(r["load_s"] for r in again), 3),
                           "lookup_ms_worst": round(max(r["lookup_ms"] for r in again + [first]), 5)}
    report["measured"] = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
