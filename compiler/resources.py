"""Resource quantities of low-latency deployments: ``ram_request`` in bytes.

The SDK documents sizes like ``"512MiB"`` or ``"1GiB"``; Kubernetes writes ``512Mi`` and ``1G``.
Both are read, so that the value can become a container's ``resources.limits.memory`` as it is.
"""

from __future__ import annotations

import re

from compiler.errors import CompileError

__all__ = ["memory_bytes"]

_QUANTITY = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kKMGTP]?)(i?)B?\s*$")
_POWERS = {"": 0, "K": 1, "M": 2, "G": 3, "T": 4, "P": 5}


def memory_bytes(text: str, field: str = "ram_request") -> int:
    """``512MiB``, ``512Mi`` (binary), ``500MB``, ``500M`` (decimal), or a number of bytes.

    Raises CompileError for anything else, or for less than one byte.
    """
    match = _QUANTITY.match(text)
    if match is None:
        raise CompileError(
            field,
            "memory_quantity",
            f"{text!r} is not a memory size: write it like 512MiB, 1GiB, 512Mi or 500MB",
        )
    number, prefix, binary = match.groups()
    if binary and not prefix:
        raise CompileError(field, "memory_quantity", f"{text!r} has no unit before 'i'")
    size = int(float(number) * (1024 if binary else 1000) ** _POWERS[prefix.upper()])
    if size < 1:
        raise CompileError(field, "memory_quantity", f"{text!r} is less than one byte")
    return size
