"""Operations view of the service: alarms that page the operations topic, and one dashboard.

Alarms go to an operations topic of their own, not to the results pipeline's alert topic: that
one is the trading team's business channel ("Slack": rejected orders), optionally forwarded to a
webhook that formats auction messages, while alarms are for whoever runs the service and carry
CloudWatch's alarm JSON. Both topics are KMS-encrypted and TLS-only.

Two alarms watch what clients feel rather than what failed: the age of the unexpired order
waiting longest for a result (Lambda A measures it on every poll) and runs that succeed or end
never ready (the trading team's business event, not a fault). For those two,
silence is the fault (a disabled schedule, a run that never starts), so missing data breaches;
every other alarm counts events, where no data means no traffic, not an outage. Each alarm states
how many of its last periods must breach (one occurrence of a self-healing fault pages nobody)
and why. Business events (results never ready, orders close to expiry, rejections) are the
trading team's, published on the alert topic by the pipeline itself: no alarm pages operations
for them. Every alarm notifies on ALARM and on OK, so the operator also learns when a fault has
cleared.
"""

from __future__ import annotations

from aws_cdk import CfnOutput, Duration, RemovalPolicy, Stack
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as actions
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from constructs import Construct

from entrix import settings, telemetry
from infra.constructs.alarm_topic import alarm_topic
from infra.constructs.history_archive import HistoryArchive
from infra.constructs.intake import Intake
from infra.constructs.results_pipeline import ResultsPipeline
from infra.constructs.results_workflow import STORE_TRANSIENT_ERRORS
from infra.constructs.slack_forwarder import SlackForwarder

PERIOD = Duration.minutes(5)
METRICS_NAMESPACE = "Entrix"
# The authorizer logs this line for every token it refuses (entrix.handlers.authorizer), and
# then raises "Unauthorized" on purpose: Lambda counts each refusal as an error.
AUTHORIZER_REFUSAL_LOG_TEXT = "token refused"
AUTHORIZER_REFUSALS_METRIC = "AuthorizerRefusals"
STORE_FAULTS_METRIC = "ResultStoreFaults"
# Written by the handlers themselves (entrix.handlers.ingest and .process).
INGEST_METRICS = (
    "OrdersReceived",
    "OrdersStored",
    "OrdersUnchanged",
    "OrdersRefused",
    "OrdersNotStored",
    "RequestsRefused",
)
PROCESS_METRICS = ("ResultsAccepted", "ResultsRejected", "ResultsSkipped", "ResultsFailed")
# Lambda A writes the age of the order waiting longest for a result on every poll
# (entrix.handlers.results).
OLDEST_PENDING_METRIC = "OldestPendingOrderAgeSeconds"
# The state a run ends in when the auction platform was never ready (a business event the state
# machine publishes to the trading team), and the count of such runs from its log.
NEVER_READY_STATE = "ResultsNeverReady"
NEVER_READY_METRIC = "RunsNeverReady"
# Missing data of the alarms that count events: no event, no fault.
QUIET = cloudwatch.TreatMissingData.NOT_BREACHING
# Lambda's IteratorAge (milliseconds) at which the history archiver is paged: a quarter of the
# stream's 24 h retention, time enough to fix it before records are lost.
HISTORY_LAG_ALARM_MS = 6 * 3600 * 1000
# List prices in US dollars (us-east-1, as bench/aws_cost.py prices runs; other regions cost up
# to a fifth more): on-demand DynamoDB request units and REST API requests (first 333 million a
# month). Lambda is left out: at the API's memory sizes it is a few percent of a large POST's
# DynamoDB writes.
DYNAMODB_DOLLARS_PER_WRITE_UNIT = 0.625e-6
DYNAMODB_DOLLARS_PER_READ_UNIT = 0.125e-6
REST_API_DOLLARS_PER_REQUEST = 3.5e-6


def _decimal(number: float) -> str:
    """`number` in plain decimals: CloudWatch metric math has no exponent notation (`6.25e-07`
    parses as the identifier `e`; CDK's synth warns of it)."""
    return f"{number:.12f}".rstrip("0")


