"""Optional subscriber of the alert topic: forwards each message to a Slack incoming webhook.

Deployed only when a webhook secret is configured. The webhook URL is a credential, so it lives in
Secrets Manager (SLACK_WEBHOOK_SECRET_ARN, the URL as the whole SecretString), cached in memory.
A failed POST raises, so SNS retries the delivery.
"""

from __future__ import annotations

import functools
import json
from typing import Any
from urllib.parse import urlsplit
from urllib.request import Request, urlopen

from entrix import settings
from entrix.auction.messages import slack_payload
from entrix.aws.secrets import SecretCache

POST_TIMEOUT_SECONDS = 5.0


@functools.cache
def secret_cache() -> SecretCache:
    """The webhook URL's cache, made on the first invocation (with the function's
    SECRET_CACHE_TTL_SECONDS) and kept for the container's life. A test clears it with
    `secret_cache.cache_clear()`."""
    return SecretCache()


def post_to_webhook(url: str, payload: dict[str, Any]) -> None:
    if urlsplit(url).scheme != "https":
        raise ValueError("the Slack webhook URL must be an https:// URL")
    request = Request(  # noqa: S310 - https checked above
        url,
        data=json.dumps(payload).encode("utf-8"),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urlopen(request, timeout=POST_TIMEOUT_SECONDS) as reply:  # noqa: S310 - https checked above
        reply.read()


def handler(event: dict[str, Any], context: object) -> None:
    url = secret_cache().get(settings.SLACK_WEBHOOK_SECRET_ARN.read()).strip()
    for record in event.get("Records", []):
        post_to_webhook(url, slack_payload(record["Sns"]["Message"]))
