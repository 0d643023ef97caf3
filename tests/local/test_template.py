"""Template loading, creation order and intrinsic function resolution."""

import json

import pytest

from entrix.local.template import PseudoParameters, Resolver, Template, TemplateError

TEMPLATE = {
    "Parameters": {
        "BootstrapVersion": {"Type": "String", "Default": "/cdk-bootstrap/hnb659fds/version"}
    },
    "Conditions": {
        "IsEu": {"Fn::Equals": [{"Ref": "AWS::Region"}, "eu-west-1"]},
        "NotEu": {"Fn::Not": [{"Condition": "IsEu"}]},
    },
    "Mappings": {"Sizes": {"eu-west-1": {"Memory": 256}}},
    "Resources": {
        "Machine": {
            "Type": "AWS::StepFunctions::StateMachine",
            "Properties": {
                "DefinitionString": {
                    "Fn::Join": [
                        "",
                        [
                            '{"StartAt":"A","States":{"A":{"Type":"Task","Resource":"',
                            {"Fn::GetAtt": ["Fn", "Arn"]},
                            '","Next":"N"},"N":{"Type":"Task","Resource":"arn:',
                            {"Ref": "AWS::Partition"},
                            ':states:::sns:publish","Parameters":{"TopicArn":"',
                            {"Ref": "Topic"},
                            '"},"End":true}}}',
                        ],
                    ]
                }
            },
            "DependsOn": ["FnRole"],
        },
        "Fn": {
            "Type": "AWS::Lambda::Function",
            "Properties": {
                "MemorySize": {"Fn::FindInMap": ["Sizes", {"Ref": "AWS::Region"}, "Memory"]},
                "Environment": {
                    "Variables": {
                        "TABLE": {"Ref": "Table"},
                        "TOPIC_NAME": {"Fn::GetAtt": "Topic.TopicName"},
                        "SUBBED": {
                            "Fn::Sub": "arn:${AWS::Partition}:x:${AWS::Region}:${AWS::AccountId}:"
                            "${Table}/${Topic.TopicName}/${!Literal}"
                        },
                        "SUB_VARS": {
                            "Fn::Sub": ["${Name}-${Table}", {"Name": {"Ref": "AWS::StackName"}}]
                        },
                        "PICKED": {"Fn::Select": [1, {"Fn::Split": [",", "a,b,c"]}]},
                        "ONLY_OUTSIDE_EU": {"Fn::If": ["NotEu", "yes", {"Ref": "AWS::NoValue"}]},
                        "IN_EU": {"Fn::If": ["IsEu", "yes", "no"]},
                        "SUFFIX": {"Ref": "AWS::URLSuffix"},
                        "BOOT": {"Ref": "BootstrapVersion"},
                    }
                },
            },
        },
        "FnRole": {"Type": "AWS::IAM::Role", "Properties": {}},
        "Topic": {"Type": "AWS::SNS::Topic", "Properties": {}},
        "Table": {"Type": "AWS::DynamoDB::Table", "Properties": {}},
        "OnlyOutsideEu": {"Type": "AWS::SQS::Queue", "Condition": "NotEu", "Properties": {}},
    },
}


@pytest.fixture
def template():
    return Template.from_dict(TEMPLATE)


def _deployed(template):
    resolver = Resolver(template, PseudoParameters(region="eu-west-1", stack_name="Entrix"))
    resolver.set_ref("Table", "Entrix-Table")
    resolver.set_ref("Topic", "arn:aws:sns:eu-west-1:123456789012:Entrix-Topic")
    resolver.set_attribute("Topic", "TopicName", "Entrix-Topic")
    resolver.set_attribute("Fn", "Arn", "arn:aws:lambda:eu-west-1:123456789012:function:Entrix-Fn")
    return resolver


def test_creation_order_puts_references_and_depends_on_first(template):
    order = [r.logical_id for r in template.creation_order()]
    assert sorted(order) == sorted(TEMPLATE["Resources"])
    for before, after in [
        ("Fn", "Machine"),
        ("Topic", "Machine"),
        ("FnRole", "Machine"),
        ("Table", "Fn"),
        ("Topic", "Fn"),
    ]:
        assert order.index(before) < order.index(after)


def test_cycle_is_an_error():
    cyclic = Template.from_dict(
        {
            "Resources": {
                "A": {"Type": "T", "Properties": {"X": {"Ref": "B"}}},
                "B": {"Type": "T", "DependsOn": "A"},
            }
        }
    )
    with pytest.raises(TemplateError, match="circular"):
        cyclic.creation_order()


def test_state_machine_definition_resolves_to_exact_asl(template):
    resolver = _deployed(template)
    definition = json.loads(
        resolver.resolve(template.resources["Machine"].properties["DefinitionString"])
    )
    assert (
        definition["States"]["A"]["Resource"]
        == "arn:aws:lambda:eu-west-1:123456789012:function:Entrix-Fn"
    )
    assert definition["States"]["N"]["Resource"] == "arn:aws:states:::sns:publish"
    assert (
        definition["States"]["N"]["Parameters"]["TopicArn"]
        == "arn:aws:sns:eu-west-1:123456789012:Entrix-Topic"
    )


def test_function_properties_resolve_every_supported_intrinsic(template):
    properties = _deployed(template).resolve(template.resources["Fn"].properties)
    assert properties["MemorySize"] == 256
    assert properties["Environment"]["Variables"] == {
        "TABLE": "Entrix-Table",
        "TOPIC_NAME": "Entrix-Topic",
        "SUBBED": "arn:aws:x:eu-west-1:123456789012:Entrix-Table/Entrix-Topic/${Literal}",
        "SUB_VARS": "Entrix-Entrix-Table",
        "PICKED": "b",
        "IN_EU": "yes",
        "SUFFIX": "amazonaws.com",
        "BOOT": "/cdk-bootstrap/hnb659fds/version",
    }


def test_conditions_disable_resources(template):
    resolver = _deployed(template)
    assert not resolver.is_enabled(template.resources["OnlyOutsideEu"])
    assert resolver.is_enabled(template.resources["Table"])


def test_unresolved_reference_names_what_is_missing(template):
    resolver = Resolver(template)
    with pytest.raises(TemplateError, match=r"Fn::GetAtt Fn\.Arn"):
        resolver.resolve(template.resources["Machine"].properties)
    with pytest.raises(TemplateError, match="Ref to Table"):
        resolver.resolve({"Ref": "Table"})


def test_unsupported_intrinsic_is_named():
    with pytest.raises(TemplateError, match="Fn::ImportValue"):
        Resolver(Template.from_dict({"Resources": {}})).resolve({"Fn::ImportValue": "x"})


def test_load_reads_a_template_file(tmp_path):
    path = tmp_path / "Stack.template.json"
    path.write_text(json.dumps(TEMPLATE))
    loaded = Template.load(path)
    assert loaded.resources["Machine"].depends_on == ("FnRole",)
    assert [r.logical_id for r in loaded.of_type("AWS::SNS::Topic")] == ["Topic"]
