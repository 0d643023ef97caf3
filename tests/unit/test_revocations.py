"""The deny list: what it refuses, how entries are added and pruned, what it accepts as stored."""

from __future__ import annotations

import pytest

from entrix.revocations import DenyList, DenyListError, parse_deny_list

NOW = 1_800_000_000


def claims(jti: str = "t-1", sub: str = "desk-a", iat: int = NOW) -> dict[str, object]:
    return {"jti": jti, "sub": sub, "iat": iat, "exp": iat + 600}


def test_an_empty_list_refuses_nothing() -> None:
    assert DenyList().refusal(claims()) is None
    assert parse_deny_list("").refusal(claims()) is None
    assert parse_deny_list("{}").refusal(claims()) is None


def test_a_listed_token_id_is_refused_and_only_it() -> None:
    deny = DenyList().with_token("t-1", NOW + 600)

    assert deny.refusal(claims("t-1")) == "token t-1 is revoked"
    assert deny.refusal(claims("t-2")) is None


def test_a_subject_entry_refuses_tokens_issued_up_to_its_time_only() -> None:
    deny = DenyList().with_subject("desk-a", NOW)

    assert deny.refusal(claims(iat=NOW - 3600)) is not None
    assert deny.refusal(claims(iat=NOW)) is not None
    assert deny.refusal(claims(iat=NOW + 1)) is None
    assert deny.refusal(claims(sub="desk-b", iat=NOW - 3600)) is None


def test_revoking_a_subject_again_never_moves_its_time_back() -> None:
    deny = DenyList().with_subject("desk-a", NOW).with_subject("desk-a", NOW - 100)

    assert deny.subjects["desk-a"] == NOW


def test_pruning_keeps_what_a_live_token_could_still_need() -> None:
    deny = (
        DenyList()
        .with_token("expired", NOW - 31)
        .with_token("within-leeway", NOW - 29)
        .with_subject("old", NOW - 3600 - 31)
        .with_subject("recent", NOW - 3600 + 1)
    )

    pruned = deny.pruned(now=NOW, leeway=30, max_lifetime_seconds=3600)

    assert set(pruned.tokens) == {"within-leeway"}
    assert set(pruned.subjects) == {"recent"}


def test_the_text_round_trips() -> None:
    deny = DenyList().with_token("t-1", NOW).with_subject("desk-a", NOW)

    assert parse_deny_list(deny.text()) == deny


@pytest.mark.parametrize(
    "text",
    [
        "not json",
        "[]",
        '{"tokens": []}',
        '{"tokens": {"t": "soon"}}',
        '{"subjects": {"s": true}}',
        '{"subjects": {"s": 1.5}}',
    ],
)
def test_a_malformed_list_is_a_fault_not_an_empty_list(text: str) -> None:
    """Read as empty, a corrupted list would silently bring every revoked token back."""
    with pytest.raises(DenyListError):
        parse_deny_list(text)
