from __future__ import annotations

from typing import Any

import pytest

from compiler.values import DataType, decode_parameter, encode_parameter, is_value_of_type


@pytest.mark.parametrize(
    "value",
    [
        "{{workflow.name}}",
        "{{=sprig.now()}}",
        {"a": {"b": "{{x}}"}},
        ["{", "{{{", "}}"],
        "é {{ü}}",
        0,
        None,
    ],
)
def test_encoding_hides_argo_tags_and_round_trips(value: Any) -> None:
    text = encode_parameter(value)
    assert "{{" not in text
    assert decode_parameter(text) == value


def test_encoding_refuses_nan() -> None:
    with pytest.raises(ValueError, match="Out of range"):
        encode_parameter(float("nan"))


@pytest.mark.parametrize(
    ("data_type", "value", "ok"),
    [
        (DataType.STRING, "s", True),
        (DataType.STRING, 1, False),
        (DataType.NUMBER, 1, True),
        (DataType.NUMBER, 1.5, True),
        (DataType.NUMBER, True, False),
        (DataType.BOOLEAN, False, True),
        (DataType.BOOLEAN, 0, False),
        (DataType.ARRAY, [1], True),
        (DataType.ARRAY, {"a": 1}, False),
        (DataType.JSON, {"a": [1, None]}, True),
        (DataType.JSON, "plain", True),
        (DataType.JSON, {1, 2}, False),
        (DataType.FILE, "x", False),
    ],
)
def test_value_types(data_type: DataType, value: Any, ok: bool) -> None:
    assert is_value_of_type(data_type, value) is ok
