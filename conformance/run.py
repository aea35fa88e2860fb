#!/usr/bin/env python3
"""Run the conformance scenarios against RabbitMQ (the reference) and warren, compare the
normalized transcripts, write REPORT.md and DIFFERENCES.md.

  run.py                                   both brokers, full comparison, writes the reports
  run.py --only PATTERN                    only scenarios whose name contains PATTERN
                                           (or matches it, if it has * ? or [)
  run.py --only PATTERN --broker rabbit    print the transcripts of one broker, compare nothing
  run.py --list                            list the scenarios

Brokers: --rabbit HOST:PORT (default 127.0.0.1:5673); warren either --warren HOST:PORT (already
running) or --warren-bin PATH (started here on an ephemeral loopback port, stopped at the end).
Exit status: 0 when every scenario is equal or an accepted difference, 1 otherwise.
"""

from __future__ import annotations

import argparse
import difflib
import fnmatch
import importlib
import os
import pkgutil
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import harness  # noqa: E402
from accepted import ACCEPTED  # noqa: E402
from harness import NORMALIZATIONS, SCENARIOS, Broker, run_scenario  # noqa: E402


def load_scenarios() -> None:
    import scenarios  # noqa: F401

    for m in sorted(pkgutil.iter_modules([str(HERE / "scenarios")]), key=lambda m: m.name):
        if not m.name.startswith("_"):
            importlib.import_module(f"scenarios.{m.name}")


def select(pattern: str | None):
    if not pattern:
        return list(SCENARIOS)
    if any(ch in pattern for ch in "*?["):
        return [s for s in SCENARIOS if fnmatch.fnmatch(s.name, pattern)]
    return [s for s in SCENARIOS if pattern in s.name]


def hostport(s: str) -> tuple[str, int]:
    h, _, p = s.rpartition(":")
    return h or "127.0.0.1", int(p)


class Warren:
    """warren started from its binary on an ephemeral loopback port."""

    def __init__(self, binary: str):
        self.binary = binary
        self.proc: subprocess.Popen | None = None
        self.port = 0
        self.log_lines: list[str] = []
        # a fresh data directory per run: durable leftovers of an earlier run must not leak in
        self.data_dir = tempfile.mkdtemp(prefix="warren-conformance-")

    def start(self, timeout: float = 30.0) -> int:
        deadline = time.monotonic() + timeout
        while not os.path.exists(self.binary):  # it may be being rebuilt right now
            if time.monotonic() > deadline:
                raise SystemExit(f"run.py: warren binary {self.binary} not found")
            time.sleep(0.5)
        env = dict(os.environ)
        env["WARREN_AMQP_BIND"] = "127.0.0.1:0"
        env["WARREN_DATA_DIR"] = self.data_dir
        env["WARREN_NO_CHAT"] = "true"  # AMQP only: no HTTP listener on [::]:8080
        env.setdefault("WARREN_LOG", "warn,warren=info")
        env["NO_COLOR"] = "1"
        self.proc = subprocess.Popen([self.binary], env=env, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, text=True,
                                     errors="replace")
        port_box: list[int] = []
        ready = threading.Event()

        def reader():
            assert self.proc and self.proc.stdout
            for line in self.proc.stdout:
                self.log_lines.append(line.rstrip())
                if len(self.log_lines) > 2000:
                    del self.log_lines[:1000]
                if not port_box:
                    m = re.search(r"AMQP listening on [^\s:]+:(\d+)", re.sub(r"\x1b\[[0-9;]*m", "", line))
                    if m:
                        port_box.append(int(m.group(1)))
                        ready.set()
            ready.set()

        threading.Thread(target=reader, daemon=True).start()
        ready.wait(timeout)
        if not port_box:
            self.stop()
            raise SystemExit("run.py: warren did not report 'AMQP listening on ...':\n" + "\n".join(self.log_lines[-20:]))
        self.port = port_box[0]
        return self.port

    def ctl(self, args: list[str]) -> bool:
        """`warren ctl` on this warren's data directory."""
        return command_ok([self.binary, "ctl", "--data-dir", self.data_dir, *args], timeout=30)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        shutil.rmtree(self.data_dir, ignore_errors=True)


def command_ok(cmd: list[str], timeout: float) -> bool:
    """Run a control command quietly; True if it ran and succeeded within `timeout`."""
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def rabbitmqctl(args: list[str]) -> bool:
    """rabbitmqctl against the node rabbitmq.sh runs (WARREN_RABBIT_NODE and friends)."""
    return command_ok([str(HERE / "rabbitmq.sh"), "ctl", *args], timeout=90)


