"""Issue 17 over HTTP against `entrix local`, as `make run` starts it: orders belong to the token's
subject, resends are safe, an order can be amended and cancelled while pending and never after a
run claimed it or its result is recorded, `GET /orders` lists one's own orders, every refusal has
one error shape, and a token past its `exp` is refused while API Gateway still caches its Allow.

Every run here is started by the test (`entrix pipeline run`) on a system with no schedule and
results always ready, so what a run processes is decided by the test. Each test uses record_ids
of its own; a run processes every pending order of the system, so a test asserts only on its
own orders. Tables, buckets and topics are read through the system's AWS endpoint.

A run's claim cannot be timed over HTTP: the claimed state is made as Lambda B's claim makes it
(`claimed_by`, `claim_expires_at`), and its lease ended the same way; the races themselves are
tested on the adapters (tests/properties/test_order_lifecycle_races.py).
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from dataclasses import dataclass
from typing import Any

import jwt
import pytest

from entrix import settings
from tests.support.local_process import RESULTS_HANDLER, LocalProcess, running_local

pytestmark = pytest.mark.e2e

# The tokens' clock leeway (entrix.identity.LEEWAY_SECONDS): a handler refuses a token once now
# is past exp plus this.
LEEWAY_SECONDS = 30
ERROR_FIELDS = {"message", "code", "request_id"}
PROCESSED = ("accepted", "rejected")


# --- the system and what the tests read of it ----------------------------------------------


@dataclass
class Reply:
    status: int
    body: Any
    headers: dict[str, str]


class System:
    """One started `entrix local` with what these tests do to it and read from it."""

    def __init__(self, local: LocalProcess) -> None:
        self.local = local
        local.configure_lambda_a({settings.RESULTS_READY_PROBABILITY.name: "1"})
        self.dynamodb = local.client("dynamodb")
        (self.table,) = [n for n in self.dynamodb.list_tables()["TableNames"] if "Orders" in n]
        key_schema = self.dynamodb.describe_table(TableName=self.table)["Table"]["KeySchema"]
        (self.hash_key,) = [k["AttributeName"] for k in key_schema if k["KeyType"] == "HASH"]
        self.bucket = self._lambda_a_variable(settings.RESULTS_BUCKET_NAME.name)
        self.alerts: list[dict[str, Any]] = []
        self._alert_queue = self._subscribe_to_alerts()
        self._tokens: dict[str, str] = {}

    def _lambda_a_variable(self, name: str) -> str:
        lambda_ = self.local.client("lambda")
        (function,) = [
            f["FunctionName"]
            for f in lambda_.list_functions()["Functions"]
            if f["Handler"] == RESULTS_HANDLER
        ]
        configuration = lambda_.get_function_configuration(FunctionName=function)
        return str(configuration["Environment"]["Variables"][name])

    def _subscribe_to_alerts(self) -> str:
        """A queue of the test's own on every topic: each alert as published (JSON)."""
        sqs, sns = self.local.client("sqs"), self.local.client("sns")
        url = sqs.create_queue(QueueName=f"lifecycle-alerts-{uuid.uuid4().hex[:8]}")["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
        for topic in sns.list_topics()["Topics"]:
            sns.subscribe(TopicArn=topic["TopicArn"], Protocol="sqs", Endpoint=arn)
        return str(url)

    # HTTP

    def call(
        self,
        method: str,
        path: str,
        token: str | None = None,
        body: Any = None,
        raw: bytes | None = None,
        content_type: str = "application/json",
    ) -> Reply:
        data = raw if raw is not None else None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.local.port}{path}", data=data, method=method
        )
        request.add_header("Content-Type", content_type)
        if token is not None:
            request.add_header("Authorization", f"Bearer {token}")
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                status, headers, payload = response.status, response.headers, response.read()
        except urllib.error.HTTPError as error:
            status, headers, payload = error.code, error.headers, error.read()
        return Reply(
            status,
            json.loads(payload) if payload else None,
            {name.lower(): value for name, value in headers.items()},
        )

    def post(self, token: str, orders: list[dict[str, Any]]) -> Reply:
        return self.call("POST", "/orders", token, orders)

    def get(self, token: str, record_id: str) -> Reply:
        return self.call("GET", f"/orders/{urllib.parse.quote(record_id, safe='')}", token)

    def delete(self, token: str, record_id: str) -> Reply:
        return self.call("DELETE", f"/orders/{urllib.parse.quote(record_id, safe='')}", token)

    def listing(self, token: str, **query: Any) -> Reply:
        return self.call("GET", f"/orders?{urllib.parse.urlencode(query)}", token)

    def token(self, subject: str, expires_in: int = 3600) -> str:
        """A token of `subject`, signed by `entrix token --subject` (cached for an hour's)."""
        if expires_in == 3600 and subject in self._tokens:
            return self._tokens[subject]
        signed = self.local.cli("token", "--subject", subject, "--expires-in", str(expires_in))
        assert signed.returncode == 0, signed.stderr
        token = signed.stdout.strip()
        if expires_in == 3600:
            self._tokens[subject] = token
        return token

    # runs, the table, the results and the alerts

    def run(self) -> dict[str, Any]:
        """One pipeline run, started now (`entrix pipeline run`), to its end; its summary."""
        result = self.local.cli("pipeline", "run")
        summary = json.loads(result.stdout)
        assert (result.returncode, summary["status"]) == (0, "SUCCEEDED"), (summary, result.stderr)
        assert summary["failed"] == 0, summary
        return dict(summary)

    def item(self, owner: str, record_id: str) -> dict[str, Any] | None:
        """The stored item, exactly as DynamoDB holds it (typed attribute values), or None.

        The table is keyed on `<owner>#<record_id>`; the seed's was keyed on record_id alone, and
        is read so too, so that on it these tests fail at the behaviour they check."""
        key = f"{owner}#{record_id}" if self.hash_key == "order_key" else record_id
        found = self.dynamodb.get_item(
            TableName=self.table, Key={self.hash_key: {"S": key}}, ConsistentRead=True
        )
        return found.get("Item")

    def update(self, owner: str, record_id: str, expression: str, values: dict[str, Any]) -> None:
        key = f"{owner}#{record_id}" if self.hash_key == "order_key" else record_id
        self.dynamodb.update_item(
            TableName=self.table,
            Key={self.hash_key: {"S": key}},
            UpdateExpression=expression,
            ExpressionAttributeValues=values,
        )

    def claim(self, owner: str, record_id: str, run_id: str) -> None:
        """Mark the order taken by a run, as Lambda B's claim does
        (entrix.aws.order_results.OrderResults.claim), with a lease of an hour."""
        self.update(
            owner,
            record_id,
            "SET claimed_by = :run, claim_expires_at = :until",
            {":run": {"S": run_id}, ":until": {"N": str(int(time.time()) + 3600)}},
        )

    def end_lease(self, owner: str, record_id: str) -> None:
        """The claiming run's lease is over (it died): the claim no longer holds the order."""
        self.update(
            owner,
            record_id,
            "SET claim_expires_at = :ended",
            {":ended": {"N": str(int(time.time()) - 1)}},
        )

    def result_lines(self) -> list[dict[str, Any]]:
        """Every accepted result line in the results bucket."""
        s3 = self.local.client("s3")
        lines = []
        for page in s3.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix="results/"
        ):
            for entry in page.get("Contents", []):
                body = s3.get_object(Bucket=self.bucket, Key=entry["Key"])["Body"].read()
                lines.extend(json.loads(line) for line in body.decode().splitlines() if line)
        return lines

    def published_alerts(self) -> list[dict[str, Any]]:
        """Every alert published to the system's topics since this object was made."""
        sqs = self.local.client("sqs")
        while True:
            received = sqs.receive_message(
                QueueUrl=self._alert_queue, MaxNumberOfMessages=10, WaitTimeSeconds=0
            ).get("Messages", [])
            if not received:
                return self.alerts
            for message in received:
                envelope = json.loads(message["Body"])
                self.alerts.append(json.loads(envelope.get("Message", message["Body"])))
                sqs.delete_message(
                    QueueUrl=self._alert_queue, ReceiptHandle=message["ReceiptHandle"]
                )


