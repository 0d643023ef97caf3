"""The orders table, with its two indexes: orders waiting for a result, and each owner's orders.

One definition for the service stack (the intake owns the table) and for the tests that deploy
the results pipeline on its own: Lambda A queries the pending index, so the two never differ.
"""

from __future__ import annotations

from aws_cdk import aws_dynamodb as dynamodb
from constructs import Construct

from entrix import settings
from infra.config import ServiceConfig


def orders_table(scope: Construct, id: str, *, config: ServiceConfig) -> dynamodb.Table:
    """The table of orders keyed on `order_key` (`<owner>#<record_id>`), with two keys-only indexes.

    Every order belongs to the subject of the token that stored it, so the partition key joins
    the owner and the client's `record_id`: two clients may use the same id, and a request
    reads or writes only its caller's keys.

    `pending-results` holds the orders waiting for a result: a run queries it instead of
    scanning. It is keyed on `pending_shard` (16 values, set by the intake, removed when the
    result is recorded or the order is cancelled) and sorted on `version` (receipt time, then a
    per-request nonce), so waiting orders spread over 16 index partitions, oldest first, and a
    recorded order costs one index write (its removal).

    `owner-orders` lists each client's orders for GET /orders: keyed on `owner_shard`
    (`<owner>#00`..`<owner>#15`, a hash of the record id), sorted on `version`, newest first when
    queried backwards. One client's writes spread over 16 index partitions, so a client posting
    many orders a second stays under DynamoDB's per-partition write limit. Claiming, recording
    and cancelling change neither key, so the index costs one write per order, on its put.

    Both project the keys only: Lambda A needs an order's key and version, the listing reads a
    page's items with BatchGetItem, and Lambda B reads the order's fields from the item it claims.

    The table's stream carries each change's new and old images: the history archiver
    (history_archive) needs both, to tell a claim (no history) from a result or an amend, and the
    old image alone is what is left of an order the TTL deleted.
    """
    table = dynamodb.Table(
        scope,
        id,
        partition_key=dynamodb.Attribute(name="order_key", type=dynamodb.AttributeType.STRING),
        billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
        # The most the table may spend per second (writes and reads, its indexes' writes
        # excluded): a client or a leaked token cannot run the bill up past it; what is over it
        # is throttled, and ingest answers 503 with Retry-After (entrix.handlers.ingest).
        max_write_request_units=config.table_max_write_request_units,
        max_read_request_units=config.table_max_read_request_units,
        time_to_live_attribute="expires_at",
        stream=dynamodb.StreamViewType.NEW_AND_OLD_IMAGES,
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
        sort_key=dynamodb.Attribute(name="version", type=dynamodb.AttributeType.STRING),
        projection_type=dynamodb.ProjectionType.KEYS_ONLY,
    )
    table.add_global_secondary_index(
        index_name=settings.ORDERS_OWNER_INDEX_NAME.text(),
        partition_key=dynamodb.Attribute(name="owner_shard", type=dynamodb.AttributeType.STRING),
        sort_key=dynamodb.Attribute(name="version", type=dynamodb.AttributeType.STRING),
        projection_type=dynamodb.ProjectionType.KEYS_ONLY,
    )
    return table
