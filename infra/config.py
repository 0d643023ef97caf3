"""Deployment settings of the service stack, read from CDK context.

Each field is the context key `entrix:<field>`: set it in cdk.json or on the command line
(`cdk synth -c entrix:waf_enabled=true`); command-line values arrive as strings and are
converted to the field's type here. A field that is a Lambda function's setting takes its
default from entrix.settings, the one home of those defaults, and is checked by its parser.
"""

from __future__ import annotations

import dataclasses
import json
import re
from dataclasses import dataclass
from typing import Any, TypeVar, get_type_hints

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_codedeploy as codedeploy
from aws_cdk import aws_logs as logs
from constructs import Node

from entrix import settings
from entrix.aws.signing_keys import PROPAGATION_MARGIN_SECONDS
from entrix.identity import LEEWAY_SECONDS
from entrix.issuer_keys import check_jwks_url
from entrix.orders.limits import TTL_SECONDS

CONTEXT_PREFIX = "entrix:"
# The results bucket is named <prefix>-<stack name>-<account>-<region>, at most 63 characters:
# a short prefix leaves room for the stack name (see infra/constructs/results_storage.py).
_BUCKET_PREFIX = re.compile(r"[a-z0-9][a-z0-9-]{1,18}[a-z0-9]")
_EMAIL = re.compile(r"[^@\s,]+@[^@\s,]+\.[^@\s,]+")
# A client's rejection subscription endpoint: an SQS queue ARN or an HTTPS URL.
_QUEUE_ARN = re.compile(r"arn:aws[a-z-]*:sqs:[a-z0-9-]+:\d{12}:[A-Za-z0-9_-]{1,80}(\.fifo)?")
_HTTPS_URL = re.compile(r"https://[^\s/?#]+[^\s]*")
_Config = TypeVar("_Config", "ServiceConfig", "DeliveryConfig")
T = TypeVar("T")

# CloudWatch Logs accepts only these retention periods (days).
# The predefined Lambda deployment configurations, as aws_codedeploy.LambdaDeploymentConfig
# names them.
DEPLOYMENT_CONFIGS = tuple(
    name
    for name in dir(codedeploy.LambdaDeploymentConfig)
    if name.startswith(("ALL_AT_ONCE", "CANARY_", "LINEAR_"))
)
_RETENTION = {
    1: logs.RetentionDays.ONE_DAY,
    3: logs.RetentionDays.THREE_DAYS,
    5: logs.RetentionDays.FIVE_DAYS,
    7: logs.RetentionDays.ONE_WEEK,
    14: logs.RetentionDays.TWO_WEEKS,
    30: logs.RetentionDays.ONE_MONTH,
    60: logs.RetentionDays.TWO_MONTHS,
    90: logs.RetentionDays.THREE_MONTHS,
    180: logs.RetentionDays.SIX_MONTHS,
    365: logs.RetentionDays.ONE_YEAR,
}


def _default(setting: settings.Setting[T]) -> T:
    """The default of a function setting, which entrix.settings alone defines."""
    if setting.default is None:
        raise ValueError(f"{setting.name} has no default")
    return setting.default


