"""The orders table, with the index of the orders waiting for a result.

One definition for the service stack (the intake owns the table) and for the tests that deploy
the results pipeline on its own: Lambda A queries the index, so the two never differ.
"""

from __future__ import annotations

from aws_cdk import aws_dynamodb as dynamodb
from constructs import Construct

from entrix import settings
from infra.config import ServiceConfig


def orders_table(scope: Construct, id: str, *, config: ServiceConfig) -> dynamodb.Table:
    """The table of orders keyed on `record_id`, with the sparse pending-results index.

    The index holds the orders waiting for a result: a run queries it instead of scanning. It is
    keyed on `pending_shard` (16 values, set by the intake, removed when the result is
    recorded), so waiting orders spread over 16 index partitions and a recorded order costs one
    index write (its removal). It projects the keys only: Lambda A needs an order's id and age,
    and Lambda B reads the order's fields from the item it claims.
    """
    table = dynamodb.Table(
        scope,
        id,
        partition_key=dynamodb.Attribute(name="record_id", type=dynamodb.AttributeType.STRING),
        billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
        time_to_live_attribute="expires_at",
        point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
            point_in_time_recovery_enabled=True
        ),
        encryption=dynamodb.TableEncryption.AWS_MANAGED,
        # Orders are business records: by default they outlive the stack (config.retain_data).
        removal_policy=config.data_removal_policy,
        deletion_protection=config.retain_data,
    )
    table.add_global_secondary_index(
        index_name=settings.ORDERS_PENDING_INDEX_NAME.text(),
        partition_key=dynamodb.Attribute(name="pending_shard", type=dynamodb.AttributeType.STRING),
        sort_key=dynamodb.Attribute(name="received_at", type=dynamodb.AttributeType.STRING),
        projection_type=dynamodb.ProjectionType.KEYS_ONLY,
    )
    return table
