"""cdk-nag guardrails: the AwsSolutions checks, and acknowledgements one finding at a time."""

from __future__ import annotations

from aws_cdk import Acknowledgment, App, CfnElement, Stack, Token, Validations
from cdk_nag import AwsSolutionsChecks
from constructs import IConstruct


def add_checks(app: App) -> None:
    """Run AwsSolutions on every stack at synth; an open finding makes synth fail.

    Acknowledgements are also written into each resource's template Metadata (`cdk_nag`), so the
    template itself records which finding was accepted and why.
    """
    Validations.of(app).add_plugins(
        AwsSolutionsChecks(app, write_suppressions_to_cloud_formation=True)
    )


def acknowledge(scope: IConstruct, finding: str, reason: str) -> None:
    """Accept one finding (e.g. `AwsSolutions-IAM5[Resource::*]`) on `scope` and its children."""
    Validations.of(scope).acknowledge(Acknowledgment(id=finding, reason=reason))


def logical_id(construct: IConstruct) -> str:
    """The CloudFormation logical id of a construct's main resource, as a finding names it."""
    resource = construct.node.default_child
    if not isinstance(resource, CfnElement):
        raise TypeError(f"{construct.node.path} has no CloudFormation resource of its own")
    return Stack.of(construct).get_logical_id(resource)


def partition(scope: IConstruct) -> str:
    """The partition of an ARN CDK builds from the stack's, as a finding names it: `aws` when
    CDK writes it literally (@aws-cdk/core:enablePartitionLiterals, stack in a known region),
    else the placeholder."""
    value = Stack.of(scope).partition
    return "<AWS::Partition>" if Token.is_unresolved(value) else value
