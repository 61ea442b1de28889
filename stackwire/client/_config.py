"""A client's options: the schema (`ClientOptions`), resolution and validation, ``env_prefix``."""

from __future__ import annotations

import asyncio
import math
import os
import random as _random
import ssl
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from typing import Any, TypedDict

import aiohttp
import msgspec
from yarl import URL

from .._http.query import ArrayFormat, NestedFormat
from .._http.urls import normalize_base_url
from .._types import Omit
from ..auth import Auth
from ..errors import APIError, InvalidRequestError
from ..middlewares.headers import check_header, split_headers
from ..middlewares.retry import (
    RetryEvent,
    check_max_retries,
    default_should_retry,
)
from ..middlewares.timeout import check_deadline
from ..pipeline.middleware import Middleware
from ..pipeline.options import DEFAULT_TIMEOUT, Timeout
from ..pipeline.response import REQUEST_ID_HEADERS
from ..resilience.budget import RetryBudget
from ._secrets import _guard_secrets


class ClientOptions(TypedDict, total=False):
    """Every keyword option of `AsyncClient` (``with_options`` takes these too)."""

    api_key: str | None
    api_key_header: str | None
    headers: Mapping[str, str | Omit] | None
    query: Mapping[str, object] | None
    timeout: Timeout | float | None
    deadline: float | None
    max_retries: int
    max_retry_after: float
    idempotency_header: str | None
    retry_count_header: str | None
    initial_delay: float
    max_delay: float
    jitter: float
    should_retry: Callable[[APIError], bool]
    query_array_format: ArrayFormat
    query_nested_format: NestedFormat
    follow_redirects: bool
    max_redirects: int
    sensitive_headers: Iterable[str]
    max_response_bytes: int | None
    max_event_bytes: int | None
    trust_env: bool
    proxy: str | URL | None
    verify: bool | ssl.SSLContext
    strict: bool
    platform_headers: bool
    request_id_headers: Sequence[str]
    user_agent: str | None
    middlewares: Iterable[Middleware]
    auth: Auth | None
    session: aiohttp.ClientSession | None
    max_connections: int
    on_retry: Callable[[RetryEvent], object] | None
    retry_budget: RetryBudget | None
    sleep: Callable[[float], Awaitable[object]]
    clock: Callable[[], float]
    random: Callable[[], float]


class DerivedOptions(ClientOptions, total=False):
    """What `AsyncClient.with_options` takes: every client option, ``base_url``, and
    ``set_headers``/``set_query`` to replace (not merge) the client's."""

    base_url: str | URL | None
    env_prefix: str | None
    set_headers: Mapping[str, str | Omit] | None
    set_query: Mapping[str, object] | None


class _Config(msgspec.Struct, frozen=True, kw_only=True):
    """A client's resolved options; derived clients copy and change it."""

    base_url: URL
    api_key: str | None = None
    api_key_header: str | None = None
    headers: Mapping[str, str | Omit] = {}
    query: Mapping[str, object] = {}
    timeout: Timeout | None = DEFAULT_TIMEOUT
    deadline: float | None = None
    max_retries: int = 2
    max_retry_after: float = 60.0
    idempotency_header: str | None = "Idempotency-Key"
    retry_count_header: str | None = "X-Retry-Count"
    initial_delay: float = 0.5
    max_delay: float = 8.0
    jitter: float = 0.25
    should_retry: Callable[[APIError], bool] = default_should_retry
    query_array_format: ArrayFormat = "repeat"
    query_nested_format: NestedFormat = "brackets"
    follow_redirects: bool = True
    max_redirects: int = 10
    sensitive_headers: frozenset[str] = frozenset()
    max_response_bytes: int | None = 64 * 2**20
    max_event_bytes: int | None = 16 * 2**20
    trust_env: bool = True
    proxy: str | URL | None = None
    verify: bool | ssl.SSLContext = True
    strict: bool = False
    platform_headers: bool = False
    request_id_headers: tuple[str, ...] = REQUEST_ID_HEADERS
    user_agent: str | None = None
    middlewares: tuple[Middleware, ...] = ()
    auth: Auth | None = None
    session: aiohttp.ClientSession | None = None
    max_connections: int = 1000
    on_retry: Callable[[RetryEvent], object] | None = None
    retry_budget: RetryBudget | None = None
    sleep: Callable[[float], Awaitable[object]] = asyncio.sleep
    clock: Callable[[], float] = time.time
    random: Callable[[], float] = _random.random


