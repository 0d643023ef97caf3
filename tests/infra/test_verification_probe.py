"""The verification probe: an alarm `entrix verify` may set off that pages nobody, on a topic
whose key and topic policies are the operations topic's, so its action proves what the
operations topic's would."""

from __future__ import annotations

import json
from typing import Any

from infra.constructs.verification_probe import PROBE_ALARM


def _one(template: dict[str, Any], resource_type: str, contains: str) -> tuple[str, dict]:
    (found,) = [
        (logical_id, resource["Properties"])
        for logical_id, resource in template["Resources"].items()
        if resource["Type"] == resource_type and contains in logical_id
    ]
    return found


def _shape(document: Any, own_ids: list[str]) -> Any:
    """A policy document with the references to its own topic or key made anonymous."""
    text = json.dumps(document, sort_keys=True)
    for logical_id in own_ids:
        text = text.replace(f'"{logical_id}"', '"<own>"')
    return json.loads(text)


def test_the_probe_topics_key_and_topic_policy_are_the_operations_topics(
    service_json: dict[str, Any],
) -> None:
    shapes = {}
    for topic_part, key_part in (("OpsTopic", "OpsKey"), ("VerificationProbeTopic", "ProbeKey")):
        topic_id, topic = _one(service_json, "AWS::SNS::Topic", topic_part)
        key_id, key = _one(service_json, "AWS::KMS::Key", key_part)
        assert topic["KmsMasterKeyId"] == {"Fn::GetAtt": [key_id, "Arn"]}
        assert key["EnableKeyRotation"] is True
        _, policy = _one(service_json, "AWS::SNS::TopicPolicy", topic_part)
        shapes[topic_part] = (
            _shape(key["KeyPolicy"], [key_id]),
            _shape(policy["PolicyDocument"], [topic_id]),
        )
    assert shapes["VerificationProbeTopic"] == shapes["OpsTopic"]


def test_the_probe_alarm_notifies_only_the_probe_topic_which_has_no_subscriber(
    service_json: dict[str, Any],
) -> None:
    probe_topic, _ = _one(service_json, "AWS::SNS::Topic", "VerificationProbeTopic")
    ops_topic, _ = _one(service_json, "AWS::SNS::Topic", "OpsTopic")
    _, alarm = _one(service_json, "AWS::CloudWatch::Alarm", "VerificationProbe")
    assert alarm["AlarmName"] == f"Entrix-{PROBE_ALARM}"  # the verify role may set only it
    assert alarm["AlarmActions"] == alarm["OKActions"] == [{"Ref": probe_topic}]
    # Nothing publishes its metric: only SetAlarmState moves it, and silence is OK.
    assert alarm["Namespace"] == "Entrix/Verification"
    assert alarm["TreatMissingData"] == "notBreaching"
    subscribed = [
        r["Properties"]["TopicArn"]
        for r in service_json["Resources"].values()
        if r["Type"] == "AWS::SNS::Subscription"
    ]
    assert {"Ref": probe_topic} not in subscribed
    # And no other alarm is on the probe topic, nor the probe alarm on the operations topic.
    for logical_id, resource in service_json["Resources"].items():
        if resource["Type"] == "AWS::CloudWatch::Alarm" and "VerificationProbe" not in logical_id:
            assert {"Ref": probe_topic} not in resource["Properties"].get("AlarmActions", [])
    assert {"Ref": ops_topic} not in alarm["AlarmActions"]


def test_the_probe_alarm_is_the_stacks_probe_output(service_json: dict[str, Any]) -> None:
    probe_id, _ = _one(service_json, "AWS::CloudWatch::Alarm", "VerificationProbe")
    assert service_json["Outputs"]["ProbeAlarmName"]["Value"] == {"Ref": probe_id}
