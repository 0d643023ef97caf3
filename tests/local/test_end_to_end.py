"""`entrix local` as a user runs it: a real process, real HTTP, the aws endpoint through boto3."""

import json
import socket
import time
import urllib.error
import urllib.parse
import urllib.request

import pytest

from entrix import settings
from entrix.aws.secrets import EXTENSION_PORT_VARIABLE
from entrix.tokens import issue_token
from tests.support.local_process import running_local

pytestmark = pytest.mark.e2e


def port_is_free(port):
    """Nothing listens there and a new server can bind it (as servers do, with SO_REUSEADDR:
    the connections the tests closed may linger in TIME_WAIT)."""
    with socket.socket() as client:
        if client.connect_ex(("127.0.0.1", port)) == 0:
            return False
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


@pytest.fixture(scope="module")
def local():
    with running_local(wide_shares=True) as system:
        yield system


@pytest.fixture(scope="module")
def token(local):
    result = local.cli("token")
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def call(local, method, path, token=None, body=None, raw=None, content_type="application/json"):
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    request = urllib.request.Request(
        f"http://127.0.0.1:{local.port}{path}", data=data, method=method
    )
    request.add_header("Content-Type", content_type)
    if token is not None:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"null")


def order_key(record_id):
    """The table key of the default token's (`entrix token`, subject entrix-cli) order."""
    return {"order_key": {"S": f"entrix-cli#{record_id}"}}


def assert_refusal(body, code):
    """Issue 17's one error shape, from API Gateway and the handlers alike."""
    assert body["code"] == code, body
    assert isinstance(body["message"], str) and body["message"], body
    assert isinstance(body["request_id"], str) and body["request_id"], body


def table_name(local):
    (name,) = [n for n in local.client("dynamodb").list_tables()["TableNames"] if "Orders" in n]
    return name


def test_console_shows_where_everything_is(local):
    assert f"http://127.0.0.1:{local.port}/orders" in local.output
    assert f"--endpoint-url http://127.0.0.1:{local.aws_port}" in local.output
    assert f"--table-name {table_name(local)}" in local.output
    assert "export TOKEN=ey" in local.output
    assert "curl -sS -X POST" in local.output


def test_posted_orders_are_stored_and_read_back(local, token):
    orders = [
        {"record_id": "e2e-1", "parameter_1": "a", "parameter_2": 2.1},
        {"record_id": "e2e-2", "parameter_1": "b", "parameter_2": 7},
    ]
    status, summary = call(local, "POST", "/orders", token, orders)
    assert status == 201, summary
    item = local.client("dynamodb").get_item(TableName=table_name(local), Key=order_key("e2e-1"))[
        "Item"
    ]
    assert item["parameter_1"] == {"S": "a"}
    assert item["parameter_2"] == {"N": "2.1"}
    assert int(item["expires_at"]["N"]) > time.time() + 86000
    status, stored = call(local, "GET", "/orders/e2e-2", token)
    assert status == 200
    assert stored["record_id"] == "e2e-2"
    status, missing = call(local, "GET", "/orders/never-posted", token)
    assert (status, missing["record_id"]) == (404, "never-posted")
    assert_refusal(missing, "NOT_FOUND")


def test_the_authorizer_reads_its_key_through_the_local_extension(local, token):
    """As in Lambda, the authorizer's key comes from the Parameters and Secrets Extension, never
    from a Secrets Manager client of its own; the local extension reports each request it
    serves on the console, and only the authorizer holds the token it answers to."""
    assert call(local, "GET", "/orders/never-posted", token)[0] == 404  # authorized
    lambda_ = local.client("lambda")
    (name,) = [
        function["FunctionName"]
        for function in lambda_.list_functions()["Functions"]
        if function["Handler"] == "entrix.handlers.authorizer.handler"
    ]
    variables = lambda_.get_function_configuration(FunctionName=name)["Environment"]["Variables"]
    assert variables[EXTENSION_PORT_VARIABLE] == str(local.extension_port())
    served = [line for line in local.lines if line.startswith("[secrets extension]")]
    expected = {
        f"[secrets extension] {name}: GetSecretValue {variables[setting.name]} -> 200"
        for setting in (settings.JWT_SECRET_ARN, settings.JWT_REVOCATIONS_SECRET_ARN)
    }
    assert served, local.output[-3000:]
    assert set(served) == expected


