"""Splitting Argo's small expression languages (`depends`, `when`) into their items."""

from __future__ import annotations

import re

__all__ = ["split_items"]


def split_items(pattern: re.Pattern[str], text: str, language: str) -> list[str]:
    """The successive first groups of ``pattern`` across ``text``; anything else is an error."""
    items, position, end = [], 0, len(text.rstrip())
    while position < end:
        match = pattern.match(text, position)
        if match is None:
            raise ValueError(f"invalid {language} expression {text!r}")
        items.append(match.group(1))
        position = match.end()
    return items
