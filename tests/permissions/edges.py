"""Every edge of a template where one part of the system calls another, as the requests AWS
authorizes for it.

An edge holds one request per authorization AWS makes: the call itself (the caller's identity
policy and the target's resource policy) and, where the target is encrypted with a customer
managed key, the data-key requests the target's service makes with the caller's permissions
(the key policy, and the identity policy when the key policy delegates to the account).

The request context is what AWS sends with that kind of request, no more, built by
entrix.local.iam.requests: the global keys of every request and of the caller (a role's session
or a service principal); aws:SourceArn and aws:SourceAccount where a service principal acts for
one of the account's resources; kms:ViaService where a service uses a key on a caller's behalf.
A policy that relies on a key AWS does not document for that request is not proven, so it fails
here (see SERVICE_KMS_CONTEXT).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from entrix.auction.results import BATCHES_PREFIX
from entrix.local.call_log import Call
from entrix.local.deploy import Deployment
from entrix.local.iam.calls import Local, call_requests
from entrix.local.iam.evaluate import Request, decide
from entrix.local.iam.model import ModelError, Role, StackModel
from entrix.local.iam.requests import (
    KMS_DATA_KEY_ACTIONS,
    key_context,
    request_context,
    role_context,
    role_publishes,
    role_request,
    role_uses_key,
    service_context,
)

# What a service principal's data-key request carries when it publishes to an encrypted topic
# (or sends to an encrypted queue), per AWS's guidance for that service: CloudWatch alarms send
# the alarm as source; CodeStar Notifications goes through SNS (kms:ViaService, in AWS's
# example key policy); EventBridge and SNS send neither (AWS: aws:SourceArn and
# aws:SourceAccount are not supported in a key policy for EventBridge delivery).
SERVICE_KMS_CONTEXT: dict[str, Callable[[StackModel, str], dict[str, str]]] = {
    "cloudwatch.amazonaws.com": lambda m, source: {
        "aws:SourceArn": source,
        "aws:SourceAccount": m.account,
    },
    "codestar-notifications.amazonaws.com": lambda m, _: key_context(m, "sns"),
    "events.amazonaws.com": lambda m, _: {},
    "sns.amazonaws.com": lambda m, _: {},
}


@dataclass(frozen=True)
class Edge:
    """One caller-to-target edge and the requests AWS must allow for it to work."""

    kind: str
    name: str
    requests: tuple[Request, ...]


TEMPLATE_KINDS = (
    "2 state machine tasks",
    "3 alarms -> SNS",
    "4 schedule -> state machine and DLQ",
    "5 S3 access logging",
    "6 log and trace delivery",
    "7 SNS subscriptions",
    "8 API Gateway -> Lambda, notifications -> SNS",
    "9 services assume the roles",
    "10 Lambda async invoke -> destinations",
    "11 stream event source mappings -> stream and on-failure destination",
    "12 secret rotation -> rotation function -> the secret",
    "13 CodePipeline and CodeBuild: roles, actions, artifacts, logs",
    "14 CodeDeploy deployment groups -> their role and aliases",
)
# What a rotation function calls on its secret in Secrets Manager's four steps (AWS: "Lambda
# rotation function execution role permissions"); GetRandomPassword only for a function that
# asks Secrets Manager for its new value (ours draws it itself).
ROTATION_ACTIONS = (
    "secretsmanager:DescribeSecret",
    "secretsmanager:GetSecretValue",
    "secretsmanager:PutSecretValue",
    "secretsmanager:UpdateSecretVersionStage",
)
# What Lambda's poller calls on a DynamoDB stream with the function's execution role (AWS:
# "Execution role permissions" for DynamoDB event sources); ListStreams names no resource.
STREAM_READ_ACTIONS = (
    "dynamodb:DescribeStream",
    "dynamodb:GetRecords",
    "dynamodb:GetShardIterator",
)


def service_request(
    model: StackModel,
    service: str,
    action: str,
    resource: str,
    resource_policy: dict[str, Any] | None,
    source_arn: str | None,
) -> Request:
    context = service_context(model, service, source_arn)
    return Request(service, action, resource, model.account, context, (), resource_policy)


def service_key_requests(
    model: StackModel, service: str, key: str | None, source_arn: str
) -> list[Request]:
    if key is None:
        return []
    context = {
        **service_context(model, service, None),
        **key_context(model, None),
        **SERVICE_KMS_CONTEXT[service](model, source_arn),
    }
    return [
        Request(service, action, key, model.account, context, (), model.key_policy(key))
        for action in KMS_DATA_KEY_ACTIONS
    ]


def service_publishes(
    model: StackModel, service: str, topic_arn: str, source_arn: str
) -> list[Request]:
    """sns:Publish by a service principal for `source_arn`, and its data-key requests."""
    publish = service_request(
        model, service, "sns:Publish", topic_arn, model.topic_policy(topic_arn), source_arn
    )
    return [publish, *service_key_requests(model, service, model.topic_key(topic_arn), source_arn)]


def assumes(model: StackModel, service: str, role: Role, source_arn: str | None) -> Request:
    """The service assuming the role: the role's trust policy is the resource policy."""
    return service_request(
        model, service, "sts:AssumeRole", role.arn, role.trust_policy, source_arn
    )


# -- 2: state machine tasks ------------------------------------------------------------------


