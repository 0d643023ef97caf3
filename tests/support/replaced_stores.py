"""Swapping one store of a deployed handler for a test's own (say, one whose client injects faults).

Handlers make their stores on first use through a cached factory (`process.processor`,
`results.stores`); `replace_stores` puts a stand-in for that factory which returns what the real
one makes with some stores replaced. The real one still runs inside the invocation, in the
function's environment, as in Lambda.
"""

from __future__ import annotations

import dataclasses
from types import ModuleType
from typing import Any

import pytest


def replace_stores(
    monkeypatch: pytest.MonkeyPatch, module: ModuleType, factory: str, **stores: Any
) -> None:
    real = getattr(module, factory)
    monkeypatch.setattr(module, factory, lambda: dataclasses.replace(real(), **stores))
