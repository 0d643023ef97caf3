"""What each handler does in its cold request: the embedded AWS it calls, its events, its data.

`embedded_aws()` starts moto's server in this process and creates the synthesized template's
resources in it, as `entrix local` does (`AwsEndpoint` + `Deployer`, and the local Parameters and
Secrets Extension for the functions with its layer), so every sample calls the real table,
secret, bucket and topic names with its function's own environment. The API events
are the ones the local API Gateway emulation builds for the request (an authorizer's REQUEST
event, a proxy event), captured instead of invoked. Each workload makes fresh data for each
sample (new orders to store, claim or look up), so every sample does the same work.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import boto3
import jwt
from boto3.dynamodb.types import TypeSerializer

from entrix import settings
from entrix.local.apigateway import ApiGateway, ApiRequest, RestApi
from entrix.local.deploy import Deployer, Deployment
from entrix.local.endpoint import ACCOUNT_ID, LOCAL_CREDENTIALS, AwsEndpoint, free_port
from entrix.local.identity_provider import ALGORITHM as ISSUER_ALGORITHM
from entrix.local.identity_provider import LocalIdentityProvider
from entrix.local.lambda_runner import FunctionSpec, Invocation, runtime_environment
from entrix.local.runtime import stack_region
from entrix.local.secrets_extension import LocalSecretsExtension
from entrix.local.template import PseudoParameters, Template
from entrix.orders import lifecycle
from entrix.orders.intake import Receipt
from entrix.token_command import AUTHORIZER_HANDLER, sign_for_function
from entrix.tokens import issue_token

STACK = "Entrix"
HANDLER_PREFIX = "entrix.handlers."
OWNER = "bench-trader"  # the token's subject: every order of the workloads is its
TOKEN_SECONDS = 3600
_PROXY_OK = {"statusCode": 200, "body": ""}


def _allow(expires_at: int) -> dict[str, Any]:
    """The capturing invoker's authorizer answer: what ours answers for OWNER's token (an Allow
    and the context the handlers read, `sub` and `exp`)."""
    return {
        "principalId": OWNER,
        "policyDocument": {
            "Version": "2012-10-17",
            "Statement": [{"Action": "execute-api:Invoke", "Effect": "Allow", "Resource": "*"}],
        },
        "context": {"sub": OWNER, "exp": expires_at},
    }


class LocalAws:
    """The deployed template in the embedded endpoint, and what samples need from it."""

    def __init__(
        self,
        endpoint: AwsEndpoint,
        deployment: Deployment,
        identity_provider: LocalIdentityProvider | None = None,
    ) -> None:
        self.endpoint = endpoint
        self.deployment = deployment
        # An issuer whose JWKS the authorizer's jwks-mode samples fetch over loopback.
        self.identity_provider = identity_provider
        self._api = RestApi.from_parts(deployment.api, deployment.api_ids)
        self._token: str | None = None
        self._token_expires_at = 0

    def function(self, handler: str) -> FunctionSpec:
        """The deployed function whose Handler is `handler` (`entrix.handlers.x.handler`)."""
        found = [spec for spec in self.deployment.functions.values() if spec.handler == handler]
        if len(found) != 1:
            raise LookupError(f"{len(found)} functions with handler {handler}")
        return found[0]

    def environment(self, spec: FunctionSpec, overrides: dict[str, str]) -> dict[str, str]:
        """A sample's whole environment: Lambda's variables, the function's, the endpoint's.

        Nothing from this process: no ~/.aws files, credentials that only the endpoint takes.
        """
        variables = runtime_environment(spec)
        if settings.CLIENT_RATE_LIMIT.name in variables:
            # The samples sign as one client but stand for many: each is still charged (the
            # UpdateItem is part of the cold request), never refused.
            variables |= {
                settings.CLIENT_RATE_LIMIT.name: str(10**6),
                settings.CLIENT_DAILY_ORDER_QUOTA.name: str(10**9),
            }
        return {
            **variables,
            **overrides,
            **LOCAL_CREDENTIALS,
            "AWS_ENDPOINT_URL": self.endpoint.url,
            "AWS_CONFIG_FILE": os.devnull,
            "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        }

    def token(self) -> str:
        """A JWT the authorizer accepts, signed as `entrix token` signs it."""
        if self._token is None:
            authorizer = self.function(AUTHORIZER_HANDLER)
            self._token_expires_at = int(time.time()) + TOKEN_SECONDS
            self._token = sign_for_function(
                lambda service, _region: self.endpoint.client(service),
                self.endpoint.region,
                authorizer.function_name,
                OWNER,
                TOKEN_SECONDS,
            )
        return self._token

    def seed_key(self) -> str:
        """The signing secret's current value, the seed authorizer's HS256 key."""
        arn = self.function(AUTHORIZER_HANDLER).environment[settings.JWT_SECRET_ARN.name]
        value = self.endpoint.client("secretsmanager").get_secret_value(SecretId=arn)
        return str(value["SecretString"])

    def api_events(
        self, method: str, path: str, body: bytes = b"", token: str | None = None
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """The authorizer's event and the integration's event for one authorized request
        (`path` with its query string, if any), with `token` (default: `token()`)."""
        invoked: list[tuple[str, dict[str, Any]]] = []
        token = token or self.token()

        def capture(function_name: str, event: Any) -> Invocation:
            invoked.append((function_name, event))
            answer = _allow(self._token_expires_at) if len(invoked) == 1 else _PROXY_OK
            return Invocation(json.dumps(answer), errored=False)

        gateway = ApiGateway(
            self._api,
            capture,
            region=self.endpoint.region,
            account_id=ACCOUNT_ID,
            domain_name=f"{self._api.api_id}.execute-api.{self.endpoint.region}.amazonaws.com",
        )
        headers = [
            ("Host", "api.example.com"),
            ("User-Agent", "entrix-bench"),
            ("Authorization", f"Bearer {token}"),
        ]
        if body:
            headers.append(("Content-Type", "application/json"))
        reply = gateway.handle(ApiRequest(method, path, headers, body))
        authorizer = self.function(AUTHORIZER_HANDLER).function_name
        # API Gateway invokes the functions' aliases (`<function>:live`).
        called = [name.partition(":")[0] for name, _ in invoked]
        if reply.status != 200 or called[:1] != [authorizer]:
            raise RuntimeError(f"{method} {path}: {reply.status} {reply.body!r}, {invoked}")
        return invoked[0][1], invoked[-1][1]

    @property
    def orders_table(self) -> Any:
        name = self.function(HANDLER_PREFIX + "ingest.handler").environment[
            settings.ORDERS_TABLE_NAME.name
        ]
        dynamodb = boto3.resource(
            "dynamodb",
            region_name=self.endpoint.region,
            endpoint_url=self.endpoint.url,
            aws_access_key_id=LOCAL_CREDENTIALS["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=LOCAL_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        )
        return dynamodb.Table(name)

    def empty_orders_table(self) -> None:
        """Delete every item, so a workload's queries see only its own orders."""
        table = self.orders_table
        keys = [
            item["order_key"]
            for page in _scan_pages(table, ProjectionExpression="order_key")
            for item in page["Items"]
        ]
        with table.batch_writer() as batch:
            for key in keys:
                batch.delete_item(Key={"order_key": key})

    def put_pending(self, orders: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Store OWNER's orders as the API stores them (pending, in both indexes); the items."""
        receipt = Receipt.at(time.time())
        nonce = lifecycle.request_nonce()
        items = [
            lifecycle.stored_item(
                order,
                OWNER,
                receipt.received_at,
                receipt.expires_at,
                lifecycle.version(receipt.received_at, nonce, position),
            )
            for position, order in enumerate(orders)
        ]
        with self.orders_table.batch_writer() as batch:
            for item in items:
                batch.put_item(Item=item)
        return items


def _scan_pages(table: Any, **arguments: Any) -> Iterator[dict[str, Any]]:
    while True:
        page = table.scan(**arguments)
        yield page
        if "LastEvaluatedKey" not in page:
            return
        arguments["ExclusiveStartKey"] = page["LastEvaluatedKey"]


@contextlib.contextmanager
def embedded_aws(cdk_out: Path) -> Iterator[LocalAws]:
    """moto's server on a free loopback port holding every resource of the template, and the
    local Parameters and Secrets Extension serving the functions that have it (the samples run
    in other processes and reach both over loopback).

    moto keeps its resources in this process's memory, not in the server: they are reset at the
    end, or a later local system of the same template (the pipeline bench) could not be created.
    """
    template_path = cdk_out / f"{STACK}.template.json"
    region = stack_region(template_path, STACK)
    endpoint = AwsEndpoint("127.0.0.1", free_port(), region)
    endpoint.start()
    extension = LocalSecretsExtension(endpoint.client("secretsmanager"))
    identity_provider = LocalIdentityProvider()
    identity_provider.start()
    try:
        deployment = Deployer(
            Template.load(template_path),
            endpoint.client,
            pseudo=PseudoParameters(region=region, account_id=ACCOUNT_ID, stack_name=STACK),
            asset_dir=cdk_out,
            secrets_extension=extension,
        ).deploy()
        yield LocalAws(endpoint, deployment, identity_provider)
    finally:
        identity_provider.stop()
        extension.stop()
        reset = urllib.request.Request(f"{endpoint.url}/moto-api/reset", method="POST")
        try:
            with urllib.request.urlopen(reset, timeout=30) as reply:
                reply.read()
        finally:
            endpoint.stop()


def orders(tag: str, count: int) -> list[dict[str, Any]]:
    """`count` valid orders (as validated: numbers as Decimal) with record ids unique to `tag`."""
    return [
        {
            "record_id": f"{tag}-{number:02d}",
            "parameter_1": "buy" if number % 2 else "sell",
            "parameter_2": Decimal(f"{10 + number}.25"),
        }
        for number in range(count)
    ]


def _order_json(order: dict[str, Any]) -> dict[str, Any]:
    return {
        name: float(value) if isinstance(value, Decimal) else value for name, value in order.items()
    }


class Workload:
    """One handler's realistic calls: `events(aws, calls, tag)` gives a sample's events (the
    first is the cold request's), `check(reply)` says what is wrong with a reply (or None).

    A variant of a handler's workload (`variant`, e.g. another key source) runs the same
    function with more `environment` and the packages `layer_packages` names added as its
    layer would hold them; its baseline gets `seed_events`, the seed's own kind of request."""

    handler = ""
    variant = ""
    description = ""
    environment: dict[str, str] = {}  # noqa: RUF012 - read-only class defaults
    # Names (or globs) in the interpreter's site-packages, linked as one more layer.
    layer_packages: tuple[str, ...] = ()

    @property
    def name(self) -> str:
        return f"{self.handler}-{self.variant}" if self.variant else self.handler

    def setup(self, aws: LocalAws) -> None:
        """Before the handler's samples."""

    def events(self, aws: LocalAws, calls: int, tag: str) -> list[dict[str, Any]]:
        raise NotImplementedError

    def seed_events(self, aws: LocalAws, calls: int, tag: str) -> list[dict[str, Any]]:
        return self.events(aws, calls, tag)

    def check(self, reply: Any) -> str | None:
        raise NotImplementedError


class Authorizer(Workload):
    handler = "authorizer"
    description = "REQUEST event with a valid JWT"

    def events(self, aws: LocalAws, calls: int, tag: str) -> list[dict[str, Any]]:
        return [aws.api_events("GET", f"/orders/{tag}-{call}")[0] for call in range(calls)]

    def seed_events(self, aws: LocalAws, calls: int, tag: str) -> list[dict[str, Any]]:
        """The same requests with a token the seed accepts: HS256 with the secret's key, `sub`
        and `exp` only (the seed's PyJWT call names no audience, so it refuses any `aud`)."""
        token = jwt.encode({"sub": OWNER, "exp": int(time.time()) + TOKEN_SECONDS}, aws.seed_key())
        return [
            aws.api_events("GET", f"/orders/{tag}-{call}", token=token)[0] for call in range(calls)
        ]

    def check(self, reply: Any) -> str | None:
        effects = [
            s.get("Effect") for s in (reply or {}).get("policyDocument", {}).get("Statement", [])
        ]
        return None if effects == ["Allow"] else f"no Allow policy: {reply}"


class JwksAuthorizer(Authorizer):
    """The authorizer in jwks mode: an ES256 token of a local issuer, whose JWK set the first
    invocation fetches over loopback http (as a cold authorizer fetches its IdP's), against the
    same seed baseline with its HS256 requests (`Authorizer.seed_events`). The layer adds
    cryptography and cffi, as the jwks-mode PyJwtLayer holds them (infra/stacks/service.py)."""

    variant = "jwks"
    description = "REQUEST event with an ES256 JWT; the issuer's JWKS fetched over loopback"
    layer_packages = ("cryptography", "cffi", "pycparser", "_cffi_backend*")

    def setup(self, aws: LocalAws) -> None:
        issuer = aws.identity_provider
        if issuer is None:
            raise RuntimeError("the jwks workload needs the embedded identity provider")
        variables = aws.function(AUTHORIZER_HANDLER).environment
        self.environment = {
            settings.JWT_KEY_SOURCE.name: "jwks",
            settings.JWT_JWKS_URL.name: issuer.jwks_url,
            settings.JWT_JWKS_ALLOW_LOOPBACK_HTTP.name: "true",
        }
        self._token = issue_token(
            issuer.current.private_pem(),
            kid=issuer.current.kid,
            subject=OWNER,
            expires_in=TOKEN_SECONDS,
            issuer=variables.get(settings.JWT_ISSUER.name) or settings.JWT_ISSUER.text(),
            audience=variables.get(settings.JWT_AUDIENCE.name) or settings.JWT_AUDIENCE.text(),
            algorithm=ISSUER_ALGORITHM,
        )

    def events(self, aws: LocalAws, calls: int, tag: str) -> list[dict[str, Any]]:
        return [
            aws.api_events("GET", f"/orders/{tag}-{call}", token=self._token)[0]
            for call in range(calls)
        ]


class Ingest(Workload):
    handler = "ingest"
    description = "POST /orders of 10 orders"
    per_request = 10

    def events(self, aws: LocalAws, calls: int, tag: str) -> list[dict[str, Any]]:
        return [
            aws.api_events(
                "POST",
                "/orders",
                json.dumps(
                    [_order_json(o) for o in orders(f"{tag}-{call}", self.per_request)]
                ).encode(),
            )[1]
            for call in range(calls)
        ]

    def check(self, reply: Any) -> str | None:
        return _status(reply, 201)


class OrderStatus(Workload):
    handler = "order_status"
    description = "GET /orders/{record_id} of a stored order"

    def events(self, aws: LocalAws, calls: int, tag: str) -> list[dict[str, Any]]:
        stored = orders(tag, 1)
        aws.put_pending(stored)
        path = f"/orders/{stored[0]['record_id']}"
        return [aws.api_events("GET", path)[1] for _ in range(calls)]

    def check(self, reply: Any) -> str | None:
        return _status(reply, 200)


class OrderList(Workload):
    """GET /orders: a page of the caller's newest orders, among more than a page."""

    handler = "order_list"
    stored, limit = 30, 10
    description = f"GET /orders?limit={limit} of {stored} stored orders"

    def setup(self, aws: LocalAws) -> None:
        aws.empty_orders_table()
        aws.put_pending(orders("listed", self.stored))

    def events(self, aws: LocalAws, calls: int, tag: str) -> list[dict[str, Any]]:
        return [aws.api_events("GET", f"/orders?limit={self.limit}")[1] for _ in range(calls)]

    def check(self, reply: Any) -> str | None:
        problem = _status(reply, 200)
        if problem:
            return problem
        page = json.loads(reply.get("body") or "{}")
        listed = len(page.get("orders", []))
        if listed != self.limit or not page.get("next_cursor"):
            return f"expected {self.limit} orders and a next_cursor: {page}"
        return None


class Cancel(Workload):
    """DELETE /orders/{record_id} of a pending order, a fresh one for each call."""

    handler = "cancel"
    description = "DELETE /orders/{record_id} of a pending order"

    def events(self, aws: LocalAws, calls: int, tag: str) -> list[dict[str, Any]]:
        stored = orders(tag, calls)
        aws.put_pending(stored)
        return [aws.api_events("DELETE", f"/orders/{order['record_id']}")[1] for order in stored]

    def check(self, reply: Any) -> str | None:
        return _status(reply, 204)


class Results(Workload):
    """Lambda A in orders mode, ready at once, with the same few orders pending every time."""

    handler = "results"
    pending = 5
    description = f"Lambda A, ready probability 1, {pending} pending orders"
    environment = {settings.RESULTS_READY_PROBABILITY.name: "1"}  # noqa: RUF012

    def setup(self, aws: LocalAws) -> None:
        aws.empty_orders_table()
        aws.put_pending(orders("pending", self.pending))

    def events(self, aws: LocalAws, calls: int, tag: str) -> list[dict[str, Any]]:
        return [{"run_id": f"{tag}-{call}"} for call in range(calls)]

    def check(self, reply: Any) -> str | None:
        if isinstance(reply, dict) and reply.get("order_count") == self.pending:
            return None
        return f"expected a run of {self.pending} orders: {reply}"


class Process(Workload):
    """Lambda B on one batch of fresh pending orders: some accepted, the others rejected, each
    result in the batch item's shape (`entrix.auction.batch_item`), as Lambda A writes it."""

    handler = "process"
    accepted, rejected = 3, 2
    description = f"Lambda B, a batch of {accepted} accepted + {rejected} rejected orders"

    def setup(self, aws: LocalAws) -> None:
        aws.empty_orders_table()

    def events(self, aws: LocalAws, calls: int, tag: str) -> list[dict[str, Any]]:
        run_date = datetime.now(UTC).strftime("%Y-%m-%d")
        batches = []
        for call in range(calls):
            run_id = f"{tag}-{call}"
            items = aws.put_pending(orders(run_id, self.accepted + self.rejected))
            batches.append(
                {
                    "run_id": run_id,
                    "results_key": f"results/date={run_date}/run={run_id}/batch-00001.jsonl",
                    "orders": [
                        {
                            "order_key": item["order_key"],
                            "version": item["version"],
                            "status": "accepted" if number < self.accepted else "rejected",
                            "power": 10 + number,
                        }
                        for number, item in enumerate(items)
                    ],
                }
            )
        return batches

    def check(self, reply: Any) -> str | None:
        wanted = {"accepted": self.accepted, "rejected": self.rejected, "failed": 0}
        got = {name: (reply or {}).get(name) for name in wanted}
        return None if got == wanted else f"expected {wanted}: {reply}"


class RunSummary(Workload):
    handler = "run_summary"
    description = "the counts of 2 batches"

    def events(self, aws: LocalAws, calls: int, tag: str) -> list[dict[str, Any]]:
        batch = {"accepted": 3, "rejected": 2, "skipped": 0, "failed": 0}
        return [{"orders": 10, "batches": [batch, batch]} for _ in range(calls)]

    def check(self, reply: Any) -> str | None:
        return None if (reply or {}).get("accepted") == 6 else f"expected 6 accepted: {reply}"


class Archive(Workload):
    """The history archiver on a stream batch of freshly received orders, as DynamoDB Streams
    hands it over (NEW_AND_OLD_IMAGES; an INSERT has no old image)."""

    handler = "archive"
    received = 5
    description = f"the history archiver, a stream batch of {received} received orders"

    def events(self, aws: LocalAws, calls: int, tag: str) -> list[dict[str, Any]]:
        serializer = TypeSerializer()
        region = aws.endpoint.region
        stream_arn = f"arn:aws:dynamodb:{region}:{ACCOUNT_ID}:table/orders/stream/{tag}"
        batches = []
        for call in range(calls):
            receipt = Receipt.at(time.time())
            records = []
            for number, order in enumerate(orders(f"{tag}-{call}", self.received)):
                item = lifecycle.stored_item(
                    order,
                    "desk-a",
                    receipt.received_at,
                    receipt.expires_at,
                    lifecycle.version(receipt.received_at, lifecycle.request_nonce(), number),
                )
                records.append(
                    {
                        "eventID": f"{tag}-{call}-{number}",
                        "eventName": "INSERT",
                        "eventSource": "aws:dynamodb",
                        "eventSourceARN": stream_arn,
                        "dynamodb": {
                            "ApproximateCreationDateTime": int(time.time()),
                            "Keys": {"order_key": {"S": item["order_key"]}},
                            "NewImage": {k: serializer.serialize(v) for k, v in item.items()},
                            "SequenceNumber": f"{call * 1_000 + number:021d}",
                            "StreamViewType": "NEW_AND_OLD_IMAGES",
                        },
                    }
                )
            batches.append({"Records": records})
        return batches

    def check(self, reply: Any) -> str | None:
        return None if reply == {"batchItemFailures": []} else f"expected no failures: {reply}"


def _status(reply: Any, status: int) -> str | None:
    got = reply.get("statusCode") if isinstance(reply, dict) else None
    return None if got == status else f"expected HTTP {status}: {reply}"


# Functions no caller waits on, so no cold request to measure: the reason is printed instead.
OFF_THE_REQUEST_PATH: dict[str, str] = {
    "rotate_key": "Secrets Manager calls it once a rotation (every 30 days); no request waits",
}

# Further workloads of a handler, each with rows of its own (`--only`/`--explain` by its name).
VARIANTS: dict[str, tuple[Workload, ...]] = {"authorizer": (JwksAuthorizer(),)}


def workloads_of(handler: str) -> list[Workload]:
    """The handler's workload (if any) and its variants."""
    found = [WORKLOADS[handler]] if handler in WORKLOADS else []
    return found + list(VARIANTS.get(handler, ()))


WORKLOADS: dict[str, Workload] = {
    workload.handler: workload
    for workload in (
        Authorizer(),
        Ingest(),
        OrderStatus(),
        OrderList(),
        Cancel(),
        Results(),
        Process(),
        RunSummary(),
        Archive(),
    )
}
