"""Proxies from the environment (or ``proxy=``) and TLS verification, over real
sockets: a scripted forward proxy (absolute-form requests and CONNECT tunnels) and an
HTTPS server with a self-signed certificate made by ``openssl`` for the test."""

from __future__ import annotations

import asyncio
import base64
import json
import ssl
import subprocess
import traceback
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

import stackwire
from tests.conftest import RawServer, Serve, read_request, routes

MakeClient = Callable[..., stackwire.AsyncClient]
RawServe = Callable[..., Awaitable[tuple[str, RawServer]]]
ServeTLS = Callable[[web.Application], Awaitable[str]]

PROXY_VARIABLES = (
    "http_proxy",
    "https_proxy",
    "all_proxy",
    "no_proxy",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "ALL_PROXY",
    "NO_PROXY",
    "REQUEST_METHOD",
)

SECRET = "sk-test-secret-1234567890"


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """No proxy variable of the machine leaks into a test."""
    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


class Proxy:
    """A forward proxy: answers absolute-form requests itself (saying what it got)
    and tunnels CONNECT to the named host. Records every request line and headers."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, dict[str, str]]] = []

    async def __call__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            line, headers, _body = await read_request(reader)
            self.requests.append((line, headers))
            method, target, _version = line.split(" ", 2)
            if method == "CONNECT":
                host, port = target.rsplit(":", 1)
                up_reader, up_writer = await asyncio.open_connection(host, int(port))
                writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
                await writer.drain()
                await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))
                return
            payload = json.dumps({"proxied": target}).encode()
            writer.write(
                b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                b"Content-Length: %d\r\n\r\n%s" % (len(payload), payload)
            )
            await writer.drain()


async def _pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
    try:
        while data := await source.read(65536):
            sink.write(data)
            await sink.drain()
    except ConnectionError:
        pass
    finally:
        sink.close()


async def start_proxy(raw_server: RawServe) -> tuple[str, Proxy]:
    proxy = Proxy()
    url, _server = await raw_server(proxy)
    return url.rstrip("/"), proxy


class Origin:
    """An origin server that records the headers of every request it gets."""

    def __init__(self) -> None:
        self.headers: list[dict[str, str]] = []

    def app(self) -> web.Application:
        async def handler(request: web.Request) -> web.Response:
            self.headers.append(dict(request.headers))
            return web.json_response({"origin": request.path_qs})

        return routes(("GET", "/{tail:.*}", handler), ("POST", "/{tail:.*}", handler))


# -- proxies -------------------------------------------------------------------------


@pytest.mark.parametrize("variable", ["HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"])
async def test_proxy_from_the_environment_is_used(
    serve: Serve,
    raw_server: RawServe,
    make_client: MakeClient,
    clean_env: pytest.MonkeyPatch,
    variable: str,
) -> None:
    origin = Origin()
    base = await serve(origin.app())
    proxy_url, proxy = await start_proxy(raw_server)
    clean_env.setenv(variable, proxy_url)
    client = make_client(base + "v1")  # created after the environment is set
    got = await client.get("/items", query={"page": 2})
    assert got.json() == {"proxied": f"{base}v1/items?page=2"}
    assert proxy.requests[0][0] == f"GET {base}v1/items?page=2 HTTP/1.1"
    assert origin.headers == []


@pytest.mark.parametrize("no_proxy", ["127.0.0.1", "localhost,127.0.0.1", "*", "PORT"])
async def test_no_proxy_bypasses_the_proxy(
    serve: Serve,
    raw_server: RawServe,
    make_client: MakeClient,
    clean_env: pytest.MonkeyPatch,
    no_proxy: str,
) -> None:
    origin = Origin()
    base = await serve(origin.app())
    proxy_url, proxy = await start_proxy(raw_server)
    clean_env.setenv("HTTP_PROXY", "http://user:pw-secret@" + proxy_url.split("://")[1])
    if no_proxy == "PORT":
        no_proxy = base.split("://")[1].rstrip("/")  # "127.0.0.1:PORT"
    clean_env.setenv("NO_PROXY", no_proxy)
    client = make_client(base)
    assert (await client.get("/direct")).json() == {"origin": "/direct"}
    assert proxy.requests == []
    # The proxy's credentials are not sent to an origin reached directly.
    assert "Proxy-Authorization" not in origin.headers[0]


async def test_no_proxy_for_another_port_does_not_bypass(
    serve: Serve, raw_server: RawServe, make_client: MakeClient, clean_env: pytest.MonkeyPatch
) -> None:
    origin = Origin()
    base = await serve(origin.app())
    proxy_url, proxy = await start_proxy(raw_server)
    clean_env.setenv("HTTP_PROXY", proxy_url)
    clean_env.setenv("NO_PROXY", "127.0.0.1:1")
    client = make_client(base)
    assert "proxied" in (await client.get("/x")).json()
    assert len(proxy.requests) == 1


async def test_trust_env_false_ignores_proxy_variables(
    serve: Serve, raw_server: RawServe, make_client: MakeClient, clean_env: pytest.MonkeyPatch
) -> None:
    origin = Origin()
    base = await serve(origin.app())
    proxy_url, proxy = await start_proxy(raw_server)
    clean_env.setenv("HTTP_PROXY", proxy_url)
    clean_env.setenv("ALL_PROXY", proxy_url)
    client = make_client(base, trust_env=False)
    assert (await client.get("/direct")).json() == {"origin": "/direct"}
    assert proxy.requests == []


async def test_proxy_option_with_credentials_sends_them_to_the_proxy_only(
    raw_server: RawServe, make_client: MakeClient
) -> None:
    proxy_url, proxy = await start_proxy(raw_server)
    with_credentials = "http://user:pw-secret@" + proxy_url.split("://")[1]
    # The origin's name need not resolve: only the proxy is connected to.
    client = make_client("http://api.internal.test/v1", proxy=with_credentials, api_key=SECRET)
    got = await client.get("/me")
    assert got.json() == {"proxied": "http://api.internal.test/v1/me"}
    line, headers = proxy.requests[0]
    assert line == "GET http://api.internal.test/v1/me HTTP/1.1"
    expected = base64.b64encode(b"user:pw-secret").decode()
    assert headers["proxy-authorization"] == f"Basic {expected}"
    assert headers["authorization"] == f"Bearer {SECRET}"


async def test_proxy_credentials_never_appear_in_errors(make_client: MakeClient) -> None:
    client = make_client(
        "http://api.internal.test/", proxy="http://user:pw-secret@127.0.0.1:1", max_retries=0
    )
    with pytest.raises(stackwire.APIConnectionError) as info:
        await client.get("/x")
    assert "pw-secret" not in str(info.value)
    assert "pw-secret" not in repr(info.value.__cause__)


@pytest.mark.parametrize("bad", ["socks5://127.0.0.1:1080", "not a url", "http://"])
def test_unusable_proxy_is_rejected_before_io(bad: str) -> None:
    with pytest.raises(stackwire.InvalidRequestError, match="proxy"):
        stackwire.AsyncClient("http://api.test/", proxy=bad)


# -- TLS -----------------------------------------------------------------------------


@pytest.fixture(scope="session")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and its key."""
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "ec",
            "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
            "-keyout", str(key), "-out", str(cert), "-days", "2",
            "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return cert, key