@pytest.fixture(scope="module")
def system():
    """The system every test here shares but the listing's (which wants one of its own)."""
    with running_local(schedule_seconds=0, wide_shares=True) as local:
        yield System(local)


def fresh_ids(name: str, count: int = 1) -> list[str]:
    """record_ids no other test uses."""
    tag = uuid.uuid4().hex[:8]
    return [f"{name}-{tag}-{index}" for index in range(count)]


def order(record_id: str, parameter_1: str = "a", parameter_2: Any = 1) -> dict[str, Any]:
    return {"record_id": record_id, "parameter_1": parameter_1, "parameter_2": parameter_2}


def content(view: dict[str, Any]) -> tuple[Any, Any]:
    return view["parameter_1"], view["parameter_2"]


def lines_of(system: System, owner: str, record_id: str) -> list[dict[str, Any]]:
    return [
        line
        for line in system.result_lines()
        if line["record_id"] == record_id and line.get("owner", owner) == owner
    ]


def alerts_of(system: System, owner: str, record_id: str) -> list[dict[str, Any]]:
    return [
        alert
        for alert in system.published_alerts()
        if alert.get("record_id") == record_id and alert.get("owner", owner) == owner
    ]


def assert_error_shape(reply: Reply, status: int, code: str) -> None:
    """The one shape of every refusal: message, a machine-readable code and the request id
    (the one API Gateway gives the request, also in its x-amzn-RequestId header)."""
    assert reply.status == status, reply
    assert isinstance(reply.body, dict), reply
    assert set(reply.body) >= ERROR_FIELDS, reply
    assert isinstance(reply.body["message"], str) and reply.body["message"], reply
    assert reply.body["code"] == code, reply
    assert reply.body["request_id"] == reply.headers.get("x-amzn-requestid"), reply


