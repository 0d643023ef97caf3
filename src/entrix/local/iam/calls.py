"""The AWS calls Lambda functions made in the local runtime, as requests of their roles.

A recorded call names local resources (the deployment's physical names); each is mapped back
to its logical id through the deployment, then to the ARN the template gives it, so the
request is checked against the template's own policies: the function's role, the target's
resource policy, and the topic's key for a publish to an encrypted topic. Each request carries
the condition keys AWS sends for it (entrix.local.iam.requests), the service's own made of the
call's parameters as `entrix.local.call_log` recorded them.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from entrix.local.call_log import Call
from entrix.local.deploy import Deployment
from entrix.local.iam.evaluate import Request
from entrix.local.iam.model import ModelError, Role, StackModel
from entrix.local.iam.requests import role_publishes, role_request, role_uses_key

# S3 operation -> IAM action, and whether it acts on an object (else on the bucket).
S3_ACTIONS = {
    "PutObject": ("s3:PutObject", True),
    "GetObject": ("s3:GetObject", True),
    "HeadObject": ("s3:GetObject", True),
    "DeleteObject": ("s3:DeleteObject", True),
    "ListObjectsV2": ("s3:ListBucket", False),
}
# The condition keys of S3's ListBucket, from ListObjectsV2's parameters.
S3_LIST_KEYS = {"Prefix": "s3:prefix", "Delimiter": "s3:delimiter", "MaxKeys": "s3:max-keys"}
DYNAMODB_WRITES = ("PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem")
DYNAMODB_READS = ("GetItem", "BatchGetItem", "Query", "Scan")
DYNAMODB_OPERATIONS = (*DYNAMODB_WRITES, *DYNAMODB_READS)
# Secrets Manager's condition keys from the request's parameters (SecretId always).
SECRETS_KEYS = {
    "VersionStage": "secretsmanager:VersionStage",
    "VersionId": "secretsmanager:VersionId",
}
# The rotation function's PutSecretValue and UpdateSecretVersionStage included (its calls are
# checked by tests/local/test_key_rotation.py).
SECRETS_ACTIONS = ("GetSecretValue", "DescribeSecret", "PutSecretValue", "UpdateSecretVersionStage")


class Local:
    """Local physical names back to the template's logical ids, through the deployment; and
    the time its requests are made at (one for all, so that the same call makes the same
    request)."""

    def __init__(self, model: StackModel, deployment: Deployment, at: float | None = None) -> None:
        self.model = model
        self.at = time.time() if at is None else at
        self.by_name = {
            (deployment.types[logical_id], name): logical_id
            for logical_id, name in deployment.names.items()
            if logical_id in deployment.types
        }

    def logical_id(self, resource_type: str, name: str) -> str:
        try:
            return self.by_name[(resource_type, name)]
        except KeyError:
            raise ModelError(
                f"{resource_type} {name!r} is not a resource of the template"
            ) from None

    def arn(self, resource_type: str, name: str) -> str:
        return self.model.arn(self.logical_id(resource_type, name))


def call_requests(
    local: Local, role: Role, call: Call, at: float | None = None
) -> list[list[Request]]:
    """The requests of one call (a batch call makes one per table), each with the condition
    keys the service sends for it, made of the call's own parameters, at the time `at` (the
    local's own when not given)."""
    model, p = local.model, call.parameters
    at = local.at if at is None else at
    _no_unmapped_parameters(call)
    function = local.arn("AWS::Lambda::Function", call.function)
    where = f"{call.function} {call.service}.{call.operation}"
    if call.service == "dynamodb":
        tables = p.get("RequestItems") or [p["TableName"]]
        action = f"dynamodb:{call.operation}"
        if call.operation not in DYNAMODB_OPERATIONS:
            raise ModelError(f"{where}: the model does not map this operation")
        requests = []
        for table in tables:
            logical_id = local.logical_id("AWS::DynamoDB::Table", table.rsplit("/", 1)[-1])
            _no_customer_key(model, logical_id, model.props(logical_id).get("SSESpecification"))
            _no_resource_policy(model, logical_id, "ResourcePolicy")
            arn = model.arn(logical_id)
            if "IndexName" in p:
                arn = f"{arn}/index/{p['IndexName']}"
            context = _dynamodb_context(model, logical_id, call)
            requests.append([role_request(model, role, action, arn, None, context, function, at)])
        return requests
    if call.service == "s3" and call.operation in S3_ACTIONS:
        action, on_object = S3_ACTIONS[call.operation]
        logical_id = local.logical_id("AWS::S3::Bucket", p["Bucket"])
        for rule in (
            model.props(logical_id)
            .get("BucketEncryption", {})
            .get("ServerSideEncryptionConfiguration", [])
        ):
            _no_customer_key(model, logical_id, rule.get("ServerSideEncryptionByDefault"))
        bucket = model.ref(logical_id)
        resource = f"arn:aws:s3:::{bucket}" + (f"/{p['Key']}" if on_object else "")
        # Signed in the Authorization header with SigV4, as every SDK call is.
        context = {
            "s3:authType": "REST-HEADER",
            "s3:signatureversion": "AWS4-HMAC-SHA256",
            "s3:ResourceAccount": model.account,
        }
        if not on_object:
            context |= {
                key: str(p[parameter]) for parameter, key in S3_LIST_KEYS.items() if parameter in p
            }
        policy = model.bucket_policy(bucket)
        return [[role_request(model, role, action, resource, policy, context, function, at)]]
    if call.service == "sns" and call.operation in ("Publish", "PublishBatch"):
        # PublishBatch is authorized as sns:Publish (IAM has no action of its own for it).
        topic = p.get("TopicArn") or p["TargetArn"]
        arn = local.arn("AWS::SNS::Topic", topic.rsplit(":")[-1])
        return [role_publishes(model, role, arn, function, at)]
    if call.service == "sqs" and call.operation in ("SendMessage", "SendMessageBatch"):
        # SendMessageBatch is authorized as sqs:SendMessage; an encrypted queue's key also.
        logical_id = local.logical_id("AWS::SQS::Queue", p["QueueUrl"].rsplit("/", 1)[-1])
        queue = model.arn(logical_id)
        policy = model.queue_policy(queue)
        sends = [role_request(model, role, "sqs:SendMessage", queue, policy, None, function, at)]
        key = model.queue_key(queue)
        if key is not None:
            sends += role_uses_key(model, role, key, "sqs", function, at)
        return [sends]
    if call.service == "secretsmanager" and call.operation in SECRETS_ACTIONS:
        context = {"secretsmanager:SecretId": p["SecretId"]}
        context |= {key: p[parameter] for parameter, key in SECRETS_KEYS.items() if parameter in p}
        action = f"secretsmanager:{call.operation}"
        secret = _secret(local, p)
        return [[role_request(model, role, action, secret, None, context, function, at)]]
    raise ModelError(f"{where}: the model does not map this call")


