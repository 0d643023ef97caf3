"""Slack-style alert messages: the topic carries JSON with a `text` line, as a webhook expects."""

from __future__ import annotations

import json
from typing import Any


def slack_payload(sns_message: str) -> dict[str, Any]:
    """One message published to the alert topic as plain text (the local console's view; the
    Slack forwarder posts the same content as escaped Block Kit fields).

    The pipeline publishes JSON objects with a `text` field plus structured fields (record_id,
    status, run); Slack gets the readable line followed by one `name: value` line per field.
    Anything else published to the topic is forwarded as plain text.
    """
    try:
        message = json.loads(sns_message)
    except ValueError:
        return {"text": sns_message}
    if not isinstance(message, dict) or not isinstance(message.get("text"), str):
        return {"text": sns_message}
    details = [f"{name}: {value}" for name, value in message.items() if name != "text"]
    return {"text": "\n".join([message["text"], *details])}