COST_PERIOD = Duration.hours(1)


class Observability(Construct):
    """Operations topic, the service's alarms and its dashboard."""

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        intake: Intake,
        results: ResultsPipeline,
        history: HistoryArchive,
        oldest_pending_alarm_seconds: int,
        no_successful_run_alarm_minutes: int,
        cost_alarm_dollars_per_hour: float,
        removal_policy: RemovalPolicy = RemovalPolicy.RETAIN,
        email_addresses: tuple[str, ...] = (),
    ) -> None:
        super().__init__(scope, id)
        self.topic = self._ops_topic(removal_policy, email_addresses)
        self.alarms: dict[str, cloudwatch.Alarm] = {}

        # Clients feel these two first, whatever broke: orders not moving.
        self.oldest_pending = cloudwatch.Metric(
            namespace=telemetry.NAMESPACE,
            metric_name=OLDEST_PENDING_METRIC,
            dimensions_map={
                telemetry.FUNCTION_DIMENSION: results.results_function.function_name,
                telemetry.SERVICE_DIMENSION: "results",
            },
            period=PERIOD,
            statistic="Maximum",
        )
        # Lambda A writes the figure at every poll, so every 5-minute period of a working
        # schedule has one. Silence breaches: no run started (schedule disabled, its target
        # failing) or Lambda A cannot read the index. Two of three periods: one period without a
        # poll (a run starting late across a period's edge) pages nobody.
        self._alarm(
            "OldestPendingOrder",
            self.oldest_pending,
            f"an order has waited more than {oldest_pending_alarm_seconds // 60} minutes for a "
            "result, or its age stopped being measured (no run polls): orders are not moving "
            "and expire unprocessed 24 h after receipt (docs/runbooks.md, 'An order is stuck')",
            threshold=oldest_pending_alarm_seconds,
            datapoints=(2, 3),
            missing=cloudwatch.TreatMissingData.BREACHING,
        )
        # Runs that ended in ResultsNeverReady are the trading team's (the state machine alerts
        # them), counted from the state machine's log. The filter writes 0 for every period in
        # which the state machine logged anything (default value; every run logs, level ALL),
        # so the count is missing only when no run ran at all.
        self.never_ready = self._log_count(
            "NeverReadyFilter",
            results.state_machine_logs,
            logs.FilterPattern.all(
                logs.FilterPattern.string_value("$.type", "=", "FailStateEntered"),
                logs.FilterPattern.string_value("$.details.name", "=", NEVER_READY_STATE),
            ),
            NEVER_READY_METRIC,
        )
        # No run succeeded or ended never ready in any 5-minute period of the window. A period
        # without a success is 0 succeeded (FILL); the never-ready count is left unfilled, so a
        # period in which no run logged anything (none started) stays missing, which breaches.
        # One success or one never-ready run anywhere clears it.
        periods = no_successful_run_alarm_minutes // int(PERIOD.to_minutes())
        self._alarm(
            "NoSuccessfulRun",
            cloudwatch.MathExpression(
                expression="FILL(succeeded, 0) + never_ready",
                using_metrics={
                    "succeeded": results.state_machine.metric_succeeded(
                        period=PERIOD, statistic="Sum"
                    ),
                    "never_ready": self.never_ready,
                },
                label="Runs that succeeded or ended never ready",
                period=PERIOD,
            ),
            f"no results run succeeded for {no_successful_run_alarm_minutes} minutes (failed, "
            "timed out, or none started; runs that ended never ready are the trading team's and "
            "do not count): no result is being recorded (docs/runbooks.md, 'An order is stuck')",
            comparison=cloudwatch.ComparisonOperator.LESS_THAN_THRESHOLD,
            datapoints=(periods, periods),
            missing=cloudwatch.TreatMissingData.BREACHING,
        )

        api_5xx = intake.api.metric_server_error(period=PERIOD, statistic="Sum")
        # A lone 5xx (a cold start's timeout, one throttled write) is retried by the client.
        self._alarm(
            "ApiServerErrors",
            api_5xx,
            "the API answered 5xx (a server fault) in two of the last three 5-minute periods",
            datapoints=(2, 3),
            missing=QUIET,
        )

        # Refused tokens, counted from the authorizer's log, tell refusals from faults.
        refusals = self._log_count(
            "AuthorizerRefusalsFilter",
            intake.authorizer_function.log_group,
            logs.FilterPattern.literal(f'"{AUTHORIZER_REFUSAL_LOG_TEXT}"'),
            AUTHORIZER_REFUSALS_METRIC,
        )
        authorizer_faults = cloudwatch.MathExpression(
            expression="FILL(errors, 0) - FILL(refusals, 0)",
            using_metrics={
                "errors": intake.authorizer_function.metric_errors(period=PERIOD),
                "refusals": refusals,
            },
            label="Authorizer faults (errors that are not token refusals)",
            period=PERIOD,
        )
        # An unreadable secret fails every request: it persists. One crash is retried.
        self._alarm(
            "AuthorizerErrors",
            authorizer_faults,
            "the authorizer failed other than by refusing a token (secret unreadable, crash, "
            "timeout) in two of the last three 5-minute periods: callers get 5xx",
            datapoints=(2, 3),
            missing=QUIET,
        )

        # The API functions' errors and throttles reach the client as 5xx, which it retries
        # (every write is idempotent): two of three periods tell a lasting fault from a blip.
        ingest = intake.ingest_function
        self._alarm(
            "IngestErrors",
            ingest.metric_errors(period=PERIOD),
            "the ingest Lambda raised or timed out in two of the last three 5-minute periods: "
            "orders may not have been acknowledged",
            datapoints=(2, 3),
            missing=QUIET,
        )
        self._alarm(
            "IngestThrottles",
            ingest.metric_throttles(period=PERIOD),
            "the ingest Lambda was throttled (concurrency limit) in two of the last three "
            "5-minute periods: clients get 5xx",
            datapoints=(2, 3),
            missing=QUIET,
        )

        # Cancel writes too: a cancel that failed leaves the order pending, to be auctioned.
        # The reads (order status, the listing) are on the dashboard, their 5xx in the API's.
        cancel = intake.cancel_function
        self._alarm(
            "CancelErrors",
            cancel.metric_errors(period=PERIOD),
            "the cancel Lambda raised or timed out in two of the last three 5-minute periods: a "
            "cancel may not have been applied (the order stays pending until the client's retry "
            "succeeds)",
            datapoints=(2, 3),
            missing=QUIET,
        )
        self._alarm(
            "CancelThrottles",
            cancel.metric_throttles(period=PERIOD),
            "the cancel Lambda was throttled (concurrency limit) in two of the last three "
            "5-minute periods: clients get 5xx",
            datapoints=(2, 3),
            missing=QUIET,
        )

        # A failed rotation step leaves the key as it was (Secrets Manager retries the step):
        # nothing is refused, but the key is not renewed until someone looks. Rotations are a
        # month apart: the first failure is worth a look.
        if intake.key_rotation is not None:
            self._alarm(
                "KeyRotationErrors",
                intake.key_rotation.function.metric_errors(period=PERIOD),
                "a step of the JWT signing key's rotation failed: the key stays as it was until "
                "the rotation succeeds (docs/runbooks.md, 'Rotating the signing key')",
                datapoints=(1, 1),
                missing=QUIET,
            )

        machine = results.state_machine
        # A failed run's orders wait 5 minutes for the next run: two failures within three
        # periods page.
        self.runs_failed = cloudwatch.MathExpression(
            expression="FILL(failed, 0) - FILL(never_ready, 0)",
            using_metrics={
                "failed": machine.metric_failed(period=PERIOD),
                "never_ready": self.never_ready,
            },
            label="Runs failed (not counting results never ready)",
            period=PERIOD,
        )
        self._alarm(
            "ExecutionsFailed",
            self.runs_failed,
            "results runs failed for a reason other than the auction platform never being "
            "ready, in two of the last three 5-minute periods (docs/runbooks.md, 'A batch "
            "failed')",
            datapoints=(2, 3),
            missing=QUIET,
        )
        # A run that hits the 30-minute timeout holds its orders' claims until the lease ends.
        self._alarm(
            "ExecutionsTimedOut",
            machine.metric_timed_out(period=PERIOD),
            "a results run hit the state machine's timeout",
            datapoints=(1, 1),
            missing=QUIET,
        )
        # Only a person (or a deploy) stops a run: rare, and worth knowing at once.
        self._alarm(
            "ExecutionsAborted",
            machine.metric_aborted(period=PERIOD),
            "a results run was stopped before it finished",
            datapoints=(1, 1),
            missing=QUIET,
        )
        # A crashed batch's orders are released for the next run: a crash that repeats is the
        # fault.
        self._alarm(
            "ProcessErrors",
            results.process_function.metric_errors(period=PERIOD),
            "Lambda B failed a whole batch (crash or timeout) in two of the last three 5-minute "
            "periods: its orders are released for the next run and the alert topic was told "
            "(docs/runbooks.md, 'A batch failed')",
            datapoints=(2, 3),
            missing=QUIET,
        )
        # Lambda B logs these by name when it could not store, alert or record an order; it
        # releases the order (counted `failed` in a run that still succeeds) for the next run,
        # so one blip heals itself.
        store_faults = self._log_count(
            "StoreFaultsFilter",
            results.process_function.log_group,
            logs.FilterPattern.literal(" ".join(f"?{error}" for error in STORE_TRANSIENT_ERRORS)),
            STORE_FAULTS_METRIC,
        )
        self._alarm(
            "ResultStoreFaults",
            store_faults,
            "Lambda B could not write results to S3, publish an alert or update the orders table "
            "in two of the last three 5-minute periods (the order is released, stays pending and "
            "is counted `failed` in the run's output; docs/runbooks.md, 'A batch failed')",
            datapoints=(2, 3),
            missing=QUIET,
        )
        # A dead letter stays until someone handles it: the level, not an event, is alarmed.
        self._alarm(
            "ScheduleDeadLetters",
            results.dead_letter_queue.metric_approximate_number_of_messages_visible(
                period=PERIOD, statistic="Maximum"
            ),
            "EventBridge could not start a scheduled run; the event is in the dead-letter queue",
            datapoints=(1, 1),
            missing=QUIET,
        )

        self._alarm(
            "HistoryDeadLetters",
            history.dead_letter_queue.metric_approximate_number_of_messages_visible(
                period=PERIOD, statistic="Maximum"
            ),
            "the history archiver gave up on stream records after its retries; their shard and "
            "sequence numbers are in the history dead-letter queue (read them again from the "
            "stream within 24 h, or the changes are missing from history/)",
            datapoints=(1, 1),
            missing=QUIET,
        )
        # The stream retries a failed batch: a repeating failure is the fault.
        self._alarm(
            "HistoryErrors",
            history.function.metric_errors(period=PERIOD),
            "the history archiver raised or timed out in two of the last three 5-minute periods: "
            "the stream batch is retried",
            datapoints=(2, 3),
            missing=QUIET,
        )
        # Six hours behind is a level reached slowly, not a blip: the first period pages.
        self._alarm(
            "HistoryLag",
            history.function.metric("IteratorAge", period=PERIOD, statistic="Maximum"),
            "the history archiver is more than 6 hours behind the orders table's stream; "
            "records older than the stream's 24 h are lost without reaching the dead-letter "
            "queue",
            threshold=HISTORY_LAG_ALARM_MS,
            datapoints=(1, 1),
            missing=QUIET,
        )

        self.api_cost = _api_cost_per_hour(intake)
        # An hour's spend is already a sum over an hour.
        self._alarm(
            "ApiCost",
            self.api_cost,
            f"the API path's estimated spend (DynamoDB request units of the orders and client "
            f"usage tables, and API Gateway requests, at list prices) reached "
            f"{cost_alarm_dollars_per_hour} dollars in an hour",
            threshold=cost_alarm_dollars_per_hour,
            datapoints=(1, 1),
            missing=QUIET,
        )

        if results.slack is not None:
            self._slack_alarms(results.slack)

        self.dashboard = self._dashboard(
            intake, results, history, refusals, authorizer_faults, store_faults
        )
        CfnOutput(
            self,
            "OpsTopicArn",
            value=self.topic.topic_arn,
            description="Alarms are published here; subscribe the on-call channel",
        )
        CfnOutput(self, "DashboardName", value=self.dashboard.dashboard_name)

    def _slack_alarms(self, slack: SlackForwarder) -> None:
        """The optional Slack forwarder: its failed invocations, and the alerts it gave up on."""
        # Lambda retries each alert twice: what it gives up on is SlackDeadLetters'.
        self._alarm(
            "SlackErrors",
            slack.function.metric_errors(period=PERIOD),
            "the Slack forwarder could not deliver an alert in an invocation (Slack's rate "
            "limit outlasted it, the webhook failed or refused it) in two of the last three "
            "5-minute periods; Lambda retries it twice, then puts it in the Slack dead-letter "
            "queue",
            datapoints=(2, 3),
            missing=QUIET,
        )
        self._alarm(
            "SlackDeadLetters",
            slack.dead_letter_queue.metric_approximate_number_of_messages_visible(
                period=PERIOD, statistic="Maximum"
            ),
            "alerts never reached Slack after Lambda's retries; each is in the Slack "
            "dead-letter queue with its SNS message (redrive or read them there)",
            datapoints=(1, 1),
            missing=QUIET,
        )

    def _ops_topic(
        self, removal_policy: RemovalPolicy, email_addresses: tuple[str, ...]
    ) -> sns.Topic:
        """KMS-encrypted, TLS-only topic that CloudWatch alarms may publish to."""
        topic = alarm_topic(
            self,
            key_id="OpsKey",
            topic_id="OpsTopic",
            key_description="Encrypts the Entrix operations (alarm) topic",
            display_name="Entrix operations alarms",
            removal_policy=removal_policy,
        )
        for address in email_addresses:
            topic.add_subscription(subscriptions.EmailSubscription(address))
        return topic

    def _alarm(
        self,
        id: str,
        metric: cloudwatch.IMetric,
        what: str,
        *,
        datapoints: tuple[int, int],
        missing: cloudwatch.TreatMissingData,
        threshold: float = 1,
        comparison: cloudwatch.ComparisonOperator = (
            cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD
        ),
    ) -> None:
        """An alarm to the operations topic, in ALARM when `datapoints` (M of the last N
        periods) breach; each caller decides M of N and what missing data means, and says why."""
        breaching, periods = datapoints
        alarm = cloudwatch.Alarm(
            self,
            id,
            metric=metric,
            threshold=threshold,
            evaluation_periods=periods,
            datapoints_to_alarm=breaching,
            comparison_operator=comparison,
            treat_missing_data=missing,
            alarm_description=f"Entrix: {what}.",
        )
        action = actions.SnsAction(self.topic)
        alarm.add_alarm_action(action)
        alarm.add_ok_action(action)
        self.alarms[id] = alarm

    def _log_count(
        self, id: str, log_group: logs.ILogGroup, pattern: logs.IFilterPattern, metric_name: str
    ) -> cloudwatch.Metric:
        """Log events of `log_group` matching `pattern`, counted as a metric of this stack.

        The stack's own namespace: two deployments in one account keep separate counts (a
        metric filter's dimensions can only be fields of the log event, not constants).
        """
        namespace = f"{METRICS_NAMESPACE}/{Stack.of(self).stack_name}"
        logs.MetricFilter(
            self,
            id,
            log_group=log_group,
            filter_pattern=pattern,
            metric_namespace=namespace,
            metric_name=metric_name,
            metric_value="1",
            default_value=0,
        )
        return cloudwatch.Metric(
            namespace=namespace, metric_name=metric_name, statistic="Sum", period=PERIOD
        )

    def _dashboard(
        self,
        intake: Intake,
        results: ResultsPipeline,
        history: HistoryArchive,
        refusals: cloudwatch.IMetric,
        authorizer_faults: cloudwatch.IMetric,
        store_faults: cloudwatch.IMetric,
    ) -> cloudwatch.Dashboard:
        api = intake.api
        machine = results.state_machine
        functions = {
            "authorizer": intake.authorizer_function,
            "ingest": intake.ingest_function,
            "order status": intake.order_status_function,
            "order list": intake.order_list_function,
            "cancel": intake.cancel_function,
            "Lambda A (results)": results.results_function,
            "Lambda B (process)": results.process_function,
            "run summary": results.summary_function,
            "history archiver": history.function,
        }
        if intake.key_rotation is not None:
            functions["key rotation"] = intake.key_rotation.function
        if results.slack is not None:
            functions["Slack forwarder"] = results.slack.function
        dashboard = cloudwatch.Dashboard(self, "Dashboard", default_interval=Duration.hours(3))
        dashboard.add_widgets(
            cloudwatch.AlarmStatusWidget(
                title="Alarms", alarms=every_alarm(Stack.of(self)), width=24, height=6
            )
        )
        dashboard.add_widgets(
            cloudwatch.GraphWidget(
                title="Oldest pending order: age in seconds (OldestPendingOrder alarm)",
                left=[self.oldest_pending],
                left_annotations=[self.alarms["OldestPendingOrder"].to_annotation()],
                width=12,
            ),
            cloudwatch.GraphWidget(
                title="Runs succeeded, failed (not never ready), never ready",
                left=[
                    machine.metric_succeeded(period=PERIOD, statistic="Sum"),
                    self.runs_failed,
                    self.never_ready,
                ],
                width=12,
            ),
        )
        dashboard.add_widgets(
            cloudwatch.GraphWidget(
                title="API requests and errors",
                left=[
                    api.metric_count(period=PERIOD, statistic="Sum"),
                    api.metric_client_error(period=PERIOD, statistic="Sum"),
                    api.metric_server_error(period=PERIOD, statistic="Sum"),
                ],
                width=8,
            ),
            cloudwatch.GraphWidget(
                title="API latency (ms)",
                left=[
                    api.metric_latency(period=PERIOD, statistic="p50"),
                    api.metric_latency(period=PERIOD, statistic="p99"),
                    api.metric_integration_latency(period=PERIOD, statistic="p99"),
                ],
                width=8,
            ),
            cloudwatch.GraphWidget(
                title="Authorizer: refusals and faults",
                left=[refusals, authorizer_faults],
                width=8,
            ),
        )
        dashboard.add_widgets(
            cloudwatch.GraphWidget(
                title="Orders (ingest)",
                left=_emf_metrics(intake.ingest_function, "ingest", INGEST_METRICS),
                width=12,
            ),
            cloudwatch.GraphWidget(
                title="Results (Lambda B)",
                left=_emf_metrics(results.process_function, "process", PROCESS_METRICS),
                width=12,
            ),
        )
        dashboard.add_widgets(
            cloudwatch.GraphWidget(
                title="Lambda errors",
                left=[
                    fn.metric_errors(period=PERIOD, label=name) for name, fn in functions.items()
                ],
                width=8,
            ),
            cloudwatch.GraphWidget(
                title="Lambda throttles",
                left=[
                    fn.metric_throttles(period=PERIOD, label=name) for name, fn in functions.items()
                ],
                width=8,
            ),
            cloudwatch.GraphWidget(
                title="Lambda duration p99 (ms)",
                left=[
                    fn.metric_duration(period=PERIOD, statistic="p99", label=name)
                    for name, fn in functions.items()
                ],
                width=8,
            ),
        )
        dashboard.add_widgets(
            cloudwatch.GraphWidget(
                title="Results runs",
                left=[
                    machine.metric_started(period=PERIOD),
                    machine.metric_succeeded(period=PERIOD),
                    machine.metric_failed(period=PERIOD),
                    machine.metric_timed_out(period=PERIOD),
                    machine.metric_aborted(period=PERIOD),
                ],
                right=[store_faults],
                width=8,
            ),
            cloudwatch.GraphWidget(
                title="Orders table: throttled requests",
                left=[
                    intake.table.metric_throttled_requests_for_operations(
                        # Every operation a function makes on the table or its indexes: ingest's
                        # puts, the reads, claims, records and cancels, the index queries, the
                        # listing's batch reads and Lambda A's batch writes in `random` mode.
                        operations=[
                            dynamodb.Operation.PUT_ITEM,
                            dynamodb.Operation.GET_ITEM,
                            dynamodb.Operation.UPDATE_ITEM,
                            dynamodb.Operation.QUERY,
                            dynamodb.Operation.BATCH_GET_ITEM,
                            dynamodb.Operation.BATCH_WRITE_ITEM,
                        ],
                        period=PERIOD,
                    )
                ],
                width=8,
            ),
            cloudwatch.GraphWidget(
                title="API path: estimated dollars per hour (ApiCost alarm)",
                left=[self.api_cost],
                width=8,
            ),
            cloudwatch.SingleValueWidget(
                title="Schedule dead letters",
                metrics=[
                    results.dead_letter_queue.metric_approximate_number_of_messages_visible(
                        period=PERIOD, statistic="Maximum"
                    )
                ],
                width=8,
            ),
        )
        return dashboard


