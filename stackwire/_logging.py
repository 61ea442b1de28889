"""The ``"stackwire"`` logger, silent unless the application configures logging.

The logger has a `logging.NullHandler`, so nothing is printed (and no "no handlers"
warning appears) until the application configures `logging`. For people who
configure nothing, ``STACKWIRE_LOG=info`` or ``STACKWIRE_LOG=debug`` in the
environment adds a stderr handler at that level when stackwire is imported: ``info``
shows each retry decision, ``debug`` also each attempt of a `LoggingMiddleware`.
"""

from __future__ import annotations

import logging
import os
import sys

__all__ = ["LOG_ENV", "logger"]

LOG_ENV = "STACKWIRE_LOG"

logger = logging.getLogger("stackwire")


def _setup() -> None:
    if not any(isinstance(h, logging.NullHandler) for h in logger.handlers):
        logger.addHandler(logging.NullHandler())
    level = {"info": logging.INFO, "debug": logging.DEBUG}.get(
        os.environ.get(LOG_ENV, "").strip().lower()
    )
    if level is None or any(getattr(h, "_stackwire_env", False) for h in logger.handlers):
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.setLevel(level)
    handler._stackwire_env = True  # type: ignore[attr-defined]
    logger.addHandler(handler)
    logger.setLevel(level)


_setup()
