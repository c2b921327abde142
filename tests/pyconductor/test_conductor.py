"""The Conductor over a real bus: global view, policy routing, restarts after a kill."""

import asyncio
import os
import signal

import pytest

from conftest import bus_config, manifest, need_module

ipc = need_module()
from symphony_conductor import Conductor, ConductorConfig  # noqa: E402
from symphony_conductor.learned import LinearBanditPolicy  # noqa: E402
from symphony_conductor.policy import LeastOutstanding  # noqa: E402


@pytest.mark.asyncio
async def test_conductor_routes_through_its_policy_and_keeps_a_global_view():
    cfg = ConductorConfig(bus=bus_config(), extensions=[manifest("w", instances=3)])
    async with Conductor(cfg, policy=LeastOutstanding()) as c:
        replies = await asyncio.gather(*(c.request("w", "ping", {"n": n}) for n in range(90)))
        assert len(replies) == 90
        view = c.view()["w"]
        assert [v["state"] for v in view] == ["HEALTHY"] * 3
        assert sum(v["served"] for v in view) == 90
        assert all(v["served"] > 0 for v in view)
        assert all(v["outstanding"] == 0 for v in view)


@pytest.mark.asyncio
async def test_conductor_retries_on_another_instance_when_one_dies():
    cfg = ConductorConfig(bus=bus_config(),
                          extensions=[manifest("s", "--sleep-ms", "60000", instances=2)],
                          request_timeout=60.0, retries=3)
    async with Conductor(cfg, policy=LinearBanditPolicy()) as c:
        seen = []
        c.on_event(seen.append)
        pid0 = c.instances["s/0"].pid
        sent = c.bus.sync.counters()["requests_sent"]
        task = asyncio.ensure_future(c.request("s", "sleep", {}))
        while c.bus.sync.counters()["requests_sent"] < sent + 1:
            await asyncio.sleep(0.01)
        victim = next(s for s in c.instances.values() if s.outstanding == 1)
        os.kill(victim.pid, signal.SIGKILL)
        other = next(s for s in c.instances.values() if s is not victim)
        while other.outstanding < 1:  # the request was retried there
            await asyncio.sleep(0.01)
        while not any(e.get("state") == "CRASHED" for e in seen):
            await asyncio.sleep(0.01)
        task.cancel()  # the retry sleeps 60 s on the other instance: enough to know it retried
        with pytest.raises(asyncio.CancelledError):
            await task
        assert victim.failed == 1 and len(victim.crashes) == 1
        assert pid0
