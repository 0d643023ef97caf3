"""Synth-time guardrails, and acknowledgements one finding at a time: cdk-nag's AwsSolutions
checks, and the AWS Control Tower proactive controls (CloudFormation Guard rules)."""

from __future__ import annotations

from typing import cast

from aws_cdk import (
    Acknowledgment,
    App,
    CfnElement,
    IPolicyValidationPlugin,
    Stack,
    Token,
    Validations,
)
from cdk_nag import AwsSolutionsChecks
from constructs import IConstruct

# The validator's name in the validation report, which namespaces its acknowledgements.
CONTROL_TOWER_PLUGIN = "cdk-validator-cfnguard"

# The Guard rule that implements each control this app acknowledges somewhere, as the validator
# names it in a finding (the rule files of cdklabs-cdk-validator-cfnguard).
CONTROL_RULES = {
    "CT.CLOUDWATCH.PR.1": "cloudwatch_alarm_action_check",
    "CT.CLOUDWATCH.PR.2": "cloudwatch_log_group_retention_period_check",
    "CT.CLOUDWATCH.PR.3": "cloudwatch_log_group_encrypted_check",
    "CT.DYNAMODB.PR.1": "dynamodb_table_pitr_enabled_check",
    "CT.LAMBDA.PR.2": "lambda_function_public_access_prohibited_check",
    "CT.LAMBDA.PR.3": "lambda_inside_vpc_check",
    "CT.S3.PR.2": "s3_bucket_logging_enabled_check",
    "CT.S3.PR.4": "s3_event_notifications_enabled_check",
    "CT.S3.PR.9": "s3_bucket_object_lock_enabled_check",
    "CT.S3.PR.10": "s3_bucket_default_encryption_kms_check",
    "CT.S3.PR.11": "s3_bucket_versioning_enabled_check",
}


def add_checks(app: App) -> None:
    """Run AwsSolutions on every stack at synth; an open finding makes synth fail.

    Acknowledgements are also written into each resource's template Metadata (`cdk_nag`), so the
    template itself records which finding was accepted and why.
    """
    Validations.of(app).add_plugins(
        AwsSolutionsChecks(app, write_suppressions_to_cloud_formation=True)
    )


def add_control_tower_checks(app: App) -> None:
    """Run the Control Tower proactive controls (Guard rules) on every stack at synth, into
    validation-report.json, which the guardrail tests read: once anything is acknowledged, an
    open finding no longer fails synth (the plugin sets no severity, which aws-cdk-lib then
    counts as no error). Tests add it (about 18 CPU-seconds on this app), not every synth."""
    # Imported here, so a synth without the checks never loads its jsii assembly (12 MB, the
    # Guard binaries of four platforms).
    from cdklabs.cdk_validator_cfnguard import CfnGuardValidator

    # It implements the interface's Beta1 spelling, which the jsii runtime accepts as the same.
    Validations.of(app).add_plugins(cast(IPolicyValidationPlugin, CfnGuardValidator()))


def acknowledge(scope: IConstruct, finding: str, reason: str) -> None:
    """Accept one finding (e.g. `AwsSolutions-IAM5[Resource::*]`) on `scope` and its children."""
    Validations.of(scope).acknowledge(Acknowledgment(id=finding, reason=reason))


def acknowledge_control(scope: IConstruct, control: str, reason: str) -> None:
    """Accept one Control Tower control's finding (e.g. `CT.LAMBDA.PR.3`) on `scope` and its
    children. The controls' Guard rules read no suppression from the template, so the
    acknowledgement lives in the construct tree; validation-report.json lists it with its
    reason, and cdk-nag copies it into the resource's `cdk_nag` template metadata."""
    finding = f"{CONTROL_TOWER_PLUGIN}::{CONTROL_RULES[control]}"
    Validations.of(scope).acknowledge(Acknowledgment(id=finding, reason=f"{control}: {reason}"))


# CT.LAMBDA.PR.2 accepts a service principal's SourceArn or SourceAccount only as a literal
# string or a Ref/GetAtt of a resource in the template; CDK builds them with Fn::Join and
# Ref AWS::AccountId, which the Guard rule cannot read at synth.
SCOPED_PERMISSION_REASON = (
    "The permission is scoped to this account's resource by {scope}, which CDK writes with "
    "Fn::Join or Ref AWS::AccountId; the Guard rule reads only a literal or a local Ref/GetAtt "
    "at synth. A Control Tower hook checks the resource just before CloudFormation creates it, "
    "with its properties resolved (not proven here without an account)."
)


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
