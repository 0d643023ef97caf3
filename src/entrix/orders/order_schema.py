"""The order model's validation schema: GENERATED from entrix.orders.model.Order.

Do not edit: `make order-schema` writes it again. pydantic's core schema, reduced to
what validation reads.
"""

from typing import Any

from entrix.orders.checks import dynamodb_number, record_id_bytes

SCHEMA: dict[str, Any] = {
    "type": "model-fields",
    "fields": {
        "record_id": {
            "type": "model-field",
            "schema": {
                "type": "function-after",
                "function": {
                    "type": "no-info",
                    "function": record_id_bytes,
                },
                "schema": {
                    "type": "str",
                    "strict": True,
                    "min_length": 1,
                    "max_length": 1024,
                },
            },
        },
        "parameter_1": {
            "type": "model-field",
            "schema": {
                "type": "str",
                "strict": True,
                "max_length": 1000,
            },
        },
        "parameter_2": {
            "type": "model-field",
            "schema": {
                "type": "function-plain",
                "function": {
                    "type": "no-info",
                    "function": dynamodb_number,
                },
            },
        },
    },
    "model_name": "Order",
}
CONFIG: dict[str, Any] = {
    "extra_fields_behavior": "forbid",
    "strict": True,
}
# The client's fields in model order; those with a default may be absent.
FIELDS: tuple[str, ...] = (
    "record_id",
    "parameter_1",
    "parameter_2",
)
OPTIONAL_FIELDS: frozenset[str] = frozenset()
