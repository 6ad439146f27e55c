"""The step runner that every compiled pipeline step runs, shipped as source text."""

from __future__ import annotations

import functools
from importlib import resources

__all__ = ["runner_source"]


@functools.cache
def runner_source() -> str:
    """The text of `runner.py`, which the compiler embeds as an Argo script template's source."""
    return resources.files(__name__).joinpath("runner.py").read_text(encoding="utf-8")
