"""Scenario harness: a transcript per scenario run, a raw client with the usual AMQP
operations, scenario registration, and the normalization of transcripts."""

from __future__ import annotations

import re
import secrets
import time
import traceback
from dataclasses import dataclass, field
from typing import Callable, Optional
from urllib.parse import quote

from amqp_raw import (
    FRAME_HEARTBEAT,
    FRAME_METHOD,
    PROTOCOL_HEADER,
    SYNC_REPLIES,
    Conn,
    Event,
    encode_method,
    fmt_body,
    fmt_bytes,
    fmt_props,
    fmt_table,
    frame,
)

# default per-wait timeout; every wait in a scenario is bounded by this or less
TIMEOUT = 2.0
# how long "nothing more arrives" is watched for
SETTLE = 0.1

DEFAULT_CAPABILITIES = {
    "authentication_failure_close": True,
    "basic.nack": True,
    "connection.blocked": True,
    "consumer_cancel_notify": True,
    "publisher_confirms": True,
    "exchange_exchange_bindings": True,
    "per_consumer_qos": True,
}


@dataclass
class Broker:
    name: str
    host: str
    port: int
    user: str = "guest"
    password: str = "guest"
    # runs the broker's control tool (rabbitmqctl / warren ctl) with these arguments; returns
    # whether it succeeded. None when the broker was given by address only.
    ctl: Optional[Callable[[list[str]], bool]] = None

    @property
    def url(self) -> str:
        return f"amqp://{self.user}:{self.password}@{self.host}:{self.port}/%2F"


# --------------------------------------------------------------------------------------
# Scenario registry


@dataclass
class Scenario:
    name: str
    area: str
    func: Callable
    doc: str


SCENARIOS: list[Scenario] = []


def scenario(fn: Callable) -> Callable:
    area = fn.__module__.rsplit(".", 1)[-1]
    name = f"{area}.{fn.__name__}"
    if any(s.name == name for s in SCENARIOS):
        raise RuntimeError(f"duplicate scenario {name}")
    SCENARIOS.append(Scenario(name, area, fn, (fn.__doc__ or "").strip().split("\n")[0]))
    return fn


# --------------------------------------------------------------------------------------
# Transcript context


