"""Creating every supported resource type from a template, in moto, as `entrix local` does."""

import json
import string

import boto3
import pytest
from moto import mock_aws

from entrix.local.deploy import (
    Deployer,
    DeploymentError,
    cap_wait_seconds,
    check_supported,
    generate_secret_string,
    physical_name,
)
from entrix.local.lambda_runner import invoke, moto_lambdas_in_process
from entrix.local.template import PseudoParameters, Template
from tests.local.templates import api_template, service_template

REGION = "eu-west-1"


def client(service):
    return boto3.client(service, region_name=REGION)


@pytest.fixture
def deployed(tmp_path):
    with mock_aws(), moto_lambdas_in_process():
        template = Template.from_dict(service_template())
        deployment = Deployer(
            template, client, pseudo=PseudoParameters(region=REGION), max_wait_seconds=1
        ).deploy()
        yield deployment


def test_table_has_keys_indexes_billing_and_ttl(deployed):
    table = client("dynamodb").describe_table(TableName="Entrix-Table")["Table"]
    assert table["KeySchema"] == [{"AttributeName": "record_id", "KeyType": "HASH"}]
    assert table["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"
    assert [i["IndexName"] for i in table["GlobalSecondaryIndexes"]] == ["by-status"]
    ttl = client("dynamodb").describe_time_to_live(TableName="Entrix-Table")
    assert ttl["TimeToLiveDescription"] == {
        "TimeToLiveStatus": "ENABLED",
        "AttributeName": "expires_at",
    }
    assert deployed.tables == {"Entrix-Table": "expires_at"}


def test_bucket_is_created_with_a_valid_name_and_versioning(deployed):
    assert client("s3").get_bucket_versioning(Bucket="entrix-bucket")["Status"] == "Enabled"
    assert deployed.names["Bucket"] == "entrix-bucket"


def test_topic_queue_and_subscription_deliver(deployed):
    topic_arn = f"arn:aws:sns:{REGION}:123456789012:Entrix-Topic"
    assert deployed.topics == [topic_arn]
    queue_url = client("sqs").get_queue_url(QueueName="Entrix-Queue")["QueueUrl"]
    attributes = client("sqs").get_queue_attributes(QueueUrl=queue_url, AttributeNames=["All"])[
        "Attributes"
    ]
    assert attributes["VisibilityTimeout"] == "45"
    client("sns").publish(TopicArn=topic_arn, Message="hello")
    messages = client("sqs").receive_message(QueueUrl=queue_url)["Messages"]
    assert [m["Body"] for m in messages] == ["hello"]  # RawMessageDelivery honoured


def test_secret_gets_a_generated_value_following_its_rules(deployed):
    arn = client("lambda").get_function_configuration(FunctionName="Entrix-Process")["Environment"][
        "Variables"
    ]["SECRET"]
    value = client("secretsmanager").get_secret_value(SecretId=arn)["SecretString"]
    assert len(value) == 64
    assert set(value) <= set(string.ascii_letters + string.digits)


def test_function_has_handler_resolved_environment_layers_and_settings(deployed):
    configuration = client("lambda").get_function_configuration(FunctionName="Entrix-Process")
    assert configuration["Handler"] == "tests.local.fake_handlers.echo"
    assert configuration["Timeout"] == 7
    assert configuration["MemorySize"] == 256
    assert configuration["Role"].endswith(":role/Entrix-FnRole")
    variables = configuration["Environment"]["Variables"]
    assert variables["TABLE"] == "Entrix-Table"
    assert variables["BUCKET"] == "entrix-bucket"
    assert variables["TOPIC"] == f"arn:aws:sns:{REGION}:123456789012:Entrix-Topic"
    assert variables["SECRET"].startswith(
        f"arn:aws:secretsmanager:{REGION}:123456789012:secret:Entrix-Secret"
    )
    assert [layer["Arn"] for layer in configuration["Layers"]] == [
        f"arn:aws:lambda:{REGION}:123456789012:layer:Entrix-Layer:1"
    ]
    spec = deployed.functions["Entrix-Process"]
    assert invoke(spec, {}).json()["greeting"] == "hi"


def test_state_machine_gets_the_exact_definition_with_waits_capped(deployed):
    arn = deployed.state_machines["Machine"]
    definition = json.loads(
        client("stepfunctions").describe_state_machine(stateMachineArn=arn)["definition"]
    )
    assert definition["States"]["Wait"]["Seconds"] == 1
    assert definition["States"]["Process"]["Resource"] == (
        f"arn:aws:lambda:{REGION}:123456789012:function:Entrix-Process"
    )
    assert definition["States"]["Notify"]["Resource"] == "arn:aws:states:::sns:publish"
    assert definition["States"]["Notify"]["Parameters"]["TopicArn"].endswith(":Entrix-Topic")


def test_schedule_rule_is_recorded_with_its_target(deployed):
    (schedule,) = deployed.schedules
    assert schedule.expression == "rate(5 minutes)"
    assert schedule.state_machine_arns == (deployed.state_machines["Machine"],)
    assert schedule.enabled
    rule = client("events").describe_rule(Name="Entrix-Schedule")
    assert rule["ScheduleExpression"] == "rate(5 minutes)"


def test_ignored_types_are_listed_not_created(deployed):
    ignored = dict(deployed.ignored)
    assert ignored == {
        "FnPolicy": "AWS::IAM::Policy",
        "BucketPolicy": "AWS::S3::BucketPolicy",
        "Key": "AWS::KMS::Key",
        "Logs": "AWS::Logs::LogGroup",
        "Alarm": "AWS::CloudWatch::Alarm",
        "AutoDelete": "Custom::S3AutoDeleteObjects",
        "CDKMetadata": "AWS::CDK::Metadata",
    }
    assert client("kms").list_keys()["Keys"] == []


def test_api_parts_are_kept_for_the_emulation():
    with mock_aws():
        deployment = Deployer(
            Template.from_dict(api_template()), client, pseudo=PseudoParameters()
        ).deploy()
    kinds = {kind for kind, _ in deployment.api.values()}
    assert "AWS::ApiGateway::Method" in kinds
    assert "AWS::ApiGateway::Account" not in kinds
    method = deployment.api["GetOrder"][1]
    assert method["AuthorizerId"] == deployment.api_ids["Authorizer"]
    assert method["ResourceId"] == deployment.api_ids["Order"]


def test_unknown_resource_type_is_an_error_naming_it_before_anything_is_created():
    template = service_template()
    template["Resources"]["Cluster"] = {"Type": "AWS::ECS::Cluster", "Properties": {}}
    with pytest.raises(DeploymentError, match=r"Cluster \(AWS::ECS::Cluster\)"):
        check_supported(Template.from_dict(template))
    with mock_aws():
        with pytest.raises(DeploymentError, match="AWS::ECS::Cluster"):
            Deployer(Template.from_dict(template), client, pseudo=PseudoParameters()).deploy()
        assert client("dynamodb").list_tables()["TableNames"] == []


def test_code_asset_without_the_handler_module_is_refused(tmp_path):
    template = service_template()
    template["Resources"]["Process"]["Properties"]["Handler"] = "entrix.handlers.ingest.handler"
    (tmp_path / "asset.process" / "entrix" / "handlers").mkdir(parents=True)
    with mock_aws():
        deployer = Deployer(
            Template.from_dict(template), client, pseudo=PseudoParameters(), asset_dir=tmp_path
        )
        with pytest.raises(
            DeploymentError, match=r"Process .*does not contain entrix/handlers/ingest\.py"
        ):
            deployer.deploy()
    (tmp_path / "asset.process" / "entrix" / "handlers" / "ingest.py").write_text("")
    with mock_aws():
        Deployer(
            Template.from_dict(template), client, pseudo=PseudoParameters(), asset_dir=tmp_path
        ).deploy()


def test_physical_names_are_stable_and_within_limits():
    assert physical_name("Entrix", "Table") == "Entrix-Table"
    long = physical_name("Entrix", "X" * 100, 64)
    assert len(long) == 64
    assert long == physical_name("Entrix", "X" * 100, 64)


def test_generated_secret_honours_exclusions_and_template():
    value = generate_secret_string(
        {"PasswordLength": 40, "ExcludeCharacters": "abc", "ExcludeNumbers": True}
    )
    assert len(value) == 40
    assert not set(value) & set("abc" + string.digits)
    document = json.loads(
        generate_secret_string(
            {"SecretStringTemplate": '{"user": "u"}', "GenerateStringKey": "password"}
        )
    )
    assert document["user"] == "u"
    assert len(document["password"]) == 32
    assert generate_secret_string({}) != generate_secret_string({})


def test_wait_cap_reaches_nested_states_and_keeps_short_waits():
    definition = {
        "States": {
            "Long": {"Type": "Wait", "Seconds": 300},
            "Short": {"Type": "Wait", "Seconds": 0},
            "Path": {"Type": "Wait", "SecondsPath": "$.s"},
            "Map": {
                "Type": "Map",
                "ItemProcessor": {"States": {"Inner": {"Type": "Wait", "Seconds": 30}}},
            },
        }
    }
    capped = cap_wait_seconds(definition, 2)["States"]
    assert capped["Long"]["Seconds"] == 2
    assert capped["Short"]["Seconds"] == 0
    assert capped["Path"] == {"Type": "Wait", "SecondsPath": "$.s"}
    assert capped["Map"]["ItemProcessor"]["States"]["Inner"]["Seconds"] == 2
