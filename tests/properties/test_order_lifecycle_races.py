"""A client's request racing a results run, at every point between the run's AWS calls (issue 17).

The rules of an order's life must hold whatever lands first: an identical resend changes
nothing; an amend or a cancel goes through only before a run claims the order; once claimed, the
order is the run's until a run records it (refused as "claimed", whether or not the claim's lease
is over: the claim names the object its line goes into, `stored_in`), then refused as its
result; a run claims and records only the very version it read, so it never records a result on
content it did not auction (the issue's defect 4: a resend that replaced a claimed order got the
old content's result and left the pending index for good).

Everything runs against moto with the real adapters: orders are stored through the ingest
handler, Lambda A's adapter reads the pending index, and Lambda B's batch algorithm runs over the
orders table, results bucket and alert topic. The racing request (a POST through the ingest
handler, a DELETE through the cancel handler, with clients of their own) is one AWS call, made
right before one of the run's calls (by kind, and by order for the claims and records the run
makes in parallel) or after the last: each test below is one of those interleavings, so together
they are all of them. Each test checks the replies, the table, both indexes, every S3 line, then
lets the next run take what is still pending. A run whose record fails leaves its stored line for
the next run to record, its owner refused meanwhile.

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
from tests.support.inject import HttpFault
from tests.support.lambda_b_aws import REGION, LambdaBAws, lambda_b_aws
from tests.support.moto_orders import INDEX, OWNER, OWNER_INDEX, TABLE, order_key
from tests.support.results_once import every_result_once, stored_lines
from tests.support.stored_orders import pending_index, post_orders, stored_items
from tests.support.turns import Turns

BUCKET = "races"
LEASE_SECONDS = 1800
STORED_AT = 1_764_000_000.0
RUN_CLOCK = STORED_AT + 10
# A request this late finds the first run's claim over (the run outlived its lease).
LEASE_OVER = RUN_CLOCK + LEASE_SECONDS + 1
NEXT_RUN_CLOCK = LEASE_OVER + 10
RUN_1_KEY = "results/date=2026-11-25/run=run-1/batch-00001.jsonl"

RACED = {"record_id": "raced", "parameter_1": "original", "parameter_2": 1}
AMENDED = {**RACED, "parameter_1": "amended"}
AMENDED_LATER = {**RACED, "parameter_1": "amended later"}
BYSTANDER = {"record_id": "bystander", "parameter_1": "b", "parameter_2": 2}
NEWCOMER = {"record_id": "newcomer", "parameter_1": "n", "parameter_2": 3}

# The first run's AWS calls by phase: its batch is [raced, bystander], both accepted. Lambda B
# claims (and records) the orders in parallel: within a phase the calls come in any order.
PHASES = (
    ("BatchGetItem",),
    ("claim raced", "claim bystander"),
    ("GetObject",),
    ("PutObject",),
    ("record raced", "record bystander"),
)
RUN_CALLS = tuple(call for phase in PHASES for call in phase)
# Where the racer lands: before each of the run's calls, or after the last.
POSITIONS = [f"before {call}" for call in RUN_CALLS] + ["after the run"]


def _phase(call: str) -> int:
    return next(index for index, phase in enumerate(PHASES) if call in phase)


def _call_name(model: Any, params: dict[str, Any]) -> str:
    """A run's AWS call as RUN_CALLS names it."""
    return _update_name(params) if model.name == "UpdateItem" else str(model.name)


def _update_name(params: dict[str, Any]) -> str:
    """An UpdateItem by its verb and the order's record_id ("claim raced")."""
    request = _request(params)
    expression = request["UpdateExpression"]
    verb = next(
        verb
        for verb, starts in (
            ("claim", "SET claimed_by"),
            ("record", "SET result_status"),
            ("release", "REMOVE claimed_by"),
            ("move", "SET stored_in"),
        )
        if expression.startswith(starts)
    )
    return f"{verb} {request['Key']['order_key']['S'].partition('#')[2]}"


def _request(params: dict[str, Any]) -> dict[str, Any]:
    """A DynamoDB call's request, from botocore's request dict."""
    body = params["body"]
    return dict(json.loads(body.decode() if isinstance(body, bytes) else body))


