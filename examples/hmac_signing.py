"""Request signing: an HMAC `Signer`, verified by the demo server.

Run with ``python examples/hmac_signing.py``: it starts the demo API on 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac

from demo_server import SIGNING_KEY, start

import stackwire


class HmacSigner(stackwire.Signer):
    """Signs the method, path and query, retry count and body with a shared key."""

    def __init__(self, key: bytes) -> None:
        self._key = key

    def sign(self, request: stackwire.Request) -> stackwire.Request:
        body = request.body if isinstance(request.body, bytes) else b""
        message = b"\n".join(
            [
                request.method.encode(),
                request.url.path_qs.encode(),
                request.headers.get("X-Retry-Count", "").encode(),
                body,
            ]
        )
        signature = hmac.new(self._key, message, hashlib.sha256).hexdigest()
        return request.with_headers({"X-Signature": signature})

    def __repr__(self) -> str:
        return "HmacSigner(key=[redacted])"


async def main() -> None:
    runner, base_url = await start()
    try:
        async with stackwire.AsyncClient(base_url, auth=HmacSigner(SIGNING_KEY)) as client:
            print(await client.post("/signed", content=b"hello", cast_to=dict))
        async with stackwire.AsyncClient(base_url, auth=HmacSigner(b"wrong")) as client:
            try:
                await client.post("/signed", content=b"hello")
            except stackwire.AuthenticationError as error:
                print("wrong key:", error.status_code)
    finally:
        await runner.cleanup()


if __name__ == "__main__":
    asyncio.run(main())
