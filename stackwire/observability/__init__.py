"""Observability (tier 3): the attempt history, redacting logs, OpenTelemetry.

- `Attempt` and `Timings`: every call's attempts (``Response.attempts``,
  ``APIError.attempts``), filled by ``retry`` and the transport, on by default;
- `LoggingMiddleware`: one DEBUG line per attempt on the ``"stackwire"`` logger,
  with headers and query values shown by allowlist and secrets never shown;
- `OpenTelemetry`: a call span above ``retry`` and a CLIENT span per physical
  request, trace context propagation and the request duration histogram
  (``pip install stackwire[otel]``; imported only when used).
"""

from ..pipeline.attempts import Attempt, Timings
from .log import DEFAULT_HEADER_ALLOWLIST, DEFAULT_QUERY_ALLOWLIST, LoggingMiddleware
from .otel import DURATION_BUCKETS, OpenTelemetry

__all__ = [
    "DEFAULT_HEADER_ALLOWLIST",
    "DEFAULT_QUERY_ALLOWLIST",
    "DURATION_BUCKETS",
    "Attempt",
    "LoggingMiddleware",
    "OpenTelemetry",
    "Timings",
]
