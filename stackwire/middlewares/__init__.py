"""The built-in middlewares, in their default order."""

from .decode import DecodeMiddleware
from .headers import HeadersMiddleware
from .query import QueryMiddleware
from .redirects import CREDENTIALS_DROPPED, RedirectMiddleware, origin_of
from .retry import RetryEvent, RetryMiddleware, default_should_retry
from .timeout import TimeoutMiddleware

__all__ = [
    "CREDENTIALS_DROPPED",
    "DecodeMiddleware",
    "HeadersMiddleware",
    "QueryMiddleware",
    "RedirectMiddleware",
    "RetryEvent",
    "RetryMiddleware",
    "TimeoutMiddleware",
    "default_should_retry",
    "origin_of",
]
