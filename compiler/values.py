"""Values of the six data types: type checks and their encoding as Argo parameters."""

from __future__ import annotations

import json
from enum import StrEnum
from typing import Any

__all__ = [
    "ABSENT",
    "MAX_VALUE_BYTES",
    "DataType",
    "decode_parameter",
    "encode_parameter",
    "is_value_of_type",
]

# Non-file inputs (and outputs) of one execution are limited to 0.06 MB in total,
# as the platform documents (craft-ai-sdk core/pipeline_executions.py:41).
MAX_VALUE_BYTES = 60_000

# The parameter value that means "no value given": the step runner then omits the
# keyword argument so that the function's own default applies. JSON text is never empty.
ABSENT = ""


class DataType(StrEnum):
    STRING = "string"
    NUMBER = "number"
    BOOLEAN = "boolean"
    JSON = "json"
    ARRAY = "array"
    FILE = "file"


def is_value_of_type(data_type: DataType, value: Any) -> bool:
    """Whether a decoded JSON value fits a non-file data type (``None`` never does)."""
    match data_type:
        case DataType.STRING:
            return isinstance(value, str)
        case DataType.NUMBER:
            return isinstance(value, int | float) and not isinstance(value, bool)
        case DataType.BOOLEAN:
            return isinstance(value, bool)
        case DataType.ARRAY:
            return isinstance(value, list)
        case DataType.JSON:
            return _is_json(value)
        case DataType.FILE:
            return False


def _is_json(value: Any) -> bool:
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError):
        return False
    return True


def encode_parameter(value: Any) -> str:
    """JSON text that Argo passes through unchanged.

    Argo expands every ``{{...}}`` in a parameter value, and has no escape for it. In
    ``json.dumps`` output two braces in a row can only occur inside a string literal, where
    ``\\u007b`` is an equivalent JSON escape: the decoded value is the same, Argo sees no tag.
    """
    text = json.dumps(value, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    return text.replace("{{", "\\u007b\\u007b")


def decode_parameter(text: str) -> Any:
    return json.loads(text)
