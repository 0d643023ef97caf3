"""One boto3 default session for every unit test's moto mock.

moto's `mock_aws` drops boto3's default session each time it starts (its `core.reset_boto3_session`
option), so each test would read botocore's service models and endpoint rules again: about a third
of this tier's time. The session's credentials are the fake ones of tests/conftest.py either way.
"""

from __future__ import annotations

import pytest
from moto.core.config import default_user_config


@pytest.fixture(autouse=True)
def keep_the_boto3_default_session(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(default_user_config["core"], "reset_boto3_session", False)