def assert_result_recorded(view: dict[str, Any]) -> None:
    assert view["result_status"] in PROCESSED, view
    assert {"power", "result_run_id", "result_at"} <= set(view), view


# --- the five defects of the issue -----------------------------------------------------------


def test_another_client_cannot_read_an_order(system):
    """Defect 1: desk-b's GET of desk-a's order (processed, result included) is the 404 of an
    unknown id, and so is its DELETE: it cannot even learn that the order exists."""
    desk_a, desk_b = system.token("desk-a"), system.token("desk-b")
    (record_id,), (unknown,) = fresh_ids("secret"), fresh_ids("unknown")
    assert system.post(desk_a, [order(record_id, "a-secret", 7)]).status == 201
    system.run()
    mine = system.get(desk_a, record_id)
    assert mine.status == 200, mine
    assert_result_recorded(mine.body)

    theirs, nothing = system.get(desk_b, record_id), system.get(desk_b, unknown)

    assert theirs.status == 404, f"desk-b read desk-a's order: {theirs}"
    assert_error_shape(theirs, 404, "NOT_FOUND")
    assert {**theirs.body, "request_id": None, "record_id": None} == {
        **nothing.body,
        "request_id": None,
        "record_id": None,
    }
    assert theirs.body["record_id"] == record_id
    cancel, cancel_unknown = system.delete(desk_b, record_id), system.delete(desk_b, unknown)
    assert (cancel.status, cancel_unknown.status) == (404, 404), (cancel, cancel_unknown)
    assert cancel.body["message"] == cancel_unknown.body["message"]
    assert system.get(desk_a, record_id).body == mine.body


def test_another_client_cannot_overwrite_an_order(system):
    """Defect 2: desk-b's POST with desk-a's record_id stores desk-b's own order; desk-a's is
    untouched, to the byte."""
    desk_a, desk_b = system.token("desk-a"), system.token("desk-b")
    (record_id,) = fresh_ids("overwrite")
    assert system.post(desk_a, [order(record_id, "a", 1)]).status == 201
    before = system.get(desk_a, record_id).body

    theirs = system.post(desk_b, [order(record_id, "b", 2)])

    assert theirs.status == 201, theirs
    after = system.get(desk_a, record_id)
    assert content(after.body) == ("a", 1), f"desk-b overwrote desk-a's order: {after.body}"
    assert after.body == before
    assert theirs.body["created"] == [record_id], theirs.body
    assert system.item("desk-a", record_id)["parameter_1"] == {"S": "a"}
    assert system.item("desk-b", record_id)["parameter_1"] == {"S": "b"}


