"""`Client`: the blocking twin of `AsyncClient`, with the same methods.

How it works: a `Client` holds an `AsyncClient` and a private event loop running in
a daemon thread, started on the first call. Each call hands the async call to that
loop and blocks the calling thread until it is done; its value, or its typed error,
comes back in the calling thread. So everything of the async client holds: the same
stack of middlewares, retries, timeouts, errors and pool.

- Middlewares stay ``async``: they run on the client's loop, in its thread (so do
  the ``sleep``, ``on_retry``, ``clock`` and ``random`` options; ``sleep`` is an
  async function, as for `AsyncClient`, or, for tests, a plain one such as a
  recorder's ``append``, which is called on the loop). A middleware must not call the blocking
  client; that raises `BlockingCallInEventLoopError`.
- Derived clients (``with_options``, ``with_middleware``) share the loop thread and
  the session; closing one never closes the client it came from.
- ``close()`` (or leaving ``with``) on the client made with ``Client(...)`` closes
  every session on its loop, stops the loop and joins the thread; derived clients
  are unusable afterwards (`ClientClosedError`). An unclosed client warns with
  ``ResourceWarning`` and its loop is then closed on its own thread.
- Ctrl-C (``KeyboardInterrupt``) while a call waits cancels the call on the loop and
  waits until its connection is closed, then propagates.
- A blocking method works from a thread that runs an event loop of its own (a
  Jupyter cell, a sync function called from ``asyncio.run(main())``): the call runs
  on the client's loop while that loop stalls until it is done. In async code,
  `AsyncClient` (or ``await asyncio.to_thread(client.get, ...)``) keeps it running.
- The client is thread-safe: several threads may call it at once; their calls run
  concurrently on the loop over the one connection pool.

Bad options fail in ``Client(...)`` itself, before any thread starts. The client
cannot borrow an ``aiohttp.ClientSession`` (``session=``): a session belongs to the
loop it was made on, and this client's loop is its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import warnings
from collections.abc import AsyncIterable, AsyncIterator, Iterable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from types import TracebackType
from typing import (
    TYPE_CHECKING,
    Any,
    Literal,
    Protocol,
    Self,
    TypeVar,
    Unpack,
    cast,
    get_origin,
    overload,
)

from yarl import URL

from .._http.urls import shown_url
from .._types import NOT_GIVEN
from ..auth import Auth
from ..client._verbs import BaseCallOptions, Files, request_function, verb_function
from ..client.async_client import AsyncClient, ClientOptions, DerivedOptions
from ..client.pagination import BasePage, PageCallOptions
from ..errors import ClientClosedError, InvalidRequestError
from ..pipeline.middleware import Middleware
from ..pipeline.options import Timeout
from ..pipeline.pipeline import Pipeline
from ..pipeline.response import Response
from ..pipeline.stream import AsyncStream
from ..pipeline.transport import PoolStats, Transport
from ._loop_thread import LoopThread
from .pages import SyncPaginator
from .stream import Stream, SyncResponse

if TYPE_CHECKING:
    from typing_extensions import TypeForm

__all__ = [
    "Client",
    "SyncCallOptions",
    "SyncRawRequest",
    "SyncRawResponseView",
    "SyncRawVerb",
    "SyncRequest",
    "SyncStreamingRequest",
    "SyncStreamingResponseView",
    "SyncStreamingVerb",
    "SyncVerb",
]

_T = TypeVar("_T")
_PageT = TypeVar("_PageT", bound=BasePage[Any])

_END: Any = object()


class SyncCallOptions(BaseCallOptions, total=False):
    """The keywords every blocking verb takes besides ``path``, ``cast_to``, ``stream``.

    The same as `CallOptions`, except that ``content=`` may also be a plain
    (blocking) iterable of bytes, such as a generator or an open binary file: it is
    read in a worker thread, chunk by chunk, while the request is sent.
    """

    content: bytes | Iterable[bytes] | AsyncIterable[bytes] | None
    files: Files | None
    stream_end_event: str | None
    auth: Auth | None
    stream_format: Literal["sse", "jsonl"] | None


class SyncVerb(Protocol):
    """``client.get(path, cast_to=T, ...)``: a ``T``; no ``cast_to``: a `SyncResponse`;
    ``stream=True``: a `Stream` of ``T`` (of ``Any`` without ``cast_to``). ``T`` may be
    a class or a type expression such as ``A | B``."""

    @overload
    def __call__(
        self,
        path: str,
        *,
        cast_to: type[_T],
        stream: Literal[True],
        **options: Unpack[SyncCallOptions],
    ) -> Stream[_T]: ...
    @overload
    def __call__(
        self,
        path: str,
        *,
        cast_to: TypeForm[_T],
        stream: Literal[True],
        **options: Unpack[SyncCallOptions],
    ) -> Stream[_T]: ...
    @overload
    def __call__(
        self,
        path: str,
        *,
        stream: Literal[True],
        **options: Unpack[SyncCallOptions],
    ) -> Stream[Any]: ...
    @overload
    def __call__(
        self,
        path: str,
        *,
        cast_to: type[Response[Any]] | type[SyncResponse[Any]],
        stream: Literal[False] = False,
        **options: Unpack[SyncCallOptions],
    ) -> SyncResponse[Any]: ...
    @overload
    def __call__(
        self,
        path: str,
        *,
        cast_to: type[_T],
        stream: Literal[False] = False,
        **options: Unpack[SyncCallOptions],
    ) -> _T: ...
    @overload
    def __call__(
        self,
        path: str,
        *,
        cast_to: TypeForm[_T],
        stream: Literal[False] = False,
        **options: Unpack[SyncCallOptions],
    ) -> _T: ...
    @overload
    def __call__(
        self,
        path: str,
        *,
        stream: Literal[False] = False,
        **options: Unpack[SyncCallOptions],
    ) -> SyncResponse[Any]: ...
    @overload
    def __call__(
        self,
        path: str,
        *,
        cast_to: object,
        stream: bool = False,
        **options: Unpack[SyncCallOptions],
    ) -> Any: ...


class SyncRequest(Protocol):
    """``client.request(method, path, cast_to=T, ...)``: typed like the verbs."""

    @overload
    def __call__(
        self,
        method: str,
        path: str,
        *,
        cast_to: type[_T],
        stream: Literal[True],
        **options: Unpack[SyncCallOptions],
    ) -> Stream[_T]: ...
    @overload
    def __call__(
        self,
        method: str,
        path: str,
        *,
        cast_to: TypeForm[_T],
        stream: Literal[True],
        **options: Unpack[SyncCallOptions],
    ) -> Stream[_T]: ...
    @overload
    def __call__(
        self,
        method: str,
        path: str,
        *,
        stream: Literal[True],
        **options: Unpack[SyncCallOptions],
    ) -> Stream[Any]: ...
    @overload
    def __call__(
        self,
        method: str,
        path: str,
        *,
        cast_to: type[Response[Any]] | type[SyncResponse[Any]],
        stream: Literal[False] = False,
        **options: Unpack[SyncCallOptions],
    ) -> SyncResponse[Any]: ...
    @overload
    def __call__(
        self,
        method: str,
        path: str,
        *,
        cast_to: type[_T],
        stream: Literal[False] = False,
        **options: Unpack[SyncCallOptions],
    ) -> _T: ...
    @overload
    def __call__(
        self,
        method: str,
        path: str,
        *,
        cast_to: TypeForm[_T],
        stream: Literal[False] = False,
        **options: Unpack[SyncCallOptions],
    ) -> _T: ...
    @overload
    def __call__(
        self,
        method: str,
        path: str,
        *,
        stream: Literal[False] = False,
        **options: Unpack[SyncCallOptions],
    ) -> SyncResponse[Any]: ...
    @overload
    def __call__(
        self,
        method: str,
        path: str,
        *,
        cast_to: object,
        stream: bool = False,
        **options: Unpack[SyncCallOptions],
    ) -> Any: ...


class SyncRawVerb(Protocol):
    """``client.with_raw_response.get(path, cast_to=T)``: a ``SyncResponse[T]``."""

    @overload
    def __call__(
        self,
        path: str,
        *,
        cast_to: type[_T],
        stream: Literal[True],
        **options: Unpack[SyncCallOptions],
    ) -> SyncResponse[Stream[_T]]: ...
    @overload
    def __call__(
        self,
        path: str,
        *,
        cast_to: TypeForm[_T],
        stream: Literal[True],
        **options: Unpack[SyncCallOptions],
    ) -> SyncResponse[Stream[_T]]: ...
    @overload
    def __call__(
        self, path: str, *, cast_to: type[_T], **options: Unpack[SyncCallOptions]
    ) -> SyncResponse[_T]: ...
    @overload
    def __call__(
        self, path: str, *, cast_to: TypeForm[_T], **options: Unpack[SyncCallOptions]
    ) -> SyncResponse[_T]: ...
    @overload
    def __call__(self, path: str, **options: Unpack[SyncCallOptions]) -> SyncResponse[Any]: ...


class SyncRawRequest(Protocol):
    """``client.with_raw_response.request(method, path, cast_to=T)``."""

    @overload
    def __call__(
        self,
        method: str,
        path: str,
        *,
        cast_to: type[_T],
        stream: Literal[True],
        **options: Unpack[SyncCallOptions],
    ) -> SyncResponse[Stream[_T]]: ...
    @overload
    def __call__(
        self,
        method: str,
        path: str,
        *,
        cast_to: TypeForm[_T],
        stream: Literal[True],
        **options: Unpack[SyncCallOptions],
    ) -> SyncResponse[Stream[_T]]: ...
    @overload
    def __call__(
        self, method: str, path: str, *, cast_to: type[_T], **options: Unpack[SyncCallOptions]
    ) -> SyncResponse[_T]: ...
    @overload
    def __call__(
        self, method: str, path: str, *, cast_to: TypeForm[_T], **options: Unpack[SyncCallOptions]
    ) -> SyncResponse[_T]: ...
    @overload
    def __call__(
        self, method: str, path: str, **options: Unpack[SyncCallOptions]
    ) -> SyncResponse[Any]: ...


class SyncStreamingVerb(Protocol):
    """``with client.with_streaming_response.get(path) as response:``."""

    @overload
    def __call__(
        self,
        path: str,
        *,
        cast_to: type[_T],
        stream: Literal[True],
        **options: Unpack[SyncCallOptions],
    ) -> AbstractContextManager[SyncResponse[Stream[_T]]]: ...
    @overload
    def __call__(
        self,
        path: str,
        *,
        cast_to: TypeForm[_T],
        stream: Literal[True],
        **options: Unpack[SyncCallOptions],
    ) -> AbstractContextManager[SyncResponse[Stream[_T]]]: ...
    @overload
    def __call__(
        self, path: str, *, cast_to: type[_T], **options: Unpack[SyncCallOptions]
    ) -> AbstractContextManager[SyncResponse[_T]]: ...
    @overload
    def __call__(
        self, path: str, *, cast_to: TypeForm[_T], **options: Unpack[SyncCallOptions]
    ) -> AbstractContextManager[SyncResponse[_T]]: ...
    @overload
    def __call__(
        self, path: str, **options: Unpack[SyncCallOptions]
    ) -> AbstractContextManager[SyncResponse[Any]]: ...


class SyncStreamingRequest(Protocol):
    """``with client.with_streaming_response.request(method, path) as response:``."""

    @overload
    def __call__(
        self,
        method: str,
        path: str,
        *,
        cast_to: type[_T],
        stream: Literal[True],
        **options: Unpack[SyncCallOptions],
    ) -> AbstractContextManager[SyncResponse[Stream[_T]]]: ...
    @overload
    def __call__(
        self,
        method: str,
        path: str,
        *,
        cast_to: TypeForm[_T],
        stream: Literal[True],
        **options: Unpack[SyncCallOptions],
    ) -> AbstractContextManager[SyncResponse[Stream[_T]]]: ...
    @overload
    def __call__(
        self, method: str, path: str, *, cast_to: type[_T], **options: Unpack[SyncCallOptions]
    ) -> AbstractContextManager[SyncResponse[_T]]: ...
    @overload
    def __call__(
        self, method: str, path: str, *, cast_to: TypeForm[_T], **options: Unpack[SyncCallOptions]
    ) -> AbstractContextManager[SyncResponse[_T]]: ...
    @overload
    def __call__(
        self, method: str, path: str, **options: Unpack[SyncCallOptions]
    ) -> AbstractContextManager[SyncResponse[Any]]: ...


async def _chunks_from_worker_thread(chunks: Iterable[bytes]) -> AsyncIterator[bytes]:
    """A blocking iterable of bytes, read in the loop's default executor."""
    iterator = iter(chunks)
    loop = asyncio.get_running_loop()
    while True:
        chunk = await loop.run_in_executor(None, next, iterator, _END)
        if chunk is _END:
            return
        yield chunk


