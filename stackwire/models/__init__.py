"""Models and decoding (tier 1): the `Model` base, body decoders, SSE events."""

from .decoding import decode_body, decoder_for, encode_json
from .model import Model
from .sse import ServerSentEvent, SSEDecoder

__all__ = [
    "Model",
    "SSEDecoder",
    "ServerSentEvent",
    "decode_body",
    "decoder_for",
    "encode_json",
]
