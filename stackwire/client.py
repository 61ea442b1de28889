"""`AsyncClient`: a typed HTTP API client over one aiohttp session.

Every call runs through ``client.pipeline``, outermost first::

    headers -> query -> timeout -> retry -> decode -> [middlewares=] -> redirects -> transport
    \\________ once per call _________/        \\__________ once per attempt __________/

Clients derived with `AsyncClient.with_options` or `AsyncClient.with_middleware`
share the session of the client they came from; only the client that created the
session closes it.
"""

from __future__ import annotations

import asyncio
import os
import random as _random
import re
import ssl
import time
import warnings
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping, Sequence
from contextlib import asynccontextmanager
from types import MappingProxyType, TracebackType
from typing import Any, Literal, Self, TypedDict, TypeVar, Unpack, cast, get_origin

import aiohttp
import msgspec
from multidict import CIMultiDict, CIMultiDictProxy
from yarl import URL

from ._bodies import build_body, load_files
from ._call import AsyncVerb, CallOptions, RawVerb, StreamingVerb
from ._query import ArrayFormat, NestedFormat
from ._types import NOT_GIVEN, NotGiven, Omit
from ._urls import fill_path, join_url, normalize_base_url
from .errors import APIError, ClientClosedError, InvalidRequestError, StackwireError
from .middlewares.decode import DecodeMiddleware
from .middlewares.headers import HeadersMiddleware, split_headers
from .middlewares.query import QueryMiddleware
from .middlewares.redirects import RedirectMiddleware
from .middlewares.retry import (
    RetryEvent,
    RetryMiddleware,
    check_max_retries,
    default_should_retry,
)
from .middlewares.timeout import TimeoutMiddleware, check_deadline
from .models.pages import AsyncPaginator, BasePage, PageCallOptions, _PageRequest
from .pipeline.middleware import Middleware
from .pipeline.options import DEFAULT_TIMEOUT, RequestOptions, Timeout
from .pipeline.pipeline import NamedMiddleware, Pipeline
from .pipeline.request import ALWAYS_SENSITIVE_HEADERS, ExtensionKey, Request, redact
from .pipeline.response import REQUEST_ID_HEADERS, REQUEST_ID_HEADERS_KEY, Response
from .pipeline.transport import AiohttpTransport, PoolStats

__all__ = ["AsyncClient", "ClientOptions", "DerivedOptions"]

_EMPTY_HEADERS: CIMultiDictProxy[str] = CIMultiDictProxy(CIMultiDict())
# An HTTP method is a token (RFC 9110); aiohttp would raise a bare ValueError or,
# for an empty one, send a broken request line.
_METHOD = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_KNOWN_METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"})
# RequestOptions of calls that give no per-request option but these, shared by key
# (the options are frozen); bounded, like the other per-client caches.
_OptionsKey = tuple[Any, bool, bool]
_OPTIONS_CACHE_MAX = 256
_URL_CACHE_MAX = 1024
_PageT = TypeVar("_PageT", bound=BasePage[Any])


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
    session: aiohttp.ClientSession | None
    max_connections: int
    on_retry: Callable[[RetryEvent], object] | None
    sleep: Callable[[float], Awaitable[object]]
    clock: Callable[[], float]
    random: Callable[[], float]


class DerivedOptions(ClientOptions, total=False):
    """What `AsyncClient.with_options` takes: every client option, ``base_url``, and
    ``set_headers``/``set_query`` to replace (not merge) the client's."""

    base_url: str | URL
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
    session: aiohttp.ClientSession | None = None
    max_connections: int = 1000
    on_retry: Callable[[RetryEvent], object] | None = None
    sleep: Callable[[float], Awaitable[object]] = asyncio.sleep
    clock: Callable[[], float] = time.time
    random: Callable[[], float] = _random.random


# Options that change the session itself: a derived client that changes one gets a
# session of its own (which it then owns and closes).
_TRANSPORT_OPTIONS = frozenset({"trust_env", "proxy", "verify", "session", "max_connections"})


def _check_size(name: str, value: object) -> None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value <= 0):
        raise InvalidRequestError(f"{name} must be a positive int (bytes) or None, got {value!r}")


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


