"""Schemathesis against the running local API, generated from docs/openapi.json, with a real token.

Every generated request (valid and deliberately invalid) must get a documented status, a body that
conforms to the documented schema for it, and never a 5xx.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
import schemathesis.checks
from hypothesis import HealthCheck, settings
from jsonschema import Draft202012Validator
from schemathesis.config import SchemathesisConfig
from schemathesis.core import NOT_SET
from schemathesis.core.failures import AcceptedNegativeData, Failure
from schemathesis.openapi.checks import RejectedPositiveData

from entrix.local import harness
from tests.support.local_system import Running, local_system

# The whole local system over HTTP, sent generated requests for every operation.
pytestmark = [pytest.mark.e2e, pytest.mark.slow]

OPENAPI = Path(__file__).resolve().parents[2] / "docs" / "openapi.json"
DOCUMENT = json.loads(OPENAPI.read_text(encoding="utf-8"))

# Invalid input must be refused with one of the 4xx the API documents (docs/openapi.json: 413 for
# too many orders or bytes, 415 for a wrong Content-Type), never accepted and never a 5xx.
REFUSALS = ["400", "401", "403", "404", "413", "415"]
schema = schemathesis.openapi.from_path(
    OPENAPI,
    config=SchemathesisConfig.from_dict(
        {"checks": {"negative_data_rejection": {"expected-statuses": REFUSALS}}}
    ),
)


# Rules the document states in prose only, because JSON Schema cannot express them (uniqueness
# of one field across array items, UTF-8 byte length, DynamoDB's number precision and range, the
# body's size in bytes, a listing cursor being one the API gave): a schema-valid request that
# breaks one is rightly refused.
PROSE_ONLY_RULES = re.compile(
    r"^(duplicate of the order at index |must be at most \d+ UTF-8 bytes"
    r"|must have at most \d+ significant digits|magnitude must be |must be at most \d+ bytes"
    r"|is not a cursor this API gave$)"
)


def only_undocumented_query_parameters(case: schemathesis.Case) -> bool:
    """Whether the case breaks the document only by query parameters it does not name, every
    documented one present being valid. The API ignores those, as API Gateway passes them on
    and as HTTP APIs do (a client's tracking parameter does not break its request); the
    document does not say otherwise (OpenAPI does not forbid unnamed query parameters)."""
    operation = DOCUMENT["paths"][case.path][case.method.lower()]
    documented = {
        p["name"]: p["schema"] for p in operation.get("parameters", []) if p["in"] == "query"
    }
    query = dict(case.query or {})
    if set(query) <= set(documented) or case.body is not NOT_SET or case.path_parameters:
        return False
    return all(
        Draft202012Validator(documented[name]).is_valid(value)
        for name, value in query.items()
        if name in documented
    )


@schema.hook
def filter_failure(
    context: schemathesis.HookContext,
    failure: Failure,
    case: schemathesis.Case,
    response: schemathesis.Response,
) -> bool:
    """Keep every failure but a schema-valid body refused (400/413) only for prose-only rules,
    and a request accepted whose only fault is a query parameter the document does not name."""
    if isinstance(failure, AcceptedNegativeData):
        return not only_undocumented_query_parameters(case)
    if not isinstance(failure, RejectedPositiveData) or response.status_code not in (400, 413):
        return True
    problems = response.json().get("errors") or [{}]
    return not all(PROSE_ONLY_RULES.match(str(p.get("reason", ""))) for p in problems)


RETRIES_OF_UNAVAILABLE = 3


@pytest.fixture(scope="module")
def running() -> Iterator[Running]:
    with local_system() as running:
        # Generated requests come fast and under one token: the per-client share is not what
        # is checked here (tests/local/test_fair_share.py is).
        harness.widen_client_shares(running.client("lambda"), 10**6, 10**9)
        yield running


@schema.parametrize()
@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
def test_the_api_conforms_to_its_openapi_document(
    case: schemathesis.Case, running: Running
) -> None:
    headers = {"Authorization": f"Bearer {running.token}"}
    response = case.call(base_url=running.system.api_url, headers=headers)
    # A 503 with Retry-After says a store did not answer in time and nothing was done (on a
    # loaded machine, the usage table's one 1 s attempt): a client sends it again, and so does
    # this test, a few times, before judging the answer.
    for _ in range(RETRIES_OF_UNAVAILABLE):
        if response.status_code != 503 or "retry-after" not in response.headers:
            break
        time.sleep(float(response.headers["retry-after"][0]))
        response = case.call(base_url=running.system.api_url, headers=headers)
    case.validate_response(
        response,
        # API Gateway (REST) answers an undeclared method with 403 "Missing Authentication
        # Token", not 405; the local API mirrors AWS, so this one check does not apply.
        excluded_checks=[schemathesis.checks.unsupported_method],
    )
    assert response.status_code < 500, response.text
