"""Handlers the Lambda runner tests invoke by their `Handler` names."""

import json
import os
import time
from decimal import Decimal

from tests.local import fake_handler_state


class OrderRejected(Exception):
    """Named like the pipeline's error, so a state machine Catch can route it."""


def echo(event, context):
    return {
        "event": event,
        "greeting": os.environ.get("GREETING"),
        "function_name": context.function_name,
        "env_function_name": os.environ.get("AWS_LAMBDA_FUNCTION_NAME"),
        "remaining_ms_positive": context.get_remaining_time_in_millis() > 0,
    }


def greet_slowly(event, context):
    """Sleeps with its environment applied, so that other threads run meanwhile."""
    time.sleep(0.002)
    return {"greeting": os.environ.get("GREETING")}


def reject(event, context):
    if event.get("status") == "rejected":
        raise OrderRejected(f"order {event['record_id']} rejected")
    return {"record_id": event["record_id"], "power": Decimal("2.5"), "count": Decimal("3")}


def unserializable(event, context):
    return {"when": object()}


def authorize(event, context):
    """A REQUEST authorizer keyed on the Authorization header's value."""
    fake_handler_state.AUTHORIZER_CALLS.append(event)
    token = event["headers"].get("Authorization", "")
    if token == "deny":
        effect = "Deny"
    elif token in ("let-me-in", os.environ.get("EXPECTED")):
        effect = "Allow"
    elif token == "only-get":
        return _policy("Allow", event["methodArn"].split("/", 1)[0] + "/*/GET/*")
    elif token == "broken":
        return {"principalId": "x"}
    elif token == "crash":
        raise RuntimeError("authorizer bug")
    else:
        raise Exception("Unauthorized")
    arn_prefix = event["methodArn"].split("/", 1)[0]
    return _policy(effect, f"{arn_prefix}/*/*")


def _policy(effect, resource):
    return {
        "principalId": "user-1",
        "policyDocument": {
            "Version": "2012-10-17",
            "Statement": [{"Action": "execute-api:Invoke", "Effect": effect, "Resource": resource}],
        },
        "context": {"sub": "user-1", "admin": False, "level": 3},
    }


def proxy_echo(event, context):
    """A proxy integration answering with the event it got, and custom headers."""
    if event.get("body") == "explode":
        raise ValueError("boom")
    if event.get("body") == "not-a-proxy-response":
        return ["nope"]
    return {
        "statusCode": 201,
        "headers": {"X-Single": "one"},
        "multiValueHeaders": {"Set-Cookie": ["a=1", "b=2"]},
        "body": json.dumps({"event": event, "greeting": os.environ.get("GREETING")}),
    }


def chatty(event, context):
    """Prints and logs, as handlers do; the runtime routes both to the invocation's logs."""
    import logging
    import sys

    print("printed by the handler")
    logging.getLogger("chatty").warning("logged by the handler")
    sys.stderr.write("written to stderr\n")
    return {"ok": True}


def publish(event, context):
    """Publishes to the topic a `receive` function subscribes to, and says what that function
    had received when Publish returned."""
    import boto3

    boto3.client("sns", region_name="eu-west-1").publish(
        TopicArn=event["topic"], Message=event["message"]
    )
    return {"received_when_published": list(fake_handler_state.RECEIVED)}


def receive(event, context):
    fake_handler_state.RECEIVED.extend(record["Sns"]["Message"] for record in event["Records"])
