"""Which node runs the project's JavaScript: jsii under the CDK app, and the policy simulator.

package.json pins Node from the npm registry (`make install` puts it in node_modules/.bin), so
neither depends on the node a machine happens to have (Debian's is Node 20, end of life for
jsii). On a platform the registry has no build for, the node on PATH is used instead, as the
Makefile's recipes do.
"""

from __future__ import annotations

import shutil
from pathlib import Path

CHECKOUT = Path(__file__).resolve().parents[3]
PROJECT_NODE = CHECKOUT / "node_modules" / ".bin" / "node"


def project_node() -> str:
    """The pinned node when installed, else the one on PATH."""
    if PROJECT_NODE.is_file():
        return str(PROJECT_NODE)
    found = shutil.which("node")
    if found is None:
        raise RuntimeError("node is not installed: run `make install`")
    return found


def jsii_environment() -> dict[str, str]:
    """The variables under which jsii (imported with aws_cdk) starts the pinned node; none when it
    is not installed, and jsii starts the node on PATH (the unit tests need no node at all)."""
    return {"JSII_NODE": str(PROJECT_NODE)} if PROJECT_NODE.is_file() else {}
