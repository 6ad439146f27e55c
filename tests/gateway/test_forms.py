from __future__ import annotations

import asyncio
from typing import Any
from urllib.parse import parse_qsl

import pytest
import requests
from craft_ai_sdk import CREATION_PARAMETER_VALUE, INPUT_OUTPUT_TYPES
from craft_ai_sdk import Input as SdkInput
from craft_ai_sdk import Output as SdkOutput
from craft_ai_sdk.core.pipelines import _prepare_create_pipeline_data
from craft_ai_sdk.utils.file_utils import multipartify
from starlette.requests import Request

from compiler.models import Pipeline
from gateway.forms import FormError, coerce_pipeline_form, unflatten


def sdk_form(data: dict[str, Any]) -> list[tuple[str, str]]:
    """What the server reads from create_pipeline's urlencoded body, as the SDK encodes it."""
    body = requests.Request("POST", "http://x/", data=multipartify(data)).prepare().body
    assert isinstance(body, str)
    return parse_qsl(body, keep_blank_values=True, strict_parsing=True)


def sdk_multipart_form(data: dict[str, Any]) -> list[tuple[str, str]]:
    """The text parts of the multipart body the SDK sends with a step_file, read by Starlette."""
    prepared = requests.Request(
        "POST", "http://x/", data=multipartify(data), files={"step_file": b"\x1f\x8b"}
    ).prepare()
    body = prepared.body
    assert isinstance(body, bytes)

    async def read() -> list[tuple[str, str]]:
        async def receive() -> dict[str, Any]:
            return {"type": "http.request", "body": body, "more_body": False}

        content_type = prepared.headers["Content-Type"]
        assert isinstance(content_type, str)
        headers = [(b"content-type", content_type.encode())]
        scope = {"type": "http", "method": "POST", "headers": headers}
        async with Request(scope, receive).form() as form:
            return [(k, v) for k, v in form.multi_items() if isinstance(v, str)]

    return asyncio.run(read())


def sdk_input(*args: Any, **kwargs: Any) -> Any:
    return SdkInput(*args, **kwargs)  # type: ignore[no-untyped-call]


def sdk_output(*args: Any, **kwargs: Any) -> Any:
    return SdkOutput(*args, **kwargs)  # type: ignore[no-untyped-call]


def create_pipeline_data(**kwargs: Any) -> dict[str, Any]:
    """The dict create_pipeline flattens, built by the SDK's own code."""
    arguments: dict[str, Any] = {
        "function_path": "src/f.py",
        "function_name": "f",
        "description": None,
        "container_config": {},
        "inputs": None,
        "outputs": None,
        "pipeline_name": "p1",
    }
    return dict(_prepare_create_pipeline_data(**{**arguments, **kwargs}))


def from_form(fields: list[tuple[str, str]]) -> Pipeline:
    return Pipeline.model_validate(coerce_pipeline_form(unflatten(fields)))


# --- unflatten ---------------------------------------------------------------------------


def test_unflatten_nests_dicts_and_lists() -> None:
    fields = [
        ("a", "1"),
        ("b[c]", "x"),
        ("b[d][0]", "y"),
        ("b[d][1]", "z"),
        ("e[0][f]", ""),
        ("e[1][g][0][h]", "True"),
    ]
    assert unflatten(fields) == {
        "a": "1",
        "b": {"c": "x", "d": ["y", "z"]},
        "e": [{"f": ""}, {"g": [{"h": "True"}]}],
    }


def test_unflatten_orders_list_items_by_index_not_arrival() -> None:
    assert unflatten([("a[1]", "second"), ("a[0]", "first")]) == {"a": ["first", "second"]}


def test_unflatten_keeps_leading_zero_segments_as_names() -> None:
    assert unflatten([("a[01]", "x")]) == {"a": {"01": "x"}}


def test_unflatten_keeps_top_level_digits_as_names() -> None:
    assert unflatten([("0", "x")]) == {"0": "x"}


@pytest.mark.parametrize(
    "key",
    ["", "[a]", "a[]", "a[b", "a]b", "a[b]c", "a[b[c]]", "a[[b]]", "a[b]]", "a[b][]"],
)
def test_unflatten_refuses_malformed_keys(key: str) -> None:
    with pytest.raises(FormError, match="malformed form field name") as caught:
        unflatten([(key, "v")])
    assert repr(key) in str(caught.value)


def test_unflatten_refuses_gaps_in_list_indexes() -> None:
    with pytest.raises(FormError, match=r"'inputs' has no item 1"):
        unflatten([("inputs[0][name]", "a"), ("inputs[2][name]", "b")])


