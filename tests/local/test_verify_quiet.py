"""`entrix verify --mode quiet`, Prod's, against the whole local system in this process: it
passes without reading any secret (its clients refuse Secrets Manager), and changes nothing a
trader or the on-call engineer sees.

Watched before and after: the orders table, every fair-share counter (the verify subject's
too), the state machine's executions, every alarm's state but the probe's, and every
publish to the alert topic and the operations topic (an SQS queue subscribed to each with no
filter, so even what the Slack forwarder would drop counts). The same watch run around the
end-to-end checks (`full`, Dev's; before this change the only ones, run in Prod too) sees what
they change, so the quiet test can fail.
"""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from entrix import settings
from entrix.local import harness
from entrix.local.runtime import LocalSystem
from entrix.token_command import AUTHORIZER_HANDLER
from entrix.verify_command import QUIET_CHECKS, SUBJECT, Target, run_checks
from infra.constructs.verification_probe import PROBE_ALARM
from tests.support.alarm_actions import AlarmActions, deploy_alarms

pytestmark = pytest.mark.e2e

PROBE = f"{harness.STACK_NAME}-{PROBE_ALARM}"


def _name(topic_arn: str) -> str:
    return topic_arn.rsplit(":", 1)[-1]


def _scan(dynamodb: Any, table: str) -> list[dict[str, Any]]:
    pages = dynamodb.get_paginator("scan").paginate(TableName=table, ConsistentRead=True)
    return sorted((item for page in pages for item in page["Items"]), key=json.dumps)


@dataclass
class Watch:
    """What traders and the on-call engineer see of the system."""

    system: LocalSystem
    cloudwatch: Any
    queues: dict[str, str]  # topic name -> URL of the queue subscribed to it

    def client(self, service: str) -> Any:
        return self.cloudwatch if service == "cloudwatch" else self.system.endpoint.client(service)

    def client_without_secrets(self, service: str) -> Any:
        """Prod's quiet verification may read no secret: its role has no GetSecretValue."""
        assert service != "secretsmanager", "the quiet verification asked for Secrets Manager"
        return self.client(service)

    def topic(self, part: str) -> str:
        (arn,) = [a for a in harness.deployment_of(self.system).topics if part in a]
        return arn

    def seen(self) -> dict[str, Any]:
        deployment = harness.deployment_of(self.system)
        dynamodb = self.client("dynamodb")
        usage = deployment.table_named_by(settings.CLIENT_USAGE_TABLE_NAME.name)
        assert usage is not None
        sfn = self.client("stepfunctions")
        alarms = self.cloudwatch.describe_alarms()["MetricAlarms"]
        return {
            "orders": _scan(dynamodb, harness.orders_table(self.system)),
            # The verify subject's too: the quiet checks' requests never pass the authorizer.
            "clients' usage": _scan(dynamodb, usage),
            "executions": [
                execution["name"]
                for arn in deployment.state_machines.values()
                for execution in sfn.list_executions(stateMachineArn=arn)["executions"]
            ],
            "alarms": {
                alarm["AlarmName"]: (alarm["StateValue"], alarm["StateUpdatedTimestamp"])
                for alarm in alarms
                if alarm["AlarmName"] != PROBE
            },
        }

    def published(self) -> dict[str, int]:
        """How many messages reached each watched topic since the last call."""
        sqs = self.client("sqs")
        counts = {}
        for topic, url in self.queues.items():
            counts[topic] = 0
            while messages := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get(
                "Messages", []
            ):
                counts[topic] += len(messages)
                for message in messages:
                    sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
        return counts

    def target(self, probe_alarm: str, token: str | None) -> Target:
        """With a token (signed with the stack's key) for the full checks; without one, on
        clients that refuse Secrets Manager, for the quiet ones."""
        (machine,) = harness.deployment_of(self.system).state_machines.values()
        return Target(
            api_url=f"{self.system.api_url}/orders",
            token=token,
            state_machine_arn=machine,
            probe_alarm=probe_alarm,
            clients=self.client if token else self.client_without_secrets,
            stack_name=harness.STACK_NAME,
            alert_topic_arn=self.topic("AlertTopic"),
            ops_topic_arn=self.topic("OpsTopic"),
            authorizer_function=harness.function_with_handler(self.system, AUTHORIZER_HANDLER),
            patience=120,
            poll_seconds=0.5,
        )


@pytest.fixture(scope="module")
def watch() -> Iterator[Watch]:
    with harness.in_process() as system:
        deploy_alarms(system)
        sqs, sns = system.endpoint.client("sqs"), system.endpoint.client("sns")
        queues = {}
        for topic in harness.deployment_of(system).topics:
            name = _name(topic)
            url = sqs.create_queue(QueueName=f"watch-{name}")["QueueUrl"]
            queue = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])
            sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue["Attributes"]["QueueArn"])
            queues[name] = url
        seen = Watch(system, AlarmActions(system.endpoint.client("cloudwatch"), sns), queues)
        # A trader's order and counters: what the verification must leave as they are.
        desk = harness.sign_token(system, "desk-a")
        order = {"record_id": "desk-a-1", "parameter_1": "bid", "parameter_2": 7}
        request = urllib.request.Request(
            f"{system.api_url}/orders",
            data=json.dumps([order]).encode(),
            method="POST",
            headers={"Authorization": f"Bearer {desk}", "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=60) as reply:
            assert reply.status == 201
        seen.published()
        yield seen


def test_the_quiet_verification_passes_and_changes_nothing_a_trader_or_on_call_sees(
    watch: Watch,
) -> None:
    before = watch.seen()
    assert before["orders"] and before["clients' usage"] and before["alarms"]

    outcomes = dict(run_checks(watch.target(PROBE, None), "quiet"))

    # random-key-refused among them: the local authorizer read its key and refused the token.
    assert outcomes == dict.fromkeys(QUIET_CHECKS)
    assert watch.seen() == before
    published = watch.published()
    # The alarm path was driven for real (ALARM, then OK), on the probe topic alone; nothing
    # reached the trading team's alert topic or the on-call's operations topic.
    assert published == {
        _name(watch.topic("VerificationProbeTopic")): 2,
        _name(watch.topic("AlertTopic")): 0,
        _name(watch.topic("OpsTopic")): 0,
    }


def test_the_watch_sees_what_the_end_to_end_checks_change(watch: Watch) -> None:
    """Before this change Prod ran these, with the schedule's dead-letter alarm as the probe."""
    (dead_letters,) = [name for name in watch.seen()["alarms"] if "ScheduleDeadLetters" in name]
    before = watch.seen()

    outcomes = dict(
        run_checks(
            watch.target(dead_letters, harness.sign_token(watch.system, SUBJECT)),
            "full",
            ["order-stored", "alarm-notifies", "order-through-pipeline"],
        )
    )

    assert outcomes == dict.fromkeys(["alarm-notifies", "order-stored", "order-through-pipeline"])
    after = watch.seen()
    assert after["orders"] != before["orders"]
    assert after["executions"] != before["executions"]
    assert after["alarms"][dead_letters] != before["alarms"][dead_letters]
    assert watch.published()[_name(watch.topic("OpsTopic"))] == 2  # on-call paged, then "OK"
