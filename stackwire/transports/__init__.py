"""Transports (tier 2b): the only code that sends. `AiohttpTransport` is the default.

`map_transport_error` is the one mapping from an aiohttp or OS failure to the stackwire
error the default transport raises; the testing kit uses it so that its faults are
exactly those errors. `userinfo_as_basic_auth` is how it sends URL userinfo (as an
``Authorization: Basic`` header), so that `MockTransport` hands its handler the same.
"""

from ._aiohttp_errors import map_transport_error
from .aiohttp_transport import AiohttpTransport, userinfo_as_basic_auth

__all__ = ["AiohttpTransport", "map_transport_error", "userinfo_as_basic_auth"]
