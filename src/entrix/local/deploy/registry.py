"""What the deployer and the per-service modules share, so that neither imports the other: the
context a creator works in, and the creators by resource type, which each service module
registers for the types it handles with `@creates(...)`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import KW_ONLY, dataclass, field
from pathlib import Path
from typing import Any

from entrix.local.deploy.deployment import Deployment, physical_name
from entrix.local.secrets_extension import LocalSecretsExtension
from entrix.local.template import PseudoParameters, Resolver, Resource, Template


@dataclass(eq=False)  # one deployment in progress: compared by identity
class DeployContext:
    """One deployment's state, as the creators see it: the clients, the pseudo parameters, the
    options of one service (`asset_dir`, `secrets_extension`, `jwks_url`, `max_wait_seconds`)
    and `deployment`, what it produced so far."""

    template: Template
    clients: Callable[[str], Any]
    _: KW_ONLY
    pseudo: PseudoParameters
    asset_dir: Path | None = None
    max_wait_seconds: int | None = None
    secrets_extension: LocalSecretsExtension | None = None
    # The local identity provider's JWKS URL, for functions that verify an issuer's tokens.
    jwks_url: str | None = None
    resolver: Resolver = field(init=False)
    deployment: Deployment = field(init=False)
    layer_arns: set[str] = field(init=False, default_factory=set)  # the layers it published

    def __post_init__(self) -> None:
        self.resolver = Resolver(self.template, self.pseudo)
        self.deployment = Deployment(
            self.pseudo.stack_name, self.pseudo.region, self.pseudo.account_id
        )

    def name(self, resource: Resource, given: str | None, max_length: int = 64) -> str:
        """The physical name: the template's, or `<stack>-<LogicalId>` within `max_length`."""
        name = given or physical_name(self.pseudo.stack_name, resource.logical_id, max_length)
        self.deployment.names[resource.logical_id] = name
        return name

    def arn(self, service: str, resource_part: str) -> str:
        """An ARN in this deployment's partition, region and account."""
        pseudo = self.pseudo
        return (
            f"arn:{pseudo.partition}:{service}:{pseudo.region}:{pseudo.account_id}:{resource_part}"
        )

    def provide(self, resource: Resource, ref: Any, **attributes: Any) -> None:
        """What `Ref` and `Fn::GetAtt` of the resource resolve to from now on."""
        self.resolver.set_ref(resource.logical_id, ref)
        for attribute, value in attributes.items():
            self.resolver.set_attribute(resource.logical_id, attribute, value)


# Creates one resource from its resolved properties, and records its Ref and attributes.
Creator = Callable[[DeployContext, Resource, dict[str, Any]], None]

CREATORS: dict[str, Creator] = {}


def creates(*resource_types: str) -> Callable[[Creator], Creator]:
    """Registers the decorated function as the creator of `resource_types` (one per type)."""

    def register(creator: Creator) -> Creator:
        for resource_type in resource_types:
            if resource_type in CREATORS:
                raise ValueError(f"two creators for {resource_type}")
            CREATORS[resource_type] = creator
        return creator

    return register
