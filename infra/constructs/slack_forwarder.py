"""The optional Slack forwarder: a subscriber of the alert topic posting to an incoming webhook.

Deployed only when `entrix:slack_webhook_secret_arn` names a secret; the webhook URL is a
credential, so it lives in Secrets Manager, created outside the stack.
"""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_event_sources as event_sources
from aws_cdk import aws_secretsmanager as secretsmanager
from aws_cdk import aws_sns as sns
from constructs import Construct

from entrix import settings
from infra.config import ServiceConfig
from infra.constructs.lambda_code import python_function


def slack_forwarder(
    scope: Construct, *, topic: sns.ITopic, secret_arn: str, config: ServiceConfig
) -> lambda_.Function:
    """The function ("SlackFunction" in `scope`) that forwards every alert of `topic`."""
    secret = secretsmanager.Secret.from_secret_complete_arn(scope, "SlackWebhook", secret_arn)
    function = python_function(
        scope,
        "SlackFunction",
        handler="entrix.handlers.slack.handler",
        description="Posts auction alerts to the Slack webhook",
        log_retention=config.log_retention,
        settings={
            settings.SLACK_WEBHOOK_SECRET_ARN: secret_arn,
            settings.SECRET_CACHE_TTL_SECONDS: config.secret_cache_ttl_seconds,
        },
        timeout=Duration.seconds(15),
    )
    secret.grant_read(function)
    function.add_event_source(event_sources.SnsEventSource(topic))
    return function
