"""Handlers that outlive their function's timeout, for tests/local/test_lambda_timeouts.py.

A timed-out invocation drops this module from `sys.modules` (Lambda resets the execution
environment), so a test keeps a reference to the module object it released its handlers with.
"""

import threading
import time
import uuid

import boto3

# Changes each time the module runs: the next invocation after a timeout imports it again.
INIT = str(uuid.uuid4())
# Set by a test to let a handler blocked in `wait()` (a C call) go on.
RELEASE = threading.Event()
# What the handlers got as far as, in order.
REACHED: list[str] = []


def init(event, context):
    return {"init": INIT}


def nap(event, context):
    """Runs Python code between short sleeps, past any timeout, until a test releases it."""
    while not RELEASE.is_set():
        time.sleep(0.05)


def blocked_then_write(event, context):
    """Blocked in a C call past the deadline; writes when released."""
    RELEASE.wait()
    REACHED.append("released")
    _write(event, "late")


def _write(event, key):
    boto3.client("s3", region_name="eu-west-1").put_object(
        Bucket=event["bucket"], Key=key, Body=b"written after the deadline"
    )


def short_nap(event, context):
    """Sleeps for `event["seconds"]`, well within its timeout when run alone."""
    time.sleep(event["seconds"])
    return {"slept": event["seconds"]}
