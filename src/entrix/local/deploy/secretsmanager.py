"""Secrets Manager secrets, with `GenerateSecretString` values drawn by moto's password generator.

CloudFormation generates the value from the same rules as the GetRandomPassword API; moto's
CreateSecret has no such option, so the value comes from the generator behind moto's
GetRandomPassword (`moto.secretsmanager.utils.random_password`) and is stored as SecretString.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from moto.secretsmanager.utils import random_password

from entrix.local.deploy.deployment import DeploymentError
from entrix.local.template import Resource

if TYPE_CHECKING:
    from entrix.local.deploy.deployer import Deployer

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


def create_secret(deployer: Deployer, resource: Resource, p: dict[str, Any]) -> None:
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
