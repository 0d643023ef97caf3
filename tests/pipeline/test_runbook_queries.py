"""The runbooks' Logs Insights queries against what a pipeline run really logs.

A run of the synthesized state machine with the real handlers (moto, in this process) is
captured line by line, each line as Lambda's JSON log format writes it (the record's message,
level, logger and every attribute the handler added). Every field a query in docs/runbooks.md
names, and every value it compares a field with, must be in those lines: the doc and the code
cannot drift apart.
"""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path
from typing import Any

import pytest

from entrix.auction.outcomes import OUTCOMES
from entrix.auction.processing import REASONS
from entrix.handlers.process import ORDER_LOG_MESSAGE
from entrix.local.lambda_runner import lambda_json
from tests.pipeline.conftest import ACCEPT, READY, REJECT, Pipeline
from tests.support.moto_orders import OWNER

RUNBOOKS = Path(__file__).resolve().parents[2] / "docs" / "runbooks.md"
QUERY = re.compile(r"```logs-insights\n(.*?)```", re.DOTALL)
# Logs Insights' own fields (@timestamp, @log, ...) are not the handlers'.
FIELD = re.compile(r"(?<![\w@.])([A-Za-z_][\w.]*)")
COMPARED = re.compile(r"([A-Za-z_][\w.]*)\s*!?=\s*\"([^\"]*)\"")
KEYWORDS = {"and", "or", "not", "in", "like", "as", "by", "asc", "desc"}
# A line of an order per run this size at most: 100,000 orders log at most 40 MB a run.
MAX_ORDER_LINE_BYTES = 400
REQUEST_ID = "8f5b1a58-5e57-4f1c-9a4e-0a1b2c3d4e5f"


def runbook_queries() -> list[str]:
    return QUERY.findall(RUNBOOKS.read_text())


def named_fields(query: str) -> set[str]:
    """The fields a query filters, groups, sorts or shows (not its own aliases)."""
    aliases = set(re.findall(r"\bas\s+([A-Za-z_]\w*)", query))
    fields = set()
    for command in re.split(r"\n\s*\|", query):
        verb, _, rest = command.strip().partition(" ")
        if verb == "stats":
            rest = rest.partition(" by ")[2]
        elif verb == "limit":
            continue
        without_text = re.sub(r"\"[^\"]*\"", "", rest)
        without_calls = re.sub(r"[A-Za-z_]\w*\(", "(", without_text)
        fields |= {name for name in FIELD.findall(without_calls) if name not in KEYWORDS}
    return fields - aliases


def compared_values(query: str) -> set[tuple[str, str]]:
    """(field, value) of each comparison with a text, but placeholders such as "<run id>"."""
    return {(f, v) for f, v in COMPARED.findall(query) if not v.startswith("<")}


def test_the_query_parser_finds_fields_values_and_skips_aliases() -> None:
    query = (
        'fields @timestamp, correlation_id\n| filter message = "order" and owner = "<owner>"\n'
        "| stats count(*) as orders by outcome, reason\n| sort orders desc\n| limit 5"
    )
    assert named_fields(query) == {"correlation_id", "message", "owner", "outcome", "reason"}
    assert compared_values(query) == {("message", "order")}


@pytest.fixture
def run_lines(
    pipeline: Pipeline,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> tuple[list[dict[str, Any]], str]:
    """Every line the handlers logged in one run of three orders (two accepted, one rejected,
    in two batches), as Lambda's JSON format writes them, and what they printed (the metrics:
    this harness runs the handlers without routing their output to their log groups)."""
    monkeypatch.delenv("POWERTOOLS_METRICS_DISABLED", raising=False)
    pipeline.add_orders("r-1", "r-2", "r-3")
    pipeline.script(READY, ACCEPT, REJECT, ACCEPT)
    capsys.readouterr()
    with caplog.at_level(logging.INFO, logger="entrix"):
        assert pipeline.summary("run-runbook")["orders"] == 3
    lines = [lambda_json(r, REQUEST_ID) for r in caplog.records if r.name.startswith("entrix.")]
    return lines, capsys.readouterr().out


def test_a_run_logs_one_line_per_order_with_the_run_and_every_line_with_the_run(
    run_lines: tuple[list[dict[str, Any]], str],
) -> None:
    lines, _ = run_lines
    orders = [line for line in lines if line["message"] == ORDER_LOG_MESSAGE]
    assert sorted((o["owner"], o["record_id"], o["outcome"], o["reason"]) for o in orders) == [
        (OWNER, "r-1", "accepted", "auction_result"),
        (OWNER, "r-2", "rejected", "auction_result"),
        (OWNER, "r-3", "accepted", "auction_result"),
    ]
    for order in orders:
        assert len(json.dumps(order, separators=(",", ":"))) <= MAX_ORDER_LINE_BYTES
    loggers = {line["logger"] for line in lines}
    assert {"entrix.handlers.results", "entrix.handlers.process"} <= loggers
    assert "entrix.handlers.run_summary" in loggers
    assert {line.get("correlation_id") for line in lines} == {"run-runbook"}


def test_lambda_a_writes_the_oldest_pending_orders_age_at_its_poll(
    run_lines: tuple[list[dict[str, Any]], str], pipeline: Pipeline
) -> None:
    """The EMF line CloudWatch turns into the OldestPendingOrder alarm's metric (moto makes no
    metric of it), under the dimensions the alarm watches."""
    _, printed = run_lines
    (spec,) = [
        f
        for f in pipeline.deployment.functions.values()
        if f.handler == "entrix.handlers.results.handler"
    ]
    records = [json.loads(line) for line in printed.splitlines() if line.startswith("{")]
    ages = [r for r in records if "OldestPendingOrderAgeSeconds" in r]
    assert ages, "Lambda A wrote the age at its poll"
    for record in ages:
        assert (record["function"], record["service"]) == (spec.function_name, "results")
        assert 0 <= record["OldestPendingOrderAgeSeconds"][0] < 600, "received seconds ago"


def test_every_field_and_value_the_runbook_queries_use_is_logged(
    run_lines: tuple[list[dict[str, Any]], str],
) -> None:
    lines, _ = run_lines
    queries = runbook_queries()
    assert len(queries) >= 8, "docs/runbooks.md holds its queries in logs-insights blocks"
    # Values a run of accepted orders cannot show come from their one definition.
    possible = {"outcome": set(OUTCOMES), "reason": set(REASONS)}
    possible["level"] = {"INFO", "WARNING", "ERROR"}
    for query in queries:
        for field in named_fields(query):
            assert any(field in line for line in lines), f"{field!r} in:\n{query}"
        for field, value in compared_values(query):
            seen = {str(line[field]) for line in lines if field in line}
            assert value in possible.get(field, seen), f"{field} = {value!r} in:\n{query}"
