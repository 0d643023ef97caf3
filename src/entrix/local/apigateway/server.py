"""The local API's HTTP/1.1 server: hands each request to an `ApiGateway`.

Oversized bodies are refused with the 413 before they are read (or after `Expect: 100-continue`),
and every HTTP method reaches the gateway, so that an unknown one gets API Gateway's answer.
"""

from __future__ import annotations

import logging
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from entrix.local.apigateway.gateway import MAX_BODY_BYTES, ApiGateway
from entrix.local.apigateway.proxy import NO_BODY_STATUSES, ApiRequest, ApiResponse

logger = logging.getLogger(__name__)

# Oversized bodies up to this size are read and dropped before the 413; larger ones are not read.
_MAX_DRAIN_BYTES = 4 * MAX_BODY_BYTES


class ApiServer:
    """Serves an `ApiGateway` over HTTP/1.1 on a thread per connection."""

    def __init__(self, gateway: ApiGateway, host: str, port: int) -> None:
        handler = type("Handler", (_RequestHandler,), {"gateway": gateway})
        self.httpd = ThreadingHTTPServer((host, port), handler)
        self.httpd.daemon_threads = True
        self._thread = threading.Thread(target=self.httpd.serve_forever, name="api", daemon=True)

    @property
    def port(self) -> int:
        return int(self.httpd.server_address[1])

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self._thread.join()


class _RequestHandler(BaseHTTPRequestHandler):
    gateway: ApiGateway
    protocol_version = "HTTP/1.1"
    server_version = "entrix-local-apigateway"
    # Headers and body go out in two writes; with Nagle on, the body waits for the client's
    # delayed ACK (40 ms on Linux) on every keep-alive request.
    disable_nagle_algorithm = True

    def handle_expect_100(self) -> bool:
        """Refuse an oversized body before the client sends it (curl asks first for big ones)."""
        if self._declared_length() > MAX_BODY_BYTES:
            self.close_connection = True
            self._send(self.gateway.body_too_large())
            return False
        return super().handle_expect_100()

    def _declared_length(self) -> int:
        try:
            return int(self.headers.get("Content-Length") or 0)
        except ValueError:
            return 0

    def _serve(self) -> None:
        length = self._declared_length()
        if length > MAX_BODY_BYTES:
            # Read and drop the body (up to a bound), so a client that sends it all before
            # reading gets the 413 instead of a broken pipe.
            remaining = length if length <= _MAX_DRAIN_BYTES else 0
            while remaining > 0:
                chunk = self.rfile.read(min(remaining, 1 << 20))
                if not chunk:
                    break
                remaining -= len(chunk)
            self.close_connection = True
            self._send(self.gateway.body_too_large())
            return
        body = self.rfile.read(length) if length else b""
        request = ApiRequest(
            method=self.command,
            raw_path=self.path,
            headers=list(self.headers.items()),
            body=body,
            source_ip=self.client_address[0],
            protocol=self.request_version,
        )
        self._send(self.gateway.handle(request))

    def _send(self, response: ApiResponse) -> None:
        self.send_response(response.status)
        for name, value in response.headers:
            if name.lower() not in ("content-length", "connection"):
                self.send_header(name, value)
        # A 204 or 304 has neither a body nor a Content-Length (RFC 9110, 8.6).
        no_body = response.status in NO_BODY_STATUSES
        if not no_body:
            self.send_header("Content-Length", str(len(response.body)))
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD" and not no_body:
            self.wfile.write(response.body)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _serve

    def __getattr__(self, name: str) -> Any:
        """Any other method (TRACE, QUERY, made-up ones) is served like these, so it gets API
        Gateway's 403 where http.server would answer 501: a 5xx for the client's mistake."""
        if name.startswith("do_"):
            return self._serve
        raise AttributeError(name)

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("%s - %s", self.address_string(), format % args)
