"""Handlers the Lambda runner tests invoke by their `Handler` names."""

import os
from decimal import Decimal

# Read at import time, as a handler module might: the runner must apply the environment first.
IMPORT_TIME_GREETING = os.environ.get("GREETING")


class OrderRejected(Exception):
    """Named like the pipeline's error, so a state machine Catch can route it."""


def echo(event, context):
    return {
        "event": event,
        "greeting": os.environ.get("GREETING"),
        "import_time_greeting": IMPORT_TIME_GREETING,
        "function_name": context.function_name,
        "env_function_name": os.environ.get("AWS_LAMBDA_FUNCTION_NAME"),
        "remaining_ms_positive": context.get_remaining_time_in_millis() > 0,
    }


def reject(event, context):
    if event.get("status") == "rejected":
        raise OrderRejected(f"order {event['record_id']} rejected")
    return {"record_id": event["record_id"], "power": Decimal("2.5"), "count": Decimal("3")}


def unserializable(event, context):
    return {"when": object()}
