"""The local Parameters and Secrets Lambda Extension: its HTTP API, and functions that have it."""

import json
import os
import socket
import urllib.error
import urllib.request

import boto3
import pytest
from moto import mock_aws

from entrix.aws import secrets
from entrix.local import call_log
from entrix.local.deploy import Deployer, DeploymentError
from entrix.local.lambda_runner import applied_environment, invoke, moto_lambdas_in_process
from entrix.local.secrets_extension import LocalSecretsExtension, is_extension_layer
from entrix.local.template import PseudoParameters, Template
from tests.local.templates import service_template

REGION = "eu-west-1"
ARM64_LAYER = (
    "arn:aws:lambda:eu-west-1:015030872274:layer:"
    "AWS-Parameters-and-Secrets-Lambda-Extension-Arm64:4"
)
X86_LAYER = (
    "arn:aws:lambda:us-east-1:177933569100:layer:AWS-Parameters-and-Secrets-Lambda-Extension:11"
)


def read_secret(event, context):
    """A handler reading its secret as the authorizer does (entrix.aws.secrets)."""
    version = secrets.fetch_secret_version(os.environ["SECRET"])
    return version.secret_string if version else None


@pytest.fixture
def secretsmanager():
    with mock_aws():
        yield boto3.client("secretsmanager", region_name=REGION)


@pytest.fixture
def extension(secretsmanager):
    served = LocalSecretsExtension(secretsmanager)
    yield served
    served.stop()


