"""What a 100,000-order run sends: SNS messages, Slack posts, S3 objects and DynamoDB requests.

Measured on `entrix local` in this process (`bench.observed_system`: every request the run causes
is counted at the embedded endpoint, whoever sends it: Lambda A and B, the run summary, the
state machine's own tasks), with the real handlers, at two sizes, every other order rejected
(Lambda A's random source, which the module offers for injection, alternates accept and
reject). A run of 100,000 orders takes about 45 minutes locally, so the counts are measured at
`SIZES` and projected: each is `fixed + per_order * orders` (batches of 1,000 orders, so the
sizes are whole batches), the line through the two sizes, shown with both measurements so that
its linearity can be read.

Slack posts are the messages a subscription with the Slack forwarder's filter policy receives:
the policy (and its scope) is read from the service stack synthesized with a Slack webhook
secret (the forwarder exists only then), and an SQS queue subscribed to the alert topic with
that policy counts what passes. With no policy, every message of the topic would be posted.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import tempfile
import uuid
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.aws_requests import SNS_PUBLISHES, not_observer, tally
from bench.observed_system import PROCESS_HANDLER, BenchSystem, Run, bench_system, unique_prefix
from bench.report import Row
from entrix import settings
from entrix.local.node import jsii_environment
from entrix.local.synth import cdk_context

ROOT = Path(__file__).resolve().parent.parent
SIZES = (2_000, 4_000)
TARGET = 100_000
SLACK_HANDLER = "entrix.handlers.slack.handler"
SLACK_SECRET_ARN = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:entrix/slack-AbCdEf"
SERVICE_TEMPLATE = "Entrix.template.json"
# Local only: the console's alert tap (SQS) and the Lambda invokes of the run's own tasks.
COUNTED_SERVICES = ("dynamodb", "s3", "sns")


class Alternating(random.Random):
    """Lambda A's random source: results always ready, orders rejected and accepted in turn
    (`AuctionPlatform` draws one `random()` for readiness, then one per order)."""

    def __init__(self) -> None:
        super().__init__(0)
        self._draws = 0

    def random(self) -> float:
        self._draws += 1
        return 0.25 if self._draws % 2 else 0.75

    def getrandbits(self, k: int) -> int:
        """Defined here so that `randint` (the power) draws bits, not `random()` (a subclass
        overriding `random` alone has `randint` call it)."""
        return super().getrandbits(k)


@dataclass(frozen=True)
class SlackFilter:
    """The Slack forwarder's subscription filter policy (None: every message) and its scope."""

    policy: dict[str, Any] | None
    scope: str | None

    def attributes(self) -> dict[str, str]:
        """As Subscribe attributes (the scope first: it decides how the policy is read)."""
        if self.policy is None:
            return {}
        scope = {"FilterPolicyScope": self.scope} if self.scope else {}
        return {**scope, "FilterPolicy": json.dumps(self.policy)}

    def describe(self) -> str:
        if self.policy is None:
            return "no filter policy: every message"
        return f"filter {json.dumps(self.policy)} on {self.scope or 'MessageAttributes'}"


def slack_filter_of(template: dict[str, Any]) -> SlackFilter:
    """The filter of the subscription that delivers the alert topic to the Slack forwarder."""
    resources = template["Resources"]
    (function_id,) = [
        logical_id
        for logical_id, resource in resources.items()
        if resource.get("Type") == "AWS::Lambda::Function"
        and resource["Properties"].get("Handler") == SLACK_HANDLER
    ]
    # SNS delivers to the function's `live` alias (whose Ref is its ARN).
    aliases = [
        {"Ref": logical_id}
        for logical_id, resource in resources.items()
        if resource.get("Type") == "AWS::Lambda::Alias"
        and resource["Properties"].get("FunctionName") == {"Ref": function_id}
    ]
    (subscription,) = [
        resource["Properties"]
        for resource in resources.values()
        if resource.get("Type") == "AWS::SNS::Subscription"
        and resource["Properties"].get("Endpoint") in aliases
    ]
    return SlackFilter(subscription.get("FilterPolicy"), subscription.get("FilterPolicyScope"))


def slack_template(root: Path = ROOT) -> dict[str, Any]:
    """The service stack as `cdk synth` makes it with a Slack webhook secret set (no bundling:
    only the template is read)."""
    context = {
        **cdk_context(root),
        "aws:cdk:bundling-stacks": [],
        "entrix:slack_webhook_secret_arn": SLACK_SECRET_ARN,
    }
    with tempfile.TemporaryDirectory(prefix="slack-synth-") as outdir:
        completed = subprocess.run(
            [sys.executable, "app.py"],
            cwd=root,
            env={
                **os.environ,
                "CDK_OUTDIR": outdir,
                "CDK_CONTEXT_JSON": json.dumps(context),
                **jsii_environment(),
            },
            capture_output=True,
            text=True,
            check=False,
        )
        template = Path(outdir) / SERVICE_TEMPLATE
        if completed.returncode != 0 or not template.is_file():
            raise RuntimeError(
                f"`python app.py` with a Slack secret failed (exit {completed.returncode}):\n"
                f"{completed.stdout[-4000:]}{completed.stderr[-4000:]}"
            )
        return dict(json.loads(template.read_text(encoding="utf-8")))