def test_a_resend_does_not_reset_a_processed_order(system):
    """Defect 3: a client retrying a POST after a timeout, once its orders have their results,
    gets 201 with every order `unchanged`: no result is thrown away, no order re-enters a run,
    and no accepted order gets a second line in S3 (nor a rejected one a second alert). Twenty
    orders, so that both results occur (all twenty alike: about 2 in a million)."""
    desk_a = system.token("desk-a")
    record_ids = fresh_ids("resend", 20)
    orders = [order(record_id, "a", index) for index, record_id in enumerate(record_ids)]
    assert system.post(desk_a, orders).status == 201
    system.run()
    processed = {record_id: system.get(desk_a, record_id).body for record_id in record_ids}
    for view in processed.values():
        assert_result_recorded(view)
    items = {record_id: system.item("desk-a", record_id) for record_id in record_ids}

    resent = system.post(desk_a, orders)

    assert resent.status == 201, resent
    reset = {r: system.get(desk_a, r).body for r in record_ids}
    assert reset == processed, "the resend reset processed orders"
    assert resent.body["unchanged"] == record_ids, resent.body
    assert resent.body["created"] == resent.body["amended"] == resent.body["refused"] == []
    assert {r: system.item("desk-a", r) for r in record_ids} == items

    system.run()

    assert {r: system.get(desk_a, r).body for r in record_ids} == processed
    statuses = {view["result_status"] for view in processed.values()}
    assert statuses == set(PROCESSED), statuses
    for record_id, view in processed.items():
        accepted = view["result_status"] == "accepted"
        assert len(lines_of(system, "desk-a", record_id)) == int(accepted), record_id
        assert len(alerts_of(system, "desk-a", record_id)) == int(not accepted), record_id


def test_a_change_to_an_order_a_run_has_claimed_is_refused_and_the_run_auctions_what_it_claimed(
    system,
):
    """Defect 4, the rule over HTTP: once a run has claimed an order, a POST with other content
    is 409 naming the order and `claimed`, and a DELETE too; the order keeps the content and the
    claim the run took. When that run's lease is over, the next run auctions the claimed content
    (the S3 line and the alert show it), and a change is still refused."""
    desk_a = system.token("desk-a")
    record_ids = fresh_ids("claimed", 10)
    assert system.post(desk_a, [order(r, "claimed", 1) for r in record_ids]).status == 201
    for record_id in record_ids:
        system.claim("desk-a", record_id, "run-in-progress")
    items = {r: system.item("desk-a", r) for r in record_ids}

    changed = system.post(desk_a, [order(r, "changed", 2) for r in record_ids])

    assert changed.status == 409, f"a change to a claimed order was not refused: {changed}"
    assert {r: system.item("desk-a", r) for r in record_ids} == items
    assert_error_shape(changed, 409, "ORDER_CONFLICT")
    assert changed.body["refused"] == [{"record_id": r, "state": "claimed"} for r in record_ids]
    assert changed.body["created"] == changed.body["amended"] == changed.body["unchanged"] == []
    cancel = system.delete(desk_a, record_ids[0])
    assert_error_shape(cancel, 409, "ORDER_CONFLICT")
    assert (cancel.body["record_id"], cancel.body["state"]) == (record_ids[0], "claimed")
    assert {r: system.item("desk-a", r) for r in record_ids} == items

    for record_id in record_ids:
        system.end_lease("desk-a", record_id)
    system.run()

    for record_id in record_ids:
        view = system.get(desk_a, record_id).body
        assert_result_recorded(view)
        assert content(view) == ("claimed", 1), view
        lines = lines_of(system, "desk-a", record_id)
        assert [(line["parameter_1"], line["parameter_2"]) for line in lines] == [
            ("claimed", 1)
        ] * (view["result_status"] == "accepted")
        again = system.post(desk_a, [order(record_id, "changed", 2)])
        assert_error_shape(again, 409, "ORDER_CONFLICT")
        assert again.body["refused"] == [{"record_id": record_id, "state": view["result_status"]}]
        assert system.get(desk_a, record_id).body == view


