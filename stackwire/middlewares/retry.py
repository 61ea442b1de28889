"""The ``retry`` middleware: the pivot of the stack.

What it does: sends the call, and when an attempt fails in a way worth another try,
waits and sends it again, at most ``max_retries`` more times.

- *Whether*: the ``should_retry`` predicate decides, given the attempt's `APIError`.
  The default, `default_should_retry`, retries connection errors and timeouts and the
  statuses 408, 409, 429 and >= 500; a response header ``x-should-retry: true`` or
  ``false`` (exactly these values) overrides the status rule either way. Replace it to
  retry, say, a 424. Whatever the predicate says, these are never retried:
  `APIResponseValidationError`, `AuthError`, `ResponseTooLargeError`, the refusals of the
  resilience parts (`RateLimitExceededError`, `ConcurrencyLimitError`,
  `CircuitOpenError`), `StateStoreError` (a shared store that did not answer), any
  error that is not an `APIError` (such as `InvalidRequestError`), cancellation, and a
  call whose body cannot be sent again (an async iterable that an attempt already
  started reading).
- *How long*: the server's hint first (``retry-after-ms``, else ``Retry-After`` in
  seconds or as an HTTP-date, read against the injected ``clock``). A hint in
  ``(0, max_retry_after]`` is slept exactly. A longer one is not waited for: the call
  raises the attempt's error at once, with the hint in ``error.retry_after``. Without
  a usable hint: ``initial_delay * 2**n`` (``n`` = retries so far) capped at
  ``max_delay``, times a jitter factor ``1 - jitter * random()``.
- *Safety*: every call but a GET carries an idempotency key (HEAD and OPTIONS too, as
  in the reference SDKs: a header costs them nothing and an API may key on it), made once
  per call and the same on every attempt (the caller's key wins); every attempt
  carries its number in a retry-count header (0, 1, 2, ...). A failed attempt's
  response is released as soon as the failure arrives, so nothing stays checked out
  of the pool while sleeping. Each attempt starts from a fresh copy of the request
  this middleware received (extension map included), so nothing an attempt changes
  reaches the next one.
- *Budget*: with ``retry_budget=`` (a `RetryBudget`), every call deposits once and
  every retry withdraws once, asked after every other rule has said "retry"; when the
  budget is spent the call raises its last error at once, with "retry budget exhausted"
  in its message and ``error.retry_budget_exhausted`` set.
- *Observability*: ``on_retry`` gets a `RetryEvent` before each sleep, and the
  ``"stackwire"`` logger one INFO line (the reason, the delay and where it came
  from, ``retry-after`` or ``backoff``; none for the final failure);
  ``retries_taken`` and ``attempts`` (one `Attempt` per attempt, with its status or
  error, its duration, its `Timings` and the sleep after it) are set on the
  returned `Response` and on every `APIError` raised.

Where it sits: below ``headers``, ``query`` and ``timeout``, which run once per call
(so the deadline and the headers are fixed for the whole call), and above ``decode``,
the client's ``middlewares=`` and the transport, which run once per attempt: ``decode``
reads the body inside the attempt, so a body cut short is retryable, and error
statuses arrive here as typed errors carrying their (released) response.

Defaults: ``max_retries=2`` (3 attempts); ``max_retry_after=60`` s; backoff 0.5 s
doubling to 8 s with jitter 0.25 (a factor in (0.75, 1]); ``Idempotency-Key``;
``X-Retry-Count``; `asyncio.sleep`, `time.time` and `random.random`; no retry budget.

Retries and timeouts: a timed-out attempt is an `APITimeoutError`, retried like a
connection error; each attempt gets the full per-attempt `Timeout`. With a deadline
(set by ``timeout``), a retry whose sleep would reach it is not started: the call
raises `APITimeoutError` naming the deadline, chained to the last attempt's error.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import math
import random as _random
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from typing import Any, Literal, Protocol, runtime_checkable

import msgspec
from msgspec.structs import replace
from multidict import CIMultiDict, CIMultiDictProxy

from .._logging import logger
from .._types import NOT_GIVEN, NotGiven
from ..errors import (
    APIConnectionError,
    APIError,
    APIResponseValidationError,
    APIStatusError,
    APITimeoutError,
    AuthError,
    CircuitOpenError,
    ConcurrencyLimitError,
    InvalidRequestError,
    RateLimitExceededError,
    ResponseTooLargeError,
    StateStoreError,
)
from ..pipeline._memo import MISSING, IdentityMemo
from ..pipeline.attempts import Attempt, AttemptLog
from ..pipeline.body import is_replayable
from ..pipeline.middleware import CallNext, not_a_response
from ..pipeline.request import ExtensionKey, Request
from ..pipeline.response import Response
from ..pipeline.secrets import credentials_sent, hide_secrets
from ._attempt_history import attempt_record, failed_attempts, log_retry
from ._retry_delay import backoff_delays, jittered, parse_retry_after, should_retry_status
from .headers import check_header

__all__ = [
    "KEYLESS_METHODS",
    "RETRY_LISTENER",
    "RetryBudgetLike",
    "RetryEvent",
    "RetryMiddleware",
    "check_max_retries",
    "default_should_retry",
]

# Methods that get no generated idempotency key (an explicit one is still sent): GET
# only, as DESIGN §3 says "non-GET requests carry an idempotency key".
KEYLESS_METHODS = frozenset({"GET"})

# Failures that a new attempt cannot fix, whatever ``should_retry`` says.
_NEVER_RETRIED = (
    APIResponseValidationError,
    ResponseTooLargeError,
    # A token could not be obtained: AuthError carries the token endpoint's failure.
    AuthError,
    # Refused by a resilience part before any I/O: another attempt would be refused too.
    RateLimitExceededError,
    ConcurrencyLimitError,
    CircuitOpenError,
    # The shared state store did not answer: the API was not contacted, and the store
    # already had its short timeout.
    StateStoreError,
)


@runtime_checkable
class RetryBudgetLike(Protocol):
    """What ``retry`` needs of a retry budget (``stackwire.resilience.RetryBudget``):
    ``deposit`` once per call, ``withdraw`` before each retry (``False``: spent)."""

    async def deposit(self, request: Request, /) -> None: ...

    async def withdraw(self, request: Request, /) -> bool: ...


class RetryEvent(msgspec.Struct, frozen=True, kw_only=True):
    """One decision to retry, reported to ``on_retry`` just before the sleep.

    - ``attempt``: the number of the attempt that failed (0 for the first), which is
      also the value its retry-count header carried;
    - ``reason``: ``"status 503"`` for an error status, else the error's type name
      (``"APIConnectionError"``, ``"APITimeoutError"``);
    - ``status_code``: the status, or ``None`` when no response came;
    - ``delay``: the seconds about to be slept;
    - ``delay_source``: ``"retry-after"`` when the server's hint set the delay,
      ``"backoff"`` when the jittered exponential schedule did;
    - ``error``: the attempt's error; ``request``: the call's request (as this
      middleware received it, plus the idempotency key).
    """

    attempt: int
    reason: str
    status_code: int | None
    delay: float
    delay_source: Literal["retry-after", "backoff"]
    error: APIError
    request: Request


RETRY_LISTENER: ExtensionKey[Callable[[RetryEvent], object]] = ExtensionKey(
    "stackwire.retry_listener"
)
"""A request extension a middleware above ``retry`` sets to hear of each retry
decision of its call (called with the `RetryEvent` just before ``on_retry`` and
the sleep; it must not block). The OpenTelemetry call span records them as events."""


def default_should_retry(error: APIError) -> bool:
    """The default rule: connection errors and timeouts, and the statuses 408, 409,
    429 and >= 500 unless the response says ``x-should-retry: false`` (``true``
    makes any status retryable).

    To also retry a 424::

        def should_retry(error: APIError) -> bool:
            if isinstance(error, APIStatusError) and error.status_code == 424:
                return True
            return default_should_retry(error)

        client = AsyncClient(base_url, should_retry=should_retry)
    """
    if isinstance(error, APIStatusError):
        return should_retry_status(error.status_code, error.response.headers)
    return isinstance(error, APIConnectionError) and not isinstance(error, StateStoreError)


def check_max_retries(value: object) -> int:
    """A valid retry budget: an int >= 0 (``0`` disables retries)."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise InvalidRequestError(
            f"max_retries must be an int >= 0 (0 disables retries), got {value!r}"
        )
    return value


