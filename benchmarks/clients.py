"""The clients under test, each behind the same four operations.

Every benchmark drives a client through `ClientUnderTest`, so the loops that time and
count are written once and every client runs exactly the same loop. Each adapter
imports its library only when it is opened: a worker process pays only for the
library it measures, which keeps its RSS and start-up honest.

The operations are the idiomatic way each library does the job, with default
settings; the hand-written aiohttp + msgspec adapter is the baseline stackwire has to
beat, written as the plainest fast loop a careful programmer would write: one
default `ClientSession`, a `msgspec.json.Decoder(User)` built once, and
`async with session.get(url) as r: decode(await r.read())`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from harness import Unavailable, import_stackwire
from payloads import models_on, union_models_on

STREAM_CHUNK = 64 * 1024


class ClientUnderTest(Protocol):
    async def get_user(self) -> Any:
        """`GET /users/1` decoded into the library's `User` model."""

    async def count_events(self, path: str) -> int:
        """Stream `path` as typed SSE events (decoded into `Event`); return how many."""

    async def count_union_events(self, path: str) -> int:
        """Stream `path` as SSE events whose data is the tagged union
        `payloads.union_models_on(...).Event`, each decoded; return how many."""

    async def stream_body(self, path: str) -> int:
        """Stream `path` without buffering it; return the number of bytes seen."""

    async def read_body(self, path: str) -> bytes:
        """Read the whole body of `path` into memory."""

    async def aclose(self) -> None: ...


class StackwireClient:
    """`stackwire.AsyncClient` with its full default stack."""

    def __init__(self, base_url: str) -> None:
        stackwire = import_stackwire()
        self._models = models_on(stackwire.Model)
        self._union = union_models_on(stackwire.Model).Event
        self._client = stackwire.AsyncClient(base_url=base_url + "/")

    async def get_user(self) -> Any:
        return await self._client.get("/users/1", cast_to=self._models.User)

    async def count_events(self, path: str) -> int:
        count = 0
        stream = await self._client.get(path, cast_to=self._models.Event, stream=True)
        async with stream:
            async for _event in stream:
                count += 1
        return count

    async def count_union_events(self, path: str) -> int:
        count = 0
        stream = await self._client.get(path, cast_to=self._union, stream=True)
        async with stream:
            async for _event in stream:
                count += 1
        return count

    async def stream_body(self, path: str) -> int:
        seen = 0
        async with self._client.with_streaming_response.get(path) as response:
            # `iter_bytes()` where the Response has it; `iter_raw()` is its raw twin.
            chunks = getattr(response, "iter_bytes", None) or response.iter_raw
            async for chunk in chunks():
                seen += len(chunk)
        return seen

    async def read_body(self, path: str) -> bytes:
        # No cast_to: the decode middleware reads the body and hands back the Response.
        # The 64 MiB default cap is lifted, as a caller reading a large body would.
        response = await self._client.get(path, max_response_bytes=None)
        return await _body_of(response)

    async def aclose(self) -> None:
        await self._client.close()


async def _body_of(response: Any) -> bytes:
    """The buffered body of a stackwire `Response`, whichever accessor it offers."""
    for name in ("read", "aread"):
        method = getattr(response, name, None)
        if callable(method):
            body = await method()
            return bytes(body) if not isinstance(body, bytes) else body
    for name in ("content", "body"):
        value = getattr(response, name, None)
        if isinstance(value, bytes | bytearray | memoryview):
            return value if isinstance(value, bytes) else bytes(value)
    raise Unavailable("stackwire Response has no read()/content accessor")


class AiohttpClient:
    """aiohttp + msgspec written by hand: the baseline to beat."""

    def __init__(self, base_url: str) -> None:
        import aiohttp
        import msgspec

        self._base_url = base_url
        models = models_on(msgspec.Struct)
        # Decoders built once, as a careful hand-written loop does.
        self._decode_user = msgspec.json.Decoder(models.User).decode
        self._decode_event = msgspec.json.Decoder(models.Event).decode
        self._decode_union = msgspec.json.Decoder(union_models_on(msgspec.Struct).Event).decode
        self._session = aiohttp.ClientSession()
        self._user_url = base_url + "/users/1"

    async def get_user(self) -> Any:
        async with self._session.get(self._user_url) as r:
            return self._decode_user(await r.read())

    async def count_events(self, path: str) -> int:
        return await self._count_sse(path, self._decode_event)

    async def count_union_events(self, path: str) -> int:
        return await self._count_sse(path, self._decode_union)

    async def _count_sse(self, path: str, decode: Callable[[bytes], Any]) -> int:
        """A fast hand-written reader: bytes split at blank lines, `data:` lines only.

        Not a conforming SSE parser (no CR line ends, no multi-line data, no BOM, no
        comments or ids): a floor for what any typed stream costs on top of aiohttp
        and msgspec.
        """
        count = 0
        pending = b""
        async with self._session.get(self._base_url + path) as r:
            async for chunk in r.content.iter_any():
                *blocks, pending = (pending + chunk).split(b"\n\n")
                for block in blocks:
                    for line in block.split(b"\n"):
                        if line.startswith(b"data:"):
                            decode(line[5:])
                            count += 1
        return count

    async def stream_body(self, path: str) -> int:
        seen = 0
        async with self._session.get(self._base_url + path) as r:
            async for chunk in r.content.iter_chunked(STREAM_CHUNK):
                seen += len(chunk)
        return seen

    async def read_body(self, path: str) -> bytes:
        async with self._session.get(self._base_url + path) as r:
            return await r.read()

    async def aclose(self) -> None:
        await self._session.close()


