"""`ConcurrencyLimit`: at most N attempts in flight; the others queue.

What it does: an attempt takes a slot before it is sent and gives it back when its
response is handed back up, body included (when ``decode`` has read it, or the
response is closed; for a stream: when its headers arrived), or when it fails.
Without a free slot it queues (first come, first served among the waiters of one
process); a wait longer than ``max_wait`` raises `ConcurrencyLimitError`, before any
I/O. Cancellation while queued, or while in flight, gives the slot back: the count is
always exact.

Where it sits: added with ``client.with_middleware(ConcurrencyLimit(n))``, below
``retry`` (per attempt): a retry sleeping between attempts holds no slot, and each
attempt of the client and of every client derived from it (which share the part)
counts. Put it below `RateLimit` and `CircuitBreaker` so that their waits and refusals
hold no slot, and below `Hedge` so that every hedged attempt takes one.

Defaults: ``max_wait=None`` (wait as long as it takes); state in a `MemoryStateStore`
of its own unless ``store=`` is given (parts with the same ``max_in_flight`` and store
share their slots). The queue wait is measured on the event loop's clock (it is a wait
for other attempts, not a sleep, so the client's injected ``sleep`` is not used).

Retries and timeouts: a refusal is never retried. The queue wait is not part of the
per-attempt timeout (it starts when the request is sent), but a call ``deadline`` keeps
running while queued: a call still queued at its deadline is refused
(`ConcurrencyLimitError`) then, as at the end of ``max_wait``.
"""

from __future__ import annotations

import asyncio
import contextlib
import weakref
from collections import deque
from typing import Any

from ..errors import ConcurrencyLimitError, InvalidRequestError
from ..pipeline.clocks import Clocks
from ..pipeline.middleware import CallNext, not_a_response
from ..pipeline.request import Request
from ..pipeline.response import Response
from ._common import StoreSlot, check_number, check_store, in_background
from ._store import StateStore

__all__ = ["ConcurrencyLimit"]

# Waiters of every part on one store, per key: a slot given back by any of them wakes
# the first. A store shared between processes cannot wake us: we also look again
# every _POLL seconds.
_WAITERS: weakref.WeakKeyDictionary[Any, dict[str, deque[asyncio.Future[None]]]] = (
    weakref.WeakKeyDictionary()
)
_POLL = 0.25


def _queue(store: StateStore, key: str) -> deque[asyncio.Future[None]]:
    queues = _WAITERS.get(store)
    if queues is None:
        queues = _WAITERS[store] = {}
    queue = queues.get(key)
    if queue is None:
        queue = queues[key] = deque()
    return queue


def _wake(queue: deque[asyncio.Future[None]]) -> None:
    while queue:
        waiter = queue.popleft()
        if not waiter.done():
            waiter.set_result(None)
            return


