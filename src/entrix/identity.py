"""Who a request acts for: the token subject that owns orders, and the clock leeway on tokens.

Standard library only: the authorizer (with PyJWT) and the order handlers (without it) share
these rules.
"""

from __future__ import annotations

import re

# Clock skew tolerated on a token's exp, nbf and iat, in seconds.
LEEWAY_SECONDS = 30
# A subject owns its orders: the table's key is `<sub>#<record_id>`, so a subject is 1 to
# MAX_SUBJECT_CHARS characters without `#` or control characters (the key stays unambiguous,
# within DynamoDB's 2,048-byte partition key beside a 1,024-byte record_id, and readable in logs).
MAX_SUBJECT_CHARS = 128
_SUBJECT = re.compile(rf"[^#\x00-\x1f\x7f]{{1,{MAX_SUBJECT_CHARS}}}")


def valid_subject(subject: object) -> bool:
    """Whether `subject` may own orders: a string of 1 to MAX_SUBJECT_CHARS characters without
    `#` or control characters."""
    return isinstance(subject, str) and _SUBJECT.fullmatch(subject) is not None
