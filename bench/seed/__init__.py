"""The baselines of the cold-request bench: the seed's handlers, and seed-style ones.

Each module is a handler written as the seed wrote its functions: boto3 imported at module
level, boto3 resources (a client for Secrets Manager) built at import time, nothing cached
beyond that. `auth_lambda` and `post_lambda` do the seed's work; `status_lambda`, `lambda_a`
and `lambda_b` are seed-style handlers for work the seed had no handler for in this shape,
making the same AWS calls as `entrix.handlers.order_status`, `.results` and `.process`. The bench
loads each one as Lambda would (this folder as the function's code, boto3 from the runtime,
PyJWT from the seed's layer), so nothing here may import `entrix`. Resources are typed `Any`:
seed code, not checked against the boto3 stubs.
"""
