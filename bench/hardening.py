#!/usr/bin/env python3
"""Measurements of bench/hardening.sh (warren against RabbitMQ on robustness rows).

Driven by bench/hardening.sh, which starts and stops the brokers; every measuring command
appends one JSON object a line to --results: {"row", "broker", "run", "value", "fmt", ...}.

    hardening.py topic --uri URI --broker B --run N --results F [--ns 2,4,...] [--limit 10]
    hardening.py slow  --uri URI --pid PID --broker B --run N --results F [--count N] [--rate R]
    hardening.py flow  --uri URI --pid PID --broker B --run N --results F --size S [--persistent]
    hardening.py table --results F --json OUT [--meta JSON]

Internal roles of `flow`, each in a process of its own (they print one JSON object):
    publisher, consumer, prober

Every loop is bounded in count and in time: a measurement that hangs (a stuck routing, a
blocked connection) is given up by a watchdog and reported as such.
"""

from __future__ import annotations

import argparse
import json
import os
import select
import signal
import socket
import statistics
import struct
import subprocess
import sys
import threading
import time

import pika
import pika.frame
import pika.spec

# ----------------------------------------------------------------------------------------
# helpers


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def connect(uri: str, heartbeat: int = 0) -> pika.BlockingConnection:
    params = pika.URLParameters(uri)
    params.heartbeat = heartbeat  # no heartbeat frames: raw writes share the socket
    params.blocked_connection_timeout = None
    params.socket_timeout = 10
    return pika.BlockingConnection(params)


def raw_socket(conn: pika.BlockingConnection) -> socket.socket:
    """The connection's socket (non-blocking), to write pre-encoded frames on it."""
    return conn._impl._transport._sock  # pylint: disable=protected-access


def send_all(conn, sock: socket.socket, data: bytes, give_up_at: float | None = None) -> bool:
    """Write all of data on pika's non-blocking socket; let pika read (connection.blocked)
    while the socket is full. False if give_up_at passed before everything was written."""
    mv = memoryview(data)
    off = 0
    while off < len(mv):
        try:
            off += sock.send(mv[off:])
        except (BlockingIOError, InterruptedError):
            select.select([], [sock], [], 0.05)
            conn.process_data_events(0)
            if give_up_at is not None and time.time() > give_up_at:
                return False
    return True


def publish_frames(channel: int, exchange: str, routing_key: str, body_size: int, persistent: bool) -> bytes:
    """basic.publish method frame + content header frame (the body frame follows)."""
    props = pika.spec.BasicProperties(delivery_mode=2 if persistent else None)
    return (
        pika.frame.Method(channel, pika.spec.Basic.Publish(exchange=exchange, routing_key=routing_key)).marshal()
        + pika.frame.Header(channel, body_size, props).marshal()
    )


def body_frame(channel: int, body: bytes) -> bytes:
    return struct.pack(">BHI", 3, channel, len(body)) + body + b"\xce"