class ConcurrencyLimit:
    """At most ``max_in_flight`` attempts in flight; see the module docstring.

    >>> from stackwire import AsyncClient
    >>> client = AsyncClient("https://api.example.com").with_middleware(ConcurrencyLimit(8))
    >>> "concurrency_limit" in client.pipeline
    True
    """

    name = "concurrency_limit"

    def __init__(
        self,
        max_in_flight: int,
        *,
        max_wait: float | None = None,
        store: StateStore | None = None,
    ) -> None:
        if (
            isinstance(max_in_flight, bool)
            or not isinstance(max_in_flight, int)
            or max_in_flight < 1
        ):
            raise InvalidRequestError(f"max_in_flight must be an int >= 1, got {max_in_flight!r}")
        self.max_in_flight = max_in_flight
        self.max_wait = check_number(
            "max_wait", max_wait, inclusive=True, allow_none=True, allow_inf=True
        )
        self._store = StoreSlot(check_store(store))
        self._key = f"concurrency_limit:{max_in_flight}"
        self._queue: tuple[StateStore, deque[asyncio.Future[None]]] | None = None

    def in_flight(self) -> int:
        """How many attempts hold a slot now (with an in-memory store)."""
        store = self._store.store
        counter = getattr(store, "slots_in_use", None)
        return int(counter(self._key)) if counter is not None else 0

    async def __call__(self, request: Request, call_next: CallNext) -> Response[Any]:
        slot = self._store
        store = slot.store or slot.get(request)
        memory = slot.memory
        key = self._key
        queue = self._queue
        if queue is None or queue[0] is not store:
            queue = self._queue = (store, _queue(store, key))
        waiters = queue[1]
        lease: int | None = None
        if not waiters:
            if memory is not None:
                lease = memory.acquire_slot_sync(key, limit=self.max_in_flight)
            else:
                lease = await store.acquire_slot(key, limit=self.max_in_flight)
        if lease is None:
            lease = await self._wait(store, key, waiters, request)
        try:
            response = await call_next(request)
        except BaseException:
            await self._give_back(store, key, lease, waiters)
            raise
        try:
            done = request.options.stream or response.is_closed
        except AttributeError:  # not a Response (a middleware below forgot ``return``)
            await self._give_back(store, key, lease, waiters)
            if isinstance(response, Response):
                raise
            raise not_a_response(response) from None
        if done:
            # A stream is in flight until its headers; a body that came with them
            # (the connection is free already) needs no wait either.
            await self._give_back(store, key, lease, waiters)
        else:
            # Until its body is read (by ``decode``, above) or the response is closed.
            response.when_done(lambda: self._give_back_soon(store, key, lease, waiters))
        return response

    def _give_back_here(self, key: str, lease: int) -> bool:
        """Give the slot back without a round trip of its own, if the store can;
        whether it did."""
        slot = self._store
        if slot.memory is not None:
            slot.memory.release_slot_sync(key, lease)
        elif slot.later is not None:  # sent with the store's next round trip
            slot.later.release_slot_later(key, lease)
        else:
            return False
        return True

    async def _give_back(
        self, store: StateStore, key: str, lease: int, waiters: deque[asyncio.Future[None]]
    ) -> None:
        if not self._give_back_here(key, lease):
            await store.release_slot(key, lease)
        if waiters:
            _wake(waiters)

    def _give_back_soon(
        self, store: StateStore, key: str, lease: int, waiters: deque[asyncio.Future[None]]
    ) -> None:
        """`_give_back` from a `Response.when_done` callback, which cannot wait: a
        store that needs a round trip of its own gets a task (a failure of it is
        dropped: the slot's lease runs out instead)."""
        if self._give_back_here(key, lease):
            if waiters:
                _wake(waiters)
            return
        task = in_background(lambda: store.release_slot(key, lease))
        if task is not None and waiters:  # (no loop: the lease runs out)
            task.add_done_callback(lambda _: _wake(waiters))

    async def _wait(
        self,
        store: StateStore,
        key: str,
        queue: deque[asyncio.Future[None]],
        request: Request,
    ) -> int:
        loop = asyncio.get_running_loop()
        deadline = None if self.max_wait is None else loop.time() + self.max_wait
        by_call = False  # the call's deadline comes first
        if request.deadline_at is not None:
            # What is left of it, on the clock it was set on (the client's monotonic
            # one, or its injected clock), counted on the loop's from now.
            left = loop.time() + (request.deadline_at - Clocks.of(request).monotonic())
            if deadline is None or left < deadline:
                deadline, by_call = left, True
        while True:
            waiter: asyncio.Future[None] = loop.create_future()
            queue.append(waiter)
            timeout = _POLL if deadline is None else min(_POLL, deadline - loop.time())
            try:
                if timeout > 0:
                    await asyncio.wait((waiter,), timeout=timeout)
                lease = await store.acquire_slot(key, limit=self.max_in_flight)
            except BaseException:
                # Cancelled: a wake-up meant for us goes to the next waiter.
                if waiter.done() and not waiter.cancelled():
                    _wake(queue)
                else:
                    waiter.cancel()
                raise
            finally:
                if not waiter.done():
                    waiter.cancel()
                with contextlib.suppress(ValueError):
                    queue.remove(waiter)
            if lease is not None:
                return lease
            if deadline is not None and loop.time() >= deadline:
                within, raise_ = (
                    (f"before the call's deadline of {request.options.deadline} s", "deadline")
                    if by_call
                    else (f"within max_wait={self.max_wait:g} s", "max_wait")
                )
                raise ConcurrencyLimitError(
                    f"No free slot among max_in_flight={self.max_in_flight} attempts in flight "
                    f"{within}; not sent (raise {raise_} or max_in_flight).",
                    request=request,
                )

    def __repr__(self) -> str:
        shown = "None" if self.max_wait is None else f"{self.max_wait:g}"
        return f"ConcurrencyLimit({self.max_in_flight}, max_wait={shown})"