# Options that change the session itself: a derived client that changes one gets a
# session of its own (which it then owns and closes).
_TRANSPORT_OPTIONS = frozenset({"trust_env", "proxy", "verify", "session", "max_connections"})


def _check_size(name: str, value: object) -> None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value <= 0):
        raise InvalidRequestError(f"{name} must be a positive int (bytes) or None, got {value!r}")


_BOOL_OPTIONS = ("follow_redirects", "trust_env", "strict", "platform_headers")
_HEADER_NAME_OPTIONS = ("api_key_header", "idempotency_header", "retry_count_header")
_CALLABLE_OPTIONS = ("should_retry", "sleep", "clock", "random")


def _bad_option(name: str, value: object, accepted: str) -> InvalidRequestError:
    return InvalidRequestError(
        f"{name} must be {accepted}, got {type(value).__name__} {value!r}"[:300]
    )


def _check_options(values: Mapping[str, Any]) -> None:
    """Check the type and range of each option given, before anything is built: a bad
    one would otherwise fail later, deep inside aiohttp, or not at all."""
    for name in _BOOL_OPTIONS:
        if name in values and not isinstance(values[name], bool):
            raise _bad_option(name, values[name], "True or False")
    for name in _HEADER_NAME_OPTIONS:
        value = values.get(name)
        if value is not None and not (isinstance(value, str) and _is_token(value)):
            raise _bad_option(name, value, "a header name (an HTTP token) or None")
    for name in _CALLABLE_OPTIONS:
        if name in values and not callable(values[name]):
            raise _bad_option(name, values[name], "a callable")
    if values.get("on_retry") is not None and not callable(values["on_retry"]):
        raise _bad_option("on_retry", values["on_retry"], "a callable or None")
    if "user_agent" in values and values["user_agent"] is not None:
        if not isinstance(values["user_agent"], str):
            raise _bad_option("user_agent", values["user_agent"], "a str or None")
        check_header("User-Agent", values["user_agent"])
    for name in ("max_connections", "max_redirects"):
        if name not in values:
            continue
        value = values[name]
        minimum = 1 if name == "max_connections" else 0
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise _bad_option(name, value, f"an int >= {minimum}")
    for name in ("max_retry_after", "initial_delay", "max_delay", "jitter"):
        if name not in values:
            continue
        value = values[name]
        if (
            isinstance(value, bool)
            or not isinstance(value, (int, float))
            or not _finite_non_negative(value)
        ):
            raise _bad_option(name, value, "a finite number >= 0")
    if "sensitive_headers" in values:
        names = values["sensitive_headers"]
        if isinstance(names, (str, bytes)) or not isinstance(names, Iterable):
            raise _bad_option("sensitive_headers", names, "an iterable of header names")
        names = tuple(names)
        if not all(isinstance(item, str) and _is_token(item) for item in names):
            raise _bad_option("sensitive_headers", names, "an iterable of header names")
    if "timeout" in values:
        value = values["timeout"]
        if (
            isinstance(value, (int, float))
            and not isinstance(value, bool)
            and not _finite_positive(value)
        ):
            raise _bad_option("timeout", value, "a finite number of seconds > 0, a Timeout or None")


def _is_token(name: str) -> bool:
    try:
        check_header(name, "")
    except InvalidRequestError:
        return False
    return True


