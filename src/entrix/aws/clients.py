"""AWS clients for Lambda code, made with botocore alone.

The functions ship boto3 (the SDK layer: the version in uv.lock, which the tests ran), but
importing it also loads its resource layer, which these functions never use: a botocore client
is the same low-level client for less import time.

Every client retries in botocore's standard mode and bounds each attempt's connect and read
waits, set here rather than left to botocore's defaults (legacy mode: up to 10 attempts for
DynamoDB, 60 s waits) or to the environment. The longest one call
can then take is known (`longest_call_seconds`), so a caller with a deadline can tell whether a
call still fits.

A client loads its service's model without first listing every service botocore knows
(`_ServiceLoader`), and parses botocore's JSON data into plain dicts (`_DictJsonFileLoader`):
together 35-50 ms less of each cold start. Clients made under the same AWS environment share one
session, so a function with three clients (Lambda B) reads botocore's endpoint data and resolves
its credentials once, not three times.
"""

from __future__ import annotations

import contextvars
import gzip
import json
import os
import threading
from typing import Any

import botocore.session
from botocore.config import Config
from botocore.exceptions import DataNotFoundError
from botocore.loaders import JSONFileLoader, Loader, create_loader

# Sensible for any service these functions call: an in-region connection is made in
# milliseconds (the AWS SDKs' in-region defaults allow 1.1 s), and a read waits for one
# response, not a whole download; three attempts are standard mode's own default.
DEFAULT_CONFIG = Config(
    connect_timeout=1,
    read_timeout=2,
    retries={"mode": "standard", "total_max_attempts": 3},
)

# For the results pipeline's functions (Lambda A and B), which have minutes rather than the API's
# 29 s: a batches object of many thousand orders may take longer than 2 s to be acknowledged.
PIPELINE_CONFIG = Config(read_timeout=60)

# Lambda B's: its batch is ~1,000 orders whose calls run 32 at a time (entrix.auction.processing
# PARALLEL_CALLS; the connection pool allows as many), and one call, retries included, must fit
# well inside its 120 s timeout: 3 attempts of 2 s connect + 5 s read, and two backoffs, 34 s at
# most (`longest_call_seconds`). A batch's objects are a few hundred KB: a read waits for one
# response chunk, never 5 s in-region.
PROCESS_CONFIG = Config(
    connect_timeout=2,
    read_timeout=5,
    retries={"mode": "standard", "total_max_attempts": 3},
    max_pool_connections=32,
)

# Standard mode sleeps before retry i (1-based) at most min(2 ** (i - 1), 20) s (throttling
# errors; other errors back off less), and an `x-amz-retry-after` reply may add up to 5 s.
_BACKOFF_CAP_SECONDS = 20
_RETRY_AFTER_EXTRA_SECONDS = 5


class _DictJsonFileLoader(JSONFileLoader):
    """botocore's JSON data files (`.json`, else `.json.gz`), parsed into plain dicts.

    botocore parses them with `object_pairs_hook=OrderedDict`, a Python 2 way to keep the
    files' key order; dicts keep insertion order too, which is all botocore relies on, and
    parse twice as fast (endpoints.json, 1.2 MB, read by every new session: 12 ms against 27).
    """

    def load_file(self, file_path: str) -> Any:
        for extension, open_file in ((".json", open), (".json.gz", gzip.open)):
            path = file_path + extension
            if os.path.isfile(path):
                with open_file(path, "rb") as file:
                    data = json.loads(file.read().decode("utf-8"))
                if data is not None:
                    return data
        return None


# The service whose model `_ServiceLoader.load_service_model` is loading, if any.
_loading: contextvars.ContextVar[str | None] = contextvars.ContextVar("loading", default=None)


class _ServiceLoader(Loader):
    """botocore's data loader, without listing all ~450 services to load a model it can find.

    `Loader.load_service_model` checks the service name against `list_available_services`,
    which reads every service directory of botocore's data. While a model loads, this loader
    answers that check with the service alone when the service has data of the asked type
    (`list_api_versions`, which reads its directory only); otherwise, and for any other caller,
    it lists them all, so an unknown service fails with the same UnknownServiceError.
    """

    def load_service_model(
        self, service_name: str, type_name: str, api_version: Any | None = None
    ) -> Any:
        token = _loading.set(service_name)
        try:
            return super().load_service_model(service_name, type_name, api_version)
        finally:
            _loading.reset(token)

    def list_available_services(self, type_name: str) -> list[str]:
        service = _loading.get()
        if service is not None:
            try:
                self.list_api_versions(service, type_name)
            except DataNotFoundError:
                pass
            else:
                return [service]
        return super().list_available_services(type_name)


# Sessions by the AWS_* variables they were made under (region, credentials, endpoint...): one
# per function in Lambda; a process hosting several local systems (tests) gets one for each.
_sessions: dict[tuple[tuple[str, str], ...], botocore.session.Session] = {}
_sessions_lock = threading.Lock()


def _shared_session() -> botocore.session.Session:
    """The session for this thread's AWS environment, made on first use (a botocore session is
    not meant to be shared across threads while it makes clients: the lock serialises that)."""
    key = tuple(
        sorted((name, value) for name, value in os.environ.items() if name.startswith("AWS_"))
    )
    with _sessions_lock:
        session = _sessions.get(key)
        if session is None:
            session = _sessions[key] = _session()
        return session


def _session() -> botocore.session.Session:
    """A new session whose loader searches the paths botocore's own would (AWS_DATA_PATH too)."""
    session = botocore.session.get_session()
    paths = create_loader(session.get_config_variable("data_path")).search_paths
    loader = _ServiceLoader(
        extra_search_paths=paths,
        file_loader=_DictJsonFileLoader(),
        include_default_search_paths=False,
    )
    session.register_component("data_loader", loader)
    return session


def client(service: str, config: Config | None = None) -> Any:
    """A client configured from the environment (region, credentials, AWS_ENDPOINT_URL), with
    `DEFAULT_CONFIG` and then `config`'s own settings on top."""
    merged = DEFAULT_CONFIG if config is None else DEFAULT_CONFIG.merge(config)
    session = _shared_session()
    with _sessions_lock:
        return session.create_client(service, config=merged)


def retry_pause_limit(retry: int) -> float:
    """The longest botocore's standard mode sleeps before retry number `retry` (1-based)."""
    return min(2 ** (retry - 1), _BACKOFF_CAP_SECONDS) + _RETRY_AFTER_EXTRA_SECONDS


def longest_call_seconds(aws_client: Any) -> float:
    """The longest one call of `aws_client` can take, retries included: every attempt waits out
    its connect and read timeouts, and every retry sleeps its longest backoff."""
    config = aws_client.meta.config
    retries = config.retries or {}
    if retries.get("mode") != "standard" or "total_max_attempts" not in retries:
        raise ValueError(
            f"no known bound for retries configured as {retries!r}: make the client with client()"
        )
    attempts = int(retries["total_max_attempts"])
    waits = attempts * (config.connect_timeout + config.read_timeout)
    return waits + sum(retry_pause_limit(retry) for retry in range(1, attempts))
