"""The documented limits of the order API, in one pydantic-free place the read path can import."""

# An order's identity: at most this many UTF-8 bytes (DynamoDB allows 2,048 for a partition key).
MAX_RECORD_ID_BYTES = 1024
# Characters; at most 4,000 UTF-8 bytes, so an item stays far below DynamoDB's 400 KB.
MAX_PARAMETER_1_CHARS = 1000
# Orders per POST /orders request.
MAX_ORDERS = 1000
# Lambda's synchronous payload limit is 6 MB (6,291,456 bytes) for the whole event. API Gateway
# hands the body over base64-encoded (a binary media type, so invalid UTF-8 reaches the handler
# as it was sent), 4/3 of its size: 4.5 MB of body is 6,000,000 bytes in the event, leaving room
# for the headers and request context, and still fits 1,000 orders of typical size.
MAX_BODY_BYTES = 4_500_000
# Stored orders expire (DynamoDB TTL on `expires_at`) this long after they were received.
TTL_SECONDS = 86_400
