import struct, sys
def frames(data):
    i = 8 if data[:4] == b"AMQP" else 0
    while i + 7 <= len(data):
        t, ch, size = struct.unpack(">BHI", data[i:i+7])
        if i + 8 + size > len(data): break
        yield t, ch, data[i+7:i+7+size], data[i:i+8+size]
        i += 8 + size
if __name__ == "__main__":
    for t, ch, p, raw in frames(open(sys.argv[1], "rb").read()):
        extra = struct.unpack(">HH", p[:4]) if t == 1 else len(p)
        print(t, ch, extra)
