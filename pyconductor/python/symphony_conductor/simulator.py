"""A discrete-event simulator of one extension group under load: the policies' training ground.

``n`` instances serve requests one at a time, first come first served (an extension's request
callback). What makes routing matter, all drawn from the seed and *independent of the policy*
(so two policies on one seed face exactly the same world, and their per-seed difference is a
paired comparison):

* **heterogeneous speed**: each instance's mean service time is drawn around ``service_ms``
  (log-normal, ``speed_spread``): some machines or builds are slower;
* **degraded phases**: each instance alternates between normal and degraded periods (a noisy
  neighbour, GC, swapping) where service takes ``degrade_factor`` times longer;
* **crashes**: Poisson per instance; the requests it holds fail after ``detect_ms`` and are
  retried (routed again); the instance is back after ``restart_ms`` and then *warms up* (cold
  caches): service is ``warmup_factor`` times slower, decaying with ``warmup_tau_s``;
* **varying load**: Poisson arrivals whose rate follows a slow sinusoid plus bursts, averaging
  ``utilization`` of the group's capacity.

The conductor side is modelled as it is live: the policy sees an :class:`Observation` built
from requests in flight, measured latencies and restart times only — never the hidden speeds.
Latency of a request = arrival to final reply (including failed attempts and waiting while no
instance is up).
"""

from __future__ import annotations

import heapq
import math
from collections import deque
from dataclasses import dataclass, replace

import numpy as np

from .policy import Observation, Outcome, Policy


@dataclass(frozen=True)
class WorkloadConfig:
    instances: int = 4
    requests: int = 4000
    service_ms: float = 2.0  #: median of the instances' mean service times
    speed_spread: float = 0.45  #: sigma of log(mean service time) across instances
    service_cv: float = 0.5  #: sigma of the per-request log-normal service noise
    utilization: tuple[float, float] = (0.4, 0.7)  #: mean load drawn per seed in this range
    burst_factor: float = 1.3  #: arrival rate multiplier during bursts
    burst_fraction: float = 0.15  #: share of time in bursts
    degrade_factor: float = 4.0
    degrade_mean_s: float = 0.25  #: mean length of a degraded phase
    normal_mean_s: float = 1.2  #: mean length of a normal phase
    crash_rate_per_s: float = 0.25  #: per instance
    detect_ms: float = 1.0  #: death noticed (pidfd) and in-flight requests failed
    restart_ms: float = 40.0  #: death to HEALTHY again
    warmup_factor: float = 3.0
    warmup_tau_s: float = 0.25
    ewma_alpha: float = 0.2  #: the conductor's latency EWMA weight
    crash_window_s: float = 5.0


@dataclass
class EpisodeResult:
    seed: int
    policy: str
    latencies_ms: np.ndarray  #: one per request, arrival to final reply
    retries: int  #: attempts failed by crashes
    crashes: int

    @property
    def mean_ms(self) -> float:
        return float(np.mean(self.latencies_ms))

    @property
    def p99_ms(self) -> float:
        return float(np.percentile(self.latencies_ms, 99))