class HttpxClient:
    """httpx.AsyncClient + pydantic `model_validate_json` (+ httpx-sse for streams)."""

    def __init__(self, base_url: str) -> None:
        import httpx
        import pydantic

        self._models = models_on(pydantic.BaseModel)
        self._client = httpx.AsyncClient(base_url=base_url)

    async def get_user(self) -> Any:
        response = await self._client.get("/users/1")
        return self._models.User.model_validate_json(response.content)

    async def count_events(self, path: str) -> int:
        from httpx_sse import aconnect_sse

        validate = self._models.Event.model_validate_json
        count = 0
        async with aconnect_sse(self._client, "GET", path) as source:
            async for event in source.aiter_sse():
                validate(event.data)
                count += 1
        return count

    async def count_union_events(self, path: str) -> int:
        raise Unavailable("the tagged-union stream is measured for msgspec clients only")

    async def stream_body(self, path: str) -> int:
        seen = 0
        async with self._client.stream("GET", path) as response:
            async for chunk in response.aiter_bytes():
                seen += len(chunk)
        return seen

    async def read_body(self, path: str) -> bytes:
        return (await self._client.get(path)).content

    async def aclose(self) -> None:
        await self._client.aclose()


class AnthropicClient:
    """The official anthropic SDK's base client, used as a generic API client.

    `transport="aiohttp"` swaps in `DefaultAioHttpClient` (the `anthropic[aiohttp]`
    extra); otherwise the SDK's default httpx transport is used.
    """

    def __init__(self, base_url: str, transport: str = "default") -> None:
        import anthropic

        self._models = models_on(anthropic.BaseModel)
        self._stream_cls = anthropic.AsyncStream[self._models.Event]  # type: ignore[name-defined]
        options: dict[str, Any] = {}
        if transport == "aiohttp":
            try:
                options["http_client"] = anthropic.DefaultAioHttpClient()
            except RuntimeError as error:
                raise Unavailable(str(error)) from error
        self._client = anthropic.AsyncAnthropic(base_url=base_url, api_key="x", **options)

    async def get_user(self) -> Any:
        return await self._client.get("/users/1", cast_to=self._models.User)

    async def count_events(self, path: str) -> int:
        count = 0
        stream = await self._client.get(
            path, cast_to=self._models.Event, stream=True, stream_cls=self._stream_cls
        )
        async for _event in stream:
            count += 1
        return count

    async def count_union_events(self, path: str) -> int:
        raise Unavailable("the tagged-union stream is measured for msgspec clients only")

    async def stream_body(self, path: str) -> int:
        raise Unavailable("not measured for the anthropic SDK")

    async def read_body(self, path: str) -> bytes:
        raise Unavailable("not measured for the anthropic SDK")

    async def aclose(self) -> None:
        await self._client.close()


CLIENTS: dict[str, tuple[str, Callable[[str], ClientUnderTest]]] = {
    "stackwire": ("stackwire (full default stack)", StackwireClient),
    "aiohttp": ("aiohttp + msgspec, hand-written", AiohttpClient),
    "httpx": ("httpx + pydantic", HttpxClient),
    "anthropic": ("anthropic SDK, default transport", AnthropicClient),
    "anthropic_aiohttp": (
        "anthropic SDK, DefaultAioHttpClient",
        lambda base_url: AnthropicClient(base_url, transport="aiohttp"),
    ),
}


def selected() -> list[str]:
    """The clients this run measures: all of `CLIENTS`, or those named in the
    comma-separated ``BENCH_CLIENTS`` environment variable (``run.py --clients``)."""
    import os

    wanted = os.environ.get("BENCH_CLIENTS", "")
    names = [name.strip() for name in wanted.split(",") if name.strip()]
    return [name for name in CLIENTS if not names or name in names]


def open_client(name: str, base_url: str) -> ClientUnderTest:
    """Build the named client (imports its library now). Call inside the event loop."""
    return CLIENTS[name][1](base_url)


def label(name: str) -> str:
    return CLIENTS[name][0]


async def run_concurrently(
    call: Callable[[], Awaitable[Any]], concurrency: int, count: int
) -> None:
    """Run `call` `count` times in total with at most `concurrency` in flight."""
    import asyncio

    remaining = [count]

    async def worker() -> None:
        while remaining[0] > 0:
            remaining[0] -= 1
            await call()

    await asyncio.gather(*(worker() for _ in range(concurrency)))