@dataclass(frozen=True)
class ServiceConfig:
    """Knobs of one deployment of the service stack."""

    region: str = "eu-west-1"
    account: str | None = None
    # Where the authorizer's keys come from: "secret" (HS256 keys generated into Secrets Manager,
    # `entrix token` signs with them) or "jwks" (the RS256/ES256 public keys of the company's
    # identity provider at jwt_jwks_url, an https:// URL; the stack then holds no signing key).
    jwt_key_source: str = _default(settings.JWT_KEY_SOURCE)
    jwt_jwks_url: str | None = None
    # The issuer and audience every token must name, and the longest lifetime (exp - iat) the
    # authorizer accepts.
    jwt_issuer: str = _default(settings.JWT_ISSUER)
    jwt_audience: str = _default(settings.JWT_AUDIENCE)
    max_token_lifetime_seconds: int = _default(settings.MAX_TOKEN_LIFETIME_SECONDS)
    # How long a warm authorizer (or Slack forwarder) keeps a secret before reading it again, and
    # how long a warm authorizer keeps the deny list (a revocation's delay, after the flush).
    secret_cache_ttl_seconds: float = _default(settings.SECRET_CACHE_TTL_SECONDS)
    revocations_cache_ttl_seconds: float = _default(settings.REVOCATIONS_CACHE_TTL_SECONDS)
    # Secrets Manager rotates the JWT signing key this often (1..1000 days); see the check in
    # __post_init__ for the least interval that refuses no valid token.
    signing_key_rotation_days: int = 30
    # API Gateway caches an Allow/Deny per Authorization header this long (max 3600).
    authorizer_cache_ttl_seconds: int = 300
    # Stage-wide throttling: steady requests per second and burst.
    api_rate_limit: float = 50.0
    api_burst_limit: int = 100
    # Each client's (token subject's) share: requests per fixed window, and orders per UTC
    # day, counted in the ClientUsage table (docs/architecture.md, "Each client's share").
    client_rate_limit: int = _default(settings.CLIENT_RATE_LIMIT)
    client_rate_window_seconds: int = _default(settings.CLIENT_RATE_WINDOW_SECONDS)
    client_daily_order_quota: int = _default(settings.CLIENT_DAILY_ORDER_QUOTA)
    # Clients with a share of their own: a JSON object of subject -> {"rate_limit": n,
    # "daily_orders": n} (either may be left out), in cdk.json or as JSON text on the command
    # line.
    client_limits: str = _default(settings.CLIENT_LIMITS)
    # On-demand ceilings of the orders table and of the ClientUsage table, in request units per
    # second: what the API and the results runs may spend at most (docs/architecture.md).
    table_max_write_request_units: int = 10_000
    table_max_read_request_units: int = 10_000
    # The cost alarm: estimated spend of the API path per hour, in US dollars.
    cost_alarm_dollars_per_hour: float = 10.0
    log_retention_days: int = 30
    # Keep the orders table and the signing key when the stack is deleted (off for throwaway
    # dev stacks).
    retain_data: bool = True
    # Attach an AWS WAF web ACL (rate limit, AWS managed rule groups) to the API stage; on in
    # the pipeline's Prod stage, off for Dev and local.
    waf_enabled: bool = False
    # Requests one client IP may send in any 5 minutes before WAF blocks it (WAF minimum: 10).
    waf_rate_limit: int = 1000
    # How CodeDeploy moves each function's `live` alias to a new version (a predefined
    # LambdaDeploymentConfig, by name; infra/constructs/gradual_deploy.py): the API functions
    # take a share of the requests, the pipeline and background functions a share per step.
    api_deployment_config: str = "CANARY_10_PERCENT_5_MINUTES"
    pipeline_deployment_config: str = "LINEAR_10_PERCENT_EVERY_3_MINUTES"
    # Results pipeline. The bucket is named <prefix>-<stack name>-<account>-<region> (bucket
    # names are global).
    results_bucket_prefix: str = "order-results"
    # Accepted results (results/) and rejected ones (rejections/, which a run's digest points
    # to) move to S3 Standard-IA after results_transition_days (S3's minimum: 30) and expire
    # after results_retention_days.
    results_transition_days: int = 30
    results_retention_days: int = 365
    # The simulated auction platform (Lambda A): chance that results are ready at each poll;
    # "orders" answers the orders waiting for a result, "random" makes up random_order_count.
    results_ready_probability: float = _default(settings.RESULTS_READY_PROBABILITY)
    auction_mode: str = _default(settings.AUCTION_MODE)
    random_order_count: int = _default(settings.RANDOM_ORDER_COUNT)
    # Polling: a wait between polls, at most this many polls, and a timeout for the whole run
    # (also how long a run's claim on an order lasts).
    results_poll_seconds: int = 30
    results_max_polls: int = 10
    results_timeout_minutes: int = settings.RUN_TIMEOUT_SECONDS // 60
    # The state machine retries a task's transient errors (the Lambda service's, SNS's, Lambda
    # A's stores) this many times, the first after this interval, doubling each time.
    results_retry_attempts: int = 3
    results_retry_interval_seconds: int = 1
    # Lambda B invocations (batches) in flight per run; a Distributed Map allows up to 10,000,
    # the orders table's write rate is the practical bound (two writes per order).
    results_max_concurrency: int = 10
    # Orders per batch (one Lambda B invocation, one JSON Lines object) and per run (the rest
    # wait for the next run). A batch must stay under 256 KiB of state input (checked in bytes).
    results_batch_max_orders: int = _default(settings.BATCH_MAX_ORDERS)
    results_max_orders_per_run: int = _default(settings.MAX_ORDERS_PER_RUN)
    # History: every change of an order that matters, kept under history/ this many days; the
    # archiver reads the table's stream in batches of up to this many records, waiting up to
    # this many seconds to fill one. Lambda A alerts when a run takes orders this close to their
    # expiry.
    history_retention_days: int = 400
    history_batch_size: int = 1000
    history_batching_window_seconds: int = 30
    expiry_warning_seconds: int = _default(settings.EXPIRY_WARNING_SECONDS)
    # The operations alarms on what clients feel: an order waiting longer than this for a
    # result (runs every 5 minutes take every pending order; well before the expiry warning
    # and the 24 h TTL), and no run succeeding for this long (a multiple of 5 minutes).
    oldest_pending_alarm_minutes: int = 60
    no_successful_run_alarm_minutes: int = 60
    # Secrets Manager ARN of a Slack incoming-webhook URL; set it to forward alerts to Slack.
    slack_webhook_secret_arn: str | None = None
    # E-mail subscribers of the trading team's alert topic (rejected orders, failed batches,
    # results never ready) and of the operations topic (alarms). A JSON list in cdk.json, or
    # comma-separated on the command line; each address confirms its subscription by e-mail.
    alert_email_addresses: tuple[str, ...] = ()
    ops_email_addresses: tuple[str, ...] = ()
    # Clients subscribed to their own rejections on the alert topic: owner -> an SQS queue ARN
    # or an HTTPS endpoint, each subscribed with the filter policy
    # {"owner": [owner], "status": ["rejected"]} (raw delivery). A JSON object in cdk.json or on
    # the command line. The queue's owner grants sns.amazonaws.com sqs:SendMessage from the
    # topic (and the use of its KMS key, if any): see docs/results-pipeline.md.
    client_rejection_subscriptions: tuple[tuple[str, str], ...] = ()

    def __post_init__(self) -> None:
        if self.log_retention_days not in _RETENTION:
            raise ValueError(f"log_retention_days must be one of {sorted(_RETENTION)}")
        if self.jwt_key_source == "jwks":
            if not self.jwt_jwks_url:
                raise ValueError("jwt_key_source jwks needs jwt_jwks_url (the issuer's JWKS URL)")
            try:
                check_jwks_url(self.jwt_jwks_url, allow_loopback_http=False)
            except ValueError as error:
                raise ValueError(f"jwt_jwks_url: {error}") from error
        elif self.jwt_jwks_url is not None:
            raise ValueError("jwt_jwks_url is read only with jwt_key_source jwks")
        if not 0 <= self.authorizer_cache_ttl_seconds <= 3600:
            raise ValueError("authorizer_cache_ttl_seconds must be within 0..3600")
        # Every API request writes the usage table once, a POST up to three times (request,
        # orders, refund): its ceiling must not refuse what the stage lets through.
        if self.table_max_write_request_units < 3 * self.api_burst_limit:
            raise ValueError("table_max_write_request_units must be at least 3 x api_burst_limit")
        if self.table_max_read_request_units < 1:
            raise ValueError("table_max_read_request_units must be at least 1")
        if self.cost_alarm_dollars_per_hour <= 0:
            raise ValueError("cost_alarm_dollars_per_hour must be more than 0")
        if self.waf_rate_limit < 10:
            raise ValueError("waf_rate_limit must be at least 10 (the AWS WAF minimum)")
        for field in ("api_deployment_config", "pipeline_deployment_config"):
            if getattr(self, field) not in DEPLOYMENT_CONFIGS:
                raise ValueError(f"{field} must be one of {', '.join(DEPLOYMENT_CONFIGS)}")
        # What a function would refuse at run time is refused here, by the setting's own rule.
        for field, setting in _FUNCTION_SETTINGS.items():
            try:
                setting.parse(setting.text(getattr(self, field)))
            except ValueError as error:
                raise ValueError(f"{field}: {error}") from error
        self._check_rotation_interval()
        if not 1 <= self.results_max_concurrency <= 1000:
            raise ValueError("results_max_concurrency must be within 1..1000")
        if not 1 <= self.results_batch_max_orders <= 1500:
            raise ValueError("results_batch_max_orders must be within 1..1500")
        if self.results_max_orders_per_run < self.results_batch_max_orders:
            raise ValueError("results_max_orders_per_run must be at least one batch")
        for field in (
            "results_poll_seconds",
            "results_max_polls",
            "results_retry_interval_seconds",
        ):
            if getattr(self, field) < 1:
                raise ValueError(f"{field} must be at least 1")
        self._check_client_alarms()
        if self.history_retention_days < 1:
            raise ValueError("history_retention_days must be at least 1")
        if not 1 <= self.history_batch_size <= 10000:
            raise ValueError("history_batch_size must be within 1..10000")
        if not 0 <= self.history_batching_window_seconds <= 300:
            raise ValueError("history_batching_window_seconds must be within 0..300")
        if self.results_retry_attempts < 0:
            raise ValueError("results_retry_attempts must be at least 0")
        if self.results_timeout_minutes * 60 <= self.results_poll_seconds * self.results_max_polls:
            raise ValueError("results_timeout_minutes must leave time after the last poll")
        if not 30 <= self.results_transition_days < self.results_retention_days:
            raise ValueError(
                "results_transition_days must be at least 30 (S3 Standard-IA's minimum) and "
                "less than results_retention_days"
            )
        if not _BUCKET_PREFIX.fullmatch(self.results_bucket_prefix):
            raise ValueError(
                "results_bucket_prefix must be 3 to 20 lowercase letters, digits or hyphens"
            )
        for address in (*self.alert_email_addresses, *self.ops_email_addresses):
            if not _EMAIL.fullmatch(address):
                raise ValueError(f"{address!r} is not an e-mail address")
        for owner, endpoint in self.client_rejection_subscriptions:
            if not owner:
                raise ValueError("client_rejection_subscriptions: an owner must not be empty")
            if not (_QUEUE_ARN.fullmatch(endpoint) or _HTTPS_URL.fullmatch(endpoint)):
                raise ValueError(
                    f"client_rejection_subscriptions: {endpoint!r} (owner {owner!r}) is neither "
                    "an SQS queue ARN nor an https:// URL"
                )

    def _check_client_alarms(self) -> None:
        """The two alarms on orders not moving must fire before the trading team's expiry alert,
        and CloudWatch evaluates an alarm over at most a day of 5-minute periods."""
        latest = (TTL_SECONDS - self.expiry_warning_seconds) // 60
        if not 15 <= self.oldest_pending_alarm_minutes < latest:
            raise ValueError(
                f"oldest_pending_alarm_minutes must be at least 15 (three runs) and less than "
                f"{latest} (the expiry warning, before the 24 h TTL)"
            )
        minutes = self.no_successful_run_alarm_minutes
        if minutes % 5 or not 15 <= minutes <= 1440:
            raise ValueError(
                "no_successful_run_alarm_minutes must be a multiple of 5 within 15..1440"
            )

    def _check_rotation_interval(self) -> None:
        """A token signed with a key must expire before the key is retired.

        A key K becomes AWSCURRENT at rotation R1; signers use it from R1 + the verifiers' cache
        TTL + 60 s (entrix.aws.signing_keys.PROPAGATION_MARGIN_SECONDS) and keep using it, as
        the previous key, until the same delay after rotation R2; the last token they sign with
        it lives max_token_lifetime_seconds more, plus the leeway the authorizer allows on
        `exp`. Rotation R3 takes AWSPREVIOUS off K, and from then on (once the verifiers' caches
        refresh) K's tokens are refused. So the interval R3 - R2 must be longer than
        max_token_lifetime_seconds + secret_cache_ttl_seconds + 60 + leeway.
        """
        if not 1 <= self.signing_key_rotation_days <= 1000:
            raise ValueError("signing_key_rotation_days must be within 1..1000")
        last_token_expires = (
            self.max_token_lifetime_seconds
            + self.secret_cache_ttl_seconds
            + PROPAGATION_MARGIN_SECONDS
            + LEEWAY_SECONDS
        )
        if self.signing_key_rotation_days * 86400 <= last_token_expires:
            raise ValueError(
                f"signing_key_rotation_days ({self.signing_key_rotation_days}) must be longer "
                f"than max_token_lifetime_seconds + secret_cache_ttl_seconds + "
                f"{PROPAGATION_MARGIN_SECONDS:g} + {LEEWAY_SECONDS} = {last_token_expires:g} s: "
                "a rotation would retire a key whose tokens are still valid"
            )

    @property
    def log_retention(self) -> logs.RetentionDays:
        return _RETENTION[self.log_retention_days]

    @property
    def run_timeout(self) -> Duration:
        """The results state machine's timeout: also how long a run's claim on an order lasts."""
        return Duration.minutes(self.results_timeout_minutes)

    @property
    def data_removal_policy(self) -> RemovalPolicy:
        return RemovalPolicy.RETAIN if self.retain_data else RemovalPolicy.DESTROY

    @classmethod
    def from_context(cls, node: Node) -> ServiceConfig:
        """The defaults, overridden by every `entrix:<field>` context value that is set.

        An `entrix:` key that names no setting is refused, so a misspelt one in cdk.json or on
        the command line cannot silently leave the default in place.
        """
        fields = {CONTEXT_PREFIX + field.name for field in dataclasses.fields(cls)}
        unknown = sorted(
            key
            for key in node.get_all_context()
            if key.startswith(CONTEXT_PREFIX)
            and key not in fields
            and key != STAGES_CONTEXT_KEY
            and not key.startswith(DELIVERY_PREFIX)
        )
        if unknown:
            raise ValueError(f"unknown setting(s) {', '.join(unknown)}: see infra/config.py")
        return _from_context(cls, node, CONTEXT_PREFIX)


