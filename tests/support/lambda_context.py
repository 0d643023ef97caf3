"""A Lambda context whose remaining time counts down for real, as the runtime's does."""

from __future__ import annotations

import time
import uuid

from entrix.local.lambda_runner import LambdaContext


def lambda_context(remaining_ms: int, function_name: str = "Entrix-Ingest") -> LambdaContext:
    """The context of an invocation with `remaining_ms` left from now (the local runtime's own
    context class, which handlers get under `entrix local`)."""
    request_id = str(uuid.uuid4())
    return LambdaContext(
        function_name=function_name,
        function_version="$LATEST",
        invoked_function_arn=f"arn:aws:lambda:eu-west-1:123456789012:function:{function_name}",
        memory_limit_in_mb=512,
        aws_request_id=request_id,
        log_group_name=f"/aws/lambda/{function_name}",
        log_stream_name=f"test/[$LATEST]{request_id}",
        deadline=time.monotonic() + remaining_ms / 1000,
    )
