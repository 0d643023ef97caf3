"""A local API Gateway (REST, v1) that serves the routes the template defines.

moto's API Gateway runs no Lambda proxy integration and no authorizer, so this package does what
the deployed API does for this service, from the template's `AWS::ApiGateway::*` resources:

- `model`: the routes (`Resource`/`Method`, path parameters such as `{record_id}`, `ANY`),
  authorizers, request validators, stage, binary media types and gateway responses;
- `authorizer`: the method's Lambda authorizer, its cache and the evaluation of its policy;
- `proxy`: the AWS_PROXY event and the mapping of the function's reply (base64 bodies by
  `BinaryMediaTypes`), and the `GatewayResponse`s that shape every answer the gateway gives itself;
- `gateway`: one request through all of these (routing, the 10 MB body limit, required request
  parameters), with no HTTP server;
- `server`: the HTTP/1.1 server in front of it.

Refused when the API is read (`ApiConfigurationError` naming the resource), as the template does
not use them: TOKEN authorizers, integrations other than AWS_PROXY (MOCK included), greedy
`{name+}` path parts, stage variables.

Not emulated: throttling, usage plans and API keys, request body models, WAF, VTL mapping
templates beyond the `$context` variables of gateway responses.
"""

from entrix.local.apigateway.gateway import MAX_BODY_BYTES, ApiGateway
from entrix.local.apigateway.model import ApiConfigurationError, Authorizer, RestApi, Route
from entrix.local.apigateway.proxy import ApiRequest, ApiResponse
from entrix.local.apigateway.server import ApiServer

__all__ = [
    "MAX_BODY_BYTES",
    "ApiConfigurationError",
    "ApiGateway",
    "ApiRequest",
    "ApiResponse",
    "ApiServer",
    "Authorizer",
    "RestApi",
    "Route",
]