# The fields that are a function's setting, checked with its parser.
_FUNCTION_SETTINGS: dict[str, settings.Setting[Any]] = {
    "jwt_key_source": settings.JWT_KEY_SOURCE,
    "jwt_issuer": settings.JWT_ISSUER,
    "jwt_audience": settings.JWT_AUDIENCE,
    "max_token_lifetime_seconds": settings.MAX_TOKEN_LIFETIME_SECONDS,
    "secret_cache_ttl_seconds": settings.SECRET_CACHE_TTL_SECONDS,
    "revocations_cache_ttl_seconds": settings.REVOCATIONS_CACHE_TTL_SECONDS,
    "results_ready_probability": settings.RESULTS_READY_PROBABILITY,
    "auction_mode": settings.AUCTION_MODE,
    "random_order_count": settings.RANDOM_ORDER_COUNT,
    "results_batch_max_orders": settings.BATCH_MAX_ORDERS,
    "results_max_orders_per_run": settings.MAX_ORDERS_PER_RUN,
    "expiry_warning_seconds": settings.EXPIRY_WARNING_SECONDS,
    "client_rate_limit": settings.CLIENT_RATE_LIMIT,
    "client_rate_window_seconds": settings.CLIENT_RATE_WINDOW_SECONDS,
    "client_daily_order_quota": settings.CLIENT_DAILY_ORDER_QUOTA,
    "client_limits": settings.CLIENT_LIMITS,
}

