"""Every function's environment names exactly the settings its handler reads, defaults included.

A variable a handler reads but the template leaves out would run on the handler's default, which
nobody sees in the template; a variable no handler reads is noise. So the template states each
function's whole configuration, and this test keeps it that way.

What a handler reads is derived from its code, not typed here: every `settings.NAME.read()` in
the modules bundled with it (infra.bundling.module_closure, the files its asset holds). A read
under `if settings.OTHER.read() == "value":` (or after such a branch that returns) counts only
where the function's own OTHER has that value: the authorizer needs its signing secret's ARN
in `secret` mode and the JWKS URL in `jwks` mode. A variable the template sets must be read by
some code of the function, in any mode (Lambda A's random-mode count is set in `orders` mode
too, ready for a switch).
"""

from __future__ import annotations

import ast
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from entrix import settings
from entrix.settings import Setting
from infra.bundling import SRC_DIR, module_closure
from tests.infra.test_intake_template import EXTENSION_VARIABLE_PREFIXES

SETTINGS: dict[str, Setting[Any]] = {
    name: value for name, value in vars(settings).items() if isinstance(value, Setting)
}


@dataclass(frozen=True)
class Read:
    """One `settings.<setting>.read()`, and the (setting, value, equal) tests it depends on."""

    setting: str
    when: tuple[tuple[str, str, bool], ...]


def _read_of(node: ast.AST) -> str | None:
    """NAME of a `settings.NAME.read()` call."""
    if (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr == "read"
        and isinstance(node.func.value, ast.Attribute)
        and isinstance(node.func.value.value, ast.Name)
        and node.func.value.value.id == "settings"
    ):
        return node.func.value.attr
    return None


def _condition(test: ast.expr) -> tuple[str, str, bool] | None:
    """`settings.NAME.read() == "v"` (or !=) as (NAME, "v", equal)."""
    if (
        isinstance(test, ast.Compare)
        and len(test.ops) == 1
        and isinstance(test.ops[0], ast.Eq | ast.NotEq)
        and (name := _read_of(test.left)) is not None
        and isinstance(test.comparators[0], ast.Constant)
    ):
        return name, str(test.comparators[0].value), isinstance(test.ops[0], ast.Eq)
    return None


def _reads(nodes: Sequence[ast.AST], when: tuple[tuple[str, str, bool], ...]) -> Iterator[Read]:
    for node in nodes:
        branch = _condition(node.test) if isinstance(node, ast.If | ast.IfExp) else None
        if branch is None:
            if (name := _read_of(node)) is not None:
                yield Read(name, when)
            yield from _reads(list(ast.iter_child_nodes(node)), when)
            continue
        assert isinstance(node, ast.If | ast.IfExp)
        name, value, equal = branch
        yield Read(name, when)
        yield from _reads(_body(node.body), (*when, branch))
        otherwise = (*when, (name, value, not equal))
        yield from _reads(_body(node.orelse), otherwise)
        if isinstance(node, ast.If) and isinstance(node.body[-1], ast.Return | ast.Raise):
            # What follows a branch that returns runs only when the branch did not.
            rest = nodes[nodes.index(node) + 1 :]
            yield from _reads(rest, otherwise)
            return


def _body(body: list[ast.stmt] | ast.expr) -> list[ast.AST]:
    return list(body) if isinstance(body, list) else [body]


def handler_reads(handler: str, src_dir: Path = SRC_DIR) -> list[Read]:
    """Every setting read in the modules bundled with `handler` (module.function)."""
    return [
        read
        for path in module_closure([handler.rpartition(".")[0]], src_dir)
        for read in _reads([ast.parse(path.read_text(), filename=str(path))], ())
    ]


def expected_settings(reads: Sequence[Read], variables: dict[str, str]) -> set[str]:
    """The variables a function with `variables` reads: a conditional read where it holds."""

    def value(name: str) -> str:
        return variables.get(SETTINGS[name].name) or SETTINGS[name].text()

    return {
        SETTINGS[read.setting].name
        for read in reads
        if all((value(name) == wanted) == equal for name, wanted, equal in read.when)
    }


