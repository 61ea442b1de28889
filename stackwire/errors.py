"""Every error stackwire raises.

```
StackwireError
├── APIError                        message, request, body
│   ├── APIStatusError              response, status_code, request_id, body
│   │   ├── BadRequestError               400
│   │   ├── AuthenticationError           401
│   │   ├── PermissionDeniedError         403
│   │   ├── NotFoundError                 404
│   │   ├── ConflictError                 409
│   │   ├── RequestTooLargeError          413
│   │   ├── UnprocessableEntityError      422
│   │   ├── RateLimitError                429
│   │   └── InternalServerError           >= 500
│   │       └── ServiceUnavailableError   503
│   ├── APIConnectionError          no complete response (refused, reset, malformed
│   │   │                           HTTP from the server, truncated body)
│   │   ├── APITimeoutError
│   │   └── StateStoreError         a shared state store (Redis) could not be reached
│   │                               before the call was sent; never retried
│   ├── APIResponseValidationError  body is not valid JSON / does not match cast_to
│   ├── RedirectError               a redirect that cannot be followed (too many
│   │                               hops, a loop, a bad Location, a spent body)
│   ├── ResponseTooLargeError       a size cap was passed
│   ├── StreamError                 an error event inside a stream, or a stream that
│   │   │                           ended before its terminal event
│   │   └── IncompleteStreamError   the connection broke before the terminal event
│   │                               (also an APIConnectionError)
│   ├── RateLimitExceededError      refused by a resilience part before any I/O;
│   ├── ConcurrencyLimitError       never retried (see `stackwire.resilience`)
│   ├── CircuitOpenError
│   └── AuthError                   a token could not be obtained; never retried
├── InvalidRequestError (ValueError)  bad caller input, raised before any I/O
├── ClientClosedError (RuntimeError)  the client was used after close()
├── BlockingCallInEventLoopError (RuntimeError)  a blocking `Client` call made on
│                                                the client's own loop (a middleware)
└── ResponseConsumedError (RuntimeError)  a streamed body was read after being
                                          iterated or closed (it is not kept)
```

Every failure a user can see is one of these (or ``asyncio.CancelledError``,
untouched), with the underlying exception as ``__cause__``.

Every `APIError` has ``retries_taken``: how many retries the call made before it
raised (0 when the first attempt failed for good); ``attempts``: the call's
attempt history (`stackwire.Attempt`, one per attempt, this failure's last); and
``retry_budget_exhausted``: ``True`` when the client's retry budget stopped a retry
it would otherwise have had.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    # The one import loop of the package, for annotations only (as httpx does): the
    # pipeline raises these errors, and they carry its Request, Response and Attempts. Nothing
    # is imported at run time.
    from .pipeline.attempts import Attempt
    from .pipeline.request import Request
    from .pipeline.response import Response

__all__ = [
    "APIConnectionError",
    "APIError",
    "APIResponseValidationError",
    "APIStatusError",
    "APITimeoutError",
    "AuthError",
    "AuthenticationError",
    "BadRequestError",
    "BlockingCallInEventLoopError",
    "CircuitOpenError",
    "ClientClosedError",
    "ConcurrencyLimitError",
    "ConflictError",
    "IncompleteStreamError",
    "InternalServerError",
    "InvalidRequestError",
    "NotFoundError",
    "PermissionDeniedError",
    "RateLimitError",
    "RateLimitExceededError",
    "RedirectError",
    "RequestTooLargeError",
    "ResponseConsumedError",
    "ResponseTooLargeError",
    "ServiceUnavailableError",
    "StackwireError",
    "StateStoreError",
    "StreamError",
    "UnprocessableEntityError",
    "status_error_class",
]


class StackwireError(Exception):
    """The base of every error stackwire raises."""


class APIError(StackwireError):
    """A call to the API failed.

    ``request`` is the request of the attempt that failed (``None`` only when no
    request was built), ``body`` the decoded error body when there is one.
    """

    message: str
    request: Request | None
    body: object | None
    retries_taken: int
    retry_budget_exhausted: bool
    attempts: tuple[Attempt, ...]

    def __init__(
        self, message: str, *, request: Request | None = None, body: object | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.request = request
        self.body = body
        self.retries_taken = 0
        # Set by the retry middleware when the client's retry budget (retry_budget=)
        # stopped a retry this error would otherwise have had.
        self.retry_budget_exhausted = False
        self.attempts = ()

    def __str__(self) -> str:
        return self.message


class APIStatusError(APIError):
    """The API answered with a status >= 400 (or an unfollowed 3xx).

    ``response`` is the (fully read, released) response; ``body`` is its JSON value
    when the body is JSON, else its text.
    """

    response: Response[Any]
    status_code: int
    request_id: str | None
    retry_after: float | None

    def __init__(self, message: str, *, response: Response[Any], body: object | None) -> None:
        super().__init__(message, request=response.request, body=body)
        self.response = response
        self.status_code = response.status_code
        self.request_id = response.request_id
        # Set by the retry middleware when the response carried a usable wait hint
        # (``retry-after-ms`` / ``Retry-After``), in seconds: one longer than
        # ``max_retry_after``, or one the call ended without waiting for.
        self.retry_after = None


class BadRequestError(APIStatusError):
    """HTTP 400."""


class AuthenticationError(APIStatusError):
    """HTTP 401."""


class PermissionDeniedError(APIStatusError):
    """HTTP 403."""


class NotFoundError(APIStatusError):
    """HTTP 404."""


class ConflictError(APIStatusError):
    """HTTP 409."""


class RequestTooLargeError(APIStatusError):
    """HTTP 413: the server refused the size of the request."""


class UnprocessableEntityError(APIStatusError):
    """HTTP 422."""


class RateLimitError(APIStatusError):
    """HTTP 429."""


class InternalServerError(APIStatusError):
    """Any HTTP status >= 500."""


class ServiceUnavailableError(InternalServerError):
    """HTTP 503."""


class APIConnectionError(APIError):
    """No complete response: refused, reset, malformed HTTP, a truncated body."""

    def __init__(
        self, message: str = "Connection error.", *, request: Request | None = None
    ) -> None:
        super().__init__(message, request=request)


class APITimeoutError(APIConnectionError):
    """An attempt timed out, or the call's deadline passed."""

    def __init__(
        self, message: str = "Request timed out.", *, request: Request | None = None
    ) -> None:
        super().__init__(message, request=request)


