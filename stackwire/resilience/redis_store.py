"""`RedisStateStore`: the resilience parts' state in Redis, shared by every process.

What it does: implements the `StateStore` protocol (`stackwire.resilience._store`)
over ``redis.asyncio`` (redis-py, the extra ``stackwire[redis]``). Each operation is an
atomic Lua function (`stackwire.resilience._redis_scripts`), timed on the server's
``TIME``, so hosts with skewed clocks agree; a round trip is one ``EVALSHA`` of the
batch script, which runs every operation the trip carries, in order (sent in full with
``EVAL`` once when the server does not know it yet: a new or restarted server). Keys
are ``<prefix>{<part>:<settings>:<origin>}:<kind>``: one hash tag per part and origin,
so every key of one operation is in one slot of a Redis Cluster; every key written
expires a little after the longest duration that matters to it.

A shared `ConcurrencyLimit` counts attempts in flight in every process; each slot is
a lease that expires ``lease`` seconds after it was taken (or last renewed: a store
renews the leases it holds that are older than ``lease / 2`` whenever it takes or gives
back a slot of the same limit), so a process that dies does not hold its slots for
ever. Keep ``lease`` longer than an attempt may take to get its response headers.

Faults: an operation that fails, or does not answer within ``timeout`` seconds, counts
as Redis unreachable. With ``on_error="local"`` (the default) the operation is done on
a per-process `MemoryStateStore` instead: calls go on, limited per process; one
WARNING on the ``"stackwire"`` logger when an outage starts (none while it lasts, one
INFO when Redis answers again). During an outage Redis is tried again at the first
operation at least 1 s after the last failure, so a dead Redis costs one ``timeout``
a second, not one per call. With ``on_error="raise"`` an operation that decides whether
an attempt may go raises `StateStoreError` (never retried: the API was not contacted);
one that records what happened after an attempt was sent (giving a slot back, a
breaker outcome, an announced budget) never raises: the call's response is never lost
because of the store, and no call is sent twice because of it.

Round trips: a successful call makes one, whatever parts share the store (measured:
7 before, for `CircuitBreaker` + `RateLimit` + `ConcurrencyLimit` + `RetryBudget`):

- what an attempt records and nothing waits for (a success outside a probe, a slot
  given back, an announced budget, a budget deposit: the parts call the ``*_later``
  methods) is deferred: sent first in this loop's next round trip, or on its own
  2 ms after it was deferred (or once 64 wait), and at `aclose` (or when the loop
  ends); a failure, a 429's pause, a probe's outcome are sent at once, as before;
- the checks of one attempt (the breaker, the bucket, the announced budget, a slot)
  are made by parts that run one after the other: the store learns which check the
  same task asks next, and once it has seen the same order twice, asking the first
  check runs the next ones in the same trip (each only while all before it said "go
  now", a breaker only while closed: a guess never takes a probe). The next part
  gets its answer without a trip if it asks the same within 5 ms; what nobody
  claims is given back (a deferred write). So a breaker opened elsewhere is still
  seen within the call's one trip, and a wrong guess costs a trip, never a decision;
- the operations that the tasks of one loop start while a round trip is out are sent
  together in the next one, so 256 calls in flight cost a few round trips, not a
  queue of 256.

With a ``RedisCluster`` client nothing is combined (each operation goes to the node
of its hash tag; the deferred writes are sent in the background, nobody waiting).

The event loop: a redis.asyncio client belongs to the loop it connects on. Given a
URL, the store opens its connection lazily, on the loop that first uses it (one per
loop, so one store also serves the blocking `Client`, whose calls run on its own loop
thread); ``await store.aclose()`` closes it. A client passed in must belong to the
loop of the clients that use the store, and is never closed by the store.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import sys
import time
import weakref
from collections.abc import AsyncGenerator, Callable, Sequence
from typing import TYPE_CHECKING, Any, Literal, cast

from ..errors import InvalidRequestError, StateStoreError
from ._common import check_number
from ._redis_scripts import BATCH, SCRIPTS, UNTAKE_QUOTA, UNTAKE_TOKENS, Script
from ._store import MemoryStateStore

if TYPE_CHECKING:
    from redis.asyncio import Redis
    from redis.asyncio.cluster import RedisCluster

__all__ = ["RedisStateStore"]

_logger = logging.getLogger("stackwire")

_RETRY_AFTER = 1.0  # seconds between tries of a Redis that failed
_FOREIGN_TICKET = 2**53  # a ticket from the other store: nothing to subtract
_INFINITE = 1e300  # what Lua gets for an infinite max_wait
_CONNECTIONS = 4  # per event loop, for a store made from a URL (the batcher uses one)
_FLUSH_AFTER = 0.002  # a deferred write waits at most this long for a round trip to join
_FLUSH_AT = 64  # ... or until this many are waiting
_FRESH = 0.005  # a guessed check's answer is good for this long, then given back
_GUESSES = 4  # at most this many checks guessed after one asked for
_LEARNED = 512  # successions remembered (then forgotten all at once, and learned again)

# Checks whose answer holds something until given back (or until its lease ends).
_HOLDING = frozenset({"acquire_slot", "breaker_acquire"})
# A check the store may guess: (operation, key, *its arguments).
Check = tuple[Any, ...]
_UNCLAIMED = object()  # no guessed answer for a check


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class RedisStateStore:
    """A `StateStore` in Redis, shared by every process that uses the same Redis and
    ``prefix``; see the module docstring.

    ``redis`` is a ``redis.asyncio.Redis`` (or ``RedisCluster``) client or a URL such
    as ``"redis://localhost:6379/0"``. ``prefix`` starts every key; ``on_error`` is
    ``"local"`` (fall back to per-process state) or ``"raise"`` (`StateStoreError`);
    ``timeout`` is the seconds an operation may take before Redis counts as
    unreachable; ``lease`` the seconds a concurrency slot stays held if its holder dies.

    >>> store = RedisStateStore("redis://localhost:6379/0", prefix="myapp:")
    >>> store
    RedisStateStore('redis://localhost:6379/0', prefix='myapp:', on_error='local', timeout=0.25)
    """

    def __init__(
        self,
        redis: Redis | RedisCluster | str,
        *,
        prefix: str = "stackwire:",
        on_error: Literal["local", "raise"] = "local",
        timeout: float = 0.25,
        lease: float = 60.0,
    ) -> None:
        _import_redis()  # fails here, with the extra to install, when redis-py is missing
        if isinstance(redis, str):
            if not redis.startswith(("redis://", "rediss://", "unix://")):
                raise InvalidRequestError(
                    f"redis must be a redis.asyncio client or a redis://, rediss:// or "
                    f"unix:// URL, got {redis!r}"
                )
            self._url: str | None = redis
            self._given: Redis | None = None
        elif _is_blocking(redis):
            raise InvalidRequestError(
                f"redis must be a redis.asyncio client (redis.asyncio.Redis or "
                f"redis.asyncio.RedisCluster), not the blocking {type(redis).__name__} of "
                "redis-py, or a URL"
            )
        elif callable(getattr(redis, "evalsha", None)):
            self._url = None
            # (a RedisCluster has the methods the store calls: typed as a Redis here)
            self._given = cast("Redis", redis)
        else:
            raise InvalidRequestError(
                f"redis must be a redis.asyncio client or a URL, got {redis!r}"
            )
        if not isinstance(prefix, str):
            raise InvalidRequestError(f"prefix must be a str, got {prefix!r}")
        if on_error not in ("local", "raise"):
            raise InvalidRequestError(f'on_error must be "local" or "raise", got {on_error!r}')
        self.prefix = prefix
        self.on_error = on_error
        self.timeout: float = check_number("timeout", timeout)  # type: ignore[assignment]
        self.lease: float = check_number("lease", lease)  # type: ignore[assignment]
        self._clients: dict[asyncio.AbstractEventLoop, tuple[Redis, AsyncGenerator[None]]] = {}
        self._batchers: dict[asyncio.AbstractEventLoop, _Batcher] = {}
        self._local: MemoryStateStore | None = None
        self._failed_at: float | None = None  # monotonic time of the last failure
        # That failure: the cause of the StateStoreErrors raised until Redis is tried again.
        self._last_failure: BaseException | None = None
        self._outage_since = 0.0
        # Leases this store holds, per slots key: lease -> when taken or last renewed.
        self._held: dict[str, dict[int, float]] = {}
        # Which check followed which in one attempt (see _Batcher.ask): check -> [the
        # next, seen twice in a row]. Shared by the loops: it is about the stacks.
        self._follows: dict[Check, list[Any]] = {}
        self._background: set[asyncio.Task[Any]] = set()  # deferred writes (cluster), lost checks
        self._flush_after = _FLUSH_AFTER  # (the tests lengthen them, to count trips)
        self._fresh = _FRESH

    # -- the connection ----------------------------------------------------------------

    async def _client(self) -> Redis:
        if self._given is not None:
            return self._given
        loop = asyncio.get_running_loop()
        opened = self._clients.get(loop)
        if opened is not None:
            return opened[0]
        from redis.asyncio import BlockingConnectionPool, Redis  # the extra, when used
        from redis.asyncio.retry import Retry
        from redis.backoff import NoBackoff

        assert self._url is not None
        # A few connections, shared by every task of this loop (waiting for a free one
        # counts in the timeout): a burst of calls opening one connection each would
        # cost more than the round trips it saves. No retries inside redis-py: the
        # store has its own timeout and fallback, and a script run twice counts twice.
        pool = BlockingConnectionPool.from_url(
            self._url,
            max_connections=_CONNECTIONS,
            timeout=None,
            retry=Retry(NoBackoff(), 0),
            socket_connect_timeout=self.timeout,
            # a pipeline stuck on a server that stopped answering gives up in the end
            socket_timeout=max(1.0, 4 * self.timeout),
        )
        client = Redis.from_pool(pool)  # closing the client closes its pool
        for old in [old for old in self._clients if old.is_closed()]:
            del self._clients[old]
        keeper = _close_when_loop_ends(client, self._drain)
        await keeper.__anext__()
        self._clients[loop] = (client, keeper)
        return client

    async def aclose(self) -> None:
        """Close the connections the store opened from a URL (on every loop that used
        it); a client passed in is left open: it is yours. Without it, a connection is
        closed when its loop shuts down (the end of `asyncio.run`, the blocking
        `Client`'s ``close()``)."""
        loop = asyncio.get_running_loop()
        mine = [task for task in self._background if task.get_loop() is loop]
        if mine:  # (the checks whose callers went: what they took goes back first)
            await asyncio.wait(mine, timeout=self.timeout)
        await self._drain()
        if self._background:
            await asyncio.wait(self._background, timeout=self.timeout)
        opened, self._clients = self._clients, {}
        for other, (_client, keeper) in opened.items():
            if other is loop:
                await keeper.aclose()
            elif other.is_running():  # the loop thread of a blocking Client
                done = asyncio.run_coroutine_threadsafe(keeper.aclose(), other)
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(asyncio.wrap_future(done), 5.0)

    async def _drain(self) -> None:
        """Send this loop's deferred writes (and let the round trip out finish), then
        stop its batcher."""
        batcher = self._batchers.pop(asyncio.get_running_loop(), None)
        if batcher is not None:
            await batcher.aclose(self.timeout)

    # -- one round trip, and what happens when it fails --------------------------------

    async def _run(
        self, script: Script, keys: Sequence[str], args: Sequence[Any], check: Check | None
    ) -> Any:
        async with asyncio.timeout(self.timeout):
            client = await self._client()
            batcher = self._batcher(client)
            if batcher is not None:
                return await batcher.ask(script, keys, args, check)
            return (await _trip(client, [(script.name, "d", keys, args)]))[0][0]

    def _batcher(self, client: Redis) -> _Batcher | None:
        """The batcher of ``client``'s loop (``None`` for a cluster client: each
        operation is sent on its own, to the node of its hash tag)."""
        loop = asyncio.get_running_loop()
        batcher = self._batchers.get(loop)
        if batcher is None or batcher.client is not client:
            if _is_cluster(client):
                return None
            for old in [old for old in self._batchers if old.is_closed()]:
                del self._batchers[old]
            batcher = self._batchers[loop] = _Batcher(self, client, loop)
        return batcher

    def _reachable(self) -> bool:
        """``False`` while Redis failed less than a second ago (then use local state)."""
        failed = self._failed_at
        return failed is None or time.monotonic() - failed >= _RETRY_AFTER

    def _answered(self) -> None:
        if self._failed_at is not None:
            self._failed_at = None
            self._last_failure = None
            _logger.info(
                "Redis state store %s answers again after %.1f s: shared limits resumed.",
                self._where(),
                time.monotonic() - self._outage_since,
            )

    def _failed(self, exc: BaseException) -> None:
        now = time.monotonic()
        if self._failed_at is None:
            self._outage_since = now
            then = (
                "using per-process limits until it answers"
                if self.on_error == "local"
                else "calls that need it raise StateStoreError until it answers"
            )
            _logger.warning(
                "Redis state store %s unreachable (%s); %s (tried again at most once a second).",
                self._where(),
                _describe(exc),
                then,
            )
        self._failed_at = now
        self._last_failure = exc

    def _refuse(self, exc: BaseException | None) -> StateStoreError:
        why = _describe(exc) if exc is not None else "it failed less than 1 s ago"
        return StateStoreError(
            f"Redis state store {self._where()} unreachable ({why}); the attempt was not "
            'sent (on_error="raise"; on_error="local" would go on with per-process state).'
        )

    async def _shared(
        self,
        script: Script,
        keys: Sequence[str],
        args: Sequence[Any],
        *,
        decides: bool,
        check: Check | None = None,
    ) -> Any:
        """The script's reply, or ``None`` when local state must be used instead.

        ``decides``: the operation decides whether an attempt goes (with
        ``on_error="raise"`` its failure raises); else it records what happened.
        ``check``: the operation is a check the store may guess (`_Batcher.ask`).
        """
        if not self._reachable():
            if decides and self.on_error == "raise":
                # (The failure that made Redis count as unreachable, as its cause.)
                raise self._refuse(None) from self._last_failure
            return None
        if check is not None:  # answered along with the check before it?
            batcher = self._batchers.get(asyncio.get_running_loop())
            if batcher is not None:
                claimed = batcher.claim(check)
                if claimed is not _UNCLAIMED:
                    return claimed
        try:
            reply = await self._run(script, keys, args, check)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # unreachable, slow (TimeoutError) or refusing
            self._failed(exc)
            if decides and self.on_error == "raise":
                raise self._refuse(exc) from exc
            return None
        self._answered()
        return reply

    def local(self) -> MemoryStateStore:
        """The per-process store used while Redis is unreachable."""
        store = self._local
        if store is None:
            store = self._local = MemoryStateStore()
        return store

    def _key(self, key: str, kind: str) -> str:
        return f"{self.prefix}{{{key}}}:{kind}"

    def _defer(
        self,
        script: Script,
        keys: Sequence[str],
        args: Sequence[Any],
        fallback: Callable[[], object] | None,
    ) -> None:
        """A write that decides nothing for the attempt at hand: sent with the next
        round trip of this loop, or by itself within ``_flush_after`` seconds (or at
        `aclose`). ``fallback`` does it on the local store when Redis fails."""
        if not self._reachable():
            if fallback is not None:
                fallback()
            return
        loop = asyncio.get_running_loop()
        batcher = self._batchers.get(loop)
        if batcher is None:
            opened = self._clients.get(loop)
            client = opened[0] if opened is not None else self._given
            if client is not None:
                batcher = self._batcher(client)
        if batcher is not None:
            batcher.defer(script.name, keys, args, fallback)
            return
        # No batcher (a cluster client, or no connection yet on this loop): on its own,
        # in the background (the caller does not wait for it).
        task = loop.create_task(self._write(script, keys, args, fallback))
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _write(
        self,
        script: Script,
        keys: Sequence[str],
        args: Sequence[Any],
        fallback: Callable[[], object] | None,
    ) -> None:
        if await self._shared(script, keys, args, decides=False) is None and fallback:
            fallback()

    def _guess(self, check: Check) -> tuple[Script, tuple[str, ...], tuple[Any, ...]]:
        """The script, keys and arguments of a check guessed to come next."""
        kind, key = check[0], check[1]
        if kind == "take_tokens":
            return SCRIPTS[kind], (self._key(key, "bucket"),), _token_args(*check[2:])
        if kind == "take_quota":
            return SCRIPTS[kind], (self._key(key, "quota"),), ()
        if kind == "acquire_slot":
            slots = self._key(key, "slots")
            args = (str(check[2]), repr(self.lease))  # (renewals only when asked for)
            return SCRIPTS[kind], (slots, self._key(key, "leases")), args
        return SCRIPTS[kind], (self._key(key, "breaker"),), _breaker_args(check[2], self.lease)

    def _undo(self, check: Check, reply: Any) -> tuple[str, tuple[str, ...], tuple[Any, ...]]:
        """The write that gives back what a check took, nobody having claimed it (a
        guess, or the answer of a caller cancelled or timed out meanwhile), or
        ``("", (), ())`` when it took nothing."""
        kind, key = check[0], check[1]
        if kind == "take_tokens" and int(reply[0]):
            return "untake_tokens", (self._key(key, "bucket"),), _token_args(*check[2:])[:2]
        if kind == "take_quota" and int(reply[0]):
            return "untake_quota", (self._key(key, "quota"),), ()
        if kind == "acquire_slot" and int(reply):
            return "release_slot", (self._key(key, "slots"),), (str(reply), repr(self.lease))
        if kind == "breaker_acquire" and _text(reply[0]) == "probe":  # (never a guess)
            open_for = repr(float(check[2]))
            args = ("abandoned", "1", "1.0", "1", open_for, open_for, repr(self.lease))
            return "breaker_record", (self._key(key, "breaker"),), args
        # a refusal took nothing, nor does a breaker's "closed"
        return "", (), ()

    # -- token bucket ------------------------------------------------------------------

    async def take_tokens(
        self, key: str, *, rate: float, burst: float, max_wait: float
    ) -> tuple[bool, float]:
        reply = await self._shared(
            SCRIPTS["take_tokens"],
            (self._key(key, "bucket"),),
            _token_args(rate, burst, max_wait),
            decides=True,
            check=("take_tokens", key, rate, burst, max_wait),
        )
        if reply is None:
            return self.local().take_tokens_sync(key, rate=rate, burst=burst, max_wait=max_wait)
        return bool(int(reply[0])), float(_text(reply[1]))

    async def untake_tokens(self, key: str, *, rate: float, burst: float) -> None:
        """A token back, for a caller that went away while it waited: deferred (sent
        with this loop's next round trip), so a cancellation never waits for Redis."""
        self._defer(
            UNTAKE_TOKENS,
            (self._key(key, "bucket"),),
            _token_args(rate, burst, 0.0)[:2],
            lambda: self.local().untake_tokens_sync(key, rate=rate, burst=burst),
        )

    # -- server quota --------------------------------------------------------------------
    # Tickets from Redis are positive, those from the local store negative: an
    # announcement carrying a ticket of the other store subtracts nothing.

    async def take_quota(self, key: str) -> tuple[bool, float, int]:
        reply = await self._shared(
            SCRIPTS["take_quota"],
            (self._key(key, "quota"),),
            (),
            decides=True,
            check=("take_quota", key),
        )
        if reply is None:
            granted, wait, ticket = self.local().take_quota_sync(key)
            return granted, wait, -ticket
        return bool(int(reply[0])), float(_text(reply[1])), int(reply[2])

    async def untake_quota(self, key: str) -> None:
        """A unit of the announced budget back, for a take whose request was not sent:
        deferred (sent with this loop's next round trip)."""
        self._defer(
            UNTAKE_QUOTA,
            (self._key(key, "quota"),),
            (),
            lambda: self.local().untake_quota_sync(key),
        )

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
        args = _announce_args(limit, remaining, reset_in, window, ticket)
        reply = await self._shared(
            SCRIPTS["announce_quota"], (self._key(key, "quota"),), args, decides=False
        )
        if reply is None:
            self._announce_locally(key, limit, remaining, reset_in, window, ticket)

    def announce_quota_later(
        self,
        key: str,
        *,
        limit: int | None,
        remaining: int,
        reset_in: float,
        window: float | None,
        ticket: int,
    ) -> None:
        """`announce_quota`, deferred: sent with this loop's next round trip, or by
        itself within a few milliseconds; nobody waits for it."""
        self._defer(
            SCRIPTS["announce_quota"],
            (self._key(key, "quota"),),
            _announce_args(limit, remaining, reset_in, window, ticket),
            lambda: self._announce_locally(key, limit, remaining, reset_in, window, ticket),
        )

    def _announce_locally(
        self,
        key: str,
        limit: int | None,
        remaining: int,
        reset_in: float,
        window: float | None,
        ticket: int,
    ) -> None:
        self.local().announce_quota_sync(
            key,
            limit=limit,
            remaining=remaining,
            reset_in=reset_in,
            window=window,
            ticket=-ticket if ticket < 0 else _FOREIGN_TICKET,
        )

    async def pause_quota(self, key: str, *, seconds: float) -> None:
        reply = await self._shared(
            SCRIPTS["pause_quota"],
            (self._key(key, "quota"),),
            (repr(float(seconds)),),
            decides=False,
        )
        if reply is None:
            self.local().pause_quota_sync(key, seconds=seconds)

    # -- concurrency slots -------------------------------------------------------------
    # Leases from Redis are positive, those from the local store negative: each is
    # given back to the store that lent it.

    def _due(self, slots: str) -> list[int]:
        """The leases held here on ``slots`` that are due for renewal (now renewed)."""
        held = self._held.get(slots)
        if not held:
            return []
        now = time.monotonic()
        due = [lease for lease, since in held.items() if now - since >= self.lease / 2]
        for lease in due:
            held[lease] = now
        return due

    async def acquire_slot(self, key: str, *, limit: int) -> int | None:
        slots = self._key(key, "slots")
        reply = await self._shared(
            SCRIPTS["acquire_slot"],
            (slots, self._key(key, "leases")),
            (str(limit), repr(self.lease), *self._due(slots)),
            decides=True,
            check=("acquire_slot", key, limit),
        )
        if reply is None:
            lease = self.local().acquire_slot_sync(key, limit=limit)
            return None if lease is None else -lease
        lease = int(reply)
        if lease == 0:
            return None
        self._held.setdefault(slots, {})[lease] = time.monotonic()
        return lease

    async def release_slot(self, key: str, lease: int) -> None:
        if lease < 0:
            self.local().release_slot_sync(key, -lease)
            return
        slots = self._key(key, "slots")
        # Not given back when Redis is unreachable: the lease expires.
        await self._shared(
            SCRIPTS["release_slot"], (slots,), self._release(slots, lease), decides=False
        )

    def release_slot_later(self, key: str, lease: int) -> None:
        """`release_slot`, deferred: sent with this loop's next round trip (before
        the operations of that trip, so a slot taken there may be this one), or by
        itself within a few milliseconds; nobody waits for it."""
        if lease < 0:
            self.local().release_slot_sync(key, -lease)
            return
        slots = self._key(key, "slots")
        self._defer(SCRIPTS["release_slot"], (slots,), self._release(slots, lease), None)

    def _release(self, slots: str, lease: int) -> tuple[str, ...]:
        held = self._held.get(slots)
        if held is not None:
            held.pop(lease, None)
            if not held:
                del self._held[slots]
        return (str(lease), *map(str, self._due(slots)), repr(self.lease))

    # -- circuit breaker ---------------------------------------------------------------

    async def breaker_acquire(self, key: str, *, open_for: float) -> tuple[str, float]:
        reply = await self._shared(
            SCRIPTS["breaker_acquire"],
            (self._key(key, "breaker"),),
            _breaker_args(open_for, self.lease),
            decides=True,
            check=("breaker_acquire", key, open_for),
        )
        if reply is None:
            return self.local().breaker_acquire_sync(key, open_for=open_for)
        return _text(reply[0]), float(_text(reply[1]))

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
        args = (
            outcome,
            "1" if probe else "0",
            repr(float(failure_ratio)),
            str(min_calls),
            repr(float(window)),
            repr(float(open_for)),
            repr(self.lease),
        )
        reply = await self._shared(
            SCRIPTS["breaker_record"], (self._key(key, "breaker"),), args, decides=False
        )
        if reply is None:
            return self.local().breaker_record_sync(
                key,
                outcome=outcome,
                probe=probe,
                failure_ratio=failure_ratio,
                min_calls=min_calls,
                window=window,
                open_for=open_for,
            )
        return _text(reply)

    def breaker_record_later(
        self,
        key: str,
        *,
        outcome: str,
        probe: bool,
        failure_ratio: float,
        min_calls: int,
        window: float,
        open_for: float,
    ) -> None:
        """`breaker_record`, deferred (for an outcome that cannot move the breaker:
        a success outside a probe): sent with this loop's next round trip, or by
        itself within a few milliseconds; nobody waits for it."""
        args = (
            outcome,
            "1" if probe else "0",
            repr(float(failure_ratio)),
            str(min_calls),
            repr(float(window)),
            repr(float(open_for)),
            repr(self.lease),
        )
        self._defer(
            SCRIPTS["breaker_record"],
            (self._key(key, "breaker"),),
            args,
            lambda: self.local().breaker_record_sync(
                key,
                outcome=outcome,
                probe=probe,
                failure_ratio=failure_ratio,
                min_calls=min_calls,
                window=window,
                open_for=open_for,
            ),
        )

    # -- retry budget ------------------------------------------------------------------

    async def budget_deposit(self, key: str, *, window: float) -> None:
        reply = await self._shared(
            SCRIPTS["budget_deposit"],
            (self._key(key, "budget"),),
            (repr(float(window)),),
            decides=False,  # a count of calls: it decides nothing, so it never raises
        )
        if reply is None:
            self.local().budget_deposit_sync(key, window=window)

    def budget_deposit_later(self, key: str, *, window: float) -> None:
        """`budget_deposit`, deferred: sent with this loop's next round trip, or by
        itself within a few milliseconds; nobody waits for it."""
        self._defer(
            SCRIPTS["budget_deposit"],
            (self._key(key, "budget"),),
            (repr(float(window)),),
            lambda: self.local().budget_deposit_sync(key, window=window),
        )

    async def budget_withdraw(
        self, key: str, *, ratio: float, min_per_second: float, window: float
    ) -> bool:
        reply = await self._shared(
            SCRIPTS["budget_withdraw"],
            (self._key(key, "budget"),),
            (repr(float(ratio)), repr(float(min_per_second)), repr(float(window))),
            decides=True,
        )
        if reply is None:
            return self.local().budget_withdraw_sync(
                key, ratio=ratio, min_per_second=min_per_second, window=window
            )
        return bool(int(reply))

    # -- introspection -----------------------------------------------------------------

    @property
    def reachable(self) -> bool:
        """``False`` during an outage (between a failure and the next answer)."""
        return self._failed_at is None

    def _where(self) -> str:
        if self._url is not None:
            return _redact(self._url)
        return repr(self._given)

    def __repr__(self) -> str:
        where = repr(_redact(self._url)) if self._url is not None else repr(self._given)
        return (
            f"RedisStateStore({where}, prefix={self.prefix!r}, on_error={self.on_error!r}, "
            f"timeout={self.timeout:g})"
        )


# One step of a round trip: (operation, mode, keys, args); modes as in _redis_scripts:
# "w" a deferred write, "d" a check or write a caller waits for, "g" a guessed check.
Step = tuple[str, str, Sequence[str], Sequence[Any]]


class _Ask:
    """An operation a caller waits for, with the checks guessed to follow it."""

    __slots__ = ("chain", "check", "future", "guesses", "step")

    def __init__(
        self,
        step: Step,
        check: Check | None,
        guesses: list[Check],
        chain: _Chain | None,
        future: asyncio.Future[Any],
    ) -> None:
        self.step = step
        self.check = check
        self.guesses = guesses
        self.chain = chain
        self.future = future


class _Chain:
    """The checks of one task's attempt so far: the last one asked (to learn what
    follows it) and the answers of the guessed ones, not yet claimed."""

    __slots__ = ("arrived", "last", "ready")

    def __init__(self) -> None:
        self.last: Check | None = None
        self.ready: list[tuple[Check, Any]] = []  # in the order they will be asked
        self.arrived = 0.0


class _Batcher:
    """One loop's round trips to Redis: at most one out at a time, each one
    ``EVALSHA`` of the batch script with every step waiting for it, in order:

    - the deferred writes (``*_later``: what an attempt's outcome records, nobody
      waiting for it), sent with the next trip, or by themselves ``_flush_after``
      seconds after the first of them (or at 64 of them, or at `aclose`);
    - then the operations that callers started while the last trip was out (so 256
      calls in flight cost a few round trips, not a queue of 256), each followed by
      the checks guessed to come next in its caller's attempt.

    Guessing: the parts of one stack run one after the other, each waiting for its
    own check (breaker, then rate limit, then slot) before the next part runs. The
    batcher learns, per check, which check the same task asked next in the same
    attempt; once it has seen the same successor twice in a row, asking the first
    check also runs the next ones in the same script (each only while all before it
    said "go now": a refusal, a wait or an open breaker stops it there). Their answers
    wait in the task's chain; when the task asks the same check, with the same
    arguments, within ``_FRESH`` seconds, it gets that answer without a round trip.
    What nobody claims (another path, an error in between, too late) is given back
    (a token, a unit of the announced budget, a slot: deferred writes), so a wrong
    guess costs a round trip, never a decision.
    """

    __slots__ = (
        "alone",
        "chains",
        "client",
        "deferred",
        "fallbacks",
        "loop",
        "pending",
        "store",
        "task",
        "timer",
    )

    def __init__(
        self, store: RedisStateStore, client: Redis, loop: asyncio.AbstractEventLoop
    ) -> None:
        self.store = store
        self.client = client
        self.loop = loop
        self.pending: list[_Ask] = []
        self.deferred: list[Step] = []
        self.fallbacks: list[Callable[[], object] | None] = []
        self.task: asyncio.Task[None] | None = None
        self.timer: asyncio.TimerHandle | None = None
        self.alone = False  # an operation sent on its own, from its caller's task, is out
        self.chains: weakref.WeakKeyDictionary[asyncio.Task[Any], _Chain] = (
            weakref.WeakKeyDictionary()
        )

    def is_closed(self) -> bool:
        return self.loop.is_closed()

    # -- what callers ask ---------------------------------------------------------------

    async def ask(
        self, script: Script, keys: Sequence[str], args: Sequence[Any], check: Check | None
    ) -> Any:
        task = asyncio.current_task()
        chain = self.chains.get(task) if task is not None else None
        if chain is None and task is not None:
            chain = self.chains[task] = _Chain()
        guesses: list[Check] = []
        if chain is not None:
            if check is None:  # not a check: the attempt's checks are over
                self.give_back(chain)
                chain.last = None
            else:
                claimed = self.claim(check)
                if claimed is not _UNCLAIMED:
                    return claimed
                self.give_back(chain)
                self.learn(chain.last, check)
                chain.last = check
                guesses = self.predict(check)
        step: Step = (script.name, "d", keys, args)
        if not guesses and not self.deferred and self.task is None and not self.alone:
            # Nothing to go with it, nothing out: sent at once, from the caller's task
            # (about 80 µs less than through the batcher's task, measured). What
            # starts meanwhile goes in a trip of the batcher's own.
            self.alone = True
            if check is None or check[0] not in _HOLDING:
                try:
                    return (await _trip(self.client, (step,)))[0][0]
                finally:
                    self.alone = False
            # A slot or the probe, lost with a caller cancelled (or timed out) meanwhile,
            # would be held until its lease ends: this trip is shielded, so its answer
            # still arrives and what it took is given back. (The shield's task costs
            # about 84,000 instructions a check, measured with callgrind; a token or a
            # unit of the announced budget is not worth it.)
            trip = self.loop.create_task(_trip(self.client, (step,)))
            try:
                return (await asyncio.shield(trip))[0][0]
            except asyncio.CancelledError:
                self.store._background.add(trip)
                trip.add_done_callback(functools.partial(self.lost, check))
                raise
            finally:
                self.alone = False
        future: asyncio.Future[Any] = self.loop.create_future()
        self.pending.append(_Ask(step, check, guesses, chain, future))
        if self.task is None:
            self.start()
        try:
            return await future
        except asyncio.CancelledError:
            # Answered, but cancelled (or timed out) before the caller resumed: what the
            # check took (a slot, a token, the probe) would be lost with the answer.
            answered = future.done() and not future.cancelled() and not future.exception()
            if check is not None and answered:
                self.undo(check, future.result())
            raise

    def claim(self, check: Check) -> Any:
        """The answer to ``check`` if it was guessed for this task's attempt and is
        still good (else `_UNCLAIMED`)."""
        task = asyncio.current_task()
        chain = self.chains.get(task) if task is not None else None
        if chain is None:
            return _UNCLAIMED
        ready = chain.ready
        if ready and ready[0][0] == check and self.loop.time() - chain.arrived <= self.store._fresh:
            chain.last = check
            return ready.pop(0)[1]
        return _UNCLAIMED

    def lost(self, check: Check, trip: asyncio.Task[list[Any]]) -> None:
        """Give back what a check sent alone took, its caller having gone."""
        self.store._background.discard(trip)
        if not trip.cancelled() and trip.exception() is None:
            self.undo(check, trip.result()[0][0])

    def learn(self, last: Check | None, check: Check) -> None:
        if last is None or last == check:
            return
        follows = self.store._follows
        seen = follows.get(last)
        if seen is not None and seen[0] == check:
            seen[1] = True
            return
        if len(follows) >= _LEARNED:
            follows.clear()
        follows[last] = [check, False]

    def predict(self, check: Check) -> list[Check]:
        follows = self.store._follows
        guesses: list[Check] = []
        current = check
        while len(guesses) < _GUESSES:
            seen = follows.get(current)
            if seen is None or not seen[1] or seen[0] == check or seen[0] in guesses:
                break
            current = seen[0]
            guesses.append(current)
        return guesses

    def give_back(self, chain: _Chain) -> None:
        """Undo the guessed checks of ``chain`` that nobody claimed."""
        ready, chain.ready = chain.ready, []
        for check, reply in ready:
            self.undo(check, reply)

    def undo(self, check: Check, reply: Any) -> None:
        name, keys, args = self.store._undo(check, reply)
        if name:
            self.queue(name, keys, args, None)

    def expire(self, chain: _Chain, arrived: float) -> None:
        if chain.ready and chain.arrived == arrived:
            self.give_back(chain)

    # -- what nobody waits for ----------------------------------------------------------

    def defer(
        self,
        name: str,
        keys: Sequence[str],
        args: Sequence[Any],
        fallback: Callable[[], object] | None,
    ) -> None:
        task = asyncio.current_task()
        chain = self.chains.get(task) if task is not None else None
        if chain is not None:  # a write: the attempt's checks are over
            chain.last = None
            if chain.ready:
                self.give_back(chain)
        self.queue(name, keys, args, fallback)

    def queue(
        self,
        name: str,
        keys: Sequence[str],
        args: Sequence[Any],
        fallback: Callable[[], object] | None,
    ) -> None:
        """Add a deferred write (and see that it is sent in time)."""
        self.deferred.append((name, "w", keys, args))
        self.fallbacks.append(fallback)
        if self.task is not None:
            return  # they go with the next trip
        if len(self.deferred) >= _FLUSH_AT:
            self.start()
        elif self.timer is None:
            self.timer = self.loop.call_later(self.store._flush_after, self.start)

    # -- the round trips ----------------------------------------------------------------

    def start(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        if self.task is None and (self.pending or self.deferred):
            self.task = self.loop.create_task(self._flush())

    async def _flush(self) -> None:
        try:
            while self.pending or self.deferred:
                asks = [ask for ask in self.pending if not ask.future.done()]
                self.pending = []
                writes, self.deferred = self.deferred, []
                fallbacks, self.fallbacks = self.fallbacks, []
                if self.timer is not None:
                    self.timer.cancel()
                    self.timer = None
                await self._send(asks, writes, fallbacks)
        finally:
            self.task = None
            for ask in self.pending:  # stopped (aclose, the loop ending) before their turn
                if not ask.future.done():
                    ask.future.set_exception(ConnectionError("the state store was closed"))
            self.pending = []

    async def _send(
        self,
        asks: list[_Ask],
        writes: list[Step],
        fallbacks: list[Callable[[], object] | None],
    ) -> None:
        steps = list(writes)
        for ask in asks:
            steps.append(ask.step)
            for check in ask.guesses:
                script, keys, args = self.store._guess(check)
                steps.append((script.name, "g", keys, args))
        if not steps:  # every caller of this trip gave up before it went
            return
        try:
            async with asyncio.timeout(self.store.timeout):
                replies = await _trip(self.client, steps)
        except BaseException as exc:
            for ask in asks:
                if not ask.future.done():
                    ask.future.set_exception(
                        exc if isinstance(exc, Exception) else ConnectionError("cancelled")
                    )
            if writes:
                self.store._failed(exc)
            for fallback in fallbacks:
                if fallback is not None:
                    fallback()
            if not isinstance(exc, Exception):
                raise
            return
        if writes:
            self.store._answered()
        index = len(writes)
        now = self.loop.time()
        for ask in asks:
            reply = replies[index][0]
            guessed = replies[index + 1 : index + 1 + len(ask.guesses)]
            index += 1 + len(ask.guesses)
            answers = [
                (check, answer[0])
                for check, answer in zip(ask.guesses, guessed, strict=True)
                if answer
            ]
            if ask.future.done():  # its caller gave up: nobody will claim its answers
                if ask.check is not None:
                    self.undo(ask.check, reply)
                for check, answer in answers:
                    self.undo(check, answer)
                continue
            ask.future.set_result(reply)
            chain = ask.chain
            if answers and chain is not None:
                chain.ready = answers
                chain.arrived = now
                self.loop.call_later(self.store._fresh, self.expire, chain, now)

    async def aclose(self, grace: float) -> None:
        """Send the deferred writes and let the round trip out finish (within
        ``grace`` seconds), then stop."""
        for chain in list(self.chains.values()):
            self.give_back(chain)
        self.start()
        task = self.task
        if task is not None:
            await asyncio.wait((task,), timeout=grace)
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None


async def _trip(client: Redis, steps: Sequence[Step]) -> list[Any]:
    """One round trip: ``steps`` in one call of the batch script; per step ``[reply]``
    if it ran, an empty container if not."""
    keys: list[str] = []
    program = []
    for name, mode, step_keys, step_args in steps:
        keys.extend(step_keys)
        program.append((name, mode, len(step_keys), [str(arg) for arg in step_args]))
    argv = json.dumps(program, separators=(",", ":"))
    try:
        reply = await client.evalsha(BATCH.sha, len(keys), *keys, argv)
    except Exception as exc:
        if not _is_noscript(exc):
            raise
        # A server that has not seen the script (new, restarted, another node): EVAL
        # runs it and caches it, in the same round trip.
        reply = await client.eval(BATCH.source, len(keys), *keys, argv)
    replies: list[Any] = json.loads(reply)
    return replies


def _token_args(rate: float, burst: float, max_wait: float) -> tuple[str, str, str]:
    return repr(rate), repr(burst), repr(min(max_wait, _INFINITE))


def _breaker_args(open_for: float, lease: float) -> tuple[str, str]:
    return repr(float(open_for)), repr(lease)


def _announce_args(
    limit: int | None, remaining: int, reset_in: float, window: float | None, ticket: int
) -> tuple[str, ...]:
    return (
        "" if limit is None else str(limit),
        str(remaining),
        repr(float(reset_in)),
        "" if window is None else repr(float(window)),
        str(ticket if ticket >= 0 else _FOREIGN_TICKET),
    )


async def _close_when_loop_ends(client: Redis, drain: Callable[[], Any]) -> AsyncGenerator[None]:
    """Parked at its ``yield`` until the loop shuts its async generators down
    (``asyncio.run`` and the blocking `Client` do when they end): then it sends the
    loop's deferred writes and closes the connection, on its own loop, where a
    redis.asyncio client must be closed."""
    try:
        yield
    finally:
        # At the loop's shutdown_asyncgens, redis-py's pool starts async generators of
        # its own (its lock) to send the last writes and close: the loop warned that
        # each began too late (a ResourceWarning at every `asyncio.run` end and blocking
        # `Client` close; under -W error it failed the drain, logged as an outage). They
        # run to their end here, so the loop need not track them.
        late = getattr(asyncio.get_running_loop(), "_asyncgens_shutdown_called", False)
        hooks = sys.get_asyncgen_hooks()
        if late:
            sys.set_asyncgen_hooks(firstiter=None, finalizer=None)
        try:
            with contextlib.suppress(Exception):
                await drain()
            await client.aclose()
        finally:
            if late:
                sys.set_asyncgen_hooks(*hooks)


def _import_redis() -> None:
    try:
        import redis.asyncio  # noqa: F401  (the optional extra, imported on first use)
    except ImportError as exc:
        raise ImportError("RedisStateStore needs redis-py: pip install 'stackwire[redis]'") from exc


def _is_noscript(exc: object) -> bool:
    from redis.exceptions import NoScriptError

    return isinstance(exc, NoScriptError)


def _is_blocking(client: object) -> bool:
    import redis  # (the extra, imported by _import_redis already)
    import redis.cluster

    return isinstance(client, (redis.Redis, redis.cluster.RedisCluster))


def _is_cluster(client: object) -> bool:
    from redis.asyncio.cluster import RedisCluster

    return isinstance(client, RedisCluster)


def _describe(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError) and not str(exc):
        return "no answer in time"
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


def _redact(url: str) -> str:
    """The URL without its password (``redis://:secret@host`` -> ``redis://:***@host``)."""
    scheme, sep, rest = url.partition("://")
    credentials, at, host = rest.rpartition("@")
    if not at or not sep:
        return url
    user, colon, _password = credentials.partition(":")
    return f"{scheme}://{user}{':***' if colon else ''}@{host}"
