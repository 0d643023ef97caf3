"""Slack-style alert messages: the topic carries JSON with a `text` line, as a webhook expects."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any


def alert_fields(message: Mapping[str, Any]) -> list[tuple[str, str]]:
    """An alert's fields but its `text` line, each as (name, readable value).

    A list of objects (a digest's `examples`) becomes one field per object, `<name> <n>`, its
    members as `key: value` pairs, so each example reads on its own; any other value that is
    not a string is its JSON.
    """
    fields: list[tuple[str, str]] = []
    for name, value in message.items():
        if name == "text":
            continue
        if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
            fields.extend(
                (f"{name} {number}", ", ".join(f"{k}: {_value(v)}" for k, v in item.items()))
                for number, item in enumerate(value, start=1)
            )
        else:
            fields.append((str(name), _value(value)))
    return fields


def _value(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def slack_payload(sns_message: str) -> dict[str, Any]:
    """One message published to the alert topic as plain text (the local console's view; the
    Slack forwarder posts the same content as escaped Block Kit fields).

    The pipeline publishes JSON objects with a `text` field plus structured fields (record_id,
    status, run); Slack gets the readable line followed by one `name: value` line per field
    (alert_fields). Anything else published to the topic is forwarded as plain text.
    """
    try:
        message = json.loads(sns_message)
    except ValueError:
        return {"text": sns_message}
    if not isinstance(message, dict) or not isinstance(message.get("text"), str):
        return {"text": sns_message}
    details = [f"{name}: {value}" for name, value in alert_fields(message)]
    return {"text": "\n".join([message["text"], *details])}
