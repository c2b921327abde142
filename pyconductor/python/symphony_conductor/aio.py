"""asyncio over ``symphony_ipc``: awaitable requests and spawns, ``async for`` over the bus's
events and over a topic's samples.

How it waits (nothing polls, no thread holds the GIL while it waits):

* **Replies.** ``send_message`` sends through ``IPCBus.request_async`` and awaits a future. The
  reply arrives on a native thread (the control plane's I/O thread), which queues it and
  signals an eventfd; the loop watches that fd with ``loop.add_reader`` and completes the
  futures on its own thread. Native threads never take the GIL.
* **Blocking native calls** (spawning and waiting for HEALTHY, stopping) run on a small worker
  pool with the GIL released inside the call; their result completes the future through
  ``loop.call_soon_threadsafe``.
* **Events**: the same eventfd scheme (``IPCBus.event_fd``); **samples**: the subscriber's own
  ``notify_fd()`` (readable when a publisher in any process published).

Exceptions are never swallowed: a request's error fails its future
(:class:`symphony_ipc.SymphonyError` with ``.code``); an exception raised by an event handler
(:meth:`AsyncBus.add_event_handler`) is re-raised by every ``events()`` iterator, by the next
``send_message`` and by :meth:`AsyncBus.check`, with its traceback.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import time
from typing import Any, AsyncIterator, Callable, Optional

import symphony_ipc
from symphony_ipc import SymphonyError

EventHandler = Callable[[dict], Any]


def _error(text: str, code: str) -> SymphonyError:
    e = SymphonyError(text)
    e.code = code
    return e


def _settle(fut: asyncio.Future, value: Any = None, exc: BaseException | None = None) -> None:
    if fut.done():  # cancelled by its awaiter: nothing to deliver
        return
    if exc is not None:
        fut.set_exception(exc)
    else:
        fut.set_result(value)


class AsyncBus:
    """An :class:`symphony_ipc.IPCBus` driven from one asyncio event loop.

    Create it inside a running loop (``async with AsyncBus("plant") as bus:``); every method
    must be called from that loop's thread. ``bus.sync`` is the underlying IPCBus (its
    synchronous API stays usable, e.g. ``bus.sync.figures()``).
    """

    def __init__(self, config: Any = None, *, workers: int = 4):
        self._loop = asyncio.get_running_loop()
        self.sync = symphony_ipc.IPCBus(config)
        self._pool = concurrent.futures.ThreadPoolExecutor(workers, thread_name_prefix="sym-py")
        self._pending: dict[int, tuple[asyncio.Future, float]] = {}
        self._queues: list[asyncio.Queue] = []
        self._handlers: list[EventHandler] = []
        self._failure: BaseException | None = None
        self._closed = False
        self._loop.add_reader(self.sync.completion_fd, self._on_completions)
        self._loop.add_reader(self.sync.event_fd, self._on_events)

    # -- lifecycle ------------------------------------------------------------------------
    async def __aenter__(self) -> "AsyncBus":
        return self

    async def __aexit__(self, *exc) -> None:
        await self.close()

    async def close(self) -> None:
        """Stops every extension (in a worker: it takes up to the stop grace) and fails every
        request still pending with the reason."""
        if self._closed:
            return
        self._closed = True
        await self._in_thread(self.sync.close)
        self._on_completions()  # "host stopped" replies of what was in flight
        self._loop.remove_reader(self.sync.completion_fd)
        self._loop.remove_reader(self.sync.event_fd)
        for fut, _ in self._pending.values():
            _settle(fut, exc=_error("the bus was closed", "unavailable"))
        self._pending.clear()
        for q in self._queues:
            q.put_nowait(None)
        self._pool.shutdown(wait=False)

    def check(self) -> None:
        """Raises the first exception an event handler raised, if any."""
        if self._failure is not None:
            raise self._failure

    # -- extensions -----------------------------------------------------------------------
    async def spawn_extension(self, manifest: Any, *, wait: bool = True,
                              timeout: float = 10.0) -> str:
        """Adds the manifest (JSON text, dict or path); with ``wait``, returns once every
        instance is HEALTHY. The extension id."""
        return await self._in_thread(self.sync.spawn_extension, manifest, wait, timeout)

    async def wait_healthy(self, extension: str, timeout: float = 10.0) -> None:
        await self._in_thread(self.sync.wait_healthy, extension, timeout)

    async def stop_extension(self, extension: str) -> None:
        await self._in_thread(self.sync.stop_extension, extension)

    async def start_extension(self, extension: str) -> None:
        await self._in_thread(self.sync.start_extension, extension)

    async def restart_extension(self, extension: str) -> None:
        await self._in_thread(self.sync.restart_extension, extension)

    async def remove_extension(self, extension: str) -> None:
        await self._in_thread(self.sync.remove_extension, extension)

    async def figures(self, extension: Optional[str] = None) -> list[dict]:
        return await self._in_thread(self.sync.figures, extension)

    async def topics(self) -> list[dict]:
        return await self._in_thread(self.sync.topics)

    # -- requests -------------------------------------------------------------------------
    async def send_message(self, extension_id: str, message_type: str, payload: Any = None,
                           timeout: Optional[float] = None) -> str:
        """A request to ``extension_id`` (``"ext"``: a HEALTHY instance, round robin;
        ``"ext/2"``: that instance). The reply's payload as JSON text; SymphonyError with the
        reason otherwise (an instance that dies while the request is in flight fails it at
        once with the death's reason)."""
        self.check()
        if self._closed:
            raise _error("the bus was closed", "unavailable")
        token = self.sync.request_async(extension_id, message_type, payload, timeout)
        fut = self._loop.create_future()
        self._pending[token] = (fut, time.monotonic())
        try:
            return await fut
        finally:
            self._pending.pop(token, None)

    async def request_json(self, extension_id: str, message_type: str, payload: Any = None,
                           timeout: Optional[float] = None) -> Any:
        """:meth:`send_message`, with the reply parsed as JSON."""
        return json.loads(await self.send_message(extension_id, message_type, payload, timeout))

    def _on_completions(self) -> None:
        for token, ok, text, code, _route in self.sync.completions():
            entry = self._pending.pop(token, None)
            if entry is None:
                continue  # its awaiter was cancelled and gave up on it
            _settle(entry[0], text) if ok else _settle(entry[0], exc=_error(text, code))

    # -- events ---------------------------------------------------------------------------
    def add_event_handler(self, handler: EventHandler) -> None:
        """``handler(event)`` runs on the loop for every event. If it raises, the exception is
        kept and re-raised by :meth:`check`, every ``events()`` iterator and the next
        ``send_message``: never swallowed."""
        self._handlers.append(handler)

    def remove_event_handler(self, handler: EventHandler) -> None:
        self._handlers.remove(handler)

    async def events(self, counters_every: Optional[float] = None) -> AsyncIterator[dict]:
        """Every event from now on: ``{"kind": "lifecycle", "route", "from", "state",
        "reason", "pid", ...}``, ``{"kind": "peer", ...}``, ``{"kind": "message", ...}``; with
        ``counters_every`` (seconds), also ``{"kind": "counters", ...}`` that often."""
        q: asyncio.Queue = asyncio.Queue()
        self._queues.append(q)
        try:
            next_counters = time.monotonic() + counters_every if counters_every else None
            while True:
                self.check()
                if next_counters is not None:
                    wait = max(0.0, next_counters - time.monotonic())
                    try:
                        event = await asyncio.wait_for(q.get(), wait)
                    except asyncio.TimeoutError:
                        next_counters = time.monotonic() + counters_every
                        yield {"kind": "counters", **self.sync.counters()}
                        continue
                else:
                    event = await q.get()
                if event is None:  # closed, or a handler failed
                    self.check()
                    return
                yield event
        finally:
            self._queues.remove(q)

    def _on_events(self) -> None:
        for event in self.sync.poll_events():
            for handler in list(self._handlers):
                try:
                    handler(event)
                except BaseException as e:  # noqa: BLE001 - kept and re-raised, not swallowed
                    if self._failure is None:
                        self._failure = e
                    for q in self._queues:
                        q.put_nowait(None)
                    for fut, _ in list(self._pending.values()):
                        _settle(fut, exc=e)
                    return
            for q in self._queues:
                q.put_nowait(event)

    # -- topics ---------------------------------------------------------------------------
    def advertise(self, topic: str, **options) -> symphony_ipc.Publisher:
        """A publisher (``publish(bytes_like)`` and ``loan(n)`` never block: synchronous)."""
        return self.sync.advertise(topic, **options)

    def subscribe(self, topic: str, *, dtype: Any = None, **options) -> "AsyncSubscriber":
        """An :class:`AsyncSubscriber`: ``async for sample in sub``. With ``dtype`` (numpy), a
        typed topic of ``dtype.itemsize`` bytes per sample (unless ``size`` is given)."""
        if dtype is not None and "size" not in options:
            import numpy as np
            options["size"] = np.dtype(dtype).itemsize
        return AsyncSubscriber(self.sync.subscribe(topic, **options), self._loop, dtype)

    # -- helpers --------------------------------------------------------------------------
    async def _in_thread(self, fn: Callable, *args) -> Any:
        fut = self._loop.create_future()
        loop = self._loop

        def run() -> None:
            try:
                result = fn(*args)
            except BaseException as e:  # noqa: BLE001 - delivered to the awaiter
                loop.call_soon_threadsafe(_settle, fut, None, e)
            else:
                loop.call_soon_threadsafe(_settle, fut, result)

        self._pool.submit(run)
        return await fut


class AsyncSubscriber:
    """``async for sample in sub`` over a topic: each :class:`symphony_ipc.Sample` is read in
    place in shared memory. Use it inside ``with sample:`` (or let the next iteration release
    it: asking for the next sample releases the previous one, and raises BufferError if a view
    of it is still alive)."""

    def __init__(self, sub: symphony_ipc.Subscriber, loop: asyncio.AbstractEventLoop,
                 dtype: Any = None):
        self.sync = sub
        self._loop = loop
        self._fd = sub.notify_fd()
        self._last: Optional[symphony_ipc.Sample] = None
        self.dtype = dtype

    def __aiter__(self) -> "AsyncSubscriber":
        return self

    async def __anext__(self) -> symphony_ipc.Sample:
        return await self.take()

    async def take(self) -> symphony_ipc.Sample:
        """The next sample, waiting (on the subscriber's notify fd) until one is published."""
        if self._last is not None and self._last.held:
            self._last.release()  # BufferError while a view is alive
        while True:
            sample = self.sync.take()
            if sample is not None:
                self._last = sample
                return sample
            await self._readable()

    async def _readable(self) -> None:
        fut = self._loop.create_future()
        self._loop.add_reader(self._fd, _settle, fut, None)
        try:
            await fut
        finally:
            self._loop.remove_reader(self._fd)

    def array(self, sample: symphony_ipc.Sample):
        """A read-only numpy view of ``sample`` with this subscriber's dtype (an export: it
        must be dropped before the sample is released)."""
        import numpy as np
        return np.frombuffer(sample, dtype=self.dtype)

    def close(self) -> None:
        if self._last is not None and self._last.held:
            self._last.release()
        self.sync.close()