def rss_bytes(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


class Results:
    def __init__(self, path: str, broker: str, run: int):
        self.path, self.broker, self.run = path, broker, run
        self.lock = threading.Lock()

    def add(self, row: str, value, fmt: str, **extra) -> None:
        rec = {"row": row, "broker": self.broker, "run": self.run, "value": value, "fmt": fmt, **extra}
        with self.lock, open(self.path, "a") as f:
            f.write(json.dumps(rec) + "\n")
            f.flush()


def percentile(xs: list[float], p: float) -> float | None:
    if not xs:
        return None
    s = sorted(xs)
    return s[min(len(s) - 1, max(0, int(round(p / 100.0 * len(s) + 0.5)) - 1))]


# ----------------------------------------------------------------------------------------
# row 1: topic routing time


def cmd_topic(a) -> None:
    res = Results(a.results, a.broker, a.run)
    ns = [int(x) for x in a.ns.split(",") if x]
    keys = [(40, ".".join(["a"] * 40)), (127, ".".join(["a"] * 127))]  # 79 and 253 bytes, no z
    plan = [(n, w, k) for n in ns for (w, k) in keys]
    row = lambda n, w: f"topic: {n} '#' + z, {w}-word key, routing (ms)"  # noqa: E731

    conn = connect(a.uri)
    ch = conn.channel()
    ch.confirm_delivery()
    state = {"done": False, "current": None}
    guard = threading.Lock()

    def give_up() -> None:
        with guard:
            if state["done"]:
                return
            i = state["current"]
            n, w, _ = plan[i]
            log(f"{a.broker} topic: n={n}, {w}-word key: > {a.limit:g} s, larger n not run")
            res.add(row(n, w), None, "ms3", text=f"> {a.limit:g} s", gave_up=True)
            for n2, w2, _ in plan[i + 1:]:
                res.add(row(n2, w2), None, "ms3", text="not run")
            # Closing the connection = ending the process (the socket is closed by the OS;
            # pika is stuck waiting for the confirm in the main thread).
            os._exit(0)

    for i, (n, w, key) in enumerate(plan):
        if w == keys[0][0]:  # a fresh exchange and queue per n
            ex = f"hardening.topic.{n}"
            ch.exchange_delete(ex)
            ch.exchange_declare(ex, "topic")
            q = ch.queue_declare("", exclusive=True).method.queue
            pattern = ".".join(["#"] * n + ["z"])
            ch.queue_bind(q, ex, routing_key=pattern)
            rtts = []
            for _ in range(a.baseline):
                t0 = time.perf_counter()
                ch.basic_publish(ex, "unbound", b"x")
                rtts.append(time.perf_counter() - t0)
            base = statistics.median(rtts)
        state["current"] = i
        timer = threading.Timer(a.limit, give_up)
        timer.daemon = True
        timer.start()
        t0 = time.perf_counter()
        ch.basic_publish(ex, key, b"x")
        t = time.perf_counter() - t0
        with guard:
            state["done"] = True
        timer.cancel()
        state["done"] = False
        ms = (t - base) * 1000.0
        log(f"{a.broker} topic: n={n}, {w}-word key: {ms:.3f} ms (baseline {base * 1000:.3f} ms)")
        res.add(row(n, w), ms, "ms3", raw_ms=t * 1000.0, baseline_ms=base * 1000.0)
        if w == keys[-1][0]:
            ch.queue_delete(q)
            ch.exchange_delete(ex)
    conn.close()


# ----------------------------------------------------------------------------------------
# row 2: slow producer, RSS per queued message


def cmd_slow(a) -> None:
    res = Results(a.results, a.broker, a.run)
    q = "hardening.slow"
    conn = connect(a.uri)
    ch = conn.channel()
    ch.queue_delete(q)
    ch.queue_declare(q, durable=False)
    time.sleep(1.0)
    before = rss_bytes(a.pid)
    sock = raw_socket(conn)
    msg = publish_frames(ch.channel_number, "", q, a.size, False) + body_frame(ch.channel_number, b"s" * a.size)
    t0 = time.perf_counter()
    for i in range(a.count):
        wait = t0 + i / a.rate - time.perf_counter()
        if wait > 0:
            time.sleep(wait)
        send_all(conn, sock, msg)  # one write a message
        if i % 1000 == 999:
            conn.process_data_events(0)
    pub_s = time.perf_counter() - t0
    deadline = time.time() + 120 + a.count / 1000
    count = -1
    while time.time() < deadline:
        count = ch.queue_declare(q, passive=True).method.message_count
        if count >= a.count:
            break
        time.sleep(0.2)
    if count < a.count:
        log(f"{a.broker} slow: only {count} of {a.count} messages queued before the deadline")
    time.sleep(2.0)
    after = rss_bytes(a.pid)
    per = (after - before) / a.count
    log(f"{a.broker} slow: {a.count} x {a.size} B at {a.count / pub_s:,.0f} msg/s: RSS {before / 1e6:.1f} -> "
        f"{after / 1e6:.1f} MB, {per:,.0f} B/message")
    res.add(f"slow producer: RSS growth per queued {a.size} B message (B)", per, "int",
            rss_before=before, rss_after=after, queued=count, publish_rate=a.count / pub_s)
    ch.queue_delete(q)
    conn.close()


# ----------------------------------------------------------------------------------------
# row 3: fast publisher, slow consumer


def cmd_publisher(a) -> None:
    """As fast as possible, raw pre-encoded frames with an 8-byte sequence number in each
    body, pika reading (connection.blocked/unblocked) whenever the socket is full."""
    conn = connect(a.uri)
    blocked = {"blocked": 0, "unblocked": 0, "first_blocked_s": None}
    t_start = time.time()

    def on_blocked(_conn, _frame):
        blocked["blocked"] += 1
        if blocked["first_blocked_s"] is None:
            blocked["first_blocked_s"] = time.time() - t_start

    def on_unblocked(_conn, _frame):
        blocked["unblocked"] += 1

    conn.add_on_connection_blocked_callback(on_blocked)
    conn.add_on_connection_unblocked_callback(on_unblocked)
    ch = conn.channel()
    sock = raw_socket(conn)
    chn = ch.channel_number
    head = publish_frames(chn, "", a.queue, a.size, a.persistent)
    pad = b"p" * (a.size - 8)
    bh = struct.pack(">BHI", 3, chn, a.size)
    batch = 64
    seq = 0
    t0 = time.time()
    complete = True
    while time.time() < a.until:
        data = b"".join(head + bh + struct.pack(">Q", s) + pad + b"\xce" for s in range(seq, seq + batch))
        if not send_all(conn, sock, data, give_up_at=a.until + 5):
            complete = False  # blocked mid-batch: the count below is an upper bound
            seq += batch
            break
        seq += batch
        conn.process_data_events(0)
    secs = time.time() - t0
    out = {"published": seq, "seconds": secs, "rate": seq / secs, "complete": complete, **blocked}
    print(json.dumps(out), flush=True)
    if complete:
        try:
            conn.close()
        except Exception:  # noqa: BLE001
            pass
    os._exit(0)


def cmd_consumer(a) -> None:
    """Manual acks (one multiple ack every 10), paced at --rate, checking the sequence."""
    conn = connect(a.uri)
    ch = conn.channel()
    ch.basic_qos(prefetch_count=100)
    expected = 0
    consumed = 0
    out_of_order = 0
    first_gap = None
    redelivered = 0
    last_tag = None
    t0 = None
    for method, _props, body in ch.consume(a.queue, auto_ack=False, inactivity_timeout=0.05):
        now = time.time()
        if now >= a.until:
            break
        if method is None:
            continue
        if t0 is None:
            t0 = time.perf_counter()
        seq = struct.unpack(">Q", body[:8])[0]
        if method.redelivered:
            redelivered += 1
        if seq != expected:
            out_of_order += 1
            if first_gap is None:
                first_gap = {"expected": expected, "got": seq, "at": consumed}
        expected = seq + 1
        consumed += 1
        last_tag = method.delivery_tag
        if consumed % 10 == 0:
            ch.basic_ack(last_tag, multiple=True)
            last_tag = None
        wait = t0 + consumed / a.rate - time.perf_counter()
        if wait > 0:
            time.sleep(wait)
    if last_tag is not None:
        ch.basic_ack(last_tag, multiple=True)
    out = {"consumed": consumed, "in_order": out_of_order == 0 and redelivered == 0,
           "out_of_order": out_of_order, "first_gap": first_gap, "redelivered": redelivered}
    print(json.dumps(out), flush=True)
    try:
        ch.cancel()
        conn.close()
    except Exception:  # noqa: BLE001
        pass
    os._exit(0)


def cmd_prober(a) -> None:
    """One message with confirms every --interval to its own queue; publish->confirm times.
    A publish still unconfirmed at the deadline counts with its time so far (stuck=true)."""
    if os.environ.get("PROBE_REALTIME", "1") == "1":
        # This process measures the broker, not its own wake-ups: on a 2-core machine shared
        # with a publisher at 100 % of a core, a normal-priority prober waits for the CPU
        # itself for milliseconds (the same for both brokers). Real-time priority needs root;
        # without it the prober runs as it is and says so.
        try:
            os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(10))
        except (PermissionError, AttributeError, OSError) as e:
            log(f"prober: no real-time priority ({e}); its own scheduling is in the figures")
    conn = connect(a.uri)
    ch = conn.channel()
    ch.confirm_delivery()
    lat: list[float] = []
    state = {"t_pub": None}
    guard = threading.Lock()

    def report(stuck: bool) -> None:
        xs = list(lat)
        if stuck and state["t_pub"] is not None:
            xs.append(time.perf_counter() - state["t_pub"])
        ms = [x * 1000.0 for x in xs]
        print(json.dumps({"count": len(lat), "stuck": stuck, "p50_ms": percentile(ms, 50),
                          "p99_ms": percentile(ms, 99), "max_ms": max(ms) if ms else None}), flush=True)

    def watchdog() -> None:
        with guard:
            report(True)
            os._exit(0)

    timer = threading.Timer(max(0.0, a.until - time.time()) + 5.0, watchdog)
    timer.daemon = True
    timer.start()
    nxt = time.perf_counter()
    while time.time() < a.until:
        state["t_pub"] = time.perf_counter()
        ch.basic_publish("", a.queue, b"probe")
        lat.append(time.perf_counter() - state["t_pub"])
        state["t_pub"] = None
        nxt += a.interval
        wait = nxt - time.perf_counter()
        if wait > 0:
            time.sleep(wait)
        else:
            nxt = time.perf_counter()
    with guard:
        timer.cancel()
        report(False)
    try:
        conn.close()
    except Exception:  # noqa: BLE001
        pass
    os._exit(0)


