"""Lambda proxy events as API Gateway sends them after the authorizer allowed the caller."""

from __future__ import annotations

from typing import Any

FAR_FUTURE_EXP = 4_000_000_000


def api_event(
    owner: str = "desk-a",
    *,
    exp: int = FAR_FUTURE_EXP,
    request_id: str = "req-1",
    **fields: Any,
) -> dict[str, Any]:
    """A proxy event of `owner` (the authorizer's context, values as strings as REST APIs pass
    them) with the given event fields (`body`, `pathParameters`, ...)."""
    return {
        "requestContext": {
            "requestId": request_id,
            "authorizer": {"principalId": owner, "sub": owner, "exp": str(exp)},
        },
        **fields,
    }
