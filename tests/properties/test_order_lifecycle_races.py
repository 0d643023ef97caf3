"""A client's request racing a results run, at every point between the run's AWS calls (issue 17).

The rules of an order's life must hold whatever lands first: an identical resend changes
nothing; an amend or a cancel goes through only while no live run holds the order; a run claims
and records only the very version it read, so it never records a result on content it did not
auction (the issue's defect 4: a resend that replaced a claimed order got the old content's
result and left the pending index for good).

Everything runs against moto with the real adapters: orders are stored through the ingest
handler, Lambda A's adapter reads the pending index, and Lambda B's batch algorithm runs over the
orders table, results bucket and alert topic. The racing request (a POST through the ingest
handler, a DELETE through the cancel handler, with clients of their own) is one AWS call, made
right before one of the run's calls or after the last: each test below is one of those
interleavings, so together they are all of them. The racer comes while the run's claim lasts, or
once it is over (a run that outlived its lease). Each test checks the replies, the table, every
S3 line and the pending index, then lets the next run take what is still pending.

Two POSTs of one record_id are two conditional puts: one lands first; both orders are tested.
Last, two overlapping runs and the orders' owner resending, amending and cancelling, every AWS
call of theirs taking its turn in a schedule Hypothesis chooses (tests/support/turns.py).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import boto3
import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st
from moto import mock_aws

from entrix.auction.batch_item import ResultsBatch
from entrix.auction.processing import BatchProcessor
from entrix.aws.alerts import AlertTopic
from entrix.aws.order_results import OrderResults
from entrix.aws.orders_table import OrdersTable
from entrix.aws.results_store import ResultsStore
from entrix.handlers import cancel
from tests.support.api_events import api_event
from tests.support.lambda_b_aws import REGION, LambdaBAws, lambda_b_aws
from tests.support.moto_orders import INDEX, OWNER, OWNER_INDEX, TABLE, order_key
from tests.support.stored_orders import pending_index, post_orders, stored_items
from tests.support.turns import Turns

BUCKET = "races"
LEASE_SECONDS = 1800
STORED_AT = 1_764_000_000.0
RUN_CLOCK = STORED_AT + 10
# A request this late finds the first run's claim over (the run outlived its lease).
LEASE_OVER = RUN_CLOCK + LEASE_SECONDS + 1
NEXT_RUN_CLOCK = LEASE_OVER + 10

RACED = {"record_id": "raced", "parameter_1": "original", "parameter_2": 1}
AMENDED = {**RACED, "parameter_1": "amended"}
BYSTANDER = {"record_id": "bystander", "parameter_1": "b", "parameter_2": 2}
NEWCOMER = {"record_id": "newcomer", "parameter_1": "n", "parameter_2": 3}

# The first run's AWS calls, in order: its batch is [raced, bystander], both accepted.
RUN_CALLS = (
    "claim raced",
    "claim bystander",
    "PutObject",
    "record raced",
    "record bystander",
)
# Where the racer lands: before each of the run's calls, or after the last.
POSITIONS = [f"before {call}" for call in RUN_CALLS] + ["after the run"]


def _call_name(model: Any, params: dict[str, Any]) -> str:
    """A run's AWS call as RUN_CALLS names it."""
    if model.name != "UpdateItem":
        return str(model.name)
    body = params["body"]
    request = json.loads(body.decode() if isinstance(body, bytes) else body)
    verb = "claim" if "SET claimed_by" in request["UpdateExpression"] else "record"
    record_id = request["Key"]["order_key"]["S"].partition("#")[2]
    return f"{verb} {record_id}"


@dataclass
class RaceAt:
    """Makes `racer` once, right before the run's call at `position` of POSITIONS (the last:
    once the run is over, by `after_run`); records the run's calls by name."""

    position: str
    racer: Callable[[], tuple[int, Any]]
    calls: list[str] = field(default_factory=list)
    reply: tuple[int, Any] | None = None

    def before_call(self, model: Any, params: dict[str, Any], **_: Any) -> None:
        name = _call_name(model, params)
        if self.reply is None and self.position == f"before {name}":
            self.reply = self.racer()
        self.calls.append(name)

    def after_run(self) -> tuple[int, Any]:
        if self.reply is None:
            assert self.position == "after the run", self.calls
            self.reply = self.racer()
        return self.reply


