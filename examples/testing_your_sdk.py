"""Testing an SDK with stackwire.testing: mocked routes, faults, virtual time, chaos,
and a cassette recorded against the demo API, then replayed with the API gone.

Run with ``python examples/testing_your_sdk.py``. docs/testing.md shows these lines.
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
from pathlib import Path

from demo_server import start  # examples/ is on sys.path when this file runs

import stackwire
from stackwire.testing import (
    Cassette,
    FaultInjector,
    MockResponse,
    MockTransport,
    Router,
    VirtualTime,
)


class User(stackwire.Model):
    id: int
    name: str


async def routes_and_requests() -> None:
    # --8<-- [start:routes]
    router = Router("https://api.example.com/v1/")
    router.get("/users/{id}").respond(json={"id": 1, "name": "Ada"})
    router.post("/users").respond(201, json={"id": 2, "name": "Grace"})

    async with stackwire.AsyncClient(
        "https://api.example.com/v1/", api_key="sk-test", transport=MockTransport(router)
    ) as client:
        user = await client.get("/users/{id}", path_params={"id": 1}, cast_to=User)
        created = await client.post("/users", json={"name": "Grace"}, cast_to=User)

    sent = router.calls[1].request  # the request as a socket transport would send it
    print(user, created)
    print(sent.method, sent.url, sent.body)
    print("idempotency key:", sent.headers["Idempotency-Key"].startswith("stackwire-retry-"))
    router.assert_all_called()
    # --8<-- [end:routes]


async def faults_and_virtual_time() -> None:
    # --8<-- [start:faults]
    router = Router("https://api.example.com/")
    router.get("/flaky").respond_seq(
        [
            MockResponse.connection_reset(),  # APIConnectionError, as over a socket
            MockResponse(503, headers={"Retry-After": "2"}),
            MockResponse(json={"id": 1, "name": "Ada"}),
        ]
    )
    time = VirtualTime()
    async with stackwire.AsyncClient(
        "https://api.example.com/",
        transport=MockTransport(router),
        sleep=time.sleep,
        clock=time.clock,
        random=time.random,
    ) as client:
        response = await client.with_raw_response.get("/flaky", cast_to=User)

    print("retries:", response.retries_taken, "slept:", [round(d, 3) for d in time.slept])
    # --8<-- [end:faults]
    print("retry counts:", [call.request.headers["X-Retry-Count"] for call in router.calls])


async def unmatched_requests_fail_the_test() -> None:
    router = Router("https://api.example.com/")
    router.get("/users/{id}").respond(json={"id": 1, "name": "Ada"})
    async with stackwire.AsyncClient(
        "https://api.example.com/", transport=MockTransport(router)
    ) as client:
        # --8<-- [start:unmatched]
        try:
            await client.get("/user/1")
        except AssertionError as error:  # never retried, never a fake 404
            print(error)
        # --8<-- [end:unmatched]


async def chaos() -> None:
    router = Router("https://api.example.com/")
    router.get("/users/{id}").respond(json={"id": 1, "name": "Ada"})
    injector = FaultInjector(0.3, seed=1)
    time = VirtualTime()
    async with stackwire.AsyncClient(
        "https://api.example.com/",
        transport=MockTransport(router),
        max_retries=5,
        sleep=time.sleep,
        random=time.random,
    ) as client:
        # --8<-- [start:chaos]
        chaotic = client.with_middleware(injector)
        users = [await chaotic.get("/users/1", cast_to=User) for _ in range(20)]
        # --8<-- [end:chaos]

    print(f"{len(users)} calls, {len(injector.injected)} faults injected, all retried")
    print("kinds:", sorted({fault.kind for fault in injector.injected}))


async def record_then_replay(folder: Path) -> None:
    runner, base_url = await start()
    path = folder / "users.json"
    try:
        # --8<-- [start:cassette]
        cassette = Cassette(path, mode="record")  # through the default transport
        async with stackwire.AsyncClient(
            base_url, api_key="sk-live-0123456789abcdef", transport=cassette
        ) as client:
            await client.post("/users", json={"name": "Ada"})
            recorded = await client.get("/users/1", cast_to=User)
        # --8<-- [end:cassette]
    finally:
        await runner.cleanup()  # the API is gone

    async with stackwire.AsyncClient(
        base_url, api_key="sk-live-0123456789abcdef", transport=Cassette(path, mode="replay")
    ) as client:
        await client.post("/users", json={"name": "Ada"})
        replayed = await client.get("/users/1", cast_to=User)

    print("replayed:", replayed == recorded, replayed)
    print("key in the file:", "0123456789abcdef" in path.read_text())


def the_blocking_client() -> None:
    router = Router("https://api.example.com/")
    router.get("/users/{id}").respond(json={"id": 1, "name": "Ada"})
    with stackwire.Client("https://api.example.com/", transport=MockTransport(router)) as client:
        print("blocking:", client.get("/users/1", cast_to=User))


async def main() -> int:
    await routes_and_requests()
    await faults_and_virtual_time()
    await unmatched_requests_fail_the_test()
    await chaos()
    with tempfile.TemporaryDirectory() as folder:
        await record_then_replay(Path(folder))
    await asyncio.to_thread(the_blocking_client)
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
