"""The ``timeout`` middleware: the per-attempt `Timeout` and the call's deadline.

What it does: resolves the request's ``timeout`` option into the `Timeout` the
transport applies to every attempt, and, when a ``deadline`` is set (client or
request), stamps the request with ``deadline_at``: the monotonic time by which the
whole call, attempts and sleeps between them included, must be over.

- ``timeout`` left out: the client's. ``None``: no limits at all. A `Timeout`: used as
  is. A number: the client's `Timeout` with ``total`` set to it (its ``connect`` and
  ``read`` are kept).
- ``deadline`` left out: the client's. ``None``: no deadline. A number of seconds:
  counted from the moment the call passes this middleware, on a monotonic clock.
- The limits of a `Timeout`: ``total`` bounds an attempt from asking for a connection
  to the last byte of the body, its redirect hops included (for ``stream=True``, to
  the final response headers only);
  ``connect`` bounds getting a connection, waiting for a free one in the pool
  included; ``read`` bounds every wait for data from the socket (the headers, then
  each gap between chunks, streams included).

Where it sits: above ``retry``, so the deadline is fixed once per call and every
attempt, and every sleep between them, counts against it.

Defaults: ``Timeout(total=600, connect=5)`` per attempt; no deadline.

Retries and timeouts: a timed-out attempt raises `APITimeoutError`, which ``retry``
retries, each new attempt with its full `Timeout`. ``retry`` never starts a sleep that
would reach the deadline, and the transport cuts an attempt's ``total`` to what is
left of the deadline; either way the error names the deadline.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

from msgspec.structs import replace

from .._types import NOT_GIVEN, NotGiven
from ..errors import InvalidRequestError
from ..pipeline._memo import MISSING, IdentityMemo
from ..pipeline.middleware import RequestRewriter, pure_rewrite
from ..pipeline.options import DEFAULT_TIMEOUT, RequestOptions, Timeout
from ..pipeline.request import Request

__all__ = ["TimeoutMiddleware", "check_deadline", "resolve_timeout"]

_NO_LIMITS = Timeout(total=None, connect=None, read=None)


def check_deadline(deadline: object) -> float | None:
    """A valid deadline: a positive, finite number of seconds, or ``None`` (off)."""
    if deadline is None:
        return None
    if isinstance(deadline, (int, float)) and not isinstance(deadline, bool):
        try:
            if deadline > 0 and math.isfinite(deadline):
                return float(deadline)
        except OverflowError:  # an int too large for a float (``10**400``)
            pass
    raise InvalidRequestError(
        f"deadline must be a positive number of seconds or None, got {deadline!r:.100}"
    )


def resolve_timeout(
    given: Timeout | float | NotGiven | None, client: Timeout | None
) -> Timeout | None:
    """The `Timeout` of a call: ``given`` (the request's option) over ``client``'s.

    >>> resolve_timeout(2.0, Timeout(total=30, connect=1, read=10))
    Timeout(total=2.0, connect=1, read=10)
    >>> resolve_timeout(None, Timeout()) is None
    True
    """
    if isinstance(given, NotGiven):
        return client
    if given is None or isinstance(given, Timeout):
        return given
    coerced = Timeout.coerce(given)  # validates: a positive number of seconds
    assert coerced is not None
    return replace(client or _NO_LIMITS, total=coerced.total)


class TimeoutMiddleware(RequestRewriter):
    """Resolves each call's attempt `Timeout` and its deadline; see the module docs.

    ``timeout`` and ``deadline`` are the client's values; ``monotonic`` is the clock
    the deadline is measured on.
    """

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
        # The client's options, resolved: the same resolution for every call that sets
        # no per-request option, made once.
        self._memo: IdentityMemo[RequestOptions] = IdentityMemo()

    @pure_rewrite
    def rewrite(self, request: Request) -> Request:
        options = request.options
        # Below here the options say what will really happen: the resolved values.
        if options.timeout is NOT_GIVEN and options.deadline is NOT_GIVEN:
            # The client's values: the same resolution every time, made once.
            seconds = self.deadline
            memo = self._memo
            resolved = memo.last_value if options is memo.last_key else memo.get(options)
            if resolved is MISSING:
                resolved = replace(options, timeout=self.timeout, deadline=seconds)
                self._memo.put(options, resolved)
        else:
            deadline = options.deadline
            seconds = self.deadline if isinstance(deadline, NotGiven) else check_deadline(deadline)
            timeout = resolve_timeout(options.timeout, self.timeout)
            resolved = replace(options, timeout=timeout, deadline=seconds)
        if seconds is None:
            return replace(request, options=resolved)
        return replace(request, options=resolved, deadline_at=self._monotonic() + seconds)

    def __repr__(self) -> str:
        return f"TimeoutMiddleware(timeout={self.timeout!r}, deadline={self.deadline!r})"
