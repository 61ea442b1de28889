"""Typed JSON decode alone: stackwire vs msgspec directly vs pydantic.

The same bytes (the server's ~300 B user, ~2 KB page and ~1 MiB page) are decoded
into the same shape by each decoder, in one fresh process. Each decoder gets a loop
count calibrated to a fixed batch time; batches are interleaved across decoders and
repeated, and the table gives the median time per decode with min–max.

stackwire's row uses its decode function, `stackwire.models.decode_json(data, type)`
or else `stackwire.models.decode_body(data, type)` (the one its decode middleware
calls), and says which; or that there is none yet.
"""

from __future__ import annotations

import functools
import gc
import time
from collections.abc import Callable
from typing import Any

from harness import (
    NOT_AVAILABLE,
    Result,
    Spread,
    Unavailable,
    markdown_table,
    run_worker,
    status_of,
    worker_main,
)
from payloads import models_on, payload

MODEL_OF = {"small": "User", "2k": "UserPage", "1m": "UserPage"}
LABELS = {
    "stackwire": "stackwire (no decode function yet)",
    "msgspec": "msgspec `json.decode(type=)`",
    "msgspec_decoder": "msgspec `json.Decoder(type)`",
    "pydantic": "pydantic `model_validate_json`",
}


STACKWIRE_DECODERS = ("decode_json", "decode_body")


def _stackwire_decoder(type_name: str) -> tuple[str, Callable[[bytes], Any]]:
    """The first of `stackwire.models.decode_json` / `decode_body` that exists."""
    try:
        import stackwire
        import stackwire.models

        model = getattr(models_on(stackwire.Model), type_name)
    except (ImportError, AttributeError) as error:
        raise Unavailable(f"{type(error).__name__}: {error}") from error
    for name in STACKWIRE_DECODERS:
        decode = getattr(stackwire.models, name, None)
        if callable(decode):
            return f"stackwire `models.{name}(data, T)`", functools.partial(_call, decode, model)
    raise Unavailable("stackwire.models has none of " + ", ".join(STACKWIRE_DECODERS))


def _call(decode: Callable[[bytes, Any], Any], model: Any, data: bytes) -> Any:
    return decode(data, model)


def _decoders(type_name: str) -> tuple[dict[str, Callable[[bytes], Any] | str], str]:
    import msgspec
    import pydantic

    struct = getattr(models_on(msgspec.Struct), type_name)
    validate = getattr(models_on(pydantic.BaseModel), type_name).model_validate_json
    decoder = msgspec.json.Decoder(struct)
    found: dict[str, Callable[[bytes], Any] | str] = {}
    stackwire_label = LABELS["stackwire"]
    try:
        stackwire_label, found["stackwire"] = _stackwire_decoder(type_name)
    except Unavailable as error:
        found["stackwire"] = str(error)
    found["msgspec"] = lambda data: msgspec.json.decode(data, type=struct)
    found["msgspec_decoder"] = decoder.decode
    found["pydantic"] = validate
    return found, stackwire_label


def _time_batch(decode: Callable[[bytes], Any], data: bytes, loops: int) -> float:
    started = time.perf_counter()
    for _ in range(loops):
        decode(data)
    return (time.perf_counter() - started) / loops


def _worker(params: dict[str, Any]) -> Result:
    batch: float = params["batch_seconds"]
    out: dict[str, Any] = {}
    for payload_name, type_name in MODEL_OF.items():
        data = payload(payload_name)
        decoders, stackwire_label = _decoders(type_name)
        runnable = {name: d for name, d in decoders.items() if callable(d)}
        loops = {}
        for name, decode in runnable.items():
            decode(data)  # warm up and prove it decodes
            single = _time_batch(decode, data, 3)
            loops[name] = max(1, int(batch / max(single, 1e-9)))
        times: dict[str, list[float]] = {name: [] for name in runnable}
        gc.collect()
        for _ in range(params["repetitions"]):
            for name, decode in runnable.items():
                times[name].append(_time_batch(decode, data, loops[name]))
        out[payload_name] = {
            "bytes": len(data),
            "seconds": times,
            "unavailable": {n: d for n, d in decoders.items() if isinstance(d, str)},
            "stackwire_label": stackwire_label,
        }
    return out


def run(*, repetitions: int, batch_seconds: float) -> tuple[str, list[list[str]]]:
    params = {"case": "decode", "repetitions": repetitions, "batch_seconds": batch_seconds}
    result = run_worker("bench_decode.py", params, timeout=600)
    status = status_of(result)
    header = ["payload", "decoder", "µs/decode", "MB/s", "vs msgspec `json.decode`"]
    if status is not None:
        print(f"  decode: {status}")
        return f"## Decode\n\n{status}\n", []
    rows = []
    notes = set()
    for payload_name, entry in result.items():
        seconds: dict[str, list[float]] = entry["seconds"]
        size: int = entry["bytes"]
        base = Spread(seconds["msgspec"]).median
        labels = {**LABELS, "stackwire": entry["stackwire_label"]}
        for name in labels:
            if name in entry["unavailable"]:
                what = f"{payload_name} ({size:,} B)"
                rows.append([what, labels[name], NOT_AVAILABLE, "", ""])
                notes.add(entry["unavailable"][name])
                continue
            spread = Spread(seconds[name])
            rows.append(
                [
                    f"{payload_name} ({size:,} B)",
                    labels[name],
                    spread.format(2, scale=1e6),
                    f"{size / spread.median / 1e6:,.0f}",
                    f"{base / spread.median:.2f}x",
                ]
            )
            print(f"  decode {payload_name} {name}: {spread.median * 1e6:.2f} µs")
    note = ""
    if notes:
        note = "\nstackwire decode skipped: " + "; ".join(sorted(notes)) + "\n"
    section = (
        "## Decode: bytes to typed model, no I/O\n\n"
        f"One fresh process; batches of ~{batch_seconds:g} s per decoder, {repetitions} "
        "interleaved repetitions; median (min–max). The last column is speed relative "
        "to `msgspec.json.decode(data, type=T)` (higher is faster).\n\n"
        + markdown_table(header, rows)
        + "\n"
        + note
    )
    return section, []


if __name__ == "__main__":
    worker_main({"decode": _worker})
