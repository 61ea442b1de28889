"""The testing kit for SDK authors (DESIGN §7): test an SDK on stackwire without a live API.

- `MockTransport` answers every attempt from a handler (a function or a `Router`) with
  a `MockResponse`, or fails it with the very error a socket failure would raise;
- `Router` routes by method and path template and records the calls;
- `Cassette` records real exchanges to a JSON file (credentials redacted) and replays
  them, streams chunk by chunk;
- `FaultInjector` is a middleware for chaos tests: seeded faults per attempt;
- `VirtualTime` makes retries and rate limits take no time.

Everything above the transport (the whole stack, retries, decoding, streams,
pagination, errors, the blocking `Client`) runs exactly as over a socket. The pytest
plugin (``stackwire.testing.pytest_plugin``, registered as the ``stackwire`` entry
point) adds fixtures; importing this module never imports pytest.
"""

from ._cassette import Cassette
from ._faults import FaultInjector, InjectedFault
from ._mock import MockResponse, MockTransport
from ._router import Call, Route, Router
from ._virtual_time import VirtualTime

__all__ = [
    "Call",
    "Cassette",
    "FaultInjector",
    "InjectedFault",
    "MockResponse",
    "MockTransport",
    "Route",
    "Router",
    "VirtualTime",
]

for _name in __all__:
    globals()[_name].__module__ = "stackwire.testing"
del _name
