"""Correlation ids on log records and EMF metrics (entrix.telemetry)."""

from __future__ import annotations

import json
import logging
import re
import subprocess
import sys
import time

import pytest

from entrix import telemetry


def _emf_lines(output: str) -> list[dict]:
    return [json.loads(line) for line in output.splitlines() if '"_aws"' in line]


def test_publish_writes_one_emf_record_with_every_count(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", "Entrix-Ingest")
    monkeypatch.delenv("POWERTOOLS_METRICS_DISABLED", raising=False)

    telemetry.publish("ingest", OrdersReceived=3, OrdersStored=3, OrdersNotStored=0)

    (record,) = _emf_lines(capsys.readouterr().out)
    (directive,) = record["_aws"]["CloudWatchMetrics"]
    assert directive["Namespace"] == telemetry.NAMESPACE
    assert sorted(directive["Dimensions"][0]) == ["function", "service"]
    assert {m["Name"]: m["Unit"] for m in directive["Metrics"]} == {
        "OrdersReceived": "Count",
        "OrdersStored": "Count",
        "OrdersNotStored": "Count",
    }
    assert (record["service"], record["function"]) == ("ingest", "Entrix-Ingest")
    assert (record["OrdersReceived"], record["OrdersStored"], record["OrdersNotStored"]) == (
        [3.0],
        [3.0],
        [0.0],
    )


def test_an_age_in_seconds_is_published_in_seconds(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("POWERTOOLS_METRICS_DISABLED", raising=False)
    telemetry.publish("results", OldestPendingOrderAgeSeconds=82_800, ResultsTaken=2)
    (record,) = _emf_lines(capsys.readouterr().out)
    (directive,) = record["_aws"]["CloudWatchMetrics"]
    assert {m["Name"]: m["Unit"] for m in directive["Metrics"]} == {
        "OldestPendingOrderAgeSeconds": "Seconds",
        "ResultsTaken": "Count",
    }


def test_disabled_metrics_write_nothing_and_do_not_pile_up(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "true")
    telemetry.publish("process", ResultsAccepted=1)
    telemetry.publish("process", ResultsAccepted=1)
    assert _emf_lines(capsys.readouterr().out) == []

    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "false")
    telemetry.publish("process", ResultsAccepted=1)
    (record,) = _emf_lines(capsys.readouterr().out)
    assert record["ResultsAccepted"] == [1.0], "only this invocation's value"


def test_records_logged_inside_correlated_carry_the_id(caplog: pytest.LogCaptureFixture) -> None:
    log = logging.getLogger("entrix.some.module")
    with caplog.at_level(logging.INFO):
        log.info("before")
        with telemetry.correlated("req-1"):
            log.info("inside")
            with telemetry.correlated("run-7"):
                logging.getLogger("other").warning("nested")
            log.info("inside again")
        log.info("after")
    ids = {r.getMessage(): getattr(r, "correlation_id", None) for r in caplog.records}
    assert ids == {
        "before": None,
        "inside": "req-1",
        "nested": "run-7",
        "inside again": "req-1",
        "after": None,
    }


def test_no_id_means_no_attribute(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO), telemetry.correlated(None):
        logging.getLogger("x").info("plain")
    assert not hasattr(caplog.records[0], "correlation_id")


@pytest.mark.parametrize(
    ("event", "expected"),
    [
        ({"requestContext": {"requestId": "abc-123"}}, "abc-123"),
        ({"requestContext": {}}, None),
        ({"requestContext": "nonsense"}, None),
        ({}, None),
        (None, None),
        ({"requestContext": {"requestId": 7}}, None),
    ],
)
def test_the_api_request_id_is_read_defensively(event: object, expected: str | None) -> None:
    assert telemetry.api_request_id(event) == expected


def test_importing_telemetry_does_not_load_powertools() -> None:
    code = "import sys, entrix.telemetry; print('aws_lambda_powertools' in sys.modules)"
    completed = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert completed.stdout.strip() == "False"


def test_publishing_does_not_load_powertools_either() -> None:
    code = (
        "import sys, entrix.telemetry as t; t.publish('ingest', OrdersStored=1); "
        "print('aws_lambda_powertools' in sys.modules)"
    )
    completed = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert completed.stdout.splitlines()[-1] == "False"
    (record,) = _emf_lines(completed.stdout)
    assert record["OrdersStored"] == [1.0]


@pytest.mark.parametrize(
    "counts",
    [
        {"OrdersReceived": 3, "OrdersStored": 3, "OrdersNotStored": 0},
        {"RequestsRefused": 1},
        {f"Metric{index}": index for index in range(50)},
    ],
)
def test_the_record_is_byte_for_byte_the_one_powertools_writes(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, counts: dict[str, int]
) -> None:
    """Powertools' Metrics, as this module used it before, is the reference EMF writer."""
    from aws_lambda_powertools import Metrics
    from aws_lambda_powertools.metrics import MetricUnit

    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", "Entrix-Ingest")
    monkeypatch.delenv("POWERTOOLS_METRICS_DISABLED", raising=False)
    metrics = Metrics(namespace=telemetry.NAMESPACE, service="ingest")
    metrics.add_dimension(telemetry.FUNCTION_DIMENSION, "Entrix-Ingest")
    for name, value in counts.items():
        metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)
    metrics.flush_metrics()
    telemetry.publish("ingest", **counts)

    theirs, ours = capsys.readouterr().out.splitlines()
    timestamp = re.compile(r'"Timestamp":\d+')
    assert timestamp.sub("", ours) == timestamp.sub("", theirs)
    assert abs(json.loads(ours)["_aws"]["Timestamp"] - time.time() * 1000) < 60_000


@pytest.mark.parametrize(
    ("counts", "complaint"),
    [
        ({}, "1 to 100 metrics"),
        ({f"M{index}": 1 for index in range(telemetry.MAX_METRICS + 1)}, "1 to 100 metrics"),
        ({"x" * 256: 1}, "not usable"),
        ({"function": 1}, "not usable"),
        ({"Flag": True}, "must count with an int"),
    ],
)
def test_records_cloudwatch_would_refuse_are_not_written(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    counts: dict[str, int],
    complaint: str,
) -> None:
    monkeypatch.delenv("POWERTOOLS_METRICS_DISABLED", raising=False)
    with pytest.raises(ValueError, match=complaint):
        telemetry.publish("ingest", **counts)
    assert capsys.readouterr().out == ""
