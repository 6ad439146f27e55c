"""The README's table names every public method of the SDK this gateway serves, once."""

from __future__ import annotations

import re
from pathlib import Path

from craft_ai_sdk import CraftAiSdk

README = Path(__file__).resolve().parents[2] / "README.md"
_ROW = re.compile(r"^\| `(\w+)` \| (supported|with differences|not provided(?: here)?) \|(.*)\|$")


def test_the_readme_table_covers_every_public_method_of_the_sdk() -> None:
    rows = [_ROW.match(line) for line in README.read_text(encoding="utf-8").splitlines()]
    found = [row.group(1) for row in rows if row]
    public = sorted(name for name in dir(CraftAiSdk) if not name.startswith("_"))
    assert sorted(found) == public
    assert len(found) == len(set(found))
    for row in rows:
        if row and row.group(2) != "supported":
            assert row.group(3).strip(), f"{row.group(1)}: say what differs, or why not"
