"""stackwire: typed async HTTP API clients as a stack of composable middlewares.

>>> import stackwire
>>> client = stackwire.AsyncClient("https://api.example.com/v1")
>>> [m.name for m in client.pipeline]
['headers', 'query', 'timeout', 'retry', 'decode']
"""

from ._call import CallOptions
from ._types import NOT_GIVEN, NotGiven, Omit, omit
from ._version import __version__
from .client import AsyncClient, ClientOptions
from .errors import (
    APIConnectionError,
    APIError,
    APIResponseValidationError,
    APIStatusError,
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    ClientClosedError,
    ConflictError,
    InternalServerError,
    InvalidRequestError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    RequestTooLargeError,
    ResponseTooLargeError,
    ServiceUnavailableError,
    StackwireError,
    StreamError,
    UnprocessableEntityError,
)
from .middlewares import (
    DecodeMiddleware,
    HeadersMiddleware,
    QueryMiddleware,
    RetryEvent,
    RetryMiddleware,
    TimeoutMiddleware,
)
from .models import AsyncStream, Model, ServerSentEvent, SSEDecoder
from .pipeline import (
    AiohttpTransport,
    CallNext,
    ExtensionKey,
    Middleware,
    NamedMiddleware,
    Pipeline,
    PoolStats,
    Request,
    RequestOptions,
    Response,
    StreamingBody,
    Timeout,
)

__all__ = [
    "NOT_GIVEN",
    "APIConnectionError",
    "APIError",
    "APIResponseValidationError",
    "APIStatusError",
    "APITimeoutError",
    "AiohttpTransport",
    "AsyncClient",
    "AsyncStream",
    "AuthenticationError",
    "BadRequestError",
    "CallNext",
    "CallOptions",
    "ClientClosedError",
    "ClientOptions",
    "ConflictError",
    "DecodeMiddleware",
    "ExtensionKey",
    "HeadersMiddleware",
    "InternalServerError",
    "InvalidRequestError",
    "Middleware",
    "Model",
    "NamedMiddleware",
    "NotFoundError",
    "NotGiven",
    "Omit",
    "PermissionDeniedError",
    "Pipeline",
    "PoolStats",
    "QueryMiddleware",
    "RateLimitError",
    "Request",
    "RequestOptions",
    "RequestTooLargeError",
    "Response",
    "ResponseTooLargeError",
    "RetryEvent",
    "RetryMiddleware",
    "SSEDecoder",
    "ServerSentEvent",
    "ServiceUnavailableError",
    "StackwireError",
    "StreamError",
    "StreamingBody",
    "Timeout",
    "TimeoutMiddleware",
    "UnprocessableEntityError",
    "__version__",
    "omit",
]
