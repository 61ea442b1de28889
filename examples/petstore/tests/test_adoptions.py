"""The adoption feed: a typed Server-Sent Events stream."""

from __future__ import annotations

import pytest
from petstore import Adoption, AsyncPetstore

import stackwire
from stackwire.testing import Router


async def test_the_feed_yields_typed_events_until_done(
    petstore: AsyncPetstore, stackwire_router: Router
) -> None:
    stackwire_router.get("/adoptions/feed").respond(
        sse=['{"pet_id": 1, "adopter": "Grace"}', '{"pet_id": 2, "adopter": "Alan"}', "[DONE]"]
    )
    async with await petstore.adoptions.feed() as feed:
        events = [event async for event in feed]
    assert events == [Adoption(pet_id=1, adopter="Grace"), Adoption(pet_id=2, adopter="Alan")]


async def test_an_error_event_raises_stream_error(
    petstore: AsyncPetstore, stackwire_router: Router
) -> None:
    stackwire_router.get("/adoptions/feed").respond(
        sse=[
            '{"pet_id": 1, "adopter": "Grace"}',
            stackwire.ServerSentEvent(event="error", data='{"message": "feed closed"}'),
        ]
    )
    feed = await petstore.adoptions.feed()
    assert (await anext(feed)).adopter == "Grace"
    with pytest.raises(stackwire.StreamError, match="feed closed"):
        await anext(feed)
