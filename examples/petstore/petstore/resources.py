"""Resources: one class per group of endpoints, each a thin layer over the client."""

from __future__ import annotations

from stackwire import AsyncClient, AsyncPaginator, AsyncStream, CursorPage, Response

from .models import Adoption, NewPet, Pet, PetStatus


class Pets:
    def __init__(self, client: AsyncClient) -> None:
        self._client = client

    async def get(self, pet_id: int) -> Pet:
        return await self._client.get("/pets/{id}", path_params={"id": pet_id}, cast_to=Pet)

    async def create(self, pet: NewPet, *, idempotency_key: str | None = None) -> Pet:
        if idempotency_key is None:
            return await self._client.post("/pets", json=pet, cast_to=Pet)
        return await self._client.post(
            "/pets", json=pet, cast_to=Pet, idempotency_key=idempotency_key
        )

    async def delete(self, pet_id: int) -> None:
        response: Response[object] = await self._client.delete(
            "/pets/{id}", path_params={"id": pet_id}
        )
        response.close()

    def list(
        self, *, status: PetStatus | None = None, limit: int = 50
    ) -> AsyncPaginator[CursorPage[Pet]]:
        """Every pet, page by page (``async for pet in petstore.pets.list()``)."""
        return self._client.paginate(
            "/pets", page=CursorPage[Pet], query={"status": status, "limit": limit}
        )


class Adoptions:
    def __init__(self, client: AsyncClient) -> None:
        self._client = client

    async def feed(self) -> AsyncStream[Adoption]:
        """The live adoption feed, until the server sends ``[DONE]``."""
        return await self._client.get("/adoptions/feed", cast_to=Adoption, stream=True)
