"""A small, hand-written AMQP 0-9-1 client codec for conformance tests.

It can do the handshake, send any frame (well-formed or not) and record everything the
server sends back, in arrival order, into a transcript (a list of text lines).

Field tables keep the type of every value: a decoded table is a dict of name -> Value
(type tag + python value), so a transcript shows `I:5`, not just `5`. To encode, pass
plain python values (bool, int, str, bytes, float, dict, list, None) or Value(tag, v)
to force a type.
"""

from __future__ import annotations

import decimal
import errno
import select
import socket
import struct
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

PROTOCOL_HEADER = b"AMQP\x00\x00\x09\x01"
FRAME_METHOD, FRAME_HEADER, FRAME_BODY, FRAME_HEARTBEAT = 1, 2, 3, 8
FRAME_END = 0xCE


# --------------------------------------------------------------------------------------
# Field values and tables


@dataclass(frozen=True)
class Value:
    tag: str  # one of t b B s u I i l f d D S x A T F V
    value: Any

    def __repr__(self) -> str:
        return fmt_value(self)


@dataclass(frozen=True)
class Decimal:
    scale: int
    value: int


def to_value(v: Any) -> Value:
    if isinstance(v, Value):
        return v
    if v is None:
        return Value("V", None)
    if isinstance(v, bool):
        return Value("t", v)
    if isinstance(v, int):
        if -(2**31) <= v < 2**31:
            return Value("I", v)
        return Value("l", v)
    if isinstance(v, float):
        return Value("d", v)
    if isinstance(v, str):
        return Value("S", v.encode())
    if isinstance(v, (bytes, bytearray)):
        return Value("S", bytes(v))
    if isinstance(v, dict):
        return Value("F", v)
    if isinstance(v, (list, tuple)):
        return Value("A", list(v))
    if isinstance(v, Decimal):
        return Value("D", v)
    raise TypeError(f"no AMQP type for {v!r}")


def enc_shortstr(s: Any) -> bytes:
    b = s.encode() if isinstance(s, str) else bytes(s)
    if len(b) > 255:
        raise ValueError("shortstr longer than 255 octets")
    return bytes([len(b)]) + b


def enc_longstr(s: Any) -> bytes:
    b = s.encode() if isinstance(s, str) else bytes(s)
    return struct.pack(">I", len(b)) + b


def enc_value(v: Any) -> bytes:
    v = to_value(v)
    t, x = v.tag, v.value
    tb = t.encode()
    if t == "t":
        return tb + struct.pack(">B", 1 if x else 0)
    if t == "b":
        return tb + struct.pack(">b", x)
    if t == "B":
        return tb + struct.pack(">B", x)
    if t == "s":
        return tb + struct.pack(">h", x)
    if t == "u":
        return tb + struct.pack(">H", x)
    if t == "I":
        return tb + struct.pack(">i", x)
    if t == "i":
        return tb + struct.pack(">I", x)
    if t == "l":
        return tb + struct.pack(">q", x)
    if t == "f":
        return tb + struct.pack(">f", x)
    if t == "d":
        return tb + struct.pack(">d", x)
    if t == "D":
        return tb + struct.pack(">BI", x.scale, x.value)
    if t in ("S", "x"):
        return tb + enc_longstr(x)
    if t == "T":
        return tb + struct.pack(">Q", x)
    if t == "F":
        return tb + enc_table(x)
    if t == "A":
        body = b"".join(enc_value(e) for e in x)
        return tb + struct.pack(">I", len(body)) + body
    if t == "V":
        return tb
    raise ValueError(f"unknown field type {t!r}")


def enc_table(d: Optional[dict]) -> bytes:
    if not d:
        return struct.pack(">I", 0)
    body = b"".join(enc_shortstr(k) + enc_value(v) for k, v in d.items())
    return struct.pack(">I", len(body)) + body


class DecodeError(Exception):
    pass