@contextmanager
def aws() -> Iterator[LambdaBAws]:
    """Inside moto: the orders table with its indexes, the results bucket and the alert topic."""
    with mock_aws():
        yield lambda_b_aws(BUCKET)


def _client(service: str) -> Any:
    return boto3.client(service, region_name=REGION)


def run_pending(
    made: LambdaBAws, run_id: str, clock: float, race: RaceAt | None = None
) -> dict[str, int]:
    """One run over what the pending index holds, every order accepted: Lambda A's adapter
    reads the index, Lambda B's algorithm processes the batch with clients of its own (the
    racer's hook on them); its outcome counts (empty when nothing was pending)."""
    clients = {service: _client(service) for service in ("dynamodb", "s3", "sns")}
    if race is not None:
        for service_client in clients.values():
            service_client.meta.events.register("before-call", race.before_call)
    waiting = list(OrderResults(_client("dynamodb"), TABLE).pending_orders(INDEX))
    if not waiting:
        return {}
    batch = ResultsBatch.model_validate(
        {
            "run_id": run_id,
            "results_key": f"results/date=2026-11-25/run={run_id}/batch-00001.jsonl",
            "orders": [
                {"order_key": o.order_key, "version": o.version, "status": "accepted", "power": 7}
                for o in waiting
            ],
        }
    )
    processor = BatchProcessor(
        orders=OrderResults(clients["dynamodb"], TABLE),
        results=ResultsStore(clients["s3"], BUCKET),
        alerts=AlertTopic(clients["sns"], made.topic_arn),
        lease_seconds=LEASE_SECONDS,
    )
    return processor.process(batch, clock)


def lines(made: LambdaBAws) -> list[dict[str, Any]]:
    """Every line of every results object."""
    found = []
    for entry in made.s3.list_objects_v2(Bucket=BUCKET).get("Contents", []):
        body = made.s3.get_object(Bucket=BUCKET, Key=entry["Key"])["Body"].read()
        found.extend(json.loads(line) for line in body.splitlines())
    return found


def owner_index(made: LambdaBAws) -> dict[str, str]:
    """What the owner-orders index holds: the version of each order key in it."""
    return pending_index(made.dynamodb, TABLE, OWNER_INDEX)


def post(orders: list[dict[str, Any]], now: float) -> tuple[int, Any]:
    """OWNER's POST /orders at `now`, through the ingest handler with a client of its own."""
    return post_orders(_client("dynamodb"), TABLE, orders, OWNER, now)


def delete(record_id: str, now: float) -> tuple[int, Any]:
    """OWNER's DELETE /orders/{record_id} at `now`, through the cancel handler."""
    reply = cancel.handle(
        api_event(OWNER, pathParameters={"record_id": record_id}),
        OrdersTable(_client("dynamodb"), TABLE),
        now,
    )
    return reply["statusCode"], json.loads(reply["body"] or "null")


def assert_consistent(made: LambdaBAws) -> dict[str, dict[str, Any]]:
    """What holds after any run, whatever raced it: no claim is left; the pending index holds
    exactly the pending orders, at the version stored; every recorded order's counting line
    (its run's) is of the version recorded, with its content and owner; both indexes hold
    each order once. The items by record_id."""
    items = {item["record_id"]: item for item in stored_items(made.dynamodb, TABLE).values()}
    assert all("claimed_by" not in item for item in items.values()), "no claim left behind"
    assert pending_index(made.dynamodb, TABLE) == {
        item["order_key"]: item["version"]
        for item in items.values()
        if item["result_status"] == "pending"
    }
    assert owner_index(made) == {item["order_key"]: item["version"] for item in items.values()}
    for item in items.values():
        if item["result_status"] in ("pending", "cancelled"):
            assert "result_run_id" not in item and "power" not in item
        if item["result_status"] != "accepted":
            continue
        (counting,) = [
            line
            for line in lines(made)
            if line["record_id"] == item["record_id"] and line["run_id"] == item["result_run_id"]
        ]
        assert counting["version"] == item["version"]
        assert counting["owner"] == item["owner"] == OWNER
        assert (counting["parameter_1"], counting["result_at"]) == (
            item["parameter_1"],
            item["result_at"],
        )
    return items


