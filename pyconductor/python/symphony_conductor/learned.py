"""The learned routing policy: a linear contextual bandit on log latency (numpy only).

Each instance of the group is an arm. For a request, the policy estimates the work queued
ahead of it on each instance, ``work = (outstanding + 1) * service_ms`` (the shortest-expected-
delay estimate), and a learned correction of it from what a conductor can see (how stale the
estimates are, time since the last restart, recent crashes, how long the request at the head
of the queue has been running):

    log(latency_ms) ~= log(work) + theta . z(instance)

``theta`` is a ridge regression fitted to every attempt the policy has seen (a failed attempt
counts its time to failure plus ``fail_penalty_ms``). It routes to the lowest prediction; while
training it explores (epsilon-greedy). With ``theta = 0`` it is shortest expected delay. The
weights are few and readable: :meth:`LinearBanditPolicy.describe`. (Fitting latency itself
rather than its log, the fit was dominated by the few huge latencies of overload periods and
routed worse than least-outstanding: see pyconductor/README.md.)

Trained in the simulator by :func:`train`; saved and loaded with :meth:`save` / :meth:`load`
(a ``.npz`` with the weights, the sufficient statistics and the feature names, checked on load).
"""

from __future__ import annotations

import math
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
    "stall",  # log(1 + age of the oldest request in flight there / service_ms)
    # the same for every instance at one decision: it cannot change the choice, but it absorbs
    # how busy the whole group is, so the per-instance weights are not fitted to that
    "log_group_work",
)
FORMAT_VERSION = 1


@dataclass
class BanditConfig:
    ridge: float = 1.0
    epsilon: float = 0.05  #: exploration while training
    fail_penalty_ms: float = 20.0
    refit_every: int = 256  #: outcomes between refits while learning
    prior_service_ms: float = 2.0  #: service estimate before anything was measured


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

    # -- features -------------------------------------------------------------------------
    def rows(self, obs: Observation) -> tuple[list[float], list[list[float]]]:
        """``(log work, z)`` per instance. Plain Python: a group has a handful of instances, and
        this runs on every request (numpy's per-call overhead would dominate)."""
        up = obs.up.tolist()
        q = obs.outstanding.tolist()
        svc = obs.service_ms.tolist()
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
        logw, z = [], []
        for i in range(len(up)):
            unknown = svc[i] != svc[i]
            s = prior if unknown else max(svc[i], 1e-3)
            qi = float(q[i])
            work = (qi + 1.0) * s
            ratio = 0.0 if lat[i] != lat[i] else max(-3.0, min(3.0, math.log(max(lat[i], 1e-3) / work)))
            a = max(age[i], 0.0)
            fast = math.exp(-a / 0.1) if a < 5.0 else 0.0
            slow = math.exp(-a / 1.0) if a < 50.0 else 0.0
            logw.append(math.log(work))
            z.append([1.0, math.log(qi + 1.0), math.log(s), ratio, fast, slow,
                      1.0 if unknown else 0.0, float(crashes[i]),
                      math.log1p(max(oldest[i], 0.0) / s), 0.0])
        ups = [lw for lw, u in zip(logw, up) if u]
        group = sum(ups) / len(ups) if ups else 0.0
        for r in z:
            r[-1] = group
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
            i, best = cand[0], math.inf
            for c in cand:
                p = logw[c] + sum(wk * xk for wk, xk in zip(w, z[c]))
                if p < best:
                    i, best = c, p
        self._last = [logw[i]] + z[i]
        return i

    def last_features(self):
        return self._last

    def predict(self, obs: Observation) -> np.ndarray:
        """Predicted latency (ms) of a request on each instance (the geometric mean)."""
        logw, z = self.rows(obs)
        return np.exp(np.array(logw) + np.array(z) @ self.w)

    def observe(self, outcome: Outcome) -> None:
        if not self.learning or outcome.features is None:
            return
        y = outcome.latency_ms + (self.config.fail_penalty_ms if outcome.failed else 0.0)
        f = outcome.features
        x = np.asarray(f[1:], dtype=float)
        y = math.log(max(y, 1e-3)) - f[0]  # the correction: log(latency / work)
        self.A += np.outer(x, x)
        self.b += x * y
        self.samples += 1
        self._since_fit += 1
        if self._since_fit >= self.config.refit_every:
            self.fit()

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
                                  c.prior_service_ms]))

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
                                      float(cfg[4])))
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