class _World:
    """Everything drawn from the seed: arrivals, speeds, phases, crashes, service noise."""

    def __init__(self, seed: int, cfg: WorkloadConfig):
        rng = np.random.default_rng(seed)
        n = cfg.instances
        self.n = n
        self.base_ms = cfg.service_ms * np.exp(rng.normal(0.0, cfg.speed_spread, n))
        capacity = float(np.sum(1000.0 / self.base_ms))  # requests per second, all normal
        util = rng.uniform(*cfg.utilization)
        mean_rate = util * capacity
        horizon = cfg.requests / mean_rate * 1.5 + 1.0
        self.horizon = horizon
        # arrivals: thinning of a rate that follows a sinusoid and burst periods
        period = rng.uniform(1.0, 3.0)
        phase = rng.uniform(0, 2 * math.pi)
        bursts = self._phases(rng, horizon, cfg.burst_fraction, 0.2)
        peak = mean_rate * 1.3 * cfg.burst_factor
        # candidates at the peak rate, thinned to the rate at their time (in blocks: numpy)
        t0, arrivals = 0.0, []
        bursts_a = np.array([a for a, _ in bursts] or [np.inf])
        bursts_b = np.array([b for _, b in bursts] or [np.inf])
        while sum(len(a) for a in arrivals) < cfg.requests:
            t = t0 + np.cumsum(rng.exponential(1.0 / peak, 4096))
            t0 = float(t[-1])
            rate = mean_rate * (1.0 + 0.3 * np.sin(2 * math.pi * t / period + phase))
            k = np.searchsorted(bursts_a, t, side="right") - 1
            inside = (k >= 0) & (t < bursts_b[np.maximum(k, 0)])
            rate = np.where(inside, rate * cfg.burst_factor, rate)
            arrivals.append(t[rng.uniform(size=t.size) * peak < rate])
        arrivals = np.concatenate(arrivals)[: cfg.requests]
        self.arrivals = np.array(arrivals)
        self.horizon = max(horizon, float(self.arrivals[-1]) + 5.0)
        # degraded phases and crashes per instance
        frac = cfg.degrade_mean_s / (cfg.degrade_mean_s + cfg.normal_mean_s)
        self.degraded = [self._phases(rng, self.horizon, frac, cfg.degrade_mean_s)
                         for _ in range(n)]
        self.crashes = []
        for _ in range(n):
            times, t = [], rng.exponential(1.0 / cfg.crash_rate_per_s)
            while t < self.horizon:
                times.append(t)
                t += cfg.restart_ms / 1000.0 + rng.exponential(1.0 / cfg.crash_rate_per_s)
            self.crashes.append(times)
        # per-attempt service noise (mean 1): request r's k-th attempt uses noise[r, k % 4]
        s = cfg.service_cv
        self.noise = np.exp(rng.normal(-s * s / 2, s, (cfg.requests, 4)))

    @staticmethod
    def _phases(rng, horizon, fraction, mean_on):
        """Alternating off/on intervals; `fraction` of the time on, on-periods ~ Exp(mean_on)."""
        if fraction <= 0:
            return []
        mean_off = mean_on * (1 - fraction) / fraction
        out, t = [], rng.exponential(mean_off)
        while t < horizon:
            d = rng.exponential(mean_on)
            out.append((t, t + d))
            t += d + rng.exponential(mean_off)
        return out

    @staticmethod
    def _in(intervals, t):
        for a, b in intervals:
            if a <= t < b:
                return True
            if a > t:
                return False
        return False


# event kinds, in tie-break order
_DONE, _CRASH, _UP, _ARRIVE, _RETRY = range(5)