def _store_raced_and_bystander() -> str:
    """The raced order and a bystander, one request; the raced order's version."""
    status, reply = post([RACED, BYSTANDER], STORED_AT)
    assert (status, reply["created"]) == (201, ["raced", "bystander"]), reply
    return str(stored_items(_client("dynamodb"), TABLE)[order_key("raced")]["version"])


def _raced_state(position: str) -> str:
    """The raced order's state at `position`: unclaimed, claimed, or recorded."""
    index = POSITIONS.index(position)
    if index <= RUN_CALLS.index("claim raced"):
        return "unclaimed"
    return "claimed" if index <= RUN_CALLS.index("record raced") else "recorded"


# (position, the racer's clock) for every distinct case: the lease matters only while claimed.
RACES = [
    pytest.param(position, clock, id=f"{position}, {lease}")
    for position in POSITIONS
    for clock, lease in ((RUN_CLOCK, "claim live"), (LEASE_OVER, "claim over"))
    if lease == "claim live" or _raced_state(position) == "claimed"
]


def _run_raced(made: LambdaBAws, race: RaceAt) -> dict[str, int]:
    """The first run, raced; its outcome counts."""
    outcome = run_pending(made, "run-1", RUN_CLOCK, race)
    race.after_run()
    # The run makes the calls the positions name, in order (a skipped order is not recorded).
    assert race.calls == [call for call in RUN_CALLS if call in race.calls]
    assert RUN_CALLS[0] in race.calls
    return outcome


@pytest.mark.parametrize(("position", "clock"), RACES)
def test_an_amend_racing_a_run_goes_through_only_while_no_live_run_holds_the_order(
    position: str, clock: float
) -> None:
    """The amend comes with a new order beside it (which is stored whatever happens to the
    amend: a 409 applies the rest)."""
    with aws() as made:
        original_version = _store_raced_and_bystander()
        race = RaceAt(position, lambda: post([AMENDED, NEWCOMER], clock))

        outcome = _run_raced(made, race)

        state = _raced_state(position)
        amended = state == "unclaimed" or (state == "claimed" and clock == LEASE_OVER)
        status, reply = race.reply or (0, None)
        assert reply["created"] == ["newcomer"], "the rest of the request is applied"
        if amended:
            assert (status, reply["amended"], reply["refused"]) == (201, ["raced"], []), reply
        else:
            assert status == 409, reply
            assert (reply["code"], reply["amended"]) == ("ORDER_CONFLICT", [])
            expected = "claimed" if state == "claimed" else "accepted"
            assert reply["refused"] == [{"record_id": "raced", "state": expected}]
        assert outcome == {
            "accepted": 1 if amended else 2,
            "rejected": 0,
            "skipped": 1 if amended else 0,
            "failed": 0,
        }
        items = assert_consistent(made)
        raced = items["raced"]
        if amended:
            # Defect 4: never the original's result on the amended content; it waits instead.
            assert (raced["result_status"], raced["parameter_1"]) == ("pending", "amended")
            assert raced["version"] > original_version
            assert order_key("raced") in pending_index(made.dynamodb, TABLE)
        else:
            assert (raced["result_status"], raced["parameter_1"]) == ("accepted", "original")
            assert (raced["version"], raced["result_run_id"]) == (original_version, "run-1")
        run_1_lines = {(line["record_id"], line["version"]) for line in lines(made)}
        if state == "unclaimed":
            assert run_1_lines == {("bystander", items["bystander"]["version"])}
        else:
            # Claimed before the amend: the run auctioned the original and wrote its line
            # before recording, so the line stays, of the original's version; the table's
            # result (none yet) says it does not count.
            assert run_1_lines == {
                ("raced", original_version),
                ("bystander", items["bystander"]["version"]),
            }

        next_run = run_pending(made, "run-2", NEXT_RUN_CLOCK)

        assert next_run == {
            "accepted": 2 if amended else 1,
            "rejected": 0,
            "skipped": 0,
            "failed": 0,
        }
        items = assert_consistent(made)
        assert {r: item["result_status"] for r, item in items.items()} == dict.fromkeys(
            ("raced", "bystander", "newcomer"), "accepted"
        )
        raced = items["raced"]
        if amended:
            assert (raced["parameter_1"], raced["result_run_id"]) == ("amended", "run-2")
        else:
            assert (raced["parameter_1"], raced["result_run_id"]) == ("original", "run-1")