def _states(definition: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    for name, state in definition.get("States", {}).items():
        yield name, state
        for nested in ("Iterator", "ItemProcessor"):
            if nested in state:
                yield from _states(state[nested])
        for branch in state.get("Branches", []):
            yield from _states(branch)


def _task_parameters(state: dict[str, Any]) -> dict[str, Any]:
    parameters: dict[str, Any] = state.get("Parameters") or state.get("Arguments") or {}
    return parameters


def state_machine_edges(model: StackModel) -> list[Edge]:
    edges = []
    for machine in model.of_type("AWS::StepFunctions::StateMachine"):
        p = model.props(machine.logical_id)
        machine_arn = model.arn(machine.logical_id)
        machine_name = machine_arn.rsplit(":", 1)[1]
        role = model.role(p["RoleArn"])
        definition = (
            json.loads(p["DefinitionString"]) if "DefinitionString" in p else p["Definition"]
        )
        kind = TEMPLATE_KINDS[0]
        for state_name, state in _states(definition):
            where = f"{machine.logical_id}.{state_name}"
            if state.get("Type") == "Task":
                requests = _task_requests(model, role, state, where)
                edges.append(Edge(kind, f"{where} -> {requests[0].resource}", tuple(requests)))
            reader = state.get("ItemReader")
            if reader:
                requests = [_item_reader_request(model, role, reader, where)]
                edges.append(Edge(kind, f"{where} ItemReader -> S3", tuple(requests)))
            config = (state.get("ItemProcessor") or {}).get("ProcessorConfig", {})
            if config.get("Mode") == "DISTRIBUTED":
                execution = f"arn:aws:states:{model.region}:{model.account}:execution:"
                child_runs = [
                    role_request(model, role, "states:StartExecution", machine_arn),
                    *(
                        role_request(model, role, action, f"{execution}{machine_name}:a-run")
                        for action in ("states:DescribeExecution", "states:StopExecution")
                    ),
                ]
                edges.append(Edge(kind, f"{where} child executions", tuple(child_runs)))
    return edges


def _task_requests(
    model: StackModel, role: Role, state: dict[str, Any], where: str
) -> list[Request]:
    resource: str = state["Resource"]
    parameters = _task_parameters(state)
    if resource.startswith("arn:aws:lambda:"):
        return [_invokes(model, role, resource)]
    integration = re.sub(r"\.(sync(:2)?|waitForTaskToken)$", "", resource)
    if integration == "arn:aws:states:::lambda:invoke":
        return [_invokes(model, role, _static(parameters, "FunctionName", where))]
    if integration == "arn:aws:states:::sns:publish":
        return role_publishes(model, role, _static(parameters, "TopicArn", where))
    if integration == "arn:aws:states:::states:startExecution":
        machine = _static(parameters, "StateMachineArn", where)
        return [role_request(model, role, "states:StartExecution", machine)]
    raise ModelError(f"{where}: the model does not know the task resource {resource}")


def _invokes(model: StackModel, role: Role, function: str) -> Request:
    if not function.startswith("arn:"):
        function = f"arn:aws:lambda:{model.region}:{model.account}:function:{function}"
    return role_request(
        model, role, "lambda:InvokeFunction", function, model.function_policy(function)
    )


def _static(parameters: dict[str, Any], key: str, where: str) -> str:
    if key not in parameters:
        raise ModelError(
            f"{where}: {key} is chosen at run time ({key}.$); the model needs it fixed"
        )
    return str(parameters[key])


def _item_reader_request(
    model: StackModel, role: Role, reader: dict[str, Any], where: str
) -> Request:
    parameters = reader.get("Parameters") or reader.get("Arguments") or {}
    bucket = parameters["Bucket"]
    if reader["Resource"] == "arn:aws:states:::s3:getObject":
        # A key given as a JSON path is the batches object Lambda A writes (BATCHES_PREFIX).
        key = parameters.get("Key", f"{BATCHES_PREFIX}date=2026-01-01/a-run.json")
        return role_request(
            model, role, "s3:GetObject", f"arn:aws:s3:::{bucket}/{key}", model.bucket_policy(bucket)
        )
    if reader["Resource"] == "arn:aws:states:::s3:listObjectsV2":
        return role_request(
            model, role, "s3:ListBucket", f"arn:aws:s3:::{bucket}", model.bucket_policy(bucket)
        )
    raise ModelError(f"{where}: the model does not know the item reader {reader['Resource']}")


# -- 3: alarms -> SNS ------------------------------------------------------------------------


def alarm_edges(model: StackModel) -> list[Edge]:
    edges = []
    for alarm in model.of_type("AWS::CloudWatch::Alarm"):
        p = model.props(alarm.logical_id)
        alarm_arn = model.arn(alarm.logical_id)
        actions = {
            action
            for key in ("AlarmActions", "OKActions", "InsufficientDataActions")
            for action in p.get(key, [])
        }
        for topic in sorted(a for a in actions if a.startswith("arn:aws:sns:")):
            requests = service_publishes(model, "cloudwatch.amazonaws.com", topic, alarm_arn)
            edges.append(Edge(TEMPLATE_KINDS[1], f"{alarm.logical_id} -> {topic}", tuple(requests)))
    return edges


# -- 4: schedule -> state machine, DLQ -------------------------------------------------------


def rule_edges(model: StackModel) -> list[Edge]:
    edges = []
    kind = TEMPLATE_KINDS[2]
    for rule in model.of_type("AWS::Events::Rule"):
        rule_arn = model.arn(rule.logical_id)
        for target in model.props(rule.logical_id).get("Targets", []):
            arn = target["Arn"]
            name = f"{rule.logical_id} -> {arn}"
            if ":states:" in arn:
                if "RoleArn" not in target:
                    raise ModelError(f"{name}: a state machine target needs a RoleArn")
                role = model.role(target["RoleArn"])
                requests = [
                    assumes(model, "events.amazonaws.com", role, rule_arn),
                    role_request(model, role, "states:StartExecution", arn),
                ]
            elif ":lambda:" in arn:
                requests = [
                    service_request(
                        model,
                        "events.amazonaws.com",
                        "lambda:InvokeFunction",
                        arn,
                        model.function_policy(arn),
                        rule_arn,
                    )
                ]
            else:
                raise ModelError(f"{name}: the model does not know this kind of rule target")
            edges.append(Edge(kind, name, tuple(requests)))
            dead_letters = target.get("DeadLetterConfig", {}).get("Arn")
            if dead_letters:
                requests = [
                    service_request(
                        model,
                        "events.amazonaws.com",
                        "sqs:SendMessage",
                        dead_letters,
                        model.queue_policy(dead_letters),
                        rule_arn,
                    ),
                    *service_key_requests(
                        model, "events.amazonaws.com", model.queue_key(dead_letters), rule_arn
                    ),
                ]
                edges.append(
                    Edge(kind, f"{rule.logical_id} -> DLQ {dead_letters}", tuple(requests))
                )
    return edges


# -- 5: S3 server access logging -------------------------------------------------------------


def access_log_edges(model: StackModel) -> list[Edge]:
    edges = []
    for bucket in model.of_type("AWS::S3::Bucket"):
        logging = model.props(bucket.logical_id).get("LoggingConfiguration")
        if not logging:
            continue
        target = logging["DestinationBucketName"]
        if _sse_kms(model, target):
            raise ModelError(
                f"{bucket.logical_id} logs to {target}, encrypted with SSE-KMS: S3 server access "
                "logs are only delivered to buckets with SSE-S3 default encryption"
            )
        key = f"{logging.get('LogFilePrefix', '')}2026-01-01-00-00-00-0123456789ABCDEF"
        request = service_request(
            model,
            "logging.s3.amazonaws.com",
            "s3:PutObject",
            f"arn:aws:s3:::{target}/{key}",
            model.bucket_policy(target),
            model.arn(bucket.logical_id),
        )
        name = f"{bucket.logical_id} -> access logs in {target}"
        edges.append(Edge(TEMPLATE_KINDS[3], name, (request,)))
    return edges


def _sse_kms(model: StackModel, bucket_name: str) -> bool:
    logical_id = model.logical_id_of("AWS::S3::Bucket", bucket_name)
    if logical_id is None:
        return False
    rules = (
        model.props(logical_id)
        .get("BucketEncryption", {})
        .get("ServerSideEncryptionConfiguration", [])
    )
    return any(
        rule.get("ServerSideEncryptionByDefault", {}).get("SSEAlgorithm", "").startswith("aws:kms")
        for rule in rules
    )


# -- 6: logs and traces ----------------------------------------------------------------------

STATE_MACHINE_LOG_DELIVERY_ACTIONS = (
    "logs:CreateLogDelivery",
    "logs:GetLogDelivery",
    "logs:UpdateLogDelivery",
    "logs:DeleteLogDelivery",
    "logs:ListLogDeliveries",
    "logs:PutResourcePolicy",
    "logs:DescribeResourcePolicies",
    "logs:DescribeLogGroups",
)
XRAY_ACTIONS = ("xray:PutTraceSegments", "xray:PutTelemetryRecords")
XRAY_SAMPLING_ACTIONS = ("xray:GetSamplingRules", "xray:GetSamplingTargets")
API_GATEWAY_LOG_ACTIONS = ("logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams")


def _log_stream(model: StackModel, group: str) -> str:
    return f"arn:aws:logs:{model.region}:{model.account}:log-group:{group}:log-stream:a-stream"


def log_edges(model: StackModel, app: Sequence[StackModel]) -> list[Edge]:
    """State machine and Lambda logs and traces; API Gateway access logs through the account's
    CloudWatch role, which may live in another stack of the app."""
    kind = TEMPLATE_KINDS[4]
    edges = []
    for machine in model.of_type("AWS::StepFunctions::StateMachine"):
        p = model.props(machine.logical_id)
        role = model.role(p["RoleArn"])
        if p.get("LoggingConfiguration", {}).get("Destinations"):
            requests = [
                role_request(model, role, action, "*")
                for action in STATE_MACHINE_LOG_DELIVERY_ACTIONS
            ]
            edges.append(Edge(kind, f"{machine.logical_id} -> CloudWatch Logs", tuple(requests)))
        if p.get("TracingConfiguration", {}).get("Enabled"):
            actions = (*XRAY_ACTIONS, *XRAY_SAMPLING_ACTIONS)
            requests = [role_request(model, role, action, "*") for action in actions]
            edges.append(Edge(kind, f"{machine.logical_id} -> X-Ray", tuple(requests)))
    for function in model.of_type("AWS::Lambda::Function"):
        p = model.props(function.logical_id)
        role = model.function_role(function.logical_id)
        group = (
            p.get("LoggingConfig", {}).get("LogGroup")
            or f"/aws/lambda/{model.ref(function.logical_id)}"
        )
        stream = _log_stream(model, group)
        requests = [
            role_request(model, role, action, stream)
            for action in ("logs:CreateLogStream", "logs:PutLogEvents")
        ]
        edges.append(Edge(kind, f"{function.logical_id} -> {group}", tuple(requests)))
        if p.get("TracingConfig", {}).get("Mode") == "Active":
            requests = [role_request(model, role, action, "*") for action in XRAY_ACTIONS]
            edges.append(Edge(kind, f"{function.logical_id} -> X-Ray", tuple(requests)))
    for stage in model.of_type("AWS::ApiGateway::Stage"):
        destination = (
            model.props(stage.logical_id).get("AccessLogSetting", {}).get("DestinationArn")
        )
        if not destination:
            continue
        group = destination.removeprefix(
            f"arn:aws:logs:{model.region}:{model.account}:log-group:"
        ).removesuffix(":*")
        owner, role = api_gateway_account_role(model, app)
        requests = [assumes(owner, "apigateway.amazonaws.com", role, None)]
        # The role's requests, built with its own stack (same account and region).
        requests += [
            role_request(owner, role, action, _log_stream(model, group))
            for action in API_GATEWAY_LOG_ACTIONS
        ]
        # DescribeLogGroups lists the account's groups: it has no resource of its own.
        requests.append(role_request(owner, role, "logs:DescribeLogGroups", "*"))
        edges.append(Edge(kind, f"{stage.logical_id} access logs -> {group}", tuple(requests)))
    return edges


def api_gateway_account_role(
    model: StackModel, app: Sequence[StackModel]
) -> tuple[StackModel, Role]:
    """API Gateway's CloudWatch role for the model's account and region, and the stack that
    sets it (AWS::ApiGateway::Account: in the model's own stack, else in another of the app,
    the one deployed beside it first: a pipeline stage's service stack and the pipeline's
    account-settings stage share their assembly's name prefix)."""

    def nearness(other: StackModel) -> tuple[bool, int]:
        pairs = zip(model.name, other.name, strict=False)
        shortest = min(len(model.name), len(other.name))
        shared = next((i for i, (a, b) in enumerate(pairs) if a != b), shortest)
        return other is not model, -shared

    for other in sorted(app, key=nearness):
        if (other.account, other.region) != (model.account, model.region):
            continue
        for account in other.of_type("AWS::ApiGateway::Account"):
            return other, other.role(other.props(account.logical_id)["CloudWatchRoleArn"])
    raise ModelError(
        f"{model.name} writes API Gateway access logs, and no stack of the app sets the "
        "account's CloudWatch role (AWS::ApiGateway::Account)"
    )


# -- 7: SNS subscriptions --------------------------------------------------------------------

NOTHING_TO_GRANT = ("email", "email-json", "sms", "http", "https")


def subscription_edges(model: StackModel) -> tuple[list[Edge], int]:
    """The edges of every subscription, and how many subscriptions needed no grant (email)."""
    subscriptions = [
        (model.ref(topic.logical_id), s["Protocol"], s["Endpoint"])
        for topic in model.of_type("AWS::SNS::Topic")
        for s in model.props(topic.logical_id).get("Subscription", [])
    ]
    subscriptions += [
        (p["TopicArn"], p["Protocol"], p["Endpoint"])
        for p in map(model.props, (s.logical_id for s in model.of_type("AWS::SNS::Subscription")))
    ]
    edges, needs_nothing = [], 0
    for topic, protocol, endpoint in subscriptions:
        name = f"{topic} -> {protocol} {endpoint}"
        if protocol == "lambda":
            policy = model.function_policy(endpoint)
            requests = [
                service_request(
                    model, "sns.amazonaws.com", "lambda:InvokeFunction", endpoint, policy, topic
                )
            ]
        elif protocol == "sqs":
            requests = [
                service_request(
                    model,
                    "sns.amazonaws.com",
                    "sqs:SendMessage",
                    endpoint,
                    model.queue_policy(endpoint),
                    topic,
                ),
                *service_key_requests(model, "sns.amazonaws.com", model.queue_key(endpoint), topic),
            ]
        elif protocol in NOTHING_TO_GRANT:
            needs_nothing += 1
            continue
        else:
            raise ModelError(f"{name}: the model does not know this subscription protocol")
        edges.append(Edge(TEMPLATE_KINDS[5], name, tuple(requests)))
    return edges, needs_nothing


# -- 8: API Gateway -> Lambda, CodeStar notifications -> SNS --------------------------------

_LAMBDA_URI = re.compile(r":lambda:path/2015-03-31/functions/(?P<arn>arn:[^/]+)/invocations$")


def _resource_paths(model: StackModel) -> dict[str, str]:
    """Each API Gateway resource id (and each API's root id) -> its path, e.g. /orders/{id}."""
    parents = {
        model.ref(r.logical_id): (model.props(r.logical_id)["ParentId"], r.properties["PathPart"])
        for r in model.of_type("AWS::ApiGateway::Resource")
    }
    roots = {
        model.resolve({"Fn::GetAtt": [api.logical_id, "RootResourceId"]}): ""
        for api in model.of_type("AWS::ApiGateway::RestApi")
    }

    def path(resource_id: str) -> str:
        if resource_id in roots:
            return ""
        parent, part = parents[resource_id]
        return f"{path(parent)}/{part}"

    return {resource_id: path(resource_id) or "/" for resource_id in [*parents, *roots]}


def api_edges(model: StackModel) -> list[Edge]:
    kind = TEMPLATE_KINDS[6]
    edges = []
    paths = _resource_paths(model)
    stages = [model.props(s.logical_id) for s in model.of_type("AWS::ApiGateway::Stage")]
    execute_api = f"arn:aws:execute-api:{model.region}:{model.account}"
    for method in model.of_type("AWS::ApiGateway::Method"):
        p = model.props(method.logical_id)
        found = _LAMBDA_URI.search(str(p.get("Integration", {}).get("Uri", "")))
        if not found:
            continue
        function = found["arn"]
        # A request to the path with each {parameter} filled in, as a client would send it.
        path = re.sub(r"\{[^}]+\}", "an-id", paths[p["ResourceId"]])
        for stage in (s for s in stages if s["RestApiId"] == p["RestApiId"]):
            source = f"{execute_api}:{p['RestApiId']}/{stage['StageName']}/{p['HttpMethod']}{path}"
            request = _api_invokes(
                model, p.get("Integration", {}).get("Credentials"), function, source
            )
            edges.append(
                Edge(kind, f"{method.logical_id} ({stage['StageName']}) -> {function}", request)
            )
    for authorizer in model.of_type("AWS::ApiGateway::Authorizer"):
        p = model.props(authorizer.logical_id)
        found = _LAMBDA_URI.search(str(p.get("AuthorizerUri", "")))
        if not found:
            continue
        source = f"{execute_api}:{p['RestApiId']}/authorizers/{model.ref(authorizer.logical_id)}"
        request = _api_invokes(model, p.get("AuthorizerCredentials"), found["arn"], source)
        edges.append(Edge(kind, f"{authorizer.logical_id} -> {found['arn']}", request))
    for rule in model.of_type("AWS::CodeStarNotifications::NotificationRule"):
        rule_arn = model.arn(rule.logical_id)
        for target in model.props(rule.logical_id).get("Targets", []):
            if target["TargetType"] != "SNS":
                raise ModelError(
                    f"{rule.logical_id}: the model does not know {target['TargetType']}"
                )
            topic = target["TargetAddress"]
            requests = service_publishes(
                model, "codestar-notifications.amazonaws.com", topic, rule_arn
            )
            edges.append(Edge(kind, f"{rule.logical_id} -> {topic}", tuple(requests)))
    return edges


def _api_invokes(
    model: StackModel, credentials: str | None, function: str, source_arn: str
) -> tuple[Request, ...]:
    """API Gateway invoking a function: as itself (the function's resource policy) or through
    an integration role (its trust policy and identity policy)."""
    if credentials:
        role = model.role(credentials)
        return (
            assumes(model, "apigateway.amazonaws.com", role, None),
            role_request(model, role, "lambda:InvokeFunction", function),
        )
    policy = model.function_policy(function)
    return (
        service_request(
            model, "apigateway.amazonaws.com", "lambda:InvokeFunction", function, policy, source_arn
        ),
    )


# -- 9: services assume the roles of functions and state machines --------------------------


def trust_edges(model: StackModel) -> list[Edge]:
    """Lambda assuming each function's role; Step Functions each state machine's, for that
    machine (the schedule's and API Gateway's roles are checked with their edges)."""
    kind = TEMPLATE_KINDS[7]
    edges = []
    for function in model.of_type("AWS::Lambda::Function"):
        role = model.function_role(function.logical_id)
        request = assumes(model, "lambda.amazonaws.com", role, None)
        edges.append(Edge(kind, f"Lambda -> role of {function.logical_id}", (request,)))
    for machine in model.of_type("AWS::StepFunctions::StateMachine"):
        role = model.role(model.props(machine.logical_id)["RoleArn"])
        request = assumes(model, "states.amazonaws.com", role, model.arn(machine.logical_id))
        edges.append(Edge(kind, f"Step Functions -> role of {machine.logical_id}", (request,)))
    return edges


# -- 10: Lambda's asynchronous invocations -> their destinations and dead-letter queues -------


def async_destination_edges(model: StackModel) -> list[Edge]:
    """Where Lambda sends an asynchronous invocation's record (an EventInvokeConfig's on-success
    and on-failure destinations, a function's DeadLetterConfig): Lambda sends it with the
    function's execution role, so the role's identity policy and the target's resource policy
    decide, plus the data key the target's service asks KMS for (kms:ViaService) when a
    customer managed key encrypts it."""
    kind = TEMPLATE_KINDS[8]
    targets: list[tuple[str, str, str]] = []
    for config in model.of_type("AWS::Lambda::EventInvokeConfig"):
        p = model.props(config.logical_id)
        function = model.function_of(p["FunctionName"])
        if function is None:
            raise ModelError(f"{config.logical_id}: its function is not in stack {model.name}")
        for outcome in ("OnSuccess", "OnFailure"):
            destination = p.get("DestinationConfig", {}).get(outcome, {}).get("Destination")
            if destination:
                targets.append((function, f"{outcome} destination", destination))
    for function in model.of_type("AWS::Lambda::Function"):
        dead_letters = model.props(function.logical_id).get("DeadLetterConfig", {})
        if dead_letters.get("TargetArn"):
            targets.append((function.logical_id, "DeadLetterConfig", dead_letters["TargetArn"]))
    edges = []
    for function, what, target in targets:
        role = model.function_role(function)
        requests = _destination_requests(model, role, f"{function} {what}", target)
        edges.append(Edge(kind, f"{function} {what} -> {target}", tuple(requests)))
    return edges


def _destination_requests(model: StackModel, role: Role, what: str, target: str) -> list[Request]:
    """What Lambda's delivery of a record to `target` with `role` needs: the send or publish,
    and the data key the target's service asks KMS for when a customer managed key encrypts it."""
    if ":sqs:" in target:
        requests = [
            role_request(model, role, "sqs:SendMessage", target, model.queue_policy(target))
        ]
        key = model.queue_key(target)
        if key is not None:
            requests += role_uses_key(model, role, key, "sqs")
    elif ":sns:" in target:
        requests = role_publishes(model, role, target)
    elif ":lambda:" in target:
        requests = [
            role_request(
                model, role, "lambda:InvokeFunction", target, model.function_policy(target)
            )
        ]
    else:
        raise ModelError(f"{what}: the model does not know this destination")
    return requests


# -- 11: stream event source mappings -> their stream and on-failure destination --------------


def stream_mapping_edges(model: StackModel) -> list[Edge]:
    """Lambda's poller reading a DynamoDB stream for a function (with the function's execution
    role: the stream has no resource policy) and sending what still fails after the retries to
    the mapping's on-failure destination, also with that role."""
    kind = TEMPLATE_KINDS[9]
    edges = []
    for mapping in model.of_type("AWS::Lambda::EventSourceMapping"):
        p = model.props(mapping.logical_id)
        function = model.function_of(p["FunctionName"])
        if function is None:
            raise ModelError(f"{mapping.logical_id}: its function is not in stack {model.name}")
        role = model.function_role(function)
        stream = p["EventSourceArn"]
        if ":dynamodb:" not in stream:
            raise ModelError(f"{mapping.logical_id}: the model knows DynamoDB streams only")
        reads = [role_request(model, role, action, stream) for action in STREAM_READ_ACTIONS]
        reads.append(role_request(model, role, "dynamodb:ListStreams", "*"))
        edges.append(Edge(kind, f"{stream} -> {function}", tuple(reads)))
        target = p.get("DestinationConfig", {}).get("OnFailure", {}).get("Destination")
        if target:
            what = f"{mapping.logical_id} OnFailure destination"
            requests = _destination_requests(model, role, what, target)
            edges.append(Edge(kind, f"{what} -> {target}", tuple(requests)))
    return edges


# -- 12: secret rotation -> the rotation function -> the secret ------------------------------


def rotation_edges(model: StackModel) -> list[Edge]:
    """Secrets Manager invoking each rotation schedule's function for its secret (the
    function's resource policy; Secrets Manager sends the secret as aws:SourceArn and the
    account as aws:SourceAccount), and the function's role making the rotation's calls on that
    secret (the secret has no resource policy here; under the AWS managed key, no KMS grant)."""
    kind = TEMPLATE_KINDS[10]
    edges = []
    for schedule in model.of_type("AWS::SecretsManager::RotationSchedule"):
        p = model.props(schedule.logical_id)
        secret = p["SecretId"]
        function_arn = p.get("RotationLambdaARN")
        if not function_arn:
            raise ModelError(f"{schedule.logical_id}: the model knows rotation functions only")
        function = model.function_of(function_arn)
        if function is None:
            raise ModelError(f"{schedule.logical_id}: its function is not in stack {model.name}")
        invoke = service_request(
            model,
            "secretsmanager.amazonaws.com",
            "lambda:InvokeFunction",
            function_arn,
            model.function_policy(function_arn),
            secret,
        )
        edges.append(Edge(kind, f"{schedule.logical_id}: {secret} -> {function}", (invoke,)))
        role = model.function_role(function)
        calls = tuple(role_request(model, role, action, secret) for action in ROTATION_ACTIONS)
        edges.append(Edge(kind, f"{function} rotates {secret}", calls))
    return edges


# -- 13: CodePipeline, its actions and CodeBuild projects -------------------------------------

ARTIFACT_READ = ("s3:GetObject",)
ARTIFACT_WRITE = ("s3:PutObject",)
BUILD_LOG_ACTIONS = ("logs:CreateLogStream", "logs:PutLogEvents")
START_BUILD_ACTIONS = ("codebuild:StartBuild", "codebuild:BatchGetBuilds")
# What a role CDK bootstrap made (`cdk bootstrap --trust <pipeline account>`) holds, as far as
# this app's templates cannot show it: it trusts the pipeline's account, and its own identity
# policy is taken to allow, so that this app's bucket and key policies alone decide.
_ANYTHING = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}],
}


