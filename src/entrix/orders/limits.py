"""The documented limits of the order API, in one pydantic-free place the read path can import."""

# An order's identity: at most this many UTF-8 bytes (DynamoDB allows 2,048 for a partition key).
MAX_RECORD_ID_BYTES = 1024
# Characters; at most 4,000 UTF-8 bytes, so an item stays far below DynamoDB's 400 KB.
MAX_PARAMETER_1_CHARS = 1000
# Orders per POST /orders request.
MAX_ORDERS = 1000
# Lambda's synchronous payload limit is 6 MB for the whole event (headers, JSON escaping of the
# body); 5 MB of body leaves room for that and fits 1,000 orders of typical size.
MAX_BODY_BYTES = 5_000_000
# Stored orders expire (DynamoDB TTL on `expires_at`) this long after they were received.
TTL_SECONDS = 86_400
