"""Secrets Manager secrets, with a value generated for `GenerateSecretString`."""

from __future__ import annotations

import json
import secrets
import string
from typing import TYPE_CHECKING, Any

from entrix.local.deploy.deployment import DeploymentError
from entrix.local.template import Resource

if TYPE_CHECKING:
    from entrix.local.deploy.deployer import Deployer


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
    """A value for `GenerateSecretString`, honouring its character rules, drawn with `secrets`."""
    excluded = set(spec.get("ExcludeCharacters", ""))
    classes = []
    if not spec.get("ExcludeLowercase"):
        classes.append(string.ascii_lowercase)
    if not spec.get("ExcludeUppercase"):
        classes.append(string.ascii_uppercase)
    if not spec.get("ExcludeNumbers"):
        classes.append(string.digits)
    if not spec.get("ExcludePunctuation"):
        classes.append(string.punctuation)
    if spec.get("IncludeSpace"):
        classes.append(" ")
    classes = ["".join(c for c in chars if c not in excluded) for chars in classes]
    classes = [chars for chars in classes if chars]
    if not classes:
        raise DeploymentError("GenerateSecretString excludes every character")
    alphabet = "".join(classes)
    length = int(spec.get("PasswordLength", 32))
    value = [secrets.choice(alphabet) for _ in range(length)]
    if spec.get("RequireEachIncludedType", True) and length >= len(classes):
        positions = secrets.SystemRandom().sample(range(length), len(classes))
        for position, chars in zip(positions, classes, strict=True):
            value[position] = secrets.choice(chars)
    password = "".join(value)
    if "SecretStringTemplate" in spec:
        document = json.loads(spec["SecretStringTemplate"])
        document[spec["GenerateStringKey"]] = password
        return json.dumps(document)
    return password