def _bootstrap_trust(account: str) -> dict[str, Any]:
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"AWS": f"arn:aws:iam::{account}:root"},
                "Action": "sts:AssumeRole",
            }
        ],
    }


def _artifact_requests(
    model: StackModel,
    principal: Role | str,
    bucket: str,
    key: str | None,
    actions: Sequence[str],
    account: str | None = None,
) -> list[Request]:
    """Reading or writing a pipeline artifact (an object of the artifacts bucket) and the data
    key S3 asks KMS for with the caller's permissions (kms:ViaService s3)."""
    obj = f"arn:aws:s3:::{bucket}/{PIPELINE_ARTIFACT_KEY}"
    via_s3 = {"kms:ViaService": f"s3.{model.region}.amazonaws.com"}
    data_key = ("kms:GenerateDataKey",) if "s3:PutObject" in actions else ()
    kms = [*data_key, "kms:Decrypt"]
    if isinstance(principal, Role):
        requests = [
            role_request(model, principal, action, obj, model.bucket_policy(bucket))
            for action in actions
        ]
        if key:
            requests += [
                role_request(model, principal, action, key, model.key_policy(key), via_s3)
                for action in kms
            ]
        return requests
    # A role of another template (a bootstrap role, possibly in a stage's account).
    context = {
        **request_context(model),
        "aws:PrincipalArn": principal,
        "aws:PrincipalAccount": principal.split(":")[4],
        "aws:PrincipalType": "AssumedRole",
        "aws:PrincipalIsAWSService": "false",
    }
    requests = [
        Request(
            principal,
            action,
            obj,
            model.account,
            context,
            (_ANYTHING,),
            model.bucket_policy(bucket),
        )
        for action in actions
    ]
    if key:
        requests += [
            Request(
                principal,
                action,
                key,
                model.account,
                {**context, **via_s3},
                (_ANYTHING,),
                model.key_policy(key),
            )
            for action in kms
        ]
    return requests