def _verb(method: str) -> Any:
    return verb_function(method, f"Send a {method} request and wait for it; see `Client.request`.")


def _adapt_call(kwargs: dict[str, Any]) -> dict[str, Any]:
    """The keywords of a blocking call as the async client takes them."""
    cast_to = kwargs.get("cast_to", NOT_GIVEN)
    if cast_to is SyncResponse or get_origin(cast_to) is SyncResponse:
        kwargs["cast_to"] = Response
    content = kwargs.get("content")
    if (
        content is not None
        and not isinstance(content, (bytes, bytearray, memoryview, str, AsyncIterable))
        and isinstance(content, Iterable)
    ):
        kwargs["content"] = _chunks_from_worker_thread(content)
    return kwargs


def _reject_session(options: Mapping[str, object]) -> None:
    if options.get("session") is not None:
        raise InvalidRequestError(
            "Client runs its own event loop and cannot borrow an aiohttp session (a session "
            "belongs to the loop it was made on); use AsyncClient(session=...) instead"
        )


async def _pool_stats(client: AsyncClient) -> PoolStats:
    return client.pool_stats()


class Client:
    """A typed, blocking client for one HTTP API; see the module docstring.

    >>> import stackwire
    >>> with stackwire.Client("https://api.example.com/v1") as client:
    ...     print(client.base_url, client.loop_thread)  # no thread before the first call
    https://api.example.com/v1/ None

    ``client.get("/users/{id}", path_params={"id": 1}, cast_to=User)`` returns a
    ``User``; it takes the options of `AsyncClient` and its verbs the keywords of
    `SyncCallOptions`.
    """

    get: SyncVerb = cast("SyncVerb", _verb("GET"))
    post: SyncVerb = cast("SyncVerb", _verb("POST"))
    put: SyncVerb = cast("SyncVerb", _verb("PUT"))
    patch: SyncVerb = cast("SyncVerb", _verb("PATCH"))
    delete: SyncVerb = cast("SyncVerb", _verb("DELETE"))
    head: SyncVerb = cast("SyncVerb", _verb("HEAD"))
    options: SyncVerb = cast("SyncVerb", _verb("OPTIONS"))
    request: SyncRequest = cast(
        "SyncRequest",
        request_function(
            """Send ``method`` to ``path`` and wait; returns what the verbs return.

        ``path`` is relative to ``base_url`` (or absolute); ``{name}`` placeholders
        are filled from ``path_params``. See `SyncCallOptions` for every keyword.
        """
        ),
    )

    _async: AsyncClient
    _runtime: LoopThread
    _root: bool
    _closed: bool

    def __init__(
        self,
        base_url: str | URL | None = None,
        *,
        env_prefix: str | None = None,
        **options: Unpack[ClientOptions],
    ) -> None:
        _reject_session(options)
        async_client = AsyncClient(base_url, env_prefix=env_prefix, **options)
        runtime = LoopThread()
        runtime.register(async_client)
        self._setup(async_client, runtime, root=True)

    def _setup(self, async_client: AsyncClient, runtime: LoopThread, *, root: bool) -> None:
        self._async = async_client
        self._runtime = runtime
        self._root = root
        self._closed = False

    def _derive(self, async_client: AsyncClient) -> Self:
        client = type(self).__new__(type(self))
        client._setup(async_client, self._runtime, root=False)
        if async_client.owns_transport:  # it changed a transport option: its own transport
            self._runtime.register(async_client)
        return client

    # -- the stack -----------------------------------------------------------------

    @property
    def pipeline(self) -> Pipeline:
        """The whole stack, outermost first; ``print()`` it to see it."""
        return self._async.pipeline

    @property
    def base_url(self) -> URL:
        """The base URL (a ``yarl.URL`` ending with ``/``)."""
        return self._async.base_url

    @property
    def timeout(self) -> Timeout | None:
        return self._async.timeout

    @property
    def max_retries(self) -> int:
        return self._async.max_retries

    @property
    def async_client(self) -> AsyncClient:
        """The `AsyncClient` underneath; use it only on this client's loop."""
        return self._async

    def with_options(self, **options: Unpack[DerivedOptions]) -> Self:
        """A client with some options changed, sharing this client's loop and session.

        ``headers=``/``query=`` merge into this client's; ``set_headers=``/
        ``set_query=`` replace them. Closing the new client never closes this one.
        """
        _reject_session(options)
        self._check_open()
        return self._derive(self._async.with_options(**options))

    def with_middleware(
        self,
        middleware: Middleware,
        *,
        name: str | None = None,
        before: str | None = None,
        after: str | None = None,
    ) -> Self:
        """A client that also runs ``middleware`` (an async middleware; it runs on this
        client's loop), innermost unless ``before=``/``after=`` names another."""
        self._check_open()
        derived = self._async.with_middleware(middleware, name=name, before=before, after=after)
        return self._derive(derived)

    # -- calls ---------------------------------------------------------------------

    def _check_open(self, *, reopen: bool = False) -> None:
        if self._closed or self._runtime.stopped:
            cannot = " and cannot be reopened" if reopen else ""
            raise ClientClosedError(f"this client is closed{cannot}; create a new one")

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        self._check_open()
        kwargs = _adapt_call(kwargs)
        # Through the async client's public faces: `request`, and its raw view.
        raw = kwargs.pop("raw_response", False)
        target: Any = self._async.with_raw_response if raw else self._async

        async def send() -> Any:
            return await target.request(method, path, **kwargs)

        value = self._runtime.run(
            send,
            what=f"Client.{str(method).lower()}()",
        )
        if isinstance(value, Response):
            response = SyncResponse(value, self._runtime, self)
            if not value.is_closed:  # streamed: closed with the client if still open
                self._runtime.track(response)
            return response
        if isinstance(value, AsyncStream):
            stream = Stream(value, self._runtime, self)
            self._runtime.track(stream)
            return stream
        return value

    def paginate(
        self,
        path: str,
        *,
        page: type[_PageT],
        method: str = "GET",
        **options: Unpack[PageCallOptions],
    ) -> SyncPaginator[_PageT]:
        """A paginated list: ``first_page()`` for the first page, ``for`` it for items.

        Takes what `AsyncClient.paginate` takes; see `SyncPaginator`. Nothing is sent
        until it is iterated.

        >>> for user in client.paginate("/users", page=CursorPage[User]):  # doctest: +SKIP
        ...     print(user.name)
        """
        self._check_open()
        paginator = self._async.paginate(path, page=page, method=method, **options)
        runtime = self._runtime
        raw = self._async.with_raw_response

        async def fetch_on_loop(
            method: str, path: str, options: Mapping[str, Any]
        ) -> Response[Any]:
            # Every page on this client's loop, even one awaited on another loop
            # (`await page.get_next_page()` in a notebook cell).
            async def send() -> Response[Any]:
                response: Response[Any] = await raw.request(method, path, **options)
                return response

            return await runtime.run_async(send)

        return SyncPaginator(paginator.with_fetcher(fetch_on_loop), runtime, self)

    @property
    def with_raw_response(self) -> SyncRawResponseView:
        """Verbs that return the `SyncResponse` (``response.parse()`` for the value)."""
        return SyncRawResponseView(self)

    @property
    def with_streaming_response(self) -> SyncStreamingResponseView:
        """Verbs that give the `SyncResponse` with its body unread, in ``with``."""
        return SyncStreamingResponseView(self)

    # -- lifecycle -----------------------------------------------------------------

    @property
    def transport(self) -> Transport:
        """The `Transport` this client sends through, on its loop (shared with clients
        derived from it that change no transport option)."""
        return self._async.transport

    @property
    def owns_transport(self) -> bool:
        """Whether ``close()`` closes the transport (see `AsyncClient.owns_transport`)."""
        return self._async.owns_transport

    @property
    def leaves_connections_open(self) -> bool:
        """Whether dropping this client now, unclosed, would leave connections open."""
        return self._async.leaves_connections_open

    def pool_stats(self) -> PoolStats:
        """Connections of this client's pool in use and idle (to check nothing leaked)."""
        runtime = self._runtime
        if runtime.started and not runtime.stopped and not runtime.in_loop_thread():
            # Read on the loop, so the pool is not changing while it is counted; from
            # inside another running loop (or once closed) read it directly.
            with contextlib.suppress(RuntimeError):
                return runtime.run(lambda: _pool_stats(self._async), what="pool_stats()")
        return self._async.pool_stats()

    @property
    def is_closed(self) -> bool:
        return self._closed

    @property
    def loop_thread(self) -> threading.Thread | None:
        """The thread running this client's event loop (``None`` before the first call)."""
        return self._runtime.thread

    def close(self) -> None:
        """Close the client.

        On the client made with ``Client(...)``: close every session on its loop, stop
        the loop and join its thread. On a derived client: close its own session, if
        it has one (it changed ``verify``, ``proxy``, ...), and nothing else.
        """
        runtime = self._runtime
        if self._root:
            # Every time: a close while another thread's close is under way waits for it.
            self._closed = True
            runtime.shutdown()
            return
        if self._closed:
            return
        self._closed = True
        runtime.unregister(self._async)
        if runtime.started and not runtime.stopped:
            async_client = self._async
            with contextlib.suppress(ClientClosedError):  # the root was closed meanwhile
                runtime.run(async_client.close, what="Client.close()")

    def __enter__(self) -> Self:
        self._check_open(reopen=True)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __del__(self) -> None:
        if getattr(self, "_closed", True):
            return
        runtime = self._runtime
        if runtime.stopped or not runtime.started:
            return
        if not self._root and not self._async.leaves_connections_open:
            return
        warnings.warn(
            f"unclosed Client for {shown_url(self._async.base_url)}: "
            "use `with stackwire.Client(...)` "
            "or call `client.close()`",
            ResourceWarning,
            stacklevel=2,
            # No source=: a recorded warning would keep the client and its loop alive.
        )
        # No cleanup from here: the loop closes what it owns once nothing refers to it.

    def __repr__(self) -> str:
        return "Client" + repr(self._async).removeprefix("AsyncClient")


