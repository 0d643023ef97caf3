"""Secrets Manager, as the signing key's rotation (entrix.key_rotation) uses it."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from botocore.exceptions import ClientError

from entrix.key_rotation import PENDING


class SecretsManagerVersions:
    """`entrix.key_rotation.SecretVersions` over a Secrets Manager client: DescribeSecret,
    GetSecretValue, PutSecretValue and UpdateSecretVersionStage, the rotation role's four."""

    def __init__(self, client: Any) -> None:
        self._client = client

    def describe(self, secret_id: str) -> Mapping[str, Any]:
        response: Mapping[str, Any] = self._client.describe_secret(SecretId=secret_id)
        return response

    def value(self, secret_id: str, *, stage: str, version_id: str | None = None) -> str | None:
        arguments = {"SecretId": secret_id, "VersionStage": stage}
        if version_id is not None:
            arguments["VersionId"] = version_id
        try:
            response = self._client.get_secret_value(**arguments)
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") == "ResourceNotFoundException":
                return None
            raise
        secret_string = response.get("SecretString")
        return secret_string if isinstance(secret_string, str) else None

    def put_pending(self, secret_id: str, version_id: str, secret_string: str) -> None:
        self._client.put_secret_value(
            SecretId=secret_id,
            ClientRequestToken=version_id,
            SecretString=secret_string,
            VersionStages=[PENDING],
        )

    def move_stage(
        self,
        secret_id: str,
        stage: str,
        *,
        to_version: str | None,
        from_version: str | None,
    ) -> None:
        arguments = {"SecretId": secret_id, "VersionStage": stage}
        if to_version is not None:
            arguments["MoveToVersionId"] = to_version
        if from_version is not None:
            arguments["RemoveFromVersionId"] = from_version
        self._client.update_secret_version_stage(**arguments)