@pytest.mark.parametrize(("position", "clock"), RACES)
def test_an_identical_resend_racing_a_run_changes_nothing(position: str, clock: float) -> None:
    with aws() as made:
        original_version = _store_raced_and_bystander()
        race = RaceAt(position, lambda: post([RACED], clock))

        outcome = _run_raced(made, race)

        status, reply = race.reply or (0, None)
        assert (status, reply["unchanged"]) == (201, ["raced"]), reply
        assert reply["created"] == reply["amended"] == reply["refused"] == []
        assert outcome == {"accepted": 2, "rejected": 0, "skipped": 0, "failed": 0}
        items = assert_consistent(made)
        assert (items["raced"]["version"], items["raced"]["result_run_id"]) == (
            original_version,
            "run-1",
        )
        assert sorted(line["record_id"] for line in lines(made)) == ["bystander", "raced"]
        assert run_pending(made, "run-2", NEXT_RUN_CLOCK) == {}, "nothing left to process"


@pytest.mark.parametrize(("position", "clock"), RACES)
def test_a_cancel_racing_a_run_goes_through_only_while_no_live_run_holds_the_order(
    position: str, clock: float
) -> None:
    with aws() as made:
        original_version = _store_raced_and_bystander()
        race = RaceAt(position, lambda: delete("raced", clock))

        outcome = _run_raced(made, race)

        state = _raced_state(position)
        cancelled = state == "unclaimed" or (state == "claimed" and clock == LEASE_OVER)
        status, reply = race.reply or (0, None)
        if cancelled:
            assert (status, reply) == (204, None)
        else:
            expected = "claimed" if state == "claimed" else "accepted"
            assert status == 409, reply
            assert (reply["code"], reply["record_id"], reply["state"]) == (
                "ORDER_CONFLICT",
                "raced",
                expected,
            )
        assert outcome == {
            "accepted": 1 if cancelled else 2,
            "rejected": 0,
            "skipped": 1 if cancelled else 0,
            "failed": 0,
        }
        items = assert_consistent(made)
        raced = items["raced"]
        assert raced["result_status"] == ("cancelled" if cancelled else "accepted")
        assert raced["version"] == original_version
        assert order_key("raced") not in pending_index(made.dynamodb, TABLE)
        recorded_lines = {line["record_id"] for line in lines(made)}
        # A run that claimed before the cancel (and outlived its lease) wrote its line before
        # recording: it stays, with no result in the table to count it.
        assert recorded_lines == ({"bystander"} if state == "unclaimed" else {"bystander", "raced"})

        assert run_pending(made, "run-2", NEXT_RUN_CLOCK) == {}, "the run never processes it"
        assert delete("raced", NEXT_RUN_CLOCK)[0] == (204 if cancelled else 409)


