"""A handler module that reads its environment at import time; only one test imports it."""

import os

GREETING = os.environ.get("GREETING")


def handler(event, context):
    return {"import_time_greeting": GREETING}
