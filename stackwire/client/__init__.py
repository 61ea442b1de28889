"""The async face (tier 4): `AsyncClient`, its options, request building, pagination."""

from .async_client import AsyncClient, ClientOptions, DerivedOptions

__all__ = ["AsyncClient", "ClientOptions", "DerivedOptions"]