# Per-stage defaults of the delivery pipeline's service stacks: the WAF protects Prod only.
STAGE_DEFAULTS: dict[str, dict[str, Any]] = {
    "Dev": {"waf_enabled": False},
    "Prod": {"waf_enabled": True},
}
STAGES_CONTEXT_KEY = CONTEXT_PREFIX + "stages"


def stage_config(node: Node, stage: str) -> ServiceConfig:
    """The service settings of one pipeline stage: the shared `entrix:<field>` values, then the
    stage's defaults, then its overrides in `entrix:stages` (e.g. {"Prod": {"account": "..."}})."""
    overrides = {
        **STAGE_DEFAULTS.get(stage, {}),
        **(node.try_get_context(STAGES_CONTEXT_KEY) or {}).get(stage, {}),
    }
    hints = get_type_hints(ServiceConfig)
    values = {}
    for name, raw in overrides.items():
        key = f"{STAGES_CONTEXT_KEY}.{stage}.{name}"
        if name not in hints:
            raise ValueError(f"{key}: ServiceConfig has no setting {name!r}")
        values[name] = _convert(raw, hints[name], key)
    return dataclasses.replace(ServiceConfig.from_context(node), **values)


DELIVERY_PREFIX = CONTEXT_PREFIX + "delivery:"