def _dynamodb_context(model: StackModel, table: str, call: Call) -> dict[str, str | list[str]]:
    """DynamoDB's condition keys of a call on `table` (IAM's "Using IAM policy conditions for
    fine-grained access control"): the partition key values it names (dynamodb:LeadingKeys;
    for a query on an index, the index's), the top-level attributes it writes or projects
    (dynamodb:Attributes), what it returns (dynamodb:ReturnValues, when asked) and selects
    (dynamodb:Select, DynamoDB's default when not asked)."""
    p, operation = call.parameters, call.operation
    index = p.get("IndexName")
    partition = _partition_key(model, table, index)
    leading = sorted({keys[partition] for keys in p.get("keys", []) if partition in keys})
    context: dict[str, str | list[str]] = {}
    if leading:
        context["dynamodb:LeadingKeys"] = leading
    if operation in DYNAMODB_WRITES or p.get("projected"):
        context["dynamodb:Attributes"] = list(p.get("attributes", []))
    if operation in DYNAMODB_WRITES and "ReturnValues" in p:
        context["dynamodb:ReturnValues"] = p["ReturnValues"]
    if operation in DYNAMODB_READS:
        default = "ALL_PROJECTED_ATTRIBUTES" if index else "ALL_ATTRIBUTES"
        context["dynamodb:Select"] = p.get(
            "Select", "SPECIFIC_ATTRIBUTES" if p.get("projected") else default
        )
    if "ReturnConsumedCapacity" in p:
        context["dynamodb:ReturnConsumedCapacity"] = p["ReturnConsumedCapacity"]
    return context


