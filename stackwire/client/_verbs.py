"""The typed signature shared by every verb: keywords and return types.

``get``, ``post``, ... all take a path and the keywords of `CallOptions`; what they
return depends on ``cast_to`` and ``stream``:

- no ``cast_to``: the `Response`;
- ``cast_to=T``: a ``T`` (``T`` a class or a type expression such as ``A | B``);
- ``cast_to=T, stream=True``: an ``AsyncStream[T]``; ``stream=True`` alone: an
  ``AsyncStream[Any]`` (raw `ServerSentEvent` objects, or JSON values for JSON Lines).

``request(method, path, ...)`` is typed the same way (`AsyncRequest`).
"""

from __future__ import annotations

from collections.abc import AsyncIterable, Awaitable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from typing import (
    IO,
    TYPE_CHECKING,
    Any,
    Literal,
    Protocol,
    TypeAlias,
    TypedDict,
    TypeVar,
    Unpack,
    overload,
)

from .._types import Omit
from ..pipeline.options import Timeout
from ..pipeline.response import Response

if TYPE_CHECKING:
    import pathlib

    from typing_extensions import TypeForm

    from ..auth import Auth
    from ..pipeline.stream import AsyncStream

__all__ = [
    "AsyncFile",
    "AsyncRequest",
    "AsyncVerb",
    "BaseCallOptions",
    "CallOptions",
    "FileContent",
    "Files",
    "RawRequest",
    "RawVerb",
    "StreamingRequest",
    "StreamingVerb",
    "request_function",
    "verb_function",
]

_T = TypeVar("_T")


def verb_function(method: str, doc: str) -> Any:
    """``client.get`` & co. of both faces and their views: a plain function per method
    name that calls ``self._call(method, path, **options)``, typed by the protocols
    below (`AsyncVerb`, ...) and their blocking twins.

    Looked up on a client it is a bound method, which Python makes in C (no closure
    per lookup), and it is callable on the class too; the client keeps nothing per
    verb, so no reference cycle ties an unclosed client to itself.
    """

    def verb(self: Any, path: str, **options: Any) -> Any:
        return self._call(method, path, **options)

    verb.__name__ = method.lower()
    verb.__qualname__ = method.lower()
    verb.__doc__ = doc
    return verb


def request_function(doc: str) -> Any:
    """``client.request``: `verb_function` with the method as its first argument."""

    def request(self: Any, method: str, path: str, **options: Any) -> Any:
        # A method that is not a str gets its typed error from the request check.
        method = method.upper() if isinstance(method, str) else method
        return self._call(method, path, **options)

    request.__doc__ = doc
    return request


class AsyncFile(Protocol):
    """An async file object opened in binary mode (aiofiles', anyio's)."""

    def read(self) -> Awaitable[bytes]: ...


FileContent: TypeAlias = "bytes | IO[bytes] | pathlib.Path | AsyncFile"
FileSpec: TypeAlias = (
    "FileContent | tuple[str | None, FileContent] | tuple[str | None, FileContent, str | None]"
    " | tuple[str | None, FileContent, str | None, Mapping[str, str]]"
)
Files: TypeAlias = "Mapping[str, FileSpec] | Sequence[tuple[str, FileSpec]]"


class BaseCallOptions(TypedDict, total=False):
    """The keywords shared by the verbs, `AsyncClient.paginate` and the blocking
    `Client`'s verbs. Leaving one out means "the client's value"; ``None`` turns the
    option off: no limit, no retries (``max_retries``), no idempotency key
    (``idempotency_key``), no redirects followed (``follow_redirects``)."""

    path_params: Mapping[str, object]
    query: Mapping[str, object] | None
    headers: Mapping[str, str | Omit] | None
    json: object
    data: Mapping[str, object] | None
    timeout: Timeout | float | None
    deadline: float | None
    max_retries: int | None
    idempotency_key: str | None
    follow_redirects: bool | None
    max_response_bytes: int | None


