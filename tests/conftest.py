"""Every test runs offline (fake credentials, a fixed region, never a real AWS account), jsii
runs on the project's Node, and every test is in one tier, by its directory."""

import decimal
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from boto3.dynamodb.types import DYNAMODB_CONTEXT

from entrix.local.node import jsii_environment
from tests.support import abandoned_handlers

# moto's index queries (KEYS_ONLY projection) deserialize every item through boto3's 38-digit
# context, which raises Rounded on numbers DynamoDB holds, such as -3.4028234660E+38 returned as
# its 39 digits; DynamoDB itself and the service's own reads (entrix.aws.orders_table.plain_item)
# never go through it. Inexact stays trapped: a digit lost is still an error.
DYNAMODB_CONTEXT.traps[decimal.Rounded] = False

os.environ.update(
    {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SECURITY_TOKEN": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": "eu-west-1",
        "AWS_REGION": "eu-west-1",
        **jsii_environment(),
    }
)
os.environ.pop("AWS_PROFILE", None)


TESTS = Path(__file__).resolve().parent
# Each directory's tier (the markers are declared in pyproject.toml; the Makefile runs each tier).
# A test marked e2e is in that tier instead, wherever it is.
TIERS = {
    "unit": "unit",
    "infra": "infra",
    "permissions": "infra",
    "pipeline": "integration",
    "local": "integration",
    "bench": "integration",
    "properties": "integration",
    "faults": "integration",
}
# Every test in these is slow: the fault suites wait out real timeouts and backoff, the property
# tests try hundreds of examples each.
SLOW_DIRECTORIES = {"faults", "properties"}


@pytest.hookimpl(tryfirst=True)  # before -m selects by these markers
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if not item.path.is_relative_to(TESTS):
            continue
        directory = item.path.relative_to(TESTS).parts[0]
        if directory not in TIERS:
            raise pytest.UsageError(
                f"tests/{directory} has no tier: add it to TIERS in tests/conftest.py"
            )
        if item.get_closest_marker("e2e") is None:
            item.add_marker(TIERS[directory])
        if directory in SLOW_DIRECTORIES:
            item.add_marker("slow")
        if directory == "unit" and (
            item.get_closest_marker("slow") or item.get_closest_marker("e2e")
        ):
            raise pytest.UsageError(
                f"{item.nodeid} is marked slow or e2e: move it out of tests/unit, which `make unit`"
                " runs whole in seconds"
            )


@pytest.fixture(autouse=True)
def no_abandoned_handler_outlives_its_test() -> Iterator[None]:
    """A handler abandoned at its timeout runs on in its thread (the local Lambda runtime cannot
    kill it): one the test left still running after it could act in the next, so it fails."""
    before = abandoned_handlers.running()
    yield
    abandoned_handlers.fail_if_left(before)
