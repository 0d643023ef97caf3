"""Optional subscriber of the alert topic: forwards each message to a Slack incoming webhook.

Deployed only when a webhook secret is configured. The webhook URL is a credential, so it lives in
Secrets Manager (SLACK_WEBHOOK_SECRET_ARN, the URL as the whole SecretString), cached in memory.

Client text is inert: every text taken from an alert (its line, each field's name and value) has
`&`, `<` and `>` escaped as Slack's formatting rules ask, so `<!channel>` or `<url|label>` in a
record_id shows as typed and pings or links nothing. The fields go as Block Kit section fields,
each `verbatim` (Slack does not turn bare names or URLs into mentions or links) and with link
unfurling off; `text` is the escaped plain fallback for notifications.

Slack's limits: a webhook takes about one message per second and answers 429 with Retry-After
beyond that. The forwarder sleeps as long as Retry-After asks and posts again, while the
invocation has the time left (at most MAX_ATTEMPTS posts per message); a 5xx or a network error
is retried likewise after a short pause. When a message still cannot be delivered the handler
raises: SNS invokes it asynchronously, so Lambda retries the event twice and then sends it to the
forwarder's on-failure destination, a queue an alarm watches (infra/constructs/slack_forwarder.py).

The URL must be https://. Only with SLACK_WEBHOOK_ALLOW_LOOPBACK_HTTP (the local runtime and
tests; false in every deployed forwarder) may it be http:// to 127.0.0.1 or ::1.
"""

from __future__ import annotations

import functools
import json
import logging
import time
from collections.abc import Callable
from email.message import Message
from typing import Any, Protocol
from urllib.error import HTTPError, URLError
from urllib.parse import urlsplit
from urllib.request import Request, urlopen

from entrix import settings
from entrix.auction.messages import alert_fields
from entrix.aws.secrets import SecretCache

logger = logging.getLogger(__name__)

POST_TIMEOUT_SECONDS = 5.0
# Posts of one message at most (the first and its retries), whatever time is left.
MAX_ATTEMPTS = 6
# A Retry-After longer than this is not waited for in the invocation: Lambda's retry comes later.
MAX_RETRY_AFTER_SECONDS = 30.0
# The pause before posting again after a 5xx or a network error.
ERROR_PAUSE_SECONDS = 1.0
# Time kept back at the end of the invocation for the post itself to finish or time out.
RESERVE_SECONDS = 1.0
# Block Kit's limits: 10 fields a section, 2,000 characters a field, 3,000 a section's text.
MAX_FIELDS = 10
MAX_FIELD_CHARS = 2000
MAX_TEXT_CHARS = 3000
LOOPBACK_HOSTS = ("127.0.0.1", "::1")


class WebhookError(Exception):
    """The message could not be delivered to the webhook in this invocation."""


class LambdaContext(Protocol):
    def get_remaining_time_in_millis(self) -> int: ...


@functools.cache
def secret_cache() -> SecretCache:
    """The webhook URL's cache, made on the first invocation (with the function's
    SECRET_CACHE_TTL_SECONDS) and kept for the container's life. A test clears it with
    `secret_cache.cache_clear()`."""
    return SecretCache()


