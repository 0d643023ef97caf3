"""A handler module whose import (Lambda's Init phase) outlasts its function's timeout, for
tests/local/test_lambda_timeouts.py: the test sets `INIT_SECONDS` before importing it."""

import os
import time

time.sleep(float(os.environ["FAKE_INIT_SECONDS"]))


def handler(event, context):
    return {"remaining_ms": context.get_remaining_time_in_millis()}
