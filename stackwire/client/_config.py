"""A client's options: the schema (`ClientOptions`), resolution and validation, ``env_prefix``."""

from __future__ import annotations

import asyncio
import base64
import inspect
import math
import os
import random as _random
import ssl
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from typing import Any, TypedDict, cast

import aiohttp
import msgspec
from yarl import URL

from .._http.query import ArrayFormat, NestedFormat
from .._http.urls import normalize_base_url
from .._types import NOT_GIVEN, Omit
from ..auth import Auth
from ..errors import APIError, InvalidRequestError
from ..middlewares.decode import DEFAULT_MAX_RESPONSE_BYTES, check_size
from ..middlewares.headers import check_header, split_headers
from ..middlewares.redirects import RedirectMiddleware
from ..middlewares.retry import RetryEvent, RetryMiddleware, check_max_retries
from ..middlewares.timeout import check_deadline
from ..models.sse import DEFAULT_MAX_EVENT_BYTES
from ..pipeline.middleware import Middleware
from ..pipeline.options import DEFAULT_TIMEOUT, Timeout
from ..pipeline.request import ALWAYS_SENSITIVE_HEADERS
from ..pipeline.response import REQUEST_ID_HEADERS
from ..pipeline.secrets import Password
from ..pipeline.transport import Transport
from ..resilience.budget import RetryBudget
from ..transports.aiohttp_transport import DEFAULT_MAX_CONNECTIONS
from ._secrets import _Secret, secrets_in


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
    transport: Transport | None
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


def _defaults(cls: type) -> dict[str, Any]:
    """The keyword defaults of ``cls``'s constructor: each option's default is written
    once, where the part that owns the option is."""
    return {
        name: parameter.default
        for name, parameter in inspect.signature(cls).parameters.items()
        if parameter.default is not inspect.Parameter.empty
    }


_RETRY = _defaults(RetryMiddleware)
_REDIRECTS = _defaults(RedirectMiddleware)


class _Config(msgspec.Struct, frozen=True, kw_only=True):
    """A client's resolved options; derived clients copy and change it."""

    base_url: URL
    api_key: str | None = None
    api_key_header: str | None = None
    headers: Mapping[str, str | Omit] = {}
    query: Mapping[str, object] = {}
    timeout: Timeout | None = DEFAULT_TIMEOUT
    deadline: float | None = None
    max_retries: int = _RETRY["max_retries"]
    max_retry_after: float = _RETRY["max_retry_after"]
    idempotency_header: str | None = _RETRY["idempotency_header"]
    retry_count_header: str | None = _RETRY["retry_count_header"]
    initial_delay: float = _RETRY["initial_delay"]
    max_delay: float = _RETRY["max_delay"]
    jitter: float = _RETRY["jitter"]
    should_retry: Callable[[APIError], bool] = _RETRY["should_retry"]
    query_array_format: ArrayFormat = "repeat"
    query_nested_format: NestedFormat = "brackets"
    follow_redirects: bool = _REDIRECTS["follow_redirects"]
    max_redirects: int = _REDIRECTS["max_redirects"]
    sensitive_headers: frozenset[str] = frozenset()
    max_response_bytes: int | None = DEFAULT_MAX_RESPONSE_BYTES
    max_event_bytes: int | None = DEFAULT_MAX_EVENT_BYTES
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
    transport: Transport | None = None
    max_connections: int = DEFAULT_MAX_CONNECTIONS
    on_retry: Callable[[RetryEvent], object] | None = None
    retry_budget: RetryBudget | None = None
    sleep: Callable[[float], Awaitable[object]] = asyncio.sleep
    clock: Callable[[], float] = time.time
    random: Callable[[], float] = _random.random


# Options that change the session itself: a derived client that changes one gets a
# session of its own (which it then owns and closes).
_TRANSPORT_OPTIONS = frozenset(
    {"trust_env", "proxy", "verify", "session", "max_connections", "transport"}
)


_BOOL_OPTIONS = ("follow_redirects", "trust_env", "strict", "platform_headers")
_HEADER_NAME_OPTIONS = ("api_key_header", "idempotency_header", "retry_count_header")
_CALLABLE_OPTIONS = ("should_retry", "sleep", "clock", "random")


