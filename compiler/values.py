"""Values of the six data types: type checks and their encoding as Argo parameters."""

from __future__ import annotations

import json
import math
from enum import StrEnum
from typing import Any

__all__ = [
    "ABSENT",
    "MAX_DEPTH",
    "MAX_VALUE_BYTES",
    "DataType",
    "decode_parameter",
    "encode_parameter",
    "is_value_of_type",
    "json_problem",
    "value_problem",
]

# Non-file inputs (and outputs) of one execution are limited to 0.06 MB in total,
# as the platform documents (craft-ai-sdk core/pipeline_executions.py:41).
MAX_VALUE_BYTES = 60_000

# How deeply a value may nest lists and objects: deeper ones are refused before any code that
# recurses over them (json, pydantic's serializer stops at about 250) sees them.
MAX_DEPTH = 100

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


def value_problem(data_type: DataType, value: Any) -> str | None:
    """What is wrong with a value given for ``data_type``, worded to follow "input 'x' ", or
    None if nothing is. ``None`` is the caller's business (a null may be allowed)."""
    problem = json_problem(value)
    if problem is None and not is_value_of_type(data_type, value):
        problem = f"expects a {data_type}, got {type(value).__name__}"
    return problem


def json_problem(value: Any, max_depth: int = MAX_DEPTH, *, numbers: bool = True) -> str | None:
    """Why a decoded JSON value cannot be passed on, or None: nesting deeper than ``max_depth``
    or, with ``numbers``, a number JSON has no words for (NaN, infinities; ``1e999`` is read as
    infinity). Walked with a stack, so that a deep value costs no recursion."""
    pending = [(value, 1)]
    while pending:
        node, depth = pending.pop()
        if numbers and isinstance(node, float) and not math.isfinite(node):
            word = "NaN" if math.isnan(node) else ("Infinity" if node > 0 else "-Infinity")
            return f"holds {word}, which is not a number JSON can hold"
        if isinstance(node, dict | list):
            if depth > max_depth:
                return f"is nested deeper than {max_depth} levels"
            children = node.values() if isinstance(node, dict) else node
            pending.extend((child, depth + 1) for child in children)
    return None


def is_value_of_type(data_type: DataType, value: Any) -> bool:
    """Whether a decoded JSON value fits a non-file data type (``None`` never does)."""
    match data_type:
        case DataType.STRING:
            return isinstance(value, str)
        case DataType.NUMBER:
            return (
                isinstance(value, int | float)
                and not isinstance(value, bool)
                and math.isfinite(value)
            )
        case DataType.BOOLEAN:
            return isinstance(value, bool)
        case DataType.ARRAY:
            return isinstance(value, list) and json_problem(value) is None
        case DataType.JSON:
            return json_problem(value) is None and _is_json(value)
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