@pytest.mark.parametrize("second_lands", ["before the first", "after the first"])
@pytest.mark.parametrize("content", ["different", "identical"])
@pytest.mark.parametrize("stored_before", [False, True], ids=["new id", "pending order"])
def test_two_posts_of_one_record_id(second_lands: str, content: str, stored_before: bool) -> None:
    """Both POSTs succeed; the later-landing one's content is stored (an identical one changes
    nothing), once, with the index entries of the version stored."""
    first = {"record_id": "twice", "parameter_1": "first", "parameter_2": 1}
    second = first if content == "identical" else {**first, "parameter_1": "second"}
    with aws() as made:
        if stored_before:
            assert post([{**first, "parameter_1": "earlier"}], STORED_AT)[0] == 201
        replies: dict[str, tuple[int, Any]] = {}

        def second_post(**_: Any) -> None:
            if "second" not in replies:
                replies["second"] = post([second], STORED_AT + 2)

        first_client = _client("dynamodb")
        event = "before-call" if second_lands == "before the first" else "after-call"
        first_client.meta.events.register(f"{event}.dynamodb.PutItem", second_post)
        replies["first"] = post_orders(first_client, TABLE, [first], OWNER, STORED_AT + 1)

        landed = ["second", "first"] if second_lands == "before the first" else ["first", "second"]
        earlier, later = (replies[name] for name in landed)
        assert earlier[0] == later[0] == 201, replies
        assert earlier[1]["amended" if stored_before else "created"] == ["twice"], replies
        if content == "identical":
            assert later[1]["unchanged"] == ["twice"], replies
        else:
            assert later[1]["amended"] == ["twice"], replies
        items = assert_consistent(made)
        (item,) = items.values()
        kept = {"first": first, "second": second}[
            landed[0] if content == "identical" else landed[1]
        ]
        assert (item["parameter_1"], item["result_status"]) == (kept["parameter_1"], "pending")

        assert run_pending(made, "run-1", NEXT_RUN_CLOCK)["accepted"] == 1
        assert_consistent(made)
        (line,) = lines(made)
        assert line["parameter_1"] == kept["parameter_1"]


# --- Two runs and a client, their calls in any order -----------------------------------------

ORDERS = ("a", "b", "c")
RUNS = ("run-0", "run-1")
CLIENT = "client"
# Per run: 3 claims, 1 put, 1 alert request, 3 records; the client: one call per order.
SCHEDULE_LENGTH = 22
REQUESTS = ("amend", "cancel", "identical", "none")


def _order(record_id: str, parameter_1: str = "original") -> dict[str, Any]:
    return {"record_id": record_id, "parameter_1": parameter_1, "parameter_2": 2.1}


