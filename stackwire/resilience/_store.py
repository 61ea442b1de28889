"""`StateStore`: where the resilience parts keep their state, and `MemoryStateStore`.

The parts never keep counters themselves: each asks its store, in one call, to do one
whole step (take a token, record an outcome, ...). Every operation is atomic and the
*store* owns "now": refills, windows and ``open_for`` are timed on the store's own
monotonic clock, never on a time the caller passes. The caller passes only durations
(``reset_in`` seconds announced by a server, converted from a date by the part with the
client's wall clock). So a store shared between processes (Redis: one Lua script per
operation, several of them in one round trip, timed on the server's ``TIME``) gives
every process the same answers whatever their clocks say.

Keys are opaque strings built by the parts: ``<part>:<settings>:<origin>`` (a part with
other settings uses other keys, so two parts share state only when they are of the same
kind, with the same settings and the same store). A store may expire a key that has not
been used for longer than the longest duration its operations mention (``burst/rate``,
``window``, ``open_for``, the announced reset).

The operations (all ``async``; an implementation must be safe to call from many tasks,
and, for a shared store, from many processes):

Token bucket (`RateLimit`'s own rate)
    ``take_tokens(key, *, rate, burst, max_wait) -> tuple[bool, float]``: refill the
    bucket (``rate`` tokens a second, at most ``burst``; a new bucket is full), then
    reserve one token: ``(True, wait)``, ``wait`` the seconds the caller must wait before
    it may send (``0.0``: now); the bucket may go into debt, so waiting callers are
    served in order. ``(False, wait)`` when that wait would be longer than ``max_wait``:
    then nothing is taken. Optional: ``untake_tokens(key, *, rate, burst)`` gives one
    back (refill first, at most ``burst``), for a caller that went away while it waited
    (cancelled, or its deadline passed) and so sent nothing; a store without it keeps
    the debt, and the callers after it wait ``1 / rate`` longer each.

Server quota (`RateLimit` from response headers)
    ``take_quota(key) -> tuple[bool, float, int]``: take one unit of the budget the
    server announced: ``(True, 0.0, ticket)`` while some remains (or when nothing was
    announced; ``ticket`` numbers the takes); at 0, ``(False, wait, 0)``: nothing is
    taken, and the window ends in ``wait`` seconds, when the caller asks again. (No
    reservations: the end of a window is an estimate that later responses correct, so
    a waiter asks again rather than trusting a wait computed earlier.)
    ``announce_quota(key, *, limit, remaining, reset_in, window, ticket)``: the latest
    announcement of a response: ``remaining`` of ``limit`` (``None``: not said) until
    ``reset_in`` seconds from now (``window``: the policy's window length, if said);
    ``ticket`` is the one the request got, so takes made after it (which the server may
    not have counted yet) are subtracted when the announcement starts a new window.
    Within the current window, the remaining budget only goes down (and its end is the
    latest estimate of it: each includes a network delay), unless no take was made
    after ``ticket`` (tickets start at 1): then the server's count is the budget, up
    or down (a server may count fewer calls than were sent: GitHub's 304s are free).
    When the window
    ends, at most ``limit`` is released, and the next window is assumed as long as the
    last one until a response says otherwise. Without an announced ``limit``, a reset
    releases the most a window was seen to hold (the highest ``remaining`` announced,
    plus one; at least 2), and the next announcement replaces that estimate, up or
    down; with nothing to estimate from, the budget is forgotten at the reset.
    ``pause_quota(key, *, seconds)``: nothing goes through for ``seconds`` (a 429 with
    ``Retry-After``); a later pause never shortens an earlier one.
    Optional: ``untake_quota(key)`` gives one unit back (at most ``limit``), for a take
    whose request was not sent (refused by the bucket, or its caller went away); a
    store without it keeps the unit spent until the window ends.

Concurrency slots (`ConcurrencyLimit`)
    ``acquire_slot(key, *, limit) -> int | None``: a slot (its lease number) when fewer
    than ``limit`` are held, else ``None``. ``release_slot(key, lease)``: give it back
    (a lease released twice, or unknown, is ignored). Waiting is the part's job.

Circuit breaker (`CircuitBreaker`)
    ``breaker_acquire(key, *, open_for) -> tuple[str, float]``: ``("closed", 0.0)``: go;
    ``("probe", 0.0)``: go, as the one probe (the breaker was open for ``open_for`` and no
    probe is out); ``("open", retry_after)``: refuse.
    ``breaker_record(key, *, outcome, probe, failure_ratio, min_calls, window,
    open_for) -> str``: count an attempt's ``outcome`` (``"success"``, ``"failure"``, or
    ``"abandoned"`` for a cancelled one, which only frees the probe) in a sliding
    ``window`` and move the breaker: closed -> open when the window holds at least
    ``min_calls`` attempts and ``failures / attempts >= failure_ratio``; a probe's success
    closes it (with an empty window), its failure reopens it for ``open_for``. Returns
    the state after: ``"closed"``, ``"open"`` or ``"half-open"``.

Retry budget (`RetryBudget`)
    ``budget_deposit(key, *, window)``: count one call in the sliding ``window``.
    ``budget_withdraw(key, *, ratio, min_per_second, window) -> bool``: count one retry
    and return ``True`` when the retries in the window stay within the larger of
    ``ratio`` times the calls in it and the floor; else ``False`` (nothing counted).
    The floor is ``min_per_second`` times the seconds the window covers, rounded up:
    from the start of its oldest slice (``window / 10``) holding a count to the end of
    the current one, at most ``window`` (one slice for a new or idle budget).

`MemoryStateStore` is the in-process store; every part without ``store=`` makes one
for itself (on the client's clock, so tests with a virtual clock work).
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable
from typing import Protocol, TypeVar, runtime_checkable

__all__ = ["MemoryStateStore", "StateStore"]


@runtime_checkable
class StateStore(Protocol):
    """The operations the resilience parts need from a store; see the module docstring."""

    async def take_tokens(
        self, key: str, *, rate: float, burst: float, max_wait: float
    ) -> tuple[bool, float]: ...

    async def take_quota(self, key: str) -> tuple[bool, float, int]: ...

    async def announce_quota(
        self,
        key: str,
        *,
        limit: int | None,
        remaining: int,
        reset_in: float,
        window: float | None,
        ticket: int,
    ) -> None: ...

    async def pause_quota(self, key: str, *, seconds: float) -> None: ...

    async def acquire_slot(self, key: str, *, limit: int) -> int | None: ...

    async def release_slot(self, key: str, lease: int) -> None: ...

    async def breaker_acquire(self, key: str, *, open_for: float) -> tuple[str, float]: ...

    async def breaker_record(
        self,
        key: str,
        *,
        outcome: str,
        probe: bool,
        failure_ratio: float,
        min_calls: int,
        window: float,
        open_for: float,
    ) -> str: ...

    async def budget_deposit(self, key: str, *, window: float) -> None: ...

    async def budget_withdraw(
        self, key: str, *, ratio: float, min_per_second: float, window: float
    ) -> bool: ...


_SLICES = 10  # a sliding window is kept as this many slices


class _SlidingCounts:
    """Counts per slice of a sliding window (``window / _SLICES`` seconds a slice),
    with running totals so that reading them costs nothing."""

    __slots__ = ("counts", "slice", "starts", "sums")

    def __init__(self, window: float, fields: int) -> None:
        self.slice = window / _SLICES
        self.starts: deque[int] = deque()  # slice numbers, oldest first
        self.counts: deque[list[int]] = deque()
        self.sums = [0] * fields

    def _trim(self, current: int) -> None:
        oldest = current - _SLICES + 1
        starts = self.starts
        while starts and starts[0] < oldest:
            starts.popleft()
            row = self.counts.popleft()
            sums = self.sums
            for index, value in enumerate(row):
                sums[index] -= value

    def add(self, now: float, field: int) -> list[int]:
        """Count one in ``field``; returns the totals."""
        current = int(now // self.slice)
        starts = self.starts
        if not starts or starts[-1] != current:
            # A new slice: drop those that left the window (while the newest slice
            # stays the current one, nothing older can have left it).
            self._trim(current)
            starts.append(current)
            self.counts.append([0] * len(self.sums))
        self.counts[-1][field] += 1
        self.sums[field] += 1
        return self.sums

    def totals(self, now: float) -> list[int]:
        self._trim(int(now // self.slice))
        return self.sums

    def clear(self) -> None:
        self.starts.clear()
        self.counts.clear()
        self.sums = [0] * len(self.sums)


class _Bucket:
    __slots__ = ("burst", "rate", "tokens", "updated")

    def __init__(self, rate: float, burst: float, updated: float) -> None:
        self.rate = rate  # the settings it was made with (the key holds them too)
        self.burst = burst
        self.tokens = burst
        self.updated = updated

    def idle(self, now: float) -> bool:
        """Full again: as good as a new bucket."""
        return self.tokens + (now - self.updated) * self.rate >= self.burst


class _Quota:
    __slots__ = ("limit", "provisional", "remaining", "reset_at", "seen", "taken", "window")

    def __init__(self) -> None:
        self.limit: int | None = None
        self.remaining: int | None = None  # None: nothing announced (no limit known)
        self.reset_at = -math.inf
        self.window: float | None = None
        self.taken = 0  # the ticket counter
        # Without an announced limit: the most a window was seen to hold (the highest
        # remaining announced, plus the request answered; kept from 2 on), released
        # at a reset instead of every waiter at once; ``provisional`` while the
        # remaining count comes from it, so the next announcement replaces it.
        self.seen = 0
        self.provisional = False

    def idle(self, now: float) -> bool:
        """Nothing announced, or a whole window has passed since the known one ended
        with no take and no announcement (either would have moved ``reset_at``)."""
        return self.remaining is None or now > self.reset_at + (self.window or 0.0)

    def roll(self, now: float) -> None:
        """Open the windows that began by ``now``, releasing at most ``limit`` each."""
        if self.remaining is None or now < self.reset_at:
            return
        limit = self.limit
        if limit is None and self.seen:
            limit = self.seen
            self.provisional = True
        if limit is None or self.window is None or self.window <= 0:
            # Nothing says how much the next window holds: forget the budget (the next
            # response announces it again).
            self.remaining = None
            return
        self.remaining = limit
        self.reset_at += self.window
        if self.reset_at <= now:  # idle for several windows: the next starts now
            self.reset_at = now + self.window


class _Breaker:
    __slots__ = ("counts", "opened_at", "probe_out", "state")

    def __init__(self, window: float) -> None:
        self.state = "closed"
        self.opened_at = 0.0
        self.probe_out = False
        self.counts = _SlidingCounts(window, 2)

    def idle(self, now: float) -> bool:
        """Closed with an empty window: as good as a new breaker."""
        return self.state == "closed" and not any(self.counts.totals(now))


# Entries a table of a MemoryStateStore may hold before the idle ones are dropped.
_ROOM = 1024


class _Entry(Protocol):
    def idle(self, now: float) -> bool: ...


_E = TypeVar("_E", bound=_Entry)


def _drop_idle(table: dict[str, _E], now: float) -> None:
    for key in [key for key, entry in table.items() if entry.idle(now)]:
        del table[key]


class MemoryStateStore:
    """The in-process `StateStore`: plain dictionaries, atomic because no operation
    awaits anything. ``monotonic`` is its clock (`time.monotonic` by default; a part
    that makes its own store passes the client's injected clock).

    Give the same store to several parts (or to parts on several clients) to share
    their state: parts of the same kind and settings share it per origin.

    Its size stays bounded by the origins in use, not by every origin ever called:
    when a table reaches 1,024 keys (then twice what the last sweep kept), the entries
    that are as good as new are dropped: a full token bucket, a server budget unused
    for a window past its end (or never announced), no slot held, a closed breaker
    with an empty window. (A client of one API never gets there.)
    """

    def __init__(self, *, monotonic: Callable[[], float] = time.monotonic) -> None:
        self._now = monotonic
        self._buckets: dict[str, _Bucket] = {}
        self._quotas: dict[str, _Quota] = {}
        self._slots: dict[str, set[int]] = {}
        self._leases = 0
        self._breakers: dict[str, _Breaker] = {}
        self._budgets: dict[str, _SlidingCounts] = {}
        self._room = _ROOM

    def _sweep(self) -> None:
        """Drop the idle entries of every table (called when a table, about to get a
        new key, holds ``_room`` of them)."""
        now = self._now()
        _drop_idle(self._buckets, now)
        _drop_idle(self._quotas, now)
        _drop_idle(self._breakers, now)
        for key in [key for key, held in self._slots.items() if not held]:
            del self._slots[key]
        largest = max(len(self._buckets), len(self._quotas), len(self._breakers), len(self._slots))
        self._room = max(_ROOM, 2 * largest)

    # -- token bucket --------------------------------------------------------------

    def take_tokens_sync(
        self, key: str, *, rate: float, burst: float, max_wait: float
    ) -> tuple[bool, float]:
        now = self._now()
        bucket = self._buckets.get(key)
        if bucket is None:
            if len(self._buckets) >= self._room:
                self._sweep()
            bucket = self._buckets[key] = _Bucket(rate, burst, now)
        elif now > bucket.updated:
            bucket.tokens = min(burst, bucket.tokens + (now - bucket.updated) * rate)
            bucket.updated = now
        wait = 0.0 if bucket.tokens >= 1.0 else (1.0 - bucket.tokens) / rate
        if wait > max_wait:
            return False, wait
        bucket.tokens -= 1.0
        return True, wait

    def untake_tokens_sync(self, key: str, *, rate: float, burst: float) -> None:
        bucket = self._buckets.get(key)
        if bucket is None:
            return
        now = self._now()
        if now > bucket.updated:
            bucket.tokens = min(burst, bucket.tokens + (now - bucket.updated) * rate)
            bucket.updated = now
        bucket.tokens = min(burst, bucket.tokens + 1.0)

    # -- server quota --------------------------------------------------------------

    def _quota(self, key: str) -> _Quota:
        quota = self._quotas.get(key)
        if quota is None:
            if len(self._quotas) >= self._room:
                self._sweep()
            quota = self._quotas[key] = _Quota()
        return quota

    def take_quota_sync(self, key: str) -> tuple[bool, float, int]:
        quota = self._quotas.get(key)
        if quota is None:
            if len(self._quotas) >= self._room:
                self._sweep()
            quota = self._quotas[key] = _Quota()
        if quota.remaining is None:  # nothing announced: no clock to read
            quota.taken += 1
            return True, 0.0, quota.taken
        now = self._now()
        if now >= quota.reset_at:
            quota.roll(now)
            if quota.remaining is None:
                quota.taken += 1
                return True, 0.0, quota.taken
        if quota.remaining > 0:
            quota.remaining -= 1
            quota.taken += 1
            return True, 0.0, quota.taken
        return False, quota.reset_at - now, 0

    def announce_quota_sync(
        self,
        key: str,
        *,
        limit: int | None,
        remaining: int,
        reset_in: float,
        window: float | None,
        ticket: int,
    ) -> None:
        # (Called for every response that announces a budget: written without helper
        # calls or min/max, each a function call on the success path.)
        now = self._now()
        quota = self._quotas.get(key)
        if quota is None:
            if len(self._quotas) >= self._room:
                self._sweep()
            quota = self._quotas[key] = _Quota()
        elif now >= quota.reset_at:
            quota.roll(now)
        reset_at = now + reset_in
        if limit is not None:
            quota.limit = limit
        elif remaining >= quota.seen:
            quota.seen = remaining + 1 if remaining else 0
        if window is not None:
            quota.window = window
        elif quota.window is None or reset_in > quota.window:
            quota.window = reset_in  # the longest reset seen: about one window
        span = quota.window
        tolerance = (0.5 * span if span < 2.0 else 1.0) if span else 1.0
        known = quota.remaining
        if known is not None:
            if reset_at < quota.reset_at - tolerance:
                return  # about a window that is over (a slow response): stale
            if quota.provisional:
                pass  # the server's count replaces the estimate released at the reset
            elif reset_at <= quota.reset_at + tolerance:
                # The same window: the budget only goes down, and of two estimates of
                # its end, the later one is safe (it includes the network's delay).
                # Unless nothing was taken since this request: then the server's count
                # is the whole story, also when it counted fewer calls than we did
                # (GitHub's 304s are free), else "remaining 3" ends in a wait.
                if remaining < known or 0 < ticket == quota.taken:
                    quota.remaining = remaining
                if reset_at > quota.reset_at:
                    quota.reset_at = reset_at
                return
        # A new window (or the first announcement): the server's count, less the takes
        # made after this request's, which it may not have seen yet.
        quota.remaining = max(0, remaining - max(0, quota.taken - ticket))
        quota.reset_at = reset_at
        quota.provisional = False

    def untake_quota_sync(self, key: str) -> None:
        quota = self._quotas.get(key)
        if quota is None or quota.remaining is None:
            return
        quota.roll(self._now())
        cap = quota.limit if quota.limit is not None else quota.seen or None
        if quota.remaining is not None and (cap is None or quota.remaining < cap):
            quota.remaining += 1

    def pause_quota_sync(self, key: str, *, seconds: float) -> None:
        now = self._now()
        quota = self._quota(key)
        quota.roll(now)
        until = now + seconds
        if quota.remaining == 0 and quota.reset_at >= until:
            return
        quota.remaining = 0
        quota.reset_at = until

    # -- concurrency slots ---------------------------------------------------------

    def acquire_slot_sync(self, key: str, *, limit: int) -> int | None:
        held = self._slots.get(key)
        if held is None:
            if len(self._slots) >= self._room:
                self._sweep()
            held = self._slots[key] = set()
        if len(held) >= limit:
            return None
        self._leases += 1
        held.add(self._leases)
        return self._leases

    def release_slot_sync(self, key: str, lease: int) -> None:
        held = self._slots.get(key)
        if held is not None:
            held.discard(lease)

    def slots_in_use(self, key: str) -> int:
        """How many slots of ``key`` are held (for tests and introspection)."""
        return len(self._slots.get(key, ()))

    # -- circuit breaker -----------------------------------------------------------

    def _breaker(self, key: str, window: float) -> _Breaker:
        breaker = self._breakers.get(key)
        if breaker is None:
            if len(self._breakers) >= self._room:
                self._sweep()
            breaker = self._breakers[key] = _Breaker(window)
        return breaker

    def breaker_acquire_sync(self, key: str, *, open_for: float) -> tuple[str, float]:
        breaker = self._breakers.get(key)
        if breaker is None or breaker.state == "closed":
            return "closed", 0.0
        now = self._now()
        reopens = breaker.opened_at + open_for
        if breaker.probe_out or now < reopens:
            return "open", max(reopens - now, 0.0) if not breaker.probe_out else open_for
        breaker.probe_out = True
        breaker.state = "half-open"
        return "probe", 0.0

    def breaker_record_sync(
        self,
        key: str,
        *,
        outcome: str,
        probe: bool,
        failure_ratio: float,
        min_calls: int,
        window: float,
        open_for: float,
    ) -> str:
        now = self._now()
        breaker = self._breakers.get(key)
        if breaker is None:
            if len(self._breakers) >= self._room:
                self._sweep()
            breaker = self._breakers[key] = _Breaker(window)
        if probe:
            breaker.probe_out = False
            if outcome == "success":
                breaker.state = "closed"
                breaker.counts.clear()
            elif outcome == "failure":
                breaker.state = "open"
                breaker.opened_at = now
            else:  # abandoned: the next attempt after open_for probes again
                breaker.state = "open"
            return breaker.state
        if outcome == "abandoned" or breaker.state != "closed":
            return breaker.state  # an attempt let through before the breaker opened
        # fields: 0 successes, 1 failures
        successes, failures = breaker.counts.add(now, 1 if outcome == "failure" else 0)
        calls = successes + failures
        # failures / calls, as the rule reads: ``failures >= ratio * calls`` is not the
        # same in floating point (7 >= 0.07 * 100 is false: 7.000000000000001).
        if calls >= min_calls and failures / calls >= failure_ratio:
            breaker.state = "open"
            breaker.opened_at = now
            breaker.counts.clear()
        return breaker.state

    # -- retry budget --------------------------------------------------------------

    def _budget(self, key: str, window: float) -> _SlidingCounts:
        counts = self._budgets.get(key)
        if counts is None:
            counts = self._budgets[key] = _SlidingCounts(window, 2)
        return counts

    def budget_deposit_sync(self, key: str, *, window: float) -> None:
        self._budget(key, window).add(self._now(), 0)

    def budget_withdraw_sync(
        self, key: str, *, ratio: float, min_per_second: float, window: float
    ) -> bool:
        now = self._now()
        counts = self._budget(key, window)
        calls, retries = counts.totals(now)
        # The floor: min_per_second for each second the window covers, counted in whole
        # slices from the oldest one holding a count (at least the current one), rounded
        # up: a positive floor allows a retry at once, and a new or long-idle budget does
        # not start with a whole window's worth.
        current = int(now // counts.slice)
        oldest = counts.starts[0] if counts.starts else current
        floor = math.ceil(min_per_second * ((current - oldest + 1) * counts.slice) - 1e-9)
        if retries + 1 > max(ratio * calls, floor) + 1e-9:
            return False
        counts.add(now, 1)
        return True

    # -- the StateStore protocol: the operations above, as coroutines ----------------
    # (The parts call the ``*_sync`` twins of a MemoryStateStore directly: they never
    # suspend, so a coroutine around them would only cost time.)

    async def take_tokens(
        self, key: str, *, rate: float, burst: float, max_wait: float
    ) -> tuple[bool, float]:
        return self.take_tokens_sync(key, rate=rate, burst=burst, max_wait=max_wait)

    async def untake_tokens(self, key: str, *, rate: float, burst: float) -> None:
        self.untake_tokens_sync(key, rate=rate, burst=burst)

    async def take_quota(self, key: str) -> tuple[bool, float, int]:
        return self.take_quota_sync(key)

    async def untake_quota(self, key: str) -> None:
        self.untake_quota_sync(key)

    async def announce_quota(
        self,
        key: str,
        *,
        limit: int | None,
        remaining: int,
        reset_in: float,
        window: float | None,
        ticket: int,
    ) -> None:
        self.announce_quota_sync(
            key, limit=limit, remaining=remaining, reset_in=reset_in, window=window, ticket=ticket
        )

    async def pause_quota(self, key: str, *, seconds: float) -> None:
        self.pause_quota_sync(key, seconds=seconds)

    async def acquire_slot(self, key: str, *, limit: int) -> int | None:
        return self.acquire_slot_sync(key, limit=limit)

    async def release_slot(self, key: str, lease: int) -> None:
        self.release_slot_sync(key, lease)

    async def breaker_acquire(self, key: str, *, open_for: float) -> tuple[str, float]:
        return self.breaker_acquire_sync(key, open_for=open_for)

    async def breaker_record(
        self,
        key: str,
        *,
        outcome: str,
        probe: bool,
        failure_ratio: float,
        min_calls: int,
        window: float,
        open_for: float,
    ) -> str:
        return self.breaker_record_sync(
            key,
            outcome=outcome,
            probe=probe,
            failure_ratio=failure_ratio,
            min_calls=min_calls,
            window=window,
            open_for=open_for,
        )

    async def budget_deposit(self, key: str, *, window: float) -> None:
        self.budget_deposit_sync(key, window=window)

    async def budget_withdraw(
        self, key: str, *, ratio: float, min_per_second: float, window: float
    ) -> bool:
        return self.budget_withdraw_sync(
            key, ratio=ratio, min_per_second=min_per_second, window=window
        )

    def __repr__(self) -> str:
        return "MemoryStateStore()"


# The protocol's reference is this module's docstring: show it as the class's too.
StateStore.__doc__ = __doc__
