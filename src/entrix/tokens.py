"""The API's bearer tokens: what a valid one is, how one is signed (pure functions, no AWS).

Every token names its key (`kid` in its header), its issuer, its audience, its subject, when it
was issued and until when it lives (`iat`, `exp`, at most TokenRules.max_lifetime_seconds apart)
and its own id (`jti`, which the deny list can revoke). The authorizer verifies with
`bearer_token` + `verify_token`, given a lookup from `kid` to key: HS256 keys from Secrets
Manager (entrix.aws.signing_keys) or an identity provider's public keys. `entrix token` signs
with `issue_token`.
"""

from __future__ import annotations

import re
import secrets
import time
from collections.abc import Callable, Iterable, Mapping
from itertools import accumulate
from typing import Any, NamedTuple

import jwt
from jwt.utils import base64url_decode

from entrix.identity import LEEWAY_SECONDS, MAX_SUBJECT_CHARS, valid_subject
from entrix.signing_secret import SigningKeyError

# The algorithm of tokens signed with a shared secret; an identity provider's are asymmetric.
SHARED_KEY_ALGORITHM = "HS256"
ISSUER_ALGORITHMS = ("RS256", "ES256")
# Longest token accepted; anything longer is refused before any decoding work.
MAX_TOKEN_LENGTH = 8192
# Longest `kid` accepted (Secrets Manager version ids are 36 characters, JWKS kids 40 to 90).
MAX_KID_LENGTH = 256
# Deepest nesting of arrays and objects accepted in the header or the payload. Tokens this service
# issues or reads nest 1 deep (2 with a list `aud`); how deep Python's json gives up differs by
# version (3.11 raises RecursionError near 1,000, 3.13 parses the ~3,000 that fits in a token).
MAX_JSON_DEPTH = 16
AUTHORIZATION_HEADER = "authorization"
REQUIRED_CLAIMS = ("exp", "iat", "iss", "aud", "sub", "jti")

# header.payload.signature in base64url without padding: RFC 7515 compact serialization.
_COMPACT_JWS = re.compile(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+")

# A JSON string up to its closing quote (or the end of a malformed segment), escapes included, so
# brackets inside strings are not counted. It always matches where it starts: linear time.
_JSON_STRING = re.compile(rb'"(?:[^"\\]++|\\.?)*+(?:"|\Z)', re.DOTALL)
_NOT_A_BRACKET = re.compile(rb"[^\[\]{}]+")

# RFC 7518 3.2: an HS256 key must be at least 256 bits; PyJWT enforces that on both sides.
_jwt = jwt.PyJWT(options={"enforce_minimum_key_length": True, "require": list(REQUIRED_CLAIMS)})


class TokenError(Exception):
    """The request carries no acceptable token; the message says why, for logs only."""


class TokenRules(NamedTuple):
    """What a token must name and how long it may live: the same for every key source."""

    issuer: str
    audience: str
    max_lifetime_seconds: int
    algorithms: tuple[str, ...] = (SHARED_KEY_ALGORITHM,)
    leeway: float = LEEWAY_SECONDS


# kid -> the key that verifies tokens naming it; raises TokenError for a kid it does not know.
KeyLookup = Callable[[str], Any]


def issue_token(
    key: Any,
    *,
    kid: str,
    subject: str,
    expires_in: int,
    issuer: str,
    audience: str,
    now: float | None = None,
    algorithm: str = SHARED_KEY_ALGORITHM,
) -> str:
    """Sign a token for `subject` with the key `kid` names, valid from `now` (default: the
    current time) for `expires_in` seconds, with a fresh random `jti`."""
    if not valid_subject(subject):
        raise ValueError(
            f"the subject must be 1 to {MAX_SUBJECT_CHARS} characters, without '#' or control "
            "characters"
        )
    if expires_in <= 0:
        raise ValueError("expires_in must be a positive number of seconds")
    if not kid or len(kid) > MAX_KID_LENGTH:
        raise ValueError(f"kid must be 1 to {MAX_KID_LENGTH} characters")
    issued_at = int(time.time() if now is None else now)
    claims: dict[str, Any] = {
        "iss": issuer,
        "aud": audience,
        "sub": subject,
        "iat": issued_at,
        "nbf": issued_at,
        "exp": issued_at + expires_in,
        "jti": secrets.token_hex(16),
    }
    try:
        return _jwt.encode(claims, key, algorithm=algorithm, headers={"kid": kid})
    except jwt.InvalidKeyError as error:
        raise SigningKeyError(str(error)) from None


def verify_token(token: str, key_for: KeyLookup, rules: TokenRules) -> dict[str, Any]:
    """The claims of a valid token; TokenError for anything else.

    Only `rules.algorithms` are accepted whatever the header says, and the key is always the one
    `key_for` returns for the header's `kid`: header fields that point at keys (`jku`, `x5u`,
    `jwk`) are never followed. Every claim of REQUIRED_CLAIMS must be present, `iss` and `aud`
    must be the rules', and `exp - iat` at most `rules.max_lifetime_seconds`.
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
        kid = jwt.get_unverified_header(token).get("kid")
    except (jwt.PyJWTError, ValueError, TypeError) as error:
        raise TokenError(f"{type(error).__name__}: {error}") from None
    if not isinstance(kid, str) or not 0 < len(kid) <= MAX_KID_LENGTH:
        raise TokenError(f"the header has no kid of 1 to {MAX_KID_LENGTH} characters")
    key = key_for(kid)
    try:
        claims = _jwt.decode(
            token,
            key,
            algorithms=list(rules.algorithms),
            issuer=rules.issuer,
            audience=rules.audience,
            leeway=rules.leeway,
        )
    except jwt.InvalidKeyError as error:
        raise SigningKeyError(str(error)) from None
    except (jwt.PyJWTError, ValueError, TypeError) as error:
        raise TokenError(f"{type(error).__name__}: {error}") from None
    if not valid_subject(claims["sub"]):
        raise TokenError("the sub claim is not a valid subject")
    if not isinstance(claims["jti"], str) or not claims["jti"]:
        raise TokenError("the jti claim is not a non-empty string")
    lifetime = int(claims["exp"]) - int(claims["iat"])
    if lifetime > rules.max_lifetime_seconds:
        raise TokenError(
            f"the token lives {lifetime} s (exp - iat), over the {rules.max_lifetime_seconds} s "
            "maximum"
        )
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