class CallOptions(BaseCallOptions, total=False):
    """The keywords every verb takes besides ``path``, ``cast_to`` and ``stream``."""

    content: bytes | AsyncIterable[bytes] | None
    files: Files | None
    stream_end_event: str | None
    stream_format: Literal["sse", "jsonl"] | None
    auth: Auth | None


class AsyncVerb(Protocol):
    """``await client.get(path, cast_to=T, ...)``: see the module docstring.

    ``cast_to`` may be a class or any type expression (``A | B``, ``list[User]``).
    """

    @overload
    def __call__(
        self,
        path: str,
        *,
        cast_to: type[_T],
        stream: Literal[True],
        **options: Unpack[CallOptions],
    ) -> Awaitable[AsyncStream[_T]]: ...
    @overload
    def __call__(
        self,
        path: str,
        *,
        cast_to: TypeForm[_T],
        stream: Literal[True],
        **options: Unpack[CallOptions],
    ) -> Awaitable[AsyncStream[_T]]: ...
    @overload
    def __call__(
        self, path: str, *, stream: Literal[True], **options: Unpack[CallOptions]
    ) -> Awaitable[AsyncStream[Any]]: ...
    @overload
    def __call__(
        self,
        path: str,
        *,
        cast_to: type[_T],
        stream: Literal[False] = False,
        **options: Unpack[CallOptions],
    ) -> Awaitable[_T]: ...
    @overload
    def __call__(
        self,
        path: str,
        *,
        cast_to: TypeForm[_T],
        stream: Literal[False] = False,
        **options: Unpack[CallOptions],
    ) -> Awaitable[_T]: ...
    @overload
    def __call__(
        self, path: str, *, stream: Literal[False] = False, **options: Unpack[CallOptions]
    ) -> Awaitable[Response[Any]]: ...
    @overload
    def __call__(
        self, path: str, *, cast_to: object, stream: bool = False, **options: Unpack[CallOptions]
    ) -> Awaitable[Any]: ...


class AsyncRequest(Protocol):
    """``await client.request(method, path, cast_to=T, ...)``: typed like the verbs."""

    @overload
    def __call__(
        self,
        method: str,
        path: str,
        *,
        cast_to: type[_T],
        stream: Literal[True],
        **options: Unpack[CallOptions],
    ) -> Awaitable[AsyncStream[_T]]: ...
    @overload
    def __call__(
        self,
        method: str,
        path: str,
        *,
        cast_to: TypeForm[_T],
        stream: Literal[True],
        **options: Unpack[CallOptions],
    ) -> Awaitable[AsyncStream[_T]]: ...
    @overload
    def __call__(
        self, method: str, path: str, *, stream: Literal[True], **options: Unpack[CallOptions]
    ) -> Awaitable[AsyncStream[Any]]: ...
    @overload
    def __call__(
        self,
        method: str,
        path: str,
        *,
        cast_to: type[_T],
        stream: Literal[False] = False,
        **options: Unpack[CallOptions],
    ) -> Awaitable[_T]: ...
    @overload
    def __call__(
        self,
        method: str,
        path: str,
        *,
        cast_to: TypeForm[_T],
        stream: Literal[False] = False,
        **options: Unpack[CallOptions],
    ) -> Awaitable[_T]: ...
    @overload
    def __call__(
        self,
        method: str,
        path: str,
        *,
        stream: Literal[False] = False,
        **options: Unpack[CallOptions],
    ) -> Awaitable[Response[Any]]: ...
    @overload
    def __call__(
        self,
        method: str,
        path: str,
        *,
        cast_to: object,
        stream: bool = False,
        **options: Unpack[CallOptions],
    ) -> Awaitable[Any]: ...


