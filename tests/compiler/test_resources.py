"""Memory sizes as the SDK and Kubernetes write them."""

from __future__ import annotations

import pytest

from compiler import CompileError
from compiler.resources import memory_bytes


@pytest.mark.parametrize(
    ("text", "size"),
    [
        ("512MiB", 512 * 1024**2),
        ("1GiB", 1024**3),
        ("512Mi", 512 * 1024**2),
        ("1.5Gi", 3 * 512 * 1024**2),
        ("500MB", 500 * 1000**2),
        ("500M", 500 * 1000**2),
        ("2k", 2000),
        ("1024", 1024),
    ],
)
def test_sizes(text: str, size: int) -> None:
    assert memory_bytes(text) == size


@pytest.mark.parametrize("text", ["", "lots", "1XB", "-1Mi", "1i", "0", "0.1"])
def test_what_is_not_a_size(text: str) -> None:
    with pytest.raises(CompileError) as refused:
        memory_bytes(text)
    assert refused.value.field == "ram_request"