@settings(max_examples=40, deadline=None)
@given(
    statuses=st.tuples(
        *[st.lists(st.sampled_from(["accepted", "rejected"]), min_size=3, max_size=3)] * 2
    ),
    requests=st.tuples(*[st.sampled_from(REQUESTS)] * len(ORDERS)),
    schedule=st.lists(
        st.sampled_from((*RUNS, CLIENT)), min_size=SCHEDULE_LENGTH, max_size=SCHEDULE_LENGTH
    ),
)
def test_two_runs_and_a_client_in_any_interleaving_keep_every_order_rule(
    statuses: tuple[list[str], list[str]], requests: tuple[str, ...], schedule: list[str]
) -> None:
    """Both runs read the same pending orders (the same versions); meanwhile their owner
    resends, amends or cancels some. Whatever the order of all their calls: a recorded order is
    the version the runs read, recorded by one run with that run's verdict, its line (if
    accepted) written by that run only; an amend or cancel goes through only before either run
    claimed the order, and then no run processes it; an identical resend always succeeds and
    changes nothing; the pending index holds exactly what still waits."""
    with aws() as made:
        now = time.time()
        status, _ = post([_order(r) for r in ORDERS], now)
        assert status == 201
        read = {item["record_id"]: item for item in stored_items(made.dynamodb, TABLE).values()}

        turns = Turns(schedule)
        clients = {service: _client(service) for service in ("dynamodb", "s3", "sns")}
        client_dynamodb = _client("dynamodb")
        for each in (*clients.values(), client_dynamodb):
            turns.register(each)
        processor = BatchProcessor(
            orders=OrderResults(clients["dynamodb"], TABLE),
            results=ResultsStore(clients["s3"], BUCKET),
            alerts=AlertTopic(clients["sns"], made.topic_arn),
            lease_seconds=LEASE_SECONDS,
        )
        outcomes: dict[str, dict[str, int]] = {}
        replies: dict[str, tuple[int, Any]] = {}
        errors: list[BaseException] = []

        def run_batch(run: str) -> None:
            batch = ResultsBatch.model_validate(
                {
                    "run_id": run,
                    "results_key": f"results/date=2026-11-25/run={run}/batch-00001.jsonl",
                    "orders": [
                        {
                            "order_key": read[r]["order_key"],
                            "version": read[r]["version"],
                            "status": verdict,
                            "power": 7,
                        }
                        for r, verdict in zip(ORDERS, statuses[RUNS.index(run)], strict=True)
                    ],
                }
            )
            outcomes[run] = processor.process(batch, time.time())

        def client_requests() -> None:
            for record_id, request in zip(ORDERS, requests, strict=True):
                at = time.time()
                if request == "identical":
                    replies[record_id] = post_orders(
                        client_dynamodb, TABLE, [_order(record_id)], OWNER, at
                    )
                elif request == "amend":
                    replies[record_id] = post_orders(
                        client_dynamodb, TABLE, [_order(record_id, "amended")], OWNER, at
                    )
                elif request == "cancel":
                    reply = cancel.handle(
                        api_event(OWNER, pathParameters={"record_id": record_id}),
                        OrdersTable(client_dynamodb, TABLE),
                        at,
                    )
                    replies[record_id] = (reply["statusCode"], json.loads(reply["body"] or "null"))

        def thread(name: str, work: Callable[[], None]) -> threading.Thread:
            def guarded() -> None:
                try:
                    work()
                except BaseException as error:  # reported by the main thread
                    errors.append(error)
                finally:
                    turns.finished(name)

            return threading.Thread(target=guarded, name=name)

        threads = [thread(run, lambda run=run: run_batch(run)) for run in RUNS]
        threads.append(thread(CLIENT, client_requests))
        for each_thread in threads:
            each_thread.start()
        try:
            for each_thread in threads:
                each_thread.join(timeout=60)
        finally:
            turns.abandon()  # its threads end with the example (tests/support/turns.py)
            for each_thread in threads:
                each_thread.join(timeout=60)
        assert not any(each_thread.is_alive() for each_thread in threads)
        assert not errors, errors

        items = assert_consistent(made)
        written = lines(made)
        assert all(line["version"] == read[line["record_id"]]["version"] for line in written)
        recorded_counts = sum(o["accepted"] + o["rejected"] for o in outcomes.values())
        assert recorded_counts == sum(
            1 for item in items.values() if item["result_status"] in ("accepted", "rejected")
        ), "each recorded order is counted by the run that recorded it"
        for record_id, request in zip(ORDERS, requests, strict=True):
            item, original = items[record_id], read[record_id]
            outcome = item["result_status"]
            if outcome in ("accepted", "rejected"):
                run = RUNS.index(item["result_run_id"])
                assert outcome == statuses[run][ORDERS.index(record_id)]
                assert (item["version"], item["parameter_1"]) == (original["version"], "original")
                expected_lines = [item["result_run_id"]] if outcome == "accepted" else []
            else:
                expected_lines = []
            assert [
                line["run_id"] for line in written if line["record_id"] == record_id
            ] == expected_lines, "a line only for an accepted order, by the run recording it"
            status, reply = replies.get(record_id, (None, None))
            event(f"{request}: {status}, {outcome}")
            if request == "none":
                assert outcome in ("accepted", "rejected"), "both runs read it; one records it"
            elif request == "identical":
                assert (status, reply["unchanged"]) == (201, [record_id]), reply
                assert outcome in ("accepted", "rejected")
            elif status == 409:
                assert outcome in ("accepted", "rejected"), "refused only once a run holds it"
                state = reply["state"] if request == "cancel" else reply["refused"][0]["state"]
                assert state in ("claimed", "accepted", "rejected")
            elif request == "amend":
                assert (status, reply["amended"]) == (201, [record_id]), reply
                assert (outcome, item["parameter_1"]) == ("pending", "amended")
                assert item["version"] > original["version"]
            else:
                assert (status, outcome) == (204, "cancelled"), reply
                assert item["version"] == original["version"]