def get(port, path, token=None):
    """(status, body) of a GET to the extension, as the function's code sends it."""
    headers = {} if token is None else {secrets.EXTENSION_TOKEN_HEADER: token}
    request = urllib.request.Request(f"http://localhost:{port}{path}", headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as reply:
            return reply.status, reply.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def test_the_extension_layer_is_recognised_by_its_arn():
    assert is_extension_layer(ARM64_LAYER)
    assert is_extension_layer(X86_LAYER)
    assert not is_extension_layer("arn:aws:lambda:eu-west-1:123456789012:layer:Entrix-Deps:1")
    assert not is_extension_layer(ARM64_LAYER + "-copy")
    assert not is_extension_layer({"Ref": "Layer"})


def test_a_registered_function_reads_a_secret_with_its_token(secretsmanager, extension):
    created = secretsmanager.create_secret(Name="jwt-key", SecretString="s3cret")
    variables = extension.register("fn-a")
    port = int(variables[secrets.EXTENSION_PORT_VARIABLE])

    status, body = get(
        port, f"/secretsmanager/get?secretId={created['ARN']}", variables["AWS_SESSION_TOKEN"]
    )

    assert status == 200
    document = json.loads(body)
    assert document["SecretString"] == "s3cret"
    assert document["ARN"] == created["ARN"]
    assert document["Name"] == "jwt-key"
    assert isinstance(document["CreatedDate"], float)
    assert "ResponseMetadata" not in document
    assert extension.served == {("fn-a", 200): 1}


@pytest.mark.parametrize("token", [None, "", "not-the-token"])
def test_a_missing_or_wrong_token_is_refused(secretsmanager, extension, token):
    secretsmanager.create_secret(Name="jwt-key", SecretString="s3cret")
    port = int(extension.register("fn-a")[secrets.EXTENSION_PORT_VARIABLE])
    status, body = get(port, "/secretsmanager/get?secretId=jwt-key", token)
    assert status == 401
    assert b"s3cret" not in body
    assert not extension.served


def test_each_function_has_its_own_token(secretsmanager, extension):
    secretsmanager.create_secret(Name="jwt-key", SecretString="s3cret")
    first = extension.register("fn-a")
    second = extension.register("fn-b")
    assert first["AWS_SESSION_TOKEN"] != second["AWS_SESSION_TOKEN"]
    assert first[secrets.EXTENSION_PORT_VARIABLE] == second[secrets.EXTENSION_PORT_VARIABLE]
    port = int(first[secrets.EXTENSION_PORT_VARIABLE])
    assert get(port, "/secretsmanager/get?secretId=jwt-key", second["AWS_SESSION_TOKEN"])[0] == 200
    assert extension.served == {("fn-b", 200): 1}
    assert extension.functions == ["fn-a", "fn-b"]


def test_unknown_secret_is_404_and_a_missing_id_400(extension):
    variables = extension.register("fn-a")
    port, token = int(variables[secrets.EXTENSION_PORT_VARIABLE]), variables["AWS_SESSION_TOKEN"]
    assert get(port, "/secretsmanager/get?secretId=no-such-secret", token)[0] == 404
    assert get(port, "/secretsmanager/get", token)[0] == 400
    assert get(port, "/systemsmanager/parameters/get?name=x", token)[0] == 404
    assert extension.served == {("fn-a", 404): 2, ("fn-a", 400): 1}


def test_a_version_stage_is_passed_on(secretsmanager, extension):
    secretsmanager.create_secret(Name="jwt-key", SecretString="old")
    secretsmanager.put_secret_value(SecretId="jwt-key", SecretString="new")
    variables = extension.register("fn-a")
    port, token = int(variables[secrets.EXTENSION_PORT_VARIABLE]), variables["AWS_SESSION_TOKEN"]
    current = get(port, "/secretsmanager/get?secretId=jwt-key", token)
    previous = get(port, "/secretsmanager/get?secretId=jwt-key&versionStage=AWSPREVIOUS", token)
    assert json.loads(current[1])["SecretString"] == "new"
    assert json.loads(previous[1])["SecretString"] == "old"


def test_the_call_is_recorded_as_the_functions_own(secretsmanager, extension):
    secretsmanager.create_secret(Name="jwt-key", SecretString="s3cret")
    variables = extension.register("fn-a")
    with call_log.recording() as calls, applied_environment(variables):
        version = secrets.fetch_secret_version("jwt-key")
    assert version is not None
    assert version.secret_string == "s3cret"
    assert [(c.function, c.service, c.operation, dict(c.parameters)) for c in calls] == [
        (
            "fn-a",
            "secretsmanager",
            "GetSecretValue",
            # The extension asks for the current version: secretsmanager:VersionStage.
            {"SecretId": "jwt-key", "VersionStage": "AWSCURRENT"},
        )
    ]


def test_requests_are_reported_and_stop_frees_the_port(secretsmanager):
    secretsmanager.create_secret(Name="jwt-key", SecretString="s3cret")
    heard = []
    extension = LocalSecretsExtension(
        secretsmanager, on_request=lambda *request: heard.append(request)
    )
    extension.stop()  # nothing registered, nothing served: a no-op
    variables = extension.register("fn-a")
    port = int(variables[secrets.EXTENSION_PORT_VARIABLE])
    get(port, "/secretsmanager/get?secretId=jwt-key", variables["AWS_SESSION_TOKEN"])
    extension.stop()
    assert heard == [("fn-a", "jwt-key", 200)]
    with socket.socket() as client:
        assert client.connect_ex(("127.0.0.1", port)) != 0


# --- deployment ----------------------------------------------------------------------------


def _template_with_layers(*extra_layers):
    template = service_template()
    process = template["Resources"]["Process"]["Properties"]
    process["Handler"] = f"{__name__}.read_secret"
    process["Layers"] = [*process["Layers"], *extra_layers]
    return Template.from_dict(template)


def _client(service):
    return boto3.client(service, region_name=REGION)


def test_a_function_with_the_extension_layer_reads_through_the_local_extension():
    with mock_aws(), moto_lambdas_in_process():
        extension = LocalSecretsExtension(_client("secretsmanager"))
        try:
            deployment = Deployer(
                _template_with_layers(ARM64_LAYER),
                _client,
                pseudo=PseudoParameters(region=REGION),
                secrets_extension=extension,
            ).deploy()
            spec = deployment.functions["Entrix-Process"]
            assert spec.environment[secrets.EXTENSION_PORT_VARIABLE] == str(extension.port)
            assert spec.environment["AWS_SESSION_TOKEN"]
            layers = _client("lambda").get_function(FunctionName="Entrix-Process")["Configuration"][
                "Layers"
            ]
            assert [layer["Arn"] for layer in layers] == [deployment_layer(deployment)]

            secret_id = spec.environment["SECRET"]
            value = _client("secretsmanager").get_secret_value(SecretId=secret_id)
            with call_log.recording() as calls:
                invocation = invoke(spec, {})
            assert not invocation.errored, invocation.payload
            assert invocation.json() == value["SecretString"]
            assert extension.served == {("Entrix-Process", 200): 1}
            assert [(c.function, c.operation) for c in calls] == [
                ("Entrix-Process", "GetSecretValue")
            ]
        finally:
            extension.stop()


def deployment_layer(deployment):
    (arn,) = _client("lambda").list_layer_versions(LayerName=deployment.names["Layer"])[
        "LayerVersions"
    ]
    return arn["LayerVersionArn"]


def test_the_extension_layer_without_a_local_extension_is_refused():
    with mock_aws():
        deployer = Deployer(
            _template_with_layers(ARM64_LAYER), _client, pseudo=PseudoParameters(region=REGION)
        )
        with pytest.raises(DeploymentError, match="Parameters and Secrets Lambda Extension"):
            deployer.deploy()


def test_an_unknown_layer_is_refused_naming_it():
    other = "arn:aws:lambda:eu-west-1:999999999999:layer:SomeoneElsesLayer:3"
    with mock_aws():
        deployer = Deployer(
            _template_with_layers(other), _client, pseudo=PseudoParameters(region=REGION)
        )
        with pytest.raises(DeploymentError, match="SomeoneElsesLayer:3 is neither"):
            deployer.deploy()
