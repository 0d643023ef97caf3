"""What the handlers tell operators: a correlation id on every log line, and EMF metrics.

Logs: the functions log in Lambda's JSON format (set in CDK), which turns every stdlib log record
into one JSON object with its level, time and Lambda request id, plus any extra attribute of the
record; `correlated()` adds `correlation_id` (the API Gateway request id that the access log also
records, or the results run) to every record logged while it is open.

Metrics: one CloudWatch embedded metric format (EMF) record a call, printed to stdout as JSON,
which CloudWatch Logs turns into metrics. The record is the one Powertools' Metrics writes for the
same counts (a test compares the two), written here because importing Powertools costs a cold
request 15-25 ms for one `print`. Under `entrix local` the same record lands in the function's
log group on the embedded endpoint, but moto's CloudWatch Logs makes no metric of it: the counts
are in `aws logs filter-log-events`, not in `aws cloudwatch list-metrics`.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import json
import logging
import os
import time
from collections.abc import Iterator, Mapping
from typing import Any

NAMESPACE = "Entrix"
FUNCTION_DIMENSION = "function"
SERVICE_DIMENSION = "service"
# Set to true, metrics are not written (the variable Powertools reads, kept for operators).
METRICS_DISABLED = "POWERTOOLS_METRICS_DISABLED"
_TRUE = frozenset({"1", "y", "yes", "t", "true", "on"})
# CloudWatch's limits on one EMF directive.
MAX_METRICS = 100
MAX_METRIC_NAME_CHARS = 255

_correlation_id: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "correlation_id", default=None
)


@functools.cache
def _install_record_factory() -> None:
    """Make every log record carry the open correlation id (records from any logger)."""
    make_record = logging.getLogRecordFactory()

    def record_with_correlation_id(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = make_record(*args, **kwargs)
        correlation_id = _correlation_id.get()
        if correlation_id is not None:
            record.correlation_id = correlation_id
        return record

    logging.setLogRecordFactory(record_with_correlation_id)


@contextlib.contextmanager
def correlated(correlation_id: str | None) -> Iterator[None]:
    """Log with `correlation_id` until the block ends (nothing is added when it is None)."""
    _install_record_factory()
    token = _correlation_id.set(correlation_id)
    try:
        yield
    finally:
        _correlation_id.reset(token)


def api_request_id(event: Any) -> str | None:
    """The API Gateway request id of a Lambda proxy event (`$context.requestId`)."""
    context = event.get("requestContext") if isinstance(event, dict) else None
    request_id = context.get("requestId") if isinstance(context, dict) else None
    return request_id if isinstance(request_id, str) else None


def emf_record(
    namespace: str, dimensions: Mapping[str, str], counts: Mapping[str, int], epoch_ms: int
) -> dict[str, Any]:
    """One EMF record: `counts` under one set of `dimensions`, as Count metrics except those
    named `...Seconds`, which CloudWatch then shows in seconds (an age, not a count)."""
    if not 1 <= len(counts) <= MAX_METRICS:
        raise ValueError(f"an EMF record holds 1 to {MAX_METRICS} metrics, not {len(counts)}")
    for name, value in counts.items():
        if not 1 <= len(name) <= MAX_METRIC_NAME_CHARS or name in dimensions or name == "_aws":
            raise ValueError(f"metric name {name!r} is not usable in an EMF record")
        if not isinstance(value, int) or isinstance(value, bool):
            raise ValueError(f"metric {name} must count with an int, not {value!r}")
    if not all(isinstance(value, str) and value.strip() for value in dimensions.values()):
        raise ValueError(f"dimension values must be non-empty strings: {dict(dimensions)}")
    directive = {
        "Namespace": namespace,
        "Dimensions": [list(dimensions)],
        "Metrics": [{"Name": name, "Unit": _unit(name)} for name in counts],
    }
    return {
        "_aws": {"Timestamp": epoch_ms, "CloudWatchMetrics": [directive]},
        **dimensions,
        **{name: [float(value)] for name, value in counts.items()},
    }


def _unit(metric_name: str) -> str:
    return "Seconds" if metric_name.endswith("Seconds") else "Count"


def publish(service: str, **counts: int) -> None:
    """Write one EMF record of `counts` (zeros too, so sums and averages stay exact).

    Dimensions: the function's name and `service`, so two deployments in one account keep their
    figures apart. POWERTOOLS_METRICS_DISABLED=true writes nothing.
    """
    if os.environ.get(METRICS_DISABLED, "").strip().lower() in _TRUE:
        return
    dimensions = {
        FUNCTION_DIMENSION: os.environ.get("AWS_LAMBDA_FUNCTION_NAME") or service,
        SERVICE_DIMENSION: service,
    }
    record = emf_record(NAMESPACE, dimensions, counts, int(time.time() * 1000))
    print(json.dumps(record, separators=(",", ":")), flush=True)
