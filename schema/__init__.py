"""The GraphQL surface: Strawberry types, inputs, enums, root operations, error codes.

The executable schema lives in ``schema.schema`` (``from schema.schema import schema``).
"""
