"""Where a step's declared paths live on the laptop.

Steps of concurrent workflows share one file system, so an absolute path declared in a template
(an input or output artifact's `path`, an output parameter's `valueFrom.path`) cannot be used as
is. Each declared path P is remapped to `<node workdir>/root/P`, and every occurrence of P in the
step's command, args, script source and env values is rewritten to that location. An occurrence
counts only when P stands alone as a path: `/tmp/a` is rewritten in `cat /tmp/a` and in
`/tmp/a/b`, not in `/tmp/ab` or `/x/tmp/a`. `{{inputs.artifacts.<a>.path}}`,
`{{outputs.parameters.<p>.path}}` and `{{outputs.artifacts.<a>.path}}` resolve to the remapped path.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path, PurePosixPath

__all__ = ["PathMap"]


class PathMap:
    def __init__(self, root: Path, declared: Iterable[str]) -> None:
        self.root = root
        self._paths = sorted(
            {str(PurePosixPath(path)) for path in declared if path}, key=len, reverse=True
        )
        self._pattern = (
            re.compile(
                r"(?<![\w./-])("
                + "|".join(re.escape(path) for path in self._paths)
                + r")(?![\w.-])"
            )
            if self._paths
            else None
        )

    @property
    def declared(self) -> list[str]:
        return list(self._paths)

    def local(self, declared: str) -> Path:
        """The real location of a declared path (relative paths are taken from `/`)."""
        return self.root / str(PurePosixPath("/", declared)).lstrip("/")

    def rewrite(self, text: str) -> str:
        if self._pattern is None:
            return text
        return self._pattern.sub(lambda match: str(self.local(match.group(1))), text)