class StateStoreError(APIConnectionError):
    """A shared state store (`RedisStateStore` with ``on_error="raise"``) did not answer
    in time, so a resilience part could not decide whether the attempt may go: it was
    not sent (the API was not contacted). Never retried; ``__cause__`` is the store's
    failure."""

    def __init__(
        self,
        message: str = "The shared state store could not be reached.",
        *,
        request: Request | None = None,
    ) -> None:
        super().__init__(message, request=request)


class APIResponseValidationError(APIError):
    """The body is not valid JSON, or does not match ``cast_to``. Never retried.

    ``status_code`` is the response's status; ``body`` holds at most 1 KiB of the raw
    body (bytes), enough to see what came back without keeping a large payload alive.
    """

    status_code: int | None

    def __init__(
        self,
        message: str,
        *,
        request: Request | None = None,
        body: object | None = None,
        status_code: int | None = None,
    ) -> None:
        super().__init__(message, request=request, body=body)
        self.status_code = status_code


class RedirectError(APIError):
    """A redirect that cannot be followed: more than ``max_redirects`` hops, a loop
    (the same method and URL twice), a ``Location`` that is not an http(s) URL, or a
    hop that keeps the method (307, 308, a 301 not after a POST) whose request body was
    a stream already sent. Never retried.

    ``response`` is the redirect response (read and released), ``location`` its
    ``Location`` header.
    """

    response: Response[Any]
    location: str

    def __init__(self, message: str, *, response: Response[Any], location: str) -> None:
        super().__init__(message, request=response.request)
        self.response = response
        self.location = location


