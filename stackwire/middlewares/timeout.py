"""The ``timeout`` middleware: the per-attempt `Timeout` and the call's deadline.

What it does: resolves the request's ``timeout`` option (left out: the client's; a
float: ``Timeout(total=float)``; ``None``: no limits) into a `Timeout` the transport
applies to each attempt, and, when a ``deadline`` is set (client or request), stamps
the request with ``deadline_at``: the monotonic time by which the whole call must be
over, attempts and backoff sleeps included.

Where it sits: above ``retry``, so the deadline is fixed once per call and every
attempt (and every sleep between them) counts against it.

Defaults: ``Timeout(total=600, connect=5)`` per attempt; no deadline.

Retries and timeouts: a timed-out attempt raises `APITimeoutError`, which ``retry``
retries; ``retry`` never starts a sleep that would pass the deadline, and the
transport shortens an attempt's ``total`` to what is left of it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import msgspec

from .._types import NOT_GIVEN, NotGiven
from ..errors import InvalidRequestError
from ..pipeline.middleware import CallNext
from ..pipeline.options import DEFAULT_TIMEOUT, Timeout
from ..pipeline.request import Request
from ..pipeline.response import Response

__all__ = ["TimeoutMiddleware", "check_deadline"]


def check_deadline(deadline: float | None) -> float | None:
    """A valid deadline in seconds, or ``None``."""
    if deadline is None:
        return None
    if isinstance(deadline, bool) or not isinstance(deadline, (int, float)) or not deadline > 0:
        raise InvalidRequestError(
            f"deadline must be a positive number of seconds or None, got {deadline!r}"
        )
    return float(deadline)


class TimeoutMiddleware:
    """Resolves the attempt timeout and the call deadline; see the module docs."""

    name = "timeout"

    def __init__(
        self,
        timeout: Timeout | float | NotGiven | None = NOT_GIVEN,
        *,
        deadline: float | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.timeout = DEFAULT_TIMEOUT if isinstance(timeout, NotGiven) else Timeout.coerce(timeout)
        self.deadline = check_deadline(deadline)
        self._monotonic = monotonic

    async def __call__(self, request: Request, call_next: CallNext) -> Response[Any]:
        options = request.options
        timeout = options.timeout
        if isinstance(timeout, NotGiven):
            resolved: Timeout | None = self.timeout
        else:
            resolved = Timeout.coerce(timeout)
        deadline = options.deadline
        seconds = self.deadline if isinstance(deadline, NotGiven) else check_deadline(deadline)
        if resolved is not timeout or seconds is not None:
            changes: dict[str, Any] = {
                "options": msgspec.structs.replace(options, timeout=resolved, deadline=seconds)
            }
            if seconds is not None:
                changes["deadline_at"] = self._monotonic() + seconds
            request = request.replace(**changes)
        return await call_next(request)

    def __repr__(self) -> str:
        return f"TimeoutMiddleware(timeout={self.timeout!r}, deadline={self.deadline!r})"
