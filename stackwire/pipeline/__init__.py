"""The pipeline: `Request`, `Response`, the middleware contract, `Pipeline` and the
aiohttp transport."""

from .body import StreamingBody, is_replayable
from .middleware import CallNext, Middleware, RequestRewriter
from .options import RequestOptions, Timeout
from .pipeline import NamedMiddleware, Pipeline
from .request import ExtensionKey, Request
from .response import Response
from .transport import AiohttpTransport, PoolStats

__all__ = [
    "AiohttpTransport",
    "CallNext",
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
    "is_replayable",
]
