"""`AsyncClient`: a typed HTTP API client over one aiohttp session.

Every call runs through ``client.pipeline``, outermost first::

    headers -> query -> timeout -> retry -> decode -> [middlewares=] -> redirects -> transport
    \\________ once per call _________/        \\__________ once per attempt __________/

Clients derived with `AsyncClient.with_options` or `AsyncClient.with_middleware`
share the session of the client they came from; only the client that created the
session closes it.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import AsyncIterator, Iterable, Mapping
from contextlib import asynccontextmanager
from types import MappingProxyType, TracebackType
from typing import Any, Literal, Self, TypeVar, Unpack, cast, get_origin

from multidict import CIMultiDict, CIMultiDictProxy
from yarl import URL

from .._http.urls import fill_path, join_url, normalize_base_url, shown_url
from .._types import NOT_GIVEN, NotGiven, Omit
from ..auth import AUTH_OVERRIDE, Auth, AuthMiddleware
from ..errors import ClientClosedError, InvalidRequestError, StackwireError
from ..middlewares.decode import check_size
from ..middlewares.headers import check_content_length, split_headers
from ..middlewares.retry import (
    check_max_retries,
)
from ..models.decoding import decoder_for
from ..models.sse import ServerSentEvent
from ..pipeline.clocks import Clocks
from ..pipeline.middleware import CallNext, Middleware, not_a_response
from ..pipeline.options import RequestOptions, Timeout
from ..pipeline.pipeline import NamedMiddleware, Pipeline
from ..pipeline.request import ExtensionKey, Request, redact
from ..pipeline.response import REQUEST_ID_HEADERS, REQUEST_ID_HEADERS_KEY, Response
from ..pipeline.secrets import Password
from ..pipeline.stream import make_stream
from ..pipeline.transport import PoolStats, Transport
from ..transports import AiohttpTransport
from ._bodies import build_body, load_files, multipart_boundary
from ._config import (
    _TRANSPORT_OPTIONS,
    ClientOptions,
    DerivedOptions,
    _Config,
    _from_environment,
    _resolve,
    _secret_values,
    _sensitive_names,
)
from ._secrets import _hide_secrets, secrets_in
from ._stack import _default_pipeline, _transport, insert_auth_stage, with_auth_stage
from ._verbs import (
    AsyncRequest,
    AsyncVerb,
    RawRequest,
    RawVerb,
    StreamingRequest,
    StreamingVerb,
    request_function,
    verb_function,
)
from .pagination import AsyncPaginator, BasePage, PageCallOptions, _PageRequest

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


def _verb(method: str) -> Any:
    return verb_function(method, f"Send a {method} request; see `AsyncClient.request`.")


def check_cast_to(cast_to: object) -> None:
    """Refuse, before any I/O, a ``cast_to`` no response could be decoded into
    (``cast_to=5``, ``[User]`` for ``list[User]``): `InvalidRequestError`. It failed
    only once the response was in, after the request had been sent. The check is the
    decoder that the response would use, built once and cached.

    >>> check_cast_to(list[int])
    >>> check_cast_to([int])  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    stackwire.InvalidRequestError: cast_to=[<class 'int'>] is not a type...
    """
    if (
        cast_to is NOT_GIVEN
        or cast_to is Response
        or cast_to is ServerSentEvent
        or (not isinstance(cast_to, type) and get_origin(cast_to) is Response)
    ):
        return
    try:
        hash(cast_to)
    except TypeError:
        raise InvalidRequestError(
            f"cast_to={cast_to!r} is not a type a response can be decoded into "
            "(a class, or a type such as list[User] or A | B)"
        ) from None
    decoder_for(cast_to)  # raises InvalidRequestError for what msgspec cannot decode


class _Lifetime:
    """Whether a transport was closed, shared by the clients that send through it."""

    __slots__ = ("closed",)

    def __init__(self) -> None:
        self.closed = False


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
    head: AsyncVerb = cast("AsyncVerb", _verb("HEAD"))
    options: AsyncVerb = cast("AsyncVerb", _verb("OPTIONS"))
    request: AsyncRequest = cast(
        "AsyncRequest",
        request_function(
            """Send ``method`` to ``path``; returns what the verbs return.

        ``path`` is relative to ``base_url`` (or absolute); ``{name}`` placeholders
        are filled from ``path_params``. See `CallOptions` for every keyword.
        """
        ),
    )

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
        self._setup(config, _transport(config), _Lifetime(), owner=True)

    def _setup(
        self, config: _Config, transport: Transport, lifetime: _Lifetime, *, owner: bool
    ) -> None:
        self._config = config
        self._transport = transport
        self._lifetime = lifetime  # shared by every client on this transport
        self._owner = owner
        self._closed = False
        # Derived clients with a session of their own, closed with this transport's
        # owner (shared by every client on this transport); and the list this client
        # is on itself, if it is one of them.
        self._dependents: list[AsyncClient] = []
        self._origin_dependents: list[AsyncClient] | None = None
        self._pipeline = _default_pipeline(config)
        self._handler = self._pipeline.compose(transport.send)
        self._auth_handler: CallNext | None = None  # see `_handler_with_auth`
        self._secrets = _secret_values(config)
        self._sensitive_names = _sensitive_names(config)
        self._options_cache: dict[_OptionsKey, RequestOptions] = {}
        self._urls: dict[str, URL] = {}  # path -> URL, for paths without placeholders
        # (method, path, cast_to, stream, raw_response) -> the Request of such a call
        self._plain_requests: dict[tuple[str, str, Any, bool, bool], Request] = {}
        # Read-only, since every request of this client shares it.
        extensions: dict[ExtensionKey[Any], Any] = (
            {}
            if config.request_id_headers == REQUEST_ID_HEADERS
            else {REQUEST_ID_HEADERS_KEY: config.request_id_headers}
        )
        # An injected sleep/clock reaches the middlewares below retry (Clocks.of).
        clocks = Clocks.for_client(config.sleep, config.clock)
        if clocks is not None:
            extensions[Clocks.KEY] = clocks
        self._extensions: Mapping[ExtensionKey[Any], Any] = MappingProxyType(extensions)

    @classmethod
    def _derive(cls, parent: AsyncClient, config: _Config, pipeline: Pipeline | None) -> Self:
        """A client with ``config`` sharing ``parent``'s transport (session)."""
        client = cls.__new__(cls)
        # Equal values (``max_connections=1000`` again) keep the parent's session. With a
        # transport= of the caller's, only another transport is another one: the pool
        # options configure the default transport, and reusing the given one as if it
        # were new would let the derived client close it under its parent.
        if config.transport is not None:
            changes_transport = config.transport is not parent._config.transport
        else:
            changes_transport = any(
                getattr(config, name) != getattr(parent._config, name)
                for name in _TRANSPORT_OPTIONS
            )
        if changes_transport:
            client._setup(config, _transport(config), _Lifetime(), owner=True)
            # Closing the client it came from closes it too (held until then).
            parent._dependents.append(client)
            client._origin_dependents = parent._dependents
        else:
            client._setup(config, parent._transport, parent._lifetime, owner=False)
            client._dependents = parent._dependents
        if pipeline is not None:
            client._pipeline = pipeline
            client._handler = pipeline.compose(client._transport.send)
            client._auth_handler = None
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
        if "env_prefix" in options or options.get("base_url", NOT_GIVEN) is None:
            given: dict[str, Any] = dict(options)
            # ``None`` is what the constructor takes for "not given": keep this client's.
            env_prefix = given.pop("env_prefix", None)
            if env_prefix is not None:
                _from_environment(env_prefix, given)
            if given.get("base_url", NOT_GIVEN) is None:
                del given["base_url"]
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
        # Keep the added middlewares where they are; rebuild the built-in ones. The
        # ``auth`` stage comes and goes with ``auth=`` (innermost when it comes, but
        # above an instrumented client's ``otel.request``).
        builtins = set(fresh.names)
        no_auth = "auth" not in builtins
        pipeline = Pipeline(
            NamedMiddleware(entry.name, fresh[entry.name]) if entry.name in builtins else entry
            for entry in current
            if not (
                no_auth and entry.name == "auth" and isinstance(entry.middleware, AuthMiddleware)
            )
        )
        if "auth" in builtins and "auth" not in pipeline:
            pipeline = insert_auth_stage(pipeline, fresh["auth"])
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
        max_retries: int | NotGiven | None = NOT_GIVEN,
        idempotency_key: str | NotGiven | None = NOT_GIVEN,
        follow_redirects: bool | NotGiven | None = NOT_GIVEN,
        max_response_bytes: int | NotGiven | None = NOT_GIVEN,
        stream_end_event: str | None = None,
        auth: Auth | NotGiven | None = NOT_GIVEN,
        stream_format: Literal["sse", "jsonl"] | None = None,
    ) -> Request:
        if self._closed or self._lifetime.closed:
            raise ClientClosedError("this client is closed; create a new one")
        if not isinstance(method, str) or (
            method not in _KNOWN_METHODS and _METHOD.fullmatch(method) is None
        ):
            raise InvalidRequestError(f"invalid HTTP method {method!r}; use a token like 'GET'")
        if not isinstance(path, str):
            raise InvalidRequestError(f"path must be a str, got {type(path).__name__}")
        check_cast_to(cast_to)
        if path_params is not None and not isinstance(path_params, Mapping):
            raise InvalidRequestError(
                f"path_params= must be a mapping of placeholder names to values, "
                f"got {type(path_params).__name__}"
            )
        if headers is not None and (
            isinstance(headers, (str, bytes)) or not isinstance(headers, Iterable)
        ):
            raise InvalidRequestError(f"headers= must be a mapping, got {type(headers).__name__}")
        if path_params:
            url = join_url(self._config.base_url, fill_path(path, path_params))
        elif "{" in path:
            url = join_url(self._config.base_url, fill_path(path, {}))
        else:
            url = join_url(self._config.base_url, path)
            if type(path) is str and len(self._urls) < _URL_CACHE_MAX:
                self._urls[path] = url  # for `_plain_request`
        if not isinstance(max_retries, NotGiven) and max_retries is not None:
            check_max_retries(max_retries)
        if not isinstance(max_response_bytes, NotGiven):
            check_size("max_response_bytes", max_response_bytes)
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
            own, omitted = split_headers(headers, length=True)
            if content_type is not None:
                given = own.get("Content-Type")
                if given is None:
                    own["Content-Type"] = content_type
                elif files is not None and (boundary := multipart_boundary(given)) is not None:
                    # ``multipart/form-data`` without a boundary (as many SDKs set it)
                    # gets this body's; with one, the body is encoded with the caller's.
                    if boundary:
                        body, _ = build_body(
                            method, json=json, data=data, files=files, boundary=boundary
                        )
                    else:
                        own["Content-Type"] = content_type
            check_content_length(own, body)
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
        if auth is None and self._config.api_key is not None:
            # ``auth=None``: no credentials for this call, the client's api_key neither
            # (unless the call sets that header itself).
            key_header = self._config.api_key_header or "Authorization"
            if key_header not in header_proxy:
                omitted = omitted | {key_header.lower()}
        return Request(
            method=method,
            url=url,
            headers=header_proxy,
            query=query or None,
            body=body,
            options=options,
            omit_headers=omitted,
            extensions=self._extensions if auth is NOT_GIVEN else self._auth_override(auth),
        )

    def _auth_override(self, auth: object) -> Mapping[ExtensionKey[Any], Any]:
        """The request extensions carrying a per-request ``auth=`` (``None``: none)."""
        if auth is not None and not isinstance(auth, Auth):
            raise InvalidRequestError(f"auth must be an Auth or None, got {type(auth).__name__}")
        if auth is None and "auth" not in self._pipeline:
            return self._extensions  # (no stage: no credential anyway)
        return {**self._extensions, AUTH_OVERRIDE: (auth,)}

    def _handler_with_auth(self) -> CallNext:
        """The handler of this client's stack with an ``auth`` stage added innermost,
        for a per-request ``auth=`` on a client without one (built on first use, so a
        client that never needs it keeps a stack without the stage)."""
        handler = self._auth_handler
        if handler is None:
            pipeline = with_auth_stage(self._pipeline, self._config)
            handler = self._auth_handler = pipeline.compose(self._transport.send)
        return handler

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
        one shared `Request` per method, path and these options (a request is a
        value), made from the URL this client joined for ``path`` before."""
        url = self._urls.get(path) if type(path) is str else None
        check_cast_to(cast_to)  # (then the request is kept: once per method, path, type)
        if url is None or method not in _KNOWN_METHODS or self._closed or self._lifetime.closed:
            return self._build_request(
                method, path, cast_to=cast_to, stream=stream, raw_response=raw_response
            )
        request = Request(
            method=method,
            url=url,
            options=self._plain_options(cast_to, stream, raw_response),
            extensions=self._extensions,
        )
        if (cast_to is NOT_GIVEN or isinstance(cast_to, type)) and len(
            self._plain_requests
        ) < _URL_CACHE_MAX:
            self._plain_requests[method, path, cast_to, stream, raw_response] = request
        return request

    async def _call(
        self,
        method: str,
        path: str,
        cast_to: Any = NOT_GIVEN,
        stream: bool = False,
        raw_response: bool = False,
        **kwargs: Any,
    ) -> Any:
        if stream is not False and stream is not True:
            # (Before the lookup below: ``1`` and ``True`` are one key there.)
            raise InvalidRequestError(f"stream must be True or False, got {stream!r:.50}")
        if not kwargs:
            try:  # the usual call: the request of the last call like it
                request = self._plain_requests[method, path, cast_to, stream, raw_response]
            except (KeyError, TypeError):  # (TypeError: something unhashable, checked there)
                # Built outside this handler: a refused URL's error would otherwise
                # carry this KeyError, the URL as given (password, api_key=) in it, as
                # its context, which a traceback prints.
                request = None
            if request is None or self._closed or self._lifetime.closed:
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
        handler = self._handler
        if kwargs and isinstance(kwargs.get("auth"), Auth) and "auth" not in self._pipeline:
            handler = self._handler_with_auth()
        try:
            response = await handler(request)
        except StackwireError as exc:
            # Every credential this call sent is a secret of its errors, not only the
            # client's own: a per-call Authorization or Cookie, or what auth= added to
            # the final request (which the error carries), echoed back by the server.
            sent = self._credentials_in(request)
            final = getattr(exc, "request", None)
            if isinstance(final, Request) and final is not request:
                sent += self._credentials_in(final)
            secrets = self._secrets + secrets_in(sent) if sent else self._secrets
            if secrets:
                _hide_secrets(exc, secrets)
            raise
        if request.options.raw_response:
            if not isinstance(response, Response):
                raise not_a_response(response)
            return response
        try:
            return response.parsed
        except AttributeError:
            if isinstance(response, Response):
                raise
            raise not_a_response(response) from None

    def _credentials_in(self, request: Request) -> list[str]:
        """The values of the sensitive headers ``request`` carries."""
        names = self._sensitive_names
        sent = [value for name, value in request.headers.items() if name.lower() in names]
        if request.url.raw_password is not None:  # (sent as Basic credentials)
            sent.append(Password(request.url.password or ""))
        return sent

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
        see `stackwire.client.pagination`). Every page is requested with ``method`` (GET;
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
        if not isinstance(method, str):
            raise InvalidRequestError(f"method= must be a str such as 'GET', got {method!r}")
        request = _PageRequest(self._fetch_page, page, method.upper(), path, dict(options))
        return AsyncPaginator(request)

    async def _fetch_page(
        self, method: str, path: str, options: Mapping[str, Any]
    ) -> Response[Any]:
        """The `PageFetcher` of this client's paginators: one raw call."""
        response = await self._call(method, path, raw_response=True, **options)
        return cast("Response[Any]", response)

    @property
    def with_raw_response(self) -> RawResponseView:
        """Verbs that return the `Response` (``await response.parse()`` for the value)."""
        return RawResponseView(self)

    @property
    def with_streaming_response(self) -> StreamingResponseView:
        """Verbs that give the `Response` with its body unread, in ``async with``."""
        return StreamingResponseView(self)

    # -- lifecycle -----------------------------------------------------------------

    @property
    def transport(self) -> Transport:
        """The `Transport` this client sends through (shared with clients derived from
        it that change no transport option)."""
        return self._transport

    @property
    def owns_transport(self) -> bool:
        """Whether ``close()`` closes the transport: this client created it or was given
        it, rather than sharing the one of the client it was derived from."""
        return self._owner

    @property
    def leaves_connections_open(self) -> bool:
        """Whether dropping this client now, unclosed, would leave connections open: it
        owns a transport that opened a pool of its own and was not closed."""
        transport = self._transport
        return (
            self._owner
            and not self._lifetime.closed
            and isinstance(transport, AiohttpTransport)
            and transport.owns_session
            and transport.session_created
        )

    def pool_stats(self) -> PoolStats:
        """Connections of this client's pool in use and idle (to check nothing leaked)."""
        return self._transport.pool_stats()

    @property
    def is_closed(self) -> bool:
        return self._closed

    async def close(self) -> None:
        """Close the client; the session too, if this client created it, and then
        every client derived from it with a session of its own (``verify=``,
        ``proxy=``, ...). Closing a derived client never closes its origin."""
        self._closed = True
        origin = self._origin_dependents
        if origin is not None and self in origin:
            origin.remove(self)
        if not self._owner:
            return
        self._lifetime.closed = True
        await self._transport.close()
        dependents = self._dependents
        while dependents:
            await dependents[-1].close()  # removes itself from the list

    async def __aenter__(self) -> Self:
        if self._closed or self._lifetime.closed:
            # (Entered again after its block: every call in it would fail.)
            raise ClientClosedError(
                "this client is closed and cannot be reopened; create a new one"
            )
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    def __del__(self) -> None:
        if getattr(self, "_lifetime", None) is not None and self.leaves_connections_open:
            warnings.warn(
                f"unclosed {type(self).__name__} for {shown_url(self._config.base_url)}: use "
                "`async with` or `await client.close()`",
                ResourceWarning,
                stacklevel=2,
                source=self,
            )

    def __repr__(self) -> str:
        key = f", api_key={redact(self._config.api_key)!r}" if self._config.api_key else ""
        return f"{type(self).__name__}({shown_url(self._config.base_url)!r}{key})"


