"""The HTTP-level fault of tests/support/inject.py: refused below botocore's retries, and never
carried out by moto's mock behind it."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from moto import mock_aws

from tests.support.inject import HttpFault

RETRIES = Config(retries={"mode": "standard", "total_max_attempts": 3})
BUCKET = "inject-test-bucket"


@pytest.fixture
def s3() -> Iterator[Any]:
    with mock_aws():
        client = boto3.client("s3", region_name="eu-west-1", config=RETRIES)
        client.create_bucket(
            Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"}
        )
        yield client


def test_a_refused_call_is_retried_by_botocore_and_never_reaches_the_mock(s3: Any) -> None:
    fault = HttpFault(s3, "PutObject", "InternalError", when=lambda n: n == 1)

    with pytest.raises(ClientError, match="InternalError"):
        s3.put_object(Bucket=BUCKET, Key="refused", Body=b"x")
    s3.put_object(Bucket=BUCKET, Key="stored", Body=b"x")

    assert (fault.calls, fault.attempts) == (2, 3), "the first call's 3 attempts were refused"
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET).get("Contents", [])]
    assert keys == ["stored"]


@pytest.mark.parametrize(
    ("service", "operation", "code", "call"),
    [
        ("sns", "Publish", "InternalError", lambda c: c.publish(TopicArn="arn", Message="m")),
        ("dynamodb", "GetItem", "InternalServerError", lambda c: c.get_item(TableName="t", Key={})),
    ],
)
def test_every_protocol_gets_its_error_code(
    service: str, operation: str, code: str, call: Any
) -> None:
    with mock_aws():
        client = boto3.client(service, region_name="eu-west-1", config=RETRIES)
        fault = HttpFault(client, operation, code)
        with pytest.raises(ClientError) as raised:
            call(client)
    assert raised.value.response["Error"]["Code"] == code
    assert fault.attempts == 3