def run_episode(policy: Policy, seed: int, cfg: WorkloadConfig | None = None,
                learn: bool = False) -> EpisodeResult:
    """Runs one episode of ``cfg.requests`` requests under ``policy`` on the world of ``seed``.

    With ``learn`` the policy gets an :class:`Outcome` for every attempt (training); without,
    it gets them too (a learned policy may keep adapting online, as it would live) — its
    ``observe`` decides what to do with them.
    """
    cfg = cfg or WorkloadConfig()
    w = _World(seed, cfg)
    n = w.n
    # plain lists: scalar numpy access is slow, and this loop runs per event
    up = [True] * n
    epoch = [0] * n  # bumps on crash: stale completions are ignored
    outstanding = [0] * n
    nan = float("nan")
    ewma_lat = [nan] * n
    ewma_svc = [nan] * n
    became_up = [-1e9] * n  # all started long ago: warm at t=0
    crash_log: list[deque] = [deque() for _ in range(n)]
    queues: list[deque] = [deque() for _ in range(n)]  # (req, attempt, dispatch_t, q0, feats)
    busy = [None] * n  # the attempt in service
    pending: deque = deque()  # requests waiting for any instance to be up
    arrival = w.arrivals
    finish = [nan] * cfg.requests
    attempts = [0] * cfg.requests
    retries = 0
    crashes = 0
    done = 0

    events: list = []
    seq = 0

    def push(t, kind, data):
        nonlocal seq
        heapq.heappush(events, (t, kind, seq, data))
        seq += 1

    for r, t in enumerate(arrival):
        push(float(t), _ARRIVE, r)
    for i in range(n):
        for t in w.crashes[i]:
            if t < w.horizon:
                push(t, _CRASH, i)

    def service_time(i, r, k, t):
        mult = w.noise[r, k % 4]
        if _World._in(w.degraded[i], t):
            mult *= cfg.degrade_factor
        age = t - became_up[i]
        if age < 10 * cfg.warmup_tau_s:
            mult *= 1.0 + (cfg.warmup_factor - 1.0) * math.exp(-age / cfg.warmup_tau_s)
        return w.base_ms[i] / 1000.0 * mult

    def start_next(i, t):
        if busy[i] is None and queues[i]:
            item = queues[i].popleft()
            busy[i] = item
            r, k = item[0], item[1]
            push(t + service_time(i, r, k, t), _DONE, (i, epoch[i], item))

    def observation(t):
        for dq in crash_log:
            while dq and dq[0] < t - cfg.crash_window_s:
                dq.popleft()
        return Observation(
            now=t, instances=names, up=np.array(up), outstanding=np.array(outstanding),
            ewma_latency_ms=np.array(ewma_lat), service_ms=np.array(ewma_svc),
            since_restart_s=np.array([t - b for b in became_up]),
            recent_crashes=np.array([len(d) for d in crash_log]),
            oldest_ms=np.array([(t - (busy[i][2] if busy[i] is not None else t)) * 1000.0
                                for i in range(n)]))

    def dispatch(r, t):
        if not any(up):
            pending.append(r)
            return
        obs = observation(t)
        i = policy.choose(obs)
        if not up[i]:
            raise RuntimeError(f"{policy.name} chose instance {i}, which is down")
        feats = policy.last_features()
        k = attempts[r]
        attempts[r] += 1
        queues[i].append((r, k, t, outstanding[i], feats))
        outstanding[i] += 1
        start_next(i, t)

    def feedback(i, item, t, failed):
        r, k, t0, q0, feats = item
        lat_ms = (t - t0) * 1000.0
        outstanding[i] -= 1
        if not failed:
            a = cfg.ewma_alpha
            svc = lat_ms / (q0 + 1)
            old = ewma_lat[i]
            ewma_lat[i] = lat_ms if old != old else (1 - a) * old + a * lat_ms  # old != old: NaN
            old = ewma_svc[i]
            ewma_svc[i] = svc if old != old else (1 - a) * old + a * svc
        policy.observe(Outcome(i, feats, lat_ms, failed))

    names = [f"sim/{i}" for i in range(n)]
    while events:
        t, kind, _, data = heapq.heappop(events)
        if kind == _ARRIVE or kind == _RETRY:
            dispatch(data, t)
        elif kind == _DONE:
            i, ep, item = data
            if ep != epoch[i]:
                continue  # the instance crashed while serving it
            busy[i] = None
            feedback(i, item, t, failed=False)
            finish[item[0]] = t
            done += 1
            start_next(i, t)
        elif kind == _CRASH:
            i = data
            if not up[i]:
                continue
            if done == cfg.requests:
                continue
            crashes += 1
            up[i] = False
            epoch[i] += 1
            crash_log[i].append(t)
            failed = ([busy[i]] if busy[i] is not None else []) + list(queues[i])
            busy[i] = None
            queues[i].clear()
            t_fail = t + cfg.detect_ms / 1000.0
            for item in failed:
                retries += 1
                feedback(i, item, t_fail, failed=True)
                push(t_fail, _RETRY, item[0])
            push(t + cfg.restart_ms / 1000.0, _UP, i)
        elif kind == _UP:
            i = data
            up[i] = True
            became_up[i] = t
            ewma_lat[i] = nan  # a new process: what was measured on the old one is stale
            ewma_svc[i] = nan
            while pending:
                dispatch(pending.popleft(), t)
        if done == cfg.requests:
            break

    lat = (np.array(finish) - arrival) * 1000.0
    return EpisodeResult(seed, policy.name, lat, retries, crashes)


def scaled(cfg: WorkloadConfig, **changes) -> WorkloadConfig:
    """A copy of ``cfg`` with some fields changed."""
    return replace(cfg, **changes)
