#!/usr/bin/env python3
"""The tables of bench/compare.sh from its results.jsonl: table.py RESULTS ROWS (one "name|scenario|metric|flags" a line)."""
import json, statistics, sys
reports = {}
for line in open(sys.argv[1]):
    r = json.loads(line)
    reports.setdefault((r["row"], r["broker"]), []).append(r["report"])
rows = [l.split("|") for l in sys.argv[2].splitlines() if l]

def med(row, broker, key):
    vals = [x[key] for x in reports.get((row, broker), []) if x.get(key) is not None]
    return statistics.median(vals) if vals else None

def num(v, scale=1.0, fmt="{:,.0f}"):
    return "n/a" if v is None else fmt.format(v / scale)

print("| scenario | warren | RabbitMQ | warren / RabbitMQ | broker CPU (w / R) | broker RSS (w / R) | generator CPU (w / R) |")
print("|---|---:|---:|---:|---:|---:|---:|")
for name, scenario, metric, _ in rows:
    w, q = med(name, "warren", metric), med(name, "rabbitmq", metric)
    scale = 1000.0 if metric == "broker_rss_per_connection" else 1.0
    ratio = "n/a" if not w or not q else f"{w / q:.2f}x"
    cpu = f"{num(med(name, 'warren', 'broker_cpu_percent'))}% / {num(med(name, 'rabbitmq', 'broker_cpu_percent'))}%"
    rss = f"{num(med(name, 'warren', 'broker_rss_bytes'), 1e6)} / {num(med(name, 'rabbitmq', 'broker_rss_bytes'), 1e6)} MB"
    gen = f"{num(med(name, 'warren', 'client_cpu_percent'))}% / {num(med(name, 'rabbitmq', 'client_cpu_percent'))}%"
    print(f"| {name} | {num(w, scale, '{:,.1f}' if scale > 1 else '{:,.0f}')} | {num(q, scale, '{:,.1f}' if scale > 1 else '{:,.0f}')} | {ratio} | {cpu} | {rss} | {gen} |")

def load_rss(broker):
    load_rows = {name for name, scenario, _, _ in rows if scenario != "connections"}
    vals = [x.get("broker_rss_bytes") for (row, b), xs in reports.items() if b == broker and row in load_rows for x in xs]
    vals = [v for v in vals if v]
    return max(vals) if vals else None

print()
print("| resources | warren | RabbitMQ |")
print("|---|---:|---:|")
print(f"| start-up: spawn to accepting AMQP (ms) | {num(med('startup', 'warren', 'startup_ms'), 1, '{:,.1f}')} | {num(med('startup', 'rabbitmq', 'startup_ms'), 1, '{:,.0f}')} |")
print(f"| idle RSS (MB) | {num(med('idle', 'warren', 'idle_rss_bytes'), 1e6, '{:,.1f}')} | {num(med('idle', 'rabbitmq', 'idle_rss_bytes'), 1e6, '{:,.1f}')} |")
print(f"| peak RSS under load, all rows but connections (MB) | {num(load_rss('warren'), 1e6)} | {num(load_rss('rabbitmq'), 1e6)} |")
conn = [r for r in rows if r[1] == "connections"]
if conn:
    name = conn[0][0]
    print(f"| RSS holding the idle connections (MB) | {num(med(name, 'warren', 'broker_rss_holding'), 1e6)} | {num(med(name, 'rabbitmq', 'broker_rss_holding'), 1e6)} |")
    print(f"| CPU holding the idle connections | {num(med(name, 'warren', 'broker_cpu_percent'), 1, '{:,.1f}')}% | {num(med(name, 'rabbitmq', 'broker_cpu_percent'), 1, '{:,.1f}')}% |")
    print(f"| connections opened per second | {num(med(name, 'warren', 'opened_per_sec'))} | {num(med(name, 'rabbitmq', 'opened_per_sec'))} |")