@pytest.mark.parametrize(
    "bad_token",
    [
        None,
        "not-a-jwt",
        # Signed with another key, under a kid the authorizer does not know.
        issue_token(
            b"k" * 64,
            kid="forged",
            subject="mallory",
            expires_in=3600,
            issuer=settings.JWT_ISSUER.text(),
            audience=settings.JWT_AUDIENCE.text(),
        ),
    ],
)
def test_bad_tokens_are_refused(local, bad_token):
    """401 each time: API Gateway answers a missing Authorization header without calling the
    REQUEST authorizer, and the authorizer raises Unauthorized for a token it refuses (a 403
    would mean an explicit Deny, which it never returns)."""
    status, body = call(
        local,
        "POST",
        "/orders",
        bad_token,
        [{"record_id": "x", "parameter_1": "a", "parameter_2": 1}],
    )
    assert (status, body["message"]) == (401, "Unauthorized"), body
    assert_refusal(body, "UNAUTHORIZED")
    assert (
        local.client("dynamodb")
        .get_item(TableName=table_name(local), Key=order_key("x"))
        .get("Item")
        is None
    )


@pytest.mark.parametrize(
    "raw",
    [
        b"{not json",
        json.dumps([{"record_id": "bad-1", "parameter_1": "a", "parameter_2": "NaN"}]).encode(),
        json.dumps([{"record_id": "bad-2", "parameter_1": "a"}]).encode(),
    ],
)
def test_bad_bodies_are_refused_and_nothing_is_stored(local, token, raw):
    status, body = call(local, "POST", "/orders", token, raw=raw)
    assert status == 400, body
    assert_refusal(body, "BAD_REQUEST_BODY")
    items = local.client("dynamodb").scan(TableName=table_name(local))["Items"]
    assert not [i for i in items if i["record_id"]["S"].startswith("bad-")]


# Bytes that are not UTF-8 (0xFF never occurs in UTF-8; 0xC3 starts a 2-byte sequence that 0x28
# does not continue) inside a record_id string: a text body would reach the Lambda with each
# replaced by U+FFFD, so the refusal proves the ingest Lambda got the raw bytes.
INVALID_UTF8 = b"\xff\xc3\x28"
JSON_CONTENT_TYPES = ["application/json", "application/json; charset=utf-8"]


@pytest.mark.parametrize("content_type", JSON_CONTENT_TYPES)
def test_invalid_utf8_is_refused_and_nothing_is_stored(local, token, content_type):
    prefix = f"bad-utf8-{JSON_CONTENT_TYPES.index(content_type)}-"
    raw = (
        b'[{"record_id": "' + prefix.encode() + INVALID_UTF8 + b'", "parameter_1": "a", '
        b'"parameter_2": 1}]'
    )
    status, body = call(local, "POST", "/orders", token, raw=raw, content_type=content_type)
    assert status == 400, body
    assert body["message"] == "the body is not valid UTF-8"
    at = raw.index(INVALID_UTF8)
    assert [e["reason"] for e in body["errors"]] == [f"invalid UTF-8 at byte {at}"]
    # nothing under the id API Gateway's text decoding would have made of it
    replaced = prefix + INVALID_UTF8.decode("utf-8", errors="replace")
    status, missing = call(local, "GET", f"/orders/{urllib.parse.quote(replaced, safe='')}", token)
    assert (status, missing["record_id"]) == (404, replaced)
    items = local.client("dynamodb").scan(TableName=table_name(local))["Items"]
    assert [i["record_id"]["S"] for i in items if i["record_id"]["S"].startswith(prefix)] == []


@pytest.mark.parametrize("content_type", JSON_CONTENT_TYPES)
@pytest.mark.parametrize("record_id", ["Ørsted-ü-€", "sent-as-\ufffd"])
def test_non_ascii_record_ids_round_trip(local, token, content_type, record_id):
    record_id = f"{record_id}-{JSON_CONTENT_TYPES.index(content_type)}"
    order = {"record_id": record_id, "parameter_1": "€", "parameter_2": 1}
    raw = json.dumps([order], ensure_ascii=False).encode()
    status, summary = call(local, "POST", "/orders", token, raw=raw, content_type=content_type)
    assert status == 201, summary
    assert summary["created"] == [record_id]
    status, stored = call(local, "GET", f"/orders/{urllib.parse.quote(record_id, safe='')}", token)
    assert status == 200, stored
    assert (stored["record_id"], stored["parameter_1"]) == (record_id, "€")


def test_oversized_body_is_413(local, token):
    status, body = call(local, "POST", "/orders", token, raw=b" " * (10 * 1024 * 1024 + 1))
    assert status == 413, body
    assert_refusal(body, "REQUEST_TOO_LARGE")