class _Secret(str):
    """A secret as a client keeps it: the whole value when sent, but ``repr()`` (of
    the config, of headers holding it) shows at most its last 4 characters."""

    __slots__ = ()

    def __repr__(self) -> str:
        return repr(redact(self))


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
    found: set[str] = set()
    sensitive = _sensitive_names(config)
    values = [config.api_key] if config.api_key is not None else []
    values += [
        value
        for name, value in config.headers.items()
        if name.lower() in sensitive and isinstance(value, str)
    ]
    for value in values:
        found.add(str(value))
        scheme, _, credentials = str(value).partition(" ")
        if credentials and scheme.isalpha():
            found.add(credentials)
    return tuple(sorted((v for v in found if len(v) >= 8), key=len, reverse=True))


def _hide_secrets(error: StackwireError, secrets: tuple[str, ...]) -> None:
    """Redact ``secrets`` from the messages of ``error`` and of the exceptions it chains."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if any(isinstance(arg, str) and s in arg for arg in current.args for s in secrets):
            current.args = tuple(
                _hide_in(arg, secrets) if isinstance(arg, str) else arg for arg in current.args
            )
        message = getattr(current, "message", None)
        if isinstance(current, APIError) and isinstance(message, str):
            current.message = _hide_in(message, secrets)
        current = current.__cause__ or current.__context__


def _hide_in(text: str, secrets: tuple[str, ...]) -> str:
    for secret in secrets:
        if secret in text:
            text = text.replace(secret, redact(secret))
    return text


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


def _default_pipeline(config: _Config) -> Pipeline:
    retry = RetryMiddleware(
        max_retries=config.max_retries,
        max_retry_after=config.max_retry_after,
        idempotency_header=config.idempotency_header,
        retry_count_header=config.retry_count_header,
        initial_delay=config.initial_delay,
        max_delay=config.max_delay,
        jitter=config.jitter,
        should_retry=config.should_retry,
        on_retry=config.on_retry,
        sleep=config.sleep,
        clock=config.clock,
        random=config.random,
    )
    stack: list[Middleware] = [
        HeadersMiddleware(
            config.headers,
            api_key=config.api_key,
            api_key_header=config.api_key_header,
            user_agent=config.user_agent,
            include_platform_headers=config.platform_headers,
            sensitive_headers=config.sensitive_headers,
        ),
        QueryMiddleware(
            config.query,
            array_format=config.query_array_format,
            nested_format=config.query_nested_format,
        ),
        TimeoutMiddleware(config.timeout, deadline=config.deadline),
        retry,
        DecodeMiddleware(
            max_response_bytes=config.max_response_bytes,
            max_event_bytes=config.max_event_bytes,
            strict=config.strict,
        ),
        *config.middlewares,
        RedirectMiddleware(
            follow_redirects=config.follow_redirects,
            max_redirects=config.max_redirects,
            base_url=config.base_url,
        ),
    ]
    return Pipeline(stack)


def _transport(config: _Config) -> AiohttpTransport:
    return AiohttpTransport(
        session=config.session,
        max_connections=config.max_connections,
        verify=config.verify,
        trust_env=config.trust_env,
        proxy=config.proxy,
    )


def _verb(method: str) -> Any:
    """``client.get`` & co.: a plain function per method name, typed by `AsyncVerb`.

    Looked up on a client it is a bound method, which Python makes in C; the client
    keeps nothing per verb, so no reference cycle ties an unclosed client to itself.
    """

    def verb(self: Any, path: str, **options: Any) -> Any:
        return self._call(method, path, **options)

    verb.__name__ = method.lower()
    verb.__qualname__ = method.lower()
    verb.__doc__ = f"Send a {method} request; see `AsyncClient.request`."
    return verb


class AsyncClient:
    """A typed client for one HTTP API.

    >>> import stackwire
    >>> client = stackwire.AsyncClient("https://api.example.com/v1", api_key="sk-test-123456789")
    >>> print(client.pipeline)
    1. headers
    2. query
    3. timeout
    4. retry
    5. decode
    6. redirects

    Use it as ``async with client: ...`` or ``await client.close()`` when done.
    ``await client.get("/users/{id}", path_params={"id": 1}, cast_to=User)`` returns
    a ``User``; see `CallOptions` for every keyword of the verbs.
    """

    get: AsyncVerb = cast("AsyncVerb", _verb("GET"))
    post: AsyncVerb = cast("AsyncVerb", _verb("POST"))
    put: AsyncVerb = cast("AsyncVerb", _verb("PUT"))
    patch: AsyncVerb = cast("AsyncVerb", _verb("PATCH"))
    delete: AsyncVerb = cast("AsyncVerb", _verb("DELETE"))

    def __init__(
        self,
        base_url: str | URL | None = None,
        *,
        env_prefix: str | None = None,
        **options: Unpack[ClientOptions],
    ) -> None:
        if env_prefix is not None:
            given: dict[str, Any] = {"base_url": base_url, **options}
            _from_environment(env_prefix, given)
            base_url = given.pop("base_url")
            options = cast("ClientOptions", given)
        if base_url is None:
            hint = f" (or set {env_prefix}_BASE_URL)" if env_prefix else ""
            raise InvalidRequestError(f"base_url is required{hint}")
        config = _resolve(_Config(base_url=normalize_base_url(base_url)), options)
        self._setup(config, _transport(config), owner=True)

    def _setup(self, config: _Config, transport: AiohttpTransport, *, owner: bool) -> None:
        self._config = config
        self._transport = transport
        self._owner = owner
        self._closed = False
        self._pipeline = _default_pipeline(config)
        self._handler = self._pipeline.compose(transport)
        self._secrets = _secret_values(config)
        self._options_cache: dict[_OptionsKey, RequestOptions] = {}
        self._urls: dict[str, URL] = {}  # path -> URL, for paths without placeholders
        # Read-only, since every request of this client shares it.
        self._extensions: Mapping[ExtensionKey[Any], Any] = MappingProxyType(
            {}
            if config.request_id_headers == REQUEST_ID_HEADERS
            else {REQUEST_ID_HEADERS_KEY: config.request_id_headers}
        )

    @classmethod
    def _derive(cls, parent: AsyncClient, config: _Config, pipeline: Pipeline | None) -> Self:
        """A client with ``config`` sharing ``parent``'s transport (session)."""
        client = cls.__new__(cls)
        # Equal values (``max_connections=1000`` again) keep the parent's session.
        changes_transport = any(
            getattr(config, name) != getattr(parent._config, name) for name in _TRANSPORT_OPTIONS
        )
        if changes_transport:
            client._setup(config, _transport(config), owner=True)
        else:
            client._setup(config, parent._transport, owner=False)
        if pipeline is not None:
            client._pipeline = pipeline
            client._handler = pipeline.compose(client._transport)
        return client

    # -- the stack -----------------------------------------------------------------

    @property
    def pipeline(self) -> Pipeline:
        """The whole stack, outermost first; ``print()`` it to see it."""
        return self._pipeline

    @property
    def base_url(self) -> URL:
        return self._config.base_url

    @property
    def timeout(self) -> Timeout | None:
        return self._config.timeout

    @property
    def max_retries(self) -> int:
        return self._config.max_retries

    def with_options(self, **options: Unpack[DerivedOptions]) -> Self:
        """A client with some options changed, sharing this client's session.

        ``headers=``/``query=`` merge into this client's; ``set_headers=``/
        ``set_query=`` replace them (giving both is an error). ``env_prefix=`` fills
        ``base_url``/``api_key`` from the environment, as for the constructor.
        Closing the new client never closes this one.
        """
        if "env_prefix" in options:
            given: dict[str, Any] = dict(options)
            _from_environment(given.pop("env_prefix"), given)
            options = cast("DerivedOptions", given)
        config = _resolve(self._config, options)
        fresh = _default_pipeline(config)
        current = self._pipeline
        if current.names == _default_pipeline(self._config).names:
            return type(self)._derive(self, config, None)
        if "middlewares" in options:
            raise InvalidRequestError(
                "this client's stack was changed with with_middleware(); pass middlewares= "
                "to with_options() before adding middlewares with with_middleware()"
            )
        # Keep the added middlewares where they are; rebuild the built-in ones.
        builtins = set(fresh.names)
        pipeline = Pipeline(
            NamedMiddleware(entry.name, fresh[entry.name]) if entry.name in builtins else entry
            for entry in current
        )
        return type(self)._derive(self, config, pipeline)

    def with_middleware(
        self,
        middleware: Middleware,
        *,
        name: str | None = None,
        before: str | None = None,
        after: str | None = None,
    ) -> Self:
        """A client that also runs ``middleware`` (innermost but for ``redirects``, so
        just above it, unless ``before=``/``after=`` names another); same session."""
        if before is not None and after is not None:
            raise InvalidRequestError("with_middleware() takes before= or after=, not both")
        if before is not None:
            pipeline = self._pipeline.insert(middleware, name=name, before=before)
        elif after is not None:
            pipeline = self._pipeline.insert(middleware, name=name, after=after)
        elif "redirects" in self._pipeline:
            pipeline = self._pipeline.insert(middleware, name=name, before="redirects")
        else:
            pipeline = self._pipeline.insert(middleware, name=name)
        return type(self)._derive(self, self._config, pipeline)

    # -- calls ---------------------------------------------------------------------

    def _build_request(
        self,
        method: str,
        path: str,
        *,
        cast_to: Any = NOT_GIVEN,
        stream: bool = False,
        raw_response: bool = False,
        path_params: Mapping[str, object] | None = None,
        query: Mapping[str, object] | None = None,
        headers: Mapping[str, str | Omit] | None = None,
        json: Any = NOT_GIVEN,
        content: Any = None,
        data: Mapping[str, object] | None = None,
        files: Any = None,
        timeout: Timeout | float | NotGiven | None = NOT_GIVEN,
        deadline: float | NotGiven | None = NOT_GIVEN,
        max_retries: int | NotGiven = NOT_GIVEN,
        idempotency_key: str | NotGiven = NOT_GIVEN,
        follow_redirects: bool | NotGiven = NOT_GIVEN,
        max_response_bytes: int | NotGiven | None = NOT_GIVEN,
        stream_end_event: str | None = None,
        stream_format: Literal["sse", "jsonl"] | None = None,
    ) -> Request:
        if self._closed or self._transport._closed:
            raise ClientClosedError("this client is closed; create a new one")
        if not isinstance(method, str) or (
            method not in _KNOWN_METHODS and _METHOD.fullmatch(method) is None
        ):
            raise InvalidRequestError(f"invalid HTTP method {method!r}; use a token like 'GET'")
        if not isinstance(path, str):
            raise InvalidRequestError(f"path must be a str, got {type(path).__name__}")
        if path_params:
            url = join_url(self._config.base_url, fill_path(path, path_params))
        elif "{" in path:
            url = join_url(self._config.base_url, fill_path(path, {}))
        else:
            url = join_url(self._config.base_url, path)
            if type(path) is str and len(self._urls) < _URL_CACHE_MAX:
                self._urls[path] = url  # for `_plain_request`
        if not isinstance(max_retries, NotGiven):
            check_max_retries(max_retries)
        if not isinstance(max_response_bytes, NotGiven):
            _check_size("max_response_bytes", max_response_bytes)
        if stream_format is not None and stream_format not in ("sse", "jsonl"):
            raise InvalidRequestError(
                f'stream_format must be "sse", "jsonl" or None, got {stream_format!r}'
            )
        if query is not None and not isinstance(query, Mapping):
            raise InvalidRequestError(f"query= must be a mapping, got {type(query).__name__}")
        if json is NOT_GIVEN and content is None and data is None and files is None:
            body = content_type = None
        else:
            body, content_type = build_body(
                method, json=json, content=content, data=data, files=files
            )
        if headers:
            own, omitted = split_headers(headers)
            if content_type is not None and "Content-Type" not in own:
                own["Content-Type"] = content_type
            header_proxy = CIMultiDictProxy(own)
        else:
            omitted = frozenset()
            header_proxy = (
                _EMPTY_HEADERS
                if content_type is None
                else CIMultiDictProxy(CIMultiDict({"Content-Type": content_type}))
            )
        if (
            timeout is NOT_GIVEN
            and deadline is NOT_GIVEN
            and max_retries is NOT_GIVEN
            and idempotency_key is NOT_GIVEN
            and follow_redirects is NOT_GIVEN
            and max_response_bytes is NOT_GIVEN
            and stream_end_event is None
            and stream_format is None
        ):
            options = self._plain_options(cast_to, stream, raw_response)
        else:
            options = RequestOptions(
                cast_to=cast_to,
                stream=stream,
                raw_response=raw_response,
                timeout=timeout,
                deadline=deadline,
                max_retries=max_retries,
                idempotency_key=idempotency_key,
                follow_redirects=follow_redirects,
                max_response_bytes=max_response_bytes,
                stream_end_event=stream_end_event,
                stream_format=stream_format,
            )
        return Request(
            method=method,
            url=url,
            headers=header_proxy,
            query=query or None,
            body=body,
            options=options,
            omit_headers=omitted,
            extensions=self._extensions,
        )

    def _plain_options(self, cast_to: Any, stream: bool, raw_response: bool) -> RequestOptions:
        """The options of a call that sets nothing but these three, shared when
        ``cast_to`` is a class (``A | B`` equals ``B | A``, but decodes differently)."""
        if cast_to is not NOT_GIVEN and not isinstance(cast_to, type):
            return RequestOptions(cast_to=cast_to, stream=stream, raw_response=raw_response)
        key = (cast_to, stream, raw_response)
        try:
            return self._options_cache[key]
        except KeyError:
            options = RequestOptions(cast_to=cast_to, stream=stream, raw_response=raw_response)
            if len(self._options_cache) < _OPTIONS_CACHE_MAX:
                self._options_cache[key] = options
            return options

    def _plain_request(
        self, method: str, path: str, cast_to: Any, stream: bool, raw_response: bool
    ) -> Request:
        """`_build_request` for a call that sets nothing but these, the usual call:
        the same request, made from the URL this client joined for ``path`` before."""
        url = self._urls.get(path) if type(path) is str else None
        if url is None or method not in _KNOWN_METHODS or self._closed or self._transport._closed:
            return self._build_request(
                method, path, cast_to=cast_to, stream=stream, raw_response=raw_response
            )
        return Request(
            method=method,
            url=url,
            options=self._plain_options(cast_to, stream, raw_response),
            extensions=self._extensions,
        )

    async def _call(
        self,
        method: str,
        path: str,
        cast_to: Any = NOT_GIVEN,
        stream: bool = False,
        raw_response: bool = False,
        **kwargs: Any,
    ) -> Any:
        if not kwargs:
            request = self._plain_request(method, path, cast_to, stream, raw_response)
        else:
            if kwargs.get("files") is not None:
                # Reading Paths and files happens off the event loop, once per call.
                kwargs["files"] = await load_files(
                    method,
                    kwargs["files"],
                    json=kwargs.get("json", NOT_GIVEN),
                    content=kwargs.get("content"),
                    data=kwargs.get("data"),
                )
            request = self._build_request(
                method, path, cast_to=cast_to, stream=stream, raw_response=raw_response, **kwargs
            )
        try:
            response = await self._handler(request)
        except StackwireError as exc:
            if self._secrets:
                _hide_secrets(exc, self._secrets)
            raise
        if request.options.raw_response:
            return response
        return response._parsed

    async def request(
        self,
        method: str,
        path: str,
        *,
        cast_to: Any = NOT_GIVEN,
        stream: bool = False,
        **options: Unpack[CallOptions],
    ) -> Any:
        """Send ``method`` to ``path``; returns what the verbs return.

        ``path`` is relative to ``base_url`` (or absolute); ``{name}`` placeholders
        are filled from ``path_params``. See `CallOptions` for every keyword.
        """
        return await self._call(method.upper(), path, cast_to=cast_to, stream=stream, **options)

    def paginate(
        self,
        path: str,
        *,
        page: type[_PageT],
        method: str = "GET",
        **options: Unpack[PageCallOptions],
    ) -> AsyncPaginator[_PageT]:
        """A paginated list: ``await`` it for the first page, ``async for`` it for items.

        ``page`` is the page model (``CursorPage[User]``, ``OffsetPage[User]``, ...;
        see `stackwire.models.pages`). Every page is requested with ``method`` (GET;
        ``method="POST"`` with ``json=`` for lists searched with a JSON body) and the
        same query, headers, body, timeout and retry options; only the page's own
        parameters (or URL) change.

        >>> async def names(client):  # doctest: +SKIP
        ...     users = client.paginate("/users", page=CursorPage[User], query={"limit": 100})
        ...     return [user.name async for user in users]
        """
        page_class = get_origin(page) or page
        if not (isinstance(page_class, type) and issubclass(page_class, BasePage)):
            raise InvalidRequestError(
                f"page= must be a page model such as CursorPage[User], got {page!r}"
            )
        for name in ("content", "files", "stream", "cast_to"):
            if name in options:
                raise InvalidRequestError(f"paginate() does not take {name}=")
        request = _PageRequest(self, page, method.upper(), path, dict(options))
        return AsyncPaginator(request)

    @property
    def with_raw_response(self) -> RawResponseView:
        """Verbs that return the `Response` (``await response.parse()`` for the value)."""
        return RawResponseView(self)

    @property
    def with_streaming_response(self) -> StreamingResponseView:
        """Verbs that give the `Response` with its body unread, in ``async with``."""
        return StreamingResponseView(self)

    # -- lifecycle -----------------------------------------------------------------

    def _transport_closed(self) -> bool:
        return self._transport._closed

    def pool_stats(self) -> PoolStats:
        """Connections of this client's pool in use and idle (to check nothing leaked)."""
        return self._transport.pool_stats()

    @property
    def is_closed(self) -> bool:
        return self._closed

    async def close(self) -> None:
        """Close the client; the session too, if this client created it."""
        self._closed = True
        if self._owner:
            await self._transport.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    def __del__(self) -> None:
        transport = getattr(self, "_transport", None)
        if (
            transport is not None
            and getattr(self, "_owner", False)
            and transport.owns_session
            and transport.session_created
            and not transport._closed
        ):
            warnings.warn(
                f"unclosed {type(self).__name__} for {self._config.base_url}: use "
                "`async with` or `await client.close()`",
                ResourceWarning,
                stacklevel=2,
                source=self,
            )

    def __repr__(self) -> str:
        key = f", api_key={redact(self._config.api_key)!r}" if self._config.api_key else ""
        return f"{type(self).__name__}({str(self._config.base_url)!r}{key})"