class Reader:
    def __init__(self, data: bytes):
        self.data = data
        self.pos = 0

    def take(self, n: int) -> bytes:
        if self.pos + n > len(self.data):
            raise DecodeError(f"truncated: need {n} octets at {self.pos} of {len(self.data)}")
        b = self.data[self.pos : self.pos + n]
        self.pos += n
        return b

    def unpack(self, fmt: str):
        return struct.unpack(fmt, self.take(struct.calcsize(fmt)))

    def octet(self):
        return self.unpack(">B")[0]

    def short(self):
        return self.unpack(">H")[0]

    def long(self):
        return self.unpack(">I")[0]

    def longlong(self):
        return self.unpack(">Q")[0]

    def shortstr(self) -> bytes:
        return self.take(self.octet())

    def longstr(self) -> bytes:
        return self.take(self.long())

    def table(self) -> dict:
        r = Reader(self.longstr())
        out = {}
        while r.pos < len(r.data):
            k = r.shortstr().decode(errors="replace")
            out[k] = r.value()
        return out

    def value(self) -> Value:
        t = chr(self.octet())
        if t == "t":
            return Value(t, bool(self.octet()))
        if t == "b":
            return Value(t, self.unpack(">b")[0])
        if t == "B":
            return Value(t, self.unpack(">B")[0])
        if t == "s":
            return Value(t, self.unpack(">h")[0])
        if t == "u":
            return Value(t, self.unpack(">H")[0])
        if t == "I":
            return Value(t, self.unpack(">i")[0])
        if t == "i":
            return Value(t, self.unpack(">I")[0])
        if t == "l":
            return Value(t, self.unpack(">q")[0])
        if t == "f":
            return Value(t, self.unpack(">f")[0])
        if t == "d":
            return Value(t, self.unpack(">d")[0])
        if t == "D":
            s, v = self.unpack(">BI")
            return Value(t, Decimal(s, v))
        if t in ("S", "x"):
            return Value(t, self.longstr())
        if t == "T":
            return Value(t, self.longlong())
        if t == "F":
            return Value(t, self.table())
        if t == "A":
            r = Reader(self.longstr())
            items = []
            while r.pos < len(r.data):
                items.append(r.value())
            return Value(t, items)
        if t == "V":
            return Value(t, None)
        raise DecodeError(f"unknown field type {t!r}")


def fmt_bytes(b: bytes) -> str:
    try:
        s = b.decode()
        return repr(s)
    except UnicodeDecodeError:
        return "0x" + b.hex()


def fmt_value(v: Value) -> str:
    t, x = v.tag, v.value
    if t in ("S", "x"):
        return f"{t}:{fmt_bytes(x)}"
    if t == "F":
        return "F:" + fmt_table(x)
    if t == "A":
        return "A:[" + ", ".join(fmt_value(to_value(e)) for e in x) + "]"
    if t == "D":
        return f"D:{x.value}e-{x.scale}"
    if t == "V":
        return "V"
    return f"{t}:{x!r}"


def fmt_table(d: dict) -> str:
    return "{" + ", ".join(f"{k}={fmt_value(to_value(v))}" for k, v in sorted(d.items())) + "}"


# --------------------------------------------------------------------------------------
# Methods