def test_unflatten_refuses_a_list_not_starting_at_zero() -> None:
    with pytest.raises(FormError, match=r"'a\[b\]' has no item 0"):
        unflatten([("a[b][1]", "x")])


def test_unflatten_refuses_indexes_mixed_with_names() -> None:
    with pytest.raises(FormError, match=r"'a' mixes list indexes with names \(x\)"):
        unflatten([("a[0]", "1"), ("a[x]", "2")])


def test_unflatten_refuses_a_value_with_nested_fields() -> None:
    with pytest.raises(FormError, match=r"'a\[b\]' nests inside 'a', which has a value"):
        unflatten([("a", "1"), ("a[b]", "2")])
    with pytest.raises(FormError, match=r"'a' has a value and also nested fields"):
        unflatten([("a[b]", "2"), ("a", "1")])


def test_unflatten_reads_a_repeated_key_as_a_list() -> None:
    fields = [("a[0]", "1"), ("a[0]", "2"), ("a[0]", "3"), ("a[1]", "4")]
    assert unflatten(fields) == {"a": [["1", "2", "3"], "4"]}


def test_unflatten_refuses_a_repeated_key_with_nested_fields() -> None:
    with pytest.raises(FormError, match=r"'a\[0\]\[b\]' nests inside 'a\[0\]'"):
        unflatten([("a[0]", "1"), ("a[0]", "2"), ("a[0][b]", "3")])


def test_unflatten_refuses_deep_nesting() -> None:
    with pytest.raises(FormError, match="deeper than 32 levels"):
        unflatten([("a" + "[b]" * 40, "x")])


# --- coerce_pipeline_form: the fields of craft-api.md section 5.2 (a) ---------------------


SECTION_5_2_A = [
    ("pipeline_name", "p1"),
    ("function_path", "src/f.py"),
    ("function_name", "f"),
    ("description", "desc"),
    ("container_config[language]", "python:3.11-slim"),
    ("container_config[repository_url]", "git@github.com:org/repo.git"),
    ("container_config[repository_branch]", "main"),
    ("container_config[repository_deploy_key]", "-----BEGIN KEY-----"),
    ("container_config[requirements_path]", ""),
    ("container_config[included_folders][0]", "src"),
    ("container_config[included_folders][1]", "lib"),
    ("container_config[system_dependencies][0]", "libgomp1"),
    ("container_config[dockerfile_path]", "Dockerfile"),
    ("inputs[0][name]", "a"),
    ("inputs[0][data_type]", "number"),
    ("inputs[0][description]", "x"),
    ("inputs[0][is_required]", "True"),
    ("inputs[0][default_value]", "1.5"),
    ("inputs[1][name]", "j"),
    ("inputs[1][data_type]", "json"),
    ("inputs[1][default_value][k][0]", "1"),
    ("outputs[0][name]", "r"),
    ("outputs[0][data_type]", "number"),
    ("outputs[0][description]", "the result"),
]


def test_coerce_section_5_2_a_fields() -> None:
    assert coerce_pipeline_form(unflatten(SECTION_5_2_A)) == {
        "pipeline_name": "p1",
        "function_path": "src/f.py",
        "function_name": "f",
        "description": "desc",
        "container_config": {
            "language": "python:3.11-slim",
            "repository_url": "git@github.com:org/repo.git",
            "repository_branch": "main",
            "repository_deploy_key": "-----BEGIN KEY-----",
            "requirements_path": None,
            "included_folders": ["src", "lib"],
            "system_dependencies": ["libgomp1"],
            "dockerfile_path": "Dockerfile",
        },
        "inputs": [
            {
                "name": "a",
                "data_type": "number",
                "description": "x",
                "is_required": True,
                "default_value": 1.5,
            },
            {"name": "j", "data_type": "json", "default_value": {"k": [1]}},
        ],
        "outputs": [{"name": "r", "data_type": "number", "description": "the result"}],
    }
    Pipeline.model_validate(coerce_pipeline_form(unflatten(SECTION_5_2_A)))


@pytest.mark.parametrize("text", ["True", "true", "TRUE", "False", "false"])
def test_is_required_is_read_in_any_case(text: str) -> None:
    fields = [("inputs[0][name]", "a"), ("inputs[0][is_required]", text)]
    coerced = coerce_pipeline_form(unflatten(fields))
    assert coerced["inputs"][0]["is_required"] is (text.lower() == "true")


