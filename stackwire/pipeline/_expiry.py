"""Long per-attempt time limits on one shared, coarse timer.

aiohttp's ``total`` timeout costs every request a timer of its own (a handle pushed on
the event loop's heap, then cancelled) and a timer context around every read, about
a tenth of what a small API call costs. For limits of `COARSE_AFTER` seconds or more
aiohttp rounds the due time up to a whole second anyway, so the transport puts such
limits here instead: every attempt due in the same second shares one loop timer.

An `Expiry` is the limit of one attempt. Its owner wraps each wait on the network in
``with expiry:`` and reports the end of the attempt with ``done()``. When the
second passes, the expiry is marked expired and, if its task is waiting inside such
a region at that moment, the task is cancelled; `Expiry.timed_out` then tells the
owner that the `CancelledError` it caught is this timeout (to raise as a
`TimeoutError`), not a cancellation from outside, which is never swallowed. A task
that is busy elsewhere (in a middleware, say) is never cancelled: its next wait
raises `TimeoutError` instead.
"""

from __future__ import annotations

import asyncio
import math
from types import TracebackType

__all__ = ["COARSE_AFTER", "Expiry", "ExpiryWheel"]

# Limits this long or longer are rounded up to the whole second (as aiohttp does).
COARSE_AFTER = 5.0


class Expiry:
    """The time limit of one attempt (see the module docs)."""

    __slots__ = ("_bucket", "_cancelling", "_loop", "_task", "expired")

    def __init__(self, bucket: set[Expiry], loop: asyncio.AbstractEventLoop) -> None:
        self._bucket = bucket
        self._loop = loop
        self._task: asyncio.Task[object] | None = None
        self._cancelling = 0
        self.expired = False

    def enter(self) -> None:
        """Start a wait; `TimeoutError` if the limit has already passed."""
        if self.expired:
            raise TimeoutError
        # Given the loop, current_task() skips get_running_loop(), which on Python
        # 3.11 makes a getpid() system call every time.
        task = asyncio.current_task(self._loop)
        if task is not None:
            self._cancelling = task.cancelling()
        self._task = task

    def leave(self) -> None:
        """End the wait started by ``enter()``."""
        self._task = None

    def timed_out(self) -> bool:
        """Whether the `CancelledError` just caught inside ``enter()``/``leave()`` is
        this limit's doing (then the cancellation is withdrawn from the task)."""
        task = self._task
        return self.expired and task is not None and task.uncancel() <= self._cancelling

    def __enter__(self) -> Expiry:
        """``with expiry: await ...``: one wait under the limit (``enter``/``leave``);
        a cancellation that is this limit's doing leaves it as `TimeoutError`."""
        self.enter()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        timed_out = exc_type is asyncio.CancelledError and self.timed_out()
        self.leave()
        if timed_out:
            raise TimeoutError from exc

    def done(self) -> None:
        """The attempt is over: the limit no longer applies."""
        self._bucket.discard(self)

    def _expire(self) -> None:
        self.expired = True
        if self._task is not None:
            self._task.cancel()


class ExpiryWheel:
    """Hands out `Expiry` objects, one loop timer per second that has any."""

    __slots__ = ("_buckets", "_loop")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._buckets: dict[int, set[Expiry]] = {}

    def start(self, seconds: float) -> Expiry:
        """A limit ``seconds`` from now, rounded up to the loop clock's next second."""
        due = math.ceil(self._loop.time() + seconds)
        bucket = self._buckets.get(due)
        if bucket is None:
            bucket = self._buckets[due] = set()
            self._loop.call_at(due, self._fire, due)
        expiry = Expiry(bucket, self._loop)
        bucket.add(expiry)
        return expiry

    def start_exact(self, seconds: float) -> Expiry:
        """A limit exactly ``seconds`` from now, on a loop timer of its own: for the
        rare short limit that a whole second would overshoot. Once ``done()``, its
        timer finds nothing left to expire."""
        bucket: set[Expiry] = set()
        expiry = Expiry(bucket, self._loop)
        bucket.add(expiry)
        self._loop.call_later(seconds, self._fire_bucket, bucket)
        return expiry

    @staticmethod
    def _fire_bucket(bucket: set[Expiry]) -> None:
        for expiry in list(bucket):
            expiry._expire()

    def _fire(self, due: int) -> None:
        for expiry in self._buckets.pop(due, ()):
            expiry._expire()
