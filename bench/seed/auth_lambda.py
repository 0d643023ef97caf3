"""The seed's auth lambda: a REQUEST authorizer that reads the signing key on every call.

boto3 and PyJWT are imported at module level and the Secrets Manager client is built at import;
each invocation fetches the key (nothing is cached) and verifies the Bearer token with PyJWT.
"""

import os
from typing import Any

import boto3
import jwt

secrets: Any = boto3.client("secretsmanager")


def lambda_handler(event, context):
    headers = event.get("headers") or {}
    authorization = headers.get("Authorization") or headers.get("authorization") or ""
    token = authorization.partition(" ")[2]
    key = secrets.get_secret_value(SecretId=os.environ["JWT_SECRET_ARN"])["SecretString"]
    try:
        claims = jwt.decode(token, key, algorithms=["HS256"])
    except jwt.PyJWTError:
        raise Exception("Unauthorized") from None  # API Gateway answers this message with a 401
    return {
        "principalId": claims["sub"],
        "policyDocument": {
            "Version": "2012-10-17",
            "Statement": [
                {"Action": "execute-api:Invoke", "Effect": "Allow", "Resource": event["methodArn"]}
            ],
        },
    }