class T:
    """What one scenario run against one broker saw."""

    def __init__(self, broker: Broker):
        self.broker = broker
        self.lines: list[str] = []
        self.token = secrets.token_hex(4)
        self.conns: list[Client] = []
        self.names: list[str] = []
        self._labels = 0
        # control commands that undo what the scenario changed, run by finish()
        self._undo: list[list[str]] = []

    def add(self, line: str) -> None:
        self.lines.append(line)

    def note(self, text: str) -> None:
        """A scenario-level observation (e.g. a count or a comparison it made)."""
        for c in self.conns:
            c.end_defer()
        self.add(f"= {text}")

    def n(self, base: str) -> str:
        """A resource name unique to this run (the unique part is normalized away)."""
        name = f"{base}.{self.token}"
        self.names.append(name)
        return name

    def ctl(self, args: list[str], undo: Optional[list[str]] = None) -> bool:
        """Run a broker control command (the same arguments for rabbitmqctl and warren ctl);
        `undo` runs when the scenario ends, whatever happens. Recorded as one line."""
        if self.broker.ctl is None:
            self.add(f"ctl {' '.join(args)}: no control tool for this broker")
            return False
        if undo:
            self._undo.append(undo)
        ok = self.broker.ctl(args)
        self.add(f"ctl {' '.join(args)}: {'ok' if ok else 'failed'}")
        return ok

    def _label(self, label: Optional[str]) -> str:
        self._labels += 1
        return label or f"c{self._labels}"

    def raw(self, label: Optional[str] = None) -> "Client":
        """A TCP connection with nothing sent yet."""
        c = Client(self, self.broker.host, self.broker.port, self.add, self._label(label))
        self.conns.append(c)
        return c

    def connect(self, label: Optional[str] = None, channel: Optional[int] = 1, sync: bool = False,
                **kw) -> "Client":
        """A connection through the handshake (recorded as one line if it succeeds), with
        channel 1 open unless channel=None; sync=True puts channel 1 in confirm mode with
        publishes that wait for their confirm (see Client.sync_channel)."""
        c = self.raw(label)
        ok = c.handshake(**kw)
        if ok and channel:
            c.channel(channel, quiet=True)
            if sync:
                c.sync_channel(channel)
        return c

    def finish(self) -> None:
        for c in self.conns:
            c.end_defer()
            c.close_socket()
        while self._undo and self.broker.ctl is not None:
            self.broker.ctl(self._undo.pop())
        if not self.names:
            return
        # remove what the scenario left behind (not recorded)
        sink: list[str] = []
        try:
            c = Client(self, self.broker.host, self.broker.port, sink.append, "cleanup")
            if not c.handshake():
                return
            ch = 1
            c.channel(ch, quiet=True)
            for name in self.names:
                for method, kw in (("queue.delete", {"queue": name}), ("exchange.delete", {"exchange": name})):
                    ev = c.call(ch, method, timeout=1.0, **kw)
                    if ev is None or ev.name == "connection.close" or ev.kind == "closed":
                        return
                    if ev.name == "channel.close":
                        ch += 1
                        c.channel(ch, quiet=True)
            c.close(timeout=1.0)
        except OSError:
            pass
        finally:
            try:
                c.close_socket()
            except Exception:
                pass

    # ---- checks shared by many scenarios
    def check_broker_alive(self, label: str = "after") -> None:
        """A fresh connection can declare, publish and get: the broker is unaffected."""
        c = self.raw(label)
        if not c.handshake():
            return
        c.channel(1, quiet=True)
        c.quiet_sends = True
        ev = c.call(1, "queue.declare", queue="", exclusive=True, _record=False)
        if ev is None or ev.name != "queue.declare-ok":
            self.note(f"{label}: queue.declare failed")
            return
        q = ev["queue"].decode()
        c.publish(1, "", q, b"alive")
        got = c.call(1, "basic.get", queue=q, no_ack=True, _record=False)
        ok = got is not None and got.name == "basic.get-ok" and got.body == b"alive"
        self.note(f"{label}: fresh connection works: {ok}")
        c.close(_record=False)

    def check_conn_alive(self, c: "Client", label: Optional[str] = None) -> None:
        """An already open connection (channel 1 open) still works."""
        label = label or c.label
        if c.eof:
            self.note(f"{label}: connection closed")
            return
        c.quiet_sends = True
        ev = c.call(1, "queue.declare", queue="", exclusive=True, _record=False)
        if ev is None or ev.name != "queue.declare-ok":
            self.note(f"{label}: still works: False")
            return
        q = ev["queue"].decode()
        c.publish(1, "", q, b"alive")
        got = c.call(1, "basic.get", queue=q, no_ack=True, _record=False)
        ok = got is not None and got.name == "basic.get-ok" and got.body == b"alive"
        self.note(f"{label}: still works: {ok}")
        c.quiet_sends = False