def every_alarm(stack: Stack) -> list[cloudwatch.Alarm]:
    """Every alarm of `stack` that exists so far: the operations alarms, CodeDeploy's rollback
    alarms and the verification probe's (the stack builds Observability after them)."""
    return [node for node in stack.node.find_all() if isinstance(node, cloudwatch.Alarm)]


def _api_cost_per_hour(intake: Intake) -> cloudwatch.MathExpression:
    """Dollars per hour the API path spends: the request units both tables and the orders
    table's indexes consumed (the results runs' writes to the orders table included: the table
    cannot tell them apart), and the REST API's requests, at list prices."""
    writes: dict[str, cloudwatch.IMetric] = {}
    reads: dict[str, cloudwatch.IMetric] = {}
    indexes = (settings.ORDERS_PENDING_INDEX_NAME.text(), settings.ORDERS_OWNER_INDEX_NAME.text())
    sources: list[tuple[str, dict[str, str]]] = [
        ("orders", {"TableName": intake.table.table_name}),
        ("usage", {"TableName": intake.usage_table.table_name}),
        *(
            (
                f"index{position}",
                {"TableName": intake.table.table_name, "GlobalSecondaryIndexName": index},
            )
            for position, index in enumerate(indexes)
        ),
    ]
    for name, dimensions in sources:
        for units, into in (("Write", writes), ("Read", reads)):
            into[f"{units.lower()}_{name}"] = cloudwatch.Metric(
                namespace="AWS/DynamoDB",
                metric_name=f"Consumed{units}CapacityUnits",
                dimensions_map=dimensions,
                statistic="Sum",
                period=COST_PERIOD,
            )
    requests = intake.api.metric_count(period=COST_PERIOD, statistic="Sum")

    def total(metrics: dict[str, cloudwatch.IMetric]) -> str:
        return " + ".join(f"FILL({name}, 0)" for name in metrics)

    return cloudwatch.MathExpression(
        expression=(
            f"({total(writes)}) * {_decimal(DYNAMODB_DOLLARS_PER_WRITE_UNIT)} + "
            f"({total(reads)}) * {_decimal(DYNAMODB_DOLLARS_PER_READ_UNIT)} + "
            f"FILL(requests, 0) * {_decimal(REST_API_DOLLARS_PER_REQUEST)}"
        ),
        using_metrics={**writes, **reads, "requests": requests},
        label="API path: estimated dollars per hour",
        period=COST_PERIOD,
    )


def _emf_metrics(
    function: lambda_.Function, service: str, names: tuple[str, ...]
) -> list[cloudwatch.IMetric]:
    """The metrics a handler writes as EMF (entrix.telemetry.publish), summed per period."""
    dimensions = {"service": service, telemetry.FUNCTION_DIMENSION: function.function_name}
    return [
        cloudwatch.Metric(
            namespace=telemetry.NAMESPACE,
            metric_name=name,
            dimensions_map=dimensions,
            statistic="Sum",
            period=PERIOD,
        )
        for name in names
    ]