def _parse_as_stream(response: Response[Any], client: AsyncClient) -> None:
    """For ``stream=True`` through ``with_raw_response`` or ``with_streaming_response``
    (as in the OpenAI SDK): ``await response.parse()`` gives the typed `AsyncStream`,
    which owns the body from now on. A content type that cannot be streamed raises
    here, as it does for a plain ``stream=True`` call, and closes the response."""
    options = response.request.options
    config = client._config
    try:
        stream = make_stream(
            response,
            cast_to=options.cast_to,
            strict=config.strict,
            max_event_bytes=config.max_event_bytes,
            end_event=options.stream_end_event,
            stream_format=options.stream_format,
        )
    except BaseException:
        response.close()
        raise
    response.set_parsed(stream)


class RawResponseView:
    """``client.with_raw_response``: the same verbs, returning `Response` objects."""

    get: RawVerb = cast("RawVerb", _verb("GET"))
    post: RawVerb = cast("RawVerb", _verb("POST"))
    put: RawVerb = cast("RawVerb", _verb("PUT"))
    patch: RawVerb = cast("RawVerb", _verb("PATCH"))
    delete: RawVerb = cast("RawVerb", _verb("DELETE"))
    head: RawVerb = cast("RawVerb", _verb("HEAD"))
    options: RawVerb = cast("RawVerb", _verb("OPTIONS"))
    request: RawRequest = cast(
        "RawRequest", request_function("Send ``method`` to ``path``; the `Response`.")
    )

    __slots__ = ("_client",)

    def __init__(self, client: AsyncClient) -> None:
        self._client = client

    async def _call(self, method: str, path: str, **kwargs: Any) -> Response[Any]:
        # (`_unread`: the blocking client's `with_streaming_response`, body left unread.)
        unread = kwargs.pop("_unread", False)
        typed_stream = kwargs.get("stream") is True and not unread
        response = cast(
            "Response[Any]", await self._client._call(method, path, raw_response=True, **kwargs)
        )
        if typed_stream:
            _parse_as_stream(response, self._client)
        return response