def _awaitable_sleep(sleep: Callable[[float], object]) -> Callable[[float], Awaitable[object]]:
    """``sleep`` as the stack awaits it: an async function (or an object whose
    ``__call__`` is one) as it is; a plain function (a test's recorder, ``time.sleep``
    in a blocking client's tests) wrapped, its result awaited when it is awaitable. A
    plain function blocks the loop while it runs: for tests and fakes, not real waits.

    >>> import asyncio
    >>> _awaitable_sleep(asyncio.sleep) is asyncio.sleep
    True
    >>> slept = []
    >>> asyncio.run(_awaitable_sleep(slept.append)(0.5)) is None, slept
    (True, [0.5])
    """
    if inspect.iscoroutinefunction(sleep) or inspect.iscoroutinefunction(
        getattr(sleep, "__call__", None)  # noqa: B004 (the method, not callable())
    ):
        return cast("Callable[[float], Awaitable[object]]", sleep)

    async def sleeping(delay: float) -> None:
        result = sleep(delay)
        if inspect.isawaitable(result):
            await result

    sleeping.__wrapped__ = sleep  # type: ignore[attr-defined]
    return sleeping


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
            and not _positive_seconds(value)
        ) or not (value is None or isinstance(value, (int, float, Timeout))):
            raise _bad_option("timeout", value, "a number of seconds > 0, a Timeout or None")
    for name in ("headers", "query"):
        if values.get(name) is not None and not isinstance(values[name], Mapping):
            raise _bad_option(name, values[name], "a mapping (e.g. a dict) or None")
    if "middlewares" in values:
        _check_middlewares(values["middlewares"])
    if "verify" in values and not isinstance(values["verify"], (bool, ssl.SSLContext)):
        raise _bad_option("verify", values["verify"], "True, False or an ssl.SSLContext")
    if values.get("proxy") is not None and not isinstance(values["proxy"], (str, URL)):
        raise _bad_option("proxy", values["proxy"], "an http(s) URL (a str or yarl.URL) or None")
    if values.get("session") is not None and not isinstance(
        values["session"], aiohttp.ClientSession
    ):
        raise _bad_option("session", values["session"], "an aiohttp.ClientSession or None")


def _check_middlewares(middlewares: object) -> None:
    if (
        isinstance(middlewares, (str, bytes, Mapping))
        or not isinstance(middlewares, Iterable)
        or callable(middlewares)
    ):
        raise _bad_option("middlewares", middlewares, "a list of middlewares")
    for middleware in tuple(middlewares):
        if not callable(middleware):
            raise _bad_option(
                "middlewares",
                middleware,
                "a list of middlewares (async callables taking request and call_next)",
            )


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


def _positive_seconds(value: float) -> bool:
    """A number of seconds > 0 that fits in a float; infinity (no limit) included, as
    in ``Timeout(total=math.inf)`` and a per-request ``timeout=math.inf``."""
    try:
        return float(value) > 0  # (NaN is not)
    except OverflowError:  # an int too large for a float
        return False


def _merge(field: str, old: Mapping[Any, Any], new: Mapping[Any, Any]) -> dict[Any, Any]:
    """``new`` over ``old``; header names are compared case-insensitively, so that
    ``headers={"x-a": ...}`` replaces the client's ``X-A`` instead of joining it."""
    if field != "headers":
        # ``NOT_GIVEN`` keeps this client's value, as it does for a call's query.
        return {**old, **{k: v for k, v in new.items() if v is not NOT_GIVEN or k not in old}}
    if not old:
        return {**old, **new}
    replaced = {name.lower() for name in new if isinstance(name, str)}
    kept = {name: value for name, value in old.items() if name.lower() not in replaced}
    return {**kept, **new}


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
            replacement = changes[f"set_{field}"]
            if replacement is not None and not isinstance(replacement, Mapping):
                raise _bad_option(f"set_{field}", replacement, "a mapping (e.g. a dict) or None")
            values[field] = dict(replacement or {})
        elif changes.get(field) is not None:
            if not isinstance(changes[field], Mapping):
                raise _bad_option(field, changes[field], "a mapping (e.g. a dict) or None")
            values[field] = _merge(field, getattr(config, field), changes[field])
    _check_options(values)
    if "sleep" in values:
        values["sleep"] = _awaitable_sleep(values["sleep"])
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
            check_size(name, values[name])
    if values.get("verify") is False:
        values["verify"] = False
    if "headers" in values:
        split_headers(values["headers"])  # validates before any I/O
    if "request_id_headers" in values:
        values["request_id_headers"] = _check_request_id_headers(values["request_id_headers"])
    if values.get("api_key") is not None and not isinstance(values["api_key"], str):
        raise InvalidRequestError(f"api_key must be a str, got {type(values['api_key']).__name__}")
    resolved = msgspec.structs.replace(config, **values)
    if resolved.transport is not None:
        _check_transport(resolved)
    elif resolved.session is not None:
        _check_session(resolved)
    return _guard_secrets(resolved)