class RawVerb(Protocol):
    """``await client.with_raw_response.get(path, cast_to=T)``: a ``Response[T]``."""

    @overload
    def __call__(
        self, path: str, *, cast_to: type[_T], stream: Literal[True], **options: Unpack[CallOptions]
    ) -> Awaitable[Response[AsyncStream[_T]]]: ...
    @overload
    def __call__(
        self,
        path: str,
        *,
        cast_to: TypeForm[_T],
        stream: Literal[True],
        **options: Unpack[CallOptions],
    ) -> Awaitable[Response[AsyncStream[_T]]]: ...
    @overload
    def __call__(
        self, path: str, *, cast_to: type[_T], **options: Unpack[CallOptions]
    ) -> Awaitable[Response[_T]]: ...
    @overload
    def __call__(
        self, path: str, *, cast_to: TypeForm[_T], **options: Unpack[CallOptions]
    ) -> Awaitable[Response[_T]]: ...
    @overload
    def __call__(self, path: str, **options: Unpack[CallOptions]) -> Awaitable[Response[Any]]: ...


class RawRequest(Protocol):
    """``await client.with_raw_response.request(method, path, cast_to=T)``."""

    @overload
    def __call__(
        self,
        method: str,
        path: str,
        *,
        cast_to: type[_T],
        stream: Literal[True],
        **options: Unpack[CallOptions],
    ) -> Awaitable[Response[AsyncStream[_T]]]: ...
    @overload
    def __call__(
        self,
        method: str,
        path: str,
        *,
        cast_to: TypeForm[_T],
        stream: Literal[True],
        **options: Unpack[CallOptions],
    ) -> Awaitable[Response[AsyncStream[_T]]]: ...
    @overload
    def __call__(
        self, method: str, path: str, *, cast_to: type[_T], **options: Unpack[CallOptions]
    ) -> Awaitable[Response[_T]]: ...
    @overload
    def __call__(
        self, method: str, path: str, *, cast_to: TypeForm[_T], **options: Unpack[CallOptions]
    ) -> Awaitable[Response[_T]]: ...
    @overload
    def __call__(
        self, method: str, path: str, **options: Unpack[CallOptions]
    ) -> Awaitable[Response[Any]]: ...


class StreamingVerb(Protocol):
    """``async with client.with_streaming_response.get(path) as response:``."""

    @overload
    def __call__(
        self, path: str, *, cast_to: type[_T], stream: Literal[True], **options: Unpack[CallOptions]
    ) -> AbstractAsyncContextManager[Response[AsyncStream[_T]]]: ...
    @overload
    def __call__(
        self,
        path: str,
        *,
        cast_to: TypeForm[_T],
        stream: Literal[True],
        **options: Unpack[CallOptions],
    ) -> AbstractAsyncContextManager[Response[AsyncStream[_T]]]: ...
    @overload
    def __call__(
        self, path: str, *, cast_to: type[_T], **options: Unpack[CallOptions]
    ) -> AbstractAsyncContextManager[Response[_T]]: ...
    @overload
    def __call__(
        self, path: str, *, cast_to: TypeForm[_T], **options: Unpack[CallOptions]
    ) -> AbstractAsyncContextManager[Response[_T]]: ...
    @overload
    def __call__(
        self, path: str, **options: Unpack[CallOptions]
    ) -> AbstractAsyncContextManager[Response[Any]]: ...


class StreamingRequest(Protocol):
    """``async with client.with_streaming_response.request(method, path) as response:``."""

    @overload
    def __call__(
        self,
        method: str,
        path: str,
        *,
        cast_to: type[_T],
        stream: Literal[True],
        **options: Unpack[CallOptions],
    ) -> AbstractAsyncContextManager[Response[AsyncStream[_T]]]: ...
    @overload
    def __call__(
        self,
        method: str,
        path: str,
        *,
        cast_to: TypeForm[_T],
        stream: Literal[True],
        **options: Unpack[CallOptions],
    ) -> AbstractAsyncContextManager[Response[AsyncStream[_T]]]: ...
    @overload
    def __call__(
        self, method: str, path: str, *, cast_to: type[_T], **options: Unpack[CallOptions]
    ) -> AbstractAsyncContextManager[Response[_T]]: ...
    @overload
    def __call__(
        self, method: str, path: str, *, cast_to: TypeForm[_T], **options: Unpack[CallOptions]
    ) -> AbstractAsyncContextManager[Response[_T]]: ...
    @overload
    def __call__(
        self, method: str, path: str, **options: Unpack[CallOptions]
    ) -> AbstractAsyncContextManager[Response[Any]]: ...
