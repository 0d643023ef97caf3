"""Every function's environment names exactly the settings its handler reads, defaults included.

A variable a handler reads but the template leaves out would run on the handler's default, which
nobody sees in the template; a variable no handler reads is noise. So the template states each
function's whole configuration, and this test keeps it that way.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from entrix import settings
from entrix.settings import Setting
from tests.infra.test_intake_template import EXTENSION_VARIABLE_PREFIXES

# Every API function charges its caller's share (entrix.handlers.fair_share).
FAIR_SHARE = (
    settings.CLIENT_USAGE_TABLE_NAME,
    settings.CLIENT_RATE_LIMIT,
    settings.CLIENT_RATE_WINDOW_SECONDS,
    settings.CLIENT_DAILY_ORDER_QUOTA,
    settings.CLIENT_LIMITS,
)
# What each handler reads from its environment.
READS: dict[str, tuple[Setting[Any], ...]] = {
    "entrix.handlers.ingest.handler": (settings.ORDERS_TABLE_NAME, *FAIR_SHARE),
    "entrix.handlers.order_status.handler": (settings.ORDERS_TABLE_NAME, *FAIR_SHARE),
    "entrix.handlers.order_list.handler": (
        settings.ORDERS_TABLE_NAME,
        settings.ORDERS_OWNER_INDEX_NAME,
        *FAIR_SHARE,
    ),
    "entrix.handlers.cancel.handler": (settings.ORDERS_TABLE_NAME,),
    "entrix.handlers.authorizer.handler": (
        settings.JWT_KEY_SOURCE,
        settings.JWT_SECRET_ARN,
        settings.JWT_ISSUER,
        settings.JWT_AUDIENCE,
        settings.MAX_TOKEN_LIFETIME_SECONDS,
        settings.SECRET_CACHE_TTL_SECONDS,
        settings.JWT_REVOCATIONS_SECRET_ARN,
        settings.REVOCATIONS_CACHE_TTL_SECONDS,
    ),
    "entrix.handlers.results.handler": (
        settings.ORDERS_TABLE_NAME,
        settings.ORDERS_PENDING_INDEX_NAME,
        settings.RESULTS_BUCKET_NAME,
        settings.RESULTS_READY_PROBABILITY,
        settings.AUCTION_MODE,
        settings.RANDOM_ORDER_COUNT,
        settings.MAX_ORDERS_PER_RUN,
        settings.BATCH_MAX_ORDERS,
        settings.ALERT_TOPIC_ARN,
        settings.EXPIRY_WARNING_SECONDS,
    ),
    "entrix.handlers.archive.handler": (settings.RESULTS_BUCKET_NAME,),
    # The secret arrives in each event: nothing to configure.
    "entrix.handlers.rotate_key.handler": (),
    "entrix.handlers.process.handler": (
        settings.ORDERS_TABLE_NAME,
        settings.RESULTS_BUCKET_NAME,
        settings.ALERT_TOPIC_ARN,
        settings.RESULT_LEASE_SECONDS,
    ),
    "entrix.handlers.run_summary.handler": (settings.RESULTS_BUCKET_NAME,),
    "entrix.handlers.slack.handler": (
        settings.SLACK_WEBHOOK_SECRET_ARN,
        settings.SECRET_CACHE_TTL_SECONDS,
        settings.SLACK_WEBHOOK_ALLOW_LOOPBACK_HTTP,
    ),
}


@pytest.fixture(scope="module")
def with_slack(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The service stack with the optional Slack forwarder, which cdk.json leaves out."""
    from aws_cdk import App

    from infra.config import ServiceConfig
    from infra.stacks.service import ServiceStack

    app = App(
        context={
            "aws:cdk:bundling-stacks": [],
            "entrix:slack_webhook_secret_arn": (
                "arn:aws:secretsmanager:eu-west-1:123456789012:secret:slack-webhook-AbCdEf"
            ),
        },
        outdir=str(tmp_path_factory.mktemp("cdk.out")),
    )
    ServiceStack(app, "WithSlack", config=ServiceConfig.from_context(app.node))
    template: dict[str, Any] = app.synth().get_stack_by_name("WithSlack").template
    return template


def _functions(templates: dict[str, dict[str, Any]]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for stack, template in templates.items():
        for logical_id, resource in template["Resources"].items():
            if resource["Type"] == "AWS::Lambda::Function":
                yield f"{stack}/{logical_id}", resource["Properties"]["Handler"], resource


def test_each_function_sets_exactly_the_settings_its_handler_reads(
    nag_templates: dict[str, dict[str, Any]], with_slack: dict[str, Any]
) -> None:
    functions = list(_functions({**nag_templates, "WithSlack": with_slack}))
    for where, handler, resource in functions:
        assert handler in READS, f"{where}: say which settings {handler} reads"
        variables = resource["Properties"].get("Environment", {}).get("Variables", {})
        # The Parameters and Secrets Extension's own variables come with its layer.
        names = {name for name in variables if not name.startswith(EXTENSION_VARIABLE_PREFIXES)}
        assert names == {setting.name for setting in READS[handler]}, where
    assert set(READS) == {handler for _, handler, _ in functions}, (
        "READS names an undeployed handler"
    )