PIPELINE_ARTIFACT_KEY = "entrix-delivery/an-artifact/a1b2c3"


def pipeline_edges(model: StackModel, app: Sequence[StackModel] = ()) -> list[Edge]:
    """CodePipeline assuming its role; its role assuming each action's role (a bootstrap deploy
    role, maybe in a stage's account, trusts the pipeline's account); each action's role doing
    the action (starting a CodeBuild build, using the source connection, writing the source
    artifact); CodeBuild assuming each project's role, which writes the project's build log and
    reads (and, for a step with output, writes) the artifacts under the pipeline's key; a
    bootstrap deploy role reading the artifacts (the bucket and key policies decide); a
    project's role assuming a role another stack of the app defines (a VerifyDeploy step's
    EntrixVerify role in a stage's account)."""
    kind = TEMPLATE_KINDS[11]
    edges = []
    projects = {
        model.ref(p.logical_id): p.logical_id for p in model.of_type("AWS::CodeBuild::Project")
    }
    writes: set[str] = set()
    for pipeline in model.of_type("AWS::CodePipeline::Pipeline"):
        p = model.props(pipeline.logical_id)
        role = model.role(p["RoleArn"])
        stores = [p["ArtifactStore"]] if "ArtifactStore" in p else p["ArtifactStores"]
        # The pipeline's own region's store (a stage in another region reads its replica).
        store = next(
            s.get("ArtifactStore", s)
            for s in stores
            if s.get("Region", model.region) == model.region
        )
        bucket = store["Location"]
        key = store.get("EncryptionKey", {}).get("Id")
        edges.append(
            Edge(
                kind,
                f"CodePipeline -> role of {pipeline.logical_id}",
                (assumes(model, "codepipeline.amazonaws.com", role, None),),
            )
        )
        for stage in p["Stages"]:
            for action in stage["Actions"]:
                where = f"{pipeline.logical_id}.{stage['Name']}.{action['Name']}"
                provider = action["ActionTypeId"]["Provider"]
                config = action.get("Configuration", {})
                if action.get("OutputArtifacts") and provider == "CodeBuild":
                    writes.add(config["ProjectName"])
                arn = action.get("RoleArn")
                if arn is None:
                    raise ModelError(f"{where}: an action without a role of its own")
                account = arn.split(":")[4]
                own = model.logical_id_of("AWS::IAM::Role", arn)
                trust = model.role(arn).trust_policy if own else _bootstrap_trust(model.account)
                assume = Request(
                    role.arn,
                    "sts:AssumeRole",
                    arn,
                    account,
                    role_context(model, role),
                    role.policies,
                    trust,
                )
                requests: list[Request] = [assume]
                if own:
                    action_role = model.role(arn)
                    requests += _action_requests(
                        model, action_role, provider, config, bucket, key, action, where, projects
                    )
                elif provider == "CloudFormation":
                    requests += _artifact_requests(model, arn, bucket, key, ARTIFACT_READ)
                else:
                    raise ModelError(f"{where}: a {provider} action with a role of no template")
                edges.append(Edge(kind, f"{where} ({provider})", tuple(requests)))
        for name, logical_id in projects.items():
            project = model.props(logical_id)
            project_role = model.role(project["ServiceRole"])
            requests = [assumes(model, "codebuild.amazonaws.com", project_role, None)]
            logs = project.get("LogsConfig", {}).get("CloudWatchLogs", {})
            group = logs.get("GroupName") if logs.get("Status") == "ENABLED" else None
            group = group or f"/aws/codebuild/{name}"
            requests += [
                role_request(model, project_role, action, _log_stream(model, group))
                for action in BUILD_LOG_ACTIONS
            ]
            actions = ARTIFACT_READ + (ARTIFACT_WRITE if name in writes else ())
            project_key = project.get("EncryptionKey", key)
            requests += _artifact_requests(model, project_role, bucket, project_key, actions)
            edges.append(Edge(kind, f"CodeBuild project {logical_id}", tuple(requests)))
            edges += _assumed_elsewhere(model, project_role, app)
    return edges