def spawn(role: str, *args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, os.path.abspath(__file__), role, *args],
                            stdout=subprocess.PIPE, text=True)


def collect(p: subprocess.Popen, timeout: float, name: str) -> dict:
    try:
        out, _ = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        p.kill()
        p.communicate()
        log(f"flow: the {name} did not finish in time: killed")
        return {}
    try:
        return json.loads(out.strip().splitlines()[-1])
    except (ValueError, IndexError):
        log(f"flow: the {name} printed no report (exit {p.returncode})")
        return {}


def cmd_flow(a) -> None:
    res = Results(a.results, a.broker, a.run)
    mode = "persistent" if a.persistent else "transient"
    label = f"{a.size} B" if a.size < 1024 else f"{a.size // 1024} KiB"
    prefix = f"flow {label} {mode}"
    q, probe_q = "hardening.flow", "hardening.probe"
    common = ["--uri", a.uri, "--size", str(a.size)] + (["--persistent"] if a.persistent else [])

    conn = connect(a.uri)
    ch = conn.channel()

    def fresh_queues() -> None:
        ch.queue_delete(q)
        ch.queue_delete(probe_q)
        ch.queue_declare(q, durable=a.persistent)
        ch.queue_declare(probe_q, durable=False)

    # 1. the publisher's unthrottled rate, alone, for --probe-secs, into a queue capped at
    #    1000 messages (x-max-length, drop-head): the broker's memory does not grow here.
    rate_q = "hardening.rate"
    ch.queue_delete(rate_q)
    ch.queue_declare(rate_q, durable=a.persistent, arguments={"x-max-length": 1000})
    r = collect(spawn("publisher", *common, "--queue", rate_q, "--until", str(time.time() + a.probe_secs)),
                a.probe_secs + 60, "rate publisher")
    rate = r.get("rate") or 1000.0
    consume_rate = max(1.0, rate * a.consumer_share)
    log(f"{a.broker} {prefix}: unthrottled publish rate {rate:,.0f} msg/s, consumer paced at {consume_rate:,.0f} msg/s")
    conn.close()  # the rate publisher may have left unread frames: a fresh connection
    conn = connect(a.uri)
    ch = conn.channel()
    ch.queue_delete(rate_q)
    fresh_queues()
    time.sleep(1.0)

    # 2. the prober's floor on this machine: the broker idle, both cores taken by two busy
    #    loops (the publisher and the broker take about that in step 3)
    burners = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(2)]
    try:
        floor = collect(spawn("prober", "--uri", a.uri, "--queue", probe_q, "--until", str(time.time() + a.floor_secs)),
                        a.floor_secs + 30, "floor prober")
    finally:
        for b in burners:
            b.kill()
            b.wait()
    log(f"{a.broker} {prefix}: probe floor (idle broker, two busy loops) p50/p99/max "
        f"{'/'.join(fmt_value(floor.get(k + '_ms'), 'ms3') for k in ('p50', 'p99', 'max'))} ms")
    fresh_queues()

    # 3. publisher + paced consumer + latency prober for --duration, RSS sampled every 100 ms
    rss0 = rss_bytes(a.pid)
    peak = {"rss": rss0}
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            peak["rss"] = max(peak["rss"], rss_bytes(a.pid))
            stop.wait(0.1)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    until = time.time() + 1.0 + a.duration
    cons = spawn("consumer", "--uri", a.uri, "--queue", q, "--rate", str(consume_rate), "--until", str(until))
    prob = spawn("prober", "--uri", a.uri, "--queue", probe_q, "--until", str(until))
    time.sleep(1.0)  # the consumer is waiting when the first message arrives
    pub = spawn("publisher", *common, "--queue", q, "--until", str(until))
    grace = a.duration + 60
    pr = collect(pub, grace, "publisher")
    cr = collect(cons, grace, "consumer")
    lr = collect(prob, grace, "prober")
    stop.set()
    sampler.join()
    try:
        depth = ch.queue_declare(q, passive=True).method.message_count
    except Exception:  # noqa: BLE001
        depth = None
    log(f"{a.broker} {prefix}: published {pr.get('published')} ({pr.get('rate', 0):,.0f} msg/s), consumed "
        f"{cr.get('consumed')} (in order: {cr.get('in_order')}), queued {depth}, blocked {pr.get('blocked')}, "
        f"RSS {rss0 / 1e6:.0f} -> peak {peak['rss'] / 1e6:.0f} MB, probe p50/p99/max "
        f"{'/'.join(fmt_value(lr.get(k + '_ms'), 'ms3') for k in ('p50', 'p99', 'max'))} ms"
        f"{' (stuck)' if lr.get('stuck') else ''}")
    res.add(f"{prefix}: unthrottled publish rate (msg/s)", rate, "int")
    res.add(f"{prefix}: publish rate with the slow consumer (msg/s)", pr.get("rate"), "int",
            published=pr.get("published"), queued_at_end=depth)
    res.add(f"{prefix}: consumer rate, paced at 10% of unthrottled (msg/s)",
            cr["consumed"] / a.duration if cr.get("consumed") is not None else None, "int", target=consume_rate)
    res.add(f"{prefix}: broker RSS at the start (MB)", rss0 / 1e6, "f1")
    res.add(f"{prefix}: broker peak RSS (MB)", peak["rss"] / 1e6, "f1", rss_start=rss0)
    res.add(f"{prefix}: consumed in order", cr.get("in_order"), "bool", consumed=cr.get("consumed"),
            first_gap=cr.get("first_gap"), redelivered=cr.get("redelivered"))
    res.add(f"{prefix}: publisher got connection.blocked", bool(pr.get("blocked")) if pr else None, "bool",
            blocked=pr.get("blocked"), unblocked=pr.get("unblocked"), first_blocked_s=pr.get("first_blocked_s"))
    for k in ("p50", "p99", "max"):
        res.add(f"{prefix}: probe publish->confirm {k} (ms)", lr.get(f"{k}_ms"), "ms3",
                stuck=lr.get("stuck"), count=lr.get("count"))
    res.add(f"{prefix}: probe p99 floor, idle broker, both cores busy (ms)", floor.get("p99_ms"), "ms3",
            count=floor.get("count"), max_ms=floor.get("max_ms"))
    for name in (q, probe_q):
        try:
            ch.queue_delete(name)
        except Exception as e:  # noqa: BLE001
            log(f"{a.broker} {prefix}: deleting {name}: {e!r}")
    try:
        conn.close()
    except Exception:  # noqa: BLE001
        pass


