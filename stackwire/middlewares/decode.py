"""The ``decode`` middleware: from an HTTP response to a typed value or error.

What it does: for a status >= 300 (a redirect that was not followed, or an error)
it reads the body and raises the `APIStatusError` subclass for the status, with
``body`` the JSON value when the body is JSON and its text otherwise, and the message
``Error code: <status> - <body>``. For a 2xx it reads the body (capped at
``max_response_bytes``) and decodes it into the call's ``cast_to`` with msgspec; a
body that does not match raises `APIResponseValidationError`. In stream mode it
checks the status the same way, then hands back a typed stream over the unread body.

Where it sits: just below ``retry``, so the body is read inside the attempt: a
connection dropped mid-body is an attempt failure that ``retry`` can retry, and
error statuses reach ``retry`` as typed errors carrying their response.

Defaults: ``max_response_bytes`` 64 MiB (after decompression); lax decoding unless
the client is ``strict``.

Retries and timeouts: the body read counts against the attempt's timeout;
validation and size-cap failures are never retried.
"""

from __future__ import annotations

from typing import Any

import msgspec

from .._types import NotGiven
from ..errors import APIStatusError, InvalidRequestError, StackwireError, status_error_class
from ..models.decoding import transcoded_json
from ..models.sse import DEFAULT_MAX_EVENT_BYTES
from ..pipeline.attempts import attach_timing_record, attached_timings
from ..pipeline.middleware import CallNext, not_a_response
from ..pipeline.request import Request
from ..pipeline.response import Response, is_json_type
from ..pipeline.stream import make_stream

__all__ = ["DecodeMiddleware", "status_error"]

_MESSAGE_BODY_LIMIT = 2000


def _error_body(content: bytes, text: str, charset: str | None, json_type: bool) -> object:
    # The body as sent, then (a byte order mark, a declared charset) as UTF-8. Any JSON
    # value when the Content-Type says JSON (a bare string is a message); else only an
    # object or array, so that a text "404" stays text.
    for data in (content, transcoded_json(content, charset)):
        if data is not None and (json_type or data.lstrip()[:1] in (b"{", b"[")):
            try:
                return msgspec.json.decode(data)
            except (msgspec.DecodeError, RecursionError, UnicodeDecodeError):
                pass
    return text


def status_error(response: Response[Any]) -> APIStatusError:
    """The typed error for a response whose body has been read."""
    json_type = is_json_type(response.headers.get("Content-Type"))
    body = _error_body(response.content, response.text, response.charset, json_type)
    shown = body if isinstance(body, str) else msgspec.json.encode(body).decode()
    if len(shown) > _MESSAGE_BODY_LIMIT:
        shown = shown[:_MESSAGE_BODY_LIMIT] + "..."
    message = f"Error code: {response.status_code}" + (f" - {shown}" if shown else "")
    return status_error_class(response.status_code)(message, response=response, body=body)


DEFAULT_MAX_RESPONSE_BYTES = 64 * 2**20
"""The default cap on a response body (after decompression): 64 MiB."""


def check_size(name: str, value: object) -> None:
    """A byte cap is a positive int or ``None``; else `InvalidRequestError`."""
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value <= 0):
        raise InvalidRequestError(f"{name} must be a positive int (bytes) or None, got {value!r}")


class DecodeMiddleware:
    """Reads and decodes the body, or raises the status error; see the module docs."""

    name = "decode"

    def __init__(
        self,
        *,
        max_response_bytes: int | None = DEFAULT_MAX_RESPONSE_BYTES,
        max_event_bytes: int | None = DEFAULT_MAX_EVENT_BYTES,
        strict: bool = False,
    ) -> None:
        check_size("max_response_bytes", max_response_bytes)
        check_size("max_event_bytes", max_event_bytes)
        if not isinstance(strict, bool):
            raise InvalidRequestError(f"strict must be True or False, got {strict!r}")
        self.max_response_bytes = max_response_bytes
        self.max_event_bytes = max_event_bytes
        self.strict = strict

    async def __call__(self, request: Request, call_next: CallNext) -> Response[Any]:
        response = await call_next(request)
        try:
            options = response.request.options
        except AttributeError:
            if isinstance(response, Response):
                raise
            raise not_a_response(response) from None
        limit = options.max_response_bytes
        if isinstance(limit, NotGiven):
            limit = self.max_response_bytes
        try:
            # What ``parse()`` decodes into (a Response arrives from the transport
            # knowing nothing of ``cast_to``).
            response.bind(options.cast_to, strict=self.strict)
            if response.status_code >= 300:
                await response.read(max_bytes=limit)
                raise status_error(response)
            if options.stream:
                # The cap on a body read whole later (``with_streaming_response``'s
                # read() and parse()); bound here only, off the path of buffered calls.
                response.bind(options.cast_to, strict=self.strict, max_bytes=limit)
                if not options.raw_response:
                    response.set_parsed(
                        make_stream(
                            response,
                            cast_to=options.cast_to,
                            strict=self.strict,
                            max_event_bytes=self.max_event_bytes,
                            end_event=options.stream_end_event,
                            stream_format=options.stream_format,
                        )
                    )
                return response
            if response.read_now(limit) is None:  # the usual case: no waiting
                await response.read(max_bytes=limit)
            if not options.raw_response:
                response.parse_now()
        except BaseException as error:
            response.close()
            if (
                isinstance(error, StackwireError)
                and not isinstance(error, APIStatusError)  # (its response has them)
                and attached_timings(error) is None
            ):
                # A body read and then refused (not the JSON asked for, not a stream):
                # the attempt's timings, the body's included, for ``attempts``.
                attach_timing_record(error, response.timings)
            raise
        return response

    def __repr__(self) -> str:
        return (
            f"DecodeMiddleware(max_response_bytes={self.max_response_bytes}, strict={self.strict})"
        )
