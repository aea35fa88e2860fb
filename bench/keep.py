#!/usr/bin/env python3
"""Keep one benchmark run in the repository's history: bench/results/<UTC time>-<commit>-<script>.json
with the commit, the machine, the settings and every run of every row, so a regression shows in
review (bench/trend.py prints a row across commits).

    keep.py SCRIPT RECORDS [--rows ROWS] [--setting NAME=VALUE ...] [--commit C]

SCRIPT: compare, ab, hardening or chat (what wrote RECORDS, one JSON object a line):
  compare   {"broker", "row", "report"}: the row's figure is report[metric], metric from ROWS
            (compare.sh's "name|scenario|metric|flags" lines)
  ab        {"side", "row", "pass", "value"}: side A (the other binary) or B (this commit)
  hardening {"broker", "row", "run", "value", ...}
  chat      {"broker", "row", "run", "value"}: broker is the front end's (warren, rabbitmq)
Each kept entry is {"who", "row", "value"}; who is the broker, or A/B.
"""
import argparse
import datetime
import json
import os
import platform
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))


def git(*args: str) -> str:
    try:
        return subprocess.run(["git", *args], cwd=HERE, capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "?"


def machine() -> dict:
    model = "?"
    mem_gb = None
    try:
        with open("/proc/cpuinfo") as f:
            model = next((l.split(":", 1)[1].strip() for l in f if l.startswith("model name")), "?")
        with open("/proc/meminfo") as f:
            kb = next(int(l.split()[1]) for l in f if l.startswith("MemTotal"))
            mem_gb = round(kb / 1048576, 1)
    except (OSError, StopIteration, ValueError):
        pass
    return {"cpus": os.cpu_count(), "cpu": model, "memory_gb": mem_gb, "kernel": platform.release(),
            "host": platform.node()}


def entries(script: str, records: list[dict], rows: str) -> list[dict]:
    out = []
    if script == "compare":
        metric = {line.split("|")[0]: line.split("|")[2] for line in rows.splitlines() if line.count("|") >= 3}
        for r in records:
            m = metric.get(r.get("row"))
            value = (r.get("report") or {}).get(m) if m else None
            if isinstance(value, (int, float)):
                out.append({"who": r["broker"], "row": r["row"], "value": value})
    elif script == "ab":
        out = [{"who": r["side"], "row": r["row"], "value": r["value"]} for r in records]
    elif script in ("hardening", "chat"):
        out = [{"who": r["broker"], "row": r["row"], "value": r["value"]} for r in records
               if isinstance(r.get("value"), (int, float)) and not isinstance(r.get("value"), bool)]
    else:
        sys.exit(f"keep.py: unknown script {script!r}")
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("script", choices=["compare", "ab", "hardening", "chat"])
    p.add_argument("records")
    p.add_argument("--rows", default="")
    p.add_argument("--setting", action="append", default=[], help="NAME=VALUE, e.g. PASSES=3")
    p.add_argument("--commit", help="the commit the measured binary was built from (default: HEAD)")
    a = p.parse_args()
    with open(a.records) as f:
        records = [json.loads(l) for l in f if l.strip()]
    now = datetime.datetime.now(datetime.timezone.utc)
    commit = a.commit or git("rev-parse", "--short", "HEAD")
    kept = {
        "script": a.script,
        "commit": commit,
        "dirty": not a.commit and git("status", "--porcelain", "--untracked-files=no") not in ("", "?"),
        "date": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "machine": machine(),
        "settings": dict(s.split("=", 1) for s in a.setting if "=" in s),
        "entries": entries(a.script, records, a.rows),
    }
    folder = os.path.join(HERE, "results")
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, f"{now.strftime('%Y%m%dT%H%M%SZ')}-{commit}-{a.script}.json")
    with open(path, "w") as f:
        json.dump(kept, f, indent=1)
        f.write("\n")
    print(f"kept: {os.path.relpath(path)} ({len(kept['entries'])} figures)", file=sys.stderr)


if __name__ == "__main__":
    main()