# ----------------------------------------------------------------------------------------
# the table


def fmt_value(v, fmt: str) -> str:
    if v is None:
        return "-"
    if fmt == "bool":
        return "yes" if v else "no"
    if fmt == "ms3":
        return f"{v:.3f}"
    if fmt == "f1":
        return f"{v:,.1f}"
    return f"{v:,.0f}"


def cell(recs: list[dict]) -> tuple[str, str, object]:
    """(all runs, median, median as a JSON value) of one broker on one row."""
    if not recs:
        return "", "", None
    recs = sorted(recs, key=lambda r: r["run"])
    fmt = recs[0]["fmt"]
    runs = " ".join(r.get("text") or fmt_value(r["value"], fmt) for r in recs)
    if fmt == "bool":
        vals = [r["value"] for r in recs if r["value"] is not None]
        yes = sum(1 for v in vals if v)
        med = "-" if not vals else ("all yes" if yes == len(vals) else "all no" if yes == 0 else f"{yes}/{len(vals)} yes")
        return runs, med, med
    vals = []
    for r in recs:
        if r["value"] is not None:
            vals.append(float(r["value"]))
        elif r.get("gave_up"):
            vals.append(float("inf"))
    if not vals:
        text = recs[0].get("text") or "-"
        return runs, text, None
    m = statistics.median(vals)
    if m == float("inf"):
        return runs, next(r["text"] for r in recs if r.get("gave_up")), None
    return runs, fmt_value(m, fmt), m


