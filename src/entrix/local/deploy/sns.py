"""SNS topics and subscriptions; topic ARNs are recorded so the runtime can deliver to them."""

from __future__ import annotations

import json
from typing import Any

from entrix.local.deploy.registry import DeployContext, creates
from entrix.local.template import Resource


@creates("AWS::SNS::Topic")
def create_topic(deployer: DeployContext, resource: Resource, p: dict[str, Any]) -> None:
    name = deployer.name(resource, p.get("TopicName"), 256)
    attributes = {}
    if p.get("FifoTopic"):
        attributes["FifoTopic"] = "true"
    if "DisplayName" in p:
        attributes["DisplayName"] = p["DisplayName"]
    sns = deployer.clients("sns")
    arn = sns.create_topic(Name=name, Attributes=attributes)["TopicArn"]
    for subscription in p.get("Subscription", []):
        sns.subscribe(
            TopicArn=arn, Protocol=subscription["Protocol"], Endpoint=subscription["Endpoint"]
        )
    deployer.deployment.topics.append(arn)
    deployer.provide(resource, arn, TopicArn=arn, TopicName=name)


@creates("AWS::SNS::Subscription")
def create_subscription(deployer: DeployContext, resource: Resource, p: dict[str, Any]) -> None:
    arguments: dict[str, Any] = {
        "TopicArn": p["TopicArn"],
        "Protocol": p["Protocol"],
        "Endpoint": p["Endpoint"],
        "ReturnSubscriptionArn": True,
    }
    attributes = {
        key: json.dumps(p[key]) if isinstance(p[key], dict) else str(p[key]).lower()
        for key in ("FilterPolicy", "RawMessageDelivery", "RedrivePolicy")
        if key in p
    }
    if attributes:
        arguments["Attributes"] = attributes
    arn = deployer.clients("sns").subscribe(**arguments)["SubscriptionArn"]
    deployer.deployment.names[resource.logical_id] = arn
    deployer.provide(resource, arn)
