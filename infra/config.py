"""Deployment settings of the service stack, read from CDK context.

Each field is the context key `entrix:<field>`: set it in cdk.json or on the command line
(`cdk synth -c entrix:waf_enabled=true`); command-line values arrive as strings and are
converted to the field's type here.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, get_type_hints

from aws_cdk import RemovalPolicy
from aws_cdk import aws_logs as logs

from constructs import Node

CONTEXT_PREFIX = "entrix:"

# CloudWatch Logs accepts only these retention periods (days).
_RETENTION = {
    1: logs.RetentionDays.ONE_DAY,
    3: logs.RetentionDays.THREE_DAYS,
    5: logs.RetentionDays.FIVE_DAYS,
    7: logs.RetentionDays.ONE_WEEK,
    14: logs.RetentionDays.TWO_WEEKS,
    30: logs.RetentionDays.ONE_MONTH,
    60: logs.RetentionDays.TWO_MONTHS,
    90: logs.RetentionDays.THREE_MONTHS,
    180: logs.RetentionDays.SIX_MONTHS,
    365: logs.RetentionDays.ONE_YEAR,
}


@dataclass(frozen=True)
class ServiceConfig:
    """Knobs of one deployment of the service stack."""

    region: str = "eu-west-1"
    account: str | None = None
    # Optional JWT claims the authorizer checks (None: not checked).
    jwt_issuer: str | None = None
    jwt_audience: str | None = None
    # How long a warm authorizer keeps the signing key before reading Secrets Manager again.
    secret_cache_ttl_seconds: int = 300
    # API Gateway caches an Allow/Deny per Authorization header this long (max 3600).
    authorizer_cache_ttl_seconds: int = 300
    # Stage-wide throttling: steady requests per second and burst.
    api_rate_limit: float = 50.0
    api_burst_limit: int = 100
    log_retention_days: int = 30
    # Keep the orders table and the signing key when the stack is deleted (off for throwaway
    # dev stacks).
    retain_data: bool = True
    # Attach an AWS WAF web ACL (AWS managed rule groups) to the API stage; meant for Prod.
    waf_enabled: bool = False

    def __post_init__(self) -> None:
        if self.log_retention_days not in _RETENTION:
            raise ValueError(f"log_retention_days must be one of {sorted(_RETENTION)}")
        if not 0 <= self.authorizer_cache_ttl_seconds <= 3600:
            raise ValueError("authorizer_cache_ttl_seconds must be within 0..3600")

    @property
    def log_retention(self) -> logs.RetentionDays:
        return _RETENTION[self.log_retention_days]

    @property
    def data_removal_policy(self) -> RemovalPolicy:
        return RemovalPolicy.RETAIN if self.retain_data else RemovalPolicy.DESTROY

    @classmethod
    def from_context(cls, node: Node) -> ServiceConfig:
        """The defaults, overridden by every `entrix:<field>` context value that is set."""
        hints = get_type_hints(cls)
        values = {}
        for field in dataclasses.fields(cls):
            raw = node.try_get_context(CONTEXT_PREFIX + field.name)
            if raw is not None:
                values[field.name] = _convert(raw, hints[field.name], field.name)
        return cls(**values)


def _convert(raw: Any, hint: Any, name: str) -> Any:
    if not isinstance(raw, str):
        return raw
    if hint is bool:
        if raw.lower() not in {"true", "false"}:
            raise ValueError(f"{CONTEXT_PREFIX}{name} must be true or false, not {raw!r}")
        return raw.lower() == "true"
    if hint in (int, float):
        return hint(raw)
    return raw
