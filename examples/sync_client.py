"""Blocking code: `stackwire.Client`, the synchronous twin of `AsyncClient`.

Run with ``python examples/sync_client.py``: it starts the demo API in a background
thread on 127.0.0.1, then talks to it from ordinary (non-async) code.
"""

from __future__ import annotations

import asyncio
import threading

from demo_server import start

import stackwire


class User(stackwire.Model):
    id: int
    name: str


class Delta(stackwire.Model):
    index: int
    text: str


def serve_in_background() -> tuple[str, threading.Event]:
    """Start the demo API on its own loop and thread; set the event to stop it."""
    ready: list[str] = []
    started, stop = threading.Event(), threading.Event()

    async def run() -> None:
        runner, url = await start()
        ready.append(url)
        started.set()
        await asyncio.to_thread(stop.wait)
        await runner.cleanup()

    threading.Thread(target=asyncio.run, args=(run(),), daemon=True).start()
    started.wait(10)
    return ready[0], stop


def main() -> None:
    base_url, stop = serve_in_background()
    try:
        # --8<-- [start:blocking]
        with stackwire.Client(base_url, max_retries=3) as client:
            ada = client.post("/users", json={"name": "Ada"}, cast_to=User)  # -> User
            same = client.get("/users/{id}", path_params={"id": ada.id}, cast_to=User)
            assert same == ada
            print("created and read back:", same)

            try:
                client.get("/users/999", cast_to=User)
            except stackwire.NotFoundError as error:  # typed, in this thread
                print("not found:", error.status_code, error.body)

            with client.get(
                "/events", query={"n": 3}, cast_to=Delta, stream=True, stream_end_event="done"
            ) as stream:
                for delta in stream:  # Stream[Delta]
                    print("event:", delta.index, delta.text)

            with client.with_streaming_response.get("/events", query={"n": 1}) as response:
                for line in response.iter_lines():  # the body, unread until now
                    print("line:", line)

            for user in client.paginate("/users", page=stackwire.CursorPage[User]):
                print("user:", user.name)

            print(client.pool_stats())
        # --8<-- [end:blocking]
    finally:
        stop.set()


if __name__ == "__main__":
    main()
