"""`CircuitBreaker`: stop sending to an origin that keeps failing, then probe it.

What it does: counts each attempt's outcome per origin in a sliding ``window``. When
the window holds at least ``min_calls`` attempts and ``failures / attempts >=
failure_ratio``, the breaker opens: attempts fail at once with `CircuitOpenError`, with
no I/O (``retry_after`` says when the probe may go). After ``open_for`` seconds one
attempt goes through as a probe (the others still fail fast while it is out): its
success closes the breaker, its failure reopens it for another ``open_for``. A failure
is what ``is_failure`` says; the default counts an `APIConnectionError` (timeouts
included) and a status >= 500, never a 4xx. An attempt refused by another resilience
part, or cancelled, is not counted. An attempt is judged when its body is done (read
by ``decode``, above, or failed: `Response.when_done` and `Response.body_error`), so a
200 whose connection breaks mid-body is a failure and a probe is out until its body is
in; a stream is judged at its headers.

Where it sits: added with ``client.with_middleware(CircuitBreaker())``, below ``retry``
(per attempt): every attempt is an observation of the origin, and a retry of a call
finds the breaker open as soon as it opens. It sees raw responses (a 503 is a response
here, not yet an error).

Defaults: ``failure_ratio=0.5``, ``min_calls=20``, ``window=10.0`` s, ``open_for=30.0``
s; state in a `MemoryStateStore` of its own unless ``store=`` is given (breakers with the
same settings and store share it per origin). Time is measured on the client's clock
when one is injected (`Clocks`), else on `time.monotonic`.

Retries and timeouts: `CircuitOpenError` is never retried, so a call against an open
breaker fails in microseconds instead of sleeping through its backoff; a timed-out
attempt (`APITimeoutError`) counts as a failure. Pair it with ``retry_budget=`` so that
the calls made before it opens do not multiply the load.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..errors import (
    APIConnectionError,
    CircuitOpenError,
    ConcurrencyLimitError,
    InvalidRequestError,
    RateLimitExceededError,
    StateStoreError,
)
from ..pipeline.middleware import CallNext
from ..pipeline.request import Request
from ..pipeline.response import Response
from ._common import MIN_WINDOW, OriginKeys, StoreSlot, check_number, check_store, in_background
from ._store import StateStore

__all__ = ["CircuitBreaker", "default_is_failure"]

# Refused by another part before any I/O, or a shared store that did not answer: says
# nothing about the origin.
_REFUSALS = (RateLimitExceededError, ConcurrencyLimitError, CircuitOpenError, StateStoreError)


def default_is_failure(outcome: Response[Any] | Exception) -> bool:
    """A connection error or timeout, or a response with a status >= 500."""
    if isinstance(outcome, Exception):
        return isinstance(outcome, APIConnectionError)
    return outcome.status_code >= 500


class CircuitBreaker:
    """Fails fast while an origin keeps failing; see the module docstring.

    ``is_failure(outcome)`` gets the attempt's `Response` or the exception it raised.

    >>> from stackwire import AsyncClient
    >>> client = AsyncClient("https://api.example.com").with_middleware(CircuitBreaker())
    >>> "circuit_breaker" in client.pipeline
    True
    """

    name = "circuit_breaker"

    def __init__(
        self,
        *,
        failure_ratio: float = 0.5,
        min_calls: int = 20,
        window: float = 10.0,
        open_for: float = 30.0,
        is_failure: Callable[[Response[Any] | Exception], bool] = default_is_failure,
        store: StateStore | None = None,
    ) -> None:
        ratio = check_number("failure_ratio", failure_ratio, maximum=1.0)
        if isinstance(min_calls, bool) or not isinstance(min_calls, int) or min_calls < 1:
            raise InvalidRequestError(f"min_calls must be an int >= 1, got {min_calls!r}")
        if not callable(is_failure):
            raise InvalidRequestError(f"is_failure must be callable, got {is_failure!r}")
        assert ratio is not None
        self.failure_ratio = ratio
        self.min_calls = min_calls
        self.window = check_number("window", window, minimum=MIN_WINDOW, inclusive=True) or 0.0
        self.open_for = check_number("open_for", open_for) or 0.0
        self.is_failure = is_failure
        self._store = StoreSlot(check_store(store))
        self._keys = OriginKeys(
            f"circuit_breaker:{ratio!r}:{min_calls}:{self.window!r}:{self.open_for!r}"
        )
        self._origin_at = len(self._keys.prefix) + 1  # where a key's origin starts

    async def __call__(self, request: Request, call_next: CallNext) -> Response[Any]:
        slot = self._store
        store = slot.store or slot.get(request)
        memory = slot.memory
        key = self._keys(request.url)
        if memory is not None:
            state, retry_after = memory.breaker_acquire_sync(key, open_for=self.open_for)
        else:
            state, retry_after = await store.breaker_acquire(key, open_for=self.open_for)
        if state == "open":
            # The origin as the key names it (scheme://host:port): a slice, where
            # ``request.url.origin()`` would build a URL on every refusal (~2 µs).
            origin = key[self._origin_at :]
            raise CircuitOpenError(
                f"Circuit breaker for {origin} is open after repeated failures; failing "
                f"fast without sending (next probe in {retry_after:.3g} s).",
                request=request,
                retry_after=retry_after,
            )
        probe = state == "probe"
        try:
            response = await call_next(request)
        except _REFUSALS:
            await self._record(store, key, "abandoned", probe)
            raise
        except Exception as exc:
            failed = self._judge(exc)
            await self._record(store, key, "failure" if failed else "success", probe)
            raise
        except BaseException:  # cancelled (or worse): frees the probe, counts nothing
            await self._record(store, key, "abandoned", probe)
            raise
        if self.is_failure is default_is_failure:
            outcome = "failure" if response.status_code >= 500 else "success"
        else:
            outcome = "failure" if self._judge(response) else "success"
        if outcome == "success" and not response.is_closed and not request.options.stream:
            # Its body is still to come (``decode`` reads it, above): an attempt whose
            # connection breaks or times out mid-body failed, good headers or not.
            response.when_done(lambda: self._record_done(store, key, probe, response))
            return response
        if not self._record_now(store, key, outcome, probe):
            await self._record(store, key, outcome, probe)
        return response

    def _record_now(self, store: StateStore, key: str, outcome: str, probe: bool) -> bool:
        """Record ``outcome`` without waiting, if the store can (in memory, or a
        success sent with the store's next round trip); whether it did."""
        slot = self._store
        memory = slot.memory
        if memory is not None:
            memory.breaker_record_sync(
                key,
                outcome=outcome,
                probe=probe,
                failure_ratio=self.failure_ratio,
                min_calls=self.min_calls,
                window=self.window,
                open_for=self.open_for,
            )
        elif slot.later is not None and outcome == "success" and not probe:
            # Cannot move the breaker: sent with the store's next round trip.
            slot.later.breaker_record_later(
                key,
                outcome=outcome,
                probe=probe,
                failure_ratio=self.failure_ratio,
                min_calls=self.min_calls,
                window=self.window,
                open_for=self.open_for,
            )
        else:
            return False
        return True

    def _record_done(
        self, store: StateStore, key: str, probe: bool, response: Response[Any]
    ) -> None:
        """Record the outcome of an attempt whose body is done (a `Response.when_done`
        callback, which cannot wait: a store that needs a round trip gets a task)."""
        error = response.body_error
        if error is None:
            outcome = "success"
        elif isinstance(error, Exception) and not isinstance(error, _REFUSALS):
            outcome = "failure" if self._judge(error) else "success"
        else:  # cancelled while reading: counts nothing, frees the probe
            outcome = "abandoned"
        if self._record_now(store, key, outcome, probe):
            return
        in_background(lambda: self._record(store, key, outcome, probe))

    def _judge(self, outcome: Response[Any] | Exception) -> bool:
        try:
            return bool(self.is_failure(outcome))
        except Exception:  # a broken predicate must not break the call
            return isinstance(outcome, Exception)

    async def _record(self, store: StateStore, key: str, outcome: str, probe: bool) -> None:
        await store.breaker_record(
            key,
            outcome=outcome,
            probe=probe,
            failure_ratio=self.failure_ratio,
            min_calls=self.min_calls,
            window=self.window,
            open_for=self.open_for,
        )

    def __repr__(self) -> str:
        return (
            f"CircuitBreaker(failure_ratio={self.failure_ratio:g}, min_calls={self.min_calls}, "
            f"window={self.window:g}, open_for={self.open_for:g})"
        )
