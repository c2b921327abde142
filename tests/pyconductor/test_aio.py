"""The asyncio layer end to end: a real bus, real extension processes, no mocks."""

import asyncio
import json
import os
import signal

import numpy as np
import pytest

from conftest import bus_config, manifest, need_module

ipc = need_module()
from symphony_conductor.aio import AsyncBus  # noqa: E402


async def wait_for_counter(bus, key, at_least):
    while bus.sync.counters()[key] < at_least:  # no timing assertion: waits for the fact
        await asyncio.sleep(0.01)


@pytest.mark.asyncio
async def test_many_concurrent_send_message():
    async with AsyncBus(bus_config()) as bus:
        await bus.spawn_extension(manifest("echo", instances=2))
        replies = await asyncio.gather(
            *(bus.send_message("echo", "ping", {"n": n}) for n in range(500)))
        assert [json.loads(r)["n"] for r in replies] == list(range(500))
        who = await asyncio.gather(*(bus.request_json("echo", "whoami") for _ in range(10)))
        assert len({w["pid"] for w in who}) == 2  # both instances served
        direct = await bus.request_json("echo/1", "whoami")
        assert direct["pid"] == (await bus.figures("echo"))[1]["pid"]


@pytest.mark.asyncio
async def test_extension_killed_mid_request_fails_the_future_with_the_reason():
    async with AsyncBus(bus_config()) as bus:
        await bus.spawn_extension(manifest("sleeper", "--sleep-ms", "60000", restart="manual"))
        pid = (await bus.figures("sleeper"))[0]["pid"]
        sent = bus.sync.counters()["requests_sent"]
        task = asyncio.ensure_future(bus.send_message("sleeper", "sleep", {}, timeout=60.0))
        await wait_for_counter(bus, "requests_sent", sent + 1)
        os.kill(pid, signal.SIGKILL)
        with pytest.raises(ipc.SymphonyError, match="killed by signal 9") as e:
            await task
        assert e.value.code


@pytest.mark.asyncio
async def test_events_async_for_and_counters():
    async with AsyncBus(bus_config()) as bus:
        seen = []

        async def watch():
            async for event in bus.events():
                seen.append(event)
                if event.get("state") == "HEALTHY":
                    return

        watcher = asyncio.ensure_future(watch())
        await asyncio.sleep(0)  # the iterator is registered before the spawn
        await bus.spawn_extension(manifest("ev"))
        await watcher
        assert [e["state"] for e in seen if e["kind"] == "lifecycle"] == ["CREATED",
            "STARTING", "RUNNING", "HEALTHY"]
        async for event in bus.events(counters_every=0.01):
            if event["kind"] == "counters":
                assert event["events_dropped"] == 0 and "requests_sent" in event
                break


@pytest.mark.asyncio
async def test_a_handler_exception_is_never_swallowed():
    async with AsyncBus(bus_config()) as bus:
        def handler(event):
            if event.get("state") == "RUNNING":
                raise ZeroDivisionError("handler failed on RUNNING")

        bus.add_event_handler(handler)
        events = bus.events()
        await bus.spawn_extension(manifest("h"))
        with pytest.raises(ZeroDivisionError, match="handler failed"):
            async for _ in events:
                pass
        with pytest.raises(ZeroDivisionError):
            await bus.send_message("h", "ping", {})
        with pytest.raises(ZeroDivisionError):
            bus.check()


@pytest.mark.asyncio
async def test_async_for_samples_in_order():
    async with AsyncBus(bus_config()) as bus:
        sub = bus.subscribe("py/stream", dtype=np.uint64, depth=256)
        pub = bus.advertise("py/stream", size=8)
        n = 300

        async def produce():
            for i in range(n):
                while not pub.publish(np.uint64(i).tobytes()):
                    await asyncio.sleep(0.001)  # full: the subscriber is behind
                if i % 50 == 0:
                    await asyncio.sleep(0)

        producer = asyncio.ensure_future(produce())
        got = []
        async for sample in sub:
            with sample:
                a = sub.array(sample)
                got.append(int(a[0]))
                del a
            if len(got) == n:
                break
        await producer
        assert got == list(range(n))
        sub.close()


@pytest.mark.asyncio
async def test_async_iteration_refuses_to_release_a_sample_still_viewed():
    async with AsyncBus(bus_config()) as bus:
        sub = bus.subscribe("py/held")
        pub = bus.advertise("py/held")
        pub.publish(b"one")
        pub.publish(b"two")
        first = await sub.take()
        view = memoryview(first)
        with pytest.raises(BufferError):
            await sub.take()
        view.release()
        second = await sub.take()
        assert second.tobytes() == b"two"
        second.release()
