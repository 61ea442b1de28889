"""The ``retry`` middleware: the pivot of the stack.

What it does: sends the call, and when an attempt fails in a retryable way, waits
and sends it again, up to ``max_retries`` more times. Retryable: connection errors
and timeouts; statuses 408, 409, 429 and >= 500, unless the response says
``x-should-retry: false`` (``true`` makes any status retryable). Never retried:
other statuses, `APIResponseValidationError`, `ResponseTooLargeError`,
`InvalidRequestError`, cancellation, and a body that cannot be sent again. The rule
is the ``should_retry`` argument: replace it to retry, say, a 424.

Delay: ``retry-after-ms``, else ``Retry-After`` (seconds or an HTTP-date) when it is
in (0, ``max_retry_after``] - slept exactly; a longer hint is not waited for: the
call fails at once and the error's ``retry_after`` holds the hint. Otherwise
``0.5 * 2**n`` seconds capped at 8, times a jitter factor in (0.75, 1].

Where it sits: middlewares above run once per call, those below (``decode``, the
client's ``middlewares=``, the transport) once per attempt. Each attempt starts from
the request this middleware received, so nothing an attempt changes leaks into the
next.

Defaults: 2 retries (3 attempts); ``Idempotency-Key`` on every call but GET, HEAD
and OPTIONS (one key per call, the same on every attempt; the caller's key wins);
``X-Retry-Count: <n>`` on every attempt (``Omit`` it per request to leave it out).

Retries and timeouts: each attempt has its own `Timeout`; with a deadline, a sleep
that would pass it is not started, and the call raises `APITimeoutError`.
"""

from __future__ import annotations

import asyncio
import random as _random
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from typing import Any, Literal

import msgspec

from .._types import NotGiven
from ..errors import (
    APIConnectionError,
    APIError,
    APIStatusError,
    APITimeoutError,
    InvalidRequestError,
)
from ..pipeline.body import is_replayable
from ..pipeline.middleware import CallNext
from ..pipeline.request import Request
from ..pipeline.response import Response
from ._retry_delay import backoff_delays, jittered, parse_retry_after, should_retry_status

__all__ = ["RetryEvent", "RetryMiddleware", "check_max_retries", "default_should_retry"]

NON_IDEMPOTENT_EXEMPT = frozenset({"GET", "HEAD", "OPTIONS"})


class RetryEvent(msgspec.Struct, frozen=True, kw_only=True):
    """One decision to retry: what failed, and how long the call now waits.

    ``attempt`` is the number of the attempt that failed (0 for the first);
    ``reason`` is the status (``"status 503"``) or the error type
    (``"APIConnectionError"``); ``delay_source`` says where the delay came from.
    """

    attempt: int
    reason: str
    delay: float
    delay_source: Literal["retry-after", "backoff"]
    error: APIError
    request: Request


def default_should_retry(error: APIError) -> bool:
    """Whether a failed attempt is worth another one (the documented default rule)."""
    if isinstance(error, APIStatusError):
        return should_retry_status(error.status_code, error.response.headers)
    return isinstance(error, APIConnectionError)