# class id -> (class name, {method id -> (method name, [(field, type)])})
_SPEC_TEXT = {
    (10, "connection"): {
        10: ("start", "version_major:octet version_minor:octet server_properties:table mechanisms:longstr locales:longstr"),
        11: ("start-ok", "client_properties:table mechanism:shortstr response:longstr locale:shortstr"),
        20: ("secure", "challenge:longstr"),
        21: ("secure-ok", "response:longstr"),
        30: ("tune", "channel_max:short frame_max:long heartbeat:short"),
        31: ("tune-ok", "channel_max:short frame_max:long heartbeat:short"),
        40: ("open", "virtual_host:shortstr reserved_1:shortstr reserved_2:bit"),
        41: ("open-ok", "reserved_1:shortstr"),
        50: ("close", "reply_code:short reply_text:shortstr class_id:short method_id:short"),
        51: ("close-ok", ""),
        60: ("blocked", "reason:shortstr"),
        61: ("unblocked", ""),
        70: ("update-secret", "new_secret:longstr reason:shortstr"),
        71: ("update-secret-ok", ""),
    },
    (20, "channel"): {
        10: ("open", "reserved_1:shortstr"),
        11: ("open-ok", "reserved_1:longstr"),
        20: ("flow", "active:bit"),
        21: ("flow-ok", "active:bit"),
        40: ("close", "reply_code:short reply_text:shortstr class_id:short method_id:short"),
        41: ("close-ok", ""),
    },
    (30, "access"): {
        10: ("request", "realm:shortstr exclusive:bit passive:bit active:bit write:bit read:bit"),
        11: ("request-ok", "reserved_1:short"),
    },
    (40, "exchange"): {
        10: ("declare", "reserved_1:short exchange:shortstr type:shortstr passive:bit durable:bit auto_delete:bit internal:bit no_wait:bit arguments:table"),
        11: ("declare-ok", ""),
        20: ("delete", "reserved_1:short exchange:shortstr if_unused:bit no_wait:bit"),
        21: ("delete-ok", ""),
        30: ("bind", "reserved_1:short destination:shortstr source:shortstr routing_key:shortstr no_wait:bit arguments:table"),
        31: ("bind-ok", ""),
        40: ("unbind", "reserved_1:short destination:shortstr source:shortstr routing_key:shortstr no_wait:bit arguments:table"),
        51: ("unbind-ok", ""),
    },
    (50, "queue"): {
        10: ("declare", "reserved_1:short queue:shortstr passive:bit durable:bit exclusive:bit auto_delete:bit no_wait:bit arguments:table"),
        11: ("declare-ok", "queue:shortstr message_count:long consumer_count:long"),
        20: ("bind", "reserved_1:short queue:shortstr exchange:shortstr routing_key:shortstr no_wait:bit arguments:table"),
        21: ("bind-ok", ""),
        30: ("purge", "reserved_1:short queue:shortstr no_wait:bit"),
        31: ("purge-ok", "message_count:long"),
        40: ("delete", "reserved_1:short queue:shortstr if_unused:bit if_empty:bit no_wait:bit"),
        41: ("delete-ok", "message_count:long"),
        50: ("unbind", "reserved_1:short queue:shortstr exchange:shortstr routing_key:shortstr arguments:table"),
        51: ("unbind-ok", ""),
    },
    (60, "basic"): {
        10: ("qos", "prefetch_size:long prefetch_count:short global:bit"),
        11: ("qos-ok", ""),
        20: ("consume", "reserved_1:short queue:shortstr consumer_tag:shortstr no_local:bit no_ack:bit exclusive:bit no_wait:bit arguments:table"),
        21: ("consume-ok", "consumer_tag:shortstr"),
        30: ("cancel", "consumer_tag:shortstr no_wait:bit"),
        31: ("cancel-ok", "consumer_tag:shortstr"),
        40: ("publish", "reserved_1:short exchange:shortstr routing_key:shortstr mandatory:bit immediate:bit"),
        50: ("return", "reply_code:short reply_text:shortstr exchange:shortstr routing_key:shortstr"),
        60: ("deliver", "consumer_tag:shortstr delivery_tag:longlong redelivered:bit exchange:shortstr routing_key:shortstr"),
        70: ("get", "reserved_1:short queue:shortstr no_ack:bit"),
        71: ("get-ok", "delivery_tag:longlong redelivered:bit exchange:shortstr routing_key:shortstr message_count:long"),
        72: ("get-empty", "reserved_1:shortstr"),
        80: ("ack", "delivery_tag:longlong multiple:bit"),
        90: ("reject", "delivery_tag:longlong requeue:bit"),
        100: ("recover-async", "requeue:bit"),
        110: ("recover", "requeue:bit"),
        111: ("recover-ok", ""),
        120: ("nack", "delivery_tag:longlong multiple:bit requeue:bit"),
    },
    (85, "confirm"): {
        10: ("select", "nowait:bit"),
        11: ("select-ok", ""),
    },
    (90, "tx"): {
        10: ("select", ""),
        11: ("select-ok", ""),
        20: ("commit", ""),
        21: ("commit-ok", ""),
        30: ("rollback", ""),
        31: ("rollback-ok", ""),
    },
}

METHODS_BY_ID: dict[tuple[int, int], tuple[str, list[tuple[str, str]]]] = {}
METHODS_BY_NAME: dict[str, tuple[int, int, list[tuple[str, str]]]] = {}
CLASS_NAMES: dict[int, str] = {}
for (cid, cname), methods in _SPEC_TEXT.items():
    CLASS_NAMES[cid] = cname
    for mid, (mname, ftext) in methods.items():
        fields = [tuple(f.split(":")) for f in ftext.split()]
        full = f"{cname}.{mname}"
        METHODS_BY_ID[(cid, mid)] = (full, fields)
        METHODS_BY_NAME[full] = (cid, mid, fields)

