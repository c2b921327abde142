"""The learned routing policy: a linear contextual bandit on log latency (numpy only).

Each instance of the group is an arm. For a request, the policy estimates the work queued
ahead of it on each instance, ``work = (outstanding + 1) * service_ms`` (the shortest-expected-
delay estimate), and a learned correction of it from what a conductor can see (how stale the
estimates are, time since the last restart, recent crashes, how long the request in service
has been running):

    log(latency_ms) ~= log(work) + theta . z(instance)

``theta`` is a ridge regression fitted to every attempt the policy has seen (a failed attempt
counts its time to failure plus ``fail_penalty_ms``). While training it explores
(epsilon-greedy). The weights are few and readable: :meth:`LinearBanditPolicy.describe`.
(Fitting latency itself rather than its log, the fit was dominated by the few huge latencies of
overload periods and routed worse than least-outstanding: see pyconductor/README.md.)

**Service estimate.** The policy keeps its own per-instance bookkeeping of the requests it
routed (dispatch times, FIFO) and of their replies, so it measures each request's *service*
time exactly as the time between its reply and the later of its dispatch and the previous
reply on that instance (an instance serves one request at a time), instead of the conductor's
``latency / (outstanding at dispatch + 1)``. The same bookkeeping gives how long the request in
service has been running. Both are things a live conductor sees (dispatch and reply times).
Without that bookkeeping (the first requests after a (re)start, a routing it did not see) it
falls back to the observation's EWMAs.

**Decision.** The prediction is of the request's *own* latency; routing every request to its
own minimum (``speed_weight = 1``, shortest expected delay) is myopic: it piles requests on the
fast instances while the slow ones idle, which costs throughput in busy periods and the mean
latency of everyone behind. The decision therefore counts the instance's relative speed only
partly: ``score = prediction - (1 - speed_weight) * log(service / group median)``.
``speed_weight`` is a hyperparameter chosen on validation seeds disjoint from both the training
and the evaluation seeds (``scripts/policy_select.py``).

Trained in the simulator by :func:`train`; saved and loaded with :meth:`save` / :meth:`load`
(a ``.npz`` with the weights, the sufficient statistics and the feature names, checked on load).
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import numpy as np

from .policy import Observation, Outcome, Policy

FEATURES = (
    "bias",
    "log_queue",  # log(outstanding + 1): corrects the exponent of the queue length
    "log_service",  # log(service_ms): corrects the exponent of the service estimate
    "latency_vs_work",  # log(ewma_latency / work), clipped to +-3 (0 before a measurement)
    "cold_fast",  # exp(-since_restart / 0.1 s)
    "cold_slow",  # exp(-since_restart / 1 s)
    "unmeasured",  # no latency measured since the instance (re)started
    "recent_crashes",
    "stall",  # log(1 + time the request in service has been running / service_ms)
    # the same for every instance at one decision: it cannot change the choice, but it absorbs
    # how busy the whole group is, so the per-instance weights are not fitted to that
    "log_group_work",
)
FORMAT_VERSION = 2


@dataclass
class BanditConfig:
    ridge: float = 1.0
    epsilon: float = 0.05  #: exploration while training
    fail_penalty_ms: float = 20.0
    refit_every: int = 256  #: outcomes between refits while learning
    prior_service_ms: float = 2.0  #: service estimate before anything was measured
    #: how much of the relative speed of an instance the decision counts (1: all of it, the
    #: myopic shortest expected delay; 0: none, queue lengths and corrections only)
    speed_weight: float = 0.7
    service_alpha: float = 0.3  #: EWMA weight of the exactly measured service times


class LinearBanditPolicy(Policy):
    """Routes each request to the instance with the lowest predicted (log) latency."""

    name = "learned-bandit"

    def __init__(self, config: BanditConfig | None = None, seed: int = 0):
        self.config = config or BanditConfig()
        d = len(FEATURES)
        self.A = np.eye(d) * self.config.ridge
        self.b = np.zeros(d)
        self.w = np.zeros(d)  # a sane start: shortest expected delay
        self.samples = 0
        self.learning = False
        self._rng = np.random.default_rng(seed)
        self._last: list[float] | None = None
        self._since_fit = 0
        self.reset()

    # -- bookkeeping of what it routed (per episode / per conductor) ------------------------
    def reset(self) -> None:
        """Forgets the per-instance bookkeeping (a new group, a new episode). Done by itself
        when the clock goes backwards or the group changes size; the weights stay."""
        self._n = 0
        self._now = -math.inf
        self._inflight: list[deque] = []  # dispatch times (s) of the requests it routed there
        self._last_done: list[float] = []  # time of the last reply (or of the (re)start)
        self._up_at: list[float] = []  # when the instance last became HEALTHY
        self._svc: list[float] = []  # EWMA of exactly measured service times (ms), NaN: none

    def _sync(self, obs: Observation) -> None:
        n = len(obs.instances)
        if obs.now < self._now or n != self._n:
            self._n = n
            self._inflight = [deque() for _ in range(n)]
            self._last_done = [-math.inf] * n
            self._up_at = [math.nan] * n
            self._svc = [math.nan] * n
        self._now = obs.now
        for i, a in enumerate(obs.since_restart_s.tolist()):
            t = obs.now - a
            if not abs(t - self._up_at[i]) < 1e-3:  # (re)started (or first seen): a new process
                self._up_at[i] = t
                self._inflight[i].clear()
                self._last_done[i] = t
                self._svc[i] = math.nan

    # -- features -------------------------------------------------------------------------
    def rows(self, obs: Observation) -> tuple[list[float], list[list[float]]]:
        """``(log work, z)`` per instance. Plain Python: a group has a handful of instances, and
        this runs on every request (numpy's per-call overhead would dominate)."""
        self._sync(obs)
        now = obs.now
        up = obs.up.tolist()
        q = obs.outstanding.tolist()
        svc = [e if e == e else o for e, o in zip(self._svc, obs.service_ms.tolist())]
        lat = obs.ewma_latency_ms.tolist()
        age = obs.since_restart_s.tolist()
        crashes = obs.recent_crashes.tolist()
        oldest = obs.oldest_ms.tolist()
        known = sorted(s for s, u in zip(svc, up) if u and s == s)  # s == s: not NaN
        if known:
            m = len(known) // 2
            prior = known[m] if len(known) % 2 else 0.5 * (known[m - 1] + known[m])
        else:
            prior = self.config.prior_service_ms
        prior = max(prior, 1e-3)
        logw, z, rel = [], [], []
        for i in range(len(up)):
            unknown = svc[i] != svc[i]
            s = prior if unknown else max(svc[i], 1e-3)
            qi = float(q[i])
            work = (qi + 1.0) * s
            ratio = 0.0 if lat[i] != lat[i] else max(-3.0, min(3.0, math.log(max(lat[i], 1e-3) / work)))
            a = max(age[i], 0.0)
            fast = math.exp(-a / 0.1) if a < 5.0 else 0.0
            slow = math.exp(-a / 1.0) if a < 50.0 else 0.0
            fl = self._inflight[i]
            if qi > 0 and len(fl) == q[i]:  # its own bookkeeping: when service began
                running = (now - max(fl[0], self._last_done[i])) * 1000.0
            else:
                running = oldest[i]
            logw.append(math.log(work))
            rel.append(math.log(s / prior))
            z.append([1.0, math.log(qi + 1.0), math.log(s), ratio, fast, slow,
                      1.0 if unknown else 0.0, float(crashes[i]),
                      math.log1p(max(running, 0.0) / s), 0.0])
        ups = [lw for lw, u in zip(logw, up) if u]
        group = sum(ups) / len(ups) if ups else 0.0
        for r in z:
            r[-1] = group
        self._rel = rel
        return logw, z

    def features(self, obs: Observation) -> np.ndarray:
        """The correction features ``z``, one row per instance."""
        return np.array(self.rows(obs)[1], dtype=float)

    # -- Policy ---------------------------------------------------------------------------
    def choose(self, obs: Observation) -> int:
        logw, z = self.rows(obs)
        up = obs.up.tolist()
        cand = [i for i, u in enumerate(up) if u]
        if not cand:
            raise RuntimeError("learned-bandit: no instance is up")
        if self.learning and self._rng.uniform() < self.config.epsilon:
            i = cand[int(self._rng.integers(len(cand)))]
        else:
            w = self._wl
            rel = self._rel
            k = 1.0 - self.config.speed_weight
            i, best = cand[0], math.inf
            for c in cand:
                p = logw[c] + sum(wk * xk for wk, xk in zip(w, z[c])) - k * rel[c]
                if p < best:
                    i, best = c, p
        self._inflight[i].append(obs.now)
        self._last = [logw[i]] + z[i] + [float(i), obs.now]
        return i

    def last_features(self):
        return self._last

    def predict(self, obs: Observation) -> np.ndarray:
        """Predicted latency (ms) of a request on each instance (the geometric mean)."""
        logw, z = self.rows(obs)
        return np.exp(np.array(logw) + np.array(z) @ self.w)

    def observe(self, outcome: Outcome) -> None:
        f = outcome.features
        if f is None:
            return
        d = len(FEATURES)
        self._record(int(f[d + 1]), f[d + 2], outcome)
        if not self.learning:
            return
        y = outcome.latency_ms + (self.config.fail_penalty_ms if outcome.failed else 0.0)
        x = np.asarray(f[1:d + 1], dtype=float)
        y = math.log(max(y, 1e-3)) - f[0]  # the correction: log(latency / work)
        self.A += np.outer(x, x)
        self.b += x * y
        self.samples += 1
        self._since_fit += 1
        if self._since_fit >= self.config.refit_every:
            self.fit()

    def _record(self, i: int, t0: float, outcome: Outcome) -> None:
        """Bookkeeping of a reply: the exact service time of a request that succeeded."""
        if i >= self._n:
            return
        try:
            self._inflight[i].remove(t0)
        except ValueError:
            return  # routed before a (re)start or a reset: not this process's
        if outcome.failed:
            return
        done = t0 + outcome.latency_ms / 1000.0
        service = (done - max(t0, self._last_done[i])) * 1000.0
        self._last_done[i] = done
        a = self.config.service_alpha
        old = self._svc[i]
        self._svc[i] = service if old != old else (1 - a) * old + a * service

    def fit(self) -> None:
        self.w = np.linalg.solve(self.A, self.b)
        self._since_fit = 0

    @property
    def w(self) -> np.ndarray:
        """The weights, one per name in ``FEATURES``: predicted latency = features @ w."""
        return self._w

    @w.setter
    def w(self, value) -> None:
        self._w = np.asarray(value, dtype=float)
        self._wl = self._w.tolist()

    def describe(self) -> str:
        return ", ".join(f"{n}={v:+.3g}" for n, v in zip(FEATURES, self.w))

    # -- persistence ----------------------------------------------------------------------
    def save(self, path: str | Path) -> None:
        """Writes the weights, the sufficient statistics and the config to ``path`` (.npz)."""
        c = self.config
        np.savez(Path(path), format_version=FORMAT_VERSION, features=np.array(FEATURES),
                 w=self.w, A=self.A, b=self.b, samples=self.samples,
                 config=np.array([c.ridge, c.epsilon, c.fail_penalty_ms, c.refit_every,
                                  c.prior_service_ms, c.speed_weight, c.service_alpha]))

    @classmethod
    def load(cls, path: str | Path) -> "LinearBanditPolicy":
        """Loads what :meth:`save` wrote; refuses another format or feature set."""
        with np.load(Path(path), allow_pickle=False) as f:
            version = int(f["format_version"])
            if version != FORMAT_VERSION:
                raise ValueError(f"{path}: format version {version}, expected {FORMAT_VERSION}")
            names = tuple(str(s) for s in f["features"])
            if names != FEATURES:
                raise ValueError(f"{path}: features {names} differ from this version's {FEATURES}")
            cfg = f["config"]
            policy = cls(BanditConfig(float(cfg[0]), float(cfg[1]), float(cfg[2]), int(cfg[3]),
                                      float(cfg[4]), float(cfg[5]), float(cfg[6])))
            policy.w = f["w"].copy()
            policy.A = f["A"].copy()
            policy.b = f["b"].copy()
            policy.samples = int(f["samples"])
        return policy


def train(seeds: Iterable[int], workload=None, epochs: int = 1,
          config: BanditConfig | None = None, seed: int = 0,
          log=None) -> LinearBanditPolicy:
    """Trains a :class:`LinearBanditPolicy` in the simulator on ``seeds`` (each an episode),
    ``epochs`` passes. Returns it frozen (``learning`` off: greedy, no more updates)."""
    from .simulator import WorkloadConfig, run_episode

    workload = workload or WorkloadConfig()
    policy = LinearBanditPolicy(config, seed=seed)
    policy.learning = True
    seeds = list(seeds)
    for epoch in range(epochs):
        for s in seeds:
            result = run_episode(policy, s, workload)
            if log is not None:
                log(f"epoch {epoch} seed {s}: mean {result.mean_ms:.2f} ms, "
                    f"p99 {result.p99_ms:.2f} ms")
        policy.fit()
    policy.learning = False
    return policy
