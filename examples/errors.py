"""Errors: one typed exception for every failure, and what each one carries.

Run with ``python examples/errors.py``: it starts the demo API on a free port on
127.0.0.1. The docs include the parts between the ``--8<--`` markers.
"""

from __future__ import annotations

import asyncio
import socket

from demo_server import start  # examples/ is on sys.path when this file runs

import stackwire


class User(stackwire.Model):
    id: int
    name: str


def closed_port() -> int:
    """A port on 127.0.0.1 that nothing listens on."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def main() -> None:
    runner, base_url = await start()
    try:
        async with stackwire.AsyncClient(base_url, api_key="sk-demo-0123456789") as client:
            # --8<-- [start:status]
            try:
                await client.get("/users/{id}", path_params={"id": 999}, cast_to=User)
            except stackwire.NotFoundError as error:  # an APIStatusError for a 404
                print(error.status_code, error.body)  # the JSON error body, decoded
                print(error.response.headers["Content-Type"], error.retries_taken)
            # --8<-- [end:status]

            # --8<-- [start:validation]
            await client.post("/users", json={"name": "Ada"})
            try:  # the body is a user, not a list of ints: never retried
                await client.get("/users/1", cast_to=list[int])
            except stackwire.APIResponseValidationError as error:
                print("validation:", error)
            # --8<-- [end:validation]

            # --8<-- [start:invalid]
            try:  # bad input fails before anything is sent
                await client.get("/users", headers={"X-Note": "one\r\nInjected: yes"})
            except stackwire.InvalidRequestError as error:  # also a ValueError
                print("invalid:", error)
            # --8<-- [end:invalid]

        # --8<-- [start:connection]
        nowhere = f"http://127.0.0.1:{closed_port()}/v1"
        async with stackwire.AsyncClient(nowhere, max_retries=0) as client:
            try:
                await client.get("/users")
            except stackwire.APIConnectionError as error:  # no response at all
                print("connection:", type(error).__name__, "from", type(error.__cause__).__name__)
        # --8<-- [end:connection]

        # --8<-- [start:catch_all]
        async with stackwire.AsyncClient(base_url) as client:
            try:
                await client.get("/users/{id}", path_params={"id": 42}, cast_to=User)
            except stackwire.APIStatusError as error:  # any status >= 300 that is not followed
                print("status", error.status_code)
            except stackwire.APIConnectionError:  # refused, reset, timed out, cut short
                print("no answer")
            except stackwire.StackwireError as error:  # everything else stackwire raises
                print("other:", error)
        # --8<-- [end:catch_all]
    finally:
        await runner.cleanup()


if __name__ == "__main__":
    asyncio.run(main())