def cmd_table(a) -> None:
    recs = [json.loads(line) for line in open(a.results) if line.strip()]
    rows: list[str] = []
    for r in recs:
        if r["row"] not in rows:
            rows.append(r["row"])
    table = []
    for row in rows:
        entry = {"row": row}
        for b in ("warren", "rabbitmq"):
            mine = [r for r in recs if r["row"] == row and r["broker"] == b]
            runs, med, medv = cell(mine)
            entry[b] = {"runs": [r.get("text") or r["value"] for r in sorted(mine, key=lambda r: r["run"])],
                        "median": medv if medv is not None else (med or None), "runs_text": runs, "median_text": med}
        table.append(entry)
    head = ("row", "warren runs", "median", "RabbitMQ runs", "median")
    lines = [(e["row"], e["warren"]["runs_text"], e["warren"]["median_text"],
              e["rabbitmq"]["runs_text"], e["rabbitmq"]["median_text"]) for e in table]
    w = [max(len(x[i]) for x in [head] + lines) for i in range(5)]
    print(f"{head[0]:<{w[0]}}  {head[1]:>{w[1]}}  {head[2]:>{w[2]}}  {head[3]:>{w[3]}}  {head[4]:>{w[4]}}")
    for x in lines:
        print(f"{x[0]:<{w[0]}}  {x[1]:>{w[1]}}  {x[2]:>{w[2]}}  {x[3]:>{w[3]}}  {x[4]:>{w[4]}}")
    meta = json.loads(a.meta) if a.meta else {}
    with open(a.json, "w") as f:
        json.dump({"meta": meta, "rows": table, "records": recs}, f, indent=2)
        f.write("\n")


