"""The API Gateway emulation: routing, authorizer enforcement and cache, limits, event shape, and
the refusal of API features the template does not use."""

import base64
import dataclasses
import http.client
import json

import boto3
import pytest
from moto import mock_aws

from entrix.local import apigateway
from entrix.local.apigateway import (
    ApiGateway,
    ApiRequest,
    ApiServer,
    RestApi,
    authorizer,
)
from entrix.local.apigateway.proxy import GATEWAY_ERRORS
from entrix.local.deploy import Deployer, DeploymentError
from entrix.local.lambda_runner import Invocation, invoke
from entrix.local.template import PseudoParameters, Template
from tests.local import fake_handler_state
from tests.local.templates import api_template


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def deploy(template):
    with mock_aws():
        return Deployer(
            Template.from_dict(template),
            lambda service: boto3.client(service, region_name="eu-west-1"),
            pseudo=PseudoParameters(),
        ).deploy()


def make_gateway(**template_options):
    deployment = deploy(api_template(**template_options))
    api = RestApi.from_parts(deployment.api, deployment.api_ids)
    clock = Clock()
    gateway = ApiGateway(
        api, lambda name, event: invoke(deployment.functions[name], event), clock=clock
    )
    return gateway, clock


@pytest.fixture
def gateway():
    fake_handler_state.AUTHORIZER_CALLS.clear()
    return make_gateway()[0]


def request(method, path, token="let-me-in", body=b"", headers=()):
    all_headers = [("Host", "localhost"), *headers]
    if token is not None:
        all_headers.append(("Authorization", token))
    return ApiRequest(method=method, raw_path=path, headers=all_headers, body=body)


def event_of(response):
    assert response.status == 201, response.body
    return response.json()["event"]


def test_routes_come_from_the_template(gateway):
    routes = {(r.http_method, r.resource_path) for r in gateway.api.routes}
    assert routes == {
        ("POST", "/orders"),
        ("GET", "/orders/{record_id}"),
        ("DELETE", "/orders/{record_id}"),
        ("GET", "/orders"),
    }
    assert gateway.api.stage == "prod"


@pytest.mark.parametrize(
    ("method", "path"),
    [("GET", "/nowhere"), ("DELETE", "/orders"), ("PUT", "/orders/x"), ("POST", "/orders/x/y")],
)
def test_unknown_route_or_method_is_missing_authentication_token(gateway, method, path):
    response = gateway.handle(request(method, path))
    assert response.status == 403
    assert response.json()["message"] == "Missing Authentication Token"
    assert response.json()["code"] == "MISSING_AUTHENTICATION_TOKEN"
    assert response.header("X-Entrix") == "gateway"  # DEFAULT_4XX gateway response applies
    assert fake_handler_state.AUTHORIZER_CALLS == []


def test_proxy_event_has_api_gateway_shape(gateway):
    response = gateway.handle(
        request(
            "GET",
            "/orders/rec%201?x=1&x=2&y=",
            headers=[("X-Multi", "a"), ("X-Multi", "b"), ("User-Agent", "tests")],
        )
    )
    event = event_of(response)
    assert event["resource"] == "/orders/{record_id}"
    assert event["path"] == "/orders/rec%201"
    assert event["httpMethod"] == "GET"
    assert event["pathParameters"] == {"record_id": "rec 1"}
    assert event["queryStringParameters"] == {"x": "2", "y": ""}
    assert event["multiValueQueryStringParameters"] == {"x": ["1", "2"], "y": [""]}
    assert event["headers"]["X-Multi"] == "b"
    assert event["multiValueHeaders"]["X-Multi"] == ["a", "b"]
    assert event["body"] is None
    assert event["isBase64Encoded"] is False
    context = event["requestContext"]
    assert context["stage"] == "prod"
    assert context["resourcePath"] == "/orders/{record_id}"
    assert context["identity"]["sourceIp"] == "127.0.0.1"
    assert context["identity"]["userAgent"] == "tests"
    assert context["requestId"] == response.header("x-amzn-RequestId")
    assert context["authorizer"]["principalId"] == "user-1"
    assert context["authorizer"]["sub"] == "user-1"
    assert context["authorizer"]["admin"] == "false"  # context values arrive as strings
    assert context["authorizer"]["level"] == "3"
    assert response.json()["greeting"] == "proxied"  # the integration's own environment