def server_info(b: Broker) -> dict[str, str]:
    """product and version from connection.start (for the report only)."""
    from amqp_raw import PROTOCOL_HEADER, Conn

    try:
        c = Conn(b.host, b.port, lambda line: None)
        c.raw_mode = True
        c.send_raw(PROTOCOL_HEADER)
        ev = c.wait(lambda e: e.name == "connection.start", 2.0)
        c.close_socket()
        if ev is None:
            return {}
        sp = ev["server_properties"]
        return {k: (sp[k].value.decode(errors="replace") if isinstance(sp[k].value, bytes) else str(sp[k].value))
                for k in ("product", "version", "platform") if k in sp}
    except OSError as e:
        return {"error": str(e)}


def run_all(scens, broker: Broker, out: dict, progress: bool = False) -> None:
    for s in scens:
        out[s.name] = run_scenario(s, broker)
        if progress:
            print(f"  [{broker.name}] {s.name}: {out[s.name][1]:.2f}s", file=sys.stderr)


def md_escape(s: str) -> str:
    return s.replace("|", "\\|")


def first_difference(a: list[str], b: list[str]) -> str:
    for i in range(max(len(a), len(b))):
        x = a[i] if i < len(a) else "(end of transcript)"
        y = b[i] if i < len(b) else "(end of transcript)"
        if x != y:
            return f"RabbitMQ: `{x}` / warren: `{y}`"
    return ""


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rabbit", default=os.environ.get("RABBIT_ADDR", "127.0.0.1:5673"))
    ap.add_argument("--warren", default=os.environ.get("WARREN_ADDR"))
    ap.add_argument("--warren-bin", default=os.environ.get("WARREN_BIN"))
    ap.add_argument("--only")
    ap.add_argument("--broker", choices=["rabbit", "warren"])
    ap.add_argument("--list", action="store_true")
    ap.add_argument("--report", default=str(HERE / "REPORT.md"))
    ap.add_argument("--differences", default=str(HERE / "DIFFERENCES.md"))
    ap.add_argument("--no-report", action="store_true", help="do not write REPORT.md/DIFFERENCES.md")
    ap.add_argument("--progress", action="store_true")
    ap.add_argument("--sequential", action="store_true",
                    help="run the brokers one after the other (e.g. to compare RabbitMQ with itself)")
    args = ap.parse_args()

    load_scenarios()
    scens = select(args.only)
    if args.list:
        for s in scens:
            print(f"{s.name:55} {s.doc}")
        print(f"{len(scens)} scenarios")
        return 0
    if not scens:
        print(f"run.py: no scenario matches {args.only!r}", file=sys.stderr)
        return 2

    rh, rp = hostport(args.rabbit)
    rabbit = Broker("rabbit", rh, rp, ctl=rabbitmqctl)
    warren_proc = None
    warren = None
    need_warren = args.broker in (None, "warren")
    if need_warren:
        if args.warren:
            wh, wp = hostport(args.warren)
            warren = Broker("warren", wh, wp)
        else:
            binary = args.warren_bin or str(HERE.parent / "target" / "debug" / "warren")
            warren_proc = Warren(binary)
            warren = Broker("warren", "127.0.0.1", warren_proc.start(), ctl=warren_proc.ctl)
    try:
        if args.broker:
            b = rabbit if args.broker == "rabbit" else warren
            assert b is not None
            for s in scens:
                lines, secs = run_scenario(s, b)
                print(f"### {s.name} ({b.name}, {secs:.2f}s) {s.doc}")
                print("\n".join(lines))
                print()
            return 0

        assert warren is not None
        started = time.monotonic()
        results: dict[str, dict] = {"rabbit": {}, "warren": {}}
        threads = [
            threading.Thread(target=run_all, args=(scens, rabbit, results["rabbit"], args.progress)),
            threading.Thread(target=run_all, args=(scens, warren, results["warren"], args.progress)),
        ]
        for th in threads:
            th.start()
            if args.sequential:
                th.join()
        for th in threads:
            th.join()
        elapsed = time.monotonic() - started
        rinfo, winfo = server_info(rabbit), server_info(warren)
    finally:
        if warren_proc:
            warren_proc.stop()

    rows = []
    failed = []
    diffs = []
    stale = []
    for s in scens:
        r, rt = results["rabbit"][s.name]
        w, wt = results["warren"][s.name]
        if r == w:
            verdict = "equal"
            if s.name in ACCEPTED:
                stale.append(s.name)
        elif s.name in ACCEPTED:
            verdict = "accepted difference"
            diffs.append((s, r, w))
        else:
            verdict = "DIFFERENT"
            failed.append(s.name)
            diffs.append((s, r, w))
        rows.append((s, verdict, rt, wt))
        mark = {"equal": "ok  ", "accepted difference": "acc ", "DIFFERENT": "DIFF"}[verdict]
        print(f"{mark} {s.name} ({rt:.2f}s / {wt:.2f}s)")

    n_equal = sum(1 for r in rows if r[1] == "equal")
    n_acc = sum(1 for r in rows if r[1] == "accepted difference")
    partial = bool(args.only)
    summary = (f"{len(rows)} scenarios: {n_equal} equal, {n_acc} accepted differences, "
               f"{len(failed)} different; {elapsed:.1f}s "
               f"(RabbitMQ {rinfo.get('version', '?')}, warren {winfo.get('version', '?')})")
    print(summary)

    if not args.no_report:
        write_report(Path(args.report), rows, rinfo, winfo, elapsed, summary, partial, stale, diffs)
        write_differences(Path(args.differences), diffs, summary, partial)
        print(f"wrote {args.report} and {args.differences}")
    print(f"{n_equal + n_acc} passed, {len(failed)} failed")
    return 1 if failed else 0


