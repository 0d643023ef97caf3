"""One line for an AWS error a command cannot go on after, saying what to do when it is about the
caller's setup (botocore's own words name neither the option nor the variables to set)."""

from __future__ import annotations

from botocore.exceptions import NoCredentialsError, NoRegionError

NO_REGION = "no AWS region: pass --region, or set AWS_DEFAULT_REGION or your profile's region"
NO_CREDENTIALS = (
    "no AWS credentials: set AWS_PROFILE (a profile from `aws configure` or `aws configure sso`), "
    "or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
)


def describe(error: Exception) -> str:
    """The line to print for `error`."""
    if isinstance(error, NoRegionError):
        return NO_REGION
    if isinstance(error, NoCredentialsError):
        return NO_CREDENTIALS
    return str(error)
