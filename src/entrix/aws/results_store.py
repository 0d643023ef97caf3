"""The results bucket: a run's batches (read by the state machine) and accepted results."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from entrix.auction.results import ResultStoreUnavailable

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client


class ResultsStore:
    """Writes objects; any failure is reported as ResultStoreUnavailable."""

    def __init__(self, client: S3Client, bucket: str) -> None:
        self._client = client
        self._bucket = bucket

    def put_batches(self, key: str, batches: list[dict[str, Any]]) -> None:
        """The run's batches as one JSON array, the shape the Distributed Map's reader takes."""
        body = json.dumps(batches, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        self._put(key, body, "application/json")

    def put_lines(self, key: str, body: bytes) -> None:
        """One batch's accepted results, as JSON Lines."""
        self._put(key, body, "application/x-ndjson")

    def _put(self, key: str, body: bytes, content_type: str) -> None:
        try:
            self._client.put_object(
                Bucket=self._bucket, Key=key, Body=body, ContentType=content_type
            )
        except (ClientError, BotoCoreError) as error:
            raise ResultStoreUnavailable(
                f"writing s3://{self._bucket}/{key} failed: {error}"
            ) from error
