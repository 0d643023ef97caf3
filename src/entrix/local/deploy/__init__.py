"""Create every resource of a synthesized template in the embedded AWS endpoint (see `deployer`)."""

from entrix.local.deploy.deployer import (
    Deployer,
    Deployment,
    DeploymentError,
    Schedule,
    cap_wait_seconds,
    check_supported,
    generate_secret_string,
    physical_name,
)

__all__ = [
    "Deployer",
    "Deployment",
    "DeploymentError",
    "Schedule",
    "cap_wait_seconds",
    "check_supported",
    "generate_secret_string",
    "physical_name",
]
