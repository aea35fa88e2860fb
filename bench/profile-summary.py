#!/usr/bin/env python3
"""Summarise `perf script -F tid,ip,sym` output of a call-graph profile (perf record -g).

    perf record -e cpu-clock -F 2000 -g --call-graph dwarf,16384 -p $(pidof warren) -- sleep 5
    perf script -F tid,ip,sym | bench/profile-summary.py [PREFIX]

Prints, in percent of all samples:
  - self: the innermost function of each sample (inlined frames folded into their caller's line);
  - attributed: each sample charged to the innermost frame whose name starts with PREFIX
    (default warren_broker), so time in memcpy, malloc, hashing or the kernel is charged to
    the broker function that asked for it;
  - inclusive: samples with PREFIX function anywhere on the stack.
"""
import collections
import re
import sys

prefix = sys.argv[1] if len(sys.argv) > 1 else "warren_broker"
samples = []
stack = None
for line in sys.stdin:
    line = line.rstrip("\n")
    if not line.strip():
        if stack is not None:
            samples.append(stack)
        stack = None
        continue
    if not line.startswith(("\t", " ")) or re.match(r"^\s*\d+\s*$", line):
        if stack is not None:
            samples.append(stack)
        stack = []
        continue
    parts = line.strip().split(None, 1)
    if len(parts) == 2 and stack is not None:
        sym = re.sub(r" \(inlined\)$", "", parts[1])
        sym = re.sub(r"\+0x[0-9a-f]+$", "", sym)
        stack.append(sym)
if stack:
    samples.append(stack)

total = len(samples) or 1
selfc, attributed, inclusive = collections.Counter(), collections.Counter(), collections.Counter()
for s in samples:
    if not s:
        continue
    selfc[s[0]] += 1
    owner = next((f for f in s if f.startswith(prefix)), None)
    attributed[owner or "(outside %s)" % prefix] += 1
    for f in set(f for f in s if f.startswith(prefix)):
        inclusive[f] += 1


def show(title, counter, n=25):
    print(f"\n{title}")
    for sym, c in counter.most_common(n):
        print(f"  {100.0 * c / total:6.2f}%  {sym[:150]}")


print(f"{total} samples")
show("self (innermost frame)", selfc)
show(f"attributed to the innermost {prefix} frame", attributed)
show(f"inclusive ({prefix} frame anywhere on the stack)", inclusive)
