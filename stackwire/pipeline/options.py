"""Per-request options and the `Timeout` value.

Every option defaults to `NOT_GIVEN`, which means "the value the client (that is,
the middleware owning the option) was configured with". ``None`` means "off".
Middlewares resolve the options they own and pass on a request whose options say
the resolved value, so the stages below them see what will really happen.
"""

from __future__ import annotations

from typing import Any, Literal

import msgspec

from .._types import NOT_GIVEN, NotGiven

__all__ = ["RequestOptions", "Timeout"]


def _positive_seconds(value: object) -> bool:
    """A number of seconds > 0 (infinity is no limit) that fits in a float."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    try:
        return float(value) > 0
    except OverflowError:  # an int too large for a float: no timer can be set for it
        return False


class Timeout(msgspec.Struct, frozen=True, kw_only=True):
    """Time limits of one attempt, in seconds; ``None`` disables a limit.

    - ``total``: the whole attempt, from asking for a connection to the last body byte
      (for a stream, until the response headers, and then each gap between chunks
      when ``read`` is ``None``: a lively stream may outlast it, a silent one may not).
    - ``connect``: getting a connection, including waiting for a free one in the pool.
    - ``read``: the longest gap between two reads from the socket.

    >>> from stackwire import Timeout
    >>> Timeout(total=30, connect=2)
    Timeout(total=30, connect=2, read=None)
    """

    total: float | None = 600.0
    connect: float | None = 5.0
    read: float | None = None

    def __post_init__(self) -> None:
        for name in ("total", "connect", "read"):
            value = getattr(self, name)
            if value is not None and not _positive_seconds(value):
                from ..errors import InvalidRequestError

                raise InvalidRequestError(
                    f"Timeout.{name} must be a positive number of seconds or None, "
                    f"got {value!r:.100}"
                )

    @classmethod
    def coerce(cls, value: Timeout | float | None) -> Timeout | None:
        """A `Timeout` from what a caller may pass: a float sets ``total``.

        >>> Timeout.coerce(5.0)
        Timeout(total=5.0, connect=5.0, read=None)
        """
        if value is None or isinstance(value, Timeout):
            return value
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return cls(total=float(value) if _positive_seconds(value) else value)
        from ..errors import InvalidRequestError

        raise InvalidRequestError(
            f"timeout must be a number of seconds, a Timeout or None, got {type(value).__name__}"
        )


DEFAULT_TIMEOUT = Timeout()


class RequestOptions(msgspec.Struct, frozen=True, kw_only=True):
    """The typed options of one call; `NOT_GIVEN` means "the client's value", ``None``
    "off" (no limit, no retries, no idempotency key, no redirects followed).

    ``cast_to`` is what the ``decode`` middleware turns a 2xx body into;
    ``stream`` asks ``decode`` for a typed stream instead of reading the body;
    ``raw_response`` asks for the `Response` itself (parsed on ``await parse()``).
    """

    cast_to: Any = NOT_GIVEN
    stream: bool = False
    raw_response: bool = False
    timeout: Timeout | float | NotGiven | None = NOT_GIVEN
    deadline: float | NotGiven | None = NOT_GIVEN
    max_retries: int | NotGiven | None = NOT_GIVEN
    idempotency_key: str | NotGiven | None = NOT_GIVEN
    follow_redirects: bool | NotGiven | None = NOT_GIVEN
    max_response_bytes: int | NotGiven | None = NOT_GIVEN
    stream_end_event: str | None = None
    stream_format: Literal["sse", "jsonl"] | None = None
