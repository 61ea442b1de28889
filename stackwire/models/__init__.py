"""Models and decoding: the `Model` base, body decoders, SSE events and streams."""

from .decoding import decode_body, decoder_for, encode_json
from .model import Model
from .pages import (
    AsyncPaginator,
    BasePage,
    CursorPage,
    Link,
    LinkPage,
    OffsetPage,
    PageCallOptions,
    PageInfo,
    PageNumberPage,
    parse_link_header,
)
from .sse import ServerSentEvent, SSEDecoder
from .stream import AsyncStream

__all__ = [
    "AsyncPaginator",
    "AsyncStream",
    "BasePage",
    "CursorPage",
    "Link",
    "LinkPage",
    "Model",
    "OffsetPage",
    "PageCallOptions",
    "PageInfo",
    "PageNumberPage",
    "SSEDecoder",
    "ServerSentEvent",
    "decode_body",
    "decoder_for",
    "encode_json",
    "parse_link_header",
]
