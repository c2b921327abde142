"""Orchestration policies: which instance of a group serves a request, when to restart, when to
shed or delay load.

A policy sees only what a conductor can observe from outside the extensions (an
:class:`Observation`): which instances are up, how many requests it has in flight on each, the
latencies it measured on each, and when each one was last (re)started. The same observation is
built by the simulator (:mod:`symphony_conductor.simulator`) and by the live
:class:`~symphony_conductor.conductor.Conductor`, so a policy trained in the simulator runs
unchanged on a live bus.

Baselines: :class:`RoundRobin`, :class:`LeastOutstanding`, :class:`RuleBased`. The learned
policy is :class:`symphony_conductor.learned.LinearBanditPolicy`.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

import numpy as np


@dataclass
class Observation:
    """What a conductor knows about one extension group when it must decide.

    Every array has one entry per instance of the group (same order as ``instances``).
    """

    now: float  #: seconds, on the conductor's clock
    instances: list[str]  #: instance routes, e.g. ``["worker/0", "worker/1"]``
    up: np.ndarray  #: bool: HEALTHY (may take requests)
    outstanding: np.ndarray  #: int: requests this conductor has in flight on the instance
    ewma_latency_ms: np.ndarray  #: float: EWMA of measured request latencies (NaN: none yet)
    #: float: EWMA of latency / (outstanding at dispatch + 1): a per-request service-time
    #: estimate under FIFO service (NaN: none yet)
    service_ms: np.ndarray
    since_restart_s: np.ndarray  #: float: seconds since the instance last became HEALTHY
    recent_crashes: np.ndarray  #: int: crashes within the conductor's crash window
    #: float: age (ms) of the oldest request in flight on the instance (0: none in flight)
    oldest_ms: np.ndarray = None  # type: ignore[assignment]

    def __post_init__(self) -> None:
        if self.oldest_ms is None:
            self.oldest_ms = np.zeros(len(self.instances))

    def candidates(self) -> np.ndarray:
        """Indices of the instances that may take a request (empty: none is up)."""
        return np.flatnonzero(self.up)


@dataclass
class Outcome:
    """Feedback after a request routed by a policy completed (or failed)."""

    instance: int  #: index in the observation the decision was made on
    features: np.ndarray | None  #: what :meth:`Policy.choose` stored for it (learned policies)
    latency_ms: float  #: dispatch to reply (or to failure)
    failed: bool = False  #: the instance died or answered with an error


class Admission(enum.Enum):
    """What to do with a request before it is routed."""

    ADMIT = "admit"
    DELAY = "delay"  #: hold it for :attr:`AdmissionDecision.delay_s`, then ask again
    SHED = "shed"  #: refuse it at once (the caller gets an error saying so)


@dataclass
class AdmissionDecision:
    admission: Admission
    delay_s: float = 0.0
    reason: str = ""


@dataclass
class RestartDecision:
    """Whether the conductor restarts a crashed or FAILED instance by hand, and after how long.

    The supervisor's own restart policy (manifest) acts first; this decides what the conductor
    does about an extension the supervisor gave up on (FAILED) or that a manifest leaves to
    manual restarts.
    """

    restart: bool
    delay_s: float = 0.0
    reason: str = ""


@dataclass
class InstanceHealth:
    """One instance, as the conductor's global view has it."""

    route: str
    state: str  #: lifecycle state name, e.g. ``"HEALTHY"``, ``"CRASHED"``, ``"FAILED"``
    reason: str
    restarts: int
    recent_crashes: int


