"""Small hand-made templates in the shape the CDK synthesizes, for the local runtime's tests."""

import json

FN_ARN = {"Fn::GetAtt": ["Process", "Arn"]}

_DEFINITION = {
    "Fn::Join": [
        "",
        [
            '{"StartAt":"Wait","States":{"Wait":{"Type":"Wait","Seconds":60,"Next":"Process"},'
            '"Process":{"Type":"Task","Resource":"',
            FN_ARN,
            '","Next":"Notify"},"Notify":{"Type":"Task","Resource":"arn:',
            {"Ref": "AWS::Partition"},
            ':states:::sns:publish","Parameters":{"TopicArn":"',
            {"Ref": "Topic"},
            '","Message":"done"},"End":true}}}',
        ],
    ]
}


def _role():
    return {
        "Type": "AWS::IAM::Role",
        "Properties": {
            "AssumeRolePolicyDocument": {
                "Statement": [
                    {
                        "Action": "sts:AssumeRole",
                        "Effect": "Allow",
                        "Principal": {"Service": "lambda.amazonaws.com"},
                    }
                ],
                "Version": "2012-10-17",
            }
        },
    }


def _function(handler, environment, asset="asset.process"):
    return {
        "Type": "AWS::Lambda::Function",
        "Properties": {
            "Code": {
                "S3Bucket": {"Fn::Sub": "cdk-hnb659fds-assets-${AWS::AccountId}-eu-west-1"},
                "S3Key": "x.zip",
            },
            "Handler": handler,
            "Role": {"Fn::GetAtt": ["FnRole", "Arn"]},
            "Runtime": "python3.13",
            "MemorySize": 256,
            "Timeout": 7,
            "Layers": [{"Ref": "Layer"}],
            "Environment": {"Variables": environment},
        },
        "DependsOn": ["FnRole"],
        "Metadata": {"aws:asset:path": asset},
    }


