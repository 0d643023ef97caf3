"""AWS WAF in front of the API stage: a per-client rate limit and AWS managed rule groups.

Switched on per deployment (`waf_enabled`, on for Prod): a web ACL costs a monthly fee plus a
fee per million requests, which a throwaway Dev stack does not need.
"""

from __future__ import annotations

from typing import Any

from aws_cdk import ArnFormat, RemovalPolicy, Stack
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_logs as logs
from aws_cdk import aws_wafv2 as wafv2
from constructs import Construct

from infra.constructs.log_groups import acknowledge_log_controls

# WAF only delivers logs to log groups whose name starts with this.
LOG_GROUP_PREFIX = "aws-waf-logs-"
RATE_WINDOW_SECONDS = 300

# (rule group, rules only counted instead of blocked). SizeRestrictions_BODY blocks bodies over
# 8 KB, and a legitimate POST /orders of a thousand orders is larger; the API's own 10 MB limit
# and the order validation bound the body instead.
MANAGED_RULE_GROUPS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("AWSManagedRulesCommonRuleSet", ("SizeRestrictions_BODY",)),
    ("AWSManagedRulesKnownBadInputsRuleSet", ()),
    ("AWSManagedRulesAmazonIpReputationList", ()),
)


def _visibility(metric: str) -> dict[str, Any]:
    return {"cloudWatchMetricsEnabled": True, "metricName": metric, "sampledRequestsEnabled": True}


class ApiWebAcl(Construct):
    """A regional web ACL associated with one API Gateway stage, logging to CloudWatch.

    The rate rule runs first, so a flood is dropped before the managed rules are evaluated (and
    billed); the Authorization header is redacted from the logs, as it carries the client's JWT.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        stage: apigw.Stage,
        rate_limit: int,
        log_retention: logs.RetentionDays,
    ) -> None:
        super().__init__(scope, construct_id)
        stack = Stack.of(self)
        rules: list[dict[str, Any]] = [
            {
                "name": "RateLimitPerClientIp",
                "priority": 0,
                "action": {"block": {}},
                "statement": {
                    "rateBasedStatement": {
                        "limit": rate_limit,
                        "aggregateKeyType": "IP",
                        "evaluationWindowSec": RATE_WINDOW_SECONDS,
                    }
                },
                "visibilityConfig": _visibility("RateLimitPerClientIp"),
            }
        ]
        for priority, (group, counted) in enumerate(MANAGED_RULE_GROUPS, start=1):
            statement: dict[str, Any] = {"vendorName": "AWS", "name": group}
            if counted:
                statement["ruleActionOverrides"] = [
                    {"name": rule, "actionToUse": {"count": {}}} for rule in counted
                ]
            rules.append(
                {
                    "name": group,
                    "priority": priority,
                    "overrideAction": {"none": {}},
                    "statement": {"managedRuleGroupStatement": statement},
                    "visibilityConfig": _visibility(group),
                }
            )
        self.web_acl = wafv2.CfnWebACL(
            self,
            "WebAcl",
            scope="REGIONAL",
            default_action={"allow": {}},
            rules=rules,
            visibility_config=_visibility(f"{stack.stack_name}-api"),
        )
        wafv2.CfnWebACLAssociation(
            self,
            "Association",
            resource_arn=stage.stage_arn,
            web_acl_arn=self.web_acl.attr_arn,
        )

        log_group_name = f"{LOG_GROUP_PREFIX}{stack.stack_name}"
        self.log_group = logs.LogGroup(
            self,
            "Logs",
            log_group_name=log_group_name,
            retention=log_retention,
            removal_policy=RemovalPolicy.DESTROY,  # request logs expire anyway
        )
        acknowledge_log_controls(self.log_group)
        # WAF wants the log group's ARN without the ":*" that its GetAtt Arn carries.
        log_group_arn = stack.format_arn(
            service="logs",
            resource="log-group",
            resource_name=log_group_name,
            arn_format=ArnFormat.COLON_RESOURCE_NAME,
        )
        logging = wafv2.CfnLoggingConfiguration(
            self,
            "Logging",
            resource_arn=self.web_acl.attr_arn,
            log_destination_configs=[log_group_arn],
            redacted_fields=[
                wafv2.CfnLoggingConfiguration.FieldToMatchProperty(
                    single_header={"Name": "authorization"}
                )
            ],
        )
        logging.node.add_dependency(self.log_group)