def test_a_change_or_a_cancel_after_the_result_is_refused_and_the_result_stays(system):
    """Defect 4 on a recorded result: a POST with other content and a DELETE are 409 naming the
    order and its result; the result, the content and the stored item stay, and the next run
    does not process the order again."""
    desk_a = system.token("desk-a")
    record_ids = fresh_ids("recorded", 6)
    assert system.post(desk_a, [order(r, "first", 1) for r in record_ids]).status == 201
    system.run()
    processed = {r: system.get(desk_a, r).body for r in record_ids}
    items = {r: system.item("desk-a", r) for r in record_ids}
    lines = {r: lines_of(system, "desk-a", r) for r in record_ids}

    changed = system.post(desk_a, [order(r, "second", 2) for r in record_ids])

    assert changed.status == 409, f"a change after the result was not refused: {changed}"
    assert {r: system.get(desk_a, r).body for r in record_ids} == processed
    assert_error_shape(changed, 409, "ORDER_CONFLICT")
    assert changed.body["refused"] == [
        {"record_id": r, "state": processed[r]["result_status"]} for r in record_ids
    ]
    for record_id in record_ids:
        cancel = system.delete(desk_a, record_id)
        assert_error_shape(cancel, 409, "ORDER_CONFLICT")
        assert (cancel.body["record_id"], cancel.body["state"]) == (
            record_id,
            processed[record_id]["result_status"],
        )
    assert {r: system.item("desk-a", r) for r in record_ids} == items

    system.run()

    assert {r: system.get(desk_a, r).body for r in record_ids} == processed
    assert {r: lines_of(system, "desk-a", r) for r in record_ids} == lines


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_an_expired_token_is_refused_while_the_gateway_still_caches_its_allow(system):
    """Defect 5, in real time: a token used once while valid has its Allow cached by API
    Gateway (300 s); once past its exp and the 30 s leeway, the same token is 401 with the
    error shape, and its order is not stored."""
    token = system.token("desk-expiring", expires_in=2)
    expires = jwt.decode(token, options={"verify_signature": False})["exp"]
    (used, late) = fresh_ids("expiring", 2)
    assert system.post(token, [order(used)]).status == 201  # valid: the Allow is cached now
    time.sleep(max(0.0, expires + LEEWAY_SECONDS + 2 - time.time()))

    refused = system.post(token, [order(late)])
    read = system.get(token, used)

    assert refused.status == 401, f"the expired token still works: {refused}"
    assert_error_shape(refused, 401, "UNAUTHORIZED")
    assert_error_shape(read, 401, "UNAUTHORIZED")
    fresh = system.token("desk-expiring")
    assert system.get(fresh, late).status == 404
    assert system.get(fresh, used).status == 200


# --- the lifecycle ----------------------------------------------------------------------------


def test_two_subjects_with_the_same_record_id_keep_separate_orders(system):
    """desk-a and desk-b post the same record_ids (some with the same content, which is still
    desk-b's own new order, not `unchanged`: desk-b learns nothing of desk-a's); each keeps its
    own order through a run, whose S3 lines and alerts name the owner."""
    desk_a, desk_b = system.token("desk-a"), system.token("desk-b")
    record_ids = fresh_ids("shared", 12)
    a_orders = [order(r, "a", index) for index, r in enumerate(record_ids)]
    b_orders = [order(r, "a" if index % 2 else "b", index) for index, r in enumerate(record_ids)]
    assert system.post(desk_a, a_orders).status == 201

    b_reply = system.post(desk_b, b_orders)

    assert b_reply.status == 201, b_reply
    for a_order, b_order in zip(a_orders, b_orders, strict=True):
        record_id = a_order["record_id"]
        a_view, b_view = system.get(desk_a, record_id).body, system.get(desk_b, record_id).body
        assert content(a_view) == content(a_order), f"desk-a's order is desk-b's: {a_view}"
        assert content(b_view) == content(b_order), b_view
    assert b_reply.body["created"] == record_ids, b_reply.body
    for owner in ("desk-a", "desk-b"):
        for record_id in record_ids:
            assert system.item(owner, record_id)["owner"] == {"S": owner}

    system.run()

    for owner, token, orders in (("desk-a", desk_a, a_orders), ("desk-b", desk_b, b_orders)):
        for sent in orders:
            view = system.get(token, sent["record_id"]).body
            assert_result_recorded(view)
            assert content(view) == content(sent)
            lines = lines_of(system, owner, sent["record_id"])
            alerts = alerts_of(system, owner, sent["record_id"])
            if view["result_status"] == "accepted":
                assert [(line["owner"], content(line)) for line in lines] == [
                    (owner, content(sent))
                ]
                assert alerts == []
            else:
                assert lines == []
                assert [alert["owner"] for alert in alerts] == [owner]


