"""Why the service's log groups do not meet two Control Tower controls, said once for all of
them (each log group made with `entrix:log_retention_days` acknowledges both here)."""

from __future__ import annotations

from constructs import IConstruct

from infra.nag import acknowledge_control

RETENTION_REASON = (
    "Logs are for diagnosing and are kept entrix:log_retention_days (30 by default); the record "
    "that must last, every change to every order, is archived under history/ in the results "
    "bucket and kept entrix:history_retention_days (400 by default). A deployment that must "
    "keep logs a year sets entrix:log_retention_days to 365, which meets this control."
)
ENCRYPTION_REASON = (
    "CloudWatch Logs encrypts every log group at rest with an AWS owned key. The logs hold "
    "order ids, parameters and owners, which the results bucket keeps under SSE-S3 too, and no "
    "token or secret; a customer managed key (a dollar a month per stack, and a key policy for "
    "logs.<region>.amazonaws.com) would add a key policy on reading them, which IAM already "
    "bounds to this account's roles."
)


def acknowledge_log_controls(log_group: IConstruct) -> None:
    """CT.CLOUDWATCH.PR.2 (a year's retention) and PR.3 (a KMS key) on one service log group."""
    acknowledge_control(log_group, "CT.CLOUDWATCH.PR.2", RETENTION_REASON)
    acknowledge_control(log_group, "CT.CLOUDWATCH.PR.3", ENCRYPTION_REASON)