@pytest.fixture(scope="module")
def with_slack(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The service stack with the optional Slack forwarder, which cdk.json leaves out."""
    from aws_cdk import App

    from infra.config import ServiceConfig
    from infra.stacks.service import ServiceStack

    app = App(
        context={
            "aws:cdk:bundling-stacks": [],
            "entrix:slack_webhook_secret_arn": (
                "arn:aws:secretsmanager:eu-west-1:123456789012:secret:slack-webhook-AbCdEf"
            ),
        },
        outdir=str(tmp_path_factory.mktemp("cdk.out")),
    )
    ServiceStack(app, "WithSlack", config=ServiceConfig.from_context(app.node))
    template: dict[str, Any] = app.synth().get_stack_by_name("WithSlack").template
    return template


def _functions(templates: dict[str, dict[str, Any]]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for stack, template in templates.items():
        for logical_id, resource in template["Resources"].items():
            if resource["Type"] == "AWS::Lambda::Function":
                yield f"{stack}/{logical_id}", resource["Properties"]["Handler"], resource


def _variables(resource: dict[str, Any]) -> dict[str, str]:
    variables = resource["Properties"].get("Environment", {}).get("Variables", {})
    # The Parameters and Secrets Extension's own variables come with its layer.
    return {
        name: value
        for name, value in variables.items()
        if not name.startswith(EXTENSION_VARIABLE_PREFIXES)
    }


def test_each_function_sets_exactly_the_settings_its_handler_reads(
    nag_templates: dict[str, dict[str, Any]], with_slack: dict[str, Any]
) -> None:
    functions = list(_functions({**nag_templates, "WithSlack": with_slack}))
    assert functions
    for where, handler, resource in functions:
        variables = set(_variables(resource))
        reads = handler_reads(handler)
        needed = expected_settings(reads, _variables(resource))
        read_anywhere = {SETTINGS[read.setting].name for read in reads}
        assert not needed - variables, f"{where} ({handler}): its code reads these, unset"
        assert not variables - read_anywhere, f"{where} ({handler}): no code of it reads these"


def test_the_authorizer_reads_its_key_sources_settings_only() -> None:
    """The conditional reads: the signing secret in `secret` mode, the JWKS URL in `jwks`."""
    reads = handler_reads("entrix.handlers.authorizer.handler")
    secret_mode = expected_settings(reads, {settings.JWT_KEY_SOURCE.name: "secret"})
    jwks_mode = expected_settings(reads, {settings.JWT_KEY_SOURCE.name: "jwks"})

    assert settings.JWT_SECRET_ARN.name in secret_mode - jwks_mode
    assert {settings.JWT_JWKS_URL.name, settings.JWT_JWKS_ALLOW_LOOPBACK_HTTP.name} <= (
        jwks_mode - secret_mode
    )


def test_a_handler_reading_a_setting_the_template_lacks_fails(
    nag_templates: dict[str, dict[str, Any]], tmp_path: Path
) -> None:
    """Ingest's code plus a module that reads AUCTION_MODE, which ingest's template entry does
    not set: the derived expectation names it."""
    (_, handler, resource), *_ = [
        f for f in _functions(nag_templates) if f[1] == "entrix.handlers.ingest.handler"
    ]
    source = tmp_path / "src"
    for path in module_closure([handler.rpartition(".")[0]]):
        target = source / path.relative_to(SRC_DIR)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(path.read_text())
    ingest = source / "entrix" / "handlers" / "ingest.py"
    ingest.write_text(ingest.read_text() + "\nfrom entrix.handlers import extra_setting\n")
    (ingest.parent / "extra_setting.py").write_text(
        "from entrix import settings\n\n\ndef mode() -> str:\n"
        "    return settings.AUCTION_MODE.read()\n"
    )
    variables = _variables(resource)

    expected = expected_settings(handler_reads(handler, source), variables)

    assert expected - set(variables) == {settings.AUCTION_MODE.name}
    assert expected_settings(handler_reads(handler), variables) == set(variables)
