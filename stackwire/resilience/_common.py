"""What every resilience part shares: argument checks, its store, per-origin keys."""

from __future__ import annotations

import asyncio
import contextlib
import math
from collections.abc import Callable, Coroutine
from typing import Any, Protocol, runtime_checkable

from yarl import URL

from ..errors import InvalidRequestError
from ..pipeline._memo import MISSING, IdentityMemo
from ..pipeline.clocks import Clocks
from ..pipeline.request import Request
from ._store import MemoryStateStore, StateStore

__all__ = [
    "MIN_WINDOW",
    "Deferring",
    "OriginKeys",
    "StoreSlot",
    "check_number",
    "check_store",
]

# The shortest sliding window: a window is counted in slices of a tenth of it, numbered
# by ``now // slice``; a shorter one made that number overflow (an OverflowError after
# the request was sent) or, in Redis, lose its last digits.
MIN_WINDOW = 0.001


def check_number(
    name: str,
    value: object,
    *,
    minimum: float = 0.0,
    inclusive: bool = False,
    maximum: float | None = None,
    allow_none: bool = False,
    allow_inf: bool = False,
) -> float | None:
    """``value`` as a float in range, else `InvalidRequestError` naming ``name``."""
    if value is None and allow_none:
        return None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        number = float(value)
        ok = (number >= minimum if inclusive else number > minimum) and (
            maximum is None or number <= maximum
        )
        if ok and (allow_inf or math.isfinite(number)):
            return number
    bound = ">=" if inclusive else ">"
    extra = f" and <= {maximum:g}" if maximum is not None else ""
    none = " or None" if allow_none else ""
    raise InvalidRequestError(
        f"{name} must be a number {bound} {minimum:g}{extra}{none}, got {value!r}"
    )


def check_store(store: object) -> StateStore | None:
    if isinstance(store, type):  # the class itself has the methods, unbound
        raise InvalidRequestError(
            f"store must be a StateStore instance, got the class {store.__name__}: "
            f"call it ({store.__name__}(...))"
        )
    if store is not None and not isinstance(store, StateStore):
        raise InvalidRequestError(
            f"store must be a StateStore (such as MemoryStateStore()) or None, got {store!r}"
        )
    return store


@runtime_checkable
class Deferring(Protocol):
    """A store that can defer the writes that decide nothing for the attempt at hand
    (`RedisStateStore`: they go with its next round trip): the part calls these
    instead of awaiting the `StateStore` operation of the same name."""

    def release_slot_later(self, key: str, lease: int) -> None: ...

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
    ) -> None: ...

    def announce_quota_later(
        self,
        key: str,
        *,
        limit: int | None,
        remaining: int,
        reset_in: float,
        window: float | None,
        ticket: int,
    ) -> None: ...

    def budget_deposit_later(self, key: str, *, window: float) -> None: ...


class StoreSlot:
    """A part's store: the one given, or an in-memory one made at first use on the
    monotonic clock of the client that first calls through the part.

    ``memory`` is the store again when it is a `MemoryStateStore`: its operations never
    suspend, so parts call their ``*_sync`` twins without a coroutine. ``later`` is
    the store again when it can defer writes (`Deferring`).
    """

    __slots__ = ("later", "memory", "store")

    def __init__(self, store: StateStore | None) -> None:
        self.store = store
        self.memory = store if type(store) is MemoryStateStore else None
        self.later = store if self.memory is None and isinstance(store, Deferring) else None

    def get(self, request: Request) -> StateStore:
        store = self.store
        if store is None:
            memory = MemoryStateStore(monotonic=Clocks.of(request).monotonic)
            self.store = self.memory = store = memory
        return store


class OriginKeys:
    """``<prefix>:<scheme>://<host>:<port>`` for a URL, cached per origin.

    Also remembered by the URL object (`IdentityMemo`): a client hands the same URL
    object to every call of one path (its URL join is memoized), so most calls find
    their key by one identity check instead of the tuple and dict lookup below (about
    2,900 instructions a call, measured with callgrind).
    """

    __slots__ = ("_cache", "_memo", "prefix")

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self._cache: dict[tuple[Any, ...], str] = {}
        self._memo: IdentityMemo[str] = IdentityMemo()

    def __call__(self, url: URL) -> str:
        memo = self._memo
        key = memo.last_value if url is memo.last_key else memo.get(url)
        if key is MISSING:
            key = self._key(url)
            memo.put(url, key)
        return key

    def _key(self, url: URL) -> str:
        seen = (url.scheme, url.raw_authority)  # cheap to read; userinfo stays out of keys
        key = self._cache.get(seen)
        if key is None:
            if len(self._cache) > 4096:
                self._cache.clear()
            key = self._cache[seen] = f"{self.prefix}:{url.scheme}://{url.host}:{url.port}"
        return key


# Store writes under way in tasks of their own (a reference, so none is collected).
_BACKGROUND: set[asyncio.Task[None]] = set()


def in_background(write: Callable[[], Coroutine[Any, Any, None]]) -> asyncio.Task[None] | None:
    """Run the store write ``write()`` in a task of its own, for a `Response.when_done`
    callback, which cannot wait: its failure is dropped (a slot's lease runs out, one
    outcome is not counted). ``None`` outside a running loop, where nothing is run."""
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        return None

    async def quietly() -> None:
        with contextlib.suppress(Exception):
            await write()

    task = loop.create_task(quietly())
    _BACKGROUND.add(task)
    task.add_done_callback(_BACKGROUND.discard)
    return task
