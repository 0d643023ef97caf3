"""Every edge the templates define, authorized as AWS would: state machine tasks, alarm actions,
the schedule's target and dead-letter queue, S3 access logging, log and trace delivery, SNS
subscriptions, API Gateway's Lambda integrations and the pipeline's notifications, the pipeline's
roles, actions and CodeBuild projects, CodeDeploy's deployment groups; and that every role and
resource policy of the templates is in some edge.

Each test fails naming every request AWS would refuse, and fails when it found no edge at all.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable

import pytest

from entrix.local.iam.model import StackModel
from tests.permissions.conftest import count
from tests.permissions.edges import (
    TEMPLATE_KINDS,
    Edge,
    denied,
    derive,
    subscription_edges,
    uncovered,
)


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


def _all_edges(app_models: list[StackModel]) -> list[Edge]:
    return [e for kind in TEMPLATE_KINDS for m in app_models for e in derive(kind, m, app_models)]


def test_every_role_and_resource_policy_of_the_templates_is_in_an_edge(
    app_models: list[StackModel],
) -> None:
    """Nothing passes silently: each IAM role of every template makes or is assumed in some
    edge's request, each key, bucket, topic, queue and function policy decides some request,
    and no resource carries a policy of a type no kind reads."""
    edges = _all_edges(app_models)
    roles = sum(len(m.of_type("AWS::IAM::Role")) for m in app_models)
    count("every role and resource policy in an edge", roles, 0)

    assert not uncovered(app_models, edges), "\n".join(uncovered(app_models, edges))


def test_a_role_or_policy_no_edge_kind_covers_fails_by_name(app_models: list[StackModel]) -> None:
    """A role nothing assumes, and a resource policy of a type the model does not read, are
    each named (the delivery stack's eleven roles were, before kind 13)."""
    (delivery,) = [m for m in app_models if m.of_type("AWS::CodePipeline::Pipeline")]
    body = copy.deepcopy(delivery.body)
    body["Resources"]["Unused"] = {
        "Type": "AWS::IAM::Role",
        "Properties": {"AssumeRolePolicyDocument": {"Statement": []}},
    }
    body["Resources"]["SecretPolicy"] = {
        "Type": "AWS::SecretsManager::ResourcePolicy",
        "Properties": {"SecretId": "a-secret", "ResourcePolicy": {"Statement": []}},
    }
    mutated = StackModel(delivery.name, body, delivery.region)
    app = [mutated if m is delivery else m for m in app_models]
    missing = uncovered(app, _all_edges(app))

    assert [line.split(" ", 1)[0] for line in missing] == [
        f"{delivery.name}/Unused",
        f"{delivery.name}/SecretPolicy",
    ]


def test_the_pipelines_codebuild_actions_need_their_start_build_grant(
    app_models: list[StackModel],
) -> None:
    """Kind 13 checks something: the CodeBuild action role without codebuild:StartBuild is
    refused on every CodeBuild action (Synth, self-mutation, assets, smoke tests, verify)."""
    (delivery,) = [m for m in app_models if m.of_type("AWS::CodePipeline::Pipeline")]
    body = copy.deepcopy(delivery.body)
    for resource in body["Resources"].values():
        if resource["Type"] == "AWS::IAM::Policy":
            for statement in resource["Properties"]["PolicyDocument"]["Statement"]:
                actions = statement["Action"]
                if isinstance(actions, list) and "codebuild:StartBuild" in actions:
                    actions.remove("codebuild:StartBuild")
    stripped = StackModel(delivery.name, body, delivery.region)
    edges = derive(TEMPLATE_KINDS[11], stripped, [stripped])

    refusals = denied(edges)

    projects = len(stripped.of_type("AWS::CodeBuild::Project"))
    assert len(refusals) == projects  # one CodeBuild action per project
    assert all("codebuild:StartBuild" in refusal for refusal in refusals)
