"""The local system assembled in this process: serves, then leaves the process as it found it."""

import json
import os
import socket
import urllib.request

from moto.awslambda.models import LambdaFunction

from entrix.local.endpoint import free_port
from entrix.local.runtime import LocalOptions, LocalSystem, stack_region
from tests.local.templates import api_template


def test_system_serves_the_template_and_restores_the_process_on_stop(tmp_path):
    template = tmp_path / "Entrix.template.json"
    template.write_text(json.dumps(api_template()))
    original_hook = LambdaFunction._invoke_lambda
    endpoint_before = os.environ.get("AWS_ENDPOINT_URL")
    options = LocalOptions(port=free_port(), aws_port=free_port(), schedule_seconds=None)
    system = LocalSystem(template, options, show_run=print, show_notification=print)
    system.start()
    try:
        assert os.environ["AWS_ENDPOINT_URL"] == f"http://127.0.0.1:{options.aws_port}"
        assert os.environ["MOTO_PORT"] == str(options.aws_port)
        assert LambdaFunction._invoke_lambda is not original_hook
        request = urllib.request.Request(
            f"{system.api_url}/orders/r1", headers={"Authorization": "let-me-in"}
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            assert response.status == 201
            assert json.loads(response.read())["event"]["pathParameters"] == {"record_id": "r1"}
    finally:
        system.stop()
    assert os.environ.get("AWS_ENDPOINT_URL") == endpoint_before
    assert LambdaFunction._invoke_lambda is original_hook
    for port in (options.port, options.aws_port):
        with socket.socket() as client:
            assert client.connect_ex(("127.0.0.1", port)) != 0


def test_region_comes_from_the_cloud_assembly_manifest(tmp_path):
    template = tmp_path / "Entrix.template.json"
    assert stack_region(template, "Entrix") == "eu-west-1"
    manifest = {"artifacts": {"Entrix": {"environment": "aws://unknown-account/eu-central-1"}}}
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    assert stack_region(template, "Entrix") == "eu-central-1"