@pytest.mark.parametrize("state", ["pending", "claimed", "cancelled", "processed"])
def test_an_identical_resend_succeeds_without_change(system, state):
    """The same content again, in any state of the order: 201, listed as `unchanged`; the stored
    item is byte-identical (received_at included), and the state stays."""
    desk_a = system.token("desk-a")
    (record_id,) = fresh_ids(f"identical-{state}")
    sent = order(record_id, "same", 2.5)
    stored = system.post(desk_a, [sent])
    assert stored.status == 201, stored
    if state == "claimed":
        system.claim("desk-a", record_id, "run-in-progress")
    elif state == "cancelled":
        cancelled = system.delete(desk_a, record_id)
        assert cancelled.status == 204, cancelled
    elif state == "processed":
        system.run()
    before = system.get(desk_a, record_id).body
    item = system.item("desk-a", record_id)

    resent = system.post(desk_a, [dict(sent)])

    assert resent.status == 201, resent
    after = system.get(desk_a, record_id).body
    assert after["received_at"] == before["received_at"] == stored.body["received_at"]
    assert after == before
    assert resent.body["unchanged"] == [record_id], resent.body
    for outcome in ("created", "amended", "refused", "not_stored"):
        assert resent.body[outcome] == [], resent.body
    assert system.item("desk-a", record_id) == item


def test_an_order_is_amended_while_pending_and_the_run_auctions_the_amendment(system):
    """Other content for a pending order no run holds replaces it (201, `amended`); the next run
    auctions the amended content, once."""
    desk_a = system.token("desk-a")
    record_ids = fresh_ids("amend", 10)
    first = system.post(desk_a, [order(r, "first", 1) for r in record_ids])
    assert first.status == 201, first

    amended = system.post(desk_a, [order(r, "second", 2) for r in record_ids])

    assert amended.status == 201, amended
    assert amended.body["amended"] == record_ids, f"the reply does not say amended: {amended}"
    assert amended.body["created"] == amended.body["unchanged"] == amended.body["refused"] == []
    for record_id in record_ids:
        view = system.get(desk_a, record_id).body
        assert (content(view), view["result_status"]) == (("second", 2), "pending")
        assert view["received_at"] == amended.body["received_at"]

    system.run()

    for record_id in record_ids:
        view = system.get(desk_a, record_id).body
        assert_result_recorded(view)
        assert content(view) == ("second", 2)
        lines = [content(line) for line in lines_of(system, "desk-a", record_id)]
        alerts = alerts_of(system, "desk-a", record_id)
        if view["result_status"] == "accepted":
            assert (lines, alerts) == ([("second", 2)], [])
        else:
            assert (lines, len(alerts)) == ([], 1)


def test_a_pending_order_is_cancelled_and_the_run_skips_it(system):
    """DELETE of a pending order: 204 with no body (and again when repeated); the order is
    `cancelled`, the next run leaves it alone (no result, no S3 line, no alert) while it
    processes the order beside it, and other content for it is then refused."""
    desk_a = system.token("desk-a")
    cancelled_id, kept_id = fresh_ids("cancel", 2)
    assert system.post(desk_a, [order(cancelled_id), order(kept_id)]).status == 201

    cancel = system.delete(desk_a, cancelled_id)

    assert cancel.status == 204, f"a pending order could not be cancelled: {cancel}"
    assert cancel.body is None
    view = system.get(desk_a, cancelled_id).body
    assert view["result_status"] == "cancelled", view
    assert "cancelled_at" in view
    again = system.delete(desk_a, cancelled_id)
    assert (again.status, again.body) == (204, None)

    system.run()

    assert system.get(desk_a, cancelled_id).body == view
    assert_result_recorded(system.get(desk_a, kept_id).body)
    assert lines_of(system, "desk-a", cancelled_id) == []
    assert alerts_of(system, "desk-a", cancelled_id) == []
    changed = system.post(desk_a, [order(cancelled_id, "changed", 2)])
    assert_error_shape(changed, 409, "ORDER_CONFLICT")
    assert changed.body["refused"] == [{"record_id": cancelled_id, "state": "cancelled"}]


