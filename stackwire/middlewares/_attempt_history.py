"""The attempt history ``retry`` keeps of every call, and its INFO line per retry.

What it saves: a call that succeeds at once pays one `Attempt` (a small frozen
Struct) and a tuple; the URL's redaction is remembered for the URL object of the
call before (`redact_url`), which most calls of a client share.
"""

from __future__ import annotations

from typing import Any

from .._http.redaction import redact_url
from .._logging import logger
from ..errors import APIError, APIStatusError
from ..pipeline.attempts import NO_TIMINGS, Attempt, Timings, attached_timing_record
from ..pipeline.request import Request
from ..pipeline.response import Response

__all__ = ["attempt_record", "failed_attempts", "log_retry", "succeeded_attempts"]


def _error_timings(error: APIError) -> Timings:
    if isinstance(error, APIStatusError):
        return error.response.timings
    record = attached_timing_record(error)
    return NO_TIMINGS if record is None else record.timings()


def attempt_record(
    request: Request, error: APIError, started: float, ended: float, delay_after: float | None
) -> Attempt:
    """The `Attempt` of ``request`` that ended with ``error``."""
    return Attempt(
        number=request.attempt,
        method=request.method,
        url=redact_url(request.url),
        status_code=error.status_code if isinstance(error, APIStatusError) else None,
        error=type(error).__name__,
        started=started,
        duration=ended - started,
        timings=_error_timings(error),
        delay_after=delay_after,
    )


def failed_attempts(
    history: list[Attempt],
    request: Request,
    error: APIError,
    started: float,
    ended: float,
    delay_after: float | None,
) -> tuple[Attempt, ...]:
    """The attempts of a call that ends with ``error``, its last attempt's."""
    return (*history, attempt_record(request, error, started, ended, delay_after))


def succeeded_attempts(
    history: list[Attempt], request: Request, response: Response[Any], started: float, ended: float
) -> tuple[Attempt, ...]:
    """The attempts of a call that ends with ``response``."""
    last = Attempt(
        number=request.attempt,
        method=request.method,
        url=redact_url(request.url),
        status_code=response.status_code,
        error=None,
        started=started,
        duration=ended - started,
        timings=response.timings,
        delay_after=None,
    )
    return (*history, last) if history else (last,)


def log_retry(request: Request, error: APIError, delay: float, source: str) -> None:
    """One INFO line for a retry decision, just before its sleep."""
    reason = (
        f"status {error.status_code}" if isinstance(error, APIStatusError) else type(error).__name__
    )
    logger.info(
        "retrying %s %s after attempt %d failed (%s): sleeping %.3f s (%s)",
        request.method,
        redact_url(request.url),
        request.attempt,
        reason,
        delay,
        source,
    )
