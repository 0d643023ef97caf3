"""Each client's share, end to end: the service stack synthesized with small limits (context
overrides, as `cdk synth -c` takes them), run by the local system, called over HTTP with two
clients' tokens. One client at its limit gets 429 with Retry-After while the other is served;
a POST past the daily order quota stores nothing; an identical retry is given back its orders.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from entrix import settings
from entrix.local import harness
from infra.app import SERVICE_STACK, build_app
from tests.support.local_system import Running

RATE_LIMIT = 5
# An hour: no window ends while the test runs (it waits out a boundary less than a minute away).
WINDOW_SECONDS = 3600
DAILY_ORDERS = 6
# A client with a share of its own (entrix:client_limits).
VIP_RATE_LIMIT = 8


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    outdir = tmp_path_factory.mktemp("cdk.out")
    context = {
        "aws:cdk:bundling-stacks": [],
        "entrix:client_rate_limit": RATE_LIMIT,
        "entrix:client_rate_window_seconds": WINDOW_SECONDS,
        "entrix:client_daily_order_quota": DAILY_ORDERS,
        "entrix:client_limits": {"desk-vip": {"rate_limit": VIP_RATE_LIMIT}},
    }
    build_app(context, str(outdir), nag=False).synth()
    template = Path(outdir) / f"{SERVICE_STACK}.template.json"
    _clear_of_boundaries()
    with harness.in_process(template) as system:
        table = harness.orders_table(system)
        yield Running(system=system, token=harness.sign_token(system, "desk-a"), table=table)


def _clear_of_boundaries() -> None:
    """Wait until no rate window nor UTC day ends within the next minute."""
    while any(int(time.time()) % span > span - 60 for span in (WINDOW_SECONDS, 86_400)):
        time.sleep(1)


def _call(
    running: Running, method: str, token: str, path: str = "", body: Any = None
) -> tuple[int, dict[str, str], Any]:
    request = urllib.request.Request(
        f"{running.orders_url}{path}",
        method=method,
        data=None if body is None else json.dumps(body).encode(),
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as reply:
            return reply.status, dict(reply.headers), json.loads(reply.read() or b"null")
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), json.loads(error.read() or b"null")


def _orders(*record_ids: str) -> list[dict[str, Any]]:
    return [{"record_id": r, "parameter_1": "p", "parameter_2": 1.5} for r in record_ids]


def test_the_usage_table_is_deployed_with_its_ttl_for_the_local_sweeper(running: Running) -> None:
    deployment = harness.deployment_of(running.system)
    usage = deployment.table_named_by(settings.CLIENT_USAGE_TABLE_NAME.name)
    assert usage is not None and usage != running.table
    assert deployment.tables[usage] == "expires_at"


def test_one_client_at_its_rate_gets_429_while_another_is_served(running: Running) -> None:
    busy = harness.sign_token(running.system, "desk-busy")
    other = harness.sign_token(running.system, "desk-other")
    assert [_call(running, "GET", busy)[0] for _ in range(RATE_LIMIT)] == [200] * RATE_LIMIT

    status, headers, body = _call(running, "GET", busy, "/anything")
    window_end = (int(time.time()) // WINDOW_SECONDS + 1) * WINDOW_SECONDS
    assert status == 429, body
    assert body["code"] == "RATE_LIMITED" and body["request_id"] and body["message"], body
    assert abs(int(headers["Retry-After"]) - (window_end - time.time())) <= 2
    # Every method is counted: a POST of the limited client is refused and stores nothing.
    status, _, body = _call(running, "POST", busy, body=_orders("busy-1"))
    assert (status, body["code"]) == (429, "RATE_LIMITED")
    assert "busy-1" not in running.stored()

    # The other client, meanwhile, is served as if nobody else were there.
    assert _call(running, "POST", other, body=_orders("other-1"))[0] == 201
    assert _call(running, "GET", other, "/other-1")[0] == 200
    assert _call(running, "GET", other)[0] == 200
    assert _call(running, "DELETE", other, "/other-1")[0] == 204
    assert _call(running, "GET", busy)[0] == 429, "still limited until the window ends"


def test_the_daily_quota_refuses_a_post_whole_and_refunds_an_identical_retry(
    running: Running,
) -> None:
    token = harness.sign_token(running.system, "desk-quota")
    assert _call(running, "POST", token, body=_orders("q-1", "q-2", "q-3"))[0] == 201
    # The same three again: charged (6 of 6), then given back, all unchanged.
    status, _, body = _call(running, "POST", token, body=_orders("q-1", "q-2", "q-3"))
    assert (status, body["unchanged"]) == (201, ["q-1", "q-2", "q-3"])
    # Without the refund the day would count 9 of 6 here.
    assert _call(running, "POST", token, body=_orders("q-4", "q-5", "q-6"))[0] == 201

    status, headers, body = _call(running, "POST", token, body=_orders("q-7"))
    midnight = (int(time.time()) // 86_400 + 1) * 86_400
    assert status == 429, body
    assert body["code"] == "DAILY_ORDER_QUOTA_EXCEEDED", body
    assert abs(int(headers["Retry-After"]) - (midnight - time.time())) <= 2
    stored = {r for r in running.stored() if r.startswith("q-")}
    assert stored == {"q-1", "q-2", "q-3", "q-4", "q-5", "q-6"}, "q-7 is not stored"


def test_a_client_with_a_share_of_its_own_gets_its_own_rate(running: Running) -> None:
    vip = harness.sign_token(running.system, "desk-vip")
    statuses = [_call(running, "GET", vip)[0] for _ in range(VIP_RATE_LIMIT + 1)]
    assert statuses == [200] * VIP_RATE_LIMIT + [429]
