"""S3 buckets: a valid name derived from the logical id, versioning, and the URL attributes."""

from __future__ import annotations

import hashlib
import re
from typing import Any

from entrix.local.deploy.deployment import physical_name
from entrix.local.deploy.registry import DeployContext, creates
from entrix.local.template import Resource


@creates("AWS::S3::Bucket")
def create_bucket(deployer: DeployContext, resource: Resource, p: dict[str, Any]) -> None:
    pseudo = deployer.pseudo
    given = p.get("BucketName")
    name = given or bucket_name(physical_name(pseudo.stack_name, resource.logical_id))
    deployer.name(resource, name)
    s3 = deployer.clients("s3")
    arguments: dict[str, Any] = {"Bucket": name}
    if pseudo.region != "us-east-1":
        arguments["CreateBucketConfiguration"] = {"LocationConstraint": pseudo.region}
    s3.create_bucket(**arguments)
    if p.get("VersioningConfiguration", {}).get("Status") == "Enabled":
        s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
    suffix = pseudo.url_suffix
    deployer.provide(
        resource,
        name,
        Arn=f"arn:{pseudo.partition}:s3:::{name}",
        DomainName=f"{name}.s3.{suffix}",
        RegionalDomainName=f"{name}.s3.{pseudo.region}.{suffix}",
        WebsiteURL=f"http://{name}.s3-website-{pseudo.region}.{suffix}",
    )


def bucket_name(name: str) -> str:
    """A valid S3 bucket name: lowercase letters, digits and hyphens, 3 to 63 characters."""
    cleaned = re.sub(r"[^a-z0-9-]", "-", name.lower()).strip("-")
    if len(cleaned) <= 63:
        return cleaned
    return f"{cleaned[:54]}-{hashlib.sha256(cleaned.encode()).hexdigest()[:8]}"
