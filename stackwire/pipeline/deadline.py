"""The call's deadline as the stages below ``timeout`` see it.

``request.deadline_at`` is the time by which the call must be over, on
`Clocks.of(request).monotonic`. A stage that cuts a wait to what is left of it (the
transport, a body read) tells, when that wait times out, whether the deadline is what
ended it (`deadline_passed`), and then raises `deadline_error`, which names it.

>>> from yarl import URL
>>> from stackwire.pipeline.request import Request
>>> deadline_passed(Request(method="GET", url=URL("http://api.test/")))
False
"""

from __future__ import annotations

from ..errors import APITimeoutError
from .clocks import Clocks
from .request import Request, request_line

__all__ = ["CLOCK_SLACK", "deadline_error", "deadline_passed"]

# A timer may fire this much before its due time; a timeout this close to the
# deadline is the deadline's.
CLOCK_SLACK = 0.001


def deadline_passed(request: Request) -> bool:
    """Whether ``request`` has a deadline and it has passed (within `CLOCK_SLACK`)."""
    deadline_at = request.deadline_at
    return deadline_at is not None and Clocks.of(request).monotonic() >= deadline_at - CLOCK_SLACK


def deadline_error(request: Request, when: str) -> APITimeoutError:
    """The error for the deadline passed ``when`` (``"before its response came"``)."""
    seconds = request.options.deadline
    shown = f"of {seconds:g} s " if isinstance(seconds, (int, float)) else ""
    return APITimeoutError(
        f"Deadline {shown}passed for {request_line(request)} {when} "
        "(raise deadline= or pass None to wait longer)",
        request=request,
    )