def _assumed_elsewhere(model: StackModel, role: Role, app: Sequence[StackModel]) -> list[Edge]:
    """The role assuming a role of another stack of the app that its policy names (in any
    account): its identity policy and that role's trust policy, in the policy's account."""
    named = {
        resource
        for policy in role.policies
        for statement in policy["Statement"]
        if "sts:AssumeRole" in json.dumps(statement.get("Action"))
        for resource in _listed(statement.get("Resource", []))
        if ":role/" in resource and "*" not in resource
    }
    edges = []
    for other in app:
        if other is model:
            continue
        for target in other.of_type("AWS::IAM::Role"):
            name = other.arn(target.logical_id).split(":role/", 1)[1]
            for arn in sorted(a for a in named if a.endswith(f":role/{name}")):
                account = arn.split(":")[4]
                trust = other.role(other.arn(target.logical_id)).trust_policy
                context = role_context(model, role)
                assume = Request(
                    role.arn, "sts:AssumeRole", arn, account, context, role.policies, trust
                )
                edges.append(Edge(TEMPLATE_KINDS[11], f"{role.logical_id} -> {arn}", (assume,)))
    return edges


def _listed(value: Any) -> list[str]:
    return [str(v) for v in (value if isinstance(value, list) else [value])]


def _action_requests(
    model: StackModel,
    role: Role,
    provider: str,
    config: dict[str, Any],
    bucket: str,
    key: str | None,
    action: dict[str, Any],
    where: str,
    projects: dict[str, str],
) -> list[Request]:
    """What an action's own role does for the action."""
    if provider == "CodeBuild":
        project = model.arn(projects[config["ProjectName"]])
        return [role_request(model, role, name, project) for name in START_BUILD_ACTIONS]
    if provider == "CodeStarSourceConnection":
        connection = config["ConnectionArn"]
        # IAM knows connections under the codestar-connections prefix; codeconnections ARNs
        # name the same resources. An SSM parameter is resolved by CloudFormation at deploy
        # time: the policy names the same parameter, so both take the value it will hold.
        stand_in = connection.replace(":codeconnections:", ":codestar-connections:")
        if not connection.startswith("arn:"):
            stand_in = (
                f"arn:aws:codestar-connections:{model.region}:{model.account}:connection/from-ssm"
            )
        policies = tuple(
            json.loads(json.dumps(p).replace(f'"{connection}"', f'"{stand_in}"'))
            for p in role.policies
        )
        connection = stand_in
        role = Role(role.logical_id, role.arn, role.trust_policy, policies)
        return [
            role_request(model, role, "codestar-connections:UseConnection", connection),
            *_artifact_requests(model, role, bucket, key, ARTIFACT_WRITE),
        ]
    if provider == "Manual":
        return []
    raise ModelError(f"{where}: the model does not know the {provider} action")


