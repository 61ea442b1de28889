"""A small local API for the demo and the examples (aiohttp, 127.0.0.1 only).

Endpoints, all under ``/v1``:

- ``POST /users`` (JSON ``{"name": ..., "email": ...}``) -> 201 and the new user;
- ``GET /users/{id}`` -> the user, or 404 with a JSON error body;
- ``GET /users?cursor=&limit=`` -> a cursor page ``{"data": [...], "has_more": ...,
  "next_cursor": ...}``;
- ``GET /flaky`` -> 429 with ``retry-after-ms: 200`` on the first call of each
  client-chosen ``key`` query value, then 200;
- ``GET /unstable`` -> 500 twice per ``key``, then 200;
- ``GET /events?n=`` -> ``n`` Server-Sent Events (``delta`` events, then ``done``);
- ``GET /logs?n=`` -> ``n`` log records as JSON Lines (``application/x-ndjson``);
- ``POST /files`` (multipart) -> what was received: field names, file names, sizes.
- ``GET /chat?key=`` -> an LLM-style endpoint with a budget of 3 requests per 0.5 s
  window per ``key``, announced as OpenAI does (``x-ratelimit-*-requests``, resets
  like ``380ms``); beyond it, 429 with ``retry-after-ms``;
- ``GET /down`` -> always 503 (a dead upstream); ``GET /hits?key=`` -> how many
  requests ``/chat`` or ``/down`` received for a key (``chat:<key>``, ``down``).

Run it alone with ``python examples/demo_server.py [port]``.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import math
import sys
import time
from collections import Counter
from typing import Any

from aiohttp import BodyPartReader, web

__all__ = ["create_app", "start"]

USERS = web.AppKey("users", dict)
HITS = web.AppKey("hits", Counter)
WINDOWS = web.AppKey("windows", dict)
CHAT_LIMIT = 3
CHAT_WINDOW = 0.5


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"error": {"message": message, "status": status}}, status=status)


async def create_user(request: web.Request) -> web.Response:
    payload = await request.json()
    if not isinstance(payload, dict) or not isinstance(payload.get("name"), str):
        return _error(422, "name is required")
    users: dict[int, dict[str, Any]] = request.app[USERS]
    user = {"id": len(users) + 1, "name": payload["name"], "email": payload.get("email")}
    users[user["id"]] = user
    return web.json_response(user, status=201, headers={"x-request-id": f"req_{user['id']}"})


async def get_user(request: web.Request) -> web.Response:
    users: dict[int, dict[str, Any]] = request.app[USERS]
    user = users.get(int(request.match_info["id"]))
    if user is None:
        return _error(404, f"no user {request.match_info['id']}")
    return web.json_response(user)


async def list_users(request: web.Request) -> web.Response:
    users: dict[int, dict[str, Any]] = request.app[USERS]
    limit = int(request.query.get("limit", "2"))
    start = int(request.query.get("cursor") or 0)
    ids = sorted(users)[start : start + limit]
    more = start + limit < len(users)
    return web.json_response(
        {
            "data": [users[i] for i in ids],
            "has_more": more,
            "next_cursor": str(start + limit) if more else None,
        }
    )


async def flaky(request: web.Request) -> web.Response:
    hits: Counter[str] = request.app[HITS]
    key = "flaky:" + request.query.get("key", "")
    hits[key] += 1
    if hits[key] == 1:
        return web.json_response(
            {"error": {"message": "slow down"}}, status=429, headers={"retry-after-ms": "200"}
        )
    return web.json_response({"ok": True, "attempts": hits[key]})


async def unstable(request: web.Request) -> web.Response:
    hits: Counter[str] = request.app[HITS]
    key = "unstable:" + request.query.get("key", "")
    hits[key] += 1
    if hits[key] <= 2:
        return _error(500, "try again")
    return web.json_response({"ok": True, "attempts": hits[key]})


async def chat(request: web.Request) -> web.Response:
    hits: Counter[str] = request.app[HITS]
    key = "chat:" + request.query.get("key", "")
    hits[key] += 1
    windows: dict[str, tuple[float, int]] = request.app[WINDOWS]
    now = time.monotonic()
    start, used = windows.get(key, (now, 0))
    if now >= start + CHAT_WINDOW:
        start, used = now, 0
    reset_ms = max(1, math.ceil((start + CHAT_WINDOW - now) * 1000))
    limits = {
        "x-ratelimit-limit-requests": str(CHAT_LIMIT),
        "x-ratelimit-reset-requests": f"{reset_ms}ms",
    }
    if used >= CHAT_LIMIT:
        windows[key] = (start, used)
        limits["x-ratelimit-remaining-requests"] = "0"
        limits["retry-after-ms"] = str(reset_ms)
        return web.json_response(
            {"error": {"message": "rate limit reached"}}, status=429, headers=limits
        )
    windows[key] = (start, used + 1)
    limits["x-ratelimit-remaining-requests"] = str(CHAT_LIMIT - used - 1)
    return web.json_response({"reply": "hello", "n": hits[key]}, headers=limits)


async def down(request: web.Request) -> web.Response:
    request.app[HITS]["down"] += 1
    return _error(503, "upstream is down")


async def hit_count(request: web.Request) -> web.Response:
    return web.json_response({"hits": request.app[HITS][request.query.get("key", "")]})


async def events(request: web.Request) -> web.StreamResponse:
    count = int(request.query.get("n", "5"))
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
    await response.prepare(request)
    for index in range(count):
        data = f'{{"index": {index}, "text": "chunk {index}"}}'
        await response.write(f"event: delta\nid: {index}\ndata: {data}\n\n".encode())
    await response.write(b'event: done\ndata: {"finish_reason": "stop"}\n\n')
    await response.write_eof()
    return response


async def logs(request: web.Request) -> web.StreamResponse:
    count = int(request.query.get("n", "5"))
    response = web.StreamResponse(headers={"Content-Type": "application/x-ndjson"})
    await response.prepare(request)
    for index in range(count):
        level = "warning" if index % 3 == 2 else "info"
        record = f'{{"seq": {index}, "level": "{level}", "message": "step {index} done"}}\n'
        await response.write(record.encode())
    await response.write_eof()
    return response


async def upload(request: web.Request) -> web.Response:
    fields: dict[str, Any] = {}
    reader = await request.multipart()
    async for part in reader:
        if not isinstance(part, BodyPartReader):  # pragma: no cover - nested
            continue
        content = await part.read()
        name = part.name or ""
        if part.filename is not None:
            fields[name] = {"filename": part.filename, "size": len(content)}
        else:
            fields[name] = content.decode()
    return web.json_response({"received": fields})


# The shared key of the HMAC example (examples/hmac_signing.py).
SIGNING_KEY = b"demo-signing-key"


async def signed(request: web.Request) -> web.Response:
    """Accepts a request only with a valid ``X-Signature``: HMAC-SHA256 over the
    method, the path with query, the ``X-Retry-Count`` header and the body."""
    body = await request.read()
    message = b"\n".join(
        [
            request.method.encode(),
            request.path_qs.encode(),
            request.headers.get("X-Retry-Count", "").encode(),
            body,
        ]
    )
    expected = hmac.new(SIGNING_KEY, message, hashlib.sha256).hexdigest()
    if not hmac.compare_digest(request.headers.get("X-Signature", ""), expected):
        return _error(401, "bad signature")
    return web.json_response({"verified": True, "bytes": len(body)})


def create_app() -> web.Application:
    app = web.Application()
    app[USERS] = {}
    app[HITS] = Counter()
    app[WINDOWS] = {}
    app.router.add_post("/v1/users", create_user)
    app.router.add_get("/v1/users", list_users)
    app.router.add_get("/v1/users/{id}", get_user)
    app.router.add_get("/v1/flaky", flaky)
    app.router.add_get("/v1/unstable", unstable)
    app.router.add_get("/v1/events", events)
    app.router.add_get("/v1/logs", logs)
    app.router.add_post("/v1/files", upload)
    app.router.add_post("/v1/signed", signed)
    app.router.add_get("/v1/chat", chat)
    app.router.add_get("/v1/down", down)
    app.router.add_get("/v1/hits", hit_count)
    return app


async def start(port: int = 0) -> tuple[web.AppRunner, str]:
    """Start the demo API on 127.0.0.1 (a free port by default); returns the runner
    (``await runner.cleanup()`` to stop) and the base URL."""
    runner = web.AppRunner(create_app(), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    server = site._server
    assert isinstance(server, asyncio.Server)
    bound = server.sockets[0].getsockname()[1]
    return runner, f"http://127.0.0.1:{bound}/v1"


async def _serve_forever(port: int) -> None:
    runner, url = await start(port)
    print(f"demo API on {url}")
    try:
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()


if __name__ == "__main__":
    asyncio.run(_serve_forever(int(sys.argv[1]) if len(sys.argv) > 1 else 8080))
