#!/usr/bin/env python3
"""Rebuilds bench/out/results.json from bench.py's printed log (every measurement is printed as
it is taken), for a run whose final section failed. Usage: from_log.py LOG"""

import ast
import json
import os
import re
import sys

import report

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))


def parse(log):
    results = {"machine": {"cpus": os.cpu_count(), "kernel": os.uname().release,
                           "cpu": next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")},
               "command": "bench/run (bench/bench.py, 3 repetitions; results rebuilt from its log by bench/from_log.py)",
               "runs": []}
    for line in open(log):
        m = re.match(r"(unix|tcp) c=(\d+)\s+(\S+)\s+([\d.]+) req/s\s+([\d.]+) us/req mean\s+([\d.]+) us p99\s+(\d+) us", line)
        if m:
            results["runs"].append({"transport": m[1], "concurrency": int(m[2]), "server": m[3], "path": "/fact",
                                    "rps": float(m[4]), "cpu_us_per_req": float(m[5]), "mean_us": float(m[6]),
                                    "p99_us": int(m[7]), "rss_kib": 0})
            continue
        m = re.match(r"unix c=64\s+printerfacts (\S+)\s+([\d.]+) req/s\s+([\d.]+) us/req", line)
        if m:
            results["runs"].append({"transport": "unix", "concurrency": 64, "server": "printerfacts", "path": m[1],
                                    "rps": float(m[2]), "cpu_us_per_req": float(m[3]), "mean_us": 0, "p99_us": 0, "rss_kib": 0})
            continue
        m = re.match(r"10k idle keep-alive: (\S+)\s+(\d+) bytes/connection", line)
        if m:
            results.setdefault("idle_conns", {})[m[1]] = {"bytes_per_conn": float(m[2])}
        if line.startswith("RSS idle (KiB):"):
            results["rss_idle_kib"] = ast.literal_eval(line.split(":", 1)[1].strip())
        if line.startswith("req/s by --threads:"):
            results["threads2"] = {str(k): v for k, v in ast.literal_eval(line.split(":", 1)[1].strip()).items()}
    return results


if __name__ == "__main__":
    results = parse(sys.argv[1])
    os.makedirs(os.path.join(ROOT, "bench", "out"), exist_ok=True)
    with open(os.path.join(ROOT, "bench", "out", "results.json"), "w") as f:
        json.dump(results, f, indent=1)
    report.write(results, ROOT)
