"""AWS clients for Lambda code, made with botocore alone.

The Lambda runtime ships boto3, but importing it also loads its resource layer, which these
functions never use: a botocore client is the same low-level client for less import time.

Every client retries in botocore's standard mode and bounds each attempt's connect and read
waits, set here rather than left to the runtime's botocore (older releases default to legacy
mode: up to 10 attempts for DynamoDB, 60 s waits) or to the environment. The longest one call
can then take is known (`longest_call_seconds`), so a caller with a deadline can tell whether a
call still fits.
"""

from __future__ import annotations

from typing import Any

import botocore.session
from botocore.config import Config

# Sensible for any service these functions call: an in-region connection is made in
# milliseconds (the AWS SDKs' in-region defaults allow 1.1 s), and a read waits for one
# response, not a whole download; three attempts are standard mode's own default.
DEFAULT_CONFIG = Config(
    connect_timeout=1,
    read_timeout=2,
    retries={"mode": "standard", "total_max_attempts": 3},
)

# Standard mode sleeps before retry i (1-based) at most min(2 ** (i - 1), 20) s (throttling
# errors; other errors back off less), and an `x-amz-retry-after` reply may add up to 5 s.
_BACKOFF_CAP_SECONDS = 20
_RETRY_AFTER_EXTRA_SECONDS = 5


def client(service: str, config: Config | None = None) -> Any:
    """A client configured from the environment (region, credentials, AWS_ENDPOINT_URL), with
    `DEFAULT_CONFIG` and then `config`'s own settings on top."""
    merged = DEFAULT_CONFIG if config is None else DEFAULT_CONFIG.merge(config)
    return botocore.session.get_session().create_client(service, config=merged)


def retry_pause_limit(retry: int) -> float:
    """The longest botocore's standard mode sleeps before retry number `retry` (1-based)."""
    return min(2 ** (retry - 1), _BACKOFF_CAP_SECONDS) + _RETRY_AFTER_EXTRA_SECONDS


def longest_call_seconds(aws_client: Any) -> float:
    """The longest one call of `aws_client` can take, retries included: every attempt waits out
    its connect and read timeouts, and every retry sleeps its longest backoff."""
    config = aws_client.meta.config
    retries = config.retries or {}
    if retries.get("mode") != "standard" or "total_max_attempts" not in retries:
        raise ValueError(
            f"no known bound for retries configured as {retries!r}: make the client with client()"
        )
    attempts = int(retries["total_max_attempts"])
    waits = attempts * (config.connect_timeout + config.read_timeout)
    return waits + sum(retry_pause_limit(retry) for retry in range(1, attempts))