@pytest.fixture
def trusting(certificate: tuple[Path, Path]) -> ssl.SSLContext:
    """A client context that trusts the test certificate (verification on)."""
    return ssl.create_default_context(cafile=str(certificate[0]))


@pytest.fixture
async def serve_tls(certificate: tuple[Path, Path]) -> AsyncIterator[ServeTLS]:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(str(certificate[0]), str(certificate[1]))
    servers: list[TestServer] = []

    async def start(app: web.Application) -> str:
        server = TestServer(app, host="127.0.0.1")
        await server.start_server(ssl=context)
        servers.append(server)
        return str(server.make_url("/"))

    yield start
    for server in servers:
        await server.close()


async def test_tls_verification_is_on_by_default(
    serve_tls: ServeTLS, make_client: MakeClient
) -> None:
    origin = Origin()
    base = await serve_tls(origin.app())
    assert base.startswith("https://127.0.0.1:")
    client = make_client(base, max_retries=0)
    with pytest.raises(stackwire.APIConnectionError, match="certificate") as info:
        await client.get("/x")
    assert isinstance(info.value.__cause__, aiohttp.ClientConnectorCertificateError)
    assert origin.headers == []


async def test_tls_with_a_context_trusting_the_certificate(
    serve_tls: ServeTLS, make_client: MakeClient, trusting: ssl.SSLContext
) -> None:
    origin = Origin()
    base = await serve_tls(origin.app())
    client = make_client(base, verify=trusting)
    assert (await client.get("/x")).json() == {"origin": "/x"}


async def test_tls_verify_false_and_only_per_client(
    serve_tls: ServeTLS, make_client: MakeClient
) -> None:
    origin = Origin()
    base = await serve_tls(origin.app())
    strict = make_client(base, max_retries=0)
    lax = strict.with_options(verify=False)
    try:
        assert (await lax.get("/x")).json() == {"origin": "/x"}
        # The client it came from still verifies.
        with pytest.raises(stackwire.APIConnectionError, match="certificate"):
            await strict.get("/x")
    finally:
        await lax.close()
    # Not a per-request option.
    with pytest.raises((TypeError, stackwire.InvalidRequestError)):
        await strict.get("/x", verify=False)  # type: ignore[call-overload]