def test_delete_reaches_its_route_with_the_path_parameter(gateway):
    event = event_of(gateway.handle(request("DELETE", "/orders/rec-7")))
    assert event["httpMethod"] == "DELETE"
    assert event["resource"] == "/orders/{record_id}"
    assert event["pathParameters"] == {"record_id": "rec-7"}
    assert event["requestContext"]["authorizer"]["sub"] == "user-1"


def test_a_route_without_path_parameters_gets_the_query_string_as_aws_sends_it(gateway):
    """GET /orders: no path parameters (null), every query string value decoded (`%2B` is a
    plus, a bare `+` a space, as API Gateway REST decodes them), the last of a repeated name in
    queryStringParameters and all of them in multiValueQueryStringParameters."""
    event = event_of(
        gateway.handle(
            request("GET", "/orders?since=1&limit=5&limit=10&cursor=YWJj%2Bx-_&status=a+b%20c")
        )
    )
    assert event["resource"] == "/orders"
    assert event["path"] == "/orders"
    assert event["pathParameters"] is None
    assert event["queryStringParameters"] == {
        "since": "1",
        "limit": "10",
        "cursor": "YWJj+x-_",
        "status": "a b c",
    }
    assert event["multiValueQueryStringParameters"] == {
        "since": ["1"],
        "limit": ["5", "10"],
        "cursor": ["YWJj+x-_"],
        "status": ["a b c"],
    }


def test_without_a_query_string_both_query_maps_are_null(gateway):
    event = event_of(gateway.handle(request("GET", "/orders/r1")))
    assert event["queryStringParameters"] is None
    assert event["multiValueQueryStringParameters"] is None


def _answering(gateway, reply):
    """The gateway with its integrations answering `reply` (the authorizer runs as before)."""
    authorize = gateway.invoke

    def invoke(name, event):
        if "methodArn" in event:
            return authorize(name, event)
        return Invocation(json.dumps(reply), errored=False)

    gateway.invoke = invoke
    return gateway


def test_a_204_reply_has_no_body(gateway):
    _answering(gateway, {"statusCode": 204, "headers": {}, "body": "ignored"})
    response = gateway.handle(request("DELETE", "/orders/r1"))
    assert response.status == 204
    assert response.body == b""


def test_reply_headers_pass_through_retry_after_included(gateway):
    reply = {
        "statusCode": 503,
        "headers": {"Content-Type": "application/json", "Retry-After": "1"},
        "body": json.dumps({"message": "m", "code": "ORDERS_NOT_STORED", "request_id": "r"}),
    }
    response = _answering(gateway, reply).handle(request("POST", "/orders", body=b"[]"))
    assert response.status == 503
    assert response.header("Retry-After") == "1"
    assert response.header("Content-Type") == "application/json"
    assert response.json()["code"] == "ORDERS_NOT_STORED"  # the integration's, not the gateway's


def test_authorizer_context_values_and_principal_reach_the_handler_as_strings():
    """As REST APIs pass them: booleans lower case, numbers as their text, principalId too."""
    output = {
        "principalId": 42,
        "policyDocument": {},
        "context": {"sub": "desk-a", "exp": 1767225600, "admin": True, "ratio": 0.5},
    }
    assert authorizer.request_context(output) == {
        "principalId": "42",
        "sub": "desk-a",
        "exp": "1767225600",
        "admin": "true",
        "ratio": "0.5",
    }


def test_proxy_response_headers_and_body_are_returned(gateway):
    response = gateway.handle(request("POST", "/orders", body=b'[{"record_id": "r1"}]'))
    assert response.status == 201
    assert response.header("X-Single") == "one"
    assert [v for k, v in response.headers if k == "Set-Cookie"] == ["a=1", "b=2"]
    assert response.json()["event"]["body"] == '[{"record_id": "r1"}]'


BODY = b'["\xff\xc3\x28 ok"]'  # not UTF-8


