"""The results bucket: a run's batches (read by the state machine), and each batch's results and
rejections objects (JSON Lines)."""

from __future__ import annotations

import json
import threading
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from entrix.auction.results import ObjectChanged, ResultStoreUnavailable

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_s3.type_defs import PutObjectRequestTypeDef

# S3's answers to a conditional write whose condition does not hold (412), or which raced another
# conditional write of the same key (409).
_CONDITION_FAILED = ("PreconditionFailed", "ConditionalRequestConflict")


class ResultsStore:
    """Reads and writes objects; any failure is reported as ResultStoreUnavailable, which says
    whether a failed write may have landed all the same."""

    def __init__(self, client: S3Client, bucket: str) -> None:
        self._client = client
        self._bucket = bucket
        # Whether an attempt of this thread's current put got no answer (a connection error or
        # read timeout, which botocore retries): the object may hold what it sent.
        self._unanswered = threading.local()
        client.meta.events.register("needs-retry.s3.PutObject", self._note_unanswered)

    def _note_unanswered(self, caught_exception: Exception | None = None, **_: Any) -> None:
        if caught_exception is not None:
            self._unanswered.seen = True

    def put_batches(self, key: str, batches: list[dict[str, Any]]) -> None:
        """The run's batches as one JSON array, the shape the Distributed Map's reader takes."""
        body = json.dumps(batches, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        self._put(key, body, "application/json")

    def put_lines(self, key: str, body: bytes) -> None:
        """One batch's results or rejections, as JSON Lines."""
        self._put(key, body, "application/x-ndjson")

    def put_lines_over(self, key: str, body: bytes, etag: str | None) -> None:
        """One batch's results or rejections, only over the object as it was read (`etag`; None:
        only where there is no object yet); ObjectChanged when it changed since."""
        self._put(key, body, "application/x-ndjson", only_over=etag or "no object")

    def read_lines(self, key: str) -> list[str]:
        """The lines of the JSON Lines object at `key`; none when there is no such object."""
        return self.read_object(key)[0]

    def read_object(self, key: str) -> tuple[list[str], str | None]:
        """The lines of the JSON Lines object at `key` and its ETag; none and None when there is
        no such object."""
        try:
            response = self._client.get_object(Bucket=self._bucket, Key=key)
            body = response["Body"].read()
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") == "NoSuchKey":
                return [], None
            raise ResultStoreUnavailable(
                f"reading s3://{self._bucket}/{key} failed: {error}"
            ) from error
        except BotoCoreError as error:
            raise ResultStoreUnavailable(
                f"reading s3://{self._bucket}/{key} failed: {error}"
            ) from error
        return body.decode("utf-8").splitlines(), response["ETag"]

    def _put(self, key: str, body: bytes, content_type: str, only_over: str | None = None) -> None:
        """Put the object; given `only_over` (an ETag, or "no object"), only over that."""
        self._unanswered.seen = False
        request: PutObjectRequestTypeDef = {
            "Bucket": self._bucket,
            "Key": key,
            "Body": body,
            "ContentType": content_type,
        }
        if only_over == "no object":
            request["IfNoneMatch"] = "*"
        elif only_over is not None:
            request["IfMatch"] = only_over
        try:
            self._client.put_object(**request)
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") in _CONDITION_FAILED:
                raise ObjectChanged(
                    f"s3://{self._bucket}/{key} changed since it was read"
                ) from error
            # S3 answered with an error; unless an earlier attempt went unanswered, nothing landed.
            raise ResultStoreUnavailable(
                f"writing s3://{self._bucket}/{key} failed: {error}",
                maybe_written=bool(self._unanswered.seen),
            ) from error
        except BotoCoreError as error:
            raise ResultStoreUnavailable(
                f"writing s3://{self._bucket}/{key} failed: {error}"
            ) from error