class Client(Conn):
    def __init__(self, t: T, host: str, port: int, record, label: str):
        super().__init__(host, port, record, label)
        self.t = t

    # ---- handshake
    def handshake(
        self,
        user: Optional[str] = None,
        password: Optional[str] = None,
        vhost: str = "/",
        heartbeat: int = 0,
        frame_max: Optional[int] = None,
        channel_max: Optional[int] = None,
        capabilities: Optional[dict] = None,
        mechanism: str = "PLAIN",
        response: Optional[bytes] = None,
        locale: str = "en_US",
        verbose: bool = False,
        client_properties: Optional[dict] = None,
    ) -> bool:
        """Protocol header, start-ok, tune-ok, open. Recorded in full if verbose or if it
        fails, else as one line."""
        user = self.t.broker.user if user is None else user
        password = self.t.broker.password if password is None else password
        buffer: list[str] = []
        real_record = self._record
        if not verbose:
            self._record = buffer.append
        ok = False
        try:
            self.raw_mode = True
            self.send_raw(PROTOCOL_HEADER, "protocol header AMQP 0-9-1")
            start = self.wait(lambda e: e.name == "connection.start" or e.kind in ("closed", "raw", "bad-frame"))
            if start is None or start.name != "connection.start":
                if start is None:
                    self.rec("<- (nothing within 2s)")
                return False
            props = dict(client_properties or {"product": "warren-conformance", "platform": "Python"})
            props["capabilities"] = capabilities if capabilities is not None else DEFAULT_CAPABILITIES
            if response is None:
                response = b"\x00" + user.encode() + b"\x00" + password.encode()
            self.send_method(0, "connection.start-ok", client_properties=props, mechanism=mechanism,
                             response=response, locale=locale)
            tune = self._silent_wait()
            if tune is None:
                return False
            if tune.name != "connection.tune":
                return False
            cm = tune["channel_max"] if channel_max is None else channel_max
            fm = tune["frame_max"] if frame_max is None else frame_max
            self.frame_max = fm or 131072
            self.send_method(0, "connection.tune-ok", channel_max=cm, frame_max=fm, heartbeat=heartbeat)
            self.send_method(0, "connection.open", virtual_host=vhost)
            op = self._silent_wait()
            if op is None:
                return False
            ok = op.name == "connection.open-ok"
            return ok
        finally:
            self._record = real_record
            if not verbose:
                if ok:
                    self.rec("connected")
                else:
                    for line in buffer:
                        real_record(line)

    def channel(self, ch: int = 1, quiet: bool = False) -> bool:
        ev = self.call(ch, "channel.open", _record=not quiet)
        ok = ev is not None and ev.name == "channel.open-ok"
        if quiet and not ok:
            self.rec(f"channel {ch} failed to open")
        return ok

    # ---- methods
    def send(self, ch: int, name: str, **kw) -> None:
        self.send_method(ch, name, **kw)

    def call(self, ch: int, name: str, timeout: float = TIMEOUT, _record: bool = True, **kw) -> Optional[Event]:
        """Send a synchronous method and wait for its reply, a close, or the socket closing."""
        replies = SYNC_REPLIES.get(name, [])
        saved = self.quiet_sends
        real_record = self._record
        if not _record:
            self.quiet_sends = True
            sink: list[str] = []
            self._record = sink.append
        try:
            self.send_method(ch, name, **kw)
            ev = self.wait(
                lambda e: (e.channel == ch and (e.name in replies or e.name == "channel.close"))
                or e.name == "connection.close"
                or e.kind == "closed",
                timeout,
            )
            if ev is None:
                if self.eof:
                    self.rec(f"<- (no reply to {name}: the connection is closed)")
                else:
                    self.rec(f"<- (no reply to {name} within {timeout:g}s)")
            elif not _record and (ev.name not in replies):
                # an unexpected answer is always shown
                for line in sink:
                    real_record(line)
            return ev
        finally:
            self.quiet_sends = saved
            self._record = real_record

    def sync_channel(self, ch: int) -> None:
        """Put channel ch in confirm mode; from then on every publish on it waits for its
        confirm, so that the message is in its queues before the scenario goes on (a
        passive queue.declare is no barrier: RabbitMQ answers it ahead of queued publishes).
        Those acks are not recorded."""
        self.call(ch, "confirm.select")
        if not hasattr(self, "_sync"):
            self._sync: dict[int, int] = {}
        self._sync[ch] = 0

    def publish(self, ch: int, exchange: str, routing_key: str, body=b"", props=None,
                mandatory: bool = False, immediate: bool = False):
        sync = getattr(self, "_sync", {})
        if ch not in sync:
            super().publish(ch, exchange, routing_key, body, props, mandatory, immediate)
            return
        # The publish line is recorded now; what arrives while waiting for the confirm is
        # recorded after the run of publishes, so that consecutive publishes read the same
        # whenever their deliveries happen to arrive.
        self.in_sync = True
        self.deferring = False  # the publish line itself goes before what was deferred
        try:
            super().publish(ch, exchange, routing_key, body, props, mandatory, immediate)
        finally:
            self.deferring = True
        if self.eof:
            self.in_sync = False
            return
        sync[ch] += 1
        seq = sync[ch]
        is_ack = lambda e: e.channel == ch and e.name == "basic.ack"  # noqa: E731
        self.hidden = is_ack
        try:
            while True:
                ev = self.wait(lambda e: is_ack(e) or e.name in ("basic.nack", "channel.close", "connection.close")
                               or e.kind == "closed", TIMEOUT)
                if ev is None:
                    self.rec(f"<- (no confirm for publish {seq} within {TIMEOUT:g}s)")
                    return
                if not is_ack(ev):
                    return
                if ev["delivery_tag"] >= seq:
                    return
        finally:
            self.hidden = None
            self.in_sync = False

    def declare_queue(self, ch: int, queue: str, **kw) -> Optional[Event]:
        args = kw.pop("arguments", None)
        return self.call(ch, "queue.declare", queue=queue, arguments=args, **kw)

    def declare_exchange(self, ch: int, exchange: str, type: str = "direct", **kw) -> Optional[Event]:
        args = kw.pop("arguments", None)
        return self.call(ch, "exchange.declare", exchange=exchange, type=type, arguments=args, **kw)

    def bind(self, ch: int, queue: str, exchange: str, routing_key: str = "", arguments=None) -> Optional[Event]:
        return self.call(ch, "queue.bind", queue=queue, exchange=exchange, routing_key=routing_key,
                         arguments=arguments)

    def get(self, ch: int, queue: str, no_ack: bool = False) -> Optional[Event]:
        return self.call(ch, "basic.get", queue=queue, no_ack=no_ack)

    def consume(self, ch: int, queue: str, tag: str = "", no_ack: bool = False, exclusive: bool = False,
                arguments=None, no_local: bool = False) -> Optional[str]:
        ev = self.call(ch, "basic.consume", queue=queue, consumer_tag=tag, no_ack=no_ack,
                       exclusive=exclusive, arguments=arguments, no_local=no_local)
        if ev is not None and ev.name == "basic.consume-ok":
            return ev["consumer_tag"].decode()
        return None

    def ack(self, ch: int, tag: int, multiple: bool = False) -> None:
        self.send(ch, "basic.ack", delivery_tag=tag, multiple=multiple)

    def nack(self, ch: int, tag: int, multiple: bool = False, requeue: bool = True) -> None:
        self.send(ch, "basic.nack", delivery_tag=tag, multiple=multiple, requeue=requeue)

    def reject(self, ch: int, tag: int, requeue: bool = True) -> None:
        self.send(ch, "basic.reject", delivery_tag=tag, requeue=requeue)

    def deliveries(self, ch: int, n: int, timeout: float = TIMEOUT, settle: float = SETTLE) -> list[Event]:
        """Wait for n basic.deliver on channel ch, then watch `settle` seconds for more."""
        out = []
        deadline = time.monotonic() + timeout
        while len(out) < n:
            ev = self.wait(lambda e: e.channel == ch and e.name == "basic.deliver"
                           or e.name in ("channel.close", "connection.close") or e.kind == "closed",
                           max(0.0, deadline - time.monotonic()))
            if ev is None:
                self.rec(f"<- (only {len(out)} of {n} deliveries within {timeout:g}s)")
                break
            if ev.name != "basic.deliver":
                break
            out.append(ev)
        if settle:
            self.poll(settle)
        return out

    def expect(self, pred, what: str, timeout: float = TIMEOUT) -> Optional[Event]:
        if isinstance(pred, str):
            names = pred
            pred = lambda e: e.name == names  # noqa: E731
        ev = self.wait(lambda e: pred(e) or e.kind == "closed" or e.name == "connection.close", timeout)
        if ev is None:
            self.rec(f"<- (no {what} within {timeout:g}s)")
        return ev

    def settle(self, timeout: float = SETTLE) -> None:
        self.poll(timeout)

    def expect_closed(self, timeout: float = TIMEOUT) -> bool:
        if self.eof:
            return True  # already recorded
        ev = self.wait(lambda e: e.kind == "closed", timeout)
        if ev is None:
            self.rec(f"<- (socket still open after {timeout:g}s)")
            return False
        return True

    def expect_silent_close(self, timeout: float = 1.0) -> None:
        """For errors before the connection is open. RabbitMQ answers them with no frame at
        all and closes the socket only after a delay (3 s, its SILENT_CLOSE_DELAY), so
        'closed silently' and 'still silent after `timeout`' are recorded the same way;
        any frame that does arrive is recorded as usual."""
        if getattr(self, "silent_recorded", False) or self.eof:
            return
        if self._silent_wait(timeout) is not None:
            self.expect_closed()

    def _silent_wait(self, timeout: float = 1.0) -> Optional[Event]:
        """Wait for the next frame; None (and the normalized line recorded) if the socket
        closes or nothing arrives within timeout."""
        saved = self.hidden
        self.hidden = lambda e: e.kind == "closed"
        try:
            ev = self.wait(lambda e: e.kind != "heartbeat", timeout)
        finally:
            self.hidden = saved
        if ev is None or ev.kind == "closed":
            self.rec("<- (no frame; socket closed, or silent until closed later)")
            self.silent_recorded = True
            return None
        return ev

    def close(self, timeout: float = TIMEOUT, _record: bool = True) -> None:
        """connection.close 200, then close-ok and the socket closing."""
        if self.eof:
            return
        real_record = self._record
        if not _record:
            self._record = lambda line: None
        try:
            self.send_method(0, "connection.close", reply_code=200, reply_text="bye", class_id=0, method_id=0)
            ev = self.wait(lambda e: e.name in ("connection.close-ok", "connection.close") or e.kind == "closed", timeout)
            if ev is None:
                self.rec(f"<- (no connection.close-ok within {timeout:g}s)")
            elif ev.name == "connection.close":
                self.wait(lambda e: e.kind == "closed", timeout)
        finally:
            self._record = real_record
            # after close-ok the client closes the socket (whether the server closes it
            # first is a race, so it is not recorded)
            self.close_socket()

    def close_channel(self, ch: int) -> Optional[Event]:
        return self.call(ch, "channel.close", reply_code=200, reply_text="bye", class_id=0, method_id=0)

    def confirms(self, ch: int, upto: int, timeout: float = TIMEOUT, settle: float = SETTLE) -> dict[int, str]:
        """Collect publisher confirms on ch until every sequence number 1..upto is settled.
        Returns {seq: 'ack'|'nack'}; the confirms themselves are recorded as one line,
        as the set of sequence numbers, because a broker may coalesce them (multiple=true)."""
        if not hasattr(self, "_confirmed"):
            self._confirmed: dict[int, dict[int, str]] = {}
        done = self._confirmed.setdefault(ch, {})
        is_confirm = lambda e: e.channel == ch and e.name in ("basic.ack", "basic.nack")  # noqa: E731
        # confirms of every channel stay unrecorded: another channel's are collected by
        # its own confirms() call (they wait in the inbox)
        self.hidden = lambda e: e.name in ("basic.ack", "basic.nack")
        try:
            deadline = time.monotonic() + timeout
            while not all(i in done for i in range(1, upto + 1)):
                ev = self.wait(lambda e: is_confirm(e) or e.name in ("channel.close", "connection.close")
                               or e.kind == "closed", max(0.0, deadline - time.monotonic()))
                if ev is None or not is_confirm(ev):
                    break
                kind = "ack" if ev.name == "basic.ack" else "nack"
                tag = ev["delivery_tag"]
                if tag in done or (tag == 0 and not ev["multiple"]):
                    self.rec(f"<- ch{ch} {ev.name} delivery_tag={tag} (already confirmed or zero)")
                if ev["multiple"]:
                    for i in range(1, tag + 1):
                        done.setdefault(i, kind)
                else:
                    done[tag] = kind
            if settle:
                self.poll(settle)
                for ev in [e for e in self.inbox if is_confirm(e)]:
                    self.inbox.remove(ev)
                    self.rec(f"<- ch{ch} extra {ev.name} delivery_tag={ev['delivery_tag']} multiple={ev['multiple']}")
        finally:
            self.hidden = None
        acks = sorted(i for i, k in done.items() if k == "ack")
        nacks = sorted(i for i, k in done.items() if k == "nack")
        self.rec(f"<- ch{ch} confirms so far: ack={_ranges(acks)} nack={_ranges(nacks)}")
        return done

    def heartbeat(self, ch: int = 0) -> None:
        self.send_raw(frame(FRAME_HEARTBEAT, ch, b""), f"ch{ch} heartbeat")