def check_max_retries(value: object) -> int:
    """A valid retry budget: an int >= 0."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise InvalidRequestError(
            f"max_retries must be an int >= 0 (0 disables retries), got {value!r}"
        )
    return value


class RetryMiddleware:
    """Retries failed attempts with Retry-After and backoff; see the module docs."""

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
    ) -> None:
        self.max_retries = check_max_retries(max_retries)
        if not max_retry_after >= 0:
            raise InvalidRequestError(f"max_retry_after must be >= 0, got {max_retry_after!r}")
        if not 0 <= jitter < 1:
            raise InvalidRequestError(f"jitter must be in [0, 1), got {jitter!r}")
        if not 0 < initial_delay <= max_delay:
            raise InvalidRequestError(
                f"need 0 < initial_delay <= max_delay, got {initial_delay!r} and {max_delay!r}"
            )
        self.max_retry_after = float(max_retry_after)
        self.initial_delay = float(initial_delay)
        self.max_delay = float(max_delay)
        self.jitter = float(jitter)
        self.idempotency_header = idempotency_header
        self.retry_count_header = retry_count_header
        self.should_retry = should_retry
        self.on_retry = on_retry
        self._sleep = sleep
        self._clock = clock
        self._random = random
        self._monotonic = monotonic

    # -- per call ------------------------------------------------------------------

    def _prepare(self, request: Request) -> Request:
        """Headers every attempt of this call carries: the idempotency key."""
        header = self.idempotency_header
        if header is None or request.method in NON_IDEMPOTENT_EXEMPT:
            return request
        if header.lower() in request.omit_headers or header in request.headers:
            return request
        key = request.options.idempotency_key
        if isinstance(key, NotGiven):
            key = f"stackwire-retry-{uuid.uuid4()}"
        return request.with_headers({header: key})

    def _attempt_request(self, request: Request, attempt: int) -> Request:
        header = self.retry_count_header
        if header is None or header.lower() in request.omit_headers:
            return request.replace(attempt=attempt) if attempt else request
        if header in request.headers:  # the caller set its own value
            return request.replace(attempt=attempt)
        headers = request.with_headers({header: str(attempt)}).headers
        return request.replace(attempt=attempt, headers=headers)

    def delay_for(
        self, error: APIError, schedule: Iterator[float]
    ) -> tuple[float, Literal["retry-after", "backoff"]]:
        """How long to wait after ``error``, and whether the server said so.

        Raises ``error`` (with ``retry_after`` set) when the server asks for more
        than ``max_retry_after``.
        """
        backoff_delay = next(schedule)
        if isinstance(error, APIStatusError):
            hint = parse_retry_after(error.response.headers, self._clock())
            if hint is not None:
                if hint > self.max_retry_after:
                    error.retry_after = hint
                    error.message = (
                        f"{error.message} (Retry-After of {hint:g} s exceeds "
                        f"max_retry_after={self.max_retry_after:g} s; not retrying: raise "
                        "max_retry_after to wait)"
                    )
                    error.args = (error.message,)
                    raise error
                return hint, "retry-after"
        return jittered(backoff_delay, self.jitter, self._random), "backoff"

    async def __call__(self, request: Request, call_next: CallNext) -> Response[Any]:
        max_retries = request.options.max_retries
        if isinstance(max_retries, NotGiven):
            max_retries = self.max_retries
        request = self._prepare(request)
        schedule = backoff_delays(self.initial_delay, self.max_delay)
        attempt = 0
        while True:
            try:
                response = await call_next(self._attempt_request(request, attempt))
            except APIError as error:
                error.retries_taken = attempt
                if (
                    attempt >= max_retries
                    or not is_replayable(request.body)
                    or not self.should_retry(error)
                ):
                    raise
                delay, source = self.delay_for(error, schedule)
                self._check_deadline(request, delay, error)
                if self.on_retry is not None:
                    self.on_retry(
                        RetryEvent(
                            attempt=attempt,
                            reason=_reason(error),
                            delay=delay,
                            delay_source=source,
                            error=error,
                            request=request,
                        )
                    )
                await self._sleep(delay)
                attempt += 1
                continue
            response.retries_taken = attempt
            return response

    def _check_deadline(self, request: Request, delay: float, error: APIError) -> None:
        deadline_at = request.deadline_at
        if deadline_at is None or self._monotonic() + delay < deadline_at:
            return
        seconds = request.options.deadline
        timeout = APITimeoutError(
            f"Deadline of {seconds} s would pass during the {delay:.3g} s wait before retry "
            f"{error.retries_taken + 1}; giving up after: {error.message}",
            request=error.request,
        )
        timeout.retries_taken = error.retries_taken
        raise timeout from error

    def __repr__(self) -> str:
        return f"RetryMiddleware(max_retries={self.max_retries})"


def _reason(error: APIError) -> str:
    if isinstance(error, APIStatusError):
        return f"status {error.status_code}"
    return type(error).__name__
