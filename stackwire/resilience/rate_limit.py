"""`RateLimit`: pace calls per origin, by a token bucket and by the server's own budget.

What it does: before each attempt, takes a token from the origin's bucket (``rate``
requests a second, ``burst`` at once) and one unit of the budget the server announced
in its last response headers (OpenAI ``x-ratelimit-*-requests``, Anthropic
``anthropic-ratelimit-requests-*``, IETF ``RateLimit``/``RateLimit-Policy``, GitHub-style
``X-RateLimit-*``; see `stackwire.resilience._headers`). While budget remains, the
attempt goes at once (paced only by the bucket); at 0 it waits for the reset, and after
the reset at most the announced limit goes through. A 429 with ``Retry-After`` (or
``retry-after-ms``) pauses the whole origin, not only the call that got it. A wait
longer than ``max_wait`` raises `RateLimitExceededError` at once, before any I/O, with
the wait in ``retry_after`` (a call that waited for one window and finds the next one
spent too, as others were quicker, is refused as soon as its total wait would pass
``max_wait``); so does a wait longer than what is left of the call's ``deadline``.
Malformed headers are ignored.

Where it sits: added with ``client.with_middleware(RateLimit(...))``, below ``retry``
(once per attempt): every attempt, retries included, spends budget, as it does on the
server; and it sees each attempt's raw response (429s included) before ``decode`` turns
it into an error.

Defaults: ``rate=None`` (no bucket of its own: only the server's budget);
``burst`` one second's worth of ``rate`` (at least 1); ``from_headers=True``;
``max_wait=60.0`` seconds (as ``max_retry_after``); state in a `MemoryStateStore` of its
own unless ``store=`` is given (parts with the same settings and store share it per
origin). Waits use the client's injected ``sleep``; intervals are measured on the
client's clock when one is injected (`Clocks`), resets given as dates against ``clock``.

Retries and timeouts: a 429 is still retried by ``retry`` (after its ``Retry-After``);
the retry then finds the origin's pause over and goes straight through. A refusal is
never retried. The wait happens inside the attempt, before its request is sent: the
per-attempt timeout starts after it (the transport's clock), but a call ``deadline``
counts it: a wait that would outlast the deadline is refused at once.
"""

from __future__ import annotations

from typing import Any

from ..errors import (
    CircuitOpenError,
    ConcurrencyLimitError,
    InvalidRequestError,
    RateLimitExceededError,
    StateStoreError,
)
from ..middlewares._retry_delay import parse_retry_after
from ..pipeline.clocks import Clocks
from ..pipeline.middleware import CallNext
from ..pipeline.request import Request
from ..pipeline.response import Response
from ._common import OriginKeys, StoreSlot, check_number, check_store
from ._headers import MAX_RESET, BudgetReader, ServerBudget, Unread, server_budget
from ._store import StateStore

__all__ = ["RateLimit"]

_MIN_WAIT = 0.001  # a window said to end now: look again in a millisecond
# Refusals of the parts below, raised before any I/O: what this attempt took goes back.
_REFUSALS = (RateLimitExceededError, ConcurrencyLimitError, CircuitOpenError, StateStoreError)


