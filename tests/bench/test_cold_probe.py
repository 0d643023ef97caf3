"""The cold-request bench's probe, run in a real interpreter as `make bench` runs it: what it
reports and what it refuses (tests/unit/test_bench_cold_start.py covers the rest of the bench)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from bench.cold_start import Interpreter, LoadPath, Probe, SampleFailed


@pytest.fixture
def function_code(tmp_path: Path) -> Path:
    (tmp_path / "fake_handler.py").write_text(
        "import os\n"
        "calls = []\n"
        "def handler(event, context):\n"
        "    calls.append(event)\n"
        "    if event.get('fail'):\n"
        "        raise RuntimeError('refused')\n"
        "    if event.get('import'):\n"
        "        __import__(event['import'])\n"
        "    return {'n': len(calls), 'variable': os.environ.get('SAMPLE_VARIABLE'),\n"
        "            'request_id': context.aws_request_id}\n"
    )
    return tmp_path


def probe(code: Path, tmp_path: Path) -> Probe:
    interpreter = Interpreter(sys.executable, "test", tmp_path / "site-packages", tmp_path)
    load_path = LoadPath("fake", "fake_handler", "handler", (str(code),))
    return Probe(interpreter, load_path, {"SAMPLE_VARIABLE": "set"}, "fake-function", 128, 3)


def test_a_probe_imports_once_then_calls_with_each_event_in_its_environment(
    function_code: Path, tmp_path: Path
) -> None:
    result, _ = probe(function_code, tmp_path).run([{}, {}, {}])

    assert [call["reply"]["n"] for call in result["calls"]] == [1, 2, 3]
    assert {call["reply"]["variable"] for call in result["calls"]} == {"set"}
    assert result["import_ms"] > 0


def test_a_sample_is_refused_when_the_handler_raises(function_code: Path, tmp_path: Path) -> None:
    with pytest.raises(SampleFailed, match="call 2: RuntimeError: refused"):
        probe(function_code, tmp_path).sample([{}, {"fail": True}], lambda reply: None)


def test_a_sample_is_refused_when_the_reply_is_wrong(function_code: Path, tmp_path: Path) -> None:
    with pytest.raises(SampleFailed, match="call 1: not this one"):
        probe(function_code, tmp_path).sample([{}], lambda reply: "not this one")


def test_the_probe_sees_no_site_packages(function_code: Path, tmp_path: Path) -> None:
    """Only the function's paths and the standard library: pytest is installed here, not there."""
    with pytest.raises(SampleFailed, match="ModuleNotFoundError: No module named 'pytest'"):
        probe(function_code, tmp_path).sample([{"import": "pytest"}], lambda reply: None)
