"""Models and decoding: the `Model` base, body decoders, SSE events and streams."""

from .decoding import decode_body, decoder_for, encode_json
from .model import Model
from .sse import ServerSentEvent, SSEDecoder
from .stream import AsyncStream

__all__ = [
    "AsyncStream",
    "Model",
    "SSEDecoder",
    "ServerSentEvent",
    "decode_body",
    "decoder_for",
    "encode_json",
]
