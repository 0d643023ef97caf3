"""Where a results run writes: the results bucket, and the bucket holding its access logs.

Accepted results (`results/`) and rejected ones (`rejections/`, the full list a run's digest
points to) move to S3 Standard-IA after `results_transition_days` (default 30) and expire after
`results_retention_days` (default 365); a run's batches object (`batches/`) expires after 7 days;
noncurrent versions expire after 30 days (batches: 1 day). Order history (`history/`) expires
after `history_retention_days` (default 400). The access log bucket keeps its logs 90 days.
"""

from __future__ import annotations

from aws_cdk import Aws, Duration, Stack
from aws_cdk import aws_s3 as s3
from constructs import Construct

from entrix.auction.results import BATCHES_PREFIX, REJECTIONS_PREFIX, RESULTS_PREFIX
from entrix.orders.history import HISTORY_PREFIX
from infra.config import ServiceConfig
from infra.nag import acknowledge, acknowledge_control

# Longest account id and region name a bucket name must make room for (e.g. ap-southeast-2).
_ACCOUNT_CHARS = 12
_REGION_CHARS = 14
_MAX_BUCKET_NAME = 63


def _bucket_name(prefix: str, stack_name: str) -> str:
    """`<prefix>-<stack name>-<account>-<region>`: unique, since bucket names are global and a
    stack name is unique in its account and region (Dev and Prod may share both)."""
    fixed = f"{prefix}-{stack_name.lower()}"
    if len(fixed) + 2 + _ACCOUNT_CHARS + _REGION_CHARS > _MAX_BUCKET_NAME:
        raise ValueError(
            f"results bucket name {fixed}-<account>-<region> may exceed {_MAX_BUCKET_NAME} "
            "characters: shorten entrix:results_bucket_prefix or the stack name"
        )
    return f"{fixed}-{Aws.ACCOUNT_ID}-{Aws.REGION}"


def results_bucket(scope: Construct, *, config: ServiceConfig) -> s3.Bucket:
    """The private, versioned, TLS-only results bucket ("Results" in `scope`), logging its
    access to a bucket of its own ("AccessLogs")."""
    access_logs = s3.Bucket(
        scope,
        "AccessLogs",
        encryption=s3.BucketEncryption.S3_MANAGED,
        enforce_ssl=True,
        block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
        object_ownership=s3.ObjectOwnership.BUCKET_OWNER_PREFERRED,
        lifecycle_rules=[s3.LifecycleRule(id="expire-access-logs", expiration=Duration.days(90))],
        removal_policy=config.data_removal_policy,
    )
    acknowledge(
        access_logs,
        "AwsSolutions-S1",
        "This is the server access log bucket of the results bucket; logging its own "
        "access would recurse.",
    )
    for control, reason in {
        "CT.S3.PR.2": "This is the server access log bucket of the results bucket; logging its "
        "own access would recurse.",
        "CT.S3.PR.4": "Nothing reacts to a log object being written; people read the logs when "
        "they investigate.",
        "CT.S3.PR.9": "The logs expire after 90 days by lifecycle; S3 writes each log object "
        "once under a new key, and nothing of this app deletes one earlier.",
        "CT.S3.PR.10": "S3 server access logging delivers only to a bucket encrypted with "
        "SSE-S3 (SSE-KMS is not supported as the target's default encryption).",
        "CT.S3.PR.11": "S3 writes each log object once under a new key and the lifecycle "
        "expires it after 90 days; versions would only keep expired logs.",
    }.items():
        acknowledge_control(access_logs, control, reason)
    bucket = s3.Bucket(
        scope,
        "Results",
        bucket_name=_bucket_name(config.results_bucket_prefix, Stack.of(scope).stack_name),
        encryption=s3.BucketEncryption.S3_MANAGED,
        enforce_ssl=True,
        block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
        versioned=True,
        server_access_logs_bucket=access_logs,
        server_access_logs_prefix="results/",
        lifecycle_rules=[
            *(
                s3.LifecycleRule(
                    id=rule_id,
                    prefix=prefix,
                    transitions=[
                        s3.Transition(
                            storage_class=s3.StorageClass.INFREQUENT_ACCESS,
                            transition_after=Duration.days(config.results_transition_days),
                        )
                    ],
                    expiration=Duration.days(config.results_retention_days),
                    noncurrent_version_expiration=Duration.days(30),
                )
                for rule_id, prefix in (
                    ("age-out-results", RESULTS_PREFIX),
                    ("age-out-rejections", REJECTIONS_PREFIX),
                )
            ),
            s3.LifecycleRule(
                id="expire-run-batches",
                prefix=BATCHES_PREFIX,
                expiration=Duration.days(7),
                noncurrent_version_expiration=Duration.days(1),
            ),
            s3.LifecycleRule(
                id="expire-order-history",
                prefix=HISTORY_PREFIX,
                expiration=Duration.days(config.history_retention_days),
                noncurrent_version_expiration=Duration.days(1),
            ),
        ],
        removal_policy=config.data_removal_policy,
    )
    for control, reason in {
        "CT.S3.PR.4": "The pipeline runs on its schedule and reads what it wrote itself; "
        "nothing reacts to an object being written, so a notification would have no consumer.",
        "CT.S3.PR.9": "Objects are rewritten by design (a batch's object grows, a retried "
        "history batch overwrites its object) and versioning keeps the previous ones; the "
        "lifecycle rules are the retention. A default Object Lock retention would hold every "
        "overwritten version until it ends and keep the lifecycle from deleting them.",
        "CT.S3.PR.10": "Encrypted at rest with SSE-S3. Only this stack's roles read or write "
        "it; a customer managed key would add a key-policy grant to each of them (Lambda A "
        "and B, the archiver, the verify roles) for data the API already serves its owners.",
    }.items():
        acknowledge_control(bucket, control, reason)
    return bucket
