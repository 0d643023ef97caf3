"""What `entrix verify` sets off to prove that an alarm reaches an encrypted topic, paging nobody.

The probe alarm watches a metric nothing publishes, so only `entrix verify` (SetAlarmState) ever
moves it; its ALARM and OK actions go to the probe topic, which has no subscriber. The topic's
key policy and topic policy are the operations topic's, made by the same function
(infra/constructs/alarm_topic.py; tests/infra/test_verification_probe.py holds them equal), so
a successful action here shows that CloudWatch may use such a key and such a topic in this
account. It does not show that the operations topic itself, or its subscribers' delivery,
works: the describe calls of `alarms-configured` cover the operations topic's wiring, the
permission model its policies.
"""

from __future__ import annotations

from aws_cdk import Duration, RemovalPolicy, Stack
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as actions
from constructs import Construct

from infra.constructs.alarm_topic import alarm_topic

NAMESPACE = "Entrix/Verification"
METRIC = "Probe"
# The alarm is named <stack>-<PROBE_ALARM>: the verify role may set that one alarm.
PROBE_ALARM = "VerificationProbe"


class VerificationProbe(Construct):
    """The probe alarm (named `<stack>-VerificationProbe`, so the verify role can be granted that
    one alarm) and its own encrypted, TLS-only topic."""

    def __init__(
        self, scope: Construct, id: str, *, removal_policy: RemovalPolicy = RemovalPolicy.RETAIN
    ) -> None:
        super().__init__(scope, id)
        stack = Stack.of(self)
        self.topic = alarm_topic(
            self,
            key_id="Key",
            topic_id="Topic",
            key_description="Encrypts the Entrix verification probe topic",
            display_name="Entrix verification probe (no subscribers)",
            removal_policy=removal_policy,
        )
        self.alarm = cloudwatch.Alarm(
            self,
            "Alarm",
            alarm_name=f"{stack.stack_name}-{PROBE_ALARM}",
            metric=cloudwatch.Metric(
                namespace=NAMESPACE,
                metric_name=METRIC,
                dimensions_map={"Stack": stack.stack_name},
                period=Duration.minutes(5),
                statistic="Sum",
            ),
            threshold=1,
            evaluation_periods=1,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
            alarm_description=(
                "Entrix: the verification probe. Only `entrix verify` sets it off; it notifies "
                "the probe topic, never the operations topic."
            ),
        )
        action = actions.SnsAction(self.topic)
        self.alarm.add_alarm_action(action)
        self.alarm.add_ok_action(action)