# methods that expect a synchronous reply from the server, and the reply
SYNC_REPLIES = {
    "connection.open": ["connection.open-ok"],
    "connection.close": ["connection.close-ok"],
    "channel.open": ["channel.open-ok"],
    "channel.flow": ["channel.flow-ok"],
    "channel.close": ["channel.close-ok"],
    "access.request": ["access.request-ok"],
    "exchange.declare": ["exchange.declare-ok"],
    "exchange.delete": ["exchange.delete-ok"],
    "exchange.bind": ["exchange.bind-ok"],
    "exchange.unbind": ["exchange.unbind-ok"],
    "queue.declare": ["queue.declare-ok"],
    "queue.bind": ["queue.bind-ok"],
    "queue.purge": ["queue.purge-ok"],
    "queue.delete": ["queue.delete-ok"],
    "queue.unbind": ["queue.unbind-ok"],
    "basic.qos": ["basic.qos-ok"],
    "basic.consume": ["basic.consume-ok"],
    "basic.cancel": ["basic.cancel-ok"],
    "basic.get": ["basic.get-ok", "basic.get-empty"],
    "basic.recover": ["basic.recover-ok"],
    "confirm.select": ["confirm.select-ok"],
    "tx.select": ["tx.select-ok"],
    "tx.commit": ["tx.commit-ok"],
    "tx.rollback": ["tx.rollback-ok"],
}


def method_name(cid: int, mid: int) -> str:
    m = METHODS_BY_ID.get((cid, mid))
    return m[0] if m else f"{cid}/{mid}"


def encode_method(name: str, **kw) -> bytes:
    cid, mid, fields = METHODS_BY_NAME[name]
    out = bytearray(struct.pack(">HH", cid, mid))
    bits: list[bool] = []

    def flush_bits():
        if bits:
            v = 0
            for i, b in enumerate(bits):
                if b:
                    v |= 1 << i
            out.append(v)
            bits.clear()

    for fname, ftype in fields:
        val = kw.pop(fname, None)
        if ftype == "bit":
            if len(bits) == 8:
                flush_bits()
            bits.append(bool(val))
            continue
        flush_bits()
        if ftype == "octet":
            out += struct.pack(">B", val or 0)
        elif ftype == "short":
            out += struct.pack(">H", val or 0)
        elif ftype == "long":
            out += struct.pack(">I", val or 0)
        elif ftype == "longlong":
            out += struct.pack(">Q", val or 0)
        elif ftype == "shortstr":
            out += enc_shortstr(val or b"")
        elif ftype == "longstr":
            out += enc_longstr(val or b"")
        elif ftype == "table":
            out += enc_table(val)
        elif ftype == "timestamp":
            out += struct.pack(">Q", val or 0)
        else:
            raise ValueError(ftype)
    flush_bits()
    if kw:
        raise TypeError(f"{name}: unknown fields {sorted(kw)}")
    return bytes(out)


def decode_method(payload: bytes) -> tuple[str, dict]:
    r = Reader(payload)
    cid, mid = r.unpack(">HH")
    m = METHODS_BY_ID.get((cid, mid))
    if m is None:
        return f"{cid}/{mid}", {"raw": payload[4:]}
    name, fields = m
    out: dict[str, Any] = {}
    bitbyte, bitpos = 0, 8
    for fname, ftype in fields:
        if ftype == "bit":
            if bitpos == 8:
                bitbyte, bitpos = r.octet(), 0
            out[fname] = bool(bitbyte & (1 << bitpos))
            bitpos += 1
            continue
        bitpos = 8
        if ftype == "octet":
            out[fname] = r.octet()
        elif ftype == "short":
            out[fname] = r.short()
        elif ftype == "long":
            out[fname] = r.long()
        elif ftype == "longlong":
            out[fname] = r.longlong()
        elif ftype == "shortstr":
            out[fname] = r.shortstr()
        elif ftype == "longstr":
            out[fname] = r.longstr()
        elif ftype == "table":
            out[fname] = r.table()
        elif ftype == "timestamp":
            out[fname] = r.longlong()
    if r.pos != len(payload):
        out["_trailing"] = payload[r.pos :]
    return name, out


# --------------------------------------------------------------------------------------
# Content header (basic class properties)