def _partition_key(model: StackModel, table: str, index: str | None) -> str:
    """The partition (HASH) key's name of the table, or of its index `index`."""
    props = model.props(table)
    schema = props["KeySchema"]
    if index is not None:
        indexes = [
            *props.get("GlobalSecondaryIndexes", []),
            *props.get("LocalSecondaryIndexes", []),
        ]
        (schema,) = [i["KeySchema"] for i in indexes if i["IndexName"] == index]
    (name,) = [key["AttributeName"] for key in schema if key["KeyType"] == "HASH"]
    return str(name)


# Parameters that make a call another IAM request than its operation's own (an object version
# is s3:GetObjectVersion/DeleteObjectVersion; a KMS key named on the call needs its key's
# requests): no function sets them today, and the model refuses them rather than misjudge.
_UNMAPPED_PARAMETERS = ("VersionId", "SSEKMSKeyId", "ServerSideEncryption")


def _no_unmapped_parameters(call: Call) -> None:
    if call.service == "s3" and (
        found := [k for k in _UNMAPPED_PARAMETERS if k in call.parameters]
    ):
        raise ModelError(f"{call.function} s3.{call.operation} with {found}: not mapped")


def _secret(local: Local, parameters: Mapping[str, Any]) -> str:
    """The template ARN of a secret named by ARN (the name plus six random characters) or name;
    a secret the template only imports keeps the ARN it was given."""
    secret_id: str = parameters["SecretId"]
    name = secret_id
    if secret_id.startswith("arn:"):
        name = secret_id.split(":secret:", 1)[1].rsplit("-", 1)[0]
    if ("AWS::SecretsManager::Secret", name) in local.by_name:
        logical_id = local.logical_id("AWS::SecretsManager::Secret", name)
        _no_customer_key(local.model, logical_id, local.model.props(logical_id))
        arn = local.model.arn(logical_id)
        if any(
            local.model.props(policy.logical_id).get("SecretId") in (arn, name)
            for policy in local.model.of_type("AWS::SecretsManager::ResourcePolicy")
        ):
            raise ModelError(f"{logical_id} has a resource policy: pass it with its requests")
        return arn
    if secret_id.startswith("arn:"):
        return secret_id
    raise ModelError(f"secret {secret_id!r} is not a resource of the template")


def _no_resource_policy(model: StackModel, logical_id: str, attribute: str) -> None:
    """A table with a resource policy would need it in its requests, which this model does not
    pass: refuse it rather than decide without it."""
    if model.props(logical_id).get(attribute):
        raise ModelError(f"{logical_id} has a resource policy: pass it with its requests")


def _no_customer_key(
    model: StackModel, logical_id: str, settings: Mapping[str, Any] | None
) -> None:
    """A table, bucket or secret under a customer managed key would need KMS requests this
    model does not derive: refuse it rather than pass it unchecked. (Without one, the service's
    AWS managed key or S3-managed encryption applies, whose policy the account cannot change.)"""
    settings = settings or {}
    if any(settings.get(key) for key in ("KMSMasterKeyId", "KMSMasterKeyID", "KmsKeyId")):
        raise ModelError(f"{logical_id} uses a customer managed key: add its KMS requests")


# -- the calls of `entrix verify`, on the resources of a stage's service stack ----------------

# CloudFormation tags every resource it creates with its stack's name; a verify role's grants on
# resources whose generated names do not start with the stack's are conditioned on it.
STACK_TAG = "aws:ResourceTag/aws:cloudformation:stack-name"
# (service, operation) -> IAM action, for what `entrix verify` calls (boto3 names the Step
# Functions service "stepfunctions", IAM "states").
VERIFY_ACTIONS = {
    ("cloudformation", "DescribeStacks"): "cloudformation:DescribeStacks",
    ("lambda", "GetFunctionConfiguration"): "lambda:GetFunctionConfiguration",
    ("cloudwatch", "DescribeAlarms"): "cloudwatch:DescribeAlarms",
    ("cloudwatch", "SetAlarmState"): "cloudwatch:SetAlarmState",
    ("cloudwatch", "DescribeAlarmHistory"): "cloudwatch:DescribeAlarmHistory",
    ("sns", "GetTopicAttributes"): "sns:GetTopicAttributes",
    ("stepfunctions", "DescribeStateMachine"): "states:DescribeStateMachine",
    ("stepfunctions", "StartExecution"): "states:StartExecution",
    ("stepfunctions", "DescribeExecution"): "states:DescribeExecution",
    ("stepfunctions", "TestState"): "states:TestState",
    ("secretsmanager", "GetSecretValue"): "secretsmanager:GetSecretValue",
}


