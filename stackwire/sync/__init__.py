"""The blocking face (tier 5): `Client` and its stream, response and paginator."""

from .client import Client, SyncCallOptions
from .pages import SyncPaginator
from .stream import Stream, SyncResponse

__all__ = ["Client", "Stream", "SyncCallOptions", "SyncPaginator", "SyncResponse"]
