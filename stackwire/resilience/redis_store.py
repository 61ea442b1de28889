"""`RedisStateStore`: the resilience parts' state in Redis, shared by every process.

What it does: implements the `StateStore` protocol (`stackwire.resilience._store`)
over ``redis.asyncio`` (redis-py, the extra ``stackwire[redis]``). Each operation is one
atomic round trip: a Lua script (`stackwire.resilience._redis_scripts`) called by its
SHA-1 with ``EVALSHA`` (sent in full with ``EVAL`` once when the server does not know
it yet: a new or restarted server), timed on the server's ``TIME``, so hosts with skewed
clocks agree. Keys are ``<prefix>{<part>:<settings>:<origin>}:<kind>``: one hash tag per
part and origin, so every key of one operation is in one slot of a Redis Cluster; every
key written expires a little after the longest duration that matters to it.

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

Round trips: the operations that the tasks of one loop start while a round trip is
out are sent together in the next one (one pipeline of ``EVALSHA`` calls; each stays
atomic on its own), so 256 calls in flight cost a few round trips, not a queue of 256
(not for a ``RedisCluster`` client: there each operation goes to its own node).

The event loop: a redis.asyncio client belongs to the loop it connects on. Given a
URL, the store opens its connection lazily, on the loop that first uses it (one per
loop, so one store also serves the blocking `Client`, whose calls run on its own loop
thread); ``await store.aclose()`` closes it. A client passed in must belong to the
loop of the clients that use the store, and is never closed by the store.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncGenerator, Sequence
from typing import TYPE_CHECKING, Any, Literal

from ..errors import InvalidRequestError, StateStoreError
from ._common import check_number
from ._redis_scripts import SCRIPTS, Script
from ._store import MemoryStateStore

if TYPE_CHECKING:
    from redis.asyncio import Redis

__all__ = ["RedisStateStore"]

_logger = logging.getLogger("stackwire")

_RETRY_AFTER = 1.0  # seconds between tries of a Redis that failed
_FOREIGN_TICKET = 2**53  # a ticket from the other store: nothing to subtract
_INFINITE = 1e300  # what Lua gets for an infinite max_wait
_CONNECTIONS = 4  # per event loop, for a store made from a URL (the pipeline uses one)


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
        redis: Redis | str,
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
        elif callable(getattr(redis, "evalsha", None)):
            self._url = None
            self._given = redis
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
        self._outage_since = 0.0
        # Leases this store holds, per slots key: lease -> when taken or last renewed.
        self._held: dict[str, dict[int, float]] = {}

    # -- the connection ----------------------------------------------------------------

    async def _client(self) -> Redis:
        if self._given is not None:
            return self._given
        loop = asyncio.get_running_loop()
        opened = self._clients.get(loop)
        if opened is not None:
            return opened[0]
        from redis.asyncio import BlockingConnectionPool, Redis  # the extra, when used
        from redis.backoff import NoBackoff
        from redis.retry import Retry

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
        keeper = _close_when_loop_ends(client)
        await keeper.__anext__()
        self._clients[loop] = (client, keeper)
        return client

    async def aclose(self) -> None:
        """Close the connections the store opened from a URL (on every loop that used
        it); a client passed in is left open: it is yours. Without it, a connection is
        closed when its loop shuts down (the end of `asyncio.run`, the blocking
        `Client`'s ``close()``)."""
        loop = asyncio.get_running_loop()
        batcher = self._batchers.pop(loop, None)
        if batcher is not None:
            await batcher.aclose(self.timeout)
        opened, self._clients = self._clients, {}
        for other, (_client, keeper) in opened.items():
            if other is loop:
                await keeper.aclose()
            elif other.is_running():  # the loop thread of a blocking Client
                done = asyncio.run_coroutine_threadsafe(keeper.aclose(), other)
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(asyncio.wrap_future(done), 5.0)

    # -- one round trip, and what happens when it fails --------------------------------

    async def _run(self, script: Script, keys: Sequence[str], args: Sequence[Any]) -> Any:
        client = await self._client()
        async with asyncio.timeout(self.timeout):
            batcher = self._batcher(client)
            if batcher is not None:
                return await batcher.call(script, keys, args)
            return await _evalsha(client, script, keys, args)

    def _batcher(self, client: Redis) -> _Batcher | None:
        """The pipeline of ``client``'s loop (``None`` for a cluster client: each
        operation is sent on its own, to the node of its hash tag)."""
        loop = asyncio.get_running_loop()
        batcher = self._batchers.get(loop)
        if batcher is None or batcher.client is not client:
            if not callable(getattr(client, "pipeline", None)) or _is_cluster(client):
                return None
            for old in [old for old in self._batchers if old.is_closed()]:
                del self._batchers[old]
            batcher = self._batchers[loop] = _Batcher(client)
        return batcher

    def _reachable(self) -> bool:
        """``False`` while Redis failed less than a second ago (then use local state)."""
        failed = self._failed_at
        return failed is None or time.monotonic() - failed >= _RETRY_AFTER

    def _answered(self) -> None:
        if self._failed_at is not None:
            self._failed_at = None
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

    def _refuse(self, exc: BaseException | None) -> StateStoreError:
        why = _describe(exc) if exc is not None else "it failed less than 1 s ago"
        return StateStoreError(
            f"Redis state store {self._where()} unreachable ({why}); the attempt was not "
            'sent (on_error="raise"; on_error="local" would go on with per-process state).'
        )

    async def _shared(
        self, script: Script, keys: Sequence[str], args: Sequence[Any], *, decides: bool
    ) -> Any:
        """The script's reply, or ``None`` when local state must be used instead.

        ``decides``: the operation decides whether an attempt goes (with
        ``on_error="raise"`` its failure raises); else it records what happened.
        """
        if not self._reachable():
            if decides and self.on_error == "raise":
                raise self._refuse(None)
            return None
        try:
            reply = await self._run(script, keys, args)
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

    # -- token bucket ------------------------------------------------------------------

    async def take_tokens(
        self, key: str, *, rate: float, burst: float, max_wait: float
    ) -> tuple[bool, float]:
        reply = await self._shared(
            SCRIPTS["take_tokens"],
            (self._key(key, "bucket"),),
            (repr(rate), repr(burst), repr(min(max_wait, _INFINITE))),
            decides=True,
        )
        if reply is None:
            return self.local().take_tokens_sync(key, rate=rate, burst=burst, max_wait=max_wait)
        return bool(int(reply[0])), float(_text(reply[1]))

    # -- server quota --------------------------------------------------------------------
    # Tickets from Redis are positive, those from the local store negative: an
    # announcement carrying a ticket of the other store subtracts nothing.

    async def take_quota(self, key: str) -> tuple[bool, float, int]:
        reply = await self._shared(
            SCRIPTS["take_quota"], (self._key(key, "quota"),), (), decides=True
        )
        if reply is None:
            granted, wait, ticket = self.local().take_quota_sync(key)
            return granted, wait, -ticket
        return bool(int(reply[0])), float(_text(reply[1])), int(reply[2])

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
        args = (
            "" if limit is None else str(limit),
            str(remaining),
            repr(float(reset_in)),
            "" if window is None else repr(float(window)),
            str(ticket if ticket >= 0 else _FOREIGN_TICKET),
        )
        reply = await self._shared(
            SCRIPTS["announce_quota"], (self._key(key, "quota"),), args, decides=False
        )
        if reply is None:
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
        held = self._held.get(slots)
        if held is not None:
            held.pop(lease, None)
            if not held:
                del self._held[slots]
        # Not given back when Redis is unreachable: the lease expires.
        await self._shared(
            SCRIPTS["release_slot"],
            (slots,),
            (str(lease), *self._due(slots), repr(self.lease)),
            decides=False,
        )

    # -- circuit breaker ---------------------------------------------------------------

    async def breaker_acquire(self, key: str, *, open_for: float) -> tuple[str, float]:
        reply = await self._shared(
            SCRIPTS["breaker_acquire"],
            (self._key(key, "breaker"),),
            (repr(float(open_for)), repr(self.lease)),
            decides=True,
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

    # -- retry budget ------------------------------------------------------------------

    async def budget_deposit(self, key: str, *, window: float) -> None:
        reply = await self._shared(
            SCRIPTS["budget_deposit"],
            (self._key(key, "budget"),),
            (repr(float(window)),),
            decides=True,
        )
        if reply is None:
            self.local().budget_deposit_sync(key, window=window)

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


class _Batcher:
    """Auto-pipelining: the operations that tasks of one loop start while a round
    trip is out go together in the next one (``EVALSHA`` each, one pipeline, one
    write and one read), so 64 calls in flight cost a round trip, not a queue of 64
    (measured: under 64 concurrent callers a round trip took up to 0.5 s on a loaded
    2-core machine with a connection each, and timed out; pipelined, milliseconds).
    A caller that gave up (its timeout) is dropped before its script is sent; one that
    gives up while it is out does not break the pipeline for the others."""

    __slots__ = ("alone", "client", "pending", "task")

    def __init__(self, client: Redis) -> None:
        self.client = client
        self.pending: list[tuple[Script, Sequence[str], Sequence[Any], asyncio.Future[Any]]] = []
        self.task: asyncio.Task[None] | None = None
        self.alone = False  # an operation sent on its own is out

    async def call(self, script: Script, keys: Sequence[str], args: Sequence[Any]) -> Any:
        if self.task is None and not self.alone:
            # Nothing else out: sent at once, without a pipeline (about 130 µs less on
            # a lone call, measured); what starts meanwhile waits for the next trip.
            self.alone = True
            try:
                return await _evalsha(self.client, script, keys, args)
            finally:
                self.alone = False
        return await self.submit(script, keys, args)

    def submit(
        self, script: Script, keys: Sequence[str], args: Sequence[Any]
    ) -> asyncio.Future[Any]:
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self.pending.append((script, keys, args, future))
        if self.task is None:
            self.task = asyncio.get_running_loop().create_task(self._flush())
        return future

    async def _flush(self) -> None:
        try:
            while self.pending:
                batch = [entry for entry in self.pending if not entry[3].done()]
                self.pending = []
                if batch:
                    await self._send(batch)
        finally:
            self.task = None
            _fail(self.pending)  # stopped (aclose, the loop ending) before their turn
            self.pending = []

    async def _send(
        self, batch: list[tuple[Script, Sequence[str], Sequence[Any], asyncio.Future[Any]]]
    ) -> None:
        try:
            pipe = self.client.pipeline(transaction=False)
            for script, keys, args, _ in batch:
                pipe.evalsha(script.sha, len(keys), *keys, *args)
            replies = await pipe.execute(raise_on_error=False)
            unknown = [i for i, reply in enumerate(replies) if _is_noscript(reply)]
            if unknown:  # a new or restarted server: send those in full (EVAL caches)
                pipe = self.client.pipeline(transaction=False)
                for i in unknown:
                    script, keys, args, _ = batch[i]
                    pipe.eval(script.source, len(keys), *keys, *args)
                for i, reply in zip(unknown, await pipe.execute(raise_on_error=False), strict=True):
                    replies[i] = reply
        except asyncio.CancelledError:
            _fail(batch)  # the callers were not cancelled: they fall back, or raise
            raise
        except Exception as exc:
            _fail(batch, exc)
            return
        for (*_, future), reply in zip(batch, replies, strict=True):
            if future.done():
                continue
            if isinstance(reply, Exception):
                future.set_exception(reply)
            else:
                future.set_result(reply)

    async def aclose(self, grace: float) -> None:
        """Let the round trip that is out finish (within ``grace`` seconds), then stop."""
        task = self.task
        if task is not None:
            await asyncio.wait((task,), timeout=grace)
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


def _fail(
    entries: Sequence[tuple[Script, Sequence[str], Sequence[Any], asyncio.Future[Any]]],
    exc: BaseException | None = None,
) -> None:
    for *_, future in entries:
        if not future.done():
            future.set_exception(exc or ConnectionError("the state store was closed"))


async def _evalsha(client: Redis, script: Script, keys: Sequence[str], args: Sequence[Any]) -> Any:
    try:
        return await client.evalsha(script.sha, len(keys), *keys, *args)
    except Exception as exc:
        if not _is_noscript(exc):
            raise
        # A server that has not seen the script (new, restarted, another node): EVAL
        # runs it and caches it, in the same round trip.
        return await client.eval(script.source, len(keys), *keys, *args)


async def _close_when_loop_ends(client: Redis) -> AsyncGenerator[None]:
    """Parked at its ``yield`` until the loop shuts its async generators down
    (``asyncio.run`` and the blocking `Client` do when they end): then it closes the
    connection, on its own loop, where a redis.asyncio client must be closed."""
    try:
        yield
    finally:
        await client.aclose()


def _import_redis() -> None:
    try:
        import redis.asyncio  # noqa: F401  (the optional extra, imported on first use)
    except ImportError as exc:
        raise ImportError("RedisStateStore needs redis-py: pip install 'stackwire[redis]'") from exc


def _is_noscript(exc: object) -> bool:
    from redis.exceptions import NoScriptError

    return isinstance(exc, NoScriptError)


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
