"""The pipeline (tier 2): `Request`, `Response`, `AsyncStream`, the middleware contract,
`Pipeline` and the transport contract."""

from .attempts import Attempt, TimingRecord, Timings
from .body import StreamingBody, is_replayable
from .clocks import Clocks
from .middleware import CallNext, Middleware, RequestRewriter
from .options import RequestOptions, Timeout
from .pipeline import NamedMiddleware, Pipeline
from .request import ExtensionKey, Request
from .response import Response
from .stream import AsyncStream
from .transport import PoolStats, Transport

__all__ = [
    "AsyncStream",
    "Attempt",
    "CallNext",
    "Clocks",
    "ExtensionKey",
    "Middleware",
    "NamedMiddleware",
    "Pipeline",
    "PoolStats",
    "Request",
    "RequestOptions",
    "RequestRewriter",
    "Response",
    "StreamingBody",
    "Timeout",
    "TimingRecord",
    "Timings",
    "Transport",
    "is_replayable",
]
