from __future__ import annotations

import re

import pytest

from gateway.storage import InvalidKeyError, check_key, check_prefix


@pytest.mark.parametrize(
    "key",
    [
        "pipelines/p/code.tar.gz",
        "inputs/0b1c/doc",
        "executions/p-abc12/p/result",
        "datastore/some folder/a.b/ünïcode.csv",
        ".hidden/x",
        "a" * 255,
        "/".join(["a" * 200] * 5),
    ],
)
def test_accepts_relative_keys(key: str) -> None:
    assert check_key(key) == key


@pytest.mark.parametrize(
    ("key", "problem"),
    [
        ("", "is empty"),
        ("/etc/passwd", "must be relative"),
        ("../outside", "must not contain '.' or '..' segments"),
        ("a/../../outside", "must not contain '.' or '..' segments"),
        ("a/./b", "must not contain '.' or '..' segments"),
        ("a//b", "must not contain empty segments"),
        ("a/", "must not contain empty segments"),
        ("a\\..\\b", "must not contain backslashes"),
        ("a\x00b", "must not contain control characters"),
        ("a\nb", "must not contain control characters"),
        ("a" * 256, "has a segment longer than 255 bytes"),
        ("/".join(["a" * 250] * 5), "is longer than 1024 bytes"),
        ("a/.tender-tmp-x1", "uses the reserved '.tender-tmp-'"),
    ],
)
def test_refuses_keys_naming_the_problem(key: str, problem: str) -> None:
    with pytest.raises(InvalidKeyError, match=re.escape(f"storage key {key!r} {problem}")):
        check_key(key)


@pytest.mark.parametrize("prefix", ["", "pipelines/", "pipelines/p", "pipelines/p/code", "a/."])
def test_accepts_prefixes(prefix: str) -> None:
    assert check_prefix(prefix) == prefix


@pytest.mark.parametrize("prefix", ["/", "/a", "../", "a/../b", "a//", "a\\b", "a/\x00"])
def test_refuses_prefixes_that_could_leave_the_root(prefix: str) -> None:
    with pytest.raises(InvalidKeyError, match=re.escape(f"storage prefix {prefix!r}")):
        check_prefix(prefix)