@pytest.mark.parametrize(
    ("binary_media_types", "content_type", "binary"),
    [
        ((), "application/json", False),
        (("application/json",), "application/json", True),
        (("application/json",), "application/json; charset=utf-8", True),
        (("application/json",), "application/json;charset=UTF-8", True),
        (("application/json",), "application/jsonx", False),
        (("application/json",), "text/plain", False),
        (("application/json",), None, False),
        (("application~1json",), "application/json", True),  # escaped as in a patch path
        (("multipart/form-data",), "multipart/form-data; boundary=x", True),
        (("image/*",), "image/png", True),
        (("image/*",), "application/json", False),
        (("*/json",), "application/json", False),  # no wildcard on the left
        (("*/*",), "text/plain", True),
        (("*/*",), None, True),
    ],
)
def test_body_is_base64_when_its_content_type_is_a_binary_media_type(
    gateway, binary_media_types, content_type, binary
):
    gateway.api = dataclasses.replace(gateway.api, binary_media_types=binary_media_types)
    headers = [("Content-Type", content_type)] if content_type else []
    event = event_of(gateway.handle(request("POST", "/orders", body=BODY, headers=headers)))
    assert event["isBase64Encoded"] is binary
    if binary:
        assert base64.b64decode(event["body"]) == BODY
    else:
        assert event["body"] == '["\ufffd\ufffd( ok"]'  # what API Gateway makes of it as text


@pytest.mark.parametrize(
    ("accept", "decoded"),
    [
        ("application/octet-stream", True),
        ("application/octet-stream, */*;q=0.8", True),
        ("text/html, application/octet-stream", False),  # only the first type counts
        ("application/json", False),
        (None, False),
    ],
)
def test_base64_reply_is_decoded_only_for_a_binary_accept(gateway, accept, decoded):
    gateway.api = dataclasses.replace(gateway.api, binary_media_types=("application/octet-stream",))
    authorize = gateway.invoke
    reply = {
        "statusCode": 200,
        "body": base64.b64encode(b"\x00\xff").decode(),
        "isBase64Encoded": True,
    }

    def invoke(name, event):  # the authorizer runs as before; the integration answers `reply`
        if "methodArn" in event:
            return authorize(name, event)
        return Invocation(json.dumps(reply), errored=False)

    gateway.invoke = invoke
    headers = [("Accept", accept)] if accept else []
    response = gateway.handle(request("GET", "/orders/r1", headers=headers))
    assert response.status == 200
    assert response.body == (b"\x00\xff" if decoded else reply["body"].encode())


def test_authorizer_event_is_a_request_event_with_the_method_arn(gateway):
    gateway.handle(request("POST", "/orders", body=b"[]"))
    (call,) = fake_handler_state.AUTHORIZER_CALLS
    assert call["type"] == "REQUEST"
    assert (
        call["methodArn"]
        == f"arn:aws:execute-api:eu-west-1:123456789012:{gateway.api.api_id}/prod/POST/orders"
    )
    assert call["headers"]["Authorization"] == "let-me-in"
    assert call["resource"] == "/orders"
    assert "body" not in call


def test_missing_identity_source_is_401_without_calling_the_authorizer(gateway):
    response = gateway.handle(request("POST", "/orders", token=None))
    assert response.status == 401
    assert response.json()["message"] == "Unauthorized"
    assert response.json() == {
        "message": "Unauthorized",
        "code": "UNAUTHORIZED",
        "request_id": response.header("x-amzn-RequestId"),
    }
    assert fake_handler_state.AUTHORIZER_CALLS == []


def test_unauthorized_raised_by_the_authorizer_is_401(gateway):
    response = gateway.handle(request("POST", "/orders", token="forged"))
    assert response.status == 401
    assert response.header("x-amzn-ErrorType") == "UnauthorizedException"


def test_explicit_deny_is_403(gateway):
    response = gateway.handle(request("POST", "/orders", token="deny"))
    assert response.status == 403
    assert "explicit deny" in response.json()["message"]


def test_policy_not_covering_the_method_is_403(gateway):
    assert gateway.handle(request("GET", "/orders/r1", token="only-get")).status == 201
    response = gateway.handle(request("POST", "/orders", token="only-get"))
    assert response.status == 403
    assert response.json()["message"] == "User is not authorized to access this resource"


@pytest.mark.parametrize("token", ["broken", "crash"])
def test_failing_or_malformed_authorizer_is_500(gateway, token):
    response = gateway.handle(request("POST", "/orders", token=token))
    assert response.status == 500
    assert response.header("x-amzn-ErrorType") == "AuthorizerConfigurationException"