def _ranges(xs: list[int]) -> str:
    if not xs:
        return "-"
    out, start, prev = [], xs[0], xs[0]
    for x in xs[1:] + [None]:
        if x is not None and x == prev + 1:
            prev = x
            continue
        out.append(f"{start}" if start == prev else f"{start}..{prev}")
        if x is not None:
            start = prev = x
    return ",".join(out)


# --------------------------------------------------------------------------------------
# Normalization


NORMALIZATIONS = [
    "Resource names carry a random per-run suffix (so that leftovers of an earlier run, e.g. durable "
    "queues, never interfere); it is replaced by `~`.",
    "Server-generated queue names (`amq.gen-...`) become `<genN>`, numbered by first appearance in the "
    "transcript; the prefix `amq.gen-` itself is compared.",
    "Server-generated consumer tags (`amq.ctag-...`) become `<ctagN>`, numbered by first appearance; "
    "the prefix `amq.ctag-` itself is compared.",
    "Direct reply-to queue names (`amq.rabbitmq.reply-to.` followed by a server-chosen suffix) "
    "become `<replyN>`, numbered by first appearance; the prefix itself is compared.",
    "connection.start: the `capabilities` table is compared exactly; of the other server properties "
    "(product, version, platform, copyright, information, cluster_name) only the names and field "
    "types are compared, not the values.",
    "Publisher confirms (basic.ack/basic.nack from the broker) are recorded as the sets of acked and "
    "nacked sequence numbers, not frame by frame: a broker may legitimately coalesce them with "
    "multiple=true at any point. A confirm for an already confirmed number is still recorded.",
    "Errors before connection.open-ok (bad credentials without authentication_failure_close, "
    "unknown mechanism, bad tune-ok, out-of-order handshake methods): RabbitMQ sends no frame and "
    "closes the socket only after its 3 s silent-close delay. Such a scenario waits 1 s and records "
    "`no frame; socket closed, or silent until closed later` whether or not the socket closed in "
    "that time; any frame received is recorded as usual.",
    "Not a normalization but a method: where a scenario reads message counts or reads on another "
    "channel what it published, it publishes on a channel in confirm mode and waits for each confirm "
    "(those acks are not recorded), because RabbitMQ answers queue.declare (message_count) ahead of "
    "publishes still queued, and another channel's basic.get may overtake them.",
    "After a connection.close from the server the client answers close-ok and closes the socket "
    "itself, as real clients do; whether and when the server would have closed it is not recorded "
    "(after a framing error RabbitMQ cannot parse the close-ok and keeps the socket open for "
    "seconds). A socket the server closes without any connection.close is recorded (`socket closed`).",
    "A connection reset by the server is recorded the same as an orderly close (`socket closed`).",
    "Heartbeat frames from the server are not recorded, except in the heartbeat scenarios, which record "
    "whether one arrived within a time window.",
    "pika scenarios record the exception class and reply code/text that pika raises, the values "
    "pika returns, and message bodies/properties; pika's own internal state is not recorded.",
]

