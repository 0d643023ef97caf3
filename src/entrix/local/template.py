"""Read a synthesized CloudFormation template and resolve its intrinsic functions locally.

The local runtime creates every resource from `cdk.out/<stack>.template.json`, so a change in the
CDK code shows up locally with no other edit. CloudFormation itself is not emulated (moto's
CloudFormation creates no executable state machine and ignores TTL), so this module does the two
things a deployment needs from it: an order in which to create resources (each after the ones it
references) and the resolution of `Ref`, `Fn::GetAtt`, `Fn::Join`, `Fn::Sub` and friends against
the physical names and attributes of the resources created so far.

Usage::

    template = Template.load("cdk.out/Entrix.template.json")
    resolver = Resolver(template, PseudoParameters(region="eu-west-1"))
    for resource in template.creation_order():
        properties = resolver.resolve(resource.properties)
        ...create it, then record what Ref and Fn::GetAtt return:
        resolver.set_ref(resource.logical_id, physical_name)
        resolver.set_attribute(resource.logical_id, "Arn", arn)
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# Marks a value removed by `Ref: AWS::NoValue`; dropped from the enclosing dict or list.
_NO_VALUE = object()
_SUB_VARIABLE = re.compile(r"\$\{([^}]*)\}")


class TemplateError(Exception):
    """The template uses something the local runtime cannot resolve or create."""


@dataclass(frozen=True)
class PseudoParameters:
    """Values of CloudFormation's `AWS::*` pseudo parameters in the local account."""

    region: str = "eu-west-1"
    account_id: str = "123456789012"
    stack_name: str = "Entrix"
    partition: str = "aws"
    url_suffix: str = "amazonaws.com"

    @property
    def stack_id(self) -> str:
        return (
            f"arn:{self.partition}:cloudformation:{self.region}:{self.account_id}:"
            f"stack/{self.stack_name}/00000000-0000-0000-0000-000000000000"
        )

    def as_refs(self) -> dict[str, Any]:
        return {
            "AWS::Region": self.region,
            "AWS::AccountId": self.account_id,
            "AWS::StackName": self.stack_name,
            "AWS::StackId": self.stack_id,
            "AWS::Partition": self.partition,
            "AWS::URLSuffix": self.url_suffix,
            "AWS::NotificationARNs": [],
        }


@dataclass(frozen=True)
class Resource:
    """One entry of the template's `Resources` section, properties still unresolved."""

    logical_id: str
    type: str
    properties: dict[str, Any]
    depends_on: tuple[str, ...] = ()
    condition: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Template:
    """A parsed CloudFormation template."""

    resources: dict[str, Resource]
    parameters: dict[str, Any] = field(default_factory=dict)
    conditions: dict[str, Any] = field(default_factory=dict)
    mappings: dict[str, Any] = field(default_factory=dict)
    outputs: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def load(cls, path: str | Path) -> Template:
        return cls.from_dict(json.loads(Path(path).read_text(encoding="utf-8")))

    @classmethod
    def from_dict(cls, body: Mapping[str, Any]) -> Template:
        resources = {}
        for logical_id, spec in body.get("Resources", {}).items():
            depends_on = spec.get("DependsOn", ())
            if isinstance(depends_on, str):
                depends_on = (depends_on,)
            resources[logical_id] = Resource(
                logical_id=logical_id,
                type=spec["Type"],
                properties=spec.get("Properties", {}),
                depends_on=tuple(depends_on),
                condition=spec.get("Condition"),
                metadata=spec.get("Metadata", {}),
            )
        return cls(
            resources=resources,
            parameters=dict(body.get("Parameters", {})),
            conditions=dict(body.get("Conditions", {})),
            mappings=dict(body.get("Mappings", {})),
            outputs=dict(body.get("Outputs", {})),
        )

    def of_type(self, resource_type: str) -> list[Resource]:
        return [r for r in self.resources.values() if r.type == resource_type]

    def creation_order(self) -> list[Resource]:
        """All resources, each after every resource it references or depends on.

        Ties keep template order, so the result is deterministic. A cycle is an error
        (CloudFormation refuses such templates too).
        """
        dependencies = {
            logical_id: {
                d
                for d in (*_references(resource.properties), *resource.depends_on)
                if d in self.resources and d != logical_id
            }
            for logical_id, resource in self.resources.items()
        }
        ordered: list[Resource] = []
        done: set[str] = set()
        visiting: set[str] = set()

        def visit(logical_id: str) -> None:
            if logical_id in done:
                return
            if logical_id in visiting:
                raise TemplateError(f"circular dependency through resource {logical_id}")
            visiting.add(logical_id)
            for dependency in sorted(dependencies[logical_id]):
                visit(dependency)
            visiting.discard(logical_id)
            done.add(logical_id)
            ordered.append(self.resources[logical_id])

        for logical_id in self.resources:
            visit(logical_id)
        return ordered


def _references(value: Any) -> Iterator[str]:
    """Logical ids that `value` refers to through Ref, Fn::GetAtt or Fn::Sub."""
    if isinstance(value, list):
        for item in value:
            yield from _references(item)
    elif isinstance(value, dict):
        if len(value) == 1:
            ((key, argument),) = value.items()
            if key == "Ref" and isinstance(argument, str):
                yield argument
                return
            if key == "Fn::GetAtt":
                target = argument.split(".", 1)[0] if isinstance(argument, str) else argument[0]
                if isinstance(target, str):
                    yield target
                return
            if key == "Fn::Sub":
                text = argument if isinstance(argument, str) else argument[0]
                own = set(argument[1]) if isinstance(argument, list) else set()
                for name in _SUB_VARIABLE.findall(text):
                    target = name.split(".", 1)[0]
                    if not name.startswith("!") and target not in own:
                        yield target
                if isinstance(argument, list):
                    yield from _references(argument[1])
                return
        for item in value.values():
            yield from _references(item)