def test_authorizer_answer_is_cached_per_identity_for_its_ttl():
    gateway, clock = make_gateway(ttl=300)
    fake_handler_state.AUTHORIZER_CALLS.clear()
    for _ in range(3):
        assert gateway.handle(request("POST", "/orders", body=b"[]")).status == 201
    assert gateway.handle(request("GET", "/orders/r1")).status == 201
    assert len(fake_handler_state.AUTHORIZER_CALLS) == 1
    gateway.handle(request("POST", "/orders", token="only-get"))
    assert len(fake_handler_state.AUTHORIZER_CALLS) == 2  # another identity, another call
    # the cached policy is evaluated against each method: GET allowed, POST still denied
    assert gateway.handle(request("GET", "/orders/r1", token="only-get")).status == 201
    assert gateway.handle(request("POST", "/orders", token="only-get")).status == 403
    assert len(fake_handler_state.AUTHORIZER_CALLS) == 2
    clock.now += 301
    gateway.handle(request("POST", "/orders"))
    assert len(fake_handler_state.AUTHORIZER_CALLS) == 3


def test_ttl_zero_disables_the_cache():
    gateway, _ = make_gateway(ttl=0)
    fake_handler_state.AUTHORIZER_CALLS.clear()
    gateway.handle(request("POST", "/orders"))
    gateway.handle(request("POST", "/orders"))
    assert len(fake_handler_state.AUTHORIZER_CALLS) == 2


def test_required_request_parameter_missing_is_400(gateway):
    response = gateway.handle(request("GET", "/orders?other=1"))
    assert response.status == 400
    assert response.json()["message"] == "Missing required request parameters: [since]"
    assert gateway.handle(request("GET", "/orders?since=1")).status == 201


@pytest.mark.parametrize("body", [b"explode", b"not-a-proxy-response"])
def test_failed_or_malformed_integration_is_502(gateway, body):
    response = gateway.handle(request("POST", "/orders", body=body))
    assert response.status == 502
    assert response.json()["message"] == "Internal server error"


def _unknown_route(gateway):
    return gateway.handle(request("GET", "/nowhere"))


def _no_token(gateway):
    return gateway.handle(request("POST", "/orders", token=None))


def _denied(gateway):
    return gateway.handle(request("POST", "/orders", token="deny"))


def _broken_authorizer(gateway):
    return gateway.handle(request("POST", "/orders", token="broken"))


def _missing_parameter(gateway):
    return gateway.handle(request("GET", "/orders?other=1"))


def _too_large(gateway):
    return gateway.handle(request("POST", "/orders", body=b"x" * (apigateway.MAX_BODY_BYTES + 1)))


def _failed_integration(gateway):
    return gateway.handle(request("POST", "/orders", body=b"explode"))


@pytest.mark.parametrize(
    ("answer", "status", "code"),
    [
        (_unknown_route, 403, "MISSING_AUTHENTICATION_TOKEN"),
        (_no_token, 401, "UNAUTHORIZED"),
        (_denied, 403, "ACCESS_DENIED"),
        (_broken_authorizer, 500, "AUTHORIZER_CONFIGURATION_ERROR"),
        (_missing_parameter, 400, "BAD_REQUEST_PARAMETERS"),
        (_too_large, 413, "REQUEST_TOO_LARGE"),
        (_failed_integration, 502, "DEFAULT_5XX"),
    ],
)
def test_every_gateway_answer_renders_the_error_template(gateway, answer, status, code):
    """The template's gateway response for the type, else its family's (DEFAULT_4XX or
    DEFAULT_5XX), with $context.error.responseType naming the type as AWS does and
    $context.requestId the request's id; the status stays API Gateway's own."""
    response = answer(gateway)
    assert response.status == status
    assert response.json() == {
        "message": response.json()["message"],
        "code": code,
        "request_id": response.header("x-amzn-RequestId"),
    }
    assert code in GATEWAY_ERRORS


def test_body_over_10_mb_is_413(gateway):
    response = gateway.handle(
        request("POST", "/orders", body=b"x" * (apigateway.MAX_BODY_BYTES + 1))
    )
    assert response.status == 413
    assert fake_handler_state.AUTHORIZER_CALLS == []


