"""The AWS Parameters and Secrets Lambda Extension, served locally for the functions that have it.

In Lambda the extension is a layer AWS publishes: a process next to the function answering
`GET http://localhost:$PARAMETERS_SECRETS_EXTENSION_HTTP_PORT/secretsmanager/get?secretId=...`
with the GetSecretValue response as JSON, fetched with the function's role, for requests whose
`X-Aws-Parameters-Secrets-Token` header is the function's AWS_SESSION_TOKEN. Its layer holds no
code the local runtime could run, so the deployment recognises the layer by its ARN
(`is_extension_layer`) and registers the function here instead:

- one threaded HTTP server on a free port of 127.0.0.1, started with the first registration,
  reads the secrets from the embedded endpoint's Secrets Manager;
- each registered function gets the server's port as PARAMETERS_SECRETS_EXTENSION_HTTP_PORT and
  a token of its own as AWS_SESSION_TOKEN; the token says on whose behalf a request comes, and
  the GetSecretValue call is made as that function's, so the permission model's log
  (`call_log`) holds it as the function's call, as the extension calls with the function's role;
- answers: 200 and the response; 401 for a missing or wrong token; 400 without `secretId`;
  404 for an unknown secret or another path; other Secrets Manager errors with their status.

Not emulated: the Parameter Store half (`/systemsmanager/parameters/get`; no function reads
parameters) and the extension's own cache (every request reads the secret; the deployed
authorizer turns that cache off and keeps the key in its own).
"""

from __future__ import annotations

import base64
import hmac
import json
import re
import secrets
import threading
from collections import Counter
from collections.abc import Callable
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from botocore.exceptions import BotoCoreError, ClientError

from entrix.aws.secrets import EXTENSION_PORT_VARIABLE, EXTENSION_TOKEN_HEADER
from entrix.local import call_log

# The layer AWS publishes in each region (from its own account there), for x86_64 and arm64.
_EXTENSION_LAYER = re.compile(
    r"^arn:aws[a-z-]*:lambda:[a-z0-9-]+:\d{12}:layer:"
    r"AWS-Parameters-and-Secrets-Lambda-Extension(-Arm64)?:\d+$"
)
SESSION_TOKEN_VARIABLE = "AWS_SESSION_TOKEN"  # noqa: S105 - a variable's name
SECRETS_PATH = "/secretsmanager/get"

# (function name, secret id, HTTP status) of each request answered.
RequestListener = Callable[[str, str, int], None]


def is_extension_layer(layer: object) -> bool:
    """Whether a function's `Layers` entry is the Parameters and Secrets Extension's layer."""
    return isinstance(layer, str) and _EXTENSION_LAYER.match(layer) is not None


class LocalSecretsExtension:
    """The extension's HTTP API for every registered function, from one Secrets Manager client.

    `served` counts the answers by (function name, status); `on_request` hears of each one.
    """

    def __init__(self, secretsmanager: Any, *, on_request: RequestListener | None = None) -> None:
        self.secretsmanager = secretsmanager
        self.on_request = on_request
        self.served: Counter[tuple[str, int]] = Counter()
        self._functions_by_token: dict[str, str] = {}
        self._lock = threading.Lock()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        if self._httpd is None:
            raise RuntimeError("the local secrets extension is not serving")
        return int(self._httpd.server_address[1])

    @property
    def functions(self) -> list[str]:
        """The registered functions, in the order they were registered."""
        with self._lock:
            return list(self._functions_by_token.values())

    def register(self, function_name: str) -> dict[str, str]:
        """Serve `function_name` (starting the server if needed); the variables it must get."""
        if self._httpd is None:
            self._start()
        token = secrets.token_urlsafe(32)
        with self._lock:
            self._functions_by_token[token] = function_name
        return {EXTENSION_PORT_VARIABLE: str(self.port), SESSION_TOKEN_VARIABLE: token}

    def stop(self) -> None:
        """Stop serving and free the port (nothing to do if no function was registered)."""
        if self._httpd is None:
            return
        self._httpd.shutdown()
        self._httpd.server_close()
        if self._thread is not None:
            self._thread.join()
        self._httpd, self._thread = None, None

    def _start(self) -> None:
        handler = type("Handler", (_RequestHandler,), {"extension": self})
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, name="secrets-extension", daemon=True
        )
        self._thread.start()

    def function_of(self, token: str | None) -> str | None:
        """The function whose token this is (compared in constant time), or None."""
        if not token:
            return None
        with self._lock:
            known = list(self._functions_by_token.items())
        for candidate, function_name in known:
            if hmac.compare_digest(candidate.encode(), token.encode()):
                return function_name
        return None

    def answer(self, function_name: str, query: dict[str, list[str]]) -> tuple[int, bytes]:
        """The status and body for a GET /secretsmanager/get of `function_name`."""
        secret_id = (query.get("secretId") or [""])[0]
        if not secret_id:
            return 400, b"secretId is required"
        arguments = {"SecretId": secret_id}
        for parameter, argument in (("versionId", "VersionId"), ("versionStage", "VersionStage")):
            if query.get(parameter):
                arguments[argument] = query[parameter][0]
        try:
            with call_log.running(function_name):
                response = self.secretsmanager.get_secret_value(**arguments)
        except ClientError as error:
            code = error.response.get("Error", {}).get("Code", "")
            status = 404 if code == "ResourceNotFoundException" else _status_of(error)
            return status, f"{code}: {error}".encode()
        except BotoCoreError as error:
            return 502, f"Secrets Manager did not answer: {error}".encode()
        return 200, json.dumps(_wire_form(response)).encode()

    def record(self, function_name: str, secret_id: str, status: int) -> None:
        with self._lock:
            self.served[(function_name, status)] += 1
        if self.on_request is not None:
            self.on_request(function_name, secret_id, status)


def _status_of(error: ClientError) -> int:
    status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    return int(status) if isinstance(status, int) and status >= 400 else 500


def _wire_form(response: dict[str, Any]) -> dict[str, Any]:
    """The GetSecretValue response as the service sends it (and the extension passes it on):
    dates as epoch seconds, binary secrets in base64, without boto3's ResponseMetadata."""
    document: dict[str, Any] = {}
    for key, value in response.items():
        if key == "ResponseMetadata":
            continue
        if isinstance(value, datetime):
            value = value.timestamp()
        elif isinstance(value, bytes):
            value = base64.b64encode(value).decode("ascii")
        document[key] = value
    return document


class _RequestHandler(BaseHTTPRequestHandler):
    extension: LocalSecretsExtension
    server_version = "entrix-local-secrets-extension"
    # Headers and body go out in two writes: with Nagle on, the body could wait for the client's
    # delayed ACK.
    disable_nagle_algorithm = True

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        query = parse_qs(url.query)
        secret_id = (query.get("secretId") or [""])[0]
        function_name = self.extension.function_of(self.headers.get(EXTENSION_TOKEN_HEADER))
        if function_name is None:
            self._reply(401, f"missing or wrong {EXTENSION_TOKEN_HEADER} header".encode())
            return
        if url.path != SECRETS_PATH:
            status, body = 404, f"{url.path} is not served locally (only {SECRETS_PATH})".encode()
        else:
            status, body = self.extension.answer(function_name, query)
        # Counted before the reply, so a caller that has its answer also finds it counted.
        self.extension.record(function_name, secret_id, status)
        self._reply(status, body)

    def _reply(self, status: int, body: bytes) -> None:
        self.send_response(status)
        content_type = "application/json" if status == 200 else "text/plain; charset=utf-8"
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: requests are counted (`served`) and reported through `on_request`."""