@dataclass
class RaceAt:
    """Makes `racer` once, right before the run's call at `position` of POSITIONS (the last:
    once the run is over, by `after_run`); records the run's calls by name.

    Whichever of the run's pool threads makes the named call, the racer comes right before it,
    and only once every call POSITIONS names earlier has ended: in a parallel phase too, the
    raced order is claimed (recorded) before the racer exactly when its position says so.
    """

    position: str
    racer: Callable[[], tuple[int, Any]]
    calls: list[str] = field(default_factory=list)
    reply: tuple[int, Any] | None = None
    _ended: set[str] = field(default_factory=set)
    _condition: threading.Condition = field(default_factory=threading.Condition)
    _making: threading.local = field(default_factory=threading.local)  # each thread's call

    def register(self, client: Any) -> None:
        client.meta.events.register("before-call", self.before_call)
        client.meta.events.register("after-call", self.after_call)
        client.meta.events.register("after-call-error", self.after_call)

    def before_call(self, model: Any, params: dict[str, Any], **_: Any) -> None:
        name = self._making.name = _call_name(model, params)
        with self._condition:
            self.calls.append(name)
            if self.reply is not None or self.position != f"before {name}":
                return
            earlier = set(RUN_CALLS[: RUN_CALLS.index(name)])
            # A deadlock's detector, not a timing: the earlier calls are the run's own.
            assert self._condition.wait_for(lambda: earlier <= self._ended, timeout=60), self.calls
            self.reply = self.racer()

    def after_call(self, **_: Any) -> None:
        with self._condition:
            self._ended.add(self._making.name)
            self._condition.notify_all()

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
    made: LambdaBAws,
    run_id: str,
    clock: float,
    race: RaceAt | None = None,
    faults: Callable[[dict[str, Any]], None] | None = None,
) -> dict[str, int]:
    """One run over what the pending index holds, every order accepted: Lambda A's adapter
    reads the index, Lambda B's algorithm processes the batch with clients of its own (the
    racer's hooks on them, `faults` given them); its outcome counts (empty when nothing was
    pending)."""
    clients = {service: _client(service) for service in ("dynamodb", "s3", "sns")}
    if race is not None:
        for service_client in clients.values():
            race.register(service_client)
    if faults is not None:
        faults(clients)
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
    return [line for _, line in stored_lines(made.s3, BUCKET)]


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


def refused_state(request: str, reply: tuple[int, Any]) -> str:
    """The state a 409 reply to an amend ("post") or a cancel gives for the raced order."""
    status, body = reply
    assert (status, body["code"]) == (409, "ORDER_CONFLICT"), reply
    if request == "cancel":
        assert body["record_id"] == "raced", reply
        return str(body["state"])
    assert body["amended"] == [], reply
    ((refused,),) = [body["refused"]]
    assert refused["record_id"] == "raced", reply
    return str(refused["state"])


def assert_consistent(
    made: LambdaBAws, claims_left: frozenset[str] = frozenset()
) -> dict[str, dict[str, Any]]:
    """What holds after any run, whatever raced it: no claim is left (but on `claims_left`);
    the pending index holds exactly the pending orders, at the version stored; each processed
    order has exactly one line, of the version and result recorded, and a pending order one only
    in the object its claim named (tests/support/results_once.py); both indexes hold each order
    once. The items by record_id."""
    items = {item["record_id"]: item for item in stored_items(made.dynamodb, TABLE).values()}
    assert {r for r, item in items.items() if "claimed_by" in item} == claims_left
    assert pending_index(made.dynamodb, TABLE) == {
        item["order_key"]: item["version"]
        for item in items.values()
        if item["result_status"] == "pending"
    }
    assert owner_index(made) == {item["order_key"]: item["version"] for item in items.values()}
    for item in items.values():
        if item["result_status"] in ("pending", "cancelled"):
            assert "result_run_id" not in item and "power" not in item
    every_result_once(made.s3, BUCKET, items.values())
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


def _run_raced(made: LambdaBAws, race: RaceAt, changes_raced: bool = True) -> dict[str, int]:
    """The first run, raced (by a request that `changes_raced` order when it goes through); its
    outcome counts."""
    outcome = run_pending(made, "run-1", RUN_CLOCK, race)
    race.after_run()
    # Phase by phase (in a parallel phase, in any order), each call once, the batch read first.
    assert [_phase(call) for call in race.calls] == sorted(map(_phase, race.calls)), race.calls
    assert len(set(race.calls)) == len(race.calls) and race.calls[0] == "BatchGetItem"
    # A claimed order is recorded; an order the read showed amended or cancelled is not claimed.
    expected = set(RUN_CALLS)
    if changes_raced and race.position == "before BatchGetItem":
        expected -= {"claim raced", "record raced"}
    elif changes_raced and race.position == "before claim raced":
        expected -= {"record raced"}
    assert set(race.calls) == expected, race.calls
    return outcome