def test_scheduled_runs_process_the_orders(local, token):
    """A scheduled run processes the orders; its own summary reaches the console (not any earlier
    run's), and a run that rejected orders its one Slack-style digest, with no line per rejected
    order. Sixteen orders: the simulated platform accepts about half, so both paths are met (all
    sixteen accepted: 1 run in 65,536)."""
    orders = [{"record_id": f"run-{i}", "parameter_1": "p", "parameter_2": i} for i in range(16)]
    posted = call(local, "POST", "/orders", token, orders)
    assert posted[0] == 201, posted
    dynamodb = local.client("dynamodb")
    deadline = time.monotonic() + 120
    items = {}
    while time.monotonic() < deadline:
        items = {
            o["record_id"]: dynamodb.get_item(
                TableName=table_name(local), Key=order_key(o["record_id"])
            )["Item"]
            for o in orders
        }
        if all(i["result_status"]["S"] in ("accepted", "rejected") for i in items.values()):
            break
        time.sleep(0.5)
    statuses = {r: i["result_status"]["S"] for r, i in items.items()}
    assert set(statuses.values()) <= {"accepted", "rejected"}, (statuses, local.output[-3000:])
    runs = {i["result_run_id"]["S"] for i in items.values()}
    assert all(run.startswith("scheduled-") for run in runs), runs
    # each run that processed them ends and reports its own summary on the console
    deadline = time.monotonic() + 30
    summaries = [f'[pipeline] {{"execution": "{run}"' for run in runs]
    while time.monotonic() < deadline and not all(s in local.output for s in summaries):
        time.sleep(0.2)
    for summary in summaries:
        assert summary in local.output, (summary, local.output[-3000:])
    # People get one digest per run with rejections, not a line per rejected order.
    digests = {
        f"orders were rejected in auction run {items[r]['result_run_id']['S']}; the full list: "
        for r, status in statuses.items()
        if status == "rejected"
    }
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and not all(d in local.slack_text() for d in digests):
        time.sleep(0.2)
    for digest in digests:
        assert local.slack_text().count(digest) == 1, (digest, local.output[-3000:])
    for record_id in statuses:
        assert f"Order {record_id} of" not in local.slack_text(), record_id


@pytest.fixture(scope="module")
def unscheduled():
    """A system of its own whose only runs are the ones a test starts, so a run's counts are
    exactly the orders that test posted; Lambda A's results are always ready (as an operator
    would set it), so the run cannot fail by polling the simulated platform in vain."""
    with running_local(schedule_seconds=0) as system:
        system.configure_lambda_a({settings.RESULTS_READY_PROBABILITY.name: "1"})
        yield system


def test_pipeline_run_prints_a_summary(unscheduled):
    """The run SUCCEEDED (exit 0) and its counts are those of the orders posted."""
    token = unscheduled.cli("token").stdout.strip()
    orders = [{"record_id": f"cli-{i}", "parameter_1": "p", "parameter_2": i} for i in range(3)]
    assert call(unscheduled, "POST", "/orders", token, orders)[0] == 201

    result = unscheduled.cli("pipeline", "run")

    summary = json.loads(result.stdout)
    assert (result.returncode, summary["status"]) == (0, "SUCCEEDED"), (summary, result.stderr)
    assert (summary["orders"], summary["batches"]) == (3, 1)
    assert summary["accepted"] + summary["rejected"] == 3
    assert summary["failed"] == summary["skipped"] == 0


def function_log_lines(system, logical_id_part):
    """Every line in the log group of the function whose template id contains the part."""
    logs = system.client("logs")
    (group,) = [
        g["logGroupName"]
        for g in logs.describe_log_groups()["logGroups"]
        if f"{logical_id_part}Logs" in g["logGroupName"]
    ]
    return [e["message"] for e in logs.filter_log_events(logGroupName=group)["events"]]


def test_lambda_b_logs_one_json_line_per_order_with_the_run_in_its_own_group(unscheduled):
    """As the template's LoggingConfig asks: JSON at INFO, into the function's own log group,
    so the runbooks' queries (docs/runbooks.md) find the same fields locally as in AWS."""
    token = unscheduled.cli("token").stdout.strip()
    orders = [{"record_id": f"log-{i}", "parameter_1": "p", "parameter_2": i} for i in range(2)]
    assert call(unscheduled, "POST", "/orders", token, orders)[0] == 201
    run = json.loads(unscheduled.cli("pipeline", "run").stdout)["execution"]

    lines = [
        json.loads(line)
        for line in function_log_lines(unscheduled, "ProcessFunction")
        if line.startswith("{")
    ]
    # (The other JSON lines are the metrics' EMF objects.)
    per_order = [
        line
        for line in lines
        if line.get("message") == "order" and line["record_id"].startswith("log-")
    ]
    assert sorted(line["record_id"] for line in per_order) == ["log-0", "log-1"], lines[-5:]
    for line in per_order:
        assert line["correlation_id"] == run
        assert line["outcome"] in ("accepted", "rejected")
        assert line["level"] == "INFO" and line["requestId"]


def test_sigint_stops_cleanly_and_frees_the_ports():
    """Stops a system of its own: the other tests' system must outlive them all."""
    with running_local() as system:
        ports = (system.port, system.aws_port, system.extension_port())
        assert system.stop() == 0
    assert [port for port in ports if not port_is_free(port)] == []
