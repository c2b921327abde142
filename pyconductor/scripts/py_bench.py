#!/usr/bin/python3
"""Costs of the Python layer: publish(bytes_like) of 64 B, the loan-write-publish path, and a
request round trip three ways (synchronous send_message, which waits in C++ with the GIL
released; await send_message through the asyncio layer; sequential, one in flight).

    PYTHONPATH=build/py/pyconductor /usr/bin/python3 pyconductor/scripts/py_bench.py \\
        --extension build/py/tests/supervisor/supervisor_test_extension
"""

import argparse
import asyncio
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "python"))

import numpy as np  # noqa: E402

import symphony_ipc  # noqa: E402
from symphony_conductor.aio import AsyncBus  # noqa: E402


def bench_publish(bus, n):
    sub = bus.subscribe("bench/pub", depth=64, overflow="discard_oldest")
    pub = bus.advertise("bench/pub", max_payload=64)
    data = b"x" * 64
    publish = pub.publish
    t = time.perf_counter()
    for _ in range(n):
        publish(data)
    copy_ns = (time.perf_counter() - t) / n * 1e9
    t = time.perf_counter()
    for _ in range(n):
        with pub.loan(64) as loan:
            m = memoryview(loan)
            m[:] = data
            m.release()
    loan_ns = (time.perf_counter() - t) / n * 1e9
    del sub
    return copy_ns, loan_ns


async def bench_requests(config, extension, n):
    async with AsyncBus(config) as bus:
        await bus.spawn_extension({"id": "e", "version": "1", "executable": extension})
        for _ in range(200):
            bus.sync.send_message("e/0", "ping", "{}")
        sync_t, async_t = [], []
        for _ in range(n):  # interleaved: machine noise hits both alike
            t = time.perf_counter()
            bus.sync.send_message("e/0", "ping", "{}")
            sync_t.append(time.perf_counter() - t)
            t = time.perf_counter()
            await bus.send_message("e/0", "ping", "{}")
            async_t.append(time.perf_counter() - t)
        return np.array(sync_t) * 1e6, np.array(async_t) * 1e6


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--extension", required=True)
    ap.add_argument("--publishes", type=int, default=1_000_000)
    ap.add_argument("--requests", type=int, default=2000)
    args = ap.parse_args()
    name = f"pybench{os.getpid()}"
    with symphony_ipc.IPCBus({"bus": name}) as bus:
        copy_ns, loan_ns = bench_publish(bus, args.publishes)
    print(f"publish(bytes) 64 B: {copy_ns:.0f} ns/call ({1e9 / copy_ns / 1e6:.2f} M calls/s)")
    print(f"loan + memoryview write + publish 64 B: {loan_ns:.0f} ns/call")
    s, a = asyncio.run(bench_requests({"bus": name + "r"}, args.extension, args.requests))
    print(f"request round trip, sync send_message (C++ Supervisor path, GIL released): "
          f"p50 {np.median(s):.1f} us, mean {s.mean():.1f} us")
    print(f"request round trip, await send_message (asyncio, eventfd):               "
          f"p50 {np.median(a):.1f} us, mean {a.mean():.1f} us  "
          f"(ratio of p50s {np.median(a) / np.median(s):.2f})")


if __name__ == "__main__":
    main()
