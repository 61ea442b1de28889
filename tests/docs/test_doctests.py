"""Every docstring example in the package runs and shows what it claims."""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

import stackwire


def _modules() -> list[str]:
    found = [stackwire.__name__]
    for info in pkgutil.walk_packages(stackwire.__path__, prefix=f"{stackwire.__name__}."):
        found.append(info.name)
    return sorted(found)


MODULES = _modules()


def test_every_module_is_collected() -> None:
    for expected in (
        "stackwire.client.async_client",
        "stackwire._http.urls",
        "stackwire.pipeline.pipeline",
    ):
        assert expected in MODULES


@pytest.mark.parametrize("name", MODULES)
def test_module_doctests(name: str) -> None:
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS, verbose=False, report=True)
    assert result.failed == 0, f"{result.failed} of {result.attempted} examples failed in {name}"


def test_the_examples_are_many() -> None:
    attempted = sum(
        doctest.testmod(importlib.import_module(name), report=False).attempted for name in MODULES
    )
    assert attempted >= 30
