"""`entrix revoke` against a deny list that other writers change under it (Secrets Manager has
no conditional write), and what it tells the operator."""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

import jwt
import pytest

from entrix import revoke_command, settings
from entrix.revocations import DenyList, parse_deny_list

ARN = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:deny-AbCdEf"


class DenyListSecret:
    """GetSecretValue and PutSecretValue of one secret; `after_put` runs after each put, as
    another writer would."""

    def __init__(self) -> None:
        self.value = DenyList().text()
        self.puts = 0
        self.after_put: Any = None

    def get_secret_value(self, SecretId: str) -> dict[str, str]:
        return {"SecretString": self.value}

    def put_secret_value(self, SecretId: str, SecretString: str) -> None:
        self.value = SecretString
        self.puts += 1
        if self.after_put is not None:
            hook, self.after_put = self.after_put, None
            hook(self)


@pytest.fixture
def secret(monkeypatch: pytest.MonkeyPatch) -> DenyListSecret:
    store = DenyListSecret()
    variables = {
        settings.JWT_REVOCATIONS_SECRET_ARN.name: ARN,
        settings.REVOCATIONS_CACHE_TTL_SECONDS.name: "30",
    }
    monkeypatch.setattr(
        revoke_command, "find_authorizer", lambda args: (lambda s, r: store, "eu-west-1", "fn")
    )
    monkeypatch.setattr(revoke_command, "authorizer_variables", lambda *a: variables)
    monkeypatch.setattr(revoke_command, "_flush_authorizer_cache", lambda *a: ["api/prod"])
    monkeypatch.setattr(revoke_command.time, "sleep", lambda seconds: None)
    return store


def args(**chosen: str) -> argparse.Namespace:
    return argparse.Namespace(
        **{"stack": None, "token": None, "jti": None, "subject": None, **chosen}
    )


def test_an_entry_another_writer_overwrote_is_written_again(
    secret: DenyListSecret, capsys: pytest.CaptureFixture[str]
) -> None:
    """B read the list before A's write and wrote its stale copy after A checked its write: A's
    check after the wait finds its entry gone and writes it again."""
    stale = DenyList().with_subject("desk-b", int(time.time()))

    def other_writer(store: DenyListSecret) -> None:
        store.value = stale.text()  # B's write, from a read older than A's

    original = revoke_command.write_revocation

    def write_then_lose(*arguments: Any) -> int:
        entries = original(*arguments)
        secret.after_put = None
        other_writer(secret)
        return entries

    calls = iter([write_then_lose, original])
    revoke_command_write = revoke_command.write_revocation
    try:
        revoke_command.write_revocation = lambda *a: next(calls)(*a)  # type: ignore[assignment]
        assert revoke_command.revoke(args(subject="desk-a")) == 0
    finally:
        revoke_command.write_revocation = revoke_command_write  # type: ignore[assignment]

    stored = parse_deny_list(secret.value)
    assert set(stored.subjects) == {"desk-a", "desk-b"}
    assert "writing it again" in capsys.readouterr().err


def test_a_write_that_lost_the_race_to_another_is_merged_again(secret: DenyListSecret) -> None:
    """Another writer's put lands between this writer's read and its check: merged again."""
    secret.after_put = lambda store: setattr(
        store, "value", DenyList().with_subject("desk-b", int(time.time())).text()
    )

    entries = revoke_command.write_revocation(
        secret, ARN, {"subject": "desk-a", "issued_until": int(time.time())}, time.time(), 3600
    )

    assert set(parse_deny_list(secret.value).subjects) == {"desk-a", "desk-b"}
    assert entries == 2
    assert secret.puts == 2


def test_revoking_an_expired_token_says_there_is_nothing_to_do(
    secret: DenyListSecret, capsys: pytest.CaptureFixture[str]
) -> None:
    now = int(time.time())
    expired = jwt.encode({"jti": "t-1", "exp": now - 3600, "sub": "s"}, "k" * 32, "HS256")

    assert revoke_command.revoke(args(token=expired)) == 1

    assert "nothing to revoke" in capsys.readouterr().err
    assert secret.puts == 0


def test_the_report_names_the_entry_and_the_flush(
    secret: DenyListSecret, capsys: pytest.CaptureFixture[str]
) -> None:
    now = int(time.time())
    token = jwt.encode({"jti": "t-9", "exp": now + 600, "sub": "s"}, "k" * 32, "HS256")

    assert revoke_command.revoke(args(token=token)) == 0

    report = json.loads(capsys.readouterr().out)
    assert report == {
        "revoked": {"jti": "t-9", "keep_until": now + 600},
        "deny_list_entries": 1,
        "authorizer_caches_flushed": ["api/prod"],
    }


def test_a_subject_no_token_can_have_is_refused_before_any_write(
    secret: DenyListSecret, capsys: pytest.CaptureFixture[str]
) -> None:
    assert revoke_command.revoke(args(subject="desk#a")) == 1

    assert "can be no token's subject" in capsys.readouterr().err
    assert secret.puts == 0