def service_template():
    """One resource of every type the local runtime creates, plus ignored ones."""
    return {
        "Parameters": {
            "BootstrapVersion": {
                "Type": "AWS::SSM::Parameter::Value<String>",
                "Default": "/cdk-bootstrap/hnb659fds/version",
            }
        },
        "Resources": {
            "FnRole": _role(),
            "FnPolicy": {
                "Type": "AWS::IAM::Policy",
                "Properties": {"PolicyDocument": {}, "Roles": [{"Ref": "FnRole"}]},
            },
            "Table": {
                "Type": "AWS::DynamoDB::Table",
                "Properties": {
                    "KeySchema": [{"AttributeName": "record_id", "KeyType": "HASH"}],
                    "AttributeDefinitions": [
                        {"AttributeName": "record_id", "AttributeType": "S"},
                        {"AttributeName": "result_status", "AttributeType": "S"},
                    ],
                    "BillingMode": "PAY_PER_REQUEST",
                    "GlobalSecondaryIndexes": [
                        {
                            "IndexName": "by-status",
                            "KeySchema": [{"AttributeName": "result_status", "KeyType": "HASH"}],
                            "Projection": {"ProjectionType": "KEYS_ONLY"},
                        }
                    ],
                    "TimeToLiveSpecification": {"AttributeName": "expires_at", "Enabled": True},
                    "PointInTimeRecoverySpecification": {"PointInTimeRecoveryEnabled": True},
                },
            },
            "Bucket": {
                "Type": "AWS::S3::Bucket",
                "Properties": {"VersioningConfiguration": {"Status": "Enabled"}},
            },
            "BucketPolicy": {
                "Type": "AWS::S3::BucketPolicy",
                "Properties": {"Bucket": {"Ref": "Bucket"}},
            },
            "Key": {"Type": "AWS::KMS::Key", "Properties": {}},
            "Topic": {
                "Type": "AWS::SNS::Topic",
                "Properties": {"KmsMasterKeyId": {"Fn::GetAtt": ["Key", "Arn"]}},
            },
            "Queue": {
                "Type": "AWS::SQS::Queue",
                "Properties": {"VisibilityTimeout": 45, "SqsManagedSseEnabled": True},
            },
            "Subscription": {
                "Type": "AWS::SNS::Subscription",
                "Properties": {
                    "TopicArn": {"Ref": "Topic"},
                    "Protocol": "sqs",
                    "Endpoint": {"Fn::GetAtt": ["Queue", "Arn"]},
                    "RawMessageDelivery": True,
                },
            },
            "Secret": {
                "Type": "AWS::SecretsManager::Secret",
                "Properties": {
                    "GenerateSecretString": {"PasswordLength": 64, "ExcludePunctuation": True}
                },
            },
            "Layer": {
                "Type": "AWS::Lambda::LayerVersion",
                "Properties": {
                    "Content": {"S3Bucket": "b", "S3Key": "k"},
                    "CompatibleRuntimes": ["python3.13"],
                },
            },
            "Process": _function(
                "tests.local.fake_handlers.echo",
                {
                    "TABLE": {"Ref": "Table"},
                    "BUCKET": {"Ref": "Bucket"},
                    "SECRET": {"Ref": "Secret"},
                    "TOPIC": {"Ref": "Topic"},
                    "GREETING": "hi",
                },
            ),
            "Logs": {"Type": "AWS::Logs::LogGroup", "Properties": {}},
            "Machine": {
                "Type": "AWS::StepFunctions::StateMachine",
                "Properties": {
                    "DefinitionString": _DEFINITION,
                    "RoleArn": {"Fn::GetAtt": ["FnRole", "Arn"]},
                    "LoggingConfiguration": {
                        "Destinations": [
                            {
                                "CloudWatchLogsLogGroup": {
                                    "LogGroupArn": {"Fn::GetAtt": ["Logs", "Arn"]}
                                }
                            }
                        ]
                    },
                },
            },
            "Schedule": {
                "Type": "AWS::Events::Rule",
                "Properties": {
                    "ScheduleExpression": "rate(5 minutes)",
                    "State": "ENABLED",
                    "Targets": [
                        {
                            "Arn": {"Ref": "Machine"},
                            "Id": "Target0",
                            "RoleArn": {"Fn::GetAtt": ["FnRole", "Arn"]},
                        }
                    ],
                },
            },
            "Alarm": {
                "Type": "AWS::CloudWatch::Alarm",
                "Properties": {"AlarmActions": [{"Ref": "Topic"}]},
            },
            "AutoDelete": {
                "Type": "Custom::S3AutoDeleteObjects",
                "Properties": {"BucketName": {"Ref": "Bucket"}},
            },
            "CDKMetadata": {
                "Type": "AWS::CDK::Metadata",
                "Properties": {"Analytics": "v2:deflate64:x"},
            },
        },
    }