async def test_tls_handshake_is_timed_apart_from_connect(
    serve_tls: ServeTLS, serve: Serve, make_client: MakeClient, trusting: ssl.SSLContext
) -> None:
    base = await serve_tls(Origin().app())
    client = make_client(base, verify=trusting)
    fresh = (await client.get("/first")).timings
    assert fresh.reused_connection is False
    assert isinstance(fresh.tls, float)
    assert fresh.tls > 0
    assert isinstance(fresh.connect, float)
    again = (await client.get("/second")).timings
    assert again.reused_connection is True
    assert again.tls is None
    assert again.connect is None
    plain = make_client(await serve(Origin().app()))
    over_http = (await plain.get("/plain")).timings
    assert over_http.reused_connection is False
    assert over_http.connect is not None
    assert over_http.tls is None


@pytest.mark.parametrize("bad", ["no", None, 0])
def test_bad_verify_is_rejected(bad: Any) -> None:
    with pytest.raises(stackwire.InvalidRequestError, match="verify"):
        stackwire.AsyncClient("https://api.test/", verify=bad)


async def test_https_through_a_connect_proxy_keeps_proxy_credentials_off_the_origin(
    serve_tls: ServeTLS,
    raw_server: RawServe,
    make_client: MakeClient,
    clean_env: pytest.MonkeyPatch,
    trusting: ssl.SSLContext,
) -> None:
    origin = Origin()
    base = await serve_tls(origin.app())
    proxy_url, proxy = await start_proxy(raw_server)
    clean_env.setenv("https_proxy", "http://user:pw-secret@" + proxy_url.split("://")[1])
    client = make_client(base, verify=trusting, api_key=SECRET)
    tunnelled = await client.get("/tunnelled")
    assert tunnelled.json() == {"origin": "/tunnelled"}
    # The handshake with the origin, through the tunnel (loop.start_tls), is timed.
    assert tunnelled.timings.tls is not None
    assert tunnelled.timings.tls > 0
    line, headers = proxy.requests[0]
    host_port = base.split("://")[1].rstrip("/")
    assert line == f"CONNECT {host_port} HTTP/1.1"
    assert headers["proxy-authorization"] == "Basic " + base64.b64encode(b"user:pw-secret").decode()
    # The proxy never saw the API key (end-to-end TLS); the origin never saw the
    # proxy's credentials.
    assert SECRET not in repr(headers)
    assert "Proxy-Authorization" not in origin.headers[0]
    assert origin.headers[0]["Authorization"] == f"Bearer {SECRET}"


async def test_https_to_http_redirect_drops_credentials(
    serve_tls: ServeTLS,
    serve: Serve,
    make_client: MakeClient,
    trusting: ssl.SSLContext,
) -> None:
    plain = Origin()
    plain_base = await serve(plain.app())

    async def moved(request: web.Request) -> web.Response:
        return web.Response(status=302, headers={"Location": plain_base + "landing"})

    base = await serve_tls(routes(("GET", "/start", moved)))
    client = make_client(base, verify=trusting, api_key=SECRET)
    assert (await client.get("/start")).json() == {"origin": "/landing"}
    assert "Authorization" not in plain.headers[0]


async def test_a_proxy_refusing_the_tunnel_is_named_and_its_credentials_are_not_shown(
    raw_server: RawServe, make_client: MakeClient
) -> None:
    # proxy.py with --basic-auth, given the wrong password: 407 to the CONNECT. The
    # error said "malformed response from the server", and the chained aiohttp error
    # showed the Proxy-Authorization as "***" + its last 4 characters: base64 of
    # "user:password", whose tail is the end of the password.
    async def refusing(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(
            b"HTTP/1.1 407 Proxy Authentication Required\r\n"
            b'Proxy-Authenticate: Basic realm="proxy"\r\nConnection: close\r\n\r\n'
        )
        await writer.drain()

    proxy_url, _ = await raw_server(refusing)
    password = "wrong-pw-QZJx"  # with "user:", 18 bytes: base64 ends with the last 3
    proxy = f"http://user:{password}@{proxy_url.split('://')[1]}"
    client = make_client("https://api.internal.test/", proxy=proxy, max_retries=0)
    with pytest.raises(stackwire.APIConnectionError) as info:
        await client.get("/x")
    message = str(info.value)
    assert "the proxy refused the tunnel: 407 Proxy Authentication Required" in message
    assert "malformed" not in message
    shown = "".join(traceback.format_exception(info.value)) + repr(info.value.__cause__)
    credentials = base64.b64encode(f"user:{password}".encode()).decode()
    assert password not in shown
    assert "QZJx" not in shown
    assert base64.b64decode(credentials[-4:]) == b"ZJx"
    assert credentials[-4:] not in shown
    assert "Proxy-Authorization': 'Basic ***'" in shown or "Proxy-Authorization': '***'" in shown
