"""TTL sweeping, pipeline runs and schedules, the notification tap, template freshness."""

import json
import os
import threading
import time

import boto3
import pytest
from moto import mock_aws

from entrix.local import synth
from entrix.local.notifications import NotificationTap
from entrix.local.pipeline import (
    PipelineError,
    Scheduler,
    find_state_machine,
    scheduled_event,
    start_run,
    summarize,
    wait_for_summary,
)
from entrix.local.ttl import TtlSweeper, sweep

REGION = "eu-west-1"
ROLE = "arn:aws:iam::123456789012:role/sfn"


def client(service):
    return boto3.client(service, region_name=REGION)


@mock_aws
def test_sweep_deletes_only_expired_items():
    dynamodb = client("dynamodb")
    dynamodb.create_table(
        TableName="t",
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    items = {
        "expired": {"N": "999"},
        "exactly-now": {"N": "1000"},
        "future": {"N": "1001"},
        "not-a-number": {"S": "5"},
    }
    for key, expires in items.items():
        dynamodb.put_item(TableName="t", Item={"id": {"S": key}, "expires_at": expires})
    dynamodb.put_item(TableName="t", Item={"id": {"S": "no-ttl"}})
    assert sweep(dynamodb, "t", "expires_at", now=1000.5) == 2
    left = {i["id"]["S"] for i in dynamodb.scan(TableName="t")["Items"]}
    assert left == {"future", "not-a-number", "no-ttl"}


@mock_aws
def test_sweeper_thread_sweeps_tables_with_a_ttl_attribute():
    dynamodb = client("dynamodb")
    dynamodb.create_table(
        TableName="t",
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    dynamodb.put_item(TableName="t", Item={"id": {"S": "old"}, "expires_at": {"N": "1"}})
    sweeper = TtlSweeper(dynamodb, {"t": "expires_at", "no-ttl-table": None}, interval=0.05)
    assert sweeper.tables == {"t": "expires_at"}
    sweeper.start()
    try:
        deadline = time.monotonic() + 10
        while dynamodb.scan(TableName="t")["Items"] and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        sweeper.stop()
    assert dynamodb.scan(TableName="t")["Items"] == []


def test_summary_reads_the_outcome_counts():
    execution = {
        "name": "run-1",
        "status": "SUCCEEDED",
        "output": json.dumps(
            {"accepted": 2, "rejected": 1, "failed": 0, "unalerted": 1, "extra": "x"}
        ),
    }
    assert summarize(execution) == {
        "execution": "run-1",
        "status": "SUCCEEDED",
        "accepted": 2,
        "rejected": 1,
        "failed": 0,
        "skipped": 0,
        "unalerted": 1,
    }


def test_summary_of_a_failed_run_says_why():
    summary = summarize(
        {"name": "run-2", "status": "FAILED", "error": "NotReady", "cause": "no results"}
    )
    assert summary["status"] == "FAILED"
    assert (summary["accepted"], summary["rejected"], summary["failed"]) == (0, 0, 0)
    assert (summary["error"], summary["cause"]) == ("NotReady", "no results")


def test_scheduled_event_looks_like_eventbridge():
    event = scheduled_event(REGION, "123456789012", "arn:aws:events:eu-west-1:123456789012:rule/r")
    assert event["detail-type"] == "Scheduled Event"
    assert event["source"] == "aws.events"
    assert event["resources"] == ["arn:aws:events:eu-west-1:123456789012:rule/r"]


def _machine(sfn, name="m"):
    definition = {
        "StartAt": "Count",
        "States": {
            "Count": {
                "Type": "Pass",
                "Result": {"accepted": 3, "rejected": 1, "failed": 0, "skipped": 0},
                "End": True,
            }
        },
    }
    return sfn.create_state_machine(name=name, definition=json.dumps(definition), roleArn=ROLE)[
        "stateMachineArn"
    ]


def test_runs_get_unique_names_and_are_summarized():
    with mock_aws(config={"stepfunctions": {"execute_state_machine": True}}):
        sfn = client("stepfunctions")
        arn = _machine(sfn)
        assert find_state_machine(sfn) == arn
        first = start_run(sfn, arn, {}, "manual")
        second = start_run(sfn, arn, {}, "manual")
        assert first != second
        summary = wait_for_summary(sfn, second)
    assert summary["status"] == "SUCCEEDED"
    assert (summary["accepted"], summary["rejected"]) == (3, 1)


def test_find_state_machine_refuses_none_or_several():
    with mock_aws():
        sfn = client("stepfunctions")
        with pytest.raises(PipelineError, match="is `entrix local` running"):
            find_state_machine(sfn)
        _machine(sfn, "a")
        _machine(sfn, "b")
        with pytest.raises(PipelineError, match="more than one"):
            find_state_machine(sfn)


def test_scheduler_starts_runs_on_its_interval_and_reports_them():
    reports = []
    done = threading.Event()

    def report(summary):
        reports.append(summary)
        if len(reports) >= 2:
            done.set()

    with mock_aws(config={"stepfunctions": {"execute_state_machine": True}}):
        sfn = client("stepfunctions")
        arn = _machine(sfn)
        scheduler = Scheduler(
            sfn, [(arn, None)], 0.05, report, region=REGION, account_id="123456789012"
        )
        scheduler.start()
        try:
            assert done.wait(20)
        finally:
            scheduler.stop()
        names = [e["name"] for e in sfn.list_executions(stateMachineArn=arn)["executions"]]
    assert len(set(names)) == len(names) >= 2
    assert all(name.startswith("scheduled-") for name in names)
    assert reports[0]["accepted"] == 3


@mock_aws
def test_notification_tap_shows_each_published_message_as_slack_text():
    shown = []
    sns, sqs = client("sns"), client("sqs")
    topic = sns.create_topic(Name="alerts")["TopicArn"]
    tap = NotificationTap(sns, sqs, [topic], lambda name, text: shown.append((name, text)))
    tap.start()
    try:
        sns.publish(
            TopicArn=topic, Message=json.dumps({"text": "Order r1 was rejected", "record_id": "r1"})
        )
        sns.publish(TopicArn=topic, Message="plain words")
        deadline = time.monotonic() + 10
        while len(shown) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        tap.stop()
    assert sorted(shown) == [
        ("alerts", "Order r1 was rejected\nrecord_id: r1"),
        ("alerts", "plain words"),
    ]


def _touch(path, mtime):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("{}")
    os.utime(path, (mtime, mtime))


def test_fresh_template_is_the_newest_one_not_older_than_the_sources(tmp_path):
    _touch(tmp_path / "cdk.json", 100)
    _touch(tmp_path / "app.py", 100)
    _touch(tmp_path / "infra" / "stacks" / "service.py", 200)
    assert synth.fresh_template(tmp_path) is None
    _touch(tmp_path / "cdk.out" / "Entrix.template.json", 150)
    assert synth.fresh_template(tmp_path) is None  # older than infra/stacks/service.py
    _touch(tmp_path / ".entrix" / "cdk.out" / "Entrix.template.json", 250)
    assert (
        synth.fresh_template(tmp_path) == tmp_path / ".entrix" / "cdk.out" / "Entrix.template.json"
    )
    _touch(tmp_path / "cdk.out" / "Entrix.template.json", 300)
    assert synth.fresh_template(tmp_path) == tmp_path / "cdk.out" / "Entrix.template.json"


def test_cdk_context_is_cdk_json_then_cdk_context_json(tmp_path):
    (tmp_path / "cdk.json").write_text(json.dumps({"app": "x", "context": {"a": 1, "b": 1}}))
    assert synth.cdk_context(tmp_path) == {"a": 1, "b": 1}
    (tmp_path / "cdk.context.json").write_text(json.dumps({"b": 2}))
    assert synth.cdk_context(tmp_path) == {"a": 1, "b": 2}


def test_project_root_is_found_from_a_subfolder(tmp_path):
    (tmp_path / "cdk.json").write_text("{}")
    (tmp_path / "app.py").write_text("")
    (tmp_path / "docs" / "deep").mkdir(parents=True)
    assert synth.project_root(tmp_path / "docs" / "deep") == tmp_path.resolve()


def test_ensure_template_synthesizes_only_when_stale(tmp_path, monkeypatch):
    _touch(tmp_path / "cdk.json", 100)
    _touch(tmp_path / "app.py", 100)
    made = []

    def fake_synthesize(root):
        made.append(root)
        path = root / ".entrix" / "cdk.out" / "Entrix.template.json"
        _touch(path, 200)
        return path

    monkeypatch.setattr(synth, "synthesize", fake_synthesize)
    path, synthesized = synth.ensure_template(tmp_path)
    assert synthesized
    assert made == [tmp_path]
    assert synth.ensure_template(tmp_path) == (path, False)
    assert made == [tmp_path]
