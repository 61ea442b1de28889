"""A first call: a typed model in, a typed model out.

Run with ``python examples/first_call.py``: it starts the demo API on a free port on
127.0.0.1. The part between the markers is the first example of the README (a test
checks the two are the same).
"""

from __future__ import annotations

import asyncio

from demo_server import start  # examples/ is on sys.path when this file runs

# --8<-- [start:first_call]
import stackwire


class User(stackwire.Model):
    id: int
    name: str


async def main(base_url: str) -> None:
    async with stackwire.AsyncClient(base_url, api_key="sk-demo-0123456789") as client:
        ada = await client.post("/users", json={"name": "Ada"}, cast_to=User)  # a User
        same = await client.get("/users/{id}", path_params={"id": ada.id}, cast_to=User)
        print(same)  # User(id=1, name='Ada')
        print(client.pipeline)  # the stack every call runs through, outermost first
        # --8<-- [end:first_call]


async def run() -> None:
    runner, base_url = await start()
    try:
        await main(base_url)
    finally:
        await runner.cleanup()


if __name__ == "__main__":
    asyncio.run(run())
