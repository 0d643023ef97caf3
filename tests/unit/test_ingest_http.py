"""The proxy helpers the handlers share: exact JSON numbers, headers, content type, body bytes."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from entrix.http import BadRequestBody, body_bytes, header, is_json_content, response, to_json


def test_to_json_writes_decimals_exactly_and_everything_else_as_json() -> None:
    value = {
        "n": Decimal("0.1000000000000000000000000000000000001"),
        "tiny": Decimal("-1E-130"),
        "int": 1_764_086_400,
        "list": [Decimal("2.10"), None, True, 'é"\n'],
        "nested": {"k": ("a", Decimal("1E+2"))},
    }
    text = to_json(value)
    assert '"n":0.1000000000000000000000000000000000001' in text
    assert json.loads(text, parse_float=Decimal) == {
        "n": Decimal("0.1000000000000000000000000000000000001"),
        "tiny": Decimal("-1E-130"),
        "int": 1_764_086_400,
        "list": [Decimal("2.1"), None, True, 'é"\n'],
        "nested": {"k": ["a", 100]},
    }


def test_to_json_refuses_non_finite_floats() -> None:
    with pytest.raises(ValueError, match="not JSON compliant"):
        to_json(float("nan"))


def test_response_is_a_proxy_reply_with_a_json_body() -> None:
    assert response(404, {"message": "no"}) == {
        "statusCode": 404,
        "headers": {"Content-Type": "application/json"},
        "body": '{"message":"no"}',
    }


def test_headers_are_found_case_insensitively_in_either_map() -> None:
    assert header({"headers": {"CONTENT-type": "a"}}, "Content-Type") == "a"
    assert (
        header({"headers": None, "multiValueHeaders": {"content-type": ["b", "c"]}}, "content-type")
        == "b"
    )
    assert header({}, "Content-Type") is None


@pytest.mark.parametrize(
    ("content_type", "accepted"),
    [
        ("application/json", True),
        (" APPLICATION/JSON ; Charset=UTF-8", True),
        ('application/json; charset="utf8"', True),
        ("application/json; boundary=x", True),
        ("application/json; charset=iso-8859-1", False),
        ("application/json-patch+json", False),
        ("text/json", False),
        ("", False),
        (None, False),
    ],
)
def test_only_json_in_utf8_is_accepted(content_type: str | None, accepted: bool) -> None:
    assert is_json_content(content_type) is accepted


def test_body_bytes_decodes_base64_and_encodes_text() -> None:
    assert body_bytes({"body": "W10=", "isBase64Encoded": True}) == b"[]"
    assert body_bytes({"body": '["é"]'}) == '["é"]'.encode()
    assert body_bytes({"body": None}) == b""
    for bad in ({"body": "W10", "isBase64Encoded": True}, {"body": "\udc80"}):
        with pytest.raises(BadRequestBody):
            body_bytes(bad)
