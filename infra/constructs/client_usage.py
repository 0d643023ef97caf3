"""The ClientUsage table: each client's request and order counters (entrix.aws.client_usage).

A table of its own rather than items in the orders table: the orders table's stream feeds the
history archiver, which would read a counter change for every API request, and its backups and
retention are for business records. Counters live for a window or a day.
"""

from __future__ import annotations

from aws_cdk import RemovalPolicy
from aws_cdk import aws_dynamodb as dynamodb
from constructs import Construct

from infra.config import ServiceConfig
from infra.nag import acknowledge, acknowledge_control


def client_usage_table(scope: Construct, id: str, *, config: ServiceConfig) -> dynamodb.Table:
    """Counters keyed on `usage_key` (`<sub>#rate#<window start>`, `<sub>#orders#<UTC day>`),
    deleted by the TTL after `expires_at`; on demand, within the service's ceilings."""
    table = dynamodb.Table(
        scope,
        id,
        partition_key=dynamodb.Attribute(name="usage_key", type=dynamodb.AttributeType.STRING),
        billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
        max_write_request_units=config.table_max_write_request_units,
        max_read_request_units=config.table_max_read_request_units,
        time_to_live_attribute="expires_at",
        encryption=dynamodb.TableEncryption.AWS_MANAGED,
        # Nothing in it outlives a day: a restored copy would be out of date, and a new stack
        # starts every client at zero.
        removal_policy=RemovalPolicy.DESTROY,
    )
    acknowledge(
        table,
        "AwsSolutions-DDB3",
        "Counters of the current window and UTC day only, expired by TTL: a point-in-time "
        "restore would bring back stale counts, and losing them only resets clients' shares "
        "to zero for the rest of the day.",
    )
    acknowledge_control(
        table,
        "CT.DYNAMODB.PR.1",
        "Counters of the current window and UTC day only, expired by TTL: a point-in-time "
        "restore would bring back stale counts (the same reason as AwsSolutions-DDB3).",
    )
    return table