BASIC_PROPS = [
    ("content_type", "shortstr"),
    ("content_encoding", "shortstr"),
    ("headers", "table"),
    ("delivery_mode", "octet"),
    ("priority", "octet"),
    ("correlation_id", "shortstr"),
    ("reply_to", "shortstr"),
    ("expiration", "shortstr"),
    ("message_id", "shortstr"),
    ("timestamp", "timestamp"),
    ("type", "shortstr"),
    ("user_id", "shortstr"),
    ("app_id", "shortstr"),
    ("cluster_id", "shortstr"),
]


def encode_header(class_id: int, body_size: int, props: Optional[dict] = None, weight: int = 0) -> bytes:
    props = dict(props or {})
    flags = 0
    out = bytearray()
    for i, (pname, ptype) in enumerate(BASIC_PROPS):
        if pname not in props:
            continue
        v = props.pop(pname)
        flags |= 1 << (15 - i)
        if ptype == "shortstr":
            out += enc_shortstr(v)
        elif ptype == "table":
            out += enc_table(v)
        elif ptype == "octet":
            out += struct.pack(">B", v)
        elif ptype == "timestamp":
            out += struct.pack(">Q", v)
    if props:
        raise TypeError(f"unknown properties {sorted(props)}")
    return struct.pack(">HHQH", class_id, weight, body_size, flags) + bytes(out)


def decode_header(payload: bytes) -> tuple[int, int, dict]:
    r = Reader(payload)
    cid, _weight, size, flags = r.unpack(">HHQH")
    props: dict[str, Any] = {}
    for i, (pname, ptype) in enumerate(BASIC_PROPS):
        if not flags & (1 << (15 - i)):
            continue
        if ptype == "shortstr":
            props[pname] = r.shortstr()
        elif ptype == "table":
            props[pname] = r.table()
        elif ptype == "octet":
            props[pname] = r.octet()
        elif ptype == "timestamp":
            props[pname] = r.longlong()
    return cid, size, props


def fmt_props(p: dict) -> str:
    parts = []
    for pname, _ in BASIC_PROPS:
        if pname not in p:
            continue
        v = p[pname]
        if isinstance(v, dict):
            parts.append(f"{pname}={fmt_table(v)}")
        elif isinstance(v, bytes):
            parts.append(f"{pname}={fmt_bytes(v)}")
        else:
            parts.append(f"{pname}={v!r}")
    return "{" + ", ".join(parts) + "}"


def fmt_fields(fields: dict) -> str:
    parts = []
    for k, v in fields.items():
        if k.startswith("reserved"):
            continue
        if isinstance(v, dict):
            parts.append(f"{k}={fmt_table(v)}")
        elif isinstance(v, bytes):
            parts.append(f"{k}={fmt_bytes(v)}")
        else:
            parts.append(f"{k}={v!r}")
    return " ".join(parts)


def frame(ftype: int, channel: int, payload: bytes, end: int = FRAME_END) -> bytes:
    return struct.pack(">BHI", ftype, channel, len(payload)) + payload + bytes([end])


# --------------------------------------------------------------------------------------
# Events the client sees


@dataclass
class Event:
    kind: str  # method | content | heartbeat | closed | raw | bad-frame
    channel: int = 0
    name: str = ""
    fields: dict = field(default_factory=dict)
    props: dict = field(default_factory=dict)
    body: bytes = b""
    text: str = ""
    size: Optional[int] = None

    def __getitem__(self, k):
        return self.fields[k]

    def get(self, k, default=None):
        return self.fields.get(k, default)


def fmt_body(b: bytes) -> str:
    if len(b) > 64:
        return f"<{len(b)} octets>"
    return fmt_bytes(b)


