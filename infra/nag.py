"""cdk-nag acknowledgements: one finding id, one specific reason, on the narrowest construct."""

from __future__ import annotations

from aws_cdk import Acknowledgment, Validations

from constructs import IConstruct


def acknowledge(scope: IConstruct, finding: str, reason: str) -> None:
    """Accept one finding (e.g. `AwsSolutions-IAM5[Resource::*]`) on `scope` and its children."""
    Validations.of(scope).acknowledge(Acknowledgment(id=finding, reason=reason))
