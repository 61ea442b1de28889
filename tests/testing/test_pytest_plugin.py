"""The pytest plugin: its fixtures give an SDK's tests a mocked client with no
boilerplate; it is an entry point; ``import stackwire.testing`` never imports pytest."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import tomllib
from pathlib import Path

from tests.docs.test_example_sdk import ROOT, run_suite

SDK_TESTS = """
import pytest
import stackwire
from stackwire.testing import Cassette, MockResponse, Router, VirtualTime


async def test_mock_client(
    stackwire_mock_client: stackwire.AsyncClient,
    stackwire_router: Router,
    stackwire_virtual_time: VirtualTime,
) -> None:
    stackwire_router.get("/users/{id}").respond_seq(
        [MockResponse(503), MockResponse(json={"id": 1})]
    )
    assert await stackwire_mock_client.get("/users/1", cast_to=dict) == {"id": 1}
    assert len(stackwire_virtual_time.slept) == 1
    assert str(stackwire_router.calls[0].request.url) == "https://api.test/users/1"


def test_mock_sync_client(
    stackwire_mock_sync_client: stackwire.Client, stackwire_router: Router
) -> None:
    stackwire_router.get("/ping").respond(json={"pong": True})
    assert stackwire_mock_sync_client.get("/ping", cast_to=dict) == {"pong": True}


def test_cassette_fixture(stackwire_cassette: Cassette, stackwire_cassette_dir) -> None:
    assert stackwire_cassette.path == stackwire_cassette_dir / "test_cassette_fixture.json"
    assert stackwire_cassette_dir.name == "cassettes"
    assert stackwire_cassette.mode == "record"  # "once", and nothing recorded yet
"""


OPTIONS = ("-q", "-o", "asyncio_mode=auto", "-o", "asyncio_default_fixture_loop_scope=function")


def test_the_fixtures_work_in_an_sdk_test_suite(tmp_path: Path) -> None:
    (tmp_path / "test_sdk.py").write_text(textwrap.dedent(SDK_TESTS))
    result, sockets = run_suite(tmp_path, tmp_path, *OPTIONS)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "3 passed" in result.stdout
    assert sockets.splitlines()[0] == "0"


def test_record_mode_is_an_option(tmp_path: Path) -> None:
    (tmp_path / "test_sdk.py").write_text(textwrap.dedent(SDK_TESTS))
    result, _ = run_suite(tmp_path, tmp_path, *OPTIONS, "--stackwire-record=replay")
    assert result.returncode != 0
    assert "does not exist: record it first" in result.stdout


UNCLOSED_RECORDING = """
import warnings

import stackwire
from aiohttp import web
from aiohttp.test_utils import TestServer
from stackwire.testing import Cassette


async def test_recorded_without_closing(stackwire_cassette: Cassette) -> None:
    warnings.simplefilter("ignore", ResourceWarning)  # the unclosed client, on purpose
    if stackwire_cassette.mode == "record":
        app = web.Application()
        app.router.add_get("/ping", lambda request: web.json_response({"pong": 1}))
        server = TestServer(app, host="127.0.0.1")
        await server.start_server()
        base = str(server.make_url("/"))
    else:
        base = stackwire_cassette.interactions[0]["request"]["url"].removesuffix("ping")
    client = stackwire.AsyncClient(base, transport=stackwire_cassette)
    assert await client.get("/ping", cast_to=dict) == {"pong": 1}
"""


def test_a_cassette_whose_client_was_never_closed_is_written_after_the_test(
    tmp_path: Path,
) -> None:
    (tmp_path / "test_sdk.py").write_text(textwrap.dedent(UNCLOSED_RECORDING))

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        # Not `run_suite`: recording needs a socket (to a server on 127.0.0.1).
        plugins = ("-p", "stackwire.testing.pytest_plugin", "-p", "pytest_asyncio.plugin")
        command = [sys.executable, "-m", "pytest", *plugins, "-p", "no:cacheprovider"]
        environment = {**os.environ, "PYTHONPATH": str(ROOT), "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"}
        return subprocess.run(
            [*command, *OPTIONS, *args],
            cwd=tmp_path,
            env=environment,
            capture_output=True,
            text=True,
            timeout=120,
        )

    recorded = run()
    assert recorded.returncode == 0, recorded.stdout + recorded.stderr
    assert (tmp_path / "cassettes" / "test_recorded_without_closing.json").is_file()
    replayed = run("--stackwire-record=replay")
    assert replayed.returncode == 0, replayed.stdout + replayed.stderr
    assert "1 passed" in replayed.stdout


def test_the_plugin_is_a_pytest11_entry_point() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    entry_points = project["project"]["entry-points"]["pytest11"]
    assert entry_points == {"stackwire": "stackwire.testing.pytest_plugin"}


def test_importing_the_kit_does_not_import_pytest() -> None:
    code = "import sys, stackwire.testing; print('pytest' in sys.modules)"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert result.stdout.strip() == "False"
