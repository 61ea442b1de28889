"""The connection protocol of the default transport: aiohttp's, with a body that
breaks after its headers failing the reader instead of leaving it waiting.

aiohttp's compiled HTTP parser (the one it uses when its C extension is built, the
usual install) raises for malformed framing found in the body (a chunk size that is
not hex, a negative one) without handing the error to the body's stream. When the
headers arrived in an earlier read than the broken bytes, aiohttp closes the socket
but its response body is never failed nor ended: whoever reads it waits, past any
``sock_read`` limit (dropped with the connection), until the attempt's ``total``;
with ``total=None``, for ever. (aiohttp's pure-Python parser does fail the body.)

`ApiResponseHandler` fails the body still being read when the parser fails the
connection, with `MalformedBodyError` (a ``ClientPayloadError``, so the transport
reports it as an `APIConnectionError`: malformed HTTP, DESIGN section 4). It costs
nothing per request: the one method it overrides runs only when a connection fails.
A borrowed session keeps its own connector's protocol.

`fail_bodies_in_flight` does the same for the bodies still being read when the
transport closes its own session (``client.close()`` with a stream open): each fails
with `ClosedMidBodyError`, which the response reports as `ClientClosedError`, as any
use of a closed client is. Without it, aiohttp left the reader a bare
``RuntimeError("Connection closed.")``, an `APIConnectionError` a caller might retry.
"""

from __future__ import annotations

import aiohttp
from aiohttp.client_proto import ResponseHandler
from aiohttp.helpers import _EXC_SENTINEL
from aiohttp.http_exceptions import HttpProcessingError

__all__ = [
    "ApiResponseHandler",
    "ClosedMidBodyError",
    "MalformedBodyError",
    "fail_bodies_in_flight",
]


class MalformedBodyError(aiohttp.ClientPayloadError):
    """The server broke the framing of a response body after its headers."""


class ApiResponseHandler(ResponseHandler):
    """aiohttp's protocol, failing an unfinished body when the connection fails."""

    def set_exception(self, exc: BaseException, exc_cause: BaseException = _EXC_SENTINEL) -> None:
        payload = self._payload
        if (
            isinstance(exc, HttpProcessingError)  # the parser's (a timeout fails the body itself)
            and payload is not None
            and not payload.is_eof()
            and payload.exception() is None
        ):
            cause = exc if exc_cause is _EXC_SENTINEL else exc_cause
            detail = cause.message if isinstance(cause, HttpProcessingError) else str(cause)
            failure = MalformedBodyError(f"the body's framing is broken: {detail}")
            failure.__cause__ = cause
            payload.set_exception(failure, cause)
        super().set_exception(exc, exc_cause)


class ClosedMidBodyError(aiohttp.ClientConnectionError):
    """The transport closed its session while this body was still being read."""


def fail_bodies_in_flight(session: aiohttp.ClientSession) -> None:
    """Fail every body still being read on ``session``'s connections (see the module
    docs); called just before the transport closes the session it owns."""
    for protocol in getattr(session.connector, "_acquired", ()):
        payload = getattr(protocol, "_payload", None)
        if payload is not None and not payload.is_eof() and payload.exception() is None:
            payload.set_exception(
                ClosedMidBodyError("the client was closed while this body was being read")
            )