# -- 14: CodeDeploy deployment groups -> their role, the aliases they shift -------------------


def deployment_group_edges(model: StackModel) -> list[Edge]:
    """CodeDeploy assuming each deployment group's role, which reads the group's alarms and
    shifts the alias whose UpdatePolicy names the group."""
    kind = TEMPLATE_KINDS[12]
    edges = []
    aliases: dict[str, list[str]] = {}
    for alias in model.of_type("AWS::Lambda::Alias"):
        update = model.resolve(model.body["Resources"][alias.logical_id].get("UpdatePolicy", {}))
        group = update.get("CodeDeployLambdaAliasUpdate", {}).get("DeploymentGroupName")
        if group:
            aliases.setdefault(group, []).append(model.ref(alias.logical_id))
    for group in model.of_type("AWS::CodeDeploy::DeploymentGroup"):
        p = model.props(group.logical_id)
        role = model.role(p["ServiceRoleArn"])
        requests = [assumes(model, "codedeploy.amazonaws.com", role, None)]
        for alarm in p.get("AlarmConfiguration", {}).get("Alarms", []):
            arn = f"arn:aws:cloudwatch:{model.region}:{model.account}:alarm:{alarm['Name']}"
            requests.append(role_request(model, role, "cloudwatch:DescribeAlarms", arn))
        shifted = aliases.get(model.ref(group.logical_id), [])
        if not shifted:
            raise ModelError(f"{group.logical_id}: no alias names this deployment group")
        for alias in shifted:
            requests += [
                role_request(model, role, action, alias)
                for action in ("lambda:GetAlias", "lambda:UpdateAlias")
            ]
        edges.append(
            Edge(kind, f"CodeDeploy {group.logical_id} -> {', '.join(shifted)}", tuple(requests))
        )
    return edges


