#!/usr/bin/env python3
"""A WAN between a client and a server on loopback: a TCP proxy that delays every byte by
half the round-trip time in each direction and paces each direction to a bandwidth, counting
the bytes. TLS passes through untouched (the client still sees the server's certificate).

    python3 bench/wanproxy.py LISTEN_PORT TARGET_PORT --rtt-ms 30 --mbit 50

or, from a benchmark:

    with WanProxy(target_port, rtt_ms=30, mbit=50) as p:   # p.port: connect here
        ...                                                # p.down, p.up: bytes so far

The model: a chunk read from one side is serialised onto the link at the bandwidth (after the
chunks before it), then arrives RTT/2 later. Reads are bounded (at most QUEUE_BYTES in flight
per direction), so TCP's own flow control still holds a fast sender back."""

import argparse
import asyncio
import threading
import time

CHUNK = 16384
QUEUE_BYTES = 4 << 20

PROFILES = {"loopback": (0, 0), "wan": (30, 50), "slow": (100, 8)}


class WanProxy:
    def __init__(self, target_port, rtt_ms=0.0, mbit=0.0, target_host="127.0.0.1", listen_port=0):
        self.target = (target_host, target_port)
        self.delay = rtt_ms / 2000.0
        self.rate = mbit * 1e6 / 8 if mbit else 0.0  # bytes per second; 0: unlimited
        self.listen_port = listen_port
        self.down = 0  # server -> client
        self.up = 0
        self.connections = 0
        self.port = None
        self._loop = None
        self._server = None
        self._ready = threading.Event()
        self._thread = None

    def reset(self):
        self.down = self.up = self.connections = 0

    async def _pump(self, reader, writer, direction):
        queue = asyncio.Queue()
        budget = asyncio.Semaphore(QUEUE_BYTES // CHUNK)

        async def read():
            link_free = 0.0
            try:
                while True:
                    await budget.acquire()
                    data = await reader.read(CHUNK)
                    now = time.monotonic()
                    if not data:
                        await queue.put((now + self.delay, None))
                        return
                    if direction == "down":
                        self.down += len(data)
                    else:
                        self.up += len(data)
                    # Serialised after what is on the link already, then propagated.
                    start = max(now, link_free)
                    link_free = start + (len(data) / self.rate if self.rate else 0.0)
                    await queue.put((link_free + self.delay, data))
            except (ConnectionError, OSError):
                await queue.put((time.monotonic(), None))

        async def write():
            try:
                while True:
                    when, data = await queue.get()
                    wait = when - time.monotonic()
                    if wait > 0:
                        await asyncio.sleep(wait)
                    if data is None:
                        if writer.can_write_eof():
                            writer.write_eof()
                        return
                    writer.write(data)
                    await writer.drain()
                    budget.release()
            except (ConnectionError, OSError):
                pass

        await asyncio.gather(read(), write())

    async def _handle(self, creader, cwriter):
        self.connections += 1
        try:
            sreader, swriter = await asyncio.open_connection(*self.target)
        except OSError:
            cwriter.close()
            return
        try:
            await asyncio.gather(self._pump(creader, swriter, "up"), self._pump(sreader, cwriter, "down"))
        except asyncio.CancelledError:
            pass  # the proxy stops
        finally:
            for w in (cwriter, swriter):
                try:
                    w.close()
                except Exception:
                    pass

    async def _main(self):
        self._stopping = asyncio.Event()
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", self.listen_port)
        self.port = self._server.sockets[0].getsockname()[1]
        self._ready.set()
        await self._stopping.wait()
        self._server.close()
        tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def _run(self):
        self._loop = asyncio.new_event_loop()
        try:
            self._loop.run_until_complete(self._main())
        except asyncio.CancelledError:
            pass
        finally:
            self._loop.close()

    def start(self):
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        self._ready.wait(10)
        return self

    def stop(self):
        if self._loop and self._server:
            self._loop.call_soon_threadsafe(self._stopping.set)
            self._thread.join(10)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("listen_port", type=int)
    ap.add_argument("target_port", type=int)
    ap.add_argument("--rtt-ms", type=float, default=30)
    ap.add_argument("--mbit", type=float, default=50)
    args = ap.parse_args()
    p = WanProxy(args.target_port, args.rtt_ms, args.mbit, listen_port=args.listen_port).start()
    print("listening on 127.0.0.1:%d -> %d, RTT %g ms, %g Mbit/s" % (p.port, args.target_port, args.rtt_ms, args.mbit))
    try:
        while True:
            time.sleep(5)
            print("down %d bytes, up %d bytes, %d connections" % (p.down, p.up, p.connections))
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