class SyncRawResponseView:
    """``client.with_raw_response``: the same verbs, returning `SyncResponse` objects."""

    get: SyncRawVerb = cast("SyncRawVerb", _verb("GET"))
    post: SyncRawVerb = cast("SyncRawVerb", _verb("POST"))
    put: SyncRawVerb = cast("SyncRawVerb", _verb("PUT"))
    patch: SyncRawVerb = cast("SyncRawVerb", _verb("PATCH"))
    delete: SyncRawVerb = cast("SyncRawVerb", _verb("DELETE"))
    head: SyncRawVerb = cast("SyncRawVerb", _verb("HEAD"))
    options: SyncRawVerb = cast("SyncRawVerb", _verb("OPTIONS"))
    request: SyncRawRequest = cast(
        "SyncRawRequest",
        request_function("Send ``method`` to ``path`` and wait; the `SyncResponse`."),
    )

    __slots__ = ("_client",)

    def __init__(self, client: Client) -> None:
        self._client = client

    def _call(self, method: str, path: str, **kwargs: Any) -> SyncResponse[Any]:
        return cast(
            "SyncResponse[Any]", self._client._call(method, path, raw_response=True, **kwargs)
        )


class SyncStreamingResponseView:
    """``client.with_streaming_response``: verbs giving an unread `SyncResponse` in
    ``with``; leaving the block closes it (and its connection, unless fully read)."""

    get: SyncStreamingVerb = cast("SyncStreamingVerb", _verb("GET"))
    post: SyncStreamingVerb = cast("SyncStreamingVerb", _verb("POST"))
    put: SyncStreamingVerb = cast("SyncStreamingVerb", _verb("PUT"))
    patch: SyncStreamingVerb = cast("SyncStreamingVerb", _verb("PATCH"))
    delete: SyncStreamingVerb = cast("SyncStreamingVerb", _verb("DELETE"))
    head: SyncStreamingVerb = cast("SyncStreamingVerb", _verb("HEAD"))
    options: SyncStreamingVerb = cast("SyncStreamingVerb", _verb("OPTIONS"))
    request: SyncStreamingRequest = cast(
        "SyncStreamingRequest",
        request_function(
            "``with`` it to get the `SyncResponse` of ``method`` ``path``, body unread."
        ),
    )

    __slots__ = ("_client",)

    def __init__(self, client: Client) -> None:
        self._client = client

    @contextmanager
    def _open(self, method: str, path: str, **kwargs: Any) -> Iterator[SyncResponse[Any]]:
        # ``stream=True`` given here: ``parse()`` gives the typed `Stream`; else the
        # body stays unread.
        unread = not kwargs.pop("stream", False)
        response = cast(
            "SyncResponse[Any]",
            self._client._call(
                method, path, raw_response=True, stream=True, _unread=unread, **kwargs
            ),
        )
        try:
            yield response
        finally:
            response.close()

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        return self._open(method, path, **kwargs)
