"""The attempts ``retry`` records of a failing call, and its INFO line per retry.

(A call that succeeds keeps an `AttemptLog`, made into attempts only when read.)
"""

from __future__ import annotations

from .._http.redaction import DEFAULT_QUERY_ALLOWLIST, redact_url
from .._logging import logger
from ..errors import (
    APIError,
    APIResponseValidationError,
    APIStatusError,
    RedirectError,
    ResponseTooLargeError,
)
from ..pipeline.attempts import NO_TIMINGS, Attempt, Timings, attached_timings
from ..pipeline.request import Request

__all__ = ["attempt_record", "failed_attempts", "log_retry"]


def _error_timings(error: APIError) -> Timings:
    # A status error and a redirect that cannot be followed came with a response:
    # the timings of the last physical request are its.
    if isinstance(error, APIStatusError | RedirectError):
        return error.response.timings
    timings = attached_timings(error)
    return NO_TIMINGS if timings is None else timings


def _error_status(error: APIError) -> int | None:
    # A body that did not decode, or passed the size cap, came with a status too, and
    # so did a redirect that cannot be followed (a loop, too many hops, a bad Location).
    if isinstance(error, APIStatusError | APIResponseValidationError | ResponseTooLargeError):
        return error.status_code
    if isinstance(error, RedirectError):
        return error.response.status_code
    return None


def attempt_record(
    request: Request, error: APIError, started: float, ended: float, delay_after: float | None
) -> Attempt:
    """The `Attempt` of ``request`` that ended with ``error``."""
    return Attempt(
        number=request.attempt,
        method=request.method,
        url=redact_url(request.url),
        status_code=_error_status(error),
        error=type(error).__name__,
        started=started,
        duration=ended - started,
        timings=_error_timings(error),
        delay_after=delay_after,
    )


def failed_attempts(
    history: list[Attempt] | None,
    request: Request,
    error: APIError,
    started: float,
    ended: float,
    delay_after: float | None,
) -> tuple[Attempt, ...]:
    """The attempts of a call that ends with ``error``, its last attempt's."""
    last = attempt_record(request, error, started, ended, delay_after)
    return (*history, last) if history else (last,)


def log_retry(request: Request, error: APIError, delay: float, source: str) -> None:
    """One INFO line for a retry decision, just before its sleep."""
    reason = (
        f"status {error.status_code}" if isinstance(error, APIStatusError) else type(error).__name__
    )
    logger.info(
        "retrying %s %s after attempt %d failed (%s): sleeping %.3f s (%s)",
        request.method,
        redact_url(request.url, allowed=DEFAULT_QUERY_ALLOWLIST),
        request.attempt,
        reason,
        delay,
        source,
    )
