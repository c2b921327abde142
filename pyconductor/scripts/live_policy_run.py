#!/usr/bin/python3
"""Runs the routing policies on a live bus: a Conductor over real extension processes.

A group of ``supervisor_test_extension`` instances with different service times (``--sleep-ms``
per instance: one instance serves one request at a time, like the simulator's) gets open-loop
Poisson requests ("sleep") through the Conductor under each policy in turn; optionally one
instance is killed -9 part-way through every run (the supervisor restarts it). Rounds
interleave the policies so that drift of the machine hits them alike; each round is one paired
sample. Prints mean and p99 latency per policy with 95% CIs over rounds, and the paired
differences of the learned policy against each baseline.

    /usr/bin/python3 pyconductor/scripts/live_policy_run.py \\
        --extension build/py/tests/supervisor/supervisor_test_extension --weights /tmp/bandit.npz
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import signal
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "python"))

from symphony_conductor import Conductor, ConductorConfig  # noqa: E402
from symphony_conductor.evaluation import PolicyRuns, report  # noqa: E402
from symphony_conductor.learned import LinearBanditPolicy, train  # noqa: E402
from symphony_conductor.policy import LeastOutstanding, RoundRobin, RuleBased  # noqa: E402


async def one_run(conductor: Conductor, rate: float, n: int, seed: int, kill_at: float | None):
    rng = random.Random(seed)
    latencies: list[float] = []
    failures = 0

    async def one() -> None:
        nonlocal failures
        t0 = time.monotonic()
        try:
            await conductor.request("worker", "sleep", {}, timeout=10.0)
        except Exception:  # noqa: BLE001 - counted; the latency still counts
            failures += 1
        latencies.append((time.monotonic() - t0) * 1000.0)

    tasks = []
    start = time.monotonic()
    next_t = start
    killed = False
    for i in range(n):
        next_t += rng.expovariate(rate)
        delay = next_t - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        if kill_at is not None and not killed and i >= kill_at * n:
            victim = conductor.group("worker")[1]
            if victim.pid:
                os.kill(victim.pid, signal.SIGKILL)
            killed = True
        tasks.append(asyncio.ensure_future(one()))
    await asyncio.gather(*tasks)
    # wait until every instance is HEALTHY again before the next run
    while any(s.state != "HEALTHY" for s in conductor.group("worker")):
        await asyncio.sleep(0.01)
    return np.array(latencies), failures


async def main_async(args) -> int:
    sleeps = [int(x) for x in args.sleep_ms.split(",")]
    capacity = sum(1000.0 / s for s in sleeps)
    rate = args.utilization * capacity
    if args.weights:
        learned = LinearBanditPolicy.load(args.weights)
    else:
        learned = train(range(60))
    policies = [RoundRobin(), LeastOutstanding(), RuleBased(), learned]
    bus = f"live{os.getpid()}"
    runs = {p.name: PolicyRuns(p.name, [], np.array([]), np.array([])) for p in policies}
    fails = {p.name: 0 for p in policies}
    print(f"live bus '{bus}': {len(sleeps)} instances with --sleep-ms {sleeps} "
          f"(capacity {capacity:.0f} req/s), {rate:.0f} req/s Poisson, {args.requests} requests "
          f"per run, {args.rounds} rounds, kill -9 of worker/1 at "
          f"{'never' if args.kill_at is None else f'{args.kill_at:.0%} of each run'}")
    for rnd in range(args.rounds):
        order = list(policies)
        random.Random(rnd).shuffle(order)
        for policy in order:
            # one extension per service time, all in the group "worker": instances of one
            # manifest share its args
            ids = [f"w{k}" for k in range(len(sleeps))]
            manifests = [{"id": i, "version": "1.0.0", "executable": args.extension,
                          "args": ["--sleep-ms", str(s)], "restart": {"policy": "immediate"}}
                         for i, s in zip(ids, sleeps)]
            cfg = ConductorConfig(bus={"bus": f"{bus}r{rnd}{policy.name[:4]}",
                                       "stop_grace_ms": 500},
                                  extensions=manifests, groups={"worker": ids},
                                  request_timeout=10.0, retries=2)
            async with Conductor(cfg, policy=policy) as c:
                lat, failures = await one_run(c, rate, args.requests, 1000 + rnd, args.kill_at)
            r = runs[policy.name]
            r.seeds.append(rnd)
            r.mean_ms = np.append(r.mean_ms, lat.mean())
            r.p99_ms = np.append(r.p99_ms, np.percentile(lat, 99))
            fails[policy.name] += failures
            print(f"round {rnd} {policy.name:<18} mean {lat.mean():7.2f} ms  "
                  f"p99 {np.percentile(lat, 99):8.2f} ms  failed {failures}", flush=True)
    print()
    print(report(runs, learned.name))
    print("failed requests per policy (all rounds):", fails)
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--extension", required=True, help="supervisor_test_extension")
    ap.add_argument("--weights", help="learned policy weights (.npz); default: train now")
    ap.add_argument("--sleep-ms", default="2,3,6,12", help="service time per instance")
    ap.add_argument("--utilization", type=float, default=0.6)
    ap.add_argument("--requests", type=int, default=600)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--kill-at", type=float, default=0.5,
                    help="kill -9 worker/1 after this share of each run's requests (-1: never)")
    args = ap.parse_args()
    if args.kill_at is not None and args.kill_at < 0:
        args.kill_at = None
    if args.rounds < 2:
        ap.error("at least 2 rounds (intervals need 2 samples)")
    return asyncio.run(main_async(args))


if __name__ == "__main__":
    sys.exit(main())
