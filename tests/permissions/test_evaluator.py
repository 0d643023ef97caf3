"""The evaluation rules the model relies on, each on a minimal policy: if the simulator (or its
version) decided any of these differently from AWS's documented logic, the template checks would
mean something else, so these fail first."""

from __future__ import annotations

from typing import Any

import pytest

from entrix.local.iam.evaluate import Decision, Request, decide

ACCOUNT = "123456789012"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/caller"
TOPIC = f"arn:aws:sns:eu-west-1:{ACCOUNT}:topic"
KEY = f"arn:aws:kms:eu-west-1:{ACCOUNT}:key/k"
ALARM = f"arn:aws:cloudwatch:eu-west-1:{ACCOUNT}:alarm:a"
TLS = {"aws:SecureTransport": "true"}
VIA_SNS = {"kms:ViaService": "sns.eu-west-1.amazonaws.com"}


def policy(*statements: dict[str, Any]) -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": list(statements)}


def allow(action: str, resource: str = "*", **extra: Any) -> dict[str, Any]:
    return {"Effect": "Allow", "Action": action, "Resource": resource, **extra}


TLS_ONLY = {
    "Effect": "Deny",
    "Principal": "*",
    "Action": "sns:Publish",
    "Resource": TOPIC,
    "Condition": {"Bool": {"aws:SecureTransport": "false"}},
}
CLOUDWATCH_MAY_PUBLISH = allow(
    "sns:Publish",
    TOPIC,
    Principal={"Service": "cloudwatch.amazonaws.com"},
    Condition={"ArnLike": {"aws:SourceArn": f"arn:aws:cloudwatch:eu-west-1:{ACCOUNT}:alarm:*"}},
)
ACCOUNT_ROOT = allow("kms:*", Principal={"AWS": f"arn:aws:iam::{ACCOUNT}:root"})
ROLE_DATA_KEY = policy(allow("kms:GenerateDataKey", KEY))

# (what the case shows, request, expected result)
CASES: list[tuple[str, Request, str]] = [
    (
        "a role's identity policy suffices in its own account",
        Request(ROLE, "sns:Publish", TOPIC, ACCOUNT, TLS, [policy(allow("sns:Publish", TOPIC))]),
        "Allowed",
    ),
    (
        "an explicit deny in the resource policy wins over an identity allow",
        Request(
            ROLE,
            "sns:Publish",
            TOPIC,
            ACCOUNT,
            {"aws:SecureTransport": "false"},
            [policy(allow("sns:Publish", TOPIC))],
            policy(TLS_ONLY),
        ),
        "ExplicitlyDenied",
    ),
    (
        "a service principal is not allowed by a TLS-only topic policy",
        Request(
            "cloudwatch.amazonaws.com",
            "sns:Publish",
            TOPIC,
            ACCOUNT,
            {**TLS, "aws:SourceArn": ALARM},
            (),
            policy(TLS_ONLY),
        ),
        "ImplicitlyDenied",
    ),
    (
        "a service principal is allowed by a statement naming it, its source matching",
        Request(
            "cloudwatch.amazonaws.com",
            "sns:Publish",
            TOPIC,
            ACCOUNT,
            {**TLS, "aws:SourceArn": ALARM},
            (),
            policy(TLS_ONLY, CLOUDWATCH_MAY_PUBLISH),
        ),
        "Allowed",
    ),
    (
        "a service principal's source outside the condition is refused",
        Request(
            "cloudwatch.amazonaws.com",
            "sns:Publish",
            TOPIC,
            ACCOUNT,
            {**TLS, "aws:SourceArn": "arn:aws:cloudwatch:eu-west-1:999999999999:alarm:a"},
            (),
            policy(TLS_ONLY, CLOUDWATCH_MAY_PUBLISH),
        ),
        "ImplicitlyDenied",
    ),
    (
        "a key policy delegating to the account needs the identity policy to allow too",
        Request(ROLE, "kms:GenerateDataKey", KEY, ACCOUNT, VIA_SNS, (), policy(ACCOUNT_ROOT)),
        "ImplicitlyDenied",
    ),
    (
        "a key policy delegating to the account, and an identity allow",
        Request(
            ROLE,
            "kms:GenerateDataKey",
            KEY,
            ACCOUNT,
            VIA_SNS,
            [ROLE_DATA_KEY],
            policy(ACCOUNT_ROOT),
        ),
        "Allowed",
    ),
    (
        "an identity allow is not enough when the key policy does not delegate to the account",
        Request(ROLE, "kms:GenerateDataKey", KEY, ACCOUNT, VIA_SNS, [ROLE_DATA_KEY], policy()),
        "ImplicitlyDenied",
    ),
    (
        "a key grant under kms:ViaService does not hold for a request without it",
        Request(
            "cloudwatch.amazonaws.com",
            "kms:GenerateDataKey",
            KEY,
            ACCOUNT,
            {"aws:SourceArn": ALARM},
            (),
            policy(
                ACCOUNT_ROOT,
                allow(
                    "kms:GenerateDataKey*",
                    Principal={"Service": "cloudwatch.amazonaws.com"},
                    Condition={"StringEquals": VIA_SNS},
                ),
            ),
        ),
        "ImplicitlyDenied",
    ),
]


@pytest.fixture(scope="module")
def decisions() -> dict[str, Decision]:
    """All cases in one batch: one simulator process for the module."""
    return {
        case: decision
        for (case, _, _), decision in zip(CASES, decide([r for _, r, _ in CASES]), strict=True)
    }


@pytest.mark.parametrize(("case", "expected"), [(case, expected) for case, _, expected in CASES])
def test_evaluation_follows_aws_logic(
    case: str, expected: str, decisions: dict[str, Decision]
) -> None:
    decision = decisions[case]
    assert not decision.errors, decision.explain()
    assert decision.result == expected, decision.explain()


def test_an_unknown_action_is_refused_not_allowed() -> None:
    """sns:PublishBatch is no IAM action: a wrong call-to-action mapping cannot pass."""
    (decision,) = decide(
        [Request(ROLE, "sns:PublishBatch", TOPIC, ACCOUNT, TLS, [policy(allow("*"))])]
    )
    assert decision.errors and not decision.allowed


def test_a_context_key_the_simulator_does_not_know_for_the_action_is_not_allowed() -> None:
    """A key it ignores would not count in its decision, so the request is refused, naming the
    key: sending a key that the simulator does not know can never pass silently."""
    attributes = {"dynamodb:Attributes": ["order_key"]}
    grant = [policy(allow("sns:Publish", TOPIC))]
    (ignored, known) = decide(
        [
            Request(ROLE, "sns:Publish", TOPIC, ACCOUNT, {**TLS, **attributes}, grant),
            Request(ROLE, "sns:Publish", TOPIC, ACCOUNT, TLS, grant),
        ]
    )
    assert ignored.result == "Allowed" and not ignored.allowed
    assert list(ignored.ignored) == ["dynamodb:Attributes"]
    assert "ignored the context keys ['dynamodb:Attributes']" in ignored.explain()
    assert known.allowed and not known.ignored
