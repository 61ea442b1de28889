"""Connection timings from aiohttp's tracing hooks, into a `TimingRecord`.

The default transport passes one `TimingRecord` per physical request as aiohttp's
``trace_request_ctx``; the hooks below write the phases into it as aiohttp reports
them. Only hooks that say something the transport cannot see itself are registered,
and most fire only when the phase happens (a new connection, a DNS lookup, a full
pool): a request on a reused connection runs one of them. The transport stamps the
start and the arrival of the headers itself (so a borrowed session, which has no
hooks of ours, still gets ``first_byte`` and ``body``).

aiohttp has no hook around the TLS handshake: it is part of ``connect`` and ``tls``
stays ``None``.
"""

from __future__ import annotations

import time
from types import SimpleNamespace
from typing import Any

import aiohttp

from ..pipeline.attempts import TimingRecord

__all__ = ["timing_trace_config"]

_monotonic = time.monotonic


def _record(context: SimpleNamespace) -> TimingRecord | None:
    record = context.trace_request_ctx
    return record if isinstance(record, TimingRecord) else None


async def _queued_start(_: aiohttp.ClientSession, context: SimpleNamespace, __: Any) -> None:
    context.queued_at = _monotonic()


async def _queued_end(_: aiohttp.ClientSession, context: SimpleNamespace, __: Any) -> None:
    record = _record(context)
    queued_at = getattr(context, "queued_at", None)
    if record is not None and queued_at is not None:
        record.pool_wait = (record.pool_wait or 0.0) + _monotonic() - queued_at


async def _dns_start(_: aiohttp.ClientSession, context: SimpleNamespace, __: Any) -> None:
    context.dns_at = _monotonic()


async def _dns_end(_: aiohttp.ClientSession, context: SimpleNamespace, __: Any) -> None:
    record = _record(context)
    dns_at = getattr(context, "dns_at", None)
    if record is not None and dns_at is not None:
        record.dns = _monotonic() - dns_at


async def _create_start(_: aiohttp.ClientSession, context: SimpleNamespace, __: Any) -> None:
    context.connect_at = _monotonic()


async def _create_end(_: aiohttp.ClientSession, context: SimpleNamespace, __: Any) -> None:
    record = _record(context)
    connect_at = getattr(context, "connect_at", None)
    if record is not None and connect_at is not None:
        now = _monotonic()
        # aiohttp's "create" includes the DNS lookup: connect is the rest.
        record.connect = max(now - connect_at - (record.dns or 0.0), 0.0)
        record.connected_at = now
        record.reused = False


async def _reused(_: aiohttp.ClientSession, context: SimpleNamespace, __: Any) -> None:
    record = _record(context)
    if record is not None:
        record.connected_at = _monotonic()
        record.reused = True
        record.connect = None


def timing_trace_config() -> aiohttp.TraceConfig:
    """A `aiohttp.TraceConfig` filling the `TimingRecord` passed as ``trace_request_ctx``."""
    config = aiohttp.TraceConfig()
    config.on_connection_queued_start.append(_queued_start)
    config.on_connection_queued_end.append(_queued_end)
    config.on_dns_resolvehost_start.append(_dns_start)
    config.on_dns_resolvehost_end.append(_dns_end)
    config.on_connection_create_start.append(_create_start)
    config.on_connection_create_end.append(_create_end)
    config.on_connection_reuseconn.append(_reused)
    config.freeze()
    return config