def test_is_required_refuses_other_text_naming_the_field() -> None:
    fields = [("inputs[0][name]", "a"), ("inputs[0][is_required]", "yes")]
    with pytest.raises(FormError, match=r"'inputs\[0\]\[is_required\]' must be True or False"):
        coerce_pipeline_form(unflatten(fields))


@pytest.mark.parametrize(
    ("data_type", "text", "expected"),
    [
        ("number", "1", 1),
        ("number", "-2", -2),
        ("number", "1.5", 1.5),
        ("number", "1e-05", 1e-05),
        ("number", "", None),
        ("number", "abc", "abc"),  # left for the model to refuse, with its message
        ("number", "1e999", "1e999"),  # inf: not a JSON number
        ("number", "9" * 5000, "9" * 5000),  # beyond int()'s digit limit
        ("boolean", "True", True),
        ("boolean", "false", False),
        ("boolean", "", None),
        ("string", "1.5", "1.5"),
        ("string", "True", "True"),
        ("string", "", ""),
        ("json", "True", True),
        ("json", "3", 3),
        ("json", "text", "text"),
        ("json", "", ""),
        ("array", "", None),
    ],
)
def test_default_value_follows_the_data_type(data_type: str, text: str, expected: Any) -> None:
    fields = [
        ("inputs[0][name]", "a"),
        ("inputs[0][data_type]", data_type),
        ("inputs[0][default_value]", text),
    ]
    default = coerce_pipeline_form(unflatten(fields))["inputs"][0]["default_value"]
    assert default == expected
    assert type(default) is type(expected)


def test_nested_default_leaves_are_read_back() -> None:
    fields = [
        ("inputs[0][name]", "a"),
        ("inputs[0][data_type]", "array"),
        ("inputs[0][default_value][0]", "1"),
        ("inputs[0][default_value][1]", "2.5"),
        ("inputs[0][default_value][2]", "True"),
        ("inputs[0][default_value][3]", ""),
        ("inputs[0][default_value][4]", "text"),
        ("inputs[0][default_value][5][x]", "False"),
        ("inputs[0][default_value][6]", "true"),  # only what str() writes is a boolean
        ("inputs[0][default_value][7]", "null"),
    ]
    default = coerce_pipeline_form(unflatten(fields))["inputs"][0]["default_value"]
    assert default == [1, 2.5, True, None, "text", {"x": False}, "true", "null"]


def test_empty_text_is_null_everywhere_else() -> None:
    fields = [
        ("pipeline_name", "p1"),
        ("description", ""),
        ("container_config[requirements_path]", ""),
        ("container_config[language]", ""),
        ("container_config[included_folders]", ""),
        ("container_config[system_dependencies]", ""),
        ("outputs[0][description]", ""),
        ("inputs[0][description]", ""),
        ("inputs[0][is_required]", ""),
    ]
    assert coerce_pipeline_form(unflatten(fields)) == {
        "pipeline_name": "p1",
        "description": None,
        "container_config": {
            "requirements_path": None,
            "language": None,
            "included_folders": [],
            "system_dependencies": [],
        },
        "outputs": [{"description": None}],
        "inputs": [{"description": None, "is_required": None}],
    }


def test_steps_inputs_are_coerced_like_pipeline_inputs() -> None:
    fields = [
        ("steps[0][name]", "s"),
        ("steps[0][description]", ""),
        ("steps[0][inputs][0][name]", "a"),
        ("steps[0][inputs][0][data_type]", "number"),
        ("steps[0][inputs][0][is_required]", "False"),
        ("steps[0][inputs][0][default_value]", "3"),
    ]
    assert coerce_pipeline_form(unflatten(fields))["steps"] == [
        {
            "name": "s",
            "description": None,
            "inputs": [
                {"name": "a", "data_type": "number", "is_required": False, "default_value": 3}
            ],
        }
    ]


def test_typed_values_are_left_alone() -> None:
    typed = {
        "pipeline_name": "p1",
        "inputs": [
            {"name": "a", "data_type": "number", "is_required": True, "default_value": 2},
            {"name": "b", "data_type": "json", "default_value": {"k": [1, None, 2.5]}},
        ],
        "container_config": {"included_folders": ["src"]},
    }
    assert coerce_pipeline_form(typed) == typed


# --- round trips through the SDK's own flattening and requests' encoding ------------------


