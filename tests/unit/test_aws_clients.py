"""Clients load their service's model without listing every service botocore knows, and parse
botocore's data into plain dicts: the same data, in the same order, as botocore's own loader."""

from __future__ import annotations

import json
from typing import Any

import botocore.session
import pytest
from botocore.exceptions import DataNotFoundError, UnknownServiceError
from botocore.loaders import Loader

from entrix.aws import clients


@pytest.fixture
def full_listings(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The type names botocore listed all services for (its own, unshortened listing)."""
    listed: list[str] = []
    original = Loader.list_available_services

    def spy(self: Loader, type_name: str) -> list[str]:
        listed.append(type_name)
        result: list[str] = original(self, type_name)
        return result

    monkeypatch.setattr(Loader, "list_available_services", spy)
    return listed


@pytest.fixture(autouse=True)
def region(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")


def _model(client: Any) -> tuple[Any, ...]:
    model = client.meta.service_model
    return model.api_version, tuple(model.operation_names), client.meta.endpoint_url


@pytest.mark.parametrize("service", ["dynamodb", "s3", "sns", "secretsmanager", "stepfunctions"])
def test_a_client_has_the_model_botocore_gives_without_listing_every_service(
    full_listings: list[str], service: str
) -> None:
    ours = clients.client(service)
    assert full_listings == []
    assert _model(ours) == _model(botocore.session.get_session().create_client(service))
    assert full_listings, "botocore's own session lists every service"


def test_an_unknown_service_fails_as_botocore_fails(full_listings: list[str]) -> None:
    with pytest.raises(UnknownServiceError, match="Unknown service: 'dynamodbb'"):
        clients.client("dynamodbb")
    assert full_listings == ["service-2"]


def test_listing_services_outside_a_model_load_is_botocores_own(
    full_listings: list[str],
) -> None:
    session = clients._session()
    assert "dynamodb" in session.get_available_services()
    assert full_listings == ["service-2"]


def test_the_loader_searches_aws_data_path_first(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    monkeypatch.setenv("AWS_DATA_PATH", str(tmp_path))
    loader = clients._session().get_component("data_loader")
    assert isinstance(loader, clients._ServiceLoader)
    assert (
        loader.search_paths
        == botocore.session.get_session().get_component("data_loader").search_paths
    )
    assert loader.search_paths[0] == str(tmp_path)


@pytest.mark.parametrize(
    "name",
    [
        "endpoints",
        "partitions",
        "_retry",
        "sdk-default-configuration",
        "dynamodb/2012-08-10/service-2",  # gzipped in botocore's data
        "dynamodb/2012-08-10/endpoint-rule-set-1",
        "s3/2006-03-01/service-2",
    ],
)
def test_data_files_load_as_botocore_loads_them_in_plain_dicts(name: str) -> None:
    ours = clients._session().get_component("data_loader").load_data(name)
    theirs = botocore.session.get_session().get_component("data_loader").load_data(name)
    assert json.dumps(ours) == json.dumps(theirs), "same keys, values and key order"
    assert type(ours) is dict


def test_missing_data_is_missing_as_botocore_says() -> None:
    with pytest.raises(DataNotFoundError):
        clients._session().get_component("data_loader").load_data("dynamodb/no-such-file")
