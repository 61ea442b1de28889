"""Transports (tier 2b): the only code that sends. `AiohttpTransport` is the default."""

from .aiohttp_transport import AiohttpTransport

__all__ = ["AiohttpTransport"]