class Resolver:
    """Resolves intrinsic functions against what the local deployment has created so far.

    `Ref` returns the value given to `set_ref` (a resource's physical name or ARN, as the real
    CloudFormation would return for that type), a parameter's default or a pseudo parameter;
    `Fn::GetAtt` returns what `set_attribute` recorded. Anything unresolvable raises
    `TemplateError` naming what is missing.
    """

    def __init__(
        self,
        template: Template,
        pseudo: PseudoParameters | None = None,
        parameters: Mapping[str, Any] | None = None,
    ) -> None:
        self.template = template
        self.pseudo = pseudo or PseudoParameters()
        self._refs: dict[str, Any] = self.pseudo.as_refs()
        for name, spec in template.parameters.items():
            if parameters and name in parameters:
                self._refs[name] = parameters[name]
            elif "Default" in spec:
                self._refs[name] = spec["Default"]
        self._attributes: dict[tuple[str, str], Any] = {}
        self._conditions: dict[str, bool] = {}

    def set_ref(self, logical_id: str, value: Any) -> None:
        self._refs[logical_id] = value

    def set_attribute(self, logical_id: str, attribute: str, value: Any) -> None:
        self._attributes[(logical_id, attribute)] = value

    def ref(self, name: str) -> Any:
        if name == "AWS::NoValue":
            return _NO_VALUE
        if name not in self._refs:
            raise TemplateError(f"Ref to {name}, which has no local value (not created yet?)")
        return self._refs[name]

    def get_att(self, logical_id: str, attribute: str) -> Any:
        try:
            return self._attributes[(logical_id, attribute)]
        except KeyError:
            raise TemplateError(f"Fn::GetAtt {logical_id}.{attribute} has no local value") from None

    def condition(self, name: str) -> bool:
        if name not in self._conditions:
            if name not in self.template.conditions:
                raise TemplateError(f"unknown condition {name}")
            self._conditions[name] = bool(self.resolve(self.template.conditions[name]))
        return self._conditions[name]

    def is_enabled(self, resource: Resource) -> bool:
        """False when the resource's Condition makes CloudFormation skip it."""
        return resource.condition is None or self.condition(resource.condition)

    def resolve(self, value: Any) -> Any:
        """A copy of `value` with every intrinsic function replaced by its local value."""
        resolved = self._resolve(value)
        return None if resolved is _NO_VALUE else resolved

    def _resolve(self, value: Any) -> Any:
        if isinstance(value, list):
            items = (self._resolve(item) for item in value)
            return [item for item in items if item is not _NO_VALUE]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            ((key, argument),) = value.items()
            if key == "Ref":
                return self.ref(argument)
            if key == "Condition" and isinstance(argument, str):
                return self.condition(argument)
            if key.startswith("Fn::"):
                return self._function(key, argument)
        resolved = {k: self._resolve(v) for k, v in value.items()}
        return {k: v for k, v in resolved.items() if v is not _NO_VALUE}

    def _function(self, name: str, argument: Any) -> Any:
        if name == "Fn::GetAtt":
            logical_id, attribute = (
                argument.split(".", 1) if isinstance(argument, str) else argument
            )
            return self.get_att(logical_id, self._resolve(attribute))
        if name == "Fn::Join":
            separator, items = argument
            return self._resolve(separator).join(str(i) for i in self._resolve(items))
        if name == "Fn::Sub":
            return self._sub(argument)
        if name == "Fn::Select":
            index, items = self._resolve(argument)
            return items[int(index)]
        if name == "Fn::Split":
            separator, text = self._resolve(argument)
            return text.split(separator)
        if name == "Fn::If":
            condition, if_true, if_false = argument
            return self._resolve(if_true if self.condition(condition) else if_false)
        if name == "Fn::Equals":
            left, right = self._resolve(argument)
            return left == right
        if name == "Fn::Not":
            (inner,) = self._resolve(argument)
            return not inner
        if name == "Fn::And":
            return all(self._resolve(argument))
        if name == "Fn::Or":
            return any(self._resolve(argument))
        if name == "Fn::FindInMap":
            map_name, top, second = self._resolve(argument)
            return self.template.mappings[map_name][top][second]
        if name == "Fn::Base64":
            return base64.b64encode(str(self._resolve(argument)).encode()).decode()
        if name == "Fn::GetAZs":
            region = self._resolve(argument) or self.pseudo.region
            return [f"{region}{zone}" for zone in "abc"]
        raise TemplateError(f"intrinsic function {name} is not supported locally")

    def _sub(self, argument: Any) -> str:
        if isinstance(argument, str):
            text, variables = argument, {}
        else:
            text, variables = argument[0], self._resolve(argument[1])

        def replace(match: re.Match[str]) -> str:
            name = match.group(1)
            if name.startswith("!"):
                return "${" + name[1:] + "}"
            if name in variables:
                return str(variables[name])
            if "." in name and not name.startswith("AWS::"):
                logical_id, attribute = name.split(".", 1)
                return str(self.get_att(logical_id, attribute))
            return str(self.ref(name))

        return _SUB_VARIABLE.sub(replace, text)
