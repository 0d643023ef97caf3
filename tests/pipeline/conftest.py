"""The results pipeline as synthesized by CDK, deployed into moto and run with the real handlers.

The ResultsPipeline construct is synthesized once per session in a small stack of its own (the
intake's orders table, plus the pipeline) with short waits, so the tests exercise
the exact state machine definition CDK writes, not a hand-written copy. Each test gets a fresh
moto backend: the template is deployed by the local runtime's deployer, moto executes the state
machine, and every Lambda task runs the project's handler in this process, each AWS call it makes
authorized against the template as AWS would (entrix.local.iam.enforcement).
"""

from __future__ import annotations

import importlib
import json
import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from entrix.auction.digest import DIGEST_STATUS
from entrix.local.deploy import Deployer, Deployment
from entrix.local.iam.enforcement import Enforcer
from entrix.local.iam.model import StackModel
from entrix.local.lambda_runner import (
    applied_environment,
    moto_lambdas_in_process,
    runtime_environment,
)
from entrix.local.pipeline import wait_for_execution
from entrix.local.template import PseudoParameters, Template
from tests.support.moto_orders import OWNER, table_items
from tests.support.stored_orders import pending_index, post_orders, stored_items

REGION = "eu-west-1"
STACK = "PipelineTest"
MAX_POLLS = 3
# Small batches, so that a handful of orders already spreads over several child executions.
BATCH_MAX_ORDERS = 2


