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
reports it as an `APIConnectionError`: malformed HTTP, DESIGN section 4).

`fail_bodies_in_flight` does the same for the bodies still being read when the
transport closes its own session (``client.close()`` with a stream open): each fails
with `ClosedMidBodyError`, which the response reports as `ClientClosedError`, as any
use of a closed client is. Without it, aiohttp left the reader a bare
``RuntimeError("Connection closed.")``, an `APIConnectionError` a caller might retry.

`ApiResponseHandler` also reads the answer a server sent before it reset the
connection. A server that
refuses an upload before reading it (a 413, a 401) may answer and close the socket
with the body unread (granian does): the kernel resets the connection, and the
client's next write of the body fails. asyncio then stops reading, with the answer
still in the socket's receive queue, and aiohttp fails the request with the write
error (a broken pipe, an `APIConnectionError` that ``retry`` sends again, the whole
upload each time). httpcore (under httpx) reads the answer after a failed write; so
does `ApiResponseHandler`: when the connection fails while a response's head or
body is still awaited, it reads what the socket still holds (plain TCP only: TLS
records cannot be read past the SSL layer) and hands it to the parser, so the answer
wins over the write error when it is there.

It costs nothing per request: the methods it overrides run only when a connection
fails or closes. A borrowed session keeps its own connector's protocol.
"""

from __future__ import annotations

import os

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


# An answer to a refused upload is a status line, a few headers and a short error body.
_MOST_READ_AFTER_FAILURE = 2**20


class MalformedBodyError(aiohttp.ClientPayloadError):
    """The server broke the framing of a response body after its headers."""


class ApiResponseHandler(ResponseHandler):
    """aiohttp's protocol, failing an unfinished body when the connection fails."""

    def set_exception(self, exc: BaseException, exc_cause: BaseException = _EXC_SENTINEL) -> None:
        if isinstance(exc, OSError):  # (aiohttp's body writer failing: ClientOSError)
            self._read_what_came()
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

    def connection_lost(self, exc: BaseException | None) -> None:
        if isinstance(exc, OSError):  # (the transport's own write failing)
            self._read_what_came()
        super().connection_lost(exc)

    def _read_what_came(self) -> None:
        """Hand the parser what the socket still holds, when the connection failed
        (asyncio has stopped reading) while a response's head or body is awaited."""
        transport = self.transport
        payload = self._payload
        if (
            transport is None
            or not transport.is_closing()
            or self._parser is None
            # Neither a response head awaited nor a body still coming (``_payload`` of
            # a reused connection is the last answer's, whole).
            or (self._waiter is None and (payload is None or payload.is_eof()))
            or transport.get_extra_info("sslcontext") is not None
        ):
            return
        sock = transport.get_extra_info("socket")
        if sock is None:
            return
        left = _MOST_READ_AFTER_FAILURE
        try:
            fileno = sock.fileno()
            while left > 0 and self._parser is not None:
                # (asyncio has removed its reader: these bytes are nobody else's)
                chunk = os.read(fileno, min(left, 2**16))
                if not chunk:
                    return
                left -= len(chunk)
                self.data_received(chunk)
        except OSError:  # nothing more to read (or a reset after the answer)
            return


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