def describe(ev: Event) -> str:
    if ev.kind == "closed":
        return "socket closed"
    if ev.kind == "heartbeat":
        return f"ch{ev.channel} heartbeat"
    if ev.kind == "raw":
        return f"raw {ev.text}"
    if ev.kind == "bad-frame":
        return f"bad frame {ev.text}"
    if ev.name in ("connection.close", "channel.close"):
        f = ev.fields
        return (
            f"ch{ev.channel} {ev.name} {f['reply_code']} {fmt_bytes(f['reply_text'])} "
            f"{f['class_id']}/{f['method_id']} ({method_name(f['class_id'], f['method_id'])})"
        )
    if ev.name == "connection.start":
        # Normalized: only the capabilities table is compared exactly; of the other
        # server properties (product, version, platform, ...) only the names and types.
        f = ev.fields
        sp = f["server_properties"]
        caps = sp.get("capabilities")
        others = ", ".join(f"{k}:{v.tag}" for k, v in sorted(sp.items()) if k != "capabilities")
        # RabbitMQ 3.10.8 lists its mechanisms in an order that changes between boots (both
        # 'PLAIN AMQPLAIN' and 'AMQPLAIN PLAIN' seen); clients choose by name, so sort them.
        mechanisms = b" ".join(sorted(bytes(f["mechanisms"]).split()))
        return (
            f"ch{ev.channel} connection.start version={f['version_major']}-{f['version_minor']} "
            f"capabilities={fmt_value(caps) if caps else None} other_server_properties=[{others}] "
            f"mechanisms={fmt_bytes(mechanisms)} locales={fmt_bytes(f['locales'])}"
        )
    s = f"ch{ev.channel} {ev.name}"
    fs = fmt_fields(ev.fields)
    if fs:
        s += " " + fs
    if ev.kind == "content":
        s += f" | props={fmt_props(ev.props)} body={fmt_body(ev.body)}"
    return s


# methods that carry content after them (server -> client)
CONTENT_METHODS = {"basic.deliver", "basic.get-ok", "basic.return"}


