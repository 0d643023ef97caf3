"""The signing key's rotation function (entrix.key_rotation, entrix.handlers.rotate_key): the
four steps, their checks, their retries, and the whole protocol as moto's RotateSecret runs it."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from typing import Any

import boto3
import pytest
from moto import mock_aws

from entrix.handlers import rotate_key
from entrix.key_rotation import (
    KEY_ALPHABET,
    KEY_LENGTH,
    RotationError,
    key_of,
    new_secret_string,
    random_key,
    rotate,
)
from entrix.local.lambda_runner import moto_lambdas_in_process
from entrix.local.rotation import moto_rotation_keeps_its_function
from entrix.signing_secret import signing_key_from_secret

SECRET = "jwt-key"
OLD = "11111111-1111-4111-8111-111111111111"
NEW = "22222222-2222-4222-8222-222222222222"
OLD_KEY = "o" * 64


class FakeVersions:
    """Secrets Manager's versions and stages of one secret, as the rotation sees them."""

    def __init__(self, current: str = OLD_KEY, enabled: bool = True) -> None:
        self.enabled = enabled
        self.values: dict[str, str | None] = {OLD: current, NEW: None}
        self.stages: dict[str, list[str]] = {OLD: ["AWSCURRENT"], NEW: ["AWSPENDING"]}
        self.calls: list[str] = []

    def describe(self, secret_id: str) -> Mapping[str, Any]:
        self.calls.append("DescribeSecret")
        stages = {v: list(s) for v, s in self.stages.items() if s}
        return {"RotationEnabled": self.enabled, "VersionIdsToStages": stages}

    def value(self, secret_id: str, *, stage: str, version_id: str | None = None) -> str | None:
        self.calls.append("GetSecretValue")
        for version, stages in self.stages.items():
            if stage in stages and version_id in (None, version):
                return self.values[version]
        return None

    def put_pending(self, secret_id: str, version_id: str, secret_string: str) -> None:
        self.calls.append("PutSecretValue")
        self.values[version_id] = secret_string

    def move_stage(
        self, secret_id: str, stage: str, *, to_version: str | None, from_version: str | None
    ) -> None:
        self.calls.append(f"UpdateSecretVersionStage {stage}")
        if from_version is not None:
            self.stages[from_version].remove(stage)
        if to_version is not None:
            self.stages[to_version].append(stage)
        if stage == "AWSCURRENT" and from_version is not None:
            for stages in self.stages.values():
                if "AWSPREVIOUS" in stages:
                    stages.remove("AWSPREVIOUS")
            self.stages[from_version].append("AWSPREVIOUS")


def run_all(store: FakeVersions, make_key: Any = lambda: "n" * 64) -> None:
    for step in ("createSecret", "setSecret", "testSecret", "finishSecret"):
        rotate(store, SECRET, NEW, step, make_key)


def test_the_four_steps_make_a_new_current_key_and_keep_the_old_one_previous() -> None:
    store = FakeVersions()
    run_all(store)
    assert store.values[NEW] == "n" * 64
    assert store.stages == {OLD: ["AWSPREVIOUS"], NEW: ["AWSCURRENT"]}


def test_every_step_is_idempotent_under_retries() -> None:
    store = FakeVersions()
    keys = iter(["a" * 64, "b" * 64])
    for step in ("createSecret", "setSecret", "testSecret", "finishSecret"):
        rotate(store, SECRET, NEW, step, lambda: next(keys))
        rotate(store, SECRET, NEW, step, lambda: next(keys))
    assert store.values[NEW] == "a" * 64  # the retried createSecret kept the first key
    assert store.stages == {OLD: ["AWSPREVIOUS"], NEW: ["AWSCURRENT"]}


def test_a_finish_retried_after_moving_current_still_clears_pending() -> None:
    store = FakeVersions()
    rotate(store, SECRET, NEW, "createSecret")
    store.move_stage(SECRET, "AWSCURRENT", to_version=NEW, from_version=OLD)  # then it failed
    rotate(store, SECRET, NEW, "finishSecret")
    assert store.stages == {OLD: ["AWSPREVIOUS"], NEW: ["AWSCURRENT"]}


def test_a_json_secret_keeps_its_shape_and_other_fields() -> None:
    store = FakeVersions(current=json.dumps({"signing_key": OLD_KEY, "note": "desk keys"}))
    run_all(store)
    new = store.values[NEW]
    assert new is not None
    assert json.loads(new) == {"signing_key": "n" * 64, "note": "desk keys"}
    assert signing_key_from_secret(new) == "n" * 64


def test_a_json_secret_without_a_signing_key_is_refused() -> None:
    with pytest.raises(RotationError, match="signing_key"):
        new_secret_string(json.dumps({"key": OLD_KEY}), "n" * 64)


