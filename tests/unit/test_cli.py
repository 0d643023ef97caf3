"""The `entrix` command as a newcomer meets it: every command's --help says what it does and
shows each default, and a command that needs AWS says in one line what is missing."""

from __future__ import annotations

import argparse
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from entrix.cli import build_parser, main
from entrix.command_errors import NO_CREDENTIALS, NO_REGION


def _commands(
    parser: argparse.ArgumentParser, path: tuple[str, ...] = ()
) -> Iterator[tuple[tuple[str, ...], argparse.ArgumentParser]]:
    """Every command and subcommand, by the words that name it."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, subparser in action.choices.items():
                yield (*path, name), subparser
                yield from _commands(subparser, (*path, name))


COMMANDS = dict(_commands(build_parser()))


def test_every_command_is_walked() -> None:
    assert {" ".join(path) for path in COMMANDS} == {
        "local",
        "token",
        "revoke",
        "pipeline",
        "pipeline run",
        "alerts",
        "verify",
        "rollback",
    }


@pytest.mark.parametrize("path", list(COMMANDS), ids=" ".join)
def test_help_has_a_description_and_shows_every_default(
    path: tuple[str, ...], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        main([*path, "--help"])
    assert exited.value.code == 0
    shown = " ".join(capsys.readouterr().out.split())
    parser = COMMANDS[path]
    assert parser.description and " ".join(parser.description.split()) in shown
    defaults = [
        action
        for action in parser._actions
        if action.option_strings
        and action.default not in (None, argparse.SUPPRESS)
        and action.nargs != 0  # a flag: its default is not giving it, said in its help
        and not isinstance(action, argparse._HelpAction)
    ]
    for action in defaults:
        assert f"(default: {action.default})" in shown, action.option_strings
    # Options without a default, and flags, do not print one.
    assert "(default: None)" not in shown
    assert "(default: True)" not in shown and "(default: False)" not in shown


def test_local_shows_its_ports_and_schedule(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["local", "--help"])
    shown = " ".join(capsys.readouterr().out.split())
    for default in ("(default: 8000)", "(default: 4566)", "(default: 300.0)"):
        assert default in shown


def _verify(tmp_path: Path, **environment: str) -> subprocess.CompletedProcess[str]:
    """`entrix verify` in an empty environment: no AWS_* variables but those given, and a HOME
    with no ~/.aws. Instance metadata is off so that a test host on EC2 lends no role."""
    return subprocess.run(
        [sys.executable, "-m", "entrix.cli", "verify", "--stack", "Dev-Entrix"],
        env={"HOME": str(tmp_path), "AWS_EC2_METADATA_DISABLED": "true", **environment},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_verify_without_a_region_says_so_in_one_line(tmp_path: Path) -> None:
    completed = _verify(tmp_path)
    assert completed.returncode == 1
    assert completed.stderr.splitlines() == [f"entrix verify: {NO_REGION}"]
    assert completed.stdout == ""


def test_verify_without_credentials_says_so_in_one_line(tmp_path: Path) -> None:
    completed = _verify(tmp_path, AWS_DEFAULT_REGION="eu-west-1")
    assert completed.returncode == 1
    assert completed.stderr.splitlines() == [f"entrix verify: {NO_CREDENTIALS}"]
    assert completed.stdout == ""
