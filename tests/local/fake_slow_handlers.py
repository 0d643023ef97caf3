"""Handlers that outlive their function's timeout, for tests/local/test_lambda_timeouts.py.

A timed-out invocation drops this module from `sys.modules` (Lambda resets the execution
environment), so what a test releases them with lives in `fake_handler_state`.
"""

import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import boto3

from tests.local.fake_handler_state import REACHED, RELEASE

# Changes each time the module runs: the next invocation after a timeout imports it again.
INIT = str(uuid.uuid4())


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


def blocked_then_write_from_a_pool(event, context):
    """As `blocked_then_write`, the write handed to a thread pool (as the alerts' publishes are)."""
    RELEASE.wait()
    REACHED.append("released")
    with ThreadPoolExecutor(max_workers=1) as pool:
        pool.submit(_write, event, "late from a pool").result()


def _write(event, key):
    boto3.client("s3", region_name="eu-west-1").put_object(
        Bucket=event["bucket"], Key=key, Body=b"written after the deadline"
    )


def short_nap(event, context):
    """Sleeps for `event["seconds"]`, well within its timeout when run alone."""
    time.sleep(event["seconds"])
    return {"slept": event["seconds"]}
