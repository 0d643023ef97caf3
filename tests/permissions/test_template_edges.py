"""Every edge the templates define, authorized as AWS would: state machine tasks, alarm actions,
the schedule's target and dead-letter queue, S3 access logging, log and trace delivery, SNS
subscriptions, API Gateway's Lambda integrations and the pipeline's notifications.

Each test fails naming every request AWS would refuse, and fails when it found no edge at all.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable

import pytest

from entrix.local.iam.model import StackModel
from tests.permissions.conftest import count
from tests.permissions.edges import TEMPLATE_KINDS, denied, derive, subscription_edges


@pytest.mark.parametrize("kind", TEMPLATE_KINDS)
def test_every_edge_of_the_templates_is_allowed(
    kind: str, app_models: list[StackModel], record_property: Callable[[str, object], None]
) -> None:
    edges = [edge for model in app_models for edge in derive(kind, model, app_models)]
    requests = sum(len(edge.requests) for edge in edges)
    count(kind, len(edges), requests)
    record_property("edges", len(edges))
    record_property("requests", requests)
    if kind == TEMPLATE_KINDS[5]:
        # Counted apart: SNS delivers email itself, no policy is involved.
        emails = sum(subscription_edges(model)[1] for model in app_models)
        count(f"{kind} (email: nothing to grant)", emails, 0)
    assert edges, f"no edge of kind {kind!r} in the templates: the model checked nothing"
    refused = denied(edges)
    assert not refused, f"{len(refused)} of {requests} requests refused:\n" + "\n".join(refused)


def test_the_slack_forwarders_on_failure_destination_needs_its_send_grant(
    app_models: list[StackModel],
) -> None:
    """Kind 10 checks something: the forwarder's role without sqs:SendMessage on its dead-letter
    queue is refused, so Lambda could not keep an alert Slack never took."""
    (model,) = [m for m in app_models if m.of_type("AWS::Lambda::EventInvokeConfig")]
    body = copy.deepcopy(model.body)
    for resource in body["Resources"].values():
        if resource["Type"] == "AWS::IAM::Policy":
            document = resource["Properties"]["PolicyDocument"]
            document["Statement"] = [
                statement
                for statement in document["Statement"]
                if "sqs:SendMessage" not in json.dumps(statement["Action"])
            ]
    stripped = StackModel(model.name, body, model.region)
    (edge,) = derive(TEMPLATE_KINDS[8], stripped, [stripped])
    assert "OnFailure destination" in edge.name and ":sqs:" in edge.name
    (refusal,) = denied([edge])
    assert "sqs:SendMessage" in refusal


def test_the_history_mapping_needs_the_stream_read_and_dead_letter_grants(
    app_models: list[StackModel],
) -> None:
    """Kind 11 checks something: the archiver's role without the stream read and without
    sqs:SendMessage is refused both, so Lambda could neither read the stream for it nor keep
    the records it gave up on."""
    model = next(m for m in app_models if m.of_type("AWS::Lambda::EventSourceMapping"))
    body = copy.deepcopy(model.body)
    for resource in body["Resources"].values():
        if resource["Type"] == "AWS::IAM::Policy":
            document = resource["Properties"]["PolicyDocument"]
            document["Statement"] = [
                statement
                for statement in document["Statement"]
                if "dynamodb:GetRecords" not in json.dumps(statement["Action"])
                and "sqs:SendMessage" not in json.dumps(statement["Action"])
            ]
    stripped = StackModel(model.name, body, model.region)
    read, dead_letters = derive(TEMPLATE_KINDS[9], stripped, [stripped])
    assert "/stream/" in read.name and ":sqs:" in dead_letters.name
    refusals = denied([read, dead_letters])
    assert any("dynamodb:GetRecords" in refusal for refusal in refusals)
    assert any("sqs:SendMessage" in refusal for refusal in refusals)
