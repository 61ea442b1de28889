"""An SDK method over stackwire: optional parameters as `Omit`, the caller's per-call
options forwarded with their types.

Run with ``python examples/sdk_methods.py``: it answers from a `MockTransport`, so no
server is needed.
"""

from __future__ import annotations

import asyncio

from typing_extensions import Unpack

import stackwire
from stackwire.testing import MockResponse, MockTransport


# --8<-- [start:method]
class Pet(stackwire.Model):
    id: int
    name: str


class Pets:
    def __init__(self, client: stackwire.AsyncClient) -> None:
        self._client = client

    async def list(
        self,
        *,
        limit: int | stackwire.NotGiven = stackwire.NOT_GIVEN,  # left out: the client's
        species: str | stackwire.Omit = stackwire.omit,  # left out: not sent at all
        **options: Unpack[stackwire.CallOptions],  # timeout=, max_retries=, headers=, ...
    ) -> list[Pet]:
        options["query"] = {**(options.get("query") or {}), "limit": limit, "species": species}
        return await self._client.get("/pets", cast_to=list[Pet], **options)
        # --8<-- [end:method]


def answer(request: stackwire.Request) -> MockResponse:
    print(request.method, request.url, "X-Retry-Count:", request.headers.get("X-Retry-Count"))
    return MockResponse(json=[{"id": 1, "name": "Rex"}])


async def main() -> None:
    transport = MockTransport(answer)
    async with stackwire.AsyncClient(
        "https://api.test/v1/", query={"limit": 50}, transport=transport
    ) as client:
        pets = Pets(client)
        # --8<-- [start:calls]
        print(await pets.list())  # limit=50, the client's; no species
        await pets.list(limit=10, species="dog", max_retries=0)
        await pets.list(headers={"X-Retry-Count": stackwire.omit}, timeout=5.0)
        # --8<-- [end:calls]


if __name__ == "__main__":
    asyncio.run(main())
