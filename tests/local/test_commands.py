"""Command-line failures a user meets: a taken port, no local system to run the pipeline on or
to read the alerts of."""

import socket
import subprocess
import sys
from pathlib import Path

import pytest

from entrix.local.endpoint import PortInUse, check_port_free, client_host

ROOT = Path(__file__).resolve().parents[2]


def test_a_taken_port_is_reported_with_the_flag_to_change():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(PortInUse, match=f"127.0.0.1:{port} .*choose another --aws-port"):
            check_port_free("127.0.0.1", port, "--aws-port")


def test_wildcard_hosts_are_reached_on_loopback():
    assert client_host("0.0.0.0") == "127.0.0.1"
    assert client_host("192.0.2.7") == "192.0.2.7"


@pytest.mark.parametrize("command", [["pipeline", "run"], ["alerts"]])
def test_a_command_without_a_local_system_says_how_to_start_one(command):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    result = subprocess.run(
        [sys.executable, "-m", "entrix.cli", *command, "--aws-port", str(port)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1
    assert result.stdout == ""
    assert "entrix local" in result.stderr


def test_local_refuses_a_taken_api_port(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            aws_port = probe.getsockname()[1]
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "entrix.cli",
                "local",
                "--port",
                str(port),
                "--aws-port",
                str(aws_port),
            ],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=240,
            check=False,
        )
    assert result.returncode == 1
    assert "choose another --port" in result.stderr
