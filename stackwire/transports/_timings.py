"""Connection timings of the default transport, into each request's `TimingRecord`.

aiohttp reports these phases through its tracing hooks (``TraceConfig``), but a
session with any ``TraceConfig`` pays for the tracing machinery on every request:
measured at about 58,000 instructions per call (16 % of a whole stackwire call),
whether a phase happens or not. The same moments are taken here instead, in a
subclass of aiohttp's ``TCPConnector``, at the places the pool does the work, each
of which runs only when its phase happens: waiting for a free connection of a full
pool, resolving a host name, opening a connection (TCP, proxy tunnel) and the TLS
handshake. A request on a reused connection touches none of them, and costs one
`contextvars.ContextVar.set`.

How a record reaches them: the transport sets `CURRENT_RECORD` before sending;
aiohttp runs the pool's work in the sending task, so the hooks read it from the
same context. A request that opened no connection reused one.

The TLS handshake: aiohttp connects the socket first (``aiohappyeyeballs``) and then
hands it to ``loop.create_connection(sock=..., ssl=...)``, which makes the protocol
(once the socket is connected) and then runs the handshake. The protocol factory is
wrapped so that its call marks the moment the handshake starts; its end is when
``create_connection`` returns. Through a proxy's CONNECT tunnel the handshake is
aiohttp's ``loop.start_tls`` step, timed as a whole. ``connect`` is the time of
opening the connection without the host lookup and without the handshake, so the
phases do not overlap; ``tls`` stays ``None`` for plain HTTP.
"""

from __future__ import annotations

import time
from contextvars import ContextVar
from typing import Any

import aiohttp

from ..pipeline.attempts import TimingRecord

__all__ = ["CURRENT_RECORD", "TimedConnector"]

CURRENT_RECORD: ContextVar[TimingRecord | None] = ContextVar(
    "stackwire_timing_record", default=None
)
"""The record of the request being sent by this task (set by the transport)."""

_monotonic = time.monotonic


class TimedConnector(aiohttp.TCPConnector):
    """aiohttp's TCP connector, writing pool wait, DNS, connect and TLS handshake
    times into the sending request's `TimingRecord` (see the module docstring)."""

    async def _wait_for_available_connection(self, key: Any, traces: Any) -> None:
        record = CURRENT_RECORD.get()
        queued_at = _monotonic()
        try:
            await super()._wait_for_available_connection(key, traces)
        finally:
            if record is not None:
                record.pool_wait = (record.pool_wait or 0.0) + _monotonic() - queued_at

    async def _resolve_host(self, host: str, port: int, traces: Any = None) -> Any:
        record = CURRENT_RECORD.get()
        started = _monotonic()
        try:
            return await super()._resolve_host(host, port, traces)
        finally:
            if record is not None and not aiohttp.helpers.is_ip_address(host):
                record.dns = _monotonic() - started

    async def _create_connection(self, req: Any, traces: Any, timeout: Any) -> Any:  # noqa: ASYNC109 (aiohttp's signature)
        record = CURRENT_RECORD.get()
        started = _monotonic()
        protocol = await super()._create_connection(req, traces, timeout)
        if record is not None:
            now = _monotonic()
            # Opening a connection includes resolving the host and the TLS
            # handshake: connect is the rest.
            spent = now - started - (record.dns or 0.0) - (record.tls or 0.0)
            record.connect = max(spent, 0.0)
            record.connected_at = now
            record.reused = False
        return protocol

    async def _wrap_create_connection(self, *args: Any, **kwargs: Any) -> Any:
        record = CURRENT_RECORD.get()
        if record is None or not kwargs.get("ssl"):
            return await super()._wrap_create_connection(*args, **kwargs)
        make_protocol = args[0]
        handshake_from: float | None = None

        def protocol() -> Any:
            # Called by the loop with the socket connected, just before the handshake.
            nonlocal handshake_from
            handshake_from = _monotonic()
            return make_protocol()

        connected = await super()._wrap_create_connection(protocol, *args[1:], **kwargs)
        if handshake_from is not None:
            record.tls = (record.tls or 0.0) + _monotonic() - handshake_from
        return connected

    async def _start_tls_connection(self, *args: Any, **kwargs: Any) -> Any:
        # The handshake with the origin through a proxy's CONNECT tunnel.
        record = CURRENT_RECORD.get()
        started = _monotonic()
        connected = await super()._start_tls_connection(*args, **kwargs)
        if record is not None:
            record.tls = (record.tls or 0.0) + _monotonic() - started
        return connected
