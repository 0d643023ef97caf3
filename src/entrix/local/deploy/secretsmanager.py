"""Secrets Manager secrets, with `GenerateSecretString` values drawn by moto's password generator,
and their rotation schedules.

CloudFormation generates the value from the same rules as the GetRandomPassword API; moto's
CreateSecret has no such option, so the value comes from the generator behind moto's
GetRandomPassword (`moto.secretsmanager.utils.random_password`) and is stored as SecretString.

A rotation schedule is configured as CloudFormation configures it, with RotateSecret: moto then
invokes the rotation function (run in process, entrix.local.lambda_runner) for every step, the
function calling back into the same endpoint. `RotateImmediatelyOnUpdate` is mirrored: true (the
CloudFormation default) rotates at start, so the secret starts with an AWSPREVIOUS version;
false runs the testSecret step only, on a pending copy of the current value that is then
removed, as Secrets Manager does. There is no schedule locally: moto never rotates by itself, a
rotation is started by hand (`aws secretsmanager rotate-secret`, docs/local-runtime.md).
"""

from __future__ import annotations

import json
import re
from typing import Any

from moto.secretsmanager.utils import random_password

from entrix.local.deploy.deployment import DeploymentError
from entrix.local.deploy.registry import DeployContext, creates
from entrix.local.template import Resource

# GetRandomPassword's parameters, which `GenerateSecretString` shares, with their defaults.
PASSWORD_RULES: dict[str, Any] = {
    "PasswordLength": 32,
    "ExcludeCharacters": "",
    "ExcludeNumbers": False,
    "ExcludePunctuation": False,
    "ExcludeUppercase": False,
    "ExcludeLowercase": False,
    "IncludeSpace": False,
    "RequireEachIncludedType": True,
}


@creates("AWS::SecretsManager::Secret")
def create_secret(deployer: DeployContext, resource: Resource, p: dict[str, Any]) -> None:
    name = deployer.name(resource, p.get("Name"), 512)
    if "SecretString" in p:
        value = p["SecretString"]
    elif "GenerateSecretString" in p:
        value = generate_secret_string(p["GenerateSecretString"])
    else:
        raise DeploymentError("a secret needs SecretString or GenerateSecretString")
    arguments: dict[str, Any] = {"Name": name, "SecretString": value}
    if "Description" in p:
        arguments["Description"] = p["Description"]
    if p.get("Tags"):
        arguments["Tags"] = p["Tags"]
    arn = deployer.clients("secretsmanager").create_secret(**arguments)["ARN"]
    deployer.provide(resource, arn, Id=arn)


def generate_secret_string(spec: dict[str, Any]) -> str:
    """The value for a `GenerateSecretString` spec: a password following its rules, placed
    under `GenerateStringKey` in `SecretStringTemplate` when the spec has one."""
    rules = {key: spec.get(key, default) for key, default in PASSWORD_RULES.items()}
    length = int(rules["PasswordLength"])
    if not 4 <= length <= 4096:  # the bounds moto's GetRandomPassword enforces
        raise DeploymentError(f"GenerateSecretString PasswordLength {length} is not 4 to 4096")
    try:
        password = random_password(
            password_length=length,
            exclude_characters=rules["ExcludeCharacters"],
            exclude_numbers=rules["ExcludeNumbers"],
            exclude_punctuation=rules["ExcludePunctuation"],
            exclude_uppercase=rules["ExcludeUppercase"],
            exclude_lowercase=rules["ExcludeLowercase"],
            include_space=rules["IncludeSpace"],
            require_each_included_type=rules["RequireEachIncludedType"],
        )
    except IndexError:  # random.choice of an empty character class
        raise DeploymentError(
            "GenerateSecretString excludes every character of an included type"
        ) from None
    if "SecretStringTemplate" in spec:
        document = json.loads(spec["SecretStringTemplate"])
        document[spec["GenerateStringKey"]] = password
        return json.dumps(document)
    return password


# RotationRules CloudFormation takes that the local endpoint can store: moto keeps a number of
# days (AutomaticallyAfterDays), so a ScheduleExpression must be `rate(N days)`.
_RATE_IN_DAYS = re.compile(r"rate\((\d+) days?\)")


@creates("AWS::SecretsManager::RotationSchedule")
def create_rotation_schedule(
    deployer: DeployContext, resource: Resource, p: dict[str, Any]
) -> None:
    secret_id = p["SecretId"]
    if "HostedRotationLambda" in p:
        raise DeploymentError("a hosted rotation Lambda is not emulated: give RotationLambdaARN")
    function_arn = p.get("RotationLambdaARN")
    if not function_arn:
        raise DeploymentError("a rotation schedule needs RotationLambdaARN")
    days = rotation_days(p.get("RotationRules", {}))
    immediately = p.get("RotateImmediatelyOnUpdate", True) not in (False, "false")
    client = deployer.clients("secretsmanager")
    client.rotate_secret(
        SecretId=secret_id,
        RotationLambdaARN=function_arn,
        RotationRules={"AutomaticallyAfterDays": days},
        RotateImmediately=immediately,
    )
    if not immediately:
        # Secrets Manager removes the pending version its testSecret run made; moto leaves it.
        versions = client.describe_secret(SecretId=secret_id)["VersionIdsToStages"]
        for version, stages in versions.items():
            if "AWSPENDING" in stages and "AWSCURRENT" not in stages:
                client.update_secret_version_stage(
                    SecretId=secret_id, VersionStage="AWSPENDING", RemoveFromVersionId=version
                )
    deployer.provide(resource, secret_id)


def rotation_days(rules: dict[str, Any]) -> int:
    """The rotation interval in days, from AutomaticallyAfterDays or `rate(N days)`."""
    if "AutomaticallyAfterDays" in rules:
        return int(rules["AutomaticallyAfterDays"])
    found = _RATE_IN_DAYS.fullmatch(str(rules.get("ScheduleExpression", "")).strip())
    if found is None:
        raise DeploymentError(
            f"RotationRules {rules!r}: the local runtime takes AutomaticallyAfterDays or "
            "a ScheduleExpression rate(N days)"
        )
    return int(found.group(1))
