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
    sets it (AWS::ApiGateway::Account: in the model's own stack, else in another of the app)."""
    for other in sorted(app, key=lambda other: other is not model):
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
    raise ValueError(kind)


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
