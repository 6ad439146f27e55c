from __future__ import annotations

import pytest

from compiler.naming import is_dns_label, is_identifier, shorten


@pytest.mark.parametrize("name", ["a", "a-b", "0abc", "x" * 63])
def test_dns_labels(name: str) -> None:
    assert is_dns_label(name)


@pytest.mark.parametrize("name", ["", "-a", "a-", "A", "a_b", "a.b", "x" * 64, "é"])
def test_not_dns_labels(name: str) -> None:
    assert not is_dns_label(name)


@pytest.mark.parametrize(
    ("name", "ok"),
    [("x", True), ("_x1", True), ("1x", False), ("a-b", False), ("class", False), ("é", False)],
)
def test_identifiers(name: str, ok: bool) -> None:
    assert is_identifier(name) is ok


def test_shorten_keeps_short_names() -> None:
    assert shorten("abc", 52) == "abc"


def test_shorten_is_deterministic_and_distinct() -> None:
    a, b = "x" * 60 + "-one", "x" * 60 + "-two"
    assert shorten(a, 52) == shorten(a, 52)
    assert shorten(a, 52) != shorten(b, 52)
    assert len(shorten(a, 52)) <= 52
    assert is_dns_label(shorten(a, 52), 52)


def test_shorten_never_leaves_a_double_dash() -> None:
    name = "a" * 44 + "-" + "b" * 20
    short = shorten(name, 52)
    assert "--" not in short
    assert is_dns_label(short, 52)
