"""A DynamoDB endpoint that fails at the HTTP layer, below botocore's retries.

The faults of tests/support/inject.py replace a whole call above botocore's retry handler; this
server is what botocore itself talks to, so its retries, backoff sleeps and timeouts all happen
for real and every attempt reaches the server, which counts them.
"""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Iterator, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Literal

Fault = Literal["throttle", "hang"]

THROTTLING = {
    "__type": "com.amazonaws.dynamodb.v20120810#ThrottlingException",
    "message": "Rate of requests exceeds the allowed throughput.",
}


class FaultyDynamoDB(ThreadingHTTPServer):
    """Answers requests with `fault`: "throttle" is DynamoDB's HTTP 400 ThrottlingException,
    "hang" reads the request and never answers (until the server stops). With `accept_every`,
    every such request (the n-th, 2n-th, ...) is a PutItem (the intake's write of one order)
    that succeeds instead, as for a new order. Requests to `healthy_table` succeed (an empty
    reply) and are counted apart, in `healthy_requests`: the fault is the other table's."""

    daemon_threads = True

    def __init__(self, fault: Fault, accept_every: int = 0, healthy_table: str = "") -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.fault = fault
        self.accept_every = accept_every
        self.healthy_table = healthy_table
        self.healthy_requests = 0
        self.requests = 0
        self.targets: set[str] = set()
        self.accepted: list[str] = []  # record_ids of the PutItems that succeeded
        self.stopping = threading.Event()
        self._lock = threading.Lock()

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host!s}:{port}"

    def received(self, target: str, body: bytes) -> bool:
        """Count one request; whether it is to succeed (and its orders are then accepted)."""
        with self._lock:
            if json.loads(body).get("TableName") == self.healthy_table:
                self.healthy_requests += 1
                return True
            self.requests += 1
            self.targets.add(target)
            if not self.accept_every or self.requests % self.accept_every:
                return False
            self.accepted.append(json.loads(body)["Item"]["record_id"]["S"])
            return True


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: FaultyDynamoDB

    def do_POST(self) -> None:
        request = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        if self.server.received(self.headers.get("X-Amz-Target", ""), request):
            self._reply(200, {})
        elif self.server.fault == "hang":
            self.server.stopping.wait()
            self.close_connection = True
        else:
            self._reply(400, THROTTLING)

    def _reply(self, status: int, document: Mapping[str, object]) -> None:
        body = json.dumps(document).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/x-amz-json-1.0")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        """Quiet: botocore's retries would fill the test output."""


@contextlib.contextmanager
def faulty_dynamodb(
    fault: Fault, accept_every: int = 0, healthy_table: str = ""
) -> Iterator[FaultyDynamoDB]:
    """The server on a free port of 127.0.0.1, serving from a thread until the block ends."""
    server = FaultyDynamoDB(fault, accept_every, healthy_table)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.stopping.set()
        server.shutdown()
        server.server_close()
        thread.join()
