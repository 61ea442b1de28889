"""stackwire: typed async HTTP API clients as a stack of composable middlewares.

>>> import stackwire
>>> client = stackwire.AsyncClient("https://api.example.com/v1")
>>> [m.name for m in client.pipeline]
['headers', 'query', 'timeout', 'retry', 'decode', 'redirects']
"""

import contextlib
import sys

import msgspec

from ._types import NOT_GIVEN, NotGiven, Omit, omit
from ._version import __version__
from .auth import Auth, BasicAuth, BearerToken, OAuth2ClientCredentials, Signer, Token
from .client import AsyncClient, ClientOptions
from .client._verbs import CallOptions
from .client.pagination import (
    AsyncPaginator,
    BasePage,
    CursorPage,
    LinkPage,
    OffsetPage,
    PageCallOptions,
    PageInfo,
    PageNumberPage,
)
from .errors import (
    APIConnectionError,
    APIError,
    APIResponseValidationError,
    APIStatusError,
    APITimeoutError,
    AuthenticationError,
    AuthError,
    BadRequestError,
    BlockingCallInEventLoopError,
    CircuitOpenError,
    ClientClosedError,
    ConcurrencyLimitError,
    ConflictError,
    IncompleteStreamError,
    InternalServerError,
    InvalidRequestError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    RateLimitExceededError,
    RedirectError,
    RequestTooLargeError,
    ResponseConsumedError,
    ResponseTooLargeError,
    ServiceUnavailableError,
    StackwireError,
    StateStoreError,
    StreamError,
    UnprocessableEntityError,
)
from .middlewares import (
    DecodeMiddleware,
    HeadersMiddleware,
    QueryMiddleware,
    RedirectMiddleware,
    RetryEvent,
    RetryMiddleware,
    TimeoutMiddleware,
    default_should_retry,
)
from .models import Model, ServerSentEvent, SSEDecoder
from .observability import LoggingMiddleware, OpenTelemetry
from .pipeline import (
    AsyncStream,
    Attempt,
    CallNext,
    Clocks,
    ExtensionKey,
    Middleware,
    NamedMiddleware,
    Pipeline,
    PoolStats,
    Request,
    RequestOptions,
    RequestRewriter,
    Response,
    StreamingBody,
    Timeout,
    Timings,
    Transport,
)
from .resilience import (
    CircuitBreaker,
    ConcurrencyLimit,
    Hedge,
    MemoryStateStore,
    RateLimit,
    RedisStateStore,
    RetryBudget,
    StateStore,
)
from .sync import Client, Stream, SyncCallOptions, SyncPaginator, SyncResponse
from .transports import AiohttpTransport

__all__ = [
    "NOT_GIVEN",
    "APIConnectionError",
    "APIError",
    "APIResponseValidationError",
    "APIStatusError",
    "APITimeoutError",
    "AiohttpTransport",
    "AsyncClient",
    "AsyncPaginator",
    "AsyncStream",
    "Attempt",
    "Auth",
    "AuthError",
    "AuthenticationError",
    "BadRequestError",
    "BasePage",
    "BasicAuth",
    "BearerToken",
    "BlockingCallInEventLoopError",
    "CallNext",
    "CallOptions",
    "CircuitBreaker",
    "CircuitOpenError",
    "Client",
    "ClientClosedError",
    "ClientOptions",
    "Clocks",
    "ConcurrencyLimit",
    "ConcurrencyLimitError",
    "ConflictError",
    "CursorPage",
    "DecodeMiddleware",
    "ExtensionKey",
    "HeadersMiddleware",
    "Hedge",
    "IncompleteStreamError",
    "InternalServerError",
    "InvalidRequestError",
    "LinkPage",
    "LoggingMiddleware",
    "MemoryStateStore",
    "Middleware",
    "Model",
    "NamedMiddleware",
    "NotFoundError",
    "NotGiven",
    "OAuth2ClientCredentials",
    "OffsetPage",
    "Omit",
    "OpenTelemetry",
    "PageCallOptions",
    "PageInfo",
    "PageNumberPage",
    "PermissionDeniedError",
    "Pipeline",
    "PoolStats",
    "QueryMiddleware",
    "RateLimit",
    "RateLimitError",
    "RateLimitExceededError",
    "RedirectError",
    "RedirectMiddleware",
    "RedisStateStore",
    "Request",
    "RequestOptions",
    "RequestRewriter",
    "RequestTooLargeError",
    "Response",
    "ResponseConsumedError",
    "ResponseTooLargeError",
    "RetryBudget",
    "RetryEvent",
    "RetryMiddleware",
    "SSEDecoder",
    "ServerSentEvent",
    "ServiceUnavailableError",
    "Signer",
    "StackwireError",
    "StateStore",
    "StateStoreError",
    "Stream",
    "StreamError",
    "StreamingBody",
    "SyncCallOptions",
    "SyncPaginator",
    "SyncResponse",
    "Timeout",
    "TimeoutMiddleware",
    "Timings",
    "Token",
    "Transport",
    "UnprocessableEntityError",
    "__version__",
    "default_should_retry",
    "omit",
]


def _own_annotations(cls: type) -> None:
    # msgspec reads a Struct's string annotations (``from __future__ import
    # annotations``) in the namespace of ``cls.__module__``; evaluate them here, in
    # the module that wrote them, before ``__module__`` says "stackwire".
    for klass in cls.__mro__:
        module = sys.modules.get(klass.__module__)
        annotations = vars(klass).get("__annotations__")
        if module is None or not klass.__module__.startswith("stackwire.") or not annotations:
            continue
        for name, value in annotations.items():
            if isinstance(value, str):
                # A name imported for type checking only stays a string.
                with contextlib.suppress(NameError):
                    annotations[name] = eval(value, vars(module), dict(vars(klass)))


# Every public class and function reports itself as ``stackwire.X`` (in reprs, in
# tracebacks and in generated docs), wherever it is defined: the folders are tiers of
# the implementation, not import paths users need to know.
for _name in __all__:
    _value = globals()[_name]
    if isinstance(_value, type) and issubclass(_value, msgspec.Struct):
        _own_annotations(_value)
    if isinstance(_value, type) or (callable(_value) and hasattr(_value, "__code__")):
        _value.__module__ = "stackwire"
del _name, _value
