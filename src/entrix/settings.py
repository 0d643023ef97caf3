"""Every setting a Lambda function reads from its environment: its variable, its type, its default.

This module is the one home of each default. The CDK constructs set every function's variables
from it (the default too, explicitly), and the handlers read a setting here when they first need
it, not at import, so a test sets a variable with `monkeypatch.setenv` instead of reloading a
module. It imports only the standard library and the batch rule (which does too): the authorizer
and ingest pay nothing for it at a cold start.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from typing import Generic, NamedTuple, TypeVar

from entrix.auction.batches import DEFAULT_MAX_BATCH_ORDERS

T = TypeVar("T")

# The results state machine's timeout. A run's claim on an order lasts as long: no run outlives it.
RUN_TIMEOUT_SECONDS = 30 * 60


class SettingError(Exception):
    """A function's environment lacks a required setting or holds a value of the wrong type."""


class Setting(NamedTuple, Generic[T]):
    """One environment variable. `default` None: the function cannot run without it.

    A NamedTuple rather than a frozen dataclass, for the same immutable value: `dataclasses`
    imports `inspect`, which the authorizer loads for nothing else (about 10 ms of its cold
    start on the bench machine, `python -m bench.cold_start --explain authorizer`).
    """

    name: str
    parse: Callable[[str], T]
    default: T | None = None

    def read(self) -> T:
        """The value in this process's environment (an empty variable counts as unset)."""
        raw = os.environ.get(self.name, "")
        if raw == "":
            if self.default is None:
                raise SettingError(f"{self.name} is not set")
            return self.default
        try:
            return self.parse(raw)
        except ValueError as error:
            raise SettingError(f"{self.name}={raw!r}: {error}") from error

    def text(self, value: T | None = None) -> str:
        """`value` (else the default) as the variable's text, for the CDK constructs."""
        chosen = self.default if value is None else value
        if chosen is None:
            raise SettingError(f"{self.name} has no default: give it a value")
        return str(chosen)


def _probability(raw: str) -> float:
    value = float(raw)
    if not 0.0 <= value <= 1.0:
        raise ValueError("must be within 0..1")
    return value


def _flag(raw: str) -> bool:
    if raw.lower() not in ("true", "false"):
        raise ValueError("must be true or false")
    return raw.lower() == "true"


def _auction_mode(raw: str) -> str:
    if raw not in AUCTION_MODES:
        raise ValueError(f"must be one of {', '.join(AUCTION_MODES)}")
    return raw


def _positive(raw: str) -> int:
    value = int(raw)
    if value < 1:
        raise ValueError("must be at least 1")
    return value


def _nonempty(raw: str) -> str:
    if not raw.strip():
        raise ValueError("must not be empty")
    return raw


def _key_source(raw: str) -> str:
    if raw not in JWT_KEY_SOURCES:
        raise ValueError(f"must be one of {', '.join(JWT_KEY_SOURCES)}")
    return raw


JWT_KEY_SOURCES = ("secret", "jwks")


def _client_limits(raw: str) -> str:
    """Per-client overrides as canonical JSON text: an object of subject -> {"rate_limit": n,
    "daily_orders": n}, either limit left out to keep the default."""
    overrides = json.loads(raw)
    if not isinstance(overrides, dict):
        raise ValueError("must be a JSON object of subject -> limits")
    for subject, limits in overrides.items():
        if not isinstance(limits, dict) or not limits or set(limits) - set(CLIENT_LIMIT_FIELDS):
            raise ValueError(f"{subject!r}: give rate_limit and/or daily_orders")
        for name, value in limits.items():
            if type(value) is not int or value < 1:
                raise ValueError(f"{subject!r}: {name} must be a whole number of at least 1")
    return json.dumps(overrides, sort_keys=True, separators=(",", ":"))


# "orders": results for the orders waiting for one; "random": made-up orders (demos, benchmarks).
AUCTION_MODES = ("orders", "random")

# The orders table: ingest, order status, Lambda A and Lambda B.
ORDERS_TABLE_NAME = Setting("ORDERS_TABLE_NAME", str)
# The sparse index of orders waiting for a result (Lambda A).
ORDERS_PENDING_INDEX_NAME = Setting("ORDERS_PENDING_INDEX_NAME", str, "pending-results")
# The index of each client's orders, newest first (GET /orders).
ORDERS_OWNER_INDEX_NAME = Setting("ORDERS_OWNER_INDEX_NAME", str, "owner-orders")

