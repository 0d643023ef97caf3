"""The `live` alias of a function in a synthesized template: what every caller must invoke."""

from __future__ import annotations

from typing import Any

from infra.constructs.lambda_code import LIVE_ALIAS


def live_alias(template: dict[str, Any], function: str) -> str:
    """The logical id of the `live` alias of the function `function` (a logical id)."""
    (alias,) = [
        logical_id
        for logical_id, resource in template["Resources"].items()
        if resource["Type"] == "AWS::Lambda::Alias"
        and resource["Properties"]["FunctionName"] == {"Ref": function}
        and resource["Properties"]["Name"] == LIVE_ALIAS
    ]
    return alias