def write_report(path: Path, rows, rinfo, winfo, elapsed, summary, partial, stale, diffs) -> None:
    out = ["# Conformance report: warren vs RabbitMQ", ""]
    out.append("Written by `conformance/run.py` (run it with `conformance/run.sh`). RabbitMQ is the reference: "
               "a scenario is *equal* when warren's normalized transcript is identical to RabbitMQ's.")
    out.append("")
    if partial:
        out.append("**Partial run (`--only`): not every scenario ran.**")
        out.append("")
    out.append(f"- RabbitMQ: {rinfo.get('product', '?')} {rinfo.get('version', '?')} ({rinfo.get('platform', '?')})")
    out.append(f"- warren: {winfo.get('product', '?')} {winfo.get('version', '?')}")
    out.append(f"- Result: {summary}")
    out.append(f"- Wall time of the comparison (both brokers in parallel): {elapsed:.1f}s")
    out.append("")
    out.append("## Scenarios")
    out.append("")
    out.append("| scenario | verdict | RabbitMQ s | warren s | what it checks |")
    out.append("|---|---|---|---|---|")
    for s, verdict, rt, wt in rows:
        v = "**DIFFERENT**" if verdict == "DIFFERENT" else verdict
        out.append(f"| `{s.name}` | {v} | {rt:.2f} | {wt:.2f} | {md_escape(s.doc)} |")
    out.append("")
    out.append("## Normalizations")
    out.append("")
    out.append("Transcripts are compared after these normalizations, and only these:")
    out.append("")
    for n in NORMALIZATIONS:
        out.append(f"- {n}")
    out.append("")
    out.append("## Known accepted differences")
    out.append("")
    out.append("Declared in `conformance/accepted.py` (one list, each with its reason). The scenarios still run.")
    out.append("")
    for name, reason in ACCEPTED.items():
        state = "equal in this run (entry is stale)" if name in stale else (
            "differs in this run" if any(d[0].name == name for d in diffs) else "not run")
        out.append(f"- `{name}` ({state}): {reason}")
    out.append("")
    differing = [d for d in diffs if d[0].name not in ACCEPTED]
    if differing:
        out.append("## Differences")
        out.append("")
        out.append("See `conformance/DIFFERENCES.md` for both transcripts of each.")
        out.append("")
        for s, r, w in differing:
            out.append(f"- `{s.name}`: {md_escape(first_difference(r, w))}")
        out.append("")
    path.write_text("\n".join(out))


def write_differences(path: Path, diffs, summary, partial) -> None:
    out = ["# Differences between RabbitMQ and warren", ""]
    out.append("Written by `conformance/run.py` on every comparison run; RabbitMQ's transcript is the "
               "reference. Reproduce one with `conformance/run.sh --only NAME` or print one side with "
               "`--broker rabbit|warren`.")
    out.append("")
    if partial:
        out.append("**Partial run (`--only`).**")
        out.append("")
    out.append(f"Result: {summary}")
    out.append("")
    if not diffs:
        out.append("No differences.")
    for s, r, w in diffs:
        tag = " (accepted: see accepted.py)" if s.name in ACCEPTED else ""
        out.append(f"## `{s.name}`{tag}")
        out.append("")
        out.append(s.doc)
        out.append("")
        out.append(f"First difference: {first_difference(r, w)}")
        out.append("")
        out.append("```diff")
        d = list(difflib.unified_diff(r, w, "rabbitmq", "warren", n=2, lineterm=""))
        if len(d) > 60:
            d = d[:60] + [f"... ({len(d) - 60} more diff lines)"]
        out.extend(d)
        out.append("```")
        out.append("")
    path.write_text("\n".join(out))


if __name__ == "__main__":
    sys.exit(main())
