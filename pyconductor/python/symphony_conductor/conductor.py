"""The Conductor: a bus started from a config, a global view of every extension instance, and a
policy asked for every decision.

    async with Conductor(ConductorConfig(bus="plant", extensions=[manifest]),
                         policy=LeastOutstanding()) as c:
        reply = await c.request("worker", "sleep", {})
        print(c.view())

What it decides, through its :class:`~symphony_conductor.policy.Policy`:

* **which instance serves a request** (``policy.choose`` on an
  :class:`~symphony_conductor.policy.Observation` built from its own bookkeeping: requests in
  flight per instance, latency EWMAs, time since each instance became HEALTHY, recent crashes);
* **when to shed or delay load** (``policy.admit``: a request is held and asked again, or
  refused with :class:`Shed`);
* **when to restart** an instance the supervisor gave up on (``policy.should_restart`` on
  FAILED: the conductor restarts it by hand after the policy's delay).

A request whose instance dies while it is in flight fails with the death's reason; the
conductor retries it on another instance up to ``retries`` times (it does not retry an error
the extension answered).
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

import numpy as np

from symphony_ipc import SymphonyError

from .aio import AsyncBus
from .policy import (Admission, InstanceHealth, Observation, Outcome, Policy, RoundRobin)


class ConductorError(SymphonyError):
    """A conductor-level failure (no instance, shed)."""


class Shed(ConductorError):
    """The policy refused the request (load shedding)."""


@dataclass
class ConductorConfig:
    bus: Any = "default"  #: a bus name or an IPCBus config dict
    extensions: list = field(default_factory=list)  #: manifests (dict, JSON text or path)
    request_timeout: float = 5.0  #: seconds, per attempt
    retries: int = 1  #: attempts again on another instance when one dies mid-request
    max_outstanding: int = 0  #: per instance, for policy.admit (0: no cap)
    max_delays: int = 1000  #: DELAY answers before a request is shed anyway
    ewma_alpha: float = 0.2
    crash_window_s: float = 5.0
    spawn_timeout: float = 15.0
    #: named groups of extensions whose instances serve the same requests (e.g. one extension
    #: per build or machine profile): ``request(group, ...)`` routes among all their instances.
    #: An extension id that names no group is a group of its own instances.
    groups: dict = field(default_factory=dict)


@dataclass
class InstanceState:
    """The conductor's view of one instance."""

    route: str
    extension: str
    instance: int
    state: str = "CREATED"
    reason: str = ""
    pid: int = 0
    restarts: int = 0
    healthy_since: float = -math.inf  #: monotonic time it last became HEALTHY
    outstanding: int = 0
    ewma_latency_ms: float = math.nan
    service_ms: float = math.nan
    served: int = 0
    failed: int = 0
    crashes: deque = field(default_factory=deque)
    in_flight: dict = field(default_factory=dict)  #: token -> dispatch time

    def as_dict(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if k not in ("crashes", "in_flight")} | {
            "recent_crashes": len(self.crashes)}


