"""AWS clients for Lambda code, made with botocore alone.

The Lambda runtime ships boto3, but importing it also loads its resource layer, which these
functions never use: a botocore client is the same low-level client for less import time.
"""

from __future__ import annotations

from typing import Any

import botocore.session


def client(service: str) -> Any:
    """A client configured from the environment (region, credentials, AWS_ENDPOINT_URL)."""
    return botocore.session.get_session().create_client(service)
