"""The one place that decides which object keys are acceptable.

Keys are relative, ``/``-separated paths (``pipelines/p/code.tar.gz``) that map one to one onto
files under a local root and onto S3 object keys, so they must be safe as both.
"""

from __future__ import annotations

import re

from gateway.storage.errors import InvalidKeyError

__all__ = ["MAX_KEY_BYTES", "TEMP_PREFIX", "check_key", "check_prefix"]

MAX_KEY_BYTES = 1024  # S3's limit on an object key
_MAX_SEGMENT_BYTES = 255  # a file name, on the file systems we write to
# Partly written files sit next to their final path under this prefix; no key may use it.
TEMP_PREFIX = ".tender-tmp-"
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def check_key(key: str) -> str:
    """Return ``key`` if it is a valid object key, else raise InvalidKeyError saying why."""
    problem = _key_problem(key)
    if problem:
        raise InvalidKeyError(f"storage key {key!r} {problem}")
    return key


def check_prefix(prefix: str) -> str:
    """A listing prefix: empty, or a key's folders followed by the start of a name."""
    folders, _, start = prefix.rpartition("/")
    problem = _key_problem(folders) if folders else None
    if problem is None and prefix.startswith("/"):
        problem = "must be relative"
    if problem is None and (_CONTROL.search(start) or "\\" in start):
        problem = "must not contain control characters or backslashes"
    if problem:
        raise InvalidKeyError(f"storage prefix {prefix!r} {problem}")
    return prefix


def _key_problem(key: str) -> str | None:
    segments = key.split("/")
    checks = (
        (not key, "is empty"),
        (len(key.encode()) > MAX_KEY_BYTES, f"is longer than {MAX_KEY_BYTES} bytes"),
        (_CONTROL.search(key) is not None, "must not contain control characters"),
        ("\\" in key, "must not contain backslashes"),
        (key.startswith("/"), "must be relative"),
        ("" in segments, "must not contain empty segments"),
        (any(s in (".", "..") for s in segments), "must not contain '.' or '..' segments"),
        (
            any(len(s.encode()) > _MAX_SEGMENT_BYTES for s in segments),
            f"has a segment longer than {_MAX_SEGMENT_BYTES} bytes",
        ),
        (any(s.startswith(TEMP_PREFIX) for s in segments), f"uses the reserved {TEMP_PREFIX!r}"),
    )
    return next((problem for failed, problem in checks if failed), None)