class Policy:
    """A decision maker for the conductor. Subclasses override :meth:`choose` at least.

    ``choose`` is called on the conductor's thread (the asyncio loop) once per request and must
    be fast (microseconds): it runs on every request.
    """

    name = "policy"

    def choose(self, obs: Observation) -> int:
        """The index (into ``obs.instances``) of the instance that serves the next request.

        Only called when at least one instance is up; must return one that is up.
        """
        raise NotImplementedError

    def last_features(self) -> np.ndarray | None:
        """Features of the last decision, handed back in :class:`Outcome` (learned policies)."""
        return None

    def observe(self, outcome: Outcome) -> None:
        """Feedback for a decision this policy made (learned policies learn from it)."""

    def admit(self, obs: Observation, max_outstanding: int = 0) -> AdmissionDecision:
        """Admit, delay or shed a request. Default: shed only when nothing is up and nothing
        will be (the conductor's caller decides that), delay while every instance has
        ``max_outstanding`` requests in flight (0: no cap)."""
        if max_outstanding > 0 and obs.candidates().size > 0:
            if np.all(obs.outstanding[obs.candidates()] >= max_outstanding):
                return AdmissionDecision(Admission.DELAY, 0.001, "every instance at its cap")
        return AdmissionDecision(Admission.ADMIT)

    def should_restart(self, health: InstanceHealth) -> RestartDecision:
        """Default: restart a FAILED instance by hand after a pause that grows with its crashes
        (1 s × 2^recent crashes, capped at 60 s); leave everything else to the supervisor."""
        if health.state != "FAILED":
            return RestartDecision(False, reason="the supervisor's restart policy applies")
        delay = min(60.0, 2.0 ** min(health.recent_crashes, 6))
        return RestartDecision(True, delay, f"FAILED after {health.recent_crashes} recent crashes")


class RoundRobin(Policy):
    """Each instance that is up in turn (what ``Supervisor::request`` does)."""

    name = "round-robin"

    def __init__(self) -> None:
        self._next = 0

    def choose(self, obs: Observation) -> int:
        n = len(obs.instances)
        up = obs.up.tolist()
        for k in range(n):
            i = (self._next + k) % n
            if up[i]:
                self._next = i + 1
                return i
        raise RuntimeError("round-robin: no instance is up")


class LeastOutstanding(Policy):
    """The instance with the fewest requests in flight (ties: the lowest index after the last
    chosen one, so ties rotate)."""

    name = "least-outstanding"

    def __init__(self) -> None:
        self._next = 0

    def choose(self, obs: Observation) -> int:
        return self._pick(obs.up.tolist(), obs.outstanding.tolist())

    def _pick(self, up: list, q: list) -> int:
        n = len(up)
        best, best_q = -1, None
        for k in range(n):  # scan from the one after the last chosen: ties rotate
            i = (self._next + k) % n
            if up[i] and (best_q is None or q[i] < best_q):
                best, best_q = i, q[i]
        if best < 0:
            raise RuntimeError("least-outstanding: no instance is up")
        self._next = best + 1
        return best


@dataclass
class RuleBased(Policy):
    """Least outstanding requests with soft outlier and warm-up penalties, as an operator would
    write it: an instance counts ``outlier_penalty`` extra requests while its per-request
    service-time estimate is more than ``eject_ratio`` times the group's median (outlier
    detection, in spirit), and ``cold_penalty`` extra while it was restarted less than
    ``warmup_s`` ago (cold caches). Penalties, not ejection: ejecting instances outright
    overloads the rest when the group is busy."""

    eject_ratio: float = 2.0
    outlier_penalty: float = 2.0
    warmup_s: float = 0.5
    cold_penalty: float = 1.0
    name: str = field(default="rule-based")
    _next: int = field(default=0, repr=False)

    def choose(self, obs: Observation) -> int:
        up = obs.up.tolist()
        svc = obs.service_ms.tolist()
        age = obs.since_restart_s.tolist()
        q = obs.outstanding.tolist()
        known = sorted(s for s, u in zip(svc, up) if u and s == s)  # s == s: not NaN
        limit = float("inf")
        if len(known) >= 2:
            m = len(known) // 2
            med = known[m] if len(known) % 2 else 0.5 * (known[m - 1] + known[m])
            limit = self.eject_ratio * med
        n = len(up)
        best, best_score = -1, float("inf")
        for k in range(n):  # from the one after the last chosen: ties rotate
            i = (self._next + k) % n
            if not up[i]:
                continue
            score = q[i]
            if svc[i] == svc[i] and svc[i] > limit:
                score += self.outlier_penalty
            if age[i] < self.warmup_s:
                score += self.cold_penalty
            if score < best_score:
                best, best_score = i, score
        if best < 0:
            raise RuntimeError("rule-based: no instance is up")
        self._next = best + 1
        return best


def baselines() -> list[Policy]:
    """Fresh instances of every baseline, in the benchmark's order."""
    return [RoundRobin(), LeastOutstanding(), RuleBased()]