# The racer's clock. Once claimed, the order is the run's until a run records it: its claim
# names the object its line goes into (`stored_in`), and that refuses the owner's amend and
# cancel whether or not the claim's lease is live. So a live or an ended lease no longer
# changes the client's outcome, and the races come at LEASE_OVER only, the case where the claim
# alone would let the request in. (A live lease refusing is in the interleavings test below,
# and the lease's end changes what the next run does: test_a_run_whose_record_fails_...)
RACER_CLOCK = LEASE_OVER


@pytest.mark.parametrize("position", POSITIONS)
def test_an_amend_racing_a_run_goes_through_only_before_the_run_claims_the_order(
    position: str,
) -> None:
    """The amend comes with a new order beside it (which is stored whatever happens to the
    amend: a 409 applies the rest)."""
    with aws() as made:
        original_version = _store_raced_and_bystander()
        race = RaceAt(position, lambda: post([AMENDED, NEWCOMER], RACER_CLOCK))

        outcome = _run_raced(made, race)

        state = _raced_state(position)
        amended = state == "unclaimed"
        status, reply = race.reply or (0, None)
        assert reply["created"] == ["newcomer"], "the rest of the request is applied"
        if amended:
            assert (status, reply["amended"], reply["refused"]) == (201, ["raced"], []), reply
        else:
            expected = "claimed" if state == "claimed" else "accepted"
            assert refused_state("post", (status, reply)) == expected
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
            assert raced["version"] > original_version and "stored_in" not in raced
            assert order_key("raced") in pending_index(made.dynamodb, TABLE)
        else:
            assert (raced["result_status"], raced["parameter_1"]) == ("accepted", "original")
            assert (raced["version"], raced["result_run_id"]) == (original_version, "run-1")
        assert sorted(line["record_id"] for line in lines(made)) == (
            ["bystander"] if amended else ["bystander", "raced"]
        )

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
        assert refused_state("post", post([AMENDED_LATER], NEXT_RUN_CLOCK)) == "accepted"


@pytest.mark.parametrize("position", POSITIONS)
def test_an_identical_resend_racing_a_run_changes_nothing(position: str) -> None:
    with aws() as made:
        original_version = _store_raced_and_bystander()
        race = RaceAt(position, lambda: post([RACED], RACER_CLOCK))

        outcome = _run_raced(made, race, changes_raced=False)

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


@pytest.mark.parametrize("position", POSITIONS)
def test_a_cancel_racing_a_run_goes_through_only_before_the_run_claims_the_order(
    position: str,
) -> None:
    with aws() as made:
        original_version = _store_raced_and_bystander()
        race = RaceAt(position, lambda: delete("raced", RACER_CLOCK))

        outcome = _run_raced(made, race)

        state = _raced_state(position)
        cancelled = state == "unclaimed"
        status, reply = race.reply or (0, None)
        if cancelled:
            assert (status, reply) == (204, None)
        else:
            expected = "claimed" if state == "claimed" else "accepted"
            assert refused_state("cancel", (status, reply)) == expected
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
        assert sorted(line["record_id"] for line in lines(made)) == (
            ["bystander"] if cancelled else ["bystander", "raced"]
        )

        assert run_pending(made, "run-2", NEXT_RUN_CLOCK) == {}, "the run never processes it"
        if cancelled:
            assert delete("raced", NEXT_RUN_CLOCK) == (204, None), "a cancel is idempotent"
        else:
            assert refused_state("cancel", delete("raced", NEXT_RUN_CLOCK)) == "accepted"


def _fail_raced(*verbs: str) -> Callable[[dict[str, Any]], None]:
    """Faults for a run's clients: every attempt of its `verbs` UpdateItems of the raced order
    answered 500, below botocore's retries."""

    def faults(clients: dict[str, Any]) -> None:
        HttpFault(
            clients["dynamodb"],
            "UpdateItem",
            "InternalServerError",
            where=lambda params: _update_name(params) in {f"{verb} raced" for verb in verbs},
        )

    return faults


# After a run that stored the raced order's line but could not record it: the claim released,
# or left behind (its release failed too) and the next run comes while its lease lasts or after.
# Only with the claim left behind does the lease's end change what the next run does.
LEFT_BEHIND = {
    "released": ((), NEXT_RUN_CLOCK),
    "claim left, lease live": (("release",), RUN_CLOCK + 60),
    "claim left, lease over": (("release",), NEXT_RUN_CLOCK),
}


