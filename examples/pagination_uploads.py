"""Pagination, request bodies and uploads, raw responses and client options.

Run with ``python examples/pagination_uploads.py``: it starts a small API on 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import os
import pathlib
import tempfile
from collections.abc import AsyncIterator
from typing import ClassVar, TypeVar

import msgspec
from aiohttp import web

import stackwire
from stackwire import CursorPage

T = TypeVar("T")
USERS = [{"id": i, "name": f"user{i}"} for i in range(1, 6)]


class User(stackwire.Model):
    id: int
    name: str


# --8<-- [start:items_page]
class ItemsPage(CursorPage[T]):
    data: list[T] = msgspec.field(name="items")
    next_cursor: str | None = msgspec.field(default=None, name="after")
    cursor_param: ClassVar[str] = "after"
    # --8<-- [end:items_page]


def cursor_page(cursor: str | None, limit: int) -> dict[str, object]:
    start = int(cursor or 0)
    end = start + limit
    return {"data": USERS[start:end], "has_more": end < len(USERS), "next_cursor": str(end)}


async def users(request: web.Request) -> web.Response:
    page = cursor_page(request.query.get("cursor"), int(request.query.get("limit", 2)))
    return web.json_response(page, headers={"request-id": "req_demo"})


async def search(request: web.Request) -> web.Response:
    body = await request.json()
    return web.json_response(cursor_page(body.get("cursor"), 2))


async def items(request: web.Request) -> web.Response:
    page = cursor_page(request.query.get("after"), 2)
    return web.json_response(
        {"items": page["data"], "after": page["next_cursor"], "has_more": page["has_more"]}
    )


async def user(request: web.Request) -> web.Response:
    return web.json_response(
        USERS[int(request.match_info["id"]) - 1], headers={"request-id": "req_1"}
    )


async def accept(request: web.Request) -> web.Response:
    if request.content_type == "multipart/form-data":
        form = await request.post()
        return web.json_response({"fields": sorted(form.keys())})
    return web.json_response({"received": len(await request.read())})


async def main() -> None:
    app = web.Application()
    app.router.add_get("/users", users)
    app.router.add_post("/search", search)
    app.router.add_get("/items", items)
    app.router.add_get("/users/{id}", user)
    for path in ("/notes", "/login", "/files"):
        app.router.add_post(path, accept)
    app.router.add_put("/blob", accept)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    os.environ["MYAPI_BASE_URL"] = f"http://127.0.0.1:{port}/"
    os.environ["MYAPI_API_KEY"] = "sk-demo-0123456789abcdef"

    with tempfile.TemporaryDirectory() as folder:
        report_path = pathlib.Path(folder) / "report.csv"
        report_path.write_bytes(b"a,b\n1,2\n")
        # --8<-- [start:env_prefix]
        async with stackwire.AsyncClient(env_prefix="MYAPI") as client:
            print(repr(client))
            # --8<-- [end:env_prefix]

            # --8<-- [start:pagination]
            # -- pagination
            async for user_ in client.paginate("/users", page=CursorPage[User], query={"limit": 2}):
                print(user_.name)
            first = await client.paginate("/users", page=CursorPage[User], query={"limit": 2})
            print(len(first.data), first.has_next_page())
            if first.has_next_page():
                second = await first.get_next_page()
                print([u.id for u in second.data])
            async for page in first.iter_pages():
                print([u.id for u in page.data])
            # --8<-- [end:pagination]
            # --8<-- [start:search]
            hits = client.paginate("/search", page=CursorPage[User], method="POST", json={"q": "a"})
            print([u.id async for u in hits])
            # --8<-- [end:search]
            # --8<-- [start:items]
            print([u.id async for u in client.paginate("/items", page=ItemsPage[User])])
            # --8<-- [end:items]

            # --8<-- [start:bodies]
            # -- bodies
            await client.post("/notes", json={"text": "hi"})
            await client.post("/login", data={"user": "ada", "tags": ["a", "b"]})
            await client.put("/blob", content=b"\x00\x01")

            async def chunks() -> AsyncIterator[bytes]:
                yield b"streamed, "
                yield b"not buffered"

            await client.put("/blob", content=chunks())
            # --8<-- [end:bodies]
            # --8<-- [start:uploads]
            uploaded = await client.post(
                "/files",
                data={"purpose": "fine-tune"},
                files={"file": report_path, "extra": ("notes.txt", b"hello", "text/plain")},
            )
            await uploaded.read()
            print(uploaded.json())
            # --8<-- [end:uploads]

            # --8<-- [start:raw]
            # -- raw responses
            response = await client.with_raw_response.get(
                "/users/{id}", path_params={"id": 1}, cast_to=User
            )
            print(
                response.status_code,
                response.http_version,
                response.request_id,
                response.retries_taken,
            )
            print(await response.parse())
            # --8<-- [end:raw]

            # --8<-- [start:options]
            # -- options
            admin = client.with_options(headers={"X-Role": "admin"}, max_retries=5)
            bare = client.with_options(set_headers={"X-Only": "this"})
            await admin.get("/users")
            await bare.get("/users")
            # --8<-- [end:options]
    await runner.cleanup()


asyncio.run(main())