def derive(kind: str, model: StackModel, app: Sequence[StackModel]) -> list[Edge]:
    """The edges of one kind in one stack of the app."""
    if kind == TEMPLATE_KINDS[0]:
        return state_machine_edges(model)
    if kind == TEMPLATE_KINDS[1]:
        return alarm_edges(model)
    if kind == TEMPLATE_KINDS[2]:
        return rule_edges(model)
    if kind == TEMPLATE_KINDS[3]:
        return access_log_edges(model)
    if kind == TEMPLATE_KINDS[4]:
        return log_edges(model, app)
    if kind == TEMPLATE_KINDS[5]:
        return subscription_edges(model)[0]
    if kind == TEMPLATE_KINDS[6]:
        return api_edges(model)
    if kind == TEMPLATE_KINDS[7]:
        return trust_edges(model)
    if kind == TEMPLATE_KINDS[8]:
        return async_destination_edges(model)
    if kind == TEMPLATE_KINDS[9]:
        return stream_mapping_edges(model)
    if kind == TEMPLATE_KINDS[10]:
        return rotation_edges(model)
    if kind == TEMPLATE_KINDS[11]:
        return pipeline_edges(model, app)
    if kind == TEMPLATE_KINDS[12]:
        return deployment_group_edges(model)
    raise ValueError(kind)


