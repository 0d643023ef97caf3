"""How a signing key is kept in its secret: one reading for everyone who needs the key.

The authorizer, `entrix token` and the key rotation function all read it here. This module
imports nothing but the standard library, because the rotation function ships without PyJWT.
"""

from __future__ import annotations

import json

# A secret stored as a JSON object keeps its signing key under this field.
SIGNING_KEY_FIELD = "signing_key"


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
