"""TTL sweeping, pipeline runs, schedules and the run watcher, the notification tap, template
freshness."""

import json
import os
import time

import boto3
import pytest
from moto import mock_aws

from entrix.local import synth
from entrix.local.notifications import NotificationTap
from entrix.local.pipeline import (
    PipelineError,
    RunWatcher,
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


def test_summary_of_a_failed_lambda_task_gives_its_message_not_its_stack_trace():
    payload = {
        "errorMessage": "RequestId: r-1 Error: Task timed out after 300.00 seconds",
        "errorType": "Sandbox.Timedout",
        "stackTrace": ['  File "/var/task/entrix/handlers/results.py", line 1, in handler\n'],
    }
    summary = summarize(
        {
            "name": "run-3",
            "status": "FAILED",
            "error": "Sandbox.Timedout",
            "cause": json.dumps(payload),
        }
    )
    assert summary["error"] == "Sandbox.Timedout"
    assert summary["cause"] == "RequestId: r-1 Error: Task timed out after 300.00 seconds"


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


def test_scheduler_starts_runs_on_its_interval():
    with mock_aws(config={"stepfunctions": {"execute_state_machine": True}}):
        sfn = client("stepfunctions")
        arn = _machine(sfn)
        reports = []
        scheduler = Scheduler(
            sfn, [(arn, None)], 0.05, reports.append, region=REGION, account_id="123456789012"
        )
        scheduler.start()
        try:
            deadline = time.monotonic() + 20
            while len(sfn.list_executions(stateMachineArn=arn)["executions"]) < 2:
                assert time.monotonic() < deadline, "no second run"
                time.sleep(0.05)
        finally:
            scheduler.stop()
        names = [e["name"] for e in sfn.list_executions(stateMachineArn=arn)["executions"]]
    assert len(set(names)) == len(names) >= 2
    assert all(name.startswith("scheduled-") for name in names)
    assert reports == [], "the RunWatcher reports runs; the scheduler, runs it could not start"


def test_scheduler_reports_a_run_it_could_not_start():
    reports = []
    with mock_aws(config={"stepfunctions": {"execute_state_machine": True}}):
        missing = "arn:aws:states:eu-west-1:123456789012:stateMachine:gone"
        scheduler = Scheduler(
            client("stepfunctions"),
            [(missing, None)],
            60,
            reports.append,
            region=REGION,
            account_id="123456789012",
        )
        scheduler.tick()
    (report,) = reports
    assert report["status"] == "ERROR" and "gone" in report["error"]


def test_run_watcher_reports_each_ended_run_once_however_it_was_started():
    reports = []
    with mock_aws(config={"stepfunctions": {"execute_state_machine": True}}):
        sfn = client("stepfunctions")
        arn = _machine(sfn)
        watcher = RunWatcher(sfn, [arn], reports.append, interval=0.05)
        watcher.start()
        try:
            manual = start_run(sfn, arn, {}, "manual")
            scheduled = start_run(sfn, arn, {}, "scheduled")
            deadline = time.monotonic() + 20
            while len(reports) < 2:
                assert time.monotonic() < deadline, reports
                time.sleep(0.05)
            time.sleep(0.3)  # the watcher looks at the same ended runs again
        finally:
            watcher.stop()
    assert sorted(report["execution"] for report in reports) == sorted(
        execution.rsplit(":", 1)[-1] for execution in (manual, scheduled)
    )
    assert all(report["status"] == "SUCCEEDED" and report["accepted"] == 3 for report in reports)


@mock_aws
def test_notification_tap_shows_what_slack_gets_not_the_per_order_rejections():
    shown = []
    sns, sqs = client("sns"), client("sqs")
    topic = sns.create_topic(Name="alerts")["TopicArn"]
    tap = NotificationTap(sns, sqs, [topic], lambda name, text: shown.append((name, text)))
    tap.start()

    def publish(message, status):
        attributes = {"status": {"DataType": "String", "StringValue": status}}
        sns.publish(TopicArn=topic, Message=message, MessageAttributes=attributes)

    try:
        publish(json.dumps({"text": "Order r1 was rejected", "record_id": "r1"}), "rejected")
        publish(json.dumps({"text": "1 of 3 orders were rejected", "run": "r-1"}), "digest")
        publish("plain words", "batch_failed")
        deadline = time.monotonic() + 10
        while len(shown) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.3)  # time for a rejection that got through to show too
    finally:
        tap.stop()
    assert sorted(shown) == [
        ("alerts", "1 of 3 orders were rejected\nrun: r-1"),
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

    def fake_synthesize(root, extra_context=None):
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