def escape(text: str) -> str:
    """`text` with the three characters Slack interprets as control sequences escaped."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _clipped(text: str, limit: int) -> str:
    """`text` escaped, cut (never inside an entity) to at most `limit` characters."""
    escaped = escape(text)
    if len(escaped) <= limit:
        return escaped
    pieces, length = [], 0
    for char in text:
        piece = escape(char)
        if length + len(piece) > limit - 1:
            break
        pieces.append(piece)
        length += len(piece)
    return "".join(pieces) + "…"


def _mrkdwn(text: str) -> dict[str, Any]:
    return {"type": "mrkdwn", "text": text, "verbatim": True}


def slack_message(sns_message: str) -> dict[str, Any]:
    """The webhook body for one message published to the alert topic.

    The pipeline publishes JSON objects with a `text` line plus structured fields (record_id,
    status, run, ...): the line becomes a section's text and each field a section field (a
    digest's examples one field each, entrix.auction.messages.alert_fields). Anything else
    published to the topic is forwarded as one escaped line.
    """
    headline, fields = sns_message, []
    try:
        message = json.loads(sns_message)
    except ValueError:
        message = None
    if isinstance(message, dict) and isinstance(message.get("text"), str):
        headline = message["text"]
        fields = alert_fields(message)
    blocks: list[dict[str, Any]] = [
        {"type": "section", "text": _mrkdwn(_clipped(headline, MAX_TEXT_CHARS) or " ")}
    ]
    for start in range(0, len(fields), MAX_FIELDS):
        section = fields[start : start + MAX_FIELDS]
        blocks.append(
            {
                "type": "section",
                "fields": [
                    _mrkdwn(
                        f"*{_clipped(name, 100)}*\n"
                        + (_clipped(value, MAX_FIELD_CHARS - 110) or " ")
                    )
                    for name, value in section
                ],
            }
        )
    fallback = "\n".join(
        [_clipped(headline, MAX_TEXT_CHARS)]
        + [f"{_clipped(name, 100)}: {_clipped(value, 200)}" for name, value in fields]
    )
    return {
        "text": fallback,
        "blocks": blocks,
        "mrkdwn": True,
        "unfurl_links": False,
        "unfurl_media": False,
    }


def check_webhook_url(url: str) -> None:
    """Refuse any URL but https:// (or, where allowed, http:// on the loopback interface)."""
    parts = urlsplit(url)
    if parts.scheme == "https" and parts.hostname:
        return
    if (
        parts.scheme == "http"
        and parts.hostname in LOOPBACK_HOSTS
        and settings.SLACK_WEBHOOK_ALLOW_LOOPBACK_HTTP.read()
    ):
        return
    raise ValueError("the Slack webhook URL must be an https:// URL")


def _retry_after(headers: Message | None) -> float:
    """Retry-After's seconds (Slack sends an integer); 1 when it is absent or unreadable."""
    raw = headers.get("Retry-After") if headers is not None else None
    try:
        seconds = float(raw) if raw is not None else 1.0
    except ValueError:
        seconds = 1.0
    return max(0.0, seconds)


def post_to_webhook(
    url: str,
    payload: dict[str, Any],
    remaining_seconds: Callable[[], float] = lambda: float("inf"),
) -> int:
    """POST `payload` until the webhook accepts it; the number of posts made.

    Raises WebhookError when it is refused for good (a 4xx but 429), when MAX_ATTEMPTS posts
    failed, or when the wait the webhook asks for does not fit in `remaining_seconds()`.
    """
    check_webhook_url(url)
    body = json.dumps(payload).encode("utf-8")
    for attempt in range(1, MAX_ATTEMPTS + 1):
        timeout = min(POST_TIMEOUT_SECONDS, remaining_seconds() - RESERVE_SECONDS)
        if timeout <= 0:
            raise WebhookError(f"no time left to post (attempt {attempt})")
        request = Request(  # noqa: S310 - the scheme is checked above
            url, data=body, headers={"Content-Type": "application/json"}, method="POST"
        )
        try:
            with urlopen(request, timeout=timeout) as reply:  # noqa: S310 - checked above
                reply.read()
            return attempt
        except HTTPError as error:
            if error.code == 429:
                wait = _retry_after(error.headers)
                reason = f"429, Retry-After {wait:g} s"
            elif error.code >= 500:
                wait, reason = ERROR_PAUSE_SECONDS, f"HTTP {error.code}"
            else:
                raise WebhookError(f"the webhook refused the message: HTTP {error.code}") from error
        except (URLError, TimeoutError, ConnectionError) as error:
            wait, reason = ERROR_PAUSE_SECONDS, f"{type(error).__name__}: {error}"
        if attempt == MAX_ATTEMPTS:
            raise WebhookError(f"not delivered after {attempt} posts (last: {reason})")
        if wait > MAX_RETRY_AFTER_SECONDS or wait + RESERVE_SECONDS >= remaining_seconds():
            raise WebhookError(f"not delivered: {reason}, more than the invocation has left")
        logger.warning("Slack webhook: %s; posting again in %g s", reason, wait)
        time.sleep(wait)
    raise AssertionError("unreachable")  # pragma: no cover


def handler(event: dict[str, Any], context: LambdaContext | None) -> None:
    """Post each SNS record of `event`; raise (for Lambda's retries, then the on-failure
    destination) when one cannot be delivered. SNS sends one record per invocation."""
    url = secret_cache().get(settings.SLACK_WEBHOOK_SECRET_ARN.read()).strip()
    check_webhook_url(url)

    def remaining_seconds() -> float:
        if context is None:
            return float("inf")
        return context.get_remaining_time_in_millis() / 1000

    for record in event.get("Records", []):
        post_to_webhook(url, slack_message(record["Sns"]["Message"]), remaining_seconds)
