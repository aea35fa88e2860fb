import glob, hashlib, os, struct, sys
sys.path.insert(0, "/tmp/fuzzseed")
from frames import frames
ROOT = "/work/main/fuzz/corpus"

def save(target, data, name=None):
    d = os.path.join(ROOT, target); os.makedirs(d, exist_ok=True)
    name = name or hashlib.sha1(data).hexdigest()[:16]
    open(os.path.join(d, name), "wb").write(data)

# --- field table encoder covering every type tag amq-protocol knows
def sstr(s): s = s.encode() if isinstance(s, str) else s; return bytes([len(s)]) + s
def lstr(s): s = s.encode() if isinstance(s, str) else s; return struct.pack(">I", len(s)) + s
def val(tag, v):
    t = tag.encode()
    if tag == "t": return t + bytes([1 if v else 0])
    if tag == "b": return t + struct.pack(">b", v)
    if tag == "B": return t + struct.pack(">B", v)
    if tag in "sU": return t + struct.pack(">h", v)
    if tag == "u": return t + struct.pack(">H", v)
    if tag == "I": return t + struct.pack(">i", v)
    if tag == "i": return t + struct.pack(">I", v)
    if tag in "lL": return t + struct.pack(">q", v)
    if tag == "f": return t + struct.pack(">f", v)
    if tag == "d": return t + struct.pack(">d", v)
    if tag == "D": return t + bytes([v[0]]) + struct.pack(">I", v[1])
    if tag == "S": return t + lstr(v)
    if tag == "x": return t + lstr(v)
    if tag == "T": return t + struct.pack(">Q", v)
    if tag == "V": return t
    if tag == "F": return t + table(v)
    if tag == "A": body = b"".join(val(*e) for e in v); return t + struct.pack(">I", len(body)) + body
    raise ValueError(tag)
def table(pairs):
    body = b"".join(sstr(k) + val(tag, v) for k, tag, v in pairs)
    return struct.pack(">I", len(body)) + body

EVERY = [("bool", "t", True), ("i8", "b", -5), ("u8", "B", 200), ("i16", "s", -300), ("U16", "U", 7),
         ("u16", "u", 65000), ("i32", "I", -70000), ("u32", "i", 4000000000), ("i64", "l", -2**40),
         ("L64", "L", 2**62), ("f32", "f", 1.5), ("f64", "d", float("nan")), ("dec", "D", (2, 314)),
         ("str", "S", "text"), ("bin", "x", b"\x00\xff"), ("ts", "T", 1700000000), ("void", "V", None),
         ("tbl", "F", [("a", "I", 1), ("b", "S", "x")]), ("arr", "A", [("I", 1), ("S", "two"), ("V", None), ("F", [("c", "t", False)])])]
tables = {
    "every-type": [EVERY],
    "queue-args": [[("x-message-ttl", "I", 60000), ("x-expires", "l", 1000), ("x-max-length", "B", 3),
                    ("x-max-length-bytes", "i", 1 << 20), ("x-overflow", "S", "reject-publish-dlx"),
                    ("x-dead-letter-exchange", "S", "dlx"), ("x-dead-letter-routing-key", "S", "dl"),
                    ("x-max-priority", "I", 10), ("x-single-active-consumer", "t", True), ("x-queue-mode", "S", "lazy"),
                    ("x-queue-type", "S", "classic"), ("x-priority", "s", -3)]],
    "queue-args-bad": [[("x-message-ttl", "I", -1), ("x-expires", "I", 0), ("x-overflow", "I", 1),
                        ("x-dead-letter-routing-key", "S", "k"), ("x-max-priority", "I", 256), ("x-queue-type", "S", "quorum"),
                        ("x-priority", "S", "high")]],
    "stream-args": [[("x-queue-type", "S", "stream"), ("x-max-age", "S", "7D"), ("x-max-length-bytes", "l", 1 << 30),
                     ("x-stream-offset", "S", "1h")]],
    "stream-offset-ts": [[("x-stream-offset", "T", 2**63 + 5), ("x-max-age", "S", "99999999999999999999Y")]],
    "stream-offset-int": [[("x-stream-offset", "l", -5), ("x-max-age", "S", "0s")]],
    "stream-offset-first": [[("x-stream-offset", "S", "first"), ("x-max-age", "S", "\u00e9")]],
    "x-match-any": [[("x-match", "S", "any"), ("k", "S", "v"), ("n", "I", 1), ("void", "V", None)],
                    [("k", "S", "v"), ("n", "B", 1)]],
    "x-match-all-with-x": [[("x-match", "S", "all-with-x"), ("x-k", "S", "v"), ("f", "d", 1.0)],
                           [("x-k", "S", "v"), ("f", "f", 1.0)]],
    "x-match-bad": [[("x-match", "S", "some")]],
    "x-match-type": [[("x-match", "t", True)]],
    "x-death": [[("x-death", "A", [("F", [("queue", "S", "q"), ("reason", "S", "rejected"), ("count", "l", 2**63 - 1)]),
                                   ("F", [("queue", "S", "other"), ("reason", "S", "expired")]), ("I", 5)]),
                 ("x-first-death-queue", "S", "q"), ("CC", "A", [("S", "cc1"), ("S", "cc2")]), ("BCC", "A", [("S", "b")])]],
    "equivalence": [[("alternate-exchange", "S", "ae"), ("x-max-length", "I", 5)],
                    [("alternate-exchange", "x", b"ae"), ("x-max-length", "l", 5)]],
    "empty": [[]],
    "nested-deep": [[("a", "F", [("b", "F", [("c", "F", [("d", "A", [("A", [("A", [])])])])])])]],
}
for name, ts in tables.items():
    save("field_table", b"".join(table(t) for t in ts), name)