@pytest.mark.parametrize("left", LEFT_BEHIND)
def test_a_run_whose_record_fails_keeps_the_order_from_its_owner_until_a_run_records_it(
    left: str,
) -> None:
    """Its line is stored, so the order is settled only by recording that line: its owner's
    amend and cancel are refused as "claimed" (an identical resend changes nothing), and the
    next run that can claim it records the stored line's result, as the first run's."""
    also_failing, clock = LEFT_BEHIND[left]
    claim_left = bool(also_failing)
    with aws() as made:
        original_version = _store_raced_and_bystander()

        outcome = run_pending(made, "run-1", RUN_CLOCK, faults=_fail_raced("record", *also_failing))

        assert outcome == {"accepted": 1, "rejected": 0, "skipped": 0, "failed": 1}
        items = assert_consistent(made, frozenset({"raced"} if claim_left else ()))
        raced = items["raced"]
        assert (raced["result_status"], raced["stored_in"]) == ("pending", RUN_1_KEY)
        assert [line["record_id"] for line in lines(made)].count("raced") == 1
        assert refused_state("post", post([AMENDED], clock)) == "claimed"
        assert refused_state("cancel", delete("raced", clock)) == "claimed"
        assert post([RACED], clock)[1]["unchanged"] == ["raced"]

        next_run = run_pending(made, "run-2", clock)

        if claim_left and clock < RUN_CLOCK + LEASE_SECONDS:
            assert next_run == {"accepted": 0, "rejected": 0, "skipped": 1, "failed": 0}
            items = assert_consistent(made, frozenset({"raced"}))
            assert items["raced"]["result_status"] == "pending"
            assert refused_state("post", post([AMENDED], clock)) == "claimed"
            # The run after the lease's end settles it.
            next_run = run_pending(made, "run-3", NEXT_RUN_CLOCK)
        assert next_run == {"accepted": 1, "rejected": 0, "skipped": 0, "failed": 0}
        items = assert_consistent(made)
        raced = items["raced"]
        assert (raced["result_status"], raced["result_run_id"]) == ("accepted", "run-1")
        assert (raced["version"], raced["parameter_1"]) == (original_version, "original")
        objects = made.s3.list_objects_v2(Bucket=BUCKET)["Contents"]
        assert [o["Key"] for o in objects] == [RUN_1_KEY], "the first run's line, written once"
        assert refused_state("post", post([AMENDED], NEXT_RUN_CLOCK)) == "accepted"
        assert refused_state("cancel", delete("raced", NEXT_RUN_CLOCK)) == "accepted"


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
# Per run: 1 read of the orders, 3 claims, 2 object reads and 2 puts (results/, rejections/),
# 1 alert request, 3 records; the client: one call per order. A schedule this long covers them.
SCHEDULE_LENGTH = 28
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
    the version the runs read, recorded by one run with that run's verdict, its one line (under
    results/ or rejections/) written by that run only; an amend or cancel goes through only
    before either run claimed the order, and then no run processes it; once claimed, it is
    refused as "claimed" until recorded, then as the result recorded; an identical resend always
    succeeds and changes nothing; the pending index holds exactly what still waits. The runs
    claim and record in parallel: their pool threads take their run's turns."""
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
                expected_lines = [(item["result_run_id"], outcome)]
            else:
                expected_lines = []
            assert [
                (line["run_id"], line["status"])
                for line in written
                if line["record_id"] == record_id
            ] == expected_lines, "a line only for a recorded order, by the run recording it"
            status, reply = replies.get(record_id, (None, None))
            event(f"{request}: {status}, {outcome}")
            if request == "none":
                assert outcome in ("accepted", "rejected"), "both runs read it; one records it"
            elif request == "identical":
                assert (status, reply["unchanged"]) == (201, [record_id]), reply
                assert outcome in ("accepted", "rejected")
            elif status == 409:
                # Once a run claimed it, the order is that run's until recorded: refused as
                # claimed, then as what the run recorded.
                assert outcome in ("accepted", "rejected"), "refused only once a run holds it"
                state = reply["state"] if request == "cancel" else reply["refused"][0]["state"]
                assert state in ("claimed", outcome), reply
                event(f"{request} refused as {state}")
            elif request == "amend":
                assert (status, reply["amended"]) == (201, [record_id]), reply
                assert (outcome, item["parameter_1"]) == ("pending", "amended")
                assert item["version"] > original["version"] and "stored_in" not in item
            else:
                assert (status, outcome) == (204, "cancelled"), reply
                assert item["version"] == original["version"]
