"""The API's bearer tokens: HS256 JWTs signed with one shared secret (pure functions, no AWS).

The authorizer verifies with `bearer_token` + `verify_token`; `entrix token` signs with
`issue_token`. Both read the key from the same secret through `signing_key_from_secret`.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterable, Mapping
from itertools import accumulate
from typing import Any

import jwt
from jwt.utils import base64url_decode

from entrix.identity import LEEWAY_SECONDS, MAX_SUBJECT_CHARS, valid_subject

ALGORITHM = "HS256"
# Longest token accepted; anything longer is refused before any decoding work.
MAX_TOKEN_LENGTH = 8192
# Deepest nesting of arrays and objects accepted in the header or the payload. Tokens this service
# issues or reads nest 1 deep (2 with a list `aud`); how deep Python's json gives up differs by
# version (3.11 raises RecursionError near 1,000, 3.13 parses the ~3,000 that fits in a token).
MAX_JSON_DEPTH = 16
# A secret stored as a JSON object keeps its signing key under this field.
SIGNING_KEY_FIELD = "signing_key"
AUTHORIZATION_HEADER = "authorization"

# header.payload.signature in base64url without padding: RFC 7515 compact serialization.
_COMPACT_JWS = re.compile(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+")

# A JSON string up to its closing quote (or the end of a malformed segment), escapes included, so
# brackets inside strings are not counted. It always matches where it starts: linear time.
_JSON_STRING = re.compile(rb'"(?:[^"\\]++|\\.?)*+(?:"|\Z)', re.DOTALL)
_NOT_A_BRACKET = re.compile(rb"[^\[\]{}]+")

# RFC 7518 3.2: an HS256 key must be at least 256 bits; PyJWT enforces that on both sides.
_jwt = jwt.PyJWT(options={"enforce_minimum_key_length": True, "require": ["exp", "sub"]})


class TokenError(Exception):
    """The request carries no acceptable token; the message says why, for logs only."""


class SigningKeyError(ValueError):
    """The configured signing key is unusable (a fault of the deployment, not of the caller)."""


def signing_key_from_secret(secret_string: str) -> str:
    """The key in a secret: the raw SecretString, or its "signing_key" if it is a JSON object."""
    try:
        document = json.loads(secret_string)
    except ValueError:
        return secret_string
    if not isinstance(document, dict):
        return secret_string
    key = document.get(SIGNING_KEY_FIELD)
    if not isinstance(key, str) or not key:
        raise SigningKeyError(f"the secret is a JSON object without a {SIGNING_KEY_FIELD!r} string")
    return key


def issue_token(
    key: str,
    subject: str,
    expires_in: int,
    issuer: str | None = None,
    audience: str | None = None,
    now: float | None = None,
) -> str:
    """Sign a token for `subject`, valid from `now` (default: the current time) for `expires_in`."""
    if not valid_subject(subject):
        raise ValueError(
            f"the subject must be 1 to {MAX_SUBJECT_CHARS} characters, without '#' or control "
            "characters"
        )
    if expires_in <= 0:
        raise ValueError("expires_in must be a positive number of seconds")
    issued_at = int(time.time() if now is None else now)
    claims: dict[str, Any] = {
        "sub": subject,
        "iat": issued_at,
        "nbf": issued_at,
        "exp": issued_at + expires_in,
    }
    if issuer:
        claims["iss"] = issuer
    if audience:
        claims["aud"] = audience
    try:
        return _jwt.encode(claims, key, algorithm=ALGORITHM)
    except jwt.InvalidKeyError as error:
        raise SigningKeyError(str(error)) from None


def verify_token(
    token: str,
    key: str,
    *,
    issuer: str | None = None,
    audience: str | None = None,
    leeway: float = LEEWAY_SECONDS,
) -> dict[str, Any]:
    """The claims of a valid token; TokenError for anything else.

    Only HS256 is accepted whatever the header says, and header fields that point at other keys
    (`kid`, `jku`, `x5u`, `jwk`) are never followed: the key is always `key`. `exp` and `sub` are
    required; `iss` and `aud` are checked (and then required) when configured, and a token that
    names an audience is refused when none is configured.
    """
    if len(token) > MAX_TOKEN_LENGTH:
        raise TokenError(f"token longer than {MAX_TOKEN_LENGTH} characters")
    if not _COMPACT_JWS.fullmatch(token):
        raise TokenError("not a compact JWS (header.payload.signature in base64url)")
    header, payload, _ = token.split(".")
    for name, segment in (("header", header), ("payload", payload)):
        try:
            depth = _json_depth(base64url_decode(segment))
        except ValueError:
            raise TokenError(f"the {name} is not base64url") from None
        if depth > MAX_JSON_DEPTH:
            raise TokenError(f"the {name} nests JSON deeper than {MAX_JSON_DEPTH} levels")
    try:
        claims = _jwt.decode(
            token,
            key,
            algorithms=[ALGORITHM],
            issuer=issuer,
            audience=audience,
            leeway=leeway,
        )
    except jwt.InvalidKeyError as error:
        raise SigningKeyError(str(error)) from None
    except (jwt.PyJWTError, ValueError, TypeError) as error:
        raise TokenError(f"{type(error).__name__}: {error}") from None
    if not valid_subject(claims["sub"]):
        raise TokenError("the sub claim is not a valid subject")
    return claims


def _json_depth(document: bytes) -> int:
    """How deeply `document` nests arrays and objects (exact for JSON; PyJWT refuses the rest).

    Checked before PyJWT parses the segments so that absurd nesting is refused on every Python
    version alike, instead of wherever that version's parser runs out of recursion.
    """
    brackets = _NOT_A_BRACKET.sub(b"", _JSON_STRING.sub(b"", document))
    return max(accumulate(1 if bracket in b"[{" else -1 for bracket in brackets), default=0)


def bearer_token(
    headers: Mapping[str, Any] | None,
    multi_value_headers: Mapping[str, Iterable[Any] | None] | None = None,
) -> str:
    """The token of the one `Authorization: Bearer <token>` header (name matched in any case).

    API Gateway puts the last value of a repeated header in `headers` and every value in
    `multiValueHeaders`; differing values are refused rather than guessing which one counts.
    """
    values = [
        value for name, value in (headers or {}).items() if name.lower() == AUTHORIZATION_HEADER
    ]
    for name, many in (multi_value_headers or {}).items():
        if name.lower() == AUTHORIZATION_HEADER:
            values.extend(many or ())
    present = [value for value in values if value is not None]
    if not present:
        raise TokenError("no Authorization header")
    if not all(isinstance(value, str) for value in present):
        raise TokenError("an Authorization value is not a string")
    if len(set(present)) > 1:
        raise TokenError("more than one Authorization value")
    value: str = present[0]
    scheme, separator, token = value.partition(" ")
    if not separator or scheme.lower() != "bearer":
        raise TokenError("the Authorization header is not a Bearer credential")
    return token
