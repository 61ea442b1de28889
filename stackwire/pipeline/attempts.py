"""The attempt history: `Attempt` and `Timings`, and the `TimingRecord` a transport fills.

Every call keeps one `Attempt` per attempt of ``retry`` (a redirect chain is inside
one attempt) in ``Response.attempts`` and ``APIError.attempts``. A transport that
measures the phases of a physical request puts a `TimingRecord` on the `Response`
it returns (``response.timing_record``), or on the error it raises
(`attach_timing_record`); ``retry`` turns the record of each attempt's last physical
request into its `Timings`. A transport that measures nothing leaves all of it
``None``.
"""

from __future__ import annotations

import msgspec

from .._http.redaction import redact_url
from .request import Request

__all__ = [
    "NO_TIMINGS",
    "Attempt",
    "AttemptLog",
    "TimingRecord",
    "Timings",
    "attach_timing_record",
    "attached_timing_record",
    "attached_timings",
]


class Timings(msgspec.Struct, frozen=True, kw_only=True):
    """Where the time of one physical request went, in seconds (``None``: not
    measured by the transport, or the phase did not happen).

    - ``pool_wait``: queued for a free connection of a full pool;
    - ``dns``: resolving the host name when a connection is opened (a cached answer
      takes microseconds; ``None`` for an IP address or a reused connection);
    - ``connect``: opening the connection (TCP, a proxy's tunnel), without the host
      lookup and the TLS handshake (``None`` on a reused connection);
    - ``tls``: the TLS handshake (``None`` for plain HTTP and on a reused connection);
    - ``first_byte``: from having a connection (or from the start of the request,
      when that moment is not known) until the response headers were in;
    - ``body``: from the headers to the last byte of the body (``None`` while the
      body was not read, as for a stream handed back);
    - ``reused_connection``: whether a pooled connection was reused (``None``: unknown).
    """

    pool_wait: float | None = None
    dns: float | None = None
    connect: float | None = None
    tls: float | None = None
    first_byte: float | None = None
    body: float | None = None
    reused_connection: bool | None = None


NO_TIMINGS = Timings()
"""The timings of an attempt whose transport measured nothing (or that sent nothing)."""


class Attempt(msgspec.Struct, frozen=True, kw_only=True):
    """One attempt of a call, as ``retry`` saw it.

    - ``number``: 0 for the first (as ``RetryEvent.attempt`` and ``X-Retry-Count``);
    - ``method``; ``url``: the URL the attempt started with, without userinfo and
      with secret query values (``key``, ``token``, ``sig``, ...) redacted;
    - ``status_code``: the status of the response it ended with, or ``None``;
    - ``error``: the class name of the error it ended with (``"ServiceUnavailableError"``
      for a 503, ``"APIConnectionError"`` for a refused connection), ``None`` if it
      succeeded;
    - ``started``: ``time.monotonic()`` when it started; ``duration``: seconds until it
      ended (the body read, or a stream handed back);
    - ``timings``: its last physical request's `Timings`;
    - ``delay_after``: the seconds slept before the next attempt, or ``None``.
    """

    number: int
    method: str
    url: str
    status_code: int | None
    error: str | None
    started: float
    duration: float
    timings: Timings
    delay_after: float | None


class TimingRecord(msgspec.Struct):
    """The moments of one physical request (``time.monotonic()`` values and
    durations), filled as they happen by the transport (a Struct: made and written
    in C, once per request).

    ``timings(body_end)`` turns them into `Timings`.
    """

    started: float
    pool_wait: float | None = None
    dns: float | None = None
    connect: float | None = None
    tls: float | None = None
    # When the request had its connection (new or reused), if the transport knows.
    connected_at: float | None = None
    headers_at: float | None = None
    reused: bool | None = None

    def timings(self, body_end: float | None = None) -> Timings:
        """The `Timings` so far; ``body_end``: when the last body byte came, if it did."""
        headers_at = self.headers_at
        first_byte = body = None
        if headers_at is not None:
            since = self.connected_at if self.connected_at is not None else self.started
            first_byte = max(headers_at - since, 0.0)
            if body_end is not None:
                body = max(body_end - headers_at, 0.0)
        return Timings(
            pool_wait=self.pool_wait,
            dns=self.dns,
            connect=self.connect,
            tls=self.tls,
            first_byte=first_byte,
            body=body,
            reused_connection=self.reused,
        )


class AttemptLog(msgspec.Struct, frozen=True):
    """What ``retry`` keeps of a call that succeeded: the attempts before the last
    (already `Attempt` values) and the raw facts of the last one, made into the
    ``Response.attempts`` tuple only when someone reads it.

    What it saves: a call read by nobody pays one small Struct instead of an
    `Attempt`, its `Timings` and a redacted URL (measured: 8,000 instructions, about
    2 % of a call).
    """

    before: list[Attempt] | None
    request: Request
    started: float
    ended: float

    def attempts(self, status_code: int, timings: Timings) -> tuple[Attempt, ...]:
        """The whole history, the last attempt ending with ``status_code``."""
        request = self.request
        last = Attempt(
            number=request.attempt,
            method=request.method,
            url=redact_url(request.url),
            status_code=status_code,
            error=None,
            started=self.started,
            duration=self.ended - self.started,
            timings=timings,
            delay_after=None,
        )
        return (*self.before, last) if self.before else (last,)


_RECORD_ATTRIBUTE = "stackwire_timing_record"


def attach_timing_record(error: BaseException, record: TimingRecord | Timings) -> None:
    """Keep ``record`` with ``error``: the timings of a request that got no response
    (or the finished `Timings` of one whose body was read and then refused)."""
    setattr(error, _RECORD_ATTRIBUTE, record)


def attached_timing_record(error: BaseException) -> TimingRecord | None:
    """The record `attach_timing_record` kept with ``error``, if it kept a record."""
    record = getattr(error, _RECORD_ATTRIBUTE, None)
    return record if isinstance(record, TimingRecord) else None


def attached_timings(error: BaseException) -> Timings | None:
    """The `Timings` of what `attach_timing_record` kept with ``error``, if anything."""
    record = getattr(error, _RECORD_ATTRIBUTE, None)
    if isinstance(record, TimingRecord):
        return record.timings()
    return record if isinstance(record, Timings) else None