def _check_session(config: _Config) -> None:
    """No option of the session the client would make is set beside a borrowed
    ``session=``: the session's own connector decides them, so they would be
    silently ignored (``verify=False`` would still verify)."""
    clashing = [
        name
        for name, given in (
            ("verify", config.verify is not True),
            ("max_connections", config.max_connections != DEFAULT_MAX_CONNECTIONS),
        )
        if given
    ]
    if clashing:
        raise InvalidRequestError(
            f"session= cannot be combined with {', '.join(n + '=' for n in clashing)}: "
            "those configure the session the client would make; give your session's "
            "connector the TLS context or limit instead"
        )


def _check_transport(config: _Config) -> None:
    """``transport=`` is a `Transport`, and no option of the default transport is set
    beside it (it would be silently ignored)."""
    transport = config.transport
    if not isinstance(transport, Transport):
        raise InvalidRequestError(
            "transport must be a Transport (with send, close and pool_stats), "
            f"got {type(transport).__name__}"
        )
    clashing = [
        name
        for name, given in (
            ("session", config.session is not None),
            ("proxy", config.proxy is not None),
            ("verify", config.verify is not True),
        )
        if given
    ]
    if clashing:
        raise InvalidRequestError(
            f"transport= cannot be combined with {', '.join(n + '=' for n in clashing)}: "
            "those configure the default transport; set them on your transport instead"
        )


def _check_request_id_headers(names: object) -> tuple[str, ...]:
    if isinstance(names, str) or not isinstance(names, Iterable):
        raise InvalidRequestError(
            "request_id_headers must be a sequence of header names, e.g. ('x-request-id',)"
        )
    checked = tuple(names)
    if not all(isinstance(name, str) and _is_token(name) for name in checked):
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


# -- the secrets a configuration holds ------------------------------------------------


def _sensitive_names(config: _Config) -> frozenset[str]:
    names = ALWAYS_SENSITIVE_HEADERS | config.sensitive_headers
    if config.api_key_header is not None:
        names |= {config.api_key_header.lower()}
    return names


def _guard_secrets(config: _Config) -> _Config:
    """``config`` with the API key and sensitive header values wrapped in `_Secret`."""
    changes: dict[str, Any] = {}
    if config.api_key is not None and not isinstance(config.api_key, _Secret):
        changes["api_key"] = _Secret(config.api_key)
    sensitive = _sensitive_names(config)
    if any(
        name.lower() in sensitive and isinstance(value, str) and not isinstance(value, _Secret)
        for name, value in config.headers.items()
    ):
        changes["headers"] = {
            name: _Secret(value) if name.lower() in sensitive and isinstance(value, str) else value
            for name, value in config.headers.items()
        }
    return msgspec.structs.replace(config, **changes) if changes else config


def _secret_values(config: _Config) -> tuple[str, ...]:
    """The secrets to hide in error messages: the key, sensitive header values and
    the credentials after their scheme (``Bearer <token>``). Very short values are
    left alone (hiding them would mangle ordinary text)."""
    sensitive = _sensitive_names(config)
    values = [config.api_key] if config.api_key is not None else []
    values += [
        value
        for name, value in config.headers.items()
        if name.lower() in sensitive and isinstance(value, str)
    ]
    proxy = config.proxy
    if proxy is not None:
        # The proxy's credentials, as a proxy answering 407 may quote them: the
        # password, and the Basic credentials aiohttp sends it (`secret_forms`).
        proxy_url = URL(proxy) if isinstance(proxy, str) else proxy
        if proxy_url.password:
            pair = f"{proxy_url.user or ''}:{proxy_url.password}"
            values.append(Password(proxy_url.password))
            values.append("Basic " + base64.b64encode(pair.encode("latin-1", "replace")).decode())
    return secrets_in(values)
