"""`depends`, `when`, `{{...}}` substitution and durations."""

from __future__ import annotations

import pytest

from gateway.engines.local.depends import DependencyState, parse_depends
from gateway.engines.local.durations import parse_duration
from gateway.engines.local.templating import UnresolvedTagError, substitute, substitute_all
from gateway.engines.local.when import evaluate_when

S = DependencyState


@pytest.mark.parametrize(
    ("expression", "states", "expected"),
    [
        ("A", {"A": S("Succeeded")}, True),
        ("A", {"A": S("Skipped")}, True),
        ("A", {"A": S("Failed")}, False),
        ("A", {"A": S("Omitted")}, False),
        ("A && B", {"A": S("Succeeded"), "B": S("Failed")}, False),
        ("A || B", {"A": S("Succeeded"), "B": S("Failed")}, True),
        ("A.Failed", {"A": S("Failed")}, True),
        ("A.Errored", {"A": S("Error")}, True),
        ("!A.Succeeded", {"A": S("Error")}, True),
        ("A && (C.Succeeded || C.Failed)", {"A": S("Succeeded"), "C": S("Failed")}, True),
        ("A.AnySucceeded", {"A": S("Failed", ["Failed", "Succeeded"])}, True),
        ("A.AllFailed", {"A": S("Failed", ["Failed", "Failed"])}, True),
        (
            "should-execute-2.Succeeded || x",
            {"should-execute-2": S("Succeeded"), "x": S("Omitted")},
            True,
        ),
    ],
)
def test_depends(expression: str, states: dict[str, DependencyState], expected: bool) -> None:
    parsed = parse_depends(expression)
    assert parsed.tasks == frozenset(states)
    assert parsed.evaluate(states) is expected


@pytest.mark.parametrize("expression", ["A &&", "(A", "A.Nope", "A B", "&& A"])
def test_bad_depends(expression: str) -> None:
    with pytest.raises(ValueError):  # noqa: PT011
        parse_depends(expression)


def test_failure_handled_by_explicit_result() -> None:
    assert parse_depends("A && (C.Succeeded || C.Failed)").explicit == frozenset({"C"})


@pytest.mark.parametrize(
    ("condition", "expected"),
    [
        ("heads == heads", True),
        ("tails == heads", False),
        ("Failed != Succeeded", True),
        ("true == true", True),
        ("5 > 3", True),
        ("10 < 9", False),
        ("2 >= 2.0", True),
        ("'a b' == 'a b'", True),
        ('"x" != "y" && (1 == 1 || a == b)', True),
        ("!(1 == 1)", False),
        ("hello =~ '^h.*o$'", True),
        ("hello !~ '^x'", True),
    ],
)
def test_when(condition: str, expected: bool) -> None:
    assert evaluate_when(condition) is expected


@pytest.mark.parametrize("condition", ["heads", "1 <", "a > b", "(1 == 1"])
def test_bad_when(condition: str) -> None:
    with pytest.raises(ValueError):  # noqa: PT011
        evaluate_when(condition)


def test_substitute() -> None:
    scope = {"inputs.parameters.x": "1", "workflow.name": "wf"}
    assert substitute("{{inputs.parameters.x}}-{{ workflow.name }}", scope) == "1-wf"
    with pytest.raises(UnresolvedTagError, match=r"tasks\.a\.outputs\.result"):
        substitute("{{tasks.a.outputs.result}}", scope)
    assert substitute("{{nope}}", scope, strict=False) == "{{nope}}"
    nested = substitute_all(
        {"a": ["{{workflow.name}}", 3], "b": {"c": "{{inputs.parameters.x}}"}}, scope
    )
    assert nested == {"a": ["wf", 3], "b": {"c": "1"}}


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("30", 30.0), (5, 5.0), ("1m", 60.0), ("1h30m", 5400.0), ("1.5s", 1.5), ("200ms", 0.2)],
)
def test_durations(text: str | int, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


def test_bad_duration() -> None:
    with pytest.raises(ValueError, match="invalid duration"):
        parse_duration("1d")