def test_a_request_mixing_outcomes_says_what_happened_to_each_order(system):
    """One POST with a new, an identical, an amended and a refused order: 409 in the error
    shape, every order listed under its outcome, the others applied; the same request again
    stores nothing twice (the new and amended ones come back `unchanged`)."""
    desk_a = system.token("desk-a")
    new, same, amend, done = fresh_ids("mixed", 4)
    assert system.post(desk_a, [order(done, "done", 1)]).status == 201
    system.run()
    done_view = system.get(desk_a, done).body
    assert system.post(desk_a, [order(same, "same", 1), order(amend, "old", 1)]).status == 201
    request = [
        order(new, "new", 3),
        order(same, "same", 1),
        order(amend, "amended", 4),
        order(done, "other", 5),
    ]

    mixed = system.post(desk_a, request)

    assert mixed.status == 409, mixed
    assert_error_shape(mixed, 409, "ORDER_CONFLICT")
    refused = [{"record_id": done, "state": done_view["result_status"]}]
    assert (
        mixed.body["created"],
        mixed.body["unchanged"],
        mixed.body["amended"],
        mixed.body["refused"],
        mixed.body["not_stored"],
    ) == ([new], [same], [amend], refused, [])
    assert content(system.get(desk_a, new).body) == ("new", 3)
    assert content(system.get(desk_a, amend).body) == ("amended", 4)
    assert system.get(desk_a, done).body == done_view
    items = {r: system.item("desk-a", r) for r in (new, same, amend, done)}

    again = system.post(desk_a, request)

    assert again.status == 409, again
    assert (again.body["created"], again.body["unchanged"], again.body["amended"]) == (
        [],
        [new, same, amend],
        [],
    )
    assert again.body["refused"] == refused
    assert {r: system.item("desk-a", r) for r in items} == items


# --- GET /orders ------------------------------------------------------------------------------


def page_through(system: System, token: str, **query: Any) -> tuple[list[dict[str, Any]], int]:
    """Every order of the listing, following next_cursor to its end; and the number of pages."""
    listed: list[dict[str, Any]] = []
    pages, cursor = 0, None
    while True:
        reply = system.listing(token, **query, **({"cursor": cursor} if cursor else {}))
        assert reply.status == 200, reply
        assert set(reply.body) == {"orders", "next_cursor"}, reply.body
        assert len(reply.body["orders"]) <= int(query.get("limit", 50))
        listed.extend(reply.body["orders"])
        pages += 1
        cursor = reply.body["next_cursor"]
        if cursor is None:
            return listed, pages
        assert isinstance(cursor, str) and cursor, reply.body
        assert pages <= 200, "the listing does not end"


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_the_listing_shows_only_the_callers_orders_and_pages_through_2500():
    """desk-a stores 2,500 orders (40 processed by a run, the rest pending, 5 of them then
    cancelled); desk-b stores 20 between them, half with desk-a's record_ids. desk-a's listing,
    100 a page, holds each of its orders exactly once, newest first, and nothing of desk-b's; a
    result_status filter holds exactly the orders in that state, in the same order; desk-b sees
    only its own, even with desk-a's cursor; a bad query is 400 in the error shape.

    On a system of its own: its 2,455 pending orders would slow every other test's runs. Slow
    (1 to 3 minutes on 2 cores): each page takes 2 to 3 s on moto, whose index queries read the
    whole table (16 per page), so the pending filter is checked on its first page only."""
    with running_local(schedule_seconds=0, wide_shares=True) as local:
        system = System(local)
        desk_a, desk_b = system.token("desk-a"), system.token("desk-b")
        record_ids = fresh_ids("listed", 2500)
        b_ids = record_ids[:10] + fresh_ids("listed-b", 10)
        for number, (owner, chunk) in enumerate(
            (
                (desk_a, record_ids[:40]),
                (desk_a, record_ids[40:1040]),
                (desk_b, b_ids[:10]),
                (desk_a, record_ids[1040:2040]),
                (desk_a, record_ids[2040:]),
                (desk_b, b_ids[10:]),
            )
        ):
            sent = [order(r, "b" if owner == desk_b else "a", len(chunk)) for r in chunk]
            reply = system.post(owner, sent)
            assert reply.status == 201, reply
            if number == 0:
                system.run()

        listed, pages = page_through(system, desk_a, limit=100)

        newest_first = record_ids[::-1]
        assert [o["record_id"] for o in listed] == newest_first
        assert pages >= 25
        assert {content(o)[0] for o in listed} == {"a"}
        status = {o["record_id"]: o["result_status"] for o in listed}
        assert {status[r] for r in record_ids[:40]} == set(PROCESSED)
        assert {status[r] for r in record_ids[40:]} == {"pending"}
        for record_id in record_ids[-5:]:
            assert system.delete(desk_a, record_id).status == 204
            status[record_id] = "cancelled"
        for result_status in ("accepted", "rejected", "cancelled"):
            filtered, _ = page_through(system, desk_a, limit=100, result_status=result_status)
            assert [o["record_id"] for o in filtered] == [
                r for r in newest_first if status[r] == result_status
            ], result_status
            assert {o["result_status"] for o in filtered} == {result_status}
        pending = system.listing(desk_a, limit=100, result_status="pending")
        assert [o["record_id"] for o in pending.body["orders"]] == [
            r for r in newest_first if status[r] == "pending"
        ][:100]
        assert pending.body["next_cursor"] is not None

        first_page = system.listing(desk_a)
        assert [o["record_id"] for o in first_page.body["orders"]] == newest_first[:50]
        cursor = first_page.body["next_cursor"]
        assert "desk-a" not in cursor and newest_first[49] not in cursor

        b_listed, _ = page_through(system, desk_b, limit=8)
        assert [o["record_id"] for o in b_listed] == b_ids[::-1]
        assert {content(o) for o in b_listed} == {("b", 10)}
        with_a_cursor = system.listing(desk_b, cursor=cursor)
        if with_a_cursor.status == 200:
            assert {content(o) for o in with_a_cursor.body["orders"]} <= {("b", 10)}
        else:
            assert_error_shape(with_a_cursor, 400, "BAD_REQUEST_BODY")

        for query in (
            {"limit": 0},
            {"limit": 101},
            {"limit": "ten"},
            {"result_status": "claimed"},
            {"cursor": "not a cursor"},
        ):
            assert_error_shape(system.listing(desk_a, **query), 400, "BAD_REQUEST_BODY")