class Conductor:
    """Starts a bus from ``config``, spawns its extensions, tracks every instance, and routes
    requests through ``policy``. Use ``async with``, or ``await start()`` / ``await stop()``."""

    def __init__(self, config: ConductorConfig, policy: Optional[Policy] = None):
        self.config = config
        self.policy = policy or RoundRobin()
        self.bus: Optional[AsyncBus] = None
        self.instances: dict[str, InstanceState] = {}
        self._handlers: list[Callable[[dict], Any]] = []
        self._restart_tasks: set[asyncio.Task] = set()

    # -- lifecycle ------------------------------------------------------------------------
    async def __aenter__(self) -> "Conductor":
        await self.start()
        return self

    async def __aexit__(self, *exc) -> None:
        await self.stop()

    async def start(self) -> None:
        self.bus = AsyncBus(self.config.bus)
        self.bus.add_event_handler(self._on_event)
        for manifest in self.config.extensions:
            await self.spawn(manifest)

    async def spawn(self, manifest: Any) -> str:
        """Adds an extension and waits until every instance is HEALTHY."""
        assert self.bus is not None, "start() first"
        ext = await self.bus.spawn_extension(manifest, wait=True,
                                             timeout=self.config.spawn_timeout)
        self.bus.check()
        for f in await self.bus.figures(ext):
            st = self._instance(f["extension"], f["instance"])
            st.state, st.reason, st.pid = f["state"], f["reason"], f["pid"]
            if st.state == "HEALTHY" and st.healthy_since == -math.inf:
                st.healthy_since = time.monotonic()
        return ext

    async def stop(self) -> None:
        for t in self._restart_tasks:
            t.cancel()
        if self.bus is not None:
            await self.bus.close()

    def on_event(self, handler: Callable[[dict], Any]) -> None:
        """``handler(event)`` for every bus event, after the conductor's own bookkeeping. An
        exception it raises ends the conductor's next request (and ``events()``) with it."""
        self._handlers.append(handler)

    # -- the global view ------------------------------------------------------------------
    def view(self) -> dict[str, list[dict]]:
        """Every extension's instances as the conductor sees them."""
        out: dict[str, list[dict]] = {}
        for st in sorted(self.instances.values(), key=lambda s: (s.extension, s.instance)):
            out.setdefault(st.extension, []).append(st.as_dict())
        return out

    def group(self, name: str) -> list[InstanceState]:
        """The instances that serve requests for ``name`` (a group or an extension id)."""
        members = self.config.groups.get(name, [name])
        return sorted((s for s in self.instances.values() if s.extension in members),
                      key=lambda s: (members.index(s.extension), s.instance))

    def observation(self, extension: str) -> Observation:
        """The policy's input for ``extension``'s group, now."""
        now = time.monotonic()
        group = self.group(extension)
        for s in group:
            while s.crashes and s.crashes[0] < now - self.config.crash_window_s:
                s.crashes.popleft()
        return Observation(
            now=now, instances=[s.route for s in group],
            up=np.array([s.state == "HEALTHY" for s in group], dtype=bool),
            outstanding=np.array([s.outstanding for s in group]),
            ewma_latency_ms=np.array([s.ewma_latency_ms for s in group], dtype=float),
            service_ms=np.array([s.service_ms for s in group], dtype=float),
            since_restart_s=np.array([now - s.healthy_since for s in group], dtype=float),
            recent_crashes=np.array([len(s.crashes) for s in group]),
            oldest_ms=np.array([(now - min(s.in_flight.values())) * 1000.0 if s.in_flight else 0.0
                                for s in group], dtype=float))

    # -- requests -------------------------------------------------------------------------
    async def request(self, extension: str, method: str, payload: Any = None,
                      timeout: Optional[float] = None) -> str:
        """Routes one request to an instance of ``extension`` (an extension id or a group of
        ``ConductorConfig.groups``) through the policy; the reply's JSON text."""
        assert self.bus is not None, "start() first"
        timeout = self.config.request_timeout if timeout is None else timeout
        attempts = 0
        delays = 0
        while True:
            self.bus.check()
            obs = self.observation(extension)
            if not obs.instances:
                raise ConductorError(f"no extension '{extension}' known to the conductor")
            if obs.candidates().size == 0:
                states = "; ".join(f"{s.route} {s.state} ({s.reason})" for s in self.group(extension))
                raise ConductorError(f"no HEALTHY instance of '{extension}': {states}")
            decision = self.policy.admit(obs, self.config.max_outstanding)
            if decision.admission is Admission.SHED or (
                    decision.admission is Admission.DELAY and delays >= self.config.max_delays):
                raise Shed(f"'{extension}' shed by {self.policy.name}: {decision.reason}")
            if decision.admission is Admission.DELAY:
                delays += 1
                await asyncio.sleep(decision.delay_s)
                continue
            i = self.policy.choose(obs)
            if not obs.up[i]:
                raise ConductorError(f"{self.policy.name} chose {obs.instances[i]}, which is down")
            features = self.policy.last_features()
            st = self.instances[obs.instances[i]]
            q0 = st.outstanding
            pid = st.pid
            t0 = time.monotonic()
            key = object()
            st.outstanding += 1
            st.in_flight[key] = t0
            try:
                reply = await self.bus.send_message(st.route, method, payload, timeout)
            except SymphonyError as e:
                latency = (time.monotonic() - t0) * 1000.0
                st.failed += 1
                self.policy.observe(Outcome(i, features, latency, failed=True))
                died = st.state != "HEALTHY" or any(
                    w in str(e) for w in ("killed", "exited", "not connected", "gone", "hung"))
                if died and st.pid == pid and st.state == "HEALTHY":
                    # the error came before the supervisor's CRASHED event: not routable until
                    # the next lifecycle event says otherwise
                    st.state, st.reason = "DOWN", str(e)
                if died and attempts < self.config.retries:
                    attempts += 1
                    continue
                raise
            finally:
                st.outstanding -= 1
                st.in_flight.pop(key, None)
            latency = (time.monotonic() - t0) * 1000.0
            a = self.config.ewma_alpha
            svc = latency / (q0 + 1)
            st.ewma_latency_ms = latency if math.isnan(st.ewma_latency_ms) else \
                (1 - a) * st.ewma_latency_ms + a * latency
            st.service_ms = svc if math.isnan(st.service_ms) else (1 - a) * st.service_ms + a * svc
            st.served += 1
            self.policy.observe(Outcome(i, features, latency))
            return reply

    # -- events ---------------------------------------------------------------------------
    def _instance(self, extension: str, instance: int) -> InstanceState:
        route = f"{extension}/{instance}"
        st = self.instances.get(route)
        if st is None:
            st = self.instances[route] = InstanceState(route, extension, instance)
        return st

    def _on_event(self, event: dict) -> None:
        if event["kind"] == "lifecycle":
            st = self._instance(event["extension"], event["instance"])
            st.state, st.reason = event["state"], event["reason"]
            st.pid, st.restarts = event["pid"], event["restarts"]
            now = time.monotonic()
            if st.state == "HEALTHY":
                st.healthy_since = now
                st.ewma_latency_ms = math.nan  # a new process: old measurements are stale
                st.service_ms = math.nan
            elif st.state == "CRASHED":
                st.crashes.append(now)
            elif st.state == "FAILED":
                self._consider_restart(st)
        for handler in self._handlers:
            handler(event)

    def _consider_restart(self, st: InstanceState) -> None:
        health = InstanceHealth(st.route, st.state, st.reason, st.restarts, len(st.crashes))
        decision = self.policy.should_restart(health)
        if not decision.restart:
            return

        async def later() -> None:
            await asyncio.sleep(decision.delay_s)
            if self.bus is not None and self.instances[st.route].state == "FAILED":
                await self.bus.start_extension(st.extension)

        task = asyncio.get_running_loop().create_task(later())
        self._restart_tasks.add(task)
        task.add_done_callback(self._restart_done)

    def _restart_done(self, task: asyncio.Task) -> None:
        self._restart_tasks.discard(task)
        if not task.cancelled() and task.exception() is not None and self.bus is not None:
            if self.bus._failure is None:  # surfaced by the next request / events()
                self.bus._failure = task.exception()