class RateLimit:
    """A token bucket per origin plus the server's announced budget; see the module
    docstring (what, where, defaults, retries and timeouts).

    >>> from stackwire import AsyncClient
    >>> client = AsyncClient("https://api.example.com").with_middleware(RateLimit(5))
    >>> client.pipeline.names
    ['headers', 'query', 'timeout', 'retry', 'decode', 'rate_limit', 'redirects']
    """

    name = "rate_limit"

    def __init__(
        self,
        rate: float | None = None,
        *,
        burst: float | None = None,
        from_headers: bool = True,
        max_wait: float = 60.0,
        store: StateStore | None = None,
    ) -> None:
        self.rate = check_number("rate", rate, allow_none=True)
        if burst is not None and self.rate is None:
            check_number("burst", burst, minimum=1.0, inclusive=True)
        self.burst = (
            None
            if self.rate is None
            else check_number("burst", burst, minimum=1.0, inclusive=True)
            if burst is not None
            else max(1.0, self.rate)
        )
        if not isinstance(from_headers, bool):
            raise InvalidRequestError(f"from_headers must be True or False, got {from_headers!r}")
        self.from_headers = from_headers
        self.max_wait: float = check_number("max_wait", max_wait, inclusive=True, allow_inf=True)  # type: ignore[assignment]
        self._store = StoreSlot(check_store(store))
        settings = f"rate_limit:{self.rate!r}:{self.burst!r}"
        self._bucket_keys = OriginKeys(settings + ":bucket")
        self._quota_keys = OriginKeys("rate_limit:server")
        self._read = BudgetReader().read  # a bound method: a cheaper call than __call__

    async def __call__(self, request: Request, call_next: CallNext) -> Response[Any]:
        slot = self._store
        store = slot.store or slot.get(request)
        memory = slot.memory
        ticket = 0
        waited = 0.0
        quota_key = ""
        max_wait = self.max_wait
        if request.deadline_at is not None:  # a wait never outlasts the call's deadline
            left = request.deadline_at - Clocks.of(request).monotonic()  # the deadline's clock
            max_wait = max(0.0, min(max_wait, left))
        if self.from_headers:
            quota_key = self._quota_keys(request.url)
            if memory is not None:
                granted, wait, ticket = memory.take_quota_sync(quota_key)
            else:
                granted, wait, ticket = await store.take_quota(quota_key)
            if not granted:
                ticket, waited = await self._wait_for_quota(
                    store, quota_key, wait, request, max_wait
                )
        if self.rate is not None:
            assert self.burst is not None
            key = self._bucket_keys(request.url)
            budget = max_wait - waited
            try:
                if memory is not None:
                    granted, wait = memory.take_tokens_sync(
                        key, rate=self.rate, burst=self.burst, max_wait=budget
                    )
                else:
                    granted, wait = await store.take_tokens(
                        key, rate=self.rate, burst=self.burst, max_wait=budget
                    )
                if not granted:
                    raise self._refusal(request, wait, f"the rate of {self.rate:g}/s", max_wait)
                if wait > 0:
                    try:
                        await Clocks.of(request).sleep(wait)
                    except BaseException:  # gone (cancelled, its deadline passed): unsent
                        untake = getattr(store, "untake_tokens", None)
                        if untake is not None:
                            await untake(key, rate=self.rate, burst=self.burst)
                        raise
            except BaseException:
                # Refused by the bucket, or gone while paced: the unit of the server's
                # budget taken above was not spent (else each refusal used one up, for
                # the rest of the window).
                await self._give_back(store, quota_key, None)
                raise
        try:
            response = await call_next(request)
        except _REFUSALS:  # refused below (a slot, a breaker, the store): never sent
            await self._give_back(store, quota_key, key if self.rate is not None else None)
            raise
        if self.from_headers:
            learned: ServerBudget | float | Unread | None
            if response.status_code != 429:
                learned = self._read(response.headers)
                if learned is Unread.UNREAD:
                    learned = server_budget(response.headers, Clocks.of(request).clock())
            else:
                learned = self._learn(response, Clocks.of(request))
            if learned is None:
                pass
            elif memory is not None:
                if isinstance(learned, float):
                    memory.pause_quota_sync(quota_key, seconds=learned)
                else:
                    memory.announce_quota_sync(
                        quota_key,
                        limit=learned.limit,
                        remaining=learned.remaining,
                        reset_in=learned.reset_in,
                        window=learned.window,
                        ticket=ticket,
                    )
            elif isinstance(learned, float):
                await store.pause_quota(quota_key, seconds=learned)
            elif slot.later is not None:  # sent with the store's next round trip
                slot.later.announce_quota_later(
                    quota_key,
                    limit=learned.limit,
                    remaining=learned.remaining,
                    reset_in=learned.reset_in,
                    window=learned.window,
                    ticket=ticket,
                )
            else:
                await store.announce_quota(
                    quota_key,
                    limit=learned.limit,
                    remaining=learned.remaining,
                    reset_in=learned.reset_in,
                    window=learned.window,
                    ticket=ticket,
                )
        return response

    async def _wait_for_quota(
        self, store: StateStore, key: str, wait: float, request: Request, max_wait: float
    ) -> tuple[int, float]:
        """Wait for the window's end and ask again (its end may have been corrected
        meanwhile; others may have been quicker), until granted or past ``max_wait``.
        Returns the ticket and the seconds waited."""
        sleep = Clocks.of(request).sleep
        waited = 0.0
        while True:
            if waited + wait > max_wait:
                why = "the server's announced budget is spent"
                raise self._refusal(request, wait, why, max_wait)
            wait = max(wait, _MIN_WAIT)
            await sleep(wait)
            waited += wait
            granted, wait, ticket = await store.take_quota(key)
            if granted:
                return ticket, waited

    async def _give_back(self, store: StateStore, quota_key: str, key: str | None) -> None:
        """Give back what was taken for an attempt that was not sent: the unit of the
        server's budget, and the token when ``key`` is given (stores that can)."""
        untake_quota = getattr(store, "untake_quota", None)
        if self.from_headers and untake_quota is not None:
            await untake_quota(quota_key)
        untake_tokens = getattr(store, "untake_tokens", None)
        if key is not None and untake_tokens is not None:
            await untake_tokens(key, rate=self.rate, burst=self.burst)

    @staticmethod
    def _learn(response: Response[Any], clocks: Clocks) -> ServerBudget | float | None:
        """What a response says: a pause (a 429's ``Retry-After``, in seconds), the
        server's budget, or nothing usable."""
        headers = response.headers
        if response.status_code == 429:
            pause = parse_retry_after(headers, clocks.clock())
            if pause is not None and pause <= MAX_RESET:  # (a longer one is absurd)
                return pause
        return server_budget(headers, clocks.clock())

    def _refusal(
        self, request: Request, wait: float, why: str, max_wait: float
    ) -> RateLimitExceededError:
        longer = (
            f"longer than max_wait={self.max_wait:g} s. Not sent (raise max_wait to wait "
            "that long)."
            if max_wait >= self.max_wait
            else f"longer than the {max_wait:.3g} s left of the call's deadline. "
            "Not sent (raise deadline= to wait that long)."
        )
        return RateLimitExceededError(
            f"Rate limit for {request.url.origin()}: {why}; the next slot is {wait:.3g} s "
            f"away, {longer}",
            request=request,
            retry_after=wait,
        )

    def __repr__(self) -> str:
        return (
            f"RateLimit(rate={self.rate!r}, burst={self.burst!r}, "
            f"from_headers={self.from_headers}, max_wait={self.max_wait:g})"
        )
