"""The optional Slack forwarder: a subscriber of the alert topic posting to an incoming webhook.

Deployed only when `entrix:slack_webhook_secret_arn` names a secret; the webhook URL is a
credential, so it lives in Secrets Manager, created outside the stack.

The subscription's filter policy (entrix.aws.alerts.PEOPLE_FILTER_POLICY) keeps the per-order
rejections, for clients' own subscriptions, out of Slack: per run the channel gets at most one
rejection digest, plus a message per failed batch and per run whose results were never ready.

SNS invokes the function asynchronously. The handler waits out Slack's 429s while the invocation
has time (entrix.handlers.slack), and raises when it cannot deliver: Lambda then retries the event
twice, and an event that still fails (or outlives MAX_EVENT_AGE) goes to the on-failure
destination, an SQS queue (SSE-SQS, TLS-only, kept 14 days) holding the whole SNS event, so no
alert is dropped silently. The operations alarms watch that queue and the function's errors
(infra/constructs/observability.py).
"""

from __future__ import annotations

from typing import NamedTuple

from aws_cdk import Duration
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_destinations as destinations
from aws_cdk import aws_lambda_event_sources as event_sources
from aws_cdk import aws_secretsmanager as secretsmanager
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from entrix import settings
from entrix.aws.alerts import PEOPLE_FILTER_POLICY
from infra.config import ServiceConfig
from infra.constructs.dead_letters import dead_letter_queue
from infra.constructs.lambda_code import live_alias, python_function
from infra.nag import acknowledge

# Time for a message to wait out a few of Slack's Retry-After answers within one invocation.
TIMEOUT = Duration.seconds(60)
# Lambda's asynchronous retries of a failed event (its maximum), and how long it keeps trying.
RETRY_ATTEMPTS = 2
MAX_EVENT_AGE = Duration.hours(6)


class SlackForwarder(NamedTuple):
    function: lambda_.Function
    # Alerts the webhook never took, each as Lambda's on-failure record with the SNS event.
    dead_letter_queue: sqs.Queue


def slack_forwarder(
    scope: Construct, *, topic: sns.ITopic, secret_arn: str, config: ServiceConfig
) -> SlackForwarder:
    """The function ("SlackFunction" in `scope`) that forwards every alert of `topic`, and the
    queue ("SlackDeadLetters") of the alerts it could not deliver."""
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
            # Deployed, the webhook is https:// only.
            settings.SLACK_WEBHOOK_ALLOW_LOOPBACK_HTTP: False,
        },
        timeout=TIMEOUT,
    )
    secret.grant_read(function)
    dead_letters = dead_letter_queue(
        scope, "SlackDeadLetters", of="the on-failure destination of the Slack forwarder"
    )
    # SNS invokes the live alias, and Lambda reads the retries and the destination of the
    # qualifier invoked: so they are the alias's. The destination sends as the function's role:
    # SqsDestination grants it sqs:SendMessage (SSE-SQS needs no key grant).
    alias = live_alias(function)
    alias.configure_async_invoke(
        on_failure=destinations.SqsDestination(dead_letters),
        retry_attempts=RETRY_ATTEMPTS,
        max_event_age=MAX_EVENT_AGE,
    )
    alias.add_event_source(
        event_sources.SnsEventSource(
            topic,
            filter_policy=people_filter(),
        )
    )
    acknowledge(
        alias,
        "CloudFormation-Validate::W3694",
        "SNS delivers to a qualified function ARN (the alias), as Lambda documents for SNS "
        "triggers; the alias's own permission lets the topic invoke it.",
    )
    return SlackForwarder(function, dead_letters)


def people_filter() -> dict[str, sns.SubscriptionFilter]:
    """The filter policy of every subscription people read (Slack, e-mail): everything but the
    per-order rejections, which reach people as each run's one digest."""
    return {
        name: sns.SubscriptionFilter(conditions=conditions)
        for name, conditions in PEOPLE_FILTER_POLICY.items()
    }