def _seconds(
    name: str, value: object, *, allow_zero: bool = False, allow_inf: bool = False
) -> float:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        try:
            number = float(value)
        except OverflowError:  # an int too large for a float (``10**400``)
            number = math.nan
        in_range = number >= 0 if allow_zero else number > 0
        if in_range and (allow_inf or math.isfinite(number)):
            return number
    kind = "a number of seconds >= 0" if allow_zero else "a positive number of seconds"
    raise InvalidRequestError(f"{name} must be {kind}, got {value!r:.100}")


class RetryMiddleware:
    """Retries failed attempts, honouring ``Retry-After`` and backing off; see the
    module docstring for the rules.

    Every argument is keyword-only and has the client option of the same name,
    except ``monotonic``: the clock the deadline is measured on (it must match the
    one the ``timeout`` middleware stamped ``deadline_at`` with). When it is not
    `time.monotonic` (an injected clock, which a fake sleep advances), the real time
    the attempts take that it did not see is added to it.

    ``retry_after`` is set on an `APIStatusError` leaving this middleware (raised, or
    the ``__cause__`` of the deadline's `APITimeoutError`) whenever its response
    carried a usable hint: one above ``max_retry_after``, or one the call ended
    without waiting for (no retries left, the deadline, a spent retry budget).
    """

    name = "retry"

    def __init__(
        self,
        *,
        max_retries: int = 2,
        max_retry_after: float = 60.0,
        initial_delay: float = 0.5,
        max_delay: float = 8.0,
        jitter: float = 0.25,
        idempotency_header: str | None = "Idempotency-Key",
        retry_count_header: str | None = "X-Retry-Count",
        should_retry: Callable[[APIError], bool] = default_should_retry,
        on_retry: Callable[[RetryEvent], object] | None = None,
        sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
        clock: Callable[[], float] = time.time,
        random: Callable[[], float] = _random.random,
        monotonic: Callable[[], float] = time.monotonic,
        retry_budget: RetryBudgetLike | None = None,
    ) -> None:
        self.max_retries = check_max_retries(max_retries)
        self.max_retry_after = _seconds(
            "max_retry_after", max_retry_after, allow_zero=True, allow_inf=True
        )
        self.initial_delay = _seconds("initial_delay", initial_delay)
        self.max_delay = _seconds("max_delay", max_delay)
        if self.initial_delay > self.max_delay:
            raise InvalidRequestError(
                f"initial_delay ({initial_delay!r} s) must not exceed max_delay ({max_delay!r} s)"
            )
        if isinstance(jitter, bool) or not isinstance(jitter, (int, float)) or not 0 <= jitter < 1:
            raise InvalidRequestError(
                f"jitter must be a number in [0, 1) (0 disables it), got {jitter!r}"
            )
        for option, header in (
            ("idempotency_header", idempotency_header),
            ("retry_count_header", retry_count_header),
        ):
            if header is not None:
                try:
                    check_header(header, "")
                except InvalidRequestError:
                    raise InvalidRequestError(
                        f"{option} must be a header name or None, got {header!r}"
                    ) from None
        if not callable(should_retry):
            raise InvalidRequestError(f"should_retry must be callable, got {should_retry!r}")
        self.jitter = float(jitter)
        self.idempotency_header = idempotency_header
        self.retry_count_header = retry_count_header
        self.should_retry = should_retry
        self.on_retry = on_retry
        self._sleep = sleep
        self._clock = clock
        self._random = random
        self._monotonic = monotonic
        self.retry_budget = retry_budget
        # An injected clock (VirtualTime's) sees the fake sleeps, not the real time an
        # attempt takes: that is measured on this one and added (see `__call__`).
        self._real_monotonic = None if monotonic is time.monotonic else time.monotonic
        # The first attempt's headers (with X-Retry-Count: 0), by the call's headers.
        self._first_attempt_headers: IdentityMemo[CIMultiDictProxy[str]] = IdentityMemo()

    # -- the loop ------------------------------------------------------------------

    async def __call__(self, request: Request, call_next: CallNext) -> Response[Any]:
        if (
            request.method not in KEYLESS_METHODS
            or request.options.idempotency_key is not NOT_GIVEN
        ):
            request = self._prepare(request)  # (a GET without a key has nothing to add)
        budget = self.retry_budget
        if budget is not None:
            await budget.deposit(request)
        schedule: Iterator[float] | None = None
        history: list[Attempt] | None = None  # the attempts before this one, retried
        monotonic = self._monotonic
        first = self._first_attempt_headers
        # On an injected clock: the real seconds the attempts took that it did not
        # count (all of them on a VirtualTime clock, which only the fake sleeps move;
        # none on a clock that keeps real time). They count against the deadline, and
        # each later attempt is sent with a deadline that much earlier on that clock.
        real = self._real_monotonic
        spent = 0.0
        attempt = 0
        while True:
            if attempt == 0 and request.headers is first.last_key and not request.omit_headers:
                # The usual first attempt (`_attempt_request`'s first case, in line):
                # the headers of the call before, the count included.
                attempt_request = replace(
                    request,
                    attempt=0,
                    extensions=dict(request.extensions),
                    headers=first.last_value,
                )
            else:
                attempt_request = self._attempt_request(request, attempt)
            started = monotonic()
            if real is not None:
                real_started = real()
                deadline_at = request.deadline_at
                if spent and deadline_at is not None:
                    attempt_request = replace(attempt_request, deadline_at=deadline_at - spent)
            try:
                response = await call_next(attempt_request)
            except APIError as error:
                ended = monotonic()
                if real is not None:  # (what the injected clock did not see of it)
                    spent += max(real() - real_started - (ended - started), 0.0)
                error.retries_taken = attempt
                if error.request is None:  # raised by a state store, which sees no request
                    error.request = request
                hint: float | None = None
                if isinstance(error, APIStatusError):
                    # Released before anything else (a no-op when ``decode`` did it),
                    # so nothing stays checked out while sleeping or once raised.
                    error.response.close()
                    hint = parse_retry_after(error.response.headers, self._clock())
                    if hint is not None:
                        # On the error whatever ends the call: no retries left, a hint
                        # too long, the deadline (its cause), the retry budget.
                        error.retry_after = hint
                if not self._may_retry(error, request, attempt):
                    error.attempts = failed_attempts(
                        history, attempt_request, error, started, ended, None
                    )
                    raise
                if schedule is None:
                    schedule = backoff_delays(self.initial_delay, self.max_delay)
                backoff_delay = next(schedule)  # advances once per retry, hint or not
                source: Literal["retry-after", "backoff"]
                if hint is not None:
                    if hint > self.max_retry_after:
                        self._hint_too_long(error, hint)
                        error.attempts = failed_attempts(
                            history, attempt_request, error, started, ended, None
                        )
                        raise
                    delay, source = hint, "retry-after"
                else:
                    delay = jittered(backoff_delay, self.jitter, self._random)
                    source = "backoff"
                try:
                    self._check_deadline(request, delay, error, spent)
                except APITimeoutError as timeout:
                    timeout.attempts = error.attempts = failed_attempts(
                        history, attempt_request, error, started, ended, None
                    )
                    raise
                if budget is not None and not await budget.withdraw(request):
                    self._budget_spent(error)
                    error.attempts = failed_attempts(
                        history, attempt_request, error, started, ended, None
                    )
                    raise
                if history is None:
                    history = []
                history.append(attempt_record(attempt_request, error, started, ended, delay))
                listener = request.extensions.get(RETRY_LISTENER)
                if self.on_retry is not None or listener is not None:
                    await self._report(error, attempt, delay, source, request, listener)
                if logger.isEnabledFor(logging.INFO):
                    log_retry(attempt_request, error, delay, source)
                await self._sleep(delay)
                attempt += 1
                continue
            try:
                response.retries_taken = attempt
            except AttributeError:
                if isinstance(response, Response):
                    raise
                raise not_a_response(response) from None
            # What the ``attempts`` property reads (and resolves on first read), stored
            # in its slot directly: the setter would cost every call a Python call.
            response._attempts = AttemptLog(history, attempt_request, started, monotonic())
            return response

    def _may_retry(self, error: APIError, request: Request, attempt: int) -> bool:
        budget = request.options.max_retries
        if isinstance(budget, NotGiven):
            budget = self.max_retries
        elif budget is None:  # off for this call
            budget = 0
        if attempt >= budget or isinstance(error, _NEVER_RETRIED) or not self.should_retry(error):
            return False
        if not is_replayable(request.body):
            # Retryable but for its body: say so, or the call seems to ignore max_retries.
            error.message = (
                f"{error.message} (not retried: the request body was an async iterable "
                "that this attempt already sent, and it cannot be sent again; pass bytes "
                "to allow retries)"
            )
            error.args = (error.message,)
            return False
        return True

    # -- per call and per attempt requests ---------------------------------------

    def _prepare(self, request: Request) -> Request:
        """The call's request with its idempotency key, made once for all attempts."""
        header = self.idempotency_header
        key = request.options.idempotency_key
        if key is None:
            return request  # ``idempotency_key=None``: no key for this call
        given = not isinstance(key, NotGiven)
        if not given and request.method in KEYLESS_METHODS:
            return request  # a GET without a key of its own: nothing to add
        if header is None:
            if given:
                raise InvalidRequestError(
                    "idempotency_key= was given, but this client sends no idempotency header "
                    "(idempotency_header=None); set idempotency_header to send it"
                )
            return request
        if header.lower() in request.omit_headers or header in request.headers:
            return request  # the caller removed it, or set the header itself
        if isinstance(key, NotGiven):
            if request.method in KEYLESS_METHODS:
                return request
            key = f"stackwire-retry-{uuid.uuid4()}"
        else:
            check_header(header, key)
            if not key:  # every call with it would look like one and the same to the API
                raise InvalidRequestError("idempotency_key must be a non-empty str")
        return request.with_headers({header: key})

    def _attempt_request(self, request: Request, attempt: int) -> Request:
        """A fresh copy of the call's request for one attempt, with its number."""
        header = self.retry_count_header
        headers = request.headers
        shared = attempt == 0 and not request.omit_headers
        memo = self._first_attempt_headers
        if not shared:
            first = MISSING
        elif headers is memo.last_key:
            first = memo.last_value
        else:
            first = memo.get(headers)
        if first is not MISSING:
            # Calls that share their headers (those without headers of their own)
            # share their first attempt's too: a proxy is read-only, so nothing an
            # attempt does can reach another through it.
            headers = first
        elif not (
            header is None
            or header in headers  # the caller's own value wins
            or header.lower() in request.omit_headers
        ):
            counted = CIMultiDict(headers)
            counted[header] = str(attempt)
            proxy = CIMultiDictProxy(counted)
            if shared:
                self._first_attempt_headers.put(headers, proxy)
            headers = proxy
        # A copy of the extension map too: a middleware below that changes the map
        # in place changes only its own attempt's copy.
        return replace(
            request, attempt=attempt, extensions=dict(request.extensions), headers=headers
        )

    # -- decisions with side effects -----------------------------------------------

    def _hint_too_long(self, error: APIError, hint: float) -> None:
        error.message = (
            f"{error.message} (Retry-After of {hint:g} s exceeds "
            f"max_retry_after={self.max_retry_after:g} s; not retrying: raise "
            "max_retry_after to wait that long)"
        )
        error.args = (error.message,)

    def _budget_spent(self, error: APIError) -> None:
        error.retry_budget_exhausted = True
        error.message = (
            f"{error.message} (retry budget exhausted: retries across this client's calls "
            "are at their limit, so this call was not retried)"
        )
        error.args = (error.message,)

    def _check_deadline(
        self, request: Request, delay: float, error: APIError, spent: float
    ) -> None:
        deadline_at = request.deadline_at
        if deadline_at is None:
            return
        now = self._monotonic() + spent  # (``spent``: see `__call__`)
        if now + delay < deadline_at:
            return
        seconds = request.options.deadline
        shown = f"{seconds:g} s" if isinstance(seconds, float) else "the call's deadline"
        # (Time is up already when the attempt itself ran into the deadline.)
        when = (
            "passed during the last attempt"
            if now >= deadline_at
            else f"would pass during the {delay:.3g} s wait before retry {error.retries_taken + 1}"
        )
        timeout = APITimeoutError(
            f"Deadline of {shown} {when}; not retrying (raise deadline= to allow it). "
            f"Last attempt: {error.message}",
            request=error.request,
        )
        timeout.retries_taken = error.retries_taken
        raise timeout from error

    async def _report(
        self,
        error: APIError,
        attempt: int,
        delay: float,
        source: Literal["retry-after", "backoff"],
        request: Request,
        listener: Callable[[RetryEvent], object] | None,
    ) -> None:
        status = error.status_code if isinstance(error, APIStatusError) else None
        event = RetryEvent(
            attempt=attempt,
            reason=f"status {status}" if status is not None else type(error).__name__,
            status_code=status,
            delay=delay,
            delay_source=source,
            error=error,
            request=request,
        )
        if listener is not None:
            listener(event)
        if self.on_retry is not None:
            # The error is the application's to log: a credential the server echoed
            # back (the token of an ``auth=``, added below, included) is hidden first,
            # as it is in the error a call raises.
            secrets = credentials_sent(request, error.request)
            if secrets:
                hide_secrets(error, secrets)
            result = self.on_retry(event)
            if inspect.isawaitable(result):
                await result

    def __repr__(self) -> str:
        return (
            f"RetryMiddleware(max_retries={self.max_retries}, "
            f"max_retry_after={self.max_retry_after:g}, initial_delay={self.initial_delay:g}, "
            f"max_delay={self.max_delay:g}, jitter={self.jitter:g})"
        )