def _finite_non_negative(value: float) -> bool:
    try:
        return math.isfinite(value) and value >= 0
    except OverflowError:  # an int too large for a float
        return False


def _finite_positive(value: float) -> bool:
    return _finite_non_negative(value) and value > 0


def _resolve(config: _Config, changes: Mapping[str, Any]) -> _Config:
    """``config`` with ``changes`` applied and validated (``headers``/``query`` merge,
    ``set_headers``/``set_query`` replace)."""
    values: dict[str, Any] = {}
    for name, value in changes.items():
        if name in ("headers", "query", "set_headers", "set_query"):
            continue
        if name not in _Config.__struct_fields__:
            raise InvalidRequestError(f"unknown client option {name!r}")
        values[name] = value
    for field in ("headers", "query"):
        if field in changes and f"set_{field}" in changes:
            raise InvalidRequestError(f"pass {field}= (merge) or set_{field}= (replace), not both")
        if f"set_{field}" in changes:
            values[field] = dict(changes[f"set_{field}"] or {})
        elif changes.get(field):
            values[field] = {**getattr(config, field), **changes[field]}
    _check_options(values)
    if "base_url" in values:
        values["base_url"] = normalize_base_url(values["base_url"])
    if "timeout" in values:
        values["timeout"] = Timeout.coerce(values["timeout"])
    if "deadline" in values:
        values["deadline"] = check_deadline(values["deadline"])
    if "max_retries" in values:
        check_max_retries(values["max_retries"])
    if "middlewares" in values:
        values["middlewares"] = tuple(values["middlewares"])
    if values.get("retry_budget") is not None and not isinstance(
        values["retry_budget"], RetryBudget
    ):
        raise _bad_option("retry_budget", values["retry_budget"], "a RetryBudget or None")
    if values.get("auth") is not None and not isinstance(values["auth"], Auth):
        raise InvalidRequestError(
            f"auth must be an Auth or None, got {type(values['auth']).__name__}"
        )
    if "sensitive_headers" in values:
        values["sensitive_headers"] = frozenset(h.lower() for h in values["sensitive_headers"])
    for name in ("max_response_bytes", "max_event_bytes"):
        if name in values:
            _check_size(name, values[name])
    if values.get("verify") is False:
        values["verify"] = False
    if "headers" in values:
        split_headers(values["headers"])  # validates before any I/O
    if "request_id_headers" in values:
        values["request_id_headers"] = _check_request_id_headers(values["request_id_headers"])
    if values.get("api_key") is not None and not isinstance(values["api_key"], str):
        raise InvalidRequestError(f"api_key must be a str, got {type(values['api_key']).__name__}")
    return _guard_secrets(msgspec.structs.replace(config, **values))


def _check_request_id_headers(names: object) -> tuple[str, ...]:
    if isinstance(names, str) or not isinstance(names, Iterable):
        raise InvalidRequestError(
            "request_id_headers must be a sequence of header names, e.g. ('x-request-id',)"
        )
    checked = tuple(names)
    if not all(isinstance(name, str) and name for name in checked):
        raise InvalidRequestError(f"request_id_headers must hold header names, got {checked!r}")
    return checked


def _from_environment(env_prefix: object, options: dict[str, Any]) -> None:
    """Fill ``base_url`` and ``api_key`` from ``<PREFIX>_BASE_URL`` / ``<PREFIX>_API_KEY``
    when ``options`` has none (an empty variable counts as unset)."""
    if not isinstance(env_prefix, str) or not env_prefix:
        raise InvalidRequestError(f"env_prefix must be a non-empty str, got {env_prefix!r}")
    if options.get("base_url") is None and os.environ.get(f"{env_prefix}_BASE_URL"):
        options["base_url"] = os.environ[f"{env_prefix}_BASE_URL"]
    if options.get("api_key") is None and os.environ.get(f"{env_prefix}_API_KEY"):
        options["api_key"] = os.environ[f"{env_prefix}_API_KEY"]