def test_a_secret_without_a_key_stops_the_rotation() -> None:
    assert key_of(OLD_KEY) == OLD_KEY
    with pytest.raises(RotationError, match="signing_key"):
        key_of(json.dumps({"x": 1}))


def test_random_keys_have_the_deployed_keys_shape_and_differ() -> None:
    keys = {random_key() for _ in range(20)}
    assert len(keys) == 20
    assert all(len(key) == KEY_LENGTH and set(key) <= set(KEY_ALPHABET) for key in keys)


def test_a_short_pending_key_fails_the_test_step() -> None:
    store = FakeVersions()
    rotate(store, SECRET, NEW, "createSecret", lambda: "short")
    with pytest.raises(RotationError, match="32 bytes"):
        rotate(store, SECRET, NEW, "testSecret")
    assert store.stages[OLD] == ["AWSCURRENT"]


def test_setsecret_has_nothing_to_set() -> None:
    store = FakeVersions()
    rotate(store, SECRET, NEW, "createSecret")
    store.calls.clear()
    assert "nothing to set" in rotate(store, SECRET, NEW, "setSecret")
    assert store.calls == ["DescribeSecret"]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda s: setattr(s, "enabled", False), "not enabled for rotation"),
        (lambda s: s.stages.pop(NEW), "no stage for rotation"),
        (lambda s: s.stages.__setitem__(NEW, ["SOMETHING"]), "not staged AWSPENDING"),
    ],
)
def test_the_checks_of_awss_template_refuse_a_step(change: Any, message: str) -> None:
    store = FakeVersions()
    change(store)
    with pytest.raises(RotationError, match=message):
        rotate(store, SECRET, NEW, "createSecret")
    assert store.values[NEW] is None


def test_an_unknown_step_is_refused() -> None:
    with pytest.raises(RotationError, match="unknown rotation step"):
        rotate(FakeVersions(), SECRET, NEW, "dropSecret")


# -- the whole protocol, as moto's RotateSecret invokes the function ---------------------------


@pytest.fixture
def moto_rotation() -> Iterator[tuple[Any, str, str]]:
    """A secret like JwtSigningKey, and the rotation function in moto's Lambda (run in
    process); the secret's ARN and the function's."""
    with mock_aws(), moto_lambdas_in_process(), moto_rotation_keeps_its_function():
        rotate_key.store.cache_clear()
        client = boto3.client("secretsmanager")
        arn = client.create_secret(Name=SECRET, SecretString=OLD_KEY)["ARN"]
        role = boto3.client("iam").create_role(RoleName="rotation", AssumeRolePolicyDocument="{}")[
            "Role"
        ]["Arn"]
        function = boto3.client("lambda").create_function(
            FunctionName="rotate-key",
            Runtime="python3.13",
            Role=role,
            Handler="entrix.handlers.rotate_key.handler",
            Code={"ZipFile": b"not used: the handler runs from the installed package"},
            Timeout=30,  # the rotation function's, as infra/constructs/key_rotation.py sets it
        )["FunctionArn"]
        yield client, arn, function
        rotate_key.store.cache_clear()


def stages(client: Any, arn: str) -> dict[str, list[str]]:
    versions = client.describe_secret(SecretId=arn)["VersionIdsToStages"]
    return {version: sorted(labels) for version, labels in versions.items() if labels}


def test_rotate_secret_runs_the_four_steps_and_a_second_rotation_retires_the_first_key(
    moto_rotation: tuple[Any, str, str],
) -> None:
    client, arn, function = moto_rotation
    first = client.get_secret_value(SecretId=arn)["VersionId"]
    rules = {"AutomaticallyAfterDays": 30}
    second = client.rotate_secret(SecretId=arn, RotationLambdaARN=function, RotationRules=rules)[
        "VersionId"
    ]
    assert stages(client, arn) == {first: ["AWSPREVIOUS"], second: ["AWSCURRENT"]}
    new_key = client.get_secret_value(SecretId=arn, VersionStage="AWSCURRENT")["SecretString"]
    assert new_key != OLD_KEY and len(new_key) == KEY_LENGTH
    # As the runbook's `aws secretsmanager rotate-secret --secret-id`: the configured function.
    client.rotate_secret(SecretId=arn)
    (third,) = set(stages(client, arn)) - {first, second}
    assert stages(client, arn) == {second: ["AWSPREVIOUS"], third: ["AWSCURRENT"]}
    previous = client.get_secret_value(SecretId=arn, VersionStage="AWSPREVIOUS")
    assert previous["SecretString"] == new_key
    newest = client.get_secret_value(SecretId=arn, VersionStage="AWSCURRENT")["SecretString"]
    assert newest not in (OLD_KEY, new_key) and len(newest) == KEY_LENGTH
