"""Decide AWS requests the way AWS does, with the policies a template gives them.

The evaluation itself is @cloud-copilot/iam-simulate (npm, pinned in package.json), run through
`simulate.mjs` once per batch, or kept running as a `Simulator` (the local runtime's
enforcement): it implements AWS's documented evaluation logic (explicit Deny wins; in one
account an identity-policy Allow or a resource-policy Allow suffices; a service principal has no
identity policy, so only the resource policy can allow it; a KMS key policy must allow the caller
itself or delegate to IAM through the account principal, and then the identity policy must allow
too; every condition operator against the request's context keys). It also refuses
unknown actions and resource ARNs of the wrong type for the action, so a wrong mapping from an
API call to an IAM action cannot pass silently.

This module only builds the requests and reads the answers.
"""

from __future__ import annotations

import json
import subprocess
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from entrix.local.node import project_node

SIMULATOR = Path(__file__).with_name("simulate.mjs")
ALLOWED = "Allowed"


@dataclass(frozen=True)
class Request:
    """One request as AWS authorizes it: who, what, on which resource, with which context."""

    principal: str  # a role ARN, or a service principal such as cloudwatch.amazonaws.com
    action: str
    resource: str
    account: str
    context: Mapping[str, str | list[str]] = field(default_factory=dict)
    identity_policies: Sequence[Mapping[str, Any]] = ()
    resource_policy: Mapping[str, Any] | None = None

    def describe(self) -> str:
        return f"{self.principal} -> {self.action} on {self.resource}"


@dataclass(frozen=True)
class Decision:
    request: Request
    result: str | None
    errors: Any
    identity: str | None
    resource_policy: str | None
    # Context keys the simulator does not know for the action and so left out of the decision:
    # a key AWS sends must count, so a decision that ignored one is not an answer.
    ignored: Sequence[str] = ()

    @property
    def allowed(self) -> bool:
        return self.result == ALLOWED and not self.errors and not self.ignored

    def explain(self) -> str:
        if self.errors:
            return f"{self.request.describe()}: the simulator refused the request: {self.errors}"
        if self.ignored:
            return (
                f"{self.request.describe()}: the simulator ignored the context keys "
                f"{sorted(self.ignored)}, which it does not know for {self.request.action}"
            )
        return (
            f"{self.request.describe()}: {self.result} (identity policies: {self.identity}, "
            f"resource policy: {self.resource_policy}, context: {dict(self.request.context)})"
        )


def decide(requests: Sequence[Request], simulator: Simulator | None = None) -> list[Decision]:
    """Every request's decision, in order: from `simulator` when given, else from one node
    process for the whole batch."""
    if not requests:
        return []
    batch = [
        {
            "principal": r.principal,
            "action": r.action,
            "resource": r.resource,
            "account": r.account,
            "context": dict(r.context),
            "identityPolicies": list(r.identity_policies),
            "resourcePolicy": r.resource_policy,
        }
        for r in requests
    ]
    answers = simulator.answer(batch) if simulator else _answer_once(batch)
    return [
        Decision(r, a["result"], a["errors"], a["identity"], a["resourcePolicy"], a["ignored"])
        for r, a in zip(requests, answers, strict=True)
    ]


def _answer_once(batch: list[dict[str, Any]]) -> list[dict[str, Any]]:
    completed = subprocess.run(  # noqa: S603 - our own script, input passed as data on stdin
        [project_node(), str(SIMULATOR)],
        input=json.dumps(batch),
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    if completed.returncode != 0:
        raise RuntimeError(f"{SIMULATOR.name} failed: {completed.stderr[-4000:]}")
    answers: list[dict[str, Any]] = json.loads(completed.stdout)
    return answers


class Simulator:
    """One `simulate.mjs --serve` process answering request after request (JSON lines), so a
    decision costs a line each way, not a node start. Started on the first request; callers
    from several threads take turns."""

    def __init__(self) -> None:
        self._process: subprocess.Popen[str] | None = None
        self._lock = threading.Lock()
        self.requests = 0  # how many requests it answered
        self._sent = 0  # the id of the last request sent, echoed in its answer

    def answer(self, batch: list[dict[str, Any]]) -> list[dict[str, Any]]:
        with self._lock:
            process = self._process
            if process is None or process.poll() is not None:
                process = self._process = subprocess.Popen(  # noqa: S603 - our own script
                    [project_node(), str(SIMULATOR), "--serve"],
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    text=True,
                )
            assert process.stdin is not None and process.stdout is not None
            answers = []
            try:
                for request in batch:  # one at a time: neither pipe can fill up while we wait
                    self._sent += 1
                    process.stdin.write(json.dumps({**request, "id": self._sent}) + "\n")
                    process.stdin.flush()
                    line = process.stdout.readline()
                    if not line:
                        raise RuntimeError(f"{SIMULATOR.name} --serve ended ({process.wait()})")
                    answer = json.loads(line)
                    if answer.get("id") != self._sent:
                        raise RuntimeError(f"{SIMULATOR.name} --serve answered out of turn")
                    answers.append(answer)
            except BaseException:
                # Interrupted mid-exchange (by Ctrl-C, say), its answer may
                # still be in the pipe for the next caller to read: the process goes.
                process.kill()
                self._process = None
                raise
            self.requests += len(batch)
            return answers

    def stop(self) -> None:
        with self._lock:
            process, self._process = self._process, None
        if process is not None:
            assert process.stdin is not None
            process.stdin.close()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