@pytest.fixture(scope="session")
def pipeline_template(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return synthesize_pipeline(tmp_path_factory.mktemp("cdk.out"))


def synthesize_pipeline(outdir: Path, **config: Any) -> dict[str, Any]:
    """The pipeline's stack; `config`: ServiceConfig settings over the tests' own."""
    from aws_cdk import App, Environment, Stack

    from infra.app import cdk_json_context
    from infra.config import ServiceConfig
    from infra.constructs.lambda_code import python_layer
    from infra.constructs.orders_table import orders_table
    from infra.constructs.results_pipeline import ResultsPipeline

    app = App(
        context={**cdk_json_context(), "aws:cdk:bundling-stacks": []},
        outdir=str(outdir),
    )
    stack = Stack(app, STACK, env=Environment(region=REGION))
    config = ServiceConfig(
        region=REGION,
        log_retention_days=1,
        retain_data=False,
        results_poll_seconds=1,
        results_max_polls=MAX_POLLS,
        results_batch_max_orders=BATCH_MAX_ORDERS,
        results_retry_interval_seconds=1,
        results_retry_attempts=2,
        **config,
    )
    ResultsPipeline(
        stack,
        "ResultsPipeline",
        config=config,
        table=orders_table(stack, "Orders", config=config),
        deps_layer=python_layer(stack, "Deps", requirements=["pydantic"], description="test layer"),
    )
    template: dict[str, Any] = app.synth().get_stack_by_name(STACK).template
    return template


class ScriptedRandom(random.Random):
    """A random source whose `random()` draws are given in advance (power draws stay seeded).

    The platform draws once for "ready?" (below 0.5: ready) and once per order for "accepted?"
    (below 0.5: accepted); when the script runs out every draw is 0.0 (ready, accepted).
    """

    def __init__(self, draws: list[float]) -> None:
        super().__init__(7)
        self.draws = list(draws)

    def random(self) -> float:
        return self.draws.pop(0) if self.draws else 0.0

    def getrandbits(self, k: int) -> int:
        # Defined so that randint() keeps using getrandbits, not the scripted random().
        return super().getrandbits(k)


NOT_READY = 0.9
READY = 0.1
ACCEPT = 0.1
REJECT = 0.9


# A message published to a topic, parsed, and its message attributes ({name: value}).
Published = tuple[dict[str, Any], dict[str, str]]


@dataclass
class Pipeline:
    """The deployed pipeline and helpers to feed it orders and read what it produced."""

    deployment: Deployment
    table: str
    bucket: str
    topic_arn: str
    state_machine_arn: str
    alerts_queue_url: str
    monkeypatch: pytest.MonkeyPatch
    # Messages received from the alert topic that no call has taken yet.
    unread: list[Published] = field(default_factory=list)

    def client(self, service: str) -> Any:
        return boto3.client(service, region_name=REGION)

    def script(self, *draws: float) -> None:
        """Fix the auction platform's next draws (see ScriptedRandom)."""
        results = self.handler_module("entrix.handlers.results.handler")
        self.monkeypatch.setattr(results, "random_source", ScriptedRandom(list(draws)))

    def handler_module(self, handler: str) -> Any:
        """The module of a deployed function's handler, imported as Lambda would (its env set)."""
        (spec,) = [f for f in self.deployment.functions.values() if f.handler == handler]
        with applied_environment(runtime_environment(spec)):
            return importlib.import_module(handler.rpartition(".")[0])

    def reload_handlers(self) -> None:
        """Import each handler afresh, as a new container would: the stores a handler made on first
        use belong to an earlier test's deployment."""
        for spec in self.deployment.functions.values():
            with applied_environment(runtime_environment(spec)):
                importlib.reload(importlib.import_module(spec.handler.rpartition(".")[0]))

    def add_orders(self, *record_ids: str, owner: str = OWNER, parameter_1: str = "p") -> None:
        """POST `owner`'s orders through the ingest handler (one request, received now) and
        check that every one was created or amended; parameter_1 is `<parameter_1>-<position>`,
        parameter_2 is 2.1."""
        orders = [
            {"record_id": record_id, "parameter_1": f"{parameter_1}-{index}", "parameter_2": 2.1}
            for index, record_id in enumerate(record_ids)
        ]
        status, reply = post_orders(self.client("dynamodb"), self.table, orders, owner, time.time())
        assert status == 201, reply
        assert sorted([*reply["created"], *reply["amended"]]) == sorted(record_ids), reply

    def run(self, name: str) -> dict[str, Any]:
        """Start one execution as the schedule would, wait for it, return its description."""
        return self.run_together(name)[0]

    def run_together(self, *names: str) -> list[dict[str, Any]]:
        """Start executions one right after the other, wait for all, return their descriptions."""
        sfn = self.client("stepfunctions")
        event = {"detail-type": "Scheduled Event", "source": "aws.events", "detail": {}}
        execution_arns = [
            sfn.start_execution(
                stateMachineArn=self.state_machine_arn, name=name, input=json.dumps(event)
            )["executionArn"]
            for name in names
        ]
        described = []
        # A guard against a hung execution, not a speed check: the run of 100,000 orders takes
        # about 30 s alone and over a minute on a loaded machine.
        deadline = time.monotonic() + 600
        for execution_arn in execution_arns:
            remaining = max(0.0, deadline - time.monotonic())
            described.append(
                wait_for_execution(sfn, execution_arn, timeout_seconds=remaining, poll_seconds=0.05)
            )
        return described

    def summary(self, name: str) -> dict[str, int]:
        described = self.run(name)
        assert described["status"] == "SUCCEEDED", described
        summary: dict[str, int] = json.loads(described["output"])
        return summary

    def items(self) -> dict[str, dict[str, Any]]:
        """Every item by record_id (one owner's orders)."""
        return table_items(self.client("dynamodb"), self.table)

    def items_by_key(self) -> dict[str, dict[str, Any]]:
        """Every item by its key, `<owner>#<record_id>` (orders of several owners)."""
        return stored_items(self.client("dynamodb"), self.table)

    def pending_index(self) -> dict[str, str]:
        """The pending-results index: the version of each order key it holds."""
        return pending_index(self.client("dynamodb"), self.table)

    def result_objects(self) -> dict[str, list[dict[str, Any]]]:
        """Every results object (JSON Lines) by key, as its list of documents."""
        s3 = self.client("s3")
        objects = {}
        versions = s3.list_object_versions(Bucket=self.bucket, Prefix="results/")
        for version in versions.get("Versions", []):
            if version["IsLatest"]:
                body = s3.get_object(Bucket=self.bucket, Key=version["Key"])["Body"].read()
                objects[version["Key"]] = [json.loads(line) for line in body.splitlines()]
        return objects

    def stored_results(self) -> dict[str, dict[str, Any]]:
        """Every stored result line by record_id; fails if an order was stored twice."""
        stored: dict[str, dict[str, Any]] = {}
        for key, documents in self.result_objects().items():
            for document in documents:
                assert document["record_id"] not in stored, f"{document} stored twice"
                stored[document["record_id"]] = {**document, "key": key}
        return stored

    def result_versions(self) -> list[str]:
        """The key of every version ever written under results/."""
        versions = self.client("s3").list_object_versions(Bucket=self.bucket, Prefix="results/")
        return sorted(version["Key"] for version in versions.get("Versions", []))

    def alerts(self) -> list[dict[str, Any]]:
        """Every message published to the alert topic since the last call, but the runs'
        rejection digests (`digests()`)."""
        return [body for body, _ in self._take(lambda body: body.get("status") != DIGEST_STATUS)]

    def digests(self) -> list[Published]:
        """Every rejection digest published since the last call, with its message attributes."""
        return self._take(lambda body: body.get("status") == DIGEST_STATUS)

    def _take(self, wanted: Callable[[dict[str, Any]], bool]) -> list[Published]:
        """The `wanted` messages of the alert topic (consumed from its SQS subscriber), in the
        order received; the others wait for the next call."""
        self.unread.extend(received_messages(self.client("sqs"), self.alerts_queue_url))
        taken = [message for message in self.unread if wanted(message[0])]
        self.unread = [message for message in self.unread if not wanted(message[0])]
        return taken


def received_messages(sqs: Any, queue_url: str) -> list[Published]:
    """Every SNS message delivered to `queue_url` (not raw: in its SNS envelope), consumed."""
    messages = []
    while True:
        received = sqs.receive_message(
            QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0
        ).get("Messages", [])
        if not received:
            return messages
        for message in received:
            envelope = json.loads(message["Body"])
            attributes = envelope.get("MessageAttributes") or {}
            messages.append(
                (
                    json.loads(envelope["Message"]),
                    {name: value["Value"] for name, value in attributes.items()},
                )
            )
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])


