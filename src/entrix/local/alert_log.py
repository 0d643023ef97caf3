"""What the local console showed, kept for `entrix alerts` to list after the fact.

The running system writes each notification it shows (what the Slack channel would get) and
each run's summary to a log group of its embedded endpoint's CloudWatch Logs, made for the
console and not part of the template; `entrix alerts`, in another process, reads the newest
entries back through the endpoint as every other `entrix` command reaches the local system.
The aws CLI reads it too (`aws logs tail /entrix/local/console`). Per-order rejections never
reach it: the console subscribes with the Slack forwarder's filter policy, so what it holds
grows by a few entries per run, whatever the number of orders.
"""

from __future__ import annotations

import json
import threading
import time
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

LOG_GROUP = "/entrix/local/console"
LOG_STREAM = "alerts"


class AlertLog:
    """Appends console entries to the log stream: `{"run": summary}` or `{"topic", "text"}`."""

    def __init__(self, logs: Any) -> None:
        self.logs = logs
        self._lock = threading.Lock()

    def start(self) -> None:
        self.logs.create_log_group(logGroupName=LOG_GROUP)
        self.logs.create_log_stream(logGroupName=LOG_GROUP, logStreamName=LOG_STREAM)

    def record(self, entry: dict[str, Any]) -> None:
        """Append `entry`; when the endpoint is already going away it is lost (the console has
        shown it)."""
        event = {"timestamp": int(time.time() * 1000), "message": json.dumps(entry)}
        with self._lock:  # one writer at a time: entries keep the order they were shown in
            try:
                self.logs.put_log_events(
                    logGroupName=LOG_GROUP, logStreamName=LOG_STREAM, logEvents=[event]
                )
            except (BotoCoreError, ClientError):
                return


def recent_entries(logs: Any, limit: int) -> list[tuple[float, dict[str, Any]]]:
    """The newest `limit` entries, oldest first, each with its time (epoch seconds)."""
    events = logs.get_log_events(
        logGroupName=LOG_GROUP, logStreamName=LOG_STREAM, limit=limit, startFromHead=False
    )["events"]
    return [(event["timestamp"] / 1000, json.loads(event["message"])) for event in events]
