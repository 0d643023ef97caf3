"""What the handlers tell operators: a correlation id on every log line, and EMF metrics.

Logs: the functions log in Lambda's JSON format (set in CDK), which turns every stdlib log record
into one JSON object with its level, time and Lambda request id, plus any extra attribute of the
record; `correlated()` adds `correlation_id` (the API Gateway request id that the access log also
records, or the results run) to every record logged while it is open.

Metrics: CloudWatch embedded metric format, written by Powertools' Metrics. It costs ~60 ms to
import, so it is imported on the first metric, not with the handler module: the ingest
function's import stays within its cold-start budget.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import logging
import os
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from aws_lambda_powertools import Metrics

NAMESPACE = "Entrix"
FUNCTION_DIMENSION = "function"

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


@functools.cache
def _metrics(service: str) -> Metrics:
    from aws_lambda_powertools import Metrics

    return Metrics(namespace=NAMESPACE, service=service)


def publish(service: str, **counts: int) -> None:
    """Write one EMF record of `counts` (zeros too, so sums and averages stay exact).

    Dimensions: `service` and the function's name, so two deployments in one account keep their
    figures apart. POWERTOOLS_METRICS_DISABLED=true (the local system) writes nothing.
    """
    from aws_lambda_powertools.metrics import MetricUnit

    metrics = _metrics(service)
    metrics.add_dimension(FUNCTION_DIMENSION, os.environ.get("AWS_LAMBDA_FUNCTION_NAME", service))
    for name, value in counts.items():
        metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)
    metrics.flush_metrics()
    # A disabled flush keeps what it was given; drop it, or a long local run would pile it up.
    metrics.clear_metrics()