# The authorizer. Where its keys come from: "secret" (HS256 keys in a Secrets Manager secret,
# its AWSCURRENT and AWSPREVIOUS versions, each version's id its `kid`) or "jwks" (RS256/ES256
# public keys of the company's identity provider, by `kid` from its JWKS URL).
JWT_KEY_SOURCE = Setting("JWT_KEY_SOURCE", _key_source, "secret")
JWT_SECRET_ARN = Setting("JWT_SECRET_ARN", str)
JWT_JWKS_URL = Setting("JWT_JWKS_URL", str)
# Whether the JWKS URL may be plain http:// on the loopback interface (the local runtime's
# identity provider and tests only; every deployed authorizer sets it false: https:// only).
JWT_JWKS_ALLOW_LOOPBACK_HTTP = Setting("JWT_JWKS_ALLOW_LOOPBACK_HTTP", _flag, False)
# The issuer and audience every token must name, and the longest lifetime (exp - iat) accepted.
JWT_ISSUER = Setting("JWT_ISSUER", _nonempty, "https://auth.entrix.example")
JWT_AUDIENCE = Setting("JWT_AUDIENCE", _nonempty, "entrix-auction-orders")
MAX_TOKEN_LIFETIME_SECONDS = Setting("MAX_TOKEN_LIFETIME_SECONDS", _positive, 12 * 60 * 60)
# The deny list of revoked tokens (by `jti`) and subjects (tokens issued before a time), and how
# long a warm authorizer uses it before reading it again.
JWT_REVOCATIONS_SECRET_ARN = Setting("JWT_REVOCATIONS_SECRET_ARN", str)
REVOCATIONS_CACHE_TTL_SECONDS = Setting[float]("REVOCATIONS_CACHE_TTL_SECONDS", float, 30)
# How long a warm authorizer (or Slack forwarder) keeps a secret before reading it again.
SECRET_CACHE_TTL_SECONDS = Setting[float]("SECRET_CACHE_TTL_SECONDS", float, 300)

# Lambda A, the simulated auction platform.
RESULTS_READY_PROBABILITY = Setting("RESULTS_READY_PROBABILITY", _probability, 0.5)
AUCTION_MODE = Setting("AUCTION_MODE", _auction_mode, "orders")
RANDOM_ORDER_COUNT = Setting("RANDOM_ORDER_COUNT", _positive, 10)
# Orders a run takes at most (the rest wait for the next run), and per batch (one Lambda B call).
MAX_ORDERS_PER_RUN = Setting("MAX_ORDERS_PER_RUN", _positive, 200_000)
BATCH_MAX_ORDERS = Setting("BATCH_MAX_ORDERS", _positive, DEFAULT_MAX_BATCH_ORDERS)
# A run that takes orders expiring within this many seconds alerts the trading team (2 h before
# the 24 h TTL by default): they waited almost a day for a result.
EXPIRY_WARNING_SECONDS = Setting("EXPIRY_WARNING_SECONDS", _positive, 2 * 60 * 60)

# Lambda A, Lambda B and the history archiver: where results, batches and history are written.
RESULTS_BUCKET_NAME = Setting("RESULTS_BUCKET_NAME", str)
# Lambda B (and Lambda A's expiry alert): the trading team's alert topic; Lambda B: how long a
# claim on an order lasts.
ALERT_TOPIC_ARN = Setting("ALERT_TOPIC_ARN", str)
RESULT_LEASE_SECONDS = Setting("RESULT_LEASE_SECONDS", _positive, RUN_TIMEOUT_SECONDS)

# The Slack forwarder: the secret holding the incoming-webhook URL, and whether it may be a
# plain http:// URL on the loopback interface (a local stand-in: the local runtime and tests
# only; every deployed forwarder sets it false, so its webhook must be https://).
SLACK_WEBHOOK_SECRET_ARN = Setting("SLACK_WEBHOOK_SECRET_ARN", str)
SLACK_WEBHOOK_ALLOW_LOOPBACK_HTTP = Setting("SLACK_WEBHOOK_ALLOW_LOOPBACK_HTTP", _flag, False)

# The four API functions: each client's (token subject's) fair share, counted in the client
# usage table (entrix.aws.client_usage): requests per fixed window, and orders per UTC day.
CLIENT_USAGE_TABLE_NAME = Setting("CLIENT_USAGE_TABLE_NAME", str)
CLIENT_RATE_LIMIT = Setting("CLIENT_RATE_LIMIT", _positive, 100)
CLIENT_RATE_WINDOW_SECONDS = Setting("CLIENT_RATE_WINDOW_SECONDS", _positive, 10)
CLIENT_DAILY_ORDER_QUOTA = Setting("CLIENT_DAILY_ORDER_QUOTA", _positive, 1_000_000)
# Clients with a share of their own (JSON: subject -> the limits that differ from the above).
CLIENT_LIMIT_FIELDS = ("rate_limit", "daily_orders")
CLIENT_LIMITS = Setting("CLIENT_LIMITS", _client_limits, "{}")
