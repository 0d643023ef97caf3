"""The deny list: tokens withdrawn before their `exp`, by token id or by subject (stdlib only).

It is one small JSON document, kept in a Secrets Manager secret that the authorizer reads through
the Parameters and Secrets Extension (no boto3 on its cold request) and `entrix revoke` edits:

    {"tokens": {"<jti>": <its exp>}, "subjects": {"<sub>": <revoked at, epoch seconds>}}

A token is refused when its `jti` is listed, or when its subject is listed and the token was
issued (`iat`) at or before the time the subject was revoked: the client gets new tokens, the
leaked ones stay dead. A token entry is needed only until the token's own `exp`, so `pruned`
drops it then and the document stays small (a secret holds at most 65,536 bytes: about 1,000
token entries).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, NamedTuple

# The field CloudFormation fills in when it creates the list (a secret it generates needs one);
# it means nothing and is read as absent.
DENY_LIST_FILLER_FIELD = "created"


class DenyListError(ValueError):
    """The stored deny list is not the document described above (a fault of the deployment)."""


class DenyList(NamedTuple):
    tokens: Mapping[str, int] = {}
    subjects: Mapping[str, int] = {}

    def refusal(self, claims: Mapping[str, Any]) -> str | None:
        """Why these (already verified) claims are revoked, or None."""
        if claims.get("jti") in self.tokens:
            return f"token {claims['jti']} is revoked"
        revoked_at = self.subjects.get(claims.get("sub"))  # type: ignore[arg-type]
        if revoked_at is not None and int(claims["iat"]) <= revoked_at:
            return f"tokens of {claims['sub']} issued until {revoked_at} are revoked"
        return None

    def with_token(self, jti: str, expires_at: int) -> DenyList:
        return self._replace(tokens={**self.tokens, jti: int(expires_at)})

    def with_subject(self, subject: str, revoked_at: int) -> DenyList:
        latest = max(int(revoked_at), self.subjects.get(subject, 0))
        return self._replace(subjects={**self.subjects, subject: latest})

    def pruned(self, now: float, leeway: float, max_lifetime_seconds: int) -> DenyList:
        """Without the entries no token can need any more: a token entry past its `exp` plus
        the leeway, a subject entry older than the longest lifetime plus the leeway."""
        return DenyList(
            tokens={jti: exp for jti, exp in self.tokens.items() if exp + leeway >= now},
            subjects={
                sub: at
                for sub, at in self.subjects.items()
                if at + max_lifetime_seconds + leeway >= now
            },
        )

    def text(self) -> str:
        return json.dumps(
            {"tokens": dict(self.tokens), "subjects": dict(self.subjects)},
            sort_keys=True,
            separators=(",", ":"),
        )


def parse_deny_list(text: str) -> DenyList:
    """The deny list in a secret's text ("" or "{}" is an empty list)."""
    if not text.strip():
        return DenyList()
    try:
        document = json.loads(text)
    except ValueError as error:
        raise DenyListError(f"the deny list is not JSON: {error}") from None
    if not isinstance(document, dict):
        raise DenyListError("the deny list is not a JSON object")
    sections = []
    for name in ("tokens", "subjects"):
        section = document.get(name, {})
        if not isinstance(section, dict) or not all(
            isinstance(key, str) and isinstance(value, int) and not isinstance(value, bool)
            for key, value in section.items()
        ):
            raise DenyListError(f"the deny list's {name!r} is not an object of integers")
        sections.append(section)
    return DenyList(tokens=sections[0], subjects=sections[1])
