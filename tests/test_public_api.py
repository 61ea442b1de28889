"""The public surface: exactly the names DESIGN §2 promises, each reported as ``stackwire.X``."""

from __future__ import annotations

import inspect
import types

import stackwire

# DESIGN §2 (and the sections after it) name these; users and tests import them from
# ``stackwire``. A name leaves this list only with a deprecation in the CHANGELOG.
PROMISED = {
    "AsyncClient",
    "Client",
    "Model",
    "Timeout",
    "NOT_GIVEN",
    "Omit",
    "Request",
    "Response",
    "Pipeline",
    "Middleware",
    "CallNext",
    "RequestRewriter",
    "ExtensionKey",
    "NamedMiddleware",
    "PoolStats",
    "AiohttpTransport",
    "Transport",
    "AsyncStream",
    "Stream",
    "ServerSentEvent",
    "SSEDecoder",
    "AsyncPaginator",
    "SyncPaginator",
    "BasePage",
    "CursorPage",
    "OffsetPage",
    "PageNumberPage",
    "LinkPage",
    "PageInfo",
    "HeadersMiddleware",
    "QueryMiddleware",
    "TimeoutMiddleware",
    "RetryMiddleware",
    "DecodeMiddleware",
    "RedirectMiddleware",
    "RetryEvent",
    "default_should_retry",
    "StackwireError",
    "APIError",
    "APIStatusError",
    "BadRequestError",
    "AuthenticationError",
    "PermissionDeniedError",
    "NotFoundError",
    "ConflictError",
    "RequestTooLargeError",
    "UnprocessableEntityError",
    "RateLimitError",
    "InternalServerError",
    "ServiceUnavailableError",
    "APIConnectionError",
    "APITimeoutError",
    "APIResponseValidationError",
    "ResponseTooLargeError",
    "StreamError",
    "InvalidRequestError",
    "ClientClosedError",
    "RedirectError",
    # DESIGN §8: the resilience parts.
    "RateLimit",
    "ConcurrencyLimit",
    "CircuitBreaker",
    "RetryBudget",
    "Hedge",
    "StateStore",
    "MemoryStateStore",
    "RateLimitExceededError",
    "ConcurrencyLimitError",
    "CircuitOpenError",
    # DESIGN §8: the Redis-backed store (issue 17).
    "RedisStateStore",
    "StateStoreError",
}


def _public_namespace() -> set[str]:
    return {
        name
        for name, value in vars(stackwire).items()
        if not name.startswith("_") and not isinstance(value, types.ModuleType)
    } | {"__version__"}


def test_all_is_exactly_the_public_names() -> None:
    # Its order is ruff's (RUF022: constants, classes, then the rest, each sorted).
    assert len(set(stackwire.__all__)) == len(stackwire.__all__)
    assert set(stackwire.__all__) == _public_namespace()


def test_every_promised_name_is_exported() -> None:
    missing = PROMISED - set(stackwire.__all__)
    assert not missing, f"promised by DESIGN but not exported: {sorted(missing)}"


def test_classes_and_functions_say_they_are_stackwire() -> None:
    wrong = {
        name: value.__module__
        for name in stackwire.__all__
        if (inspect.isclass(value := getattr(stackwire, name)) or inspect.isfunction(value))
        and value.__module__ != "stackwire"
    }
    assert not wrong, wrong


def test_reprs_use_the_public_path() -> None:
    assert repr(stackwire.Response) == "<class 'stackwire.Response'>"
    assert repr(stackwire.CursorPage) == "<class 'stackwire.CursorPage'>"
