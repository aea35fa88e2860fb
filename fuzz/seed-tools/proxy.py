"""Recording TCP proxy: 127.0.0.1:5796 -> 127.0.0.1:5795; each client->server stream to OUT/conn-N.bin."""
import asyncio, itertools, sys
OUT = sys.argv[1]
counter = itertools.count(1)

async def pipe(reader, writer, record=None):
    try:
        while True:
            data = await reader.read(65536)
            if not data:
                break
            if record is not None:
                record.write(data); record.flush()
            writer.write(data)
            await writer.drain()
    except (ConnectionError, asyncio.CancelledError):
        pass
    finally:
        try:
            writer.close()
        except Exception:
            pass

async def handle(cr, cw):
    n = next(counter)
    sr, sw = await asyncio.open_connection("127.0.0.1", 5795)
    with open(f"{OUT}/conn-{n:03d}.bin", "wb") as rec:
        with open(f"{OUT}/conn-{n:03d}.srv", "wb") as srec:
            await asyncio.gather(pipe(cr, sw, rec), pipe(sr, cw, srec))

async def main():
    server = await asyncio.start_server(handle, "127.0.0.1", 5796)
    async with server:
        await server.serve_forever()

asyncio.run(main())
