"""The service's alarms in the local system, with what CloudWatch does on a state change.

The local deployer creates no alarm and no KMS key (nothing reads them offline), and moto's
CloudWatch runs no alarm action and keeps no action history. `deploy_alarms` puts the template's
alarms into the endpoint, each with its ALARM and OK actions on the deployed topics, and marks
each topic with the key the template encrypts it with, as CloudFormation would; `AlarmActions`
is CloudWatch as moto serves it plus the publish of an alarm's actions to their topics and the
"Successfully executed action" history item AWS writes for each.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from entrix.local import harness
from entrix.local.runtime import LocalSystem


def _topic_arns(system: LocalSystem, refs: list[dict[str, str]]) -> list[str]:
    names = harness.deployment_of(system).names
    by_name = {arn.rsplit(":", 1)[-1]: arn for arn in harness.deployment_of(system).topics}
    return [by_name[names[ref["Ref"]]] for ref in refs]


def deploy_alarms(system: LocalSystem) -> dict[str, str]:
    """Every alarm of the template, by name (its AlarmName, else `<stack>-<logical id>`, as
    CloudFormation generates it), with its logical id; encrypted topics get their KmsMasterKeyId."""
    template = json.loads(system.template_path.read_text())
    resources = template["Resources"]
    cloudwatch = system.endpoint.client("cloudwatch")
    sns = system.endpoint.client("sns")
    names = {}
    for logical_id, resource in resources.items():
        properties = resource.get("Properties", {})
        if resource["Type"] == "AWS::SNS::Topic" and "KmsMasterKeyId" in properties:
            (topic,) = _topic_arns(system, [{"Ref": logical_id}])
            key = properties["KmsMasterKeyId"]["Fn::GetAtt"][0]
            sns.set_topic_attributes(
                TopicArn=topic, AttributeName="KmsMasterKeyId", AttributeValue=key
            )
        if resource["Type"] != "AWS::CloudWatch::Alarm":
            continue
        name = properties.get("AlarmName", f"{system.stack_name}-{logical_id}")
        cloudwatch.put_metric_alarm(
            AlarmName=name,
            AlarmDescription=properties.get("AlarmDescription", ""),
            AlarmActions=_topic_arns(system, properties.get("AlarmActions", [])),
            OKActions=_topic_arns(system, properties.get("OKActions", [])),
            ActionsEnabled=properties.get("ActionsEnabled", True),
            # The metric matters to no check: only the actions and the name do.
            Namespace="Entrix/Local",
            MetricName=logical_id,
            Statistic="Sum",
            Period=300,
            EvaluationPeriods=1,
            Threshold=1,
            ComparisonOperator="GreaterThanOrEqualToThreshold",
        )
        names[name] = logical_id
    return names


class AlarmActions:
    """A CloudWatch client that, on a state change, publishes to the new state's action topics
    and records each action in the alarm's history, as CloudWatch does."""

    def __init__(self, cloudwatch: Any, sns: Any) -> None:
        self._cloudwatch = cloudwatch
        self._sns = sns
        self._history: list[dict[str, Any]] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self._cloudwatch, name)

    def set_alarm_state(self, **request: Any) -> dict[str, Any]:
        name, state = request["AlarmName"], request["StateValue"]
        (alarm,) = self._cloudwatch.describe_alarms(AlarmNames=[name])["MetricAlarms"]
        self._cloudwatch.set_alarm_state(**request)
        if alarm["StateValue"] == state or not alarm["ActionsEnabled"]:
            return {}
        topics = {"ALARM": alarm["AlarmActions"], "OK": alarm["OKActions"]}.get(state, [])
        for topic in topics:
            self._sns.publish(
                TopicArn=topic,
                Subject=f'{state}: "{name}"',
                Message=json.dumps(
                    {
                        "AlarmName": name,
                        "NewStateValue": state,
                        "OldStateValue": alarm["StateValue"],
                    }
                ),
            )
            self._history.append(
                {
                    "AlarmName": name,
                    "Timestamp": datetime.now(UTC),
                    "HistoryItemType": "Action",
                    "HistorySummary": f"Successfully executed action {topic}",
                }
            )
        return {}

    def describe_alarm_history(self, **request: Any) -> dict[str, Any]:
        return {
            "AlarmHistoryItems": [
                item
                for item in reversed(self._history)
                if item["AlarmName"] == request["AlarmName"]
                and item["Timestamp"] >= request.get("StartDate", datetime.min.replace(tzinfo=UTC))
            ]
        }
