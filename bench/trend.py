#!/usr/bin/env python3
"""A benchmark row across commits, from the runs kept in bench/results/ (bench/keep.py):

    bench/trend.py fanout                 # every kept row whose name contains "fanout"
    bench/trend.py "16 B transient" --who warren

One line per kept run, oldest first: date, commit (+ if the tree was dirty), script, who ran
(broker, or A/B of an A/B run), every run's figure and their median, and the change of that
median from the previous line of the same row and who.
"""
import argparse
import glob
import json
import os
import statistics

HERE = os.path.dirname(os.path.abspath(__file__))


def number(v: float) -> str:
    """A figure as the tables print it: whole with separators from 1,000 up, else 6 digits."""
    return f"{v:,.0f}" if abs(v) >= 1000 else f"{v:,.6g}"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("row", help="a part of the row's name (case-insensitive)")
    p.add_argument("--who", help="only this broker (warren, rabbitmq) or side (A, B)")
    p.add_argument("--dir", default=os.path.join(HERE, "results"))
    a = p.parse_args()
    runs = []
    for path in glob.glob(os.path.join(a.dir, "*.json")):
        try:
            with open(path) as f:
                runs.append(json.load(f))
        except (OSError, ValueError) as e:
            print(f"skipping {path}: {e}")
    runs.sort(key=lambda r: r.get("date", ""))
    previous: dict = {}
    shown = 0
    for run in runs:
        groups: dict = {}
        for e in run.get("entries", []):
            if a.row.lower() not in e["row"].lower() or (a.who and e["who"] != a.who):
                continue
            groups.setdefault((e["row"], e["who"]), []).append(e["value"])
        for (row, who), values in sorted(groups.items()):
            median = statistics.median(values)
            before = previous.get((row, who))
            change = f"  {median / before - 1:+.1%}" if before else ""
            previous[(row, who)] = median
            commit = run.get("commit", "?") + ("+" if run.get("dirty") else "")
            figures = ", ".join(number(v) for v in values)
            print(f"{run.get('date', '?')[:16]}  {commit:9} {run.get('script', '?'):9} {who:8} {row}: "
                  f"{figures} (median {number(median)}){change}")
            shown += 1
    if not shown:
        print(f"no kept run has a row matching {a.row!r}" + (f" for {a.who}" if a.who else ""))


if __name__ == "__main__":
    main()
