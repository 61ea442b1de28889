"""`VirtualTime`: a sleep that returns at once, the clock it advances, seeded randomness."""

from __future__ import annotations

import asyncio
import random as _random

__all__ = ["VirtualTime"]

# 2023-11-14T22:13:20Z: a fixed wall-clock start, so HTTP-date hints are reproducible.
DEFAULT_START = 1_700_000_000.0


class VirtualTime:
    """Time for a test: hand ``sleep``, ``clock`` and ``random`` to a client.

    ``await sleep(d)`` records ``d`` in ``slept``, advances ``clock()`` by ``d`` and
    returns at once, so a call that backs off for 8 s takes microseconds; ``clock()``
    is the wall clock the retry middleware reads ``Retry-After`` dates against (it
    starts at ``start``); ``random()`` is seeded, so jitter is the same on every run.

    >>> import asyncio
    >>> time = VirtualTime()
    >>> asyncio.run(time.sleep(1.5))
    >>> time.slept, time.clock() - time.start
    ([1.5], 1.5)
    """

    def __init__(self, *, start: float = DEFAULT_START, seed: int = 0) -> None:
        self.start = float(start)
        self.now = float(start)
        self.slept: list[float] = []
        self._random = _random.Random(seed)

    async def sleep(self, delay: float) -> None:
        """Record ``delay``, advance the clock by it, return at once (after one turn of
        the event loop, as any sleep gives the other tasks their turn)."""
        self.slept.append(delay)
        if delay > 0:
            self.now += delay
        await asyncio.sleep(0)

    def clock(self) -> float:
        """Seconds since the epoch, on the virtual clock."""
        return self.now

    def random(self) -> float:
        """A seeded float in [0, 1)."""
        return self._random.random()

    def advance(self, seconds: float) -> None:
        """Move the clock forward without sleeping (say, to pass a token's expiry)."""
        self.now += seconds

    def __repr__(self) -> str:
        return f"VirtualTime(elapsed={self.now - self.start:g} s, sleeps={len(self.slept)})"
