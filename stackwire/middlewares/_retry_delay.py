"""Pure decisions of the retry middleware: whether to retry, and how long to wait.

Kept free of I/O so that every rule has a cheap, exact unit test.
"""

from __future__ import annotations

import email.utils
import math
from collections.abc import Callable, Iterator, Mapping

import backoff

__all__ = [
    "RETRYABLE_STATUSES",
    "backoff_delays",
    "jittered",
    "parse_retry_after",
    "should_retry_status",
]

# 408 Request Timeout, 409 Conflict (often a lock), 429 Too Many Requests; and >= 500.
RETRYABLE_STATUSES: frozenset[int] = frozenset({408, 409, 429})


def should_retry_status(status: int, headers: Mapping[str, str]) -> bool:
    """The default rule for a response: ``x-should-retry`` if it says exactly
    ``true`` or ``false``, else 408, 409, 429 and every status >= 500.

    >>> should_retry_status(503, {})
    True
    >>> should_retry_status(503, {"x-should-retry": "false"})
    False
    >>> should_retry_status(400, {"x-should-retry": "TRUE"})
    False
    """
    override = headers.get("x-should-retry")
    if override == "true":
        return True
    if override == "false":
        return False
    return status in RETRYABLE_STATUSES or status >= 500


def _seconds(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def parse_retry_after(headers: Mapping[str, str], now: float) -> float | None:
    """The server's requested wait in seconds, or ``None`` when it gave none usable.

    ``retry-after-ms`` (milliseconds) wins over ``Retry-After`` (seconds, fractions
    allowed, or an HTTP-date relative to ``now``, a Unix time). A hint that is not
    positive, not finite, unparseable, in the past or out of range is ``None``.

    >>> parse_retry_after({"retry-after-ms": "1500", "retry-after": "10"}, 0.0)
    1.5
    >>> parse_retry_after({"retry-after": "0.25"}, 0.0)
    0.25
    >>> parse_retry_after({"retry-after": "abc"}, 0.0) is None
    True
    """
    millis = headers.get("retry-after-ms")
    if millis is not None:
        value = _seconds(millis.strip())
        if value is not None and value > 0:
            return value / 1000.0
    text = headers.get("retry-after")
    if text is None:
        return None
    text = text.strip()
    value = _seconds(text)
    if value is None:
        try:
            when = email.utils.parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError, OverflowError):
            return None
        try:
            value = when.timestamp() - now
        except (OverflowError, ValueError, OSError):
            return None
    return value if value > 0 else None


def backoff_delays(initial: float = 0.5, cap: float = 8.0) -> Iterator[float]:
    """The exponential schedule before jitter: ``initial * 2**n``, capped at ``cap``.

    It comes from ``backoff.expo``, which stops growing at the cap (no overflow, for
    any number of retries).

    >>> delays = backoff_delays()
    >>> [next(delays) for _ in range(6)]
    [0.5, 1.0, 2.0, 4.0, 8.0, 8.0]
    """
    wait = backoff.expo(base=2, factor=initial, max_value=cap)
    next(wait)  # backoff's generators start with a priming step
    for delay in wait:
        yield float(delay)


def jittered(delay: float, jitter: float, random: Callable[[], float]) -> float:
    """``delay`` times a factor in ``(1 - jitter, 1]``: ``1 - jitter * random()``.

    >>> jittered(2.0, 0.25, lambda: 0.0)
    2.0
    """
    return delay * (1.0 - jitter * random())