# ----------------------------------------------------------------------------------------


def main() -> None:
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)

    def measuring(name: str) -> argparse.ArgumentParser:
        s = sub.add_parser(name)
        s.add_argument("--uri", required=True)
        s.add_argument("--broker", required=True)
        s.add_argument("--run", type=int, default=1)
        s.add_argument("--results", required=True)
        return s

    s = measuring("topic")
    s.add_argument("--ns", default="2,4,6,8,12,16")
    s.add_argument("--limit", type=float, default=10.0, help="seconds before giving up on larger n")
    s.add_argument("--baseline", type=int, default=21, help="publishes to an unbound key (median)")

    s = measuring("slow")
    s.add_argument("--pid", type=int, required=True)
    s.add_argument("--count", type=int, default=100_000)
    s.add_argument("--rate", type=float, default=10_000.0)
    s.add_argument("--size", type=int, default=200)

    s = measuring("flow")
    s.add_argument("--pid", type=int, required=True)
    s.add_argument("--size", type=int, default=16)
    s.add_argument("--persistent", action="store_true")
    s.add_argument("--duration", type=float, default=60.0)
    s.add_argument("--probe-secs", type=float, default=5.0, help="measuring the unthrottled rate")
    s.add_argument("--consumer-share", type=float, default=0.10)
    s.add_argument("--floor-secs", type=float, default=10.0, help="the prober against the idle broker, cores busy")

    for role in ("publisher", "consumer", "prober"):
        s = sub.add_parser(role)
        s.add_argument("--uri", required=True)
        s.add_argument("--queue", required=True)
        s.add_argument("--until", type=float, required=True, help="epoch seconds")
        s.add_argument("--size", type=int, default=16)
        s.add_argument("--persistent", action="store_true")
        s.add_argument("--rate", type=float, default=1000.0)
        s.add_argument("--interval", type=float, default=0.01)

    s = sub.add_parser("table")
    s.add_argument("--results", required=True)
    s.add_argument("--json", required=True)
    s.add_argument("--meta", default="")

    a = p.parse_args()
    if a.cmd in ("publisher", "flow") and a.size < 8:
        p.error("--size must be at least 8 (the sequence number)")
    {"topic": cmd_topic, "slow": cmd_slow, "flow": cmd_flow, "publisher": cmd_publisher,
     "consumer": cmd_consumer, "prober": cmd_prober, "table": cmd_table}[a.cmd](a)


if __name__ == "__main__":
    main()