@dataclass(frozen=True)
class DeliveryConfig:
    """Knobs of the delivery pipeline (stack EntrixDelivery); context keys
    `entrix:delivery:<field>`."""

    # The GitHub repository the pipeline builds ("owner/name"; cdk.json names it so a fork
    # changes one line) and the branch it follows.
    repository: str = "entrix-energy/entrix-auction-orders"
    branch: str = "main"
    # The CodeStar connection to GitHub: its ARN, or else the SSM parameter holding it (read at
    # deploy time, so the ARN never has to be in the code or in cdk.json).
    connection_arn: str | None = None
    connection_arn_parameter: str = "/entrix/delivery/github-connection-arn"
    # Where the pipeline itself lives (account None: the account of your credentials).
    account: str | None = None
    region: str = "eu-west-1"
    # A person approves each Prod deployment; off deploys Prod right after Dev.
    prod_approval: bool = True

    def __post_init__(self) -> None:
        owner, _, name = self.repository.partition("/")
        if not owner or not name or "/" in name:
            raise ValueError(f"{DELIVERY_PREFIX}repository must be owner/name on GitHub")

    @classmethod
    def from_context(cls, node: Node) -> DeliveryConfig:
        """The defaults, overridden by every `entrix:delivery:<field>` context value that is set;
        a misspelt delivery key or stage name is refused rather than ignored."""
        fields = {DELIVERY_PREFIX + field.name for field in dataclasses.fields(cls)}
        unknown = sorted(
            key
            for key in node.get_all_context()
            if key.startswith(DELIVERY_PREFIX) and key not in fields
        )
        unknown += sorted(
            f"{STAGES_CONTEXT_KEY}.{stage}"
            for stage in node.try_get_context(STAGES_CONTEXT_KEY) or {}
            if stage not in STAGE_DEFAULTS
        )
        if unknown:
            raise ValueError(f"unknown setting(s) {', '.join(unknown)}: see infra/config.py")
        return _from_context(cls, node, DELIVERY_PREFIX)


