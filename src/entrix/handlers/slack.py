"""Optional subscriber of the alert topic: forwards each message to a Slack incoming webhook.

Deployed only when a webhook secret is configured. The webhook URL is a credential, so it lives in
Secrets Manager (SLACK_WEBHOOK_SECRET_ARN, the URL as the whole SecretString), cached in memory.
A failed POST raises, so SNS retries the delivery.
"""

from __future__ import annotations

import json
import os
from typing import Any
from urllib.parse import urlsplit
from urllib.request import Request, urlopen

from entrix.auction.messages import slack_payload
from entrix.aws.secrets import SecretCache, ttl_from_environment
from entrix.environment import SLACK_WEBHOOK_SECRET_ARN

POST_TIMEOUT_SECONDS = 5.0

_secrets = SecretCache(ttl_seconds=ttl_from_environment())


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
    url = _secrets.get(os.environ[SLACK_WEBHOOK_SECRET_ARN]).strip()
    for record in event.get("Records", []):
        post_to_webhook(url, slack_payload(record["Sns"]["Message"]))