for tag, v in [(e[1], e[2]) for e in EVERY]:
    save("field_table", table([("k", tag, v)]), "type-" + ("upper-" if tag.isupper() else "") + tag)

# --- client streams: frames after the protocol header, whole and one frame at a time
streams = sorted(glob.glob("/tmp/fuzzseed/rec/*.bin"))
singles = {}
for path in streams:
    data = open(path, "rb").read()
    body = data[8:] if data[:4] == b"AMQP" else data
    base = os.path.basename(path)[:-4]
    save("frame_decoder", body, "stream-" + base)
    save("assembler", body, "stream-" + base)
    fs = list(frames(body))
    for t, ch, p, raw in fs:
        key = (t, p[:4] if t == 1 else len(p))
        singles.setdefault(key, raw)
    # each content-carrying sequence (publish + header + bodies) on its own
    i = 0
    while i < len(fs):
        t, ch, p, raw = fs[i]
        if t == 1 and p[:4] == b"\x00\x3c\x00\x28":
            j = i + 1
            while j < len(fs) and fs[j][0] in (2, 3): j += 1
            seq = b"".join(f[3] for f in fs[i:j])
            save("assembler", seq)
            save("assembler", seq + seq[:len(seq) // 2])  # and one cut short
            i = j
        else:
            i += 1
for raw in singles.values():
    save("frame_decoder", raw)
    if raw[0] in (2, 3):
        save("assembler", raw)

def frame(t, ch, payload, end=0xCE): return struct.pack(">BHI", t, ch, len(payload)) + payload + bytes([end])
def method(cls, mid, fields): return struct.pack(">HH", cls, mid) + fields
declare = method(50, 10, struct.pack(">H", 0) + sstr("q") + bytes([2]) + table(EVERY))
hand = {
    "queue-declare-every-type": frame(1, 1, declare),
    "queue-declare-bad-table": frame(1, 1, method(50, 10, struct.pack(">H", 0) + sstr("q") + bytes([0]) + struct.pack(">I", 4) + b"\x01kZ\x00")),
    "heartbeat": frame(8, 0, b""),
    "heartbeat-ch1-payload": frame(8, 1, b"x"),
    "too-large": struct.pack(">BHI", 3, 1, 1 << 20) + b"abc",
    "huge-size": struct.pack(">BHI", 3, 1, 0xFFFFFFF8),
    "bad-end": frame(3, 1, b"abc", end=0),
    "unknown-type": frame(9, 0, b""),
    "unknown-method": frame(1, 1, method(99, 10, b"")),
    "qos-prefetch-size": frame(1, 1, method(60, 10, struct.pack(">IHB", 100, 10, 0))),
    "qos-trailing": frame(1, 1, method(60, 10, struct.pack(">IHB", 0, 1, 0) + b"\x09\x09")),
    "short-method": frame(1, 1, b"\x00\x3c"),
    "header-short": frame(2, 1, b"\x00\x3c\x00\x00"),
    "header-class-50": frame(2, 1, struct.pack(">HHQH", 50, 0, 1, 0)),
    "header-weight": frame(2, 1, struct.pack(">HHQH", 60, 1, 1, 0)),
    "publish-header-every-type": frame(1, 1, method(60, 40, struct.pack(">H", 0) + sstr("") + sstr("q") + b"\x00"))
        + frame(2, 1, struct.pack(">HHQH", 60, 0, 2, 0x2000) + table(EVERY)) + frame(3, 1, b"a") + frame(3, 1, b"b"),
    "publish-oversize-body": frame(1, 1, method(60, 40, struct.pack(">H", 0) + sstr("") + sstr("q") + b"\x00"))
        + frame(2, 1, struct.pack(">HHQH", 60, 0, 2, 0)) + frame(3, 1, b"abc") + frame(1, 1, method(60, 40, struct.pack(">H", 0) + sstr("") + sstr("q") + b"\x00")),
    "publish-huge-declared": frame(1, 1, method(60, 40, struct.pack(">H", 0) + sstr("") + sstr("q") + b"\x00"))
        + frame(2, 1, struct.pack(">HHQH", 60, 0, 1 << 40, 0)) + frame(3, 1, b"a") + frame(3, 1, b"b"),
    "deliver-with-content": frame(1, 2, method(60, 60, sstr("ct") + struct.pack(">QB", 1, 0) + sstr("") + sstr("q")))
        + frame(2, 2, struct.pack(">HHQH", 60, 0, 1, 0)) + frame(3, 2, b"z"),
    "body-first": frame(3, 1, b"body") + frame(2, 1, struct.pack(">HHQH", 60, 0, 4, 0)),
    "interleaved-channels": frame(1, 1, method(60, 40, struct.pack(">H", 0) + sstr("") + sstr("a") + b"\x00"))
        + frame(1, 2, method(60, 40, struct.pack(">H", 0) + sstr("") + sstr("b") + b"\x00"))
        + frame(2, 2, struct.pack(">HHQH", 60, 0, 1, 0)) + frame(2, 1, struct.pack(">HHQH", 60, 0, 1, 0))
        + frame(3, 1, b"1") + frame(3, 2, b"2"),
}
for name, data in hand.items():
    save("frame_decoder", data, name)
    save("assembler", data, name)
