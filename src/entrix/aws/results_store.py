"""The results bucket: one JSON object per accepted order."""

from __future__ import annotations

from typing import TYPE_CHECKING

from botocore.exceptions import BotoCoreError, ClientError

from entrix.auction.results import ResultStoreUnavailable

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client


class ResultsStore:
    """Writes result objects; any failure is reported as the retryable ResultStoreUnavailable."""

    def __init__(self, client: S3Client, bucket: str) -> None:
        self._client = client
        self._bucket = bucket

    def put(self, key: str, body: bytes) -> None:
        try:
            self._client.put_object(
                Bucket=self._bucket, Key=key, Body=body, ContentType="application/json"
            )
        except (ClientError, BotoCoreError) as error:
            raise ResultStoreUnavailable(
                f"writing s3://{self._bucket}/{key} failed: {error}"
            ) from error