# Resource types whose policy the edge kinds read (an IAM role's trust policy is checked with
# the role), and how to name the resource each one governs.
POLICY_CARRIERS = (
    "AWS::KMS::Key",
    "AWS::S3::BucketPolicy",
    "AWS::SNS::TopicPolicy",
    "AWS::SQS::QueuePolicy",
    "AWS::Lambda::Permission",
)


def _governed(model: StackModel, resource: Any) -> list[str]:
    """The ARNs whose requests a policy-carrying resource decides."""
    p = model.props(resource.logical_id)
    if resource.type == "AWS::KMS::Key":
        return [model.arn(resource.logical_id)]
    if resource.type == "AWS::S3::BucketPolicy":
        return [f"arn:aws:s3:::{p['Bucket']}"]
    if resource.type == "AWS::SNS::TopicPolicy":
        return list(p["Topics"])
    if resource.type == "AWS::SQS::QueuePolicy":
        queues = [model.logical_id_of("AWS::SQS::Queue", url) for url in p["Queues"]]
        return [model.arn(q) if q else url for q, url in zip(queues, p["Queues"], strict=True)]
    function = p["FunctionName"]
    if not function.startswith("arn:"):
        function = f"arn:aws:lambda:{model.region}:{model.account}:function:{function}"
    return [function]


def _carries_a_policy(resource: Any) -> bool:
    """Whether a resource holds a policy document of its own (not an identity policy)."""
    if resource.type in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy", "AWS::IAM::Role"):
        return False
    text = json.dumps(resource.properties)
    return (
        resource.type.endswith(("Policy", "Permission"))
        or "Policy" in resource.properties  # an API Gateway RestApi's resource policy
        or any(f'"{key}"' in text for key in ("PolicyDocument", "KeyPolicy", "ResourcePolicy"))
    )


def uncovered(app: Sequence[StackModel], edges: Sequence[Edge]) -> list[str]:
    """Every IAM role and every policy-carrying resource of the app's templates that no edge
    uses: a role no request is made by or assumes, a policy no request is decided by, a type
    carrying a policy that no kind reads (IAM users and groups too). Empty when none."""
    requests = [r for edge in edges for r in edge.requests]
    # Roles by name: the model places every stack in one account, a request may name a role's
    # real account (a stage's EntrixVerify role, assumed from the pipeline's).
    principals = {r.principal.split(":role/")[-1] for r in requests}
    principals |= {r.resource.split(":role/")[-1] for r in requests if r.action == "sts:AssumeRole"}
    resources = {r.resource for r in requests}
    missing = []
    for model in app:
        for resource in model.template.resources.values():
            if not model.resolver.is_enabled(resource):
                continue
            where = f"{model.name}/{resource.logical_id} ({resource.type})"
            if resource.type == "AWS::IAM::Role":
                if model.arn(resource.logical_id).split(":role/")[-1] not in principals:
                    missing.append(f"{where}: no edge is made by or assumes this role")
            elif resource.type in ("AWS::IAM::User", "AWS::IAM::Group"):
                missing.append(f"{where}: the model knows no edge of IAM users or groups")
            elif resource.type in POLICY_CARRIERS:
                governed = _governed(model, resource)
                if not any(
                    r == arn or r.startswith((f"{arn}/", f"{arn}:"))
                    for arn in governed
                    for r in resources
                ):
                    missing.append(f"{where}: no edge's request is decided by its policy")
            elif _carries_a_policy(resource):
                missing.append(f"{where}: a policy of a type no edge kind reads")
    return missing


def denied(edges: Sequence[Edge]) -> list[str]:
    """One line per request AWS would refuse, naming its edge; empty when every edge works."""
    decisions = iter(decide([request for edge in edges for request in edge.requests]))
    lines = []
    for edge in edges:
        for decision in [next(decisions) for _ in edge.requests]:
            if not decision.allowed:
                lines.append(f"[{edge.name}] {decision.explain()}")
    return lines


def call_edges(model: StackModel, deployment: Deployment, calls: Iterable[Call]) -> list[Edge]:
    """Every recorded call's requests, identical ones once, as one edge per function, action
    and resource; an S3 object per bucket and first key segment (`results/`, `history/`), as
    every object of a run has its own key and a role may be granted one prefix and not another.
    """
    local = Local(model, deployment)
    grouped: dict[tuple[str, str, str], tuple[str, str, dict[str, tuple[Request, ...]]]] = {}
    for call in calls:
        function = local.logical_id("AWS::Lambda::Function", call.function)
        role = model.function_role(function)
        for requests in call_requests(local, role, call):
            first = requests[0]
            where = _s3_prefix(first.resource) if first.action.startswith("s3:") else ""
            key = (function, first.action, where or first.resource)
            if key not in grouped:
                kind = f"1 Lambda calls -> {call.service}"
                conditional = " (conditional)" if call.parameters.get("conditional") else ""
                name = f"{function} {call.operation}{conditional} -> {where or first.resource}"
                grouped[key] = (kind, name, {})
            grouped[key][2].setdefault(_identity(requests), tuple(requests))
    return [
        Edge(kind, name, tuple(r for requests in seen.values() for r in requests))
        for kind, name, seen in grouped.values()
    ]


def _s3_prefix(resource: str) -> str:
    """An S3 object's bucket and first key segment (`arn:aws:s3:::bucket/history/*`); a
    bucket's ARN as it is."""
    bucket, _, key = resource.removeprefix("arn:aws:s3:::").partition("/")
    if not key:
        return resource
    segment, slash, _ = key.partition("/")
    return f"arn:aws:s3:::{bucket}/{segment}{slash and '/*'}"


def _identity(requests: Sequence[Request]) -> str:
    """What makes requests the same request: principal, action, resource and context (the
    policies follow from the first three)."""
    return json.dumps(
        [[r.principal, r.action, r.resource, r.context] for r in requests], sort_keys=True
    )