class StreamingResponseView:
    """``client.with_streaming_response``: verbs giving an unread `Response` in
    ``async with``; leaving the block closes it."""

    get: StreamingVerb = cast("StreamingVerb", _verb("GET"))
    post: StreamingVerb = cast("StreamingVerb", _verb("POST"))
    put: StreamingVerb = cast("StreamingVerb", _verb("PUT"))
    patch: StreamingVerb = cast("StreamingVerb", _verb("PATCH"))
    delete: StreamingVerb = cast("StreamingVerb", _verb("DELETE"))
    head: StreamingVerb = cast("StreamingVerb", _verb("HEAD"))
    options: StreamingVerb = cast("StreamingVerb", _verb("OPTIONS"))
    request: StreamingRequest = cast(
        "StreamingRequest",
        request_function("``async with`` it for the `Response` of ``method`` ``path``, unread."),
    )

    __slots__ = ("_client",)

    def __init__(self, client: AsyncClient) -> None:
        self._client = client

    @asynccontextmanager
    async def _open(self, method: str, path: str, **kwargs: Any) -> AsyncIterator[Response[Any]]:
        typed_stream = kwargs.pop("stream", False)
        response = cast(
            "Response[Any]",
            await self._client._call(method, path, raw_response=True, stream=True, **kwargs),
        )
        try:
            if typed_stream:
                _parse_as_stream(response, self._client)
            yield response
        finally:
            response.close()

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        return self._open(method, path, **kwargs)