@dataclass(frozen=True)
class Sent:
    """What one run of `orders` orders sent, by what the row reports."""

    orders: int
    run: Run
    counts: dict[str, int]


def _bucket_keys(bench: BenchSystem) -> set[str]:
    s3 = bench.client("s3")
    return {
        item["Key"]
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bench.bucket)
        for item in page.get("Contents", [])
    }


def _counts(run: Run, slack_posts: int, new_keys: set[str]) -> dict[str, int]:
    """The row's figures from the run's requests, the Slack queue and the objects it left."""
    counts: dict[str, int] = {}
    messages = Counter[str]()
    for call, times in run.calls.items():
        if not_observer(call) and call.service == "sns" and call.operation in SNS_PUBLISHES:
            messages[call.operation] += times * call.items
    for (service, operation), times in sorted(tally(run.calls, not_observer).items()):
        if service in COUNTED_SERVICES:
            counts[f"{service} {operation} requests"] = times
    for operation, count in sorted(messages.items()):
        counts[f"sns messages in {operation}"] = count
    counts["Slack posts (messages passing the forwarder's filter)"] = slack_posts
    prefixes = Counter(key.split("/", 1)[0] + "/" for key in new_keys)
    for prefix, count in sorted(prefixes.items()):
        counts[f"s3 objects written under {prefix}"] = count
    return counts


def measure_run(bench: BenchSystem, orders: int, slack: SlackFilter, topic_arn: str) -> Sent:
    """POST `orders` orders, subscribe a queue with the Slack filter, run once; what it sent."""
    sqs, sns = bench.client("sqs"), bench.client("sns")
    queue_url = sqs.create_queue(QueueName=f"slack-filter-{uuid.uuid4().hex[:8]}")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])[
        "Attributes"
    ]["QueueArn"]
    subscription = sns.subscribe(
        TopicArn=topic_arn,
        Protocol="sqs",
        Endpoint=queue_arn,
        Attributes=slack.attributes(),
        ReturnSubscriptionArn=True,
    )["SubscriptionArn"]
    before = _bucket_keys(bench)
    bench.ingest(orders, unique_prefix(f"sends{orders}"))
    run = bench.run()
    summary = run.summary
    if summary.get("status") != "SUCCEEDED" or run.processed != orders:
        raise RuntimeError(f"a run of {orders} orders ended {summary}")
    if int(summary["rejected"]) != orders // 2:
        raise RuntimeError(f"{summary['rejected']} of {orders} rejected, not half: {summary}")
    posts = int(
        sqs.get_queue_attributes(
            QueueUrl=queue_url, AttributeNames=["ApproximateNumberOfMessages"]
        )["Attributes"]["ApproximateNumberOfMessages"]
    )
    sns.unsubscribe(SubscriptionArn=subscription)
    sqs.delete_queue(QueueUrl=queue_url)
    return Sent(orders, run, _counts(run, posts, _bucket_keys(bench) - before))


def measure(template_path: Path, sizes: tuple[int, int] = SIZES) -> tuple[list[Sent], SlackFilter]:
    """One run at each size, in a fresh local system, every other order rejected."""
    slack = slack_filter_of(slack_template())
    with bench_system(template_path) as bench:
        from entrix.handlers import results

        results.random_source = Alternating()
        process = bench.deployment.functions[bench.functions[PROCESS_HANDLER]]
        topic_arn = process.environment[settings.ALERT_TOPIC_ARN.name]
        sent = []
        for orders in sizes:
            sent.append(measure_run(bench, orders, slack, topic_arn))
            print(
                f"run sends: {orders:,} orders in {sent[-1].run.seconds:.1f} s",
                file=sys.stderr,
                flush=True,
            )
    return sent, slack


def projected(small: Sent, large: Sent, name: str, target: int) -> float:
    """The count at `target` orders on the line through the two measurements."""
    low, high = small.counts.get(name, 0), large.counts.get(name, 0)
    per_order = (high - low) / (large.orders - small.orders)
    return high + per_order * (target - large.orders)


def rows(sent: list[Sent], slack: SlackFilter, target: int = TARGET) -> list[Row]:
    """Each count at both sizes, per order, and projected to `target` orders half rejected."""
    small, large = sent
    names = sorted(set(small.counts) | set(large.counts), key=_order)
    table = []
    for name in names:
        low, high = small.counts.get(name, 0), large.counts.get(name, 0)
        per_order = (high - low) / (large.orders - small.orders)
        fixed = high - per_order * large.orders
        detail = f" ({slack.describe()})" if name.startswith("Slack") else ""
        table.append(
            Row(
                "run sends",
                f"{name}{detail}: {low:,} at {small.orders:,} orders, {high:,} at "
                f"{large.orders:,} ({per_order:.4f} an order + {fixed:,.0f} a run)",
                f"{projected(small, large, name, target):,.0f}",
                f"projected to {target:,} orders, half rejected",
                "",
                "reported",
            )
        )
    return table


def _order(name: str) -> tuple[int, str]:
    kinds = ("sns", "Slack", "s3", "dynamodb")
    return next((i for i, kind in enumerate(kinds) if name.startswith(kind)), len(kinds)), name
