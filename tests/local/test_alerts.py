"""What people see of the local system: its console and `entrix alerts`.

A small template in the CDK's shape: a topic, and a state machine that publishes a per-order
rejection and a run's digest, each with the message attributes the pipeline sends, and ends with
a run's counts. The system runs in this process; a run is started as `entrix pipeline run`
starts one, from outside the console.
"""

import argparse
import json
import time

import pytest

from entrix.local import commands
from entrix.local.harness import deployment_of, in_process
from entrix.local.pipeline import start_run
from tests.local.templates import _role

DIGEST_TEXT = "1 of 2 orders were rejected in auction run {}; the full list: s3://b/rejections/"
REJECTION_TEXT = "Order r-1 of desk-a was rejected in auction run {} (power offered: 5)."
COUNTS = {"orders": 2, "accepted": 1, "rejected": 1, "skipped": 0, "failed": 0, "batches": 1}


def _publish(message, status):
    """An SnsPublish state of the topic, with `status` and `run` message attributes."""
    return {
        "Type": "Task",
        "Resource": "arn:aws:states:::sns:publish",
        "Parameters": {
            "TopicArn": "${Topic}",
            "Message": message,
            "MessageAttributes": {
                "status": {"DataType": "String", "StringValue": status},
                "run": {"DataType": "String", "StringValue.$": "$$.Execution.Name"},
            },
        },
        "ResultPath": None,
    }


def _template():
    rejection = {
        "text.$": f"States.Format('{REJECTION_TEXT}', $$.Execution.Name)",
        "status": "rejected",
        "record_id": "r-1",
    }
    digest = {
        "text.$": f"States.Format('{DIGEST_TEXT}', $$.Execution.Name)",
        "status": "rejection_digest",
        "examples": [{"record_id": "r-1", "owner": "desk-a", "power": 5}],
    }
    definition = {
        "StartAt": "Rejection",
        "States": {
            "Rejection": {**_publish(rejection, "rejected"), "Next": "Digest"},
            "Digest": {**_publish(digest, "rejection_digest"), "Next": "Totals"},
            "Totals": {"Type": "Pass", "Result": COUNTS, "End": True},
        },
    }
    return {
        "Resources": {
            "Role": _role(),
            "Topic": {"Type": "AWS::SNS::Topic", "Properties": {}},
            "Machine": {
                "Type": "AWS::StepFunctions::StateMachine",
                "Properties": {
                    "DefinitionString": json.dumps(definition),
                    "DefinitionSubstitutions": {"Topic": {"Ref": "Topic"}},
                    "RoleArn": {"Fn::GetAtt": ["Role", "Arn"]},
                },
            },
        }
    }


def _until(condition, what):
    """Wait for `condition()`: a guard against a hang, not a speed check."""
    deadline = time.monotonic() + 60
    while not condition():
        assert time.monotonic() < deadline, f"still waiting for {what}"
        time.sleep(0.1)


@pytest.fixture
def local(tmp_path):
    path = tmp_path / "Entrix.template.json"
    path.write_text(json.dumps(_template()))
    shown = []
    with in_process(path, show_notification=lambda topic, text: shown.append(text)) as system:
        yield system, shown


def _alerts(system, capsys, limit=50):
    args = argparse.Namespace(host="127.0.0.1", aws_port=system.options.aws_port, limit=limit)
    assert commands.alerts(args) == 0
    return capsys.readouterr().out


def test_the_console_shows_a_runs_digest_and_summary_not_its_per_order_rejections(local, capsys):
    system, shown = local
    runs = []
    system.show_run = runs.append
    sfn = system.endpoint.client("stepfunctions")
    (machine,) = deployment_of(system).state_machines.values()
    run = start_run(sfn, machine, {"source": "entrix.cli"}, "manual").rsplit(":", 1)[-1]

    _until(lambda: runs and shown, "the run's summary and its digest")

    assert runs == [{"execution": run, "status": "SUCCEEDED", **COUNTS}]
    (digest,) = shown
    assert digest.splitlines() == [
        DIGEST_TEXT.format(run),
        "status: rejection_digest",
        "examples 1: record_id: r-1, owner: desk-a, power: 5",
    ]
    # The per-order rejection was published (the client's) but is not the console's.
    assert not any("Order r-1 of desk-a" in text for text in shown)

    listed = _alerts(system, capsys)

    lines = listed.splitlines()
    headline = f"[slack #{_topic(system)}] {DIGEST_TEXT.format(run)}"
    assert any(line.endswith(headline) for line in lines)
    assert "    examples 1: record_id: r-1, owner: desk-a, power: 5" in lines
    (summary,) = [line for line in lines if "[pipeline] " in line]
    assert json.loads(summary.split("[pipeline] ", 1)[1]) == runs[0]
    assert "Order r-1" not in listed


def test_entrix_alerts_prints_the_newest_entries_oldest_first(local, capsys):
    system, shown = local
    assert _alerts(system, capsys) == "no alerts or runs yet\n"
    sfn = system.endpoint.client("stepfunctions")
    (machine,) = deployment_of(system).state_machines.values()
    first = start_run(sfn, machine, {}, "manual").rsplit(":", 1)[-1]
    _until(lambda: f'"execution": "{first}"' in _alerts(system, capsys), "the first run")
    second = start_run(sfn, machine, {}, "manual").rsplit(":", 1)[-1]
    _until(lambda: f'"execution": "{second}"' in _alerts(system, capsys), "the second run")
    _until(lambda: len(shown) == 2, "both digests")

    everything = _alerts(system, capsys)
    assert everything.index(DIGEST_TEXT.format(first)) < everything.index(
        DIGEST_TEXT.format(second)
    )
    newest = _alerts(system, capsys, limit=1)
    assert second in newest and first not in newest


def _topic(system):
    (topic,) = deployment_of(system).topics
    return topic.rsplit(":", 1)[-1]