class Conn:
    """One TCP connection speaking raw AMQP. Every received event is appended to
    `log` (via `record`) the moment it is parsed; `inbox` keeps events for waiters."""

    def __init__(self, host: str, port: int, record: Callable[[str], None], label: str = "c1",
                 connect_timeout: float = 2.0):
        self.host, self.port = host, port
        self.label = label
        self._record = record
        self.sock = socket.create_connection((host, port), timeout=connect_timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock.setblocking(False)
        self.buf = bytearray()
        self.inbox: deque[Event] = deque()
        self.eof_seen = False
        self.closed_emitted = False
        self.frame_max = 131072
        self.pending: dict[int, Event] = {}  # channel -> content being assembled
        self.record_heartbeats = False
        self.auto_close_ok = True
        self.raw_mode = False  # before connection.start: record raw bytes if not a frame
        self.server_tune: Optional[Event] = None
        self.start: Optional[Event] = None
        self.quiet_sends = False
        self.hidden: Optional[Callable[[Event], bool]] = None  # events not to record
        # while True, received events are recorded later (at the next step that records)
        self.deferring = False
        self.in_sync = False
        # connection.start recorded in full only where asked (connection.handshake_full)
        self.brief_start = True
        self.deferred: list[str] = []

    # ---- recording
    def rec(self, line: str):
        if self.deferring:
            self.deferred.append(line)
            return
        self._record(f"{self.label} {line}")

    def end_defer(self):
        """Stop deferring (unless inside a confirm wait) and record what was deferred."""
        if self.in_sync:
            return
        self.deferring = False
        if self.deferred:
            lines, self.deferred = self.deferred, []
            for line in lines:
                self._record(f"{self.label} {line}")

    def sent(self, line: str):
        self.end_defer()
        if not self.quiet_sends:
            self.rec(f"-> {line}")

    # ---- sending
    def send_raw(self, data: bytes, note: Optional[str] = None):
        if note:
            self.sent(note)
        try:
            self.sock.setblocking(True)
            self.sock.settimeout(2.0)
            self.sock.sendall(data)
        except OSError:
            pass  # the peer may already have closed: what it says is in the transcript
        finally:
            try:
                self.sock.setblocking(False)
            except OSError:
                pass

    def send_frame(self, ftype: int, channel: int, payload: bytes, end: int = FRAME_END, note=None):
        self.send_raw(frame(ftype, channel, payload, end), note)

    def send_method(self, ch: int, name: str, _note: bool = True, **kw):
        payload = encode_method(name, **kw)
        shown = {k: v for k, v in kw.items() if not (v is None or v is False or (isinstance(v, dict) and not v))}
        note = f"ch{ch} {name}" + ((" " + fmt_fields(_plain(shown))) if shown else "")
        self.send_frame(FRAME_METHOD, ch, payload, note=note if _note else None)

    def send_content(self, ch: int, body: bytes, props: Optional[dict] = None, class_id: int = 60,
                     declared_size: Optional[int] = None, chunk: Optional[int] = None):
        size = len(body) if declared_size is None else declared_size
        data = frame(FRAME_HEADER, ch, encode_header(class_id, size, props))
        chunk = chunk or (self.frame_max - 8)
        for i in range(0, len(body), chunk):
            data += frame(FRAME_BODY, ch, body[i : i + chunk])
        self.send_raw(data)

    def publish(self, ch: int, exchange: str, routing_key: str, body: bytes | str = b"",
                props: Optional[dict] = None, mandatory: bool = False, immediate: bool = False):
        if isinstance(body, str):
            body = body.encode()
        note = f"ch{ch} basic.publish exchange={exchange!r} routing_key={routing_key!r}"
        if mandatory:
            note += " mandatory"
        if immediate:
            note += " immediate"
        if props:
            note += f" props={fmt_props(_plain(props))}"
        note += f" body={fmt_body(body)}"
        payload = encode_method("basic.publish", exchange=exchange, routing_key=routing_key,
                                mandatory=mandatory, immediate=immediate)
        size = len(body)
        parts = [frame(FRAME_METHOD, ch, payload), frame(FRAME_HEADER, ch, encode_header(60, size, props))]
        chunk = self.frame_max - 8
        mv = memoryview(body)
        end = bytes([FRAME_END])
        for i in range(0, len(body), chunk):
            piece = mv[i : i + chunk]
            parts.append(struct.pack(">BHI", FRAME_BODY, ch, len(piece)))
            parts.append(piece)
            parts.append(end)
        if size <= 1 << 20:
            self.send_raw(b"".join(parts), note)
        else:
            self.sent(note)
            self.send_raw(b"".join(parts[:2]))
            for i in range(2, len(parts), 300):
                self.send_raw(b"".join(parts[i : i + 300]))

    # ---- receiving
    def _fill(self, timeout: float) -> None:
        """Wait up to timeout for bytes and append them to the buffer; notes EOF."""
        if self.eof_seen:
            return
        try:
            r, _, _ = select.select([self.sock], [], [], max(timeout, 0))
        except (OSError, ValueError):
            self.eof_seen = True
            return
        if not r:
            return
        try:
            data = self.sock.recv(1 << 20)
        except BlockingIOError:
            return
        except OSError:
            data = b""  # connection reset: recorded like an orderly close
        if not data:
            self.eof_seen = True
            return
        self.buf += data

    def _emit(self, ev: Event) -> Event:
        self.inbox.append(ev)
        if ev.kind == "heartbeat" and not self.record_heartbeats:
            return ev
        if self.hidden is not None and self.hidden(ev):
            return ev
        if ev.name == "connection.start" and self.brief_start:
            f = ev.fields
            self.rec(f"<- ch{ev.channel} connection.start version={f['version_major']}-{f['version_minor']} "
                     "(server properties, mechanisms, locales: compared in connection.handshake_full)")
        else:
            self.rec("<- " + describe(ev))
        if ev.kind == "method":
            # channel.close is answered unless a scenario turns auto_close_ok off;
            # connection.close always is
            if ev.name == "channel.close" and self.auto_close_ok:
                self.send_method(ev.channel, "channel.close-ok", _note=False)
                self.rec(f"-> ch{ev.channel} channel.close-ok (auto)")
            elif ev.name == "connection.close":
                self.send_method(0, "connection.close-ok", _note=False)
                self.rec("-> ch0 connection.close-ok (auto); the client closes the socket")
                # Like real clients, close the socket after close-ok: when the server closes
                # its side is not recorded (after a framing error RabbitMQ cannot even read
                # the close-ok and keeps the socket open for a while).
                self.buf.clear()
                try:
                    self.sock.close()
                except OSError:
                    pass
                self.eof_seen = True
                self.closed_emitted = True
        return ev

    _CONTINUE = object()

    def _parse_one(self):
        """Parse at most one frame from the buffer. Returns the Event it completed, _CONTINUE
        if a frame was consumed without completing an event, or None if more bytes are
        needed (or, once the socket is closed and everything was parsed, None for ever)."""
        if self.raw_mode and self.buf:
            if self.buf[0:1] == b"A":
                if len(self.buf) < 8 and not self.eof_seen:
                    return None
                raw = bytes(self.buf[:8])
                del self.buf[:8]
                return self._emit(Event("raw", text=fmt_bytes(raw)))
            self.raw_mode = False
        if len(self.buf) >= 7:
            ftype, ch, size = struct.unpack(">BHI", self.buf[:7])
            if ftype not in (1, 2, 3, 8):
                raw = bytes(self.buf[:64])
                self.buf.clear()
                return self._emit(Event("bad-frame", text=f"type {ftype}: {fmt_bytes(raw)}"))
            if len(self.buf) >= 8 + size:
                payload = bytes(self.buf[7 : 7 + size])
                end = self.buf[7 + size]
                del self.buf[: 8 + size]
                if end != FRAME_END:
                    return self._emit(Event("bad-frame", text=f"frame end {end:#x}"))
                r = self._frame(ftype, ch, payload)
                return self._CONTINUE if r is None else r
        if self.eof_seen and not self.closed_emitted:
            self.closed_emitted = True
            if self.buf:
                raw = bytes(self.buf)
                self.buf.clear()
                self._emit(Event("raw", text=f"leftover {fmt_bytes(raw)}"))
            return self._emit(Event("closed"))
        return None

    def _frame(self, ftype: int, ch: int, payload: bytes) -> Optional[Event]:
        if ftype == FRAME_HEARTBEAT:
            return self._emit(Event("heartbeat", channel=ch))
        if ftype == FRAME_METHOD:
            try:
                name, fields = decode_method(payload)
            except DecodeError as e:
                return self._emit(Event("bad-frame", channel=ch, text=f"method: {e}"))
            if ch in self.pending:
                p = self.pending.pop(ch)
                self._emit(Event("bad-frame", channel=ch, text=f"incomplete content for {p.name}"))
            if name in CONTENT_METHODS:
                self.pending[ch] = Event("content", channel=ch, name=name, fields=fields)
                return None
            ev = Event("method", channel=ch, name=name, fields=fields)
            if name == "connection.start":
                self.start = ev
            if name == "connection.tune":
                self.server_tune = ev
            return self._emit(ev)
        p = self.pending.get(ch)
        if p is None:
            return self._emit(Event("bad-frame", channel=ch, text=f"unexpected frame type {ftype}"))
        if ftype == FRAME_HEADER:
            try:
                _cid, size, props = decode_header(payload)
            except DecodeError as e:
                return self._emit(Event("bad-frame", channel=ch, text=f"header: {e}"))
            p.props = props
            p.size = size
            p.body = b""
        else:
            p.body += payload
        if p.size is not None and len(p.body) >= p.size:
            del self.pending[ch]
            return self._emit(p)
        return None

    def _run(self, pred: Optional[Callable[[Event], bool]], timeout: float) -> Optional[Event]:
        self.end_defer()
        deadline = time.monotonic() + timeout
        if pred is not None:
            for i, ev in enumerate(self.inbox):
                if pred(ev):
                    del self.inbox[i]
                    return ev
        while True:
            r = self._parse_one()
            if r is self._CONTINUE:
                continue
            if r is not None:
                if pred is not None and pred(r):
                    self.inbox.remove(r)
                    return r
                continue
            if self.closed_emitted:
                return None
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            self._fill(left)

    def poll(self, timeout: float) -> None:
        """Read and record whatever arrives within `timeout` seconds (or until closed)."""
        self._run(None, timeout)

    def wait(self, pred: Callable[[Event], bool], timeout: float = 2.0) -> Optional[Event]:
        """Return (and take out of the inbox) the first event matching pred, reading frame by
        frame, up to timeout. Events are recorded as they are parsed; parsing stops at the
        matching event so that later arrivals are recorded later."""
        return self._run(pred, timeout)

    @property
    def eof(self) -> bool:
        return self.closed_emitted

    def close_socket(self):
        try:
            self.sock.close()
        except OSError:
            pass
        self.eof_seen = True
        self.closed_emitted = True


def _plain(d: dict) -> dict:
    """Turn user-supplied values into something fmt_fields can print."""
    out = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out[k] = {kk: to_value(vv) for kk, vv in v.items()}
        elif isinstance(v, str):
            out[k] = v.encode()
        else:
            out[k] = v
    return out
