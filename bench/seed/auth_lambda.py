"""The seed's auth lambda as it loads: boto3 and PyJWT imported at module level."""

import boto3  # noqa: F401
import jwt  # noqa: F401