_GEN = re.compile(r"amq\.gen-[A-Za-z0-9_\-]+")
_CTAG = re.compile(r"amq\.ctag-[A-Za-z0-9_\-]+")
_REPLY = re.compile(r"amq\.rabbitmq\.reply-to\.[A-Za-z0-9+/=._-]+")


def normalize(lines: list[str], token: str) -> list[str]:
    maps: dict[str, dict[str, str]] = {"gen": {}, "ctag": {}, "reply": {}}

    def sub(kind: str):
        def f(m):
            d = maps[kind]
            if m.group(0) not in d:
                d[m.group(0)] = f"<{kind}{len(d) + 1}>"
            return d[m.group(0)]
        return f

    out = []
    for line in lines:
        line = line.replace(token, "~")
        line = _GEN.sub(sub("gen"), line)
        line = _CTAG.sub(sub("ctag"), line)
        line = _REPLY.sub(sub("reply"), line)
        out.append(line)
    return out


def run_scenario(s: Scenario, broker: Broker) -> tuple[list[str], float]:
    t = T(broker)
    start = time.monotonic()
    try:
        s.func(t)
    except Exception as e:  # a scenario error is part of the transcript (and differs)
        tb = traceback.extract_tb(e.__traceback__)
        where = next((f"{f.filename.rsplit('/', 1)[-1]}:{f.lineno}" for f in reversed(tb)
                      if "scenarios" in f.filename), "?")
        t.add(f"!! scenario error {type(e).__name__}: {e} at {where}")
    finally:
        try:
            t.finish()
        except Exception:
            pass
    return normalize(t.lines, t.token), time.monotonic() - start


__all__ = [
    "Broker", "Client", "Event", "SCENARIOS", "Scenario", "T", "TIMEOUT", "SETTLE", "scenario",
    "normalize", "run_scenario", "NORMALIZATIONS", "frame", "encode_method", "FRAME_METHOD",
    "FRAME_HEARTBEAT", "PROTOCOL_HEADER", "fmt_body", "fmt_bytes", "fmt_props", "fmt_table", "quote",
]