class ResponseTooLargeError(APIError):
    """A response body or a streamed event passed its size cap. Never retried.

    The connection it came on is closed, not reused. ``status_code`` is the response's
    status, when the cap was passed by a buffered body.
    """

    limit: int
    status_code: int | None

    def __init__(
        self,
        message: str,
        *,
        limit: int,
        request: Request | None = None,
        status_code: int | None = None,
    ) -> None:
        super().__init__(message, request=request)
        self.limit = limit
        self.status_code = status_code


class StreamError(APIError):
    """An ``error`` event inside a stream (``body`` is its decoded data), or a stream
    that ended before its terminal event."""


class IncompleteStreamError(StreamError, APIConnectionError):
    """The connection of a stream with a terminal event (``stream_end_event=``) broke
    (reset, truncated body) before that event came: the answer is incomplete.

    It is both a `StreamError` (the stream ended before its terminal event) and an
    `APIConnectionError` (no complete response), so code that handles either one
    handles it; ``__cause__`` is the connection error itself.
    """


class _ResilienceRefusal(APIError):
    """Base of the refusals of a resilience part: raised before any I/O, never retried.

    ``retry_after`` is how many seconds until a new call could get through, when the
    part knows (``None`` otherwise).
    """

    retry_after: float | None

    def __init__(
        self, message: str, *, request: Request | None = None, retry_after: float | None = None
    ) -> None:
        super().__init__(message, request=request)
        self.retry_after = retry_after


class RateLimitExceededError(_ResilienceRefusal):
    """A rate limit would make this call wait longer than its ``max_wait``."""


class ConcurrencyLimitError(_ResilienceRefusal):
    """No slot for another attempt in flight came free within ``max_wait``."""


class CircuitOpenError(_ResilienceRefusal):
    """The circuit breaker for this origin is open: the attempt fails at once."""


class InvalidRequestError(StackwireError, ValueError):
    """The caller's input cannot be sent; raised before any I/O."""


class BlockingCallInEventLoopError(StackwireError, RuntimeError):
    """A blocking `Client` method was called on the client's own event loop thread.

    That happens when a middleware (or another callback the client runs) calls the
    blocking client: the call would wait for its own loop forever. A middleware gets
    its response from ``call_next``. (From any other thread, one running an event
    loop included, the blocking client works; it stalls that loop while it waits.)
    """


class ClientClosedError(StackwireError, RuntimeError):
    """The client was used after ``close()``, or after the event loop its connections
    belong to had closed (an `AsyncClient` made once and used under several
    ``asyncio.run()`` calls)."""


class ResponseConsumedError(StackwireError, RuntimeError):
    """The body of a streamed response was already iterated, or the response was
    closed before its body was read, so it cannot be read or iterated again (a
    streamed body is not kept); or ``content`` was asked for before ``await read()``."""


_STATUS_ERRORS: dict[int, type[APIStatusError]] = {
    400: BadRequestError,
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    409: ConflictError,
    413: RequestTooLargeError,
    422: UnprocessableEntityError,
    429: RateLimitError,
    503: ServiceUnavailableError,
}


def status_error_class(status: int) -> type[APIStatusError]:
    """The error class for an HTTP status: its own class, `InternalServerError` for
    any other status >= 500, else `APIStatusError`.

    >>> status_error_class(404).__name__
    'NotFoundError'
    >>> status_error_class(502).__name__
    'InternalServerError'
    """
    cls = _STATUS_ERRORS.get(status)
    if cls is not None:
        return cls
    return InternalServerError if status >= 500 else APIStatusError


class AuthError(APIError):
    """A credential could not be obtained: a token ``fetch`` or a token endpoint failed.

    Never retried by ``retry`` (the API itself was not contacted, and the provider is
    asked again on the next call, not in a loop). The original failure is the
    ``__cause__``; the message never contains a token, password or secret.
    """
