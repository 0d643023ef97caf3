"""Swapping one store of a deployed handler for a test's own (say, one whose client injects faults).

Handlers make their stores on first use through a cached factory (`process.processor`,
`results.stores`); `replacing` stands in for that factory and returns what the real one makes
with some stores replaced. The real one still runs inside the invocation, in the function's
environment, as in Lambda.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")


def replacing(factory: Callable[[], T], **stores: Any) -> Callable[[], T]:
    def replaced() -> T:
        made: Any = factory()
        result: T = dataclasses.replace(made, **stores)
        return result

    return replaced