def verify_call_requests(
    local: Local, target: StackModel, owner: StackModel, role: Role, call: Call
) -> list[list[Request]]:
    """The requests of one call `entrix verify` made against the local system, as `role` (of the
    stack `owner`) makes them against the deployed stack `target` (a stage's copy of the local
    template: the same logical ids, its own names and ARNs). Each carries the stack tag
    CloudFormation puts on the resource; TestState also passes the state machine's role to Step
    Functions (iam:PassRole)."""
    p = call.parameters
    action = VERIFY_ACTIONS.get((call.service, call.operation))
    if action is None:
        raise ModelError(f"entrix verify {call.service}.{call.operation}: not mapped")
    tagged = {STACK_TAG: target.name}

    def on(resource_type: str, local_name: str) -> str:
        return target.arn(local.logical_id(resource_type, local_name))

    if call.service == "cloudformation":
        stack = f"arn:aws:cloudformation:{target.region}:{target.account}:stack/{target.name}/1"
        return [[role_request(target, role, action, stack, owner=owner)]]
    if call.service == "lambda":
        function = on("AWS::Lambda::Function", p["FunctionName"])
        return [[role_request(target, role, action, function, context=tagged, owner=owner)]]
    if call.service == "cloudwatch":
        names = p.get("AlarmNames") or ([p["AlarmName"]] if "AlarmName" in p else None)
        alarms = (
            [on("AWS::CloudWatch::Alarm", name) for name in names]
            if names is not None
            else _alarms_named(local, target, p.get("AlarmNamePrefix", ""))
        )
        return [
            [role_request(target, role, action, alarm, context=tagged, owner=owner)]
            for alarm in alarms
        ]
    if call.service == "sns":
        topic = on("AWS::SNS::Topic", p["TopicArn"].rsplit(":", 1)[-1])
        policy = target.topic_policy(topic)
        return [[role_request(target, role, action, topic, policy, tagged, owner=owner)]]
    if call.service == "secretsmanager":
        secret = target.arn(local.logical_id("AWS::SecretsManager::Secret", _secret_name(p)))
        return [[role_request(target, role, action, secret, context=tagged, owner=owner)]]
    if call.operation == "TestState":
        passed = on("AWS::IAM::Role", p["roleArn"].rsplit("/", 1)[-1])
        to_states = {"iam:PassedToService": "states.amazonaws.com"}
        return [
            [role_request(target, role, action, "*", owner=owner)],
            [role_request(target, role, "iam:PassRole", passed, context=to_states, owner=owner)],
        ]
    if call.operation == "DescribeExecution":
        machine, run = p["executionArn"].split(":execution:", 1)[1].split(":", 1)
        machine_arn = on("AWS::StepFunctions::StateMachine", machine)
        execution = machine_arn.replace(":stateMachine:", ":execution:") + f":{run}"
        return [[role_request(target, role, action, execution, owner=owner)]]
    machine = on("AWS::StepFunctions::StateMachine", p["stateMachineArn"].rsplit(":", 1)[-1])
    return [[role_request(target, role, action, machine, context=tagged, owner=owner)]]


def _alarms_named(local: Local, target: StackModel, prefix: str) -> list[str]:
    """The template ARN of each local alarm whose name starts with `prefix`."""
    alarms = [
        target.arn(logical_id)
        for (resource_type, name), logical_id in local.by_name.items()
        if resource_type == "AWS::CloudWatch::Alarm" and name.startswith(prefix)
    ]
    if not alarms:
        raise ModelError(f"no alarm of the template is named {prefix}*")
    return alarms


def _secret_name(parameters: Mapping[str, Any]) -> str:
    secret_id: str = parameters["SecretId"]
    if secret_id.startswith("arn:"):
        return secret_id.split(":secret:", 1)[1].rsplit("-", 1)[0]
    return secret_id