# --- one error shape --------------------------------------------------------------------------


def test_every_refusal_has_the_error_shape(system):
    """{message, code, request_id} from API Gateway's own answers (401 with no token or a bad
    one, 403 for an unknown route, 413 for a body over 10 MB) and from the handlers (400, 404,
    409, 415)."""
    desk_a = system.token("desk-a")
    (unknown, claimed) = fresh_ids("shape", 2)
    assert system.post(desk_a, [order(claimed)]).status == 201
    system.claim("desk-a", claimed, "run-in-progress")
    other_key = jwt.encode(
        {"sub": "mallory", "exp": int(time.time()) + 3600}, "k" * 64, algorithm="HS256"
    )
    refusals = {
        "no token": (system.post(None, [order(unknown)]), 401, "UNAUTHORIZED"),
        "another key's token": (system.post(other_key, [order(unknown)]), 401, "UNAUTHORIZED"),
        "unknown route": (
            system.call("PUT", "/orders", desk_a, []),
            403,
            "MISSING_AUTHENTICATION_TOKEN",
        ),
        "body over 10 MB": (
            system.call("POST", "/orders", desk_a, raw=b" " * (10 * 1024 * 1024 + 1)),
            413,
            "REQUEST_TOO_LARGE",
        ),
        "unknown order": (system.get(desk_a, unknown), 404, "NOT_FOUND"),
        "unknown order's cancel": (system.delete(desk_a, unknown), 404, "NOT_FOUND"),
        "change of a claimed order": (
            system.post(desk_a, [order(claimed, "changed")]),
            409,
            "ORDER_CONFLICT",
        ),
        "bad JSON": (
            system.call("POST", "/orders", desk_a, raw=b"{not json"),
            400,
            "BAD_REQUEST_BODY",
        ),
        "bad listing query": (system.listing(desk_a, limit=0), 400, "BAD_REQUEST_BODY"),
        "not JSON content": (
            system.call("POST", "/orders", desk_a, raw=b"x", content_type="text/plain"),
            415,
            "UNSUPPORTED_MEDIA_TYPE",
        ),
    }
    wrong = {}
    for name, (reply, status, code) in refusals.items():
        try:
            assert_error_shape(reply, status, code)
        except AssertionError:
            wrong[name] = (reply.status, reply.body)
    assert wrong == {}
