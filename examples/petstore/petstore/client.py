"""The SDK's entry point: a stackwire client configured for the Petstore API."""

from __future__ import annotations

from typing import Any

from stackwire import AsyncClient, Client

from .resources import Adoptions, Pets

DEFAULT_BASE_URL = "https://petstore.example/v1/"


class AsyncPetstore:
    """``AsyncPetstore(api_key)``; every other keyword goes to `stackwire.AsyncClient`
    (``transport=``, ``sleep=``, ``max_retries=`` ...), which is how tests plug in a
    `stackwire.testing.MockTransport`."""

    def __init__(self, api_key: str, *, base_url: str = DEFAULT_BASE_URL, **options: Any) -> None:
        self.client = AsyncClient(
            base_url, api_key=api_key, user_agent="petstore-python/0.1", **options
        )
        self.pets = Pets(self.client)
        self.adoptions = Adoptions(self.client)

    async def close(self) -> None:
        await self.client.close()

    async def __aenter__(self) -> AsyncPetstore:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()


class Petstore:
    """The blocking twin, for scripts: the same API over `stackwire.Client`."""

    def __init__(self, api_key: str, *, base_url: str = DEFAULT_BASE_URL, **options: Any) -> None:
        self.client = Client(base_url, api_key=api_key, user_agent="petstore-python/0.1", **options)

    def pet_names(self) -> list[str]:
        return [pet["name"] for pet in self.client.get("/pets", cast_to=dict)["data"]]

    def close(self) -> None:
        self.client.close()

    def __enter__(self) -> Petstore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
