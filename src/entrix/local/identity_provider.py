"""A small identity provider for the local system in jwks mode (and for tests).

It holds EC P-256 key pairs (ES256) made at start and serves their public halves as a JWK set at
`GET http://127.0.0.1:<port>/.well-known/jwks.json`, from one threaded HTTP server, as a real
provider publishes its keys. `rotate()` adds a new key and makes it the one `sign` uses, keeping
the old ones published, as a provider rotating without an outage does.

What a real provider does and this one does not: log anyone in (whoever can read the local
secret signs any subject), serve https://, cache headers, or retire keys.
"""

from __future__ import annotations

import json
import secrets
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from jwt.algorithms import ECAlgorithm

JWKS_PATH = "/.well-known/jwks.json"
ALGORITHM = "ES256"
# The local secret holding the current private key, for `entrix token` (a separate process).
ISSUER_SECRET_NAME = "entrix-local-issuer"  # noqa: S105 - a secret's name
# Fields of that secret's JSON document.
KID_FIELD = "kid"
PRIVATE_KEY_FIELD = "private_key_pem"


class SigningKey:
    """One key pair: its kid, its private key, its public JWK."""

    def __init__(self) -> None:
        self.kid = secrets.token_hex(16)
        self.private_key = ec.generate_private_key(ec.SECP256R1())
        jwk = json.loads(ECAlgorithm.to_jwk(self.private_key.public_key()))
        self.public_jwk: dict[str, Any] = {**jwk, "kid": self.kid, "alg": ALGORITHM, "use": "sig"}

    def private_pem(self) -> str:
        return self.private_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode("ascii")

    def secret_string(self) -> str:
        """The document `entrix token` reads from ISSUER_SECRET_NAME."""
        return json.dumps({KID_FIELD: self.kid, PRIVATE_KEY_FIELD: self.private_pem()})


class LocalIdentityProvider:
    """The JWK set of its keys over http on the loopback interface; `fetches` counts requests."""

    def __init__(self) -> None:
        self.keys = [SigningKey()]
        self.fetches = 0
        self._lock = threading.Lock()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def current(self) -> SigningKey:
        """The key new tokens are signed with: the newest."""
        with self._lock:
            return self.keys[-1]

    @property
    def jwks_url(self) -> str:
        if self._httpd is None:
            raise RuntimeError("the local identity provider is not serving")
        return f"http://127.0.0.1:{self._httpd.server_address[1]}{JWKS_PATH}"

    def jwks(self) -> dict[str, Any]:
        with self._lock:
            return {"keys": [key.public_jwk for key in self.keys]}

    def rotate(self) -> SigningKey:
        """Publish a new key and sign with it from now on; the old ones stay published."""
        key = SigningKey()
        with self._lock:
            self.keys.append(key)
        return key

    def start(self) -> None:
        handler = type("Handler", (_RequestHandler,), {"provider": self})
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, name="identity-provider", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        if self._httpd is None:
            return
        self._httpd.shutdown()
        self._httpd.server_close()
        if self._thread is not None:
            self._thread.join()
        self._httpd, self._thread = None, None

    def served(self) -> bytes:
        with self._lock:
            self.fetches += 1
        return json.dumps(self.jwks()).encode()


class _RequestHandler(BaseHTTPRequestHandler):
    provider: LocalIdentityProvider
    server_version = "entrix-local-identity-provider"
    disable_nagle_algorithm = True

    def do_GET(self) -> None:
        if self.path != JWKS_PATH:
            self._reply(404, b"not found", "text/plain; charset=utf-8")
            return
        self._reply(200, self.provider.served(), "application/json")

    def _reply(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the console shows the provider's URL once, not each fetch."""
