"""The pets resource: typed calls, errors, retries and pagination, over the router."""

from __future__ import annotations

import json

import pytest
from petstore import AsyncPetstore, NewPet, Pet, Petstore

import stackwire
from stackwire.testing import MockResponse, Router, VirtualTime

ADA = {"id": 1, "name": "Ada", "status": "available", "tags": ["cat"], "born": "2020"}


async def test_get_a_pet(petstore: AsyncPetstore, stackwire_router: Router) -> None:
    stackwire_router.get("/pets/{id}").respond(json=ADA)
    assert await petstore.pets.get(1) == Pet(id=1, name="Ada", tags=["cat"])
    request = stackwire_router.calls[0].request
    assert request.headers["Authorization"] == "Bearer sk-test-petstore"
    assert request.headers["User-Agent"] == "petstore-python/0.1"


async def test_a_missing_pet_is_a_not_found_error(
    petstore: AsyncPetstore, stackwire_router: Router
) -> None:
    stackwire_router.get("/pets/{id}").respond(404, json={"error": {"message": "no pet 9"}})
    with pytest.raises(stackwire.NotFoundError, match="no pet 9"):
        await petstore.pets.get(9)
    assert len(stackwire_router.calls) == 1  # a 404 is not retried


# --8<-- [start:retried]
async def test_create_is_retried_with_one_idempotency_key(
    petstore: AsyncPetstore, stackwire_router: Router, stackwire_virtual_time: VirtualTime
) -> None:
    route = stackwire_router.post("/pets").respond_seq(
        [MockResponse(503), MockResponse.connection_reset(), MockResponse(201, json=ADA)]
    )
    pet = await petstore.pets.create(NewPet(name="Ada", tags=["cat"]))
    assert pet.id == 1
    # --8<-- [end:retried]
    bodies = [call.request.body for call in route.calls]
    assert bodies == [b'{"name":"Ada","tags":["cat"]}'] * 3
    keys = {call.request.headers["Idempotency-Key"] for call in route.calls}
    assert len(keys) == 1
    assert len(stackwire_virtual_time.slept) == 2  # two backoffs, no real waiting


async def test_list_follows_cursors_across_pages(
    petstore: AsyncPetstore, stackwire_router: Router
) -> None:
    pages = {
        None: {"data": [ADA], "has_more": True, "next_cursor": "p2"},
        "p2": {"data": [{**ADA, "id": 2, "name": "Bo"}], "has_more": False},
    }

    @stackwire_router.get("/pets")
    def list_pets(request: stackwire.Request) -> MockResponse:
        return MockResponse(json=pages[request.url.query.get("cursor")])

    names = [pet.name async for pet in petstore.pets.list(status="available", limit=1)]
    assert names == ["Ada", "Bo"]
    queries = [dict(call.request.url.query) for call in stackwire_router.calls]
    assert queries == [
        {"status": "available", "limit": "1"},
        {"status": "available", "limit": "1", "cursor": "p2"},
    ]


async def test_delete_then_every_route_was_used(
    petstore: AsyncPetstore, stackwire_router: Router
) -> None:
    stackwire_router.delete("/pets/{id}").respond(204)
    stackwire_router.get("/pets/{id}").respond(404)
    await petstore.pets.delete(1)
    with pytest.raises(AssertionError, match=r"GET /pets/\{id\}"):
        stackwire_router.assert_all_called()


def test_the_blocking_sdk(sync_petstore: Petstore, stackwire_router: Router) -> None:
    stackwire_router.get("/pets").respond(json={"data": [ADA, {**ADA, "name": "Bo"}]})
    assert sync_petstore.pet_names() == ["Ada", "Bo"]
    assert json.loads(b"[]") == []
