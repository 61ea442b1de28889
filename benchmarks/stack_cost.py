"""The stack's own cost per call, in instructions counted by callgrind.

    python benchmarks/stack_cost.py                      # the full default stack
    python benchmarks/stack_cost.py --middleware mod:factory   # + the cost of one part
    python benchmarks/stack_cost.py --no-valgrind        # CPU µs/call instead (noisier)
    python benchmarks/stack_cost.py --socket --in-flight 1   # whole requests vs aiohttp
    make -C benchmarks cost

What is measured: a typed call, ``await client.get("/users/1", cast_to=User)``,
through the full default stack of ``AsyncClient(base_url)`` (``headers``, ``query``,
``timeout``, ``retry``, ``decode``, ``redirects``), from the verb to the decoded
``User``, in ``--in-flight`` tasks (64) that each loop one call at a time.

What sits below the stack: a *canned terminal* in place of the transport, in the
same process. It suspends once (``await asyncio.sleep(0)``, one trip through the
event loop, as a socket wait would) and hands back a `Response` over a prebuilt
200 response whose ~300-byte JSON body has already arrived (the common case for an
API's small JSON: the body comes in with the headers). No socket, no aiohttp: the
transport's and the kernel's work are excluded, and what the terminal itself does
(one ``Response`` and one stand-in for aiohttp's response per call) is constant,
the same for every stack measured. The callgrind counts are deterministic (same
Python, same hash seed, no network), so a change of a few hundred instructions is
real.

Start-up cancels: each count runs the program twice under
``valgrind --tool=callgrind``, once with N calls and once with 2N, after the same
warm-up (decoders built, memos filled, first calls made); the difference of the two
totals, divided by N, is the cost of one call. The *floor* is the same loop and
terminal with no client at all (the tasks, the suspension, the terminal's
``Response``); *stack* is per call minus the floor.

``--socket`` counts whole requests instead, over loopback to ``server.py`` (its own
process, pinned to the other core): the client process's instructions per request
(user space only: not the kernel's, not the server's) for the hand-written aiohttp +
msgspec loop and for stackwire, and their ratio.

``--middleware module:factory`` (repeatable) measures the stack again with the
factory's middleware added (``client.with_middleware(factory())``: just above
``redirects``, or where ``--before``/``--after`` says) and prints the added
instructions per call. ``module`` is imported with the current directory and this
checkout on ``sys.path``; ``factory`` is any callable returning a middleware (a
middleware class itself works).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import importlib
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent

BASE_URL = "http://127.0.0.1:9/"  # never connected to: the terminal is canned
WARMUP_CALLS = 500


# --- the canned bottom of the stack -------------------------------------------------


class _CannedContent:
    """What `Response` reads of aiohttp's ``StreamReader`` when the whole body came
    in with the headers."""

    __slots__ = ("_body", "total_bytes")

    def __init__(self, body: bytes) -> None:
        self._body = body
        self.total_bytes = len(body)

    def is_eof(self) -> bool:
        return True

    def exception(self) -> None:
        return None

    def read_nowait(self, n: int = -1) -> bytes:
        body, self._body = self._body, b""
        return body


class _CannedRaw:
    """A stand-in for a finished ``aiohttp.ClientResponse``: status, headers, body."""

    __slots__ = ("closed", "content", "headers", "reason", "status", "version")

    _connection = None  # released: no connection held, as aiohttp says it

    def __init__(self, status: int, headers: Any, body: bytes) -> None:
        self.status = status
        self.reason = "OK"
        self.headers = headers
        self.content = _CannedContent(body)
        self.closed = False
        self.version = None

    @property
    def content_length(self) -> int:
        return self.content.total_bytes

    @property
    def charset(self) -> str:
        return "utf-8"

    def release(self) -> None:
        self.closed = True

    def close(self) -> None:
        self.closed = True


def canned_terminal(body: bytes) -> Any:
    """The terminal handler: one suspension, then a 200 with ``body`` arrived."""
    from multidict import CIMultiDict, CIMultiDictProxy

    try:  # the default transport's Response (the Transport seam, issue 12)
        from stackwire.transports._aiohttp_response import AiohttpResponse

        def respond(raw: Any, request: Any, started: float) -> Any:
            return AiohttpResponse(raw, request, started, None)
    except ImportError:  # a checkout from before the seam: Response wrapped aiohttp's
        from stackwire.pipeline.response import Response

        def respond(raw: Any, request: Any, started: float) -> Any:
            return Response(raw, request, started, True, None)

    headers = CIMultiDictProxy(
        CIMultiDict(
            {
                "Content-Type": "application/json",
                "Content-Length": str(len(body)),
                "request-id": "req_cost",
            }
        )
    )
    sleep = asyncio.sleep
    monotonic = time.monotonic

    async def terminal(request: Any) -> Any:
        await sleep(0)
        return respond(_CannedRaw(200, headers, body), request, monotonic())

    return terminal


def _load(spec: str) -> Any:
    module_name, _, attribute = spec.partition(":")
    if not module_name or not attribute:
        raise SystemExit(f"--middleware wants module:factory, got {spec!r}")
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    factory = importlib.import_module(module_name)
    for part in attribute.split("."):
        factory = getattr(factory, part)
    return factory()


def build_call(params: dict[str, Any]) -> Any:
    """The coroutine function one call is; the client built as ``params`` say."""
    sys.path.insert(0, str(HERE))
    try:
        import stackwire  # installed, or on PYTHONPATH: that one
    except ImportError:  # run from a checkout without installing stackwire
        sys.path.insert(0, str(ROOT))
    if params.get("socket"):
        from clients import open_client

        adapter = open_client(params["client"], params["socket"])
        return adapter.get_user, adapter
    from payloads import USER_BODY, models_on

    terminal = canned_terminal(USER_BODY)
    if params["floor"]:

        async def bare() -> Any:
            return await terminal(None)

        return bare, None

    import stackwire

    user = models_on(stackwire.Model).User
    client = stackwire.AsyncClient(BASE_URL, **params["client_options"])
    for spec in params["middlewares"]:
        placement = {key: params[key] for key in ("before", "after") if params.get(key) is not None}
        client = client.with_middleware(_load(spec), **placement)
    _use_terminal(client, terminal)
    get = client.get

    async def call() -> Any:
        return await get("/users/1", cast_to=user)

    return call, client


def _use_terminal(client: Any, terminal: Any) -> None:
    # The chain ending in the canned terminal instead of the client's transport (the
    # same composition the client makes for its transport).
    client._handler = client.pipeline.compose(terminal)


async def _loop(call: Any, in_flight: int, calls: int) -> None:
    remaining = calls

    async def worker() -> None:
        nonlocal remaining
        while remaining > 0:
            remaining -= 1
            await call()

    await asyncio.gather(*(worker() for _ in range(in_flight)))


async def _child_main(params: dict[str, Any]) -> float:
    call, client = build_call(params)
    first = await call()
    if not params["floor"] and getattr(first, "id", None) != 1:
        raise SystemExit(f"the call decoded the wrong value: {first!r}")
    await _loop(call, params["in_flight"], WARMUP_CALLS)
    gc.collect()
    started = time.process_time()  # CPU time: the machine's other work stays out
    await _loop(call, params["in_flight"], params["calls"])
    elapsed = time.process_time() - started
    if client is not None:
        await (client.aclose() if params.get("socket") else client.close())
    return elapsed


def child(params: dict[str, Any]) -> None:
    elapsed = asyncio.run(_child_main(params))
    print(json.dumps({"seconds": elapsed}), flush=True)


# --- the parent: callgrind runs and arithmetic ----------------------------------------

_TOTALS = re.compile(rb"^(?:summary|totals):\s*(\d+)", re.MULTILINE)


def _run_child(params: dict[str, Any], valgrind: bool) -> tuple[int | None, float]:
    """Instructions of one child run (None without valgrind) and its timed seconds."""
    command = [sys.executable, str(Path(__file__).resolve()), "--child", json.dumps(params)]
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "callgrind.out"
        if valgrind:
            command = [
                "valgrind",
                "--tool=callgrind",
                f"--callgrind-out-file={out}",
                "--dump-instr=no",
                "--compress-strings=no",
                *command,
            ]
        done = subprocess.run(command, capture_output=True, env=env, check=False)
        if done.returncode != 0:
            tail = (done.stderr or done.stdout).decode(errors="replace").strip()
            raise SystemExit(f"child failed ({done.returncode}):\n{tail[-2000:]}")
        seconds = float(json.loads(done.stdout.decode().strip().splitlines()[-1])["seconds"])
        if not valgrind:
            return None, seconds
        match = _TOTALS.search(out.read_bytes())
        if match is None:
            raise SystemExit("no totals in the callgrind output")
        return int(match.group(1)), seconds


def per_call(params: dict[str, Any], calls: int, valgrind: bool) -> float:
    """Instructions per call (or µs per call without valgrind): 2N run minus N run."""
    small, t_small = _run_child({**params, "calls": calls}, valgrind)
    large, t_large = _run_child({**params, "calls": 2 * calls}, valgrind)
    if small is None or large is None:
        return (t_large - t_small) / calls * 1e6
    return (large - small) / calls


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=2000, help="N (the runs make N and 2N)")
    parser.add_argument("--in-flight", type=int, default=64, help="tasks calling at once")
    parser.add_argument(
        "--middleware",
        action="append",
        default=[],
        metavar="MODULE:FACTORY",
        help="also measure the stack with this middleware added (repeatable: one each)",
    )
    placement = parser.add_mutually_exclusive_group()
    placement.add_argument("--before", help="place --middleware before this one")
    placement.add_argument("--after", help="place --middleware after this one")
    parser.add_argument(
        "--client-options", default="{}", help="JSON keywords for AsyncClient(base_url, ...)"
    )
    parser.add_argument(
        "--no-valgrind",
        action="store_true",
        help="CPU µs per call (noisier; no valgrind needed) instead of instructions",
    )
    parser.add_argument(
        "--socket",
        action="store_true",
        help="instead: whole requests over loopback to benchmarks/server.py (another "
        "process, another core), stackwire against the hand-written aiohttp loop",
    )
    parser.add_argument("--json", action="store_true", help="print the numbers as JSON")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child is not None:
        child(json.loads(args.child))
        return 0
    valgrind = not args.no_valgrind
    if valgrind and subprocess.run(["which", "valgrind"], capture_output=True).returncode:
        parser.error("valgrind is not installed (apt-get install valgrind), or use --no-valgrind")
    unit = "instructions" if valgrind else "µs"
    base = {
        "in_flight": args.in_flight,
        "client_options": json.loads(args.client_options),
        "middlewares": [],
        "before": args.before,
        "after": args.after,
        "floor": False,
    }
    if args.socket:
        return socket_main(args, base, valgrind, unit)
    results: dict[str, float] = {}
    results["floor"] = per_call({**base, "floor": True}, args.calls, valgrind)
    results["call"] = per_call(base, args.calls, valgrind)
    results["stack"] = results["call"] - results["floor"]
    for spec in args.middleware:
        with_part = per_call({**base, "middlewares": [spec]}, args.calls, valgrind)
        results[f"+ {spec}"] = with_part - results["call"]
    if args.json:
        print(json.dumps({"unit": unit, **results}))
        return 0
    digits = 0 if valgrind else 2
    print(
        f"typed GET through the default stack, canned terminal, {args.in_flight} in flight, "
        f"N={args.calls} and 2N calls ({unit} per call):"
    )
    width = max(len(name) for name in results)
    for name, value in results.items():
        label = {
            "floor": "floor (loop + terminal, no client)",
            "call": "per call (verb to decoded User)",
            "stack": "stack's own cost (call - floor)",
        }.get(name, f"added by {name[2:]}")
        print(f"  {label:<{max(width, 36)}} {value:>10,.{digits}f}")
    return 0


def socket_main(args: argparse.Namespace, base: dict[str, Any], valgrind: bool, unit: str) -> int:
    """Whole typed requests over a socket: the client process's own instructions (the
    kernel's and the server's are not counted), stackwire and the baseline."""
    sys.path.insert(0, str(HERE))
    from harness import CLIENT_CORE, SERVER_CORE, pin_to
    from server import running_server

    results: dict[str, float] = {}
    with running_server() as server:
        pin_to(CLIENT_CORE)  # the server pins itself to SERVER_CORE
        for name in ("aiohttp", "stackwire"):
            params = {**base, "socket": server.base_url, "client": name}
            results[name] = per_call(params, args.calls, valgrind)
    results["ratio"] = results["aiohttp"] / results["stackwire"]
    if args.json:
        print(json.dumps({"unit": unit, "in_flight": args.in_flight, **results}))
        return 0
    digits = 0 if valgrind else 2
    print(
        f"typed GET /users/1 over loopback, {args.in_flight} in flight, client core "
        f"{CLIENT_CORE}, server core {SERVER_CORE} ({unit} per request, client process):"
    )
    print(f"  aiohttp + msgspec, hand-written  {results['aiohttp']:>12,.{digits}f}")
    print(f"  stackwire, full default stack    {results['stackwire']:>12,.{digits}f}")
    print(f"  baseline / stackwire             {results['ratio']:>12.3f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