def _logical_id(template: Template, resource_type: str, contains: str) -> str:
    (found,) = [r.logical_id for r in template.of_type(resource_type) if contains in r.logical_id]
    return found


@pytest.fixture
def pipeline(
    pipeline_template: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> Iterator[Pipeline]:
    template = Template.from_dict(pipeline_template)
    with (
        mock_aws(config={"stepfunctions": {"execute_state_machine": True}}),
        moto_lambdas_in_process(),
    ):
        deployer = Deployer(
            template,
            lambda service: boto3.client(service, region_name=REGION),
            pseudo=PseudoParameters(region=REGION, stack_name=STACK),
        )
        enforcer = Enforcer(StackModel(STACK, pipeline_template, REGION), deployer.deployment)
        enforcer.start()
        try:
            yield _deployed(template, deployer.deploy(), monkeypatch)
        finally:
            enforcer.stop()


def _deployed(
    template: Template, deployment: Deployment, monkeypatch: pytest.MonkeyPatch
) -> Pipeline:
    """The deployed pipeline, with a queue subscribed to its alert topic."""
    names = deployment.names
    (topic_arn,) = deployment.topics
    sqs = boto3.client("sqs", region_name=REGION)
    queue_url = sqs.create_queue(QueueName="alerts")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])[
        "Attributes"
    ]["QueueArn"]
    boto3.client("sns", region_name=REGION).subscribe(
        TopicArn=topic_arn, Protocol="sqs", Endpoint=queue_arn
    )
    deployed = Pipeline(
        deployment=deployment,
        table=names[_logical_id(template, "AWS::DynamoDB::Table", "Orders")],
        bucket=names[_logical_id(template, "AWS::S3::Bucket", "PipelineResults")],
        topic_arn=topic_arn,
        state_machine_arn=next(iter(deployment.state_machines.values())),
        alerts_queue_url=queue_url,
        monkeypatch=monkeypatch,
    )
    deployed.reload_handlers()
    return deployed