@pytest.fixture
def server(gateway):
    server = ApiServer(gateway, "127.0.0.1", 0)
    server.start()
    yield server
    server.stop()


def test_over_http_an_announced_oversized_body_is_refused_before_it_is_sent(server):
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    connection.putrequest("POST", "/orders")
    connection.putheader("Authorization", "let-me-in")
    connection.putheader("Expect", "100-continue")
    connection.putheader("Content-Length", str(apigateway.MAX_BODY_BYTES + 1))
    connection.endheaders()
    response = connection.getresponse()
    assert response.status == 413
    assert json.loads(response.read())["message"] == "Request Too Long"


def test_over_http_keep_alive_requests_are_served(server):
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    for record_id in ("a", "b"):
        connection.request("GET", f"/orders/{record_id}", headers={"Authorization": "let-me-in"})
        response = connection.getresponse()
        body = json.loads(response.read())
        assert response.status == 201
        assert body["event"]["pathParameters"] == {"record_id": record_id}
    connection.request("POST", "/orders", body=b"[1]", headers={"Authorization": "nope"})
    assert connection.getresponse().status == 401


def test_over_http_a_204_has_no_body_and_the_connection_serves_on(server):
    gateway = server.httpd.RequestHandlerClass.gateway
    _answering(gateway, {"statusCode": 204, "headers": {}, "body": ""})
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    for _ in range(2):
        connection.request("DELETE", "/orders/r1", headers={"Authorization": "let-me-in"})
        response = connection.getresponse()
        assert response.status == 204
        assert response.getheader("Content-Length") is None
        assert response.read() == b""


def _token_authorizer(resources):
    resources["Authorizer"]["Properties"]["Type"] = "TOKEN"


def _mock_integration(resources):
    resources["OptionsOrders"] = {
        "Type": "AWS::ApiGateway::Method",
        "Properties": {
            "AuthorizationType": "NONE",
            "HttpMethod": "OPTIONS",
            "Integration": {"Type": "MOCK", "IntegrationResponses": [{"StatusCode": "204"}]},
            "ResourceId": {"Ref": "Orders"},
            "RestApiId": {"Ref": "Api"},
        },
    }


def _greedy_path(resources):
    resources["Proxy"] = {
        "Type": "AWS::ApiGateway::Resource",
        "Properties": {
            "ParentId": {"Ref": "Orders"},
            "PathPart": "{proxy+}",
            "RestApiId": {"Ref": "Api"},
        },
    }


def _stage_variables(resources):
    resources["Stage"]["Properties"]["Variables"] = {"function": "EchoFn"}


def _stage_variable_identity_source(resources):
    resources["Authorizer"]["Properties"]["IdentitySource"] = (
        "method.request.header.Authorization, stageVariables.key"
    )


@pytest.mark.parametrize(
    ("change", "error"),
    [
        pytest.param(
            _token_authorizer,
            "Authorizer: authorizer type TOKEN is not emulated",
            id="token-authorizer",
        ),
        pytest.param(
            _mock_integration,
            "OptionsOrders: integration type MOCK is not emulated",
            id="mock-integration",
        ),
        pytest.param(
            _greedy_path, r"Proxy: greedy path part \{proxy\+\} is not emulated", id="greedy-path"
        ),
        pytest.param(
            _stage_variables, "Stage: stage variables are not emulated", id="stage-variables"
        ),
        pytest.param(
            _stage_variable_identity_source,
            "Authorizer: identity source stageVariables.key is not emulated",
            id="stage-variable-identity-source",
        ),
    ],
)
def test_features_the_template_does_not_use_are_refused_naming_the_resource(change, error):
    """Refused by the deployer before it creates anything, as an unknown resource type is."""
    template = api_template()
    change(template["Resources"])
    with mock_aws():
        functions = boto3.client("lambda", region_name="eu-west-1")
        with pytest.raises(DeploymentError, match=error):
            Deployer(
                Template.from_dict(template),
                lambda service: boto3.client(service, region_name="eu-west-1"),
                pseudo=PseudoParameters(),
            ).deploy()
        assert functions.list_functions()["Functions"] == [], "nothing was created"