def _from_context(cls: type[_Config], node: Node, prefix: str) -> _Config:
    """`cls` from its defaults and the context keys `<prefix><field>` that are set."""
    hints = get_type_hints(cls)
    values = {}
    for field in dataclasses.fields(cls):
        raw = node.try_get_context(prefix + field.name)
        if raw is not None:
            values[field.name] = _convert(raw, hints[field.name], prefix + field.name)
    return cls(**values)


def _convert(raw: Any, hint: Any, key: str) -> Any:
    if hint == tuple[tuple[str, str], ...]:
        # A JSON object {"<owner>": "<endpoint>"} from cdk.json, or its text from the command line.
        try:
            mapping = json.loads(raw) if isinstance(raw, str) else raw
        except json.JSONDecodeError:
            mapping = None
        if not isinstance(mapping, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in mapping.items()
        ):
            raise ValueError(f"{key} must be a JSON object of strings, not {raw!r}")
        return tuple(sorted(mapping.items()))
    if hint == tuple[str, ...]:
        # A JSON list from cdk.json, or "a@x.com,b@y.com" from the command line.
        items = raw.split(",") if isinstance(raw, str) else raw
        if not isinstance(items, list | tuple) or not all(isinstance(i, str) for i in items):
            raise ValueError(f"{key} must be a list of strings, not {raw!r}")
        return tuple(item.strip() for item in items if item.strip())
    if hint is str and isinstance(raw, dict):
        return json.dumps(raw)  # a JSON object in cdk.json (client_limits)
    if not isinstance(raw, str):
        return raw
    if hint is bool:
        if raw.lower() not in {"true", "false"}:
            raise ValueError(f"{key} must be true or false, not {raw!r}")
        return raw.lower() == "true"
    if hint in (int, float):
        return hint(raw)
    return raw