def every_type_inputs() -> list[Any]:
    return [
        sdk_input("n", INPUT_OUTPUT_TYPES.NUMBER, description="a number", default_value=3),
        sdk_input("x", INPUT_OUTPUT_TYPES.NUMBER, is_required=False, default_value=-0.25),
        sdk_input("s", INPUT_OUTPUT_TYPES.STRING, is_required=True, default_value="hello world"),
        sdk_input("b", INPUT_OUTPUT_TYPES.BOOLEAN, default_value=False),
        sdk_input(
            "j", "json", default_value={"k": [1, 2.5, None, True], "name": "v", "o": {"z": 0}}
        ),
        sdk_input("l", "array", default_value=[[1, 2], {"a": "text"}, False]),
        sdk_input("f", INPUT_OUTPUT_TYPES.FILE, description="a file"),
        sdk_input("e", "string", default_value=""),
    ]


def every_type_outputs() -> list[Any]:
    return [sdk_output("r", "number", description="result"), sdk_output("fo", "file")]


ROUND_TRIP_CONFIGS: list[dict[str, Any]] = [
    {},
    {"language": "python:3.12-slim", "requirements_path": "requirements.txt"},
    {
        "included_folders": ["src", "lib/x"],
        "system_dependencies": ["curl"],
        "requirements_path": CREATION_PARAMETER_VALUE.NULL,
        "language": CREATION_PARAMETER_VALUE.FALLBACK_PROJECT,
        "local_folder": "/somewhere",
    },
    {
        "repository_url": "https://example.com/r.git",
        "repository_branch": "main",
        "repository_deploy_key": "key",
    },
]


@pytest.mark.parametrize("encode", [sdk_form, sdk_multipart_form])
@pytest.mark.parametrize("container_config", ROUND_TRIP_CONFIGS)
def test_sdk_round_trip_keeps_the_pipeline(encode: Any, container_config: dict[str, Any]) -> None:
    data = create_pipeline_data(
        description="does things",
        container_config=container_config,
        inputs=every_type_inputs(),
        outputs=every_type_outputs(),
    )
    assert from_form(encode(data)) == Pipeline.model_validate(data)


def test_sdk_round_trip_of_a_minimal_pipeline() -> None:
    data = create_pipeline_data(inputs=[], outputs=[])
    assert from_form(sdk_form(data)) == Pipeline.model_validate(data)
    assert from_form(sdk_form(data)).inputs == []


def test_sdk_round_trip_loses_types_only_inside_json_defaults() -> None:
    """The documented losses: digit strings and digit-keyed dicts inside json defaults."""
    data = create_pipeline_data(
        inputs=[sdk_input("j", "json", default_value={"code": "007", "v": "1", "d": {"0": "a"}})]
    )
    assert from_form(sdk_form(data)).inputs[0].default_value == {
        "code": "007",
        "v": 1,
        "d": ["a"],
    }


def test_sdk_round_trip_drops_empty_containers() -> None:
    data = create_pipeline_data(
        inputs=[sdk_input("j", "json", default_value={"empty": {}, "none": [], "k": 1})]
    )
    assert from_form(sdk_form(data)).inputs[0].default_value == {"k": 1}


@pytest.mark.parametrize("encode", [sdk_form, sdk_multipart_form])
def test_sdk_round_trip_of_lists_in_lists(encode: Any) -> None:
    nested = [[{"a": 1}, 2, "t"], [True, None, 1.5], {"k": [[0, "x"]]}]
    data = create_pipeline_data(inputs=[sdk_input("l", "array", default_value=nested)])
    assert from_form(encode(data)).inputs[0].default_value == nested


def test_sdk_round_trip_of_a_one_item_list_in_a_list() -> None:
    """Urlencoded, the inner list's one item is sent as the list itself would be."""
    data = create_pipeline_data(inputs=[sdk_input("l", "array", default_value=[[7], 8])])
    assert from_form(sdk_form(data)).inputs[0].default_value == [7, 8]
    assert from_form(sdk_multipart_form(data)).inputs[0].default_value == [[7], 8]


def test_list_items_that_are_not_literals_stay_text() -> None:
    fields = [
        ("inputs[0][name]", "a"),
        ("inputs[0][data_type]", "array"),
        ("inputs[0][default_value][0]", "[not a literal"),
        ("inputs[0][default_value][1]", "[__import__('os')]"),
        ("inputs[0][default_value][2]", "{1, 2}"),
        ("inputs[0][default_value][3]", "[1j, b'x']"),
        ("inputs[0][default_value][4]", "[(1, 2)]"),
        ("inputs[0][default_value][5]", "{1: 'x'}"),
        ("inputs[0][default_value][6]", "[1e999]"),
    ]
    default = coerce_pipeline_form(unflatten(fields))["inputs"][0]["default_value"]
    assert default == [text for _, text in fields[2:]]