class RawResponseView:
    """``client.with_raw_response``: the same verbs, returning `Response` objects."""

    get: RawVerb = cast("RawVerb", _verb("GET"))
    post: RawVerb = cast("RawVerb", _verb("POST"))
    put: RawVerb = cast("RawVerb", _verb("PUT"))
    patch: RawVerb = cast("RawVerb", _verb("PATCH"))
    delete: RawVerb = cast("RawVerb", _verb("DELETE"))

    __slots__ = ("_client",)

    def __init__(self, client: AsyncClient) -> None:
        self._client = client

    async def _call(self, method: str, path: str, **kwargs: Any) -> Response[Any]:
        return cast(
            "Response[Any]", await self._client._call(method, path, raw_response=True, **kwargs)
        )

    async def request(self, method: str, path: str, **options: Any) -> Response[Any]:
        return await self._call(method.upper(), path, **options)


class StreamingResponseView:
    """``client.with_streaming_response``: verbs giving an unread `Response` in
    ``async with``; leaving the block closes it."""

    get: StreamingVerb = cast("StreamingVerb", _verb("GET"))
    post: StreamingVerb = cast("StreamingVerb", _verb("POST"))
    put: StreamingVerb = cast("StreamingVerb", _verb("PUT"))
    patch: StreamingVerb = cast("StreamingVerb", _verb("PATCH"))
    delete: StreamingVerb = cast("StreamingVerb", _verb("DELETE"))

    __slots__ = ("_client",)

    def __init__(self, client: AsyncClient) -> None:
        self._client = client

    @asynccontextmanager
    async def _open(self, method: str, path: str, **kwargs: Any) -> AsyncIterator[Response[Any]]:
        response = cast(
            "Response[Any]",
            await self._client._call(method, path, raw_response=True, stream=True, **kwargs),
        )
        try:
            yield response
        finally:
            response.close()

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        return self._open(method, path, **kwargs)

    def request(self, method: str, path: str, **options: Any) -> Any:
        return self._open(method.upper(), path, **options)