def api_template(ttl=300):
    """A REST API as the CDK writes it: POST /orders, GET and DELETE /orders/{record_id},
    GET /orders (a required and an optional query string parameter), a REQUEST authorizer on an
    Authorization header, a parameter validator, gateway responses in the service's error shape."""

    def method(logical_resource, http_method, function, parameters, extra=None):
        body = {
            "Type": "AWS::ApiGateway::Method",
            "Properties": {
                "AuthorizationType": "CUSTOM",
                "AuthorizerId": {"Ref": "Authorizer"},
                "HttpMethod": http_method,
                "Integration": {
                    "IntegrationHttpMethod": "POST",
                    "Type": "AWS_PROXY",
                    "Uri": {
                        "Fn::Join": [
                            "",
                            [
                                "arn:",
                                {"Ref": "AWS::Partition"},
                                ":apigateway:eu-west-1:lambda:path/2015-03-31/functions/",
                                {"Fn::GetAtt": [function, "Arn"]},
                                "/invocations",
                            ],
                        ]
                    },
                },
                "RequestParameters": parameters,
                "RequestValidatorId": {"Ref": "Validator"},
                "ResourceId": {"Ref": logical_resource},
                "RestApiId": {"Ref": "Api"},
            },
        }
        body["Properties"].update(extra or {})
        return body

    auth_uri = {
        "Fn::Join": [
            "",
            [
                "arn:",
                {"Fn::Select": [1, {"Fn::Split": [":", {"Fn::GetAtt": ["AuthFn", "Arn"]}]}]},
                ":apigateway:eu-west-1:lambda:path/2015-03-31/functions/",
                {"Fn::GetAtt": ["AuthFn", "Arn"]},
                "/invocations",
            ],
        ]
    }
    header = "method.request.header.Authorization"
    error_template = (
        '{"message": $context.error.messageString, "code": "$context.error.responseType", '
        '"request_id": "$context.requestId"}'
    )
    return {
        "Resources": {
            "FnRole": _role(),
            "Layer": {
                "Type": "AWS::Lambda::LayerVersion",
                "Properties": {"Content": {"S3Bucket": "b", "S3Key": "k"}},
            },
            "AuthFn": _function("tests.local.fake_handlers.authorize", {"EXPECTED": "let-me-in"}),
            "EchoFn": _function("tests.local.fake_handlers.proxy_echo", {"GREETING": "proxied"}),
            "Api": {"Type": "AWS::ApiGateway::RestApi", "Properties": {"Name": "orders"}},
            "Orders": {
                "Type": "AWS::ApiGateway::Resource",
                "Properties": {
                    "ParentId": {"Fn::GetAtt": ["Api", "RootResourceId"]},
                    "PathPart": "orders",
                    "RestApiId": {"Ref": "Api"},
                },
            },
            "Order": {
                "Type": "AWS::ApiGateway::Resource",
                "Properties": {
                    "ParentId": {"Ref": "Orders"},
                    "PathPart": "{record_id}",
                    "RestApiId": {"Ref": "Api"},
                },
            },
            "Validator": {
                "Type": "AWS::ApiGateway::RequestValidator",
                "Properties": {
                    "RestApiId": {"Ref": "Api"},
                    "ValidateRequestParameters": True,
                    "ValidateRequestBody": False,
                },
            },
            "Authorizer": {
                "Type": "AWS::ApiGateway::Authorizer",
                "Properties": {
                    "AuthorizerResultTtlInSeconds": ttl,
                    "AuthorizerUri": auth_uri,
                    "IdentitySource": header,
                    "Name": "jwt",
                    "RestApiId": {"Ref": "Api"},
                    "Type": "REQUEST",
                },
            },
            "PostOrders": method("Orders", "POST", "EchoFn", {header: True}),
            "GetOrder": method(
                "Order", "GET", "EchoFn", {header: True, "method.request.path.record_id": True}
            ),
            "DeleteOrder": method(
                "Order", "DELETE", "EchoFn", {header: True, "method.request.path.record_id": True}
            ),
            "QueryOrders": method(
                "Orders",
                "GET",
                "EchoFn",
                {
                    "method.request.querystring.since": True,
                    "method.request.querystring.limit": False,
                },
            ),
            "Deployment": {
                "Type": "AWS::ApiGateway::Deployment",
                "Properties": {"RestApiId": {"Ref": "Api"}},
                "DependsOn": ["PostOrders", "GetOrder"],
            },
            "Stage": {
                "Type": "AWS::ApiGateway::Stage",
                "Properties": {
                    "DeploymentId": {"Ref": "Deployment"},
                    "RestApiId": {"Ref": "Api"},
                    "StageName": "prod",
                },
            },
            "Unauthorized": {
                "Type": "AWS::ApiGateway::GatewayResponse",
                "Properties": {
                    "ResponseParameters": {
                        "gatewayresponse.header.Content-Type": "'application/json'"
                    },
                    "ResponseTemplates": {"application/json": error_template},
                    "ResponseType": "UNAUTHORIZED",
                    "RestApiId": {"Ref": "Api"},
                    "StatusCode": "401",
                },
            },
            "Default4xx": {
                "Type": "AWS::ApiGateway::GatewayResponse",
                "Properties": {
                    "ResponseParameters": {"gatewayresponse.header.X-Entrix": "'gateway'"},
                    "ResponseTemplates": {"application/json": error_template},
                    "ResponseType": "DEFAULT_4XX",
                    "RestApiId": {"Ref": "Api"},
                },
            },
            "Default5xx": {
                "Type": "AWS::ApiGateway::GatewayResponse",
                "Properties": {
                    "ResponseTemplates": {"application/json": error_template},
                    "ResponseType": "DEFAULT_5XX",
                    "RestApiId": {"Ref": "Api"},
                },
            },
            "Account": {"Type": "AWS::ApiGateway::Account", "Properties": {}},
        }
    }


def dumps(template):
    return json.dumps(template)
