"""Create every resource of a synthesized template in the embedded AWS endpoint.

`deployer` walks the template and dispatches each resource to the creator of its type, which
lives in the module of its service (`dynamodb`, `s3`, `sns`, `sqs`, `secretsmanager`, `lambda_`,
`stepfunctions`, `events`, `iam`, `apigateway`); `asl` rewrites state machine definitions and
`deployment` holds what a deployment produced.
"""

from entrix.local.deploy.asl import cap_wait_seconds
from entrix.local.deploy.deployer import Deployer, check_supported
from entrix.local.deploy.deployment import Deployment, DeploymentError, physical_name
from entrix.local.deploy.secretsmanager import generate_secret_string

__all__ = [
    "Deployer",
    "Deployment",
    "DeploymentError",
    "cap_wait_seconds",
    "check_supported",
    "generate_secret_string",
    "physical_name",
]
