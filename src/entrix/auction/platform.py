"""The simulated auction platform behind Lambda A.

The real platform is out of reach, so results are drawn at random: whether they are ready at all,
and for each order whether it was accepted and how much power it was awarded. The random source is
injected so that tests and benchmarks can make every draw deterministic.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum

Number = int | float | Decimal


class Status(StrEnum):
    ACCEPTED = "accepted"
    REJECTED = "rejected"


@dataclass(frozen=True)
class PendingOrder:
    """An order that was stored by the API and has no result yet: its table key and the version
    the platform gives a result for (a run records the result on that version only)."""

    order_key: str
    version: str


@dataclass(frozen=True)
class SyntheticOrder:
    """A made-up order for the platform's random mode, stored first as the API would store it."""

    record_id: str
    parameter_1: str
    parameter_2: Decimal


@dataclass(frozen=True)
class AuctionResult:
    """The platform's verdict on one order."""

    order: PendingOrder
    status: Status
    power: int


def json_number(value: Number) -> int | float:
    """A number JSON can carry: integers stay exact, others become the nearest double."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    return value


class AuctionPlatform:
    """Decides, at random, when results are ready and what each order's result is."""

    def __init__(
        self,
        rng: random.Random,
        ready_probability: float,
        acceptance_probability: float = 0.5,
        max_power: int = 100,
    ) -> None:
        for name, probability in (
            ("ready_probability", ready_probability),
            ("acceptance_probability", acceptance_probability),
        ):
            if not 0.0 <= probability <= 1.0:
                raise ValueError(f"{name} must be between 0 and 1, got {probability}")
        self._rng = rng
        self._ready_probability = ready_probability
        self._acceptance_probability = acceptance_probability
        self._max_power = max_power

    def results_ready(self) -> bool:
        return self._rng.random() < self._ready_probability

    def result_for(self, order: PendingOrder) -> AuctionResult:
        accepted = self._rng.random() < self._acceptance_probability
        return AuctionResult(
            order=order,
            status=Status.ACCEPTED if accepted else Status.REJECTED,
            power=self._rng.randint(1, self._max_power),
        )

    def synthetic_orders(self, count: int, run_prefix: str) -> list[SyntheticOrder]:
        """`count` made-up orders, as the seed's Lambda A generated them (demos, benchmarks)."""
        return [
            SyntheticOrder(
                record_id=f"{run_prefix}-{index:06d}",
                parameter_1=self._rng.choice(("buy", "sell")),
                parameter_2=Decimal(self._rng.randint(1, 10_000)) / 100,
            )
            for index in range(count)
        ]
