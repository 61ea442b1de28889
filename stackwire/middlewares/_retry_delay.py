"""Pure decisions of the retry middleware: whether to retry, and how long to wait.

Nothing here does I/O or reads a clock of its own: the caller passes ``now`` and the
random source, so every rule has a cheap, exact unit test.
"""

from __future__ import annotations

import datetime
import email.utils
import itertools
import math
import re
from collections.abc import Callable, Iterator, Mapping

import backoff

__all__ = [
    "RETRYABLE_STATUSES",
    "backoff_delays",
    "jittered",
    "parse_retry_after",
    "should_retry_status",
]

# 408 Request Timeout, 409 Conflict (often a lock held by another request),
# 429 Too Many Requests; every status >= 500 is retryable too.
RETRYABLE_STATUSES: frozenset[int] = frozenset({408, 409, 429})

# A plain decimal number of seconds: "2", "0.25", "-10", ".5". No exponent, no
# underscores, no "inf"/"nan", and ASCII digits only, not "٣" or "３" (all of which
# Python's float() would accept; HTTP's DIGIT is %x30-39).
_DECIMAL = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)")


def should_retry_status(status: int, headers: Mapping[str, str]) -> bool:
    """The default rule for an error response.

    ``x-should-retry: true`` or ``false`` (exactly these values) decides; any other
    value is ignored, and then 408, 409, 429 and every status >= 500 are retried.

    >>> should_retry_status(503, {})
    True
    >>> should_retry_status(503, {"x-should-retry": "false"})
    False
    >>> should_retry_status(400, {"x-should-retry": "true"})
    True
    >>> should_retry_status(400, {"x-should-retry": "TRUE"})
    False
    """
    override = headers.get("x-should-retry")
    if override == "true":
        return True
    if override == "false":
        return False
    return status in RETRYABLE_STATUSES or status >= 500


def _decimal_seconds(text: str) -> float | None:
    if _DECIMAL.fullmatch(text) is None:
        return None
    value = float(text)
    return value if math.isfinite(value) else None


def _http_date_seconds(text: str, now: float) -> float | None:
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when.tzinfo is None:  # "-0000" or no zone at all: HTTP-dates are in UTC
        when = when.replace(tzinfo=datetime.UTC)
    try:
        return when.timestamp() - now
    except (OverflowError, ValueError, OSError):
        return None


def parse_retry_after(headers: Mapping[str, str], now: float) -> float | None:
    """The wait the server asked for, in seconds, or ``None`` when it gave none usable.

    ``retry-after-ms`` (milliseconds) comes first; when it is missing or unusable,
    ``Retry-After`` is read: seconds (fractions allowed) or an HTTP-date, taken
    relative to ``now`` (a Unix time). A hint that is zero, negative, empty, not a
    number or a date, infinite, NaN, in the past or out of range gives ``None``,
    never an exception. A huge but finite hint is returned as is: deciding it is too
    long is the caller's job.

    >>> parse_retry_after({"retry-after-ms": "1500", "retry-after": "10"}, 0.0)
    1.5
    >>> parse_retry_after({"retry-after": "0.25"}, 0.0)
    0.25
    >>> parse_retry_after({"retry-after": "Thu, 01 Jan 1970 00:00:20 GMT"}, 0.0)
    20.0
    >>> parse_retry_after({"retry-after": "inf"}, 0.0) is None
    True
    """
    millis = headers.get("retry-after-ms")
    if millis is not None:
        value = _decimal_seconds(millis.strip())
        if value is not None and value > 0:
            return value / 1000.0
    text = headers.get("retry-after")
    if text is None:
        return None
    text = text.strip()
    value = _decimal_seconds(text)
    if value is None:
        value = _http_date_seconds(text, now)
    if value is None or not value > 0:
        return None
    return value


def backoff_delays(initial: float = 0.5, cap: float = 8.0) -> Iterator[float]:
    """The exponential schedule before jitter: ``initial * 2**n`` for retry ``n``
    (0, 1, 2, ...), never more than ``cap``.

    The values come from ``backoff.expo``, which stops growing once it reaches the
    cap, so the schedule never overflows however many retries are allowed.

    >>> delays = backoff_delays()
    >>> [next(delays) for _ in range(6)]
    [0.5, 1.0, 2.0, 4.0, 8.0, 8.0]
    """
    wait = backoff.expo(base=2, factor=initial, max_value=cap)
    next(wait)  # backoff's wait generators start with a priming step
    try:
        for delay in wait:
            yield float(delay)
    except OverflowError:
        # Only reachable for an initial delay so tiny that 2**n overflows a float
        # before the product reaches the cap; the schedule is at the cap by then.
        pass
    yield from itertools.repeat(float(cap))


def jittered(delay: float, jitter: float, random: Callable[[], float]) -> float:
    """``delay`` times a factor in ``(1 - jitter, 1]``, namely ``1 - jitter * random()``.

    ``random()`` is expected in ``[0, 1)`` (like `random.random`); a value outside
    ``[0, 1]`` from an injected source is clamped, so the delay stays in that range
    whatever the source returns.

    >>> jittered(2.0, 0.25, lambda: 0.0)
    2.0
    >>> jittered(2.0, 0.25, lambda: 0.5)
    1.75
    """
    if not jitter:
        return delay
    draw = min(max(random(), 0.0), 1.0)
    result = delay * (1.0 - jitter * draw)
    lowest = delay * (1.0 - jitter)
    # random() can return 1 - 2**-53, and then rounding lands exactly on the open
    # bound; step to the next float above it so the factor stays in (1 - jitter, 1].
    return result if result > lowest else math.nextafter(lowest, math.inf)
