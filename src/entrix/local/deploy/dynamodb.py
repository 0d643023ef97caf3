"""DynamoDB tables, with their indexes and streams; TTL is recorded for the local sweeper.

moto stores the TTL setting but never expires items, so `Deployment.tables` tells the runtime
which attribute to sweep on.
"""

from __future__ import annotations

from typing import Any

from entrix.local.deploy.registry import DeployContext, creates
from entrix.local.template import Resource


@creates("AWS::DynamoDB::Table")
def create_table(deployer: DeployContext, resource: Resource, p: dict[str, Any]) -> None:
    name = deployer.name(resource, p.get("TableName"), 255)
    arguments: dict[str, Any] = {
        "TableName": name,
        "KeySchema": p["KeySchema"],
        "AttributeDefinitions": p["AttributeDefinitions"],
        "BillingMode": p.get("BillingMode", "PROVISIONED"),
    }
    if "ProvisionedThroughput" in p:
        arguments["ProvisionedThroughput"] = _ints(p["ProvisionedThroughput"])
    for key in ("GlobalSecondaryIndexes", "LocalSecondaryIndexes"):
        if key in p:
            arguments[key] = [
                {k: _ints(v) if k == "ProvisionedThroughput" else v for k, v in index.items()}
                for index in p[key]
            ]
    if "StreamSpecification" in p:
        arguments["StreamSpecification"] = {"StreamEnabled": True, **p["StreamSpecification"]}
    dynamodb = deployer.clients("dynamodb")
    table = dynamodb.create_table(**arguments)["TableDescription"]
    ttl = p.get("TimeToLiveSpecification") or {}
    ttl_attribute = ttl.get("AttributeName") if ttl.get("Enabled") else None
    if ttl_attribute:
        dynamodb.update_time_to_live(
            TableName=name,
            TimeToLiveSpecification={"Enabled": True, "AttributeName": ttl_attribute},
        )
    deployer.deployment.tables[name] = ttl_attribute
    attributes = {"Arn": table["TableArn"]}
    if "LatestStreamArn" in table:
        attributes["StreamArn"] = table["LatestStreamArn"]
    deployer.provide(resource, name, **attributes)


def _ints(throughput: dict[str, Any]) -> dict[str, int]:
    """Capacity units as numbers: a template may give them as strings, the API wants integers."""
    return {k: int(v) for k, v in throughput.items()}
