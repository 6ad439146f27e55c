"""The pipelines' code, written as users keep it: a local folder, or the SDK's tar.gz of one."""

from __future__ import annotations

import io
import tarfile
import textwrap
from pathlib import Path

from craft_ai_sdk import INPUT_OUTPUT_TYPES as T
from craft_ai_sdk.io import Input, Output

__all__ = [
    "DEFAULTS",
    "ECHO",
    "FAIL",
    "GATED",
    "MAPPED",
    "OPTIONAL",
    "REVERSE",
    "TINY_PACKAGE",
    "USES_PACKAGE",
    "echo_files",
    "gated_package",
    "tar_gz",
    "write_folder",
]

# One function per file; each is `src/<name>.py` in the pipeline's folder.
ECHO = """
from lib.helper import shout


def echo(text, number, flag, data, items, document):
    print(f"echo got {text!r}")
    with open(document["path"], "rb") as source:
        content = source.read()
    with open("reversed.bin", "wb") as out:
        out.write(content[::-1])
    return {
        "text": shout(text),
        "number": number * 2,
        "flag": not flag,
        "data": {"got": data},
        "items": [*items, len(items)],
        "document": {"path": "reversed.bin"},
    }
"""
HELPER = """
def shout(text):
    return text.upper() + "!"
"""
REVERSE = """
def reverse(document):
    with open(document["path"], "rb") as source:
        content = source.read()
    with open("reversed.bin", "wb") as out:
        out.write(content[::-1])
    return {"size": len(content), "reversed": {"path": "reversed.bin"}}
"""
MAPPED = """
def describe(label, count, flag, extra):
    return {"seen": {"label": label, "count": count, "flag": flag, "extra": extra}, "dropped": 1}
"""
DEFAULTS = """
def defaults(**given):
    return {"seen": given}
"""
OPTIONAL = """
def maybe(document=None, note="the function's default"):
    return {"had_file": document is not None, "note": note}
"""
FAIL = """
def fail(reason):
    print("about to fail")
    raise RuntimeError(reason)
"""
# Waits until the test creates `release` (a path on this machine), so that an execution is
# still running when the test needs it to be, without guessing how long anything takes.
GATED = """
import os
import time


def gated(release, number):
    waited = 0.0
    while not os.path.exists(release) and waited < 120:
        time.sleep(0.02)
        waited += 0.02
    return {"doubled": number * 2}
"""
USES_PACKAGE = """
import tinyhelper


def greet():
    return {"greeting": tinyhelper.GREETING}
"""

# A package that pip builds and installs offline: a PEP 517 in-tree backend with no build
# requirements, so that build isolation has nothing to download.
TINY_PACKAGE = {
    "pkg/pyproject.toml": """
        [build-system]
        requires = []
        build-backend = "backend"
        backend-path = ["."]
    """,
    "pkg/tinyhelper/__init__.py": """
        GREETING = "hello from tinyhelper"
    """,
    "pkg/backend.py": '''
        """Builds the tinyhelper wheel with the standard library only."""
        import base64
        import hashlib
        import os
        import zipfile

        NAME, VERSION = "tinyhelper", "0.1.0"
        DIST = NAME + "-" + VERSION


        def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
            here = os.path.dirname(os.path.abspath(__file__))
            with open(os.path.join(here, NAME, "__init__.py"), "rb") as source:
                files = {NAME + "/__init__.py": source.read()}
            info = DIST + ".dist-info/"
            files[info + "METADATA"] = (
                "Metadata-Version: 2.1\\nName: " + NAME + "\\nVersion: " + VERSION + "\\n"
            ).encode()
            files[info + "WHEEL"] = (
                b"Wheel-Version: 1.0\\nGenerator: backend\\nRoot-Is-Purelib: true\\n"
                b"Tag: py3-none-any\\n"
            )
            record = []
            for path, data in files.items():
                digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=")
                record.append(path + ",sha256=" + digest.decode() + "," + str(len(data)))
            record.append(info + "RECORD,,")
            files[info + "RECORD"] = ("\\n".join(record) + "\\n").encode()
            wheel = DIST + "-py3-none-any.whl"
            with zipfile.ZipFile(os.path.join(wheel_directory, wheel), "w") as archive:
                for path, data in files.items():
                    archive.writestr(path, data)
            return wheel
    ''',
}


def gated_package(release: Path) -> dict[str, str]:
    """TINY_PACKAGE, whose build waits until ``release`` exists: a creation held pending."""
    wait = f"""
        import os as _os
        import time as _time

        _waited = 0.0
        while not _os.path.exists({str(release)!r}) and _waited < 120:
            _time.sleep(0.02)
            _waited += 0.02
    """
    backend = textwrap.dedent(TINY_PACKAGE["pkg/backend.py"]) + textwrap.dedent(wait)
    return {**TINY_PACKAGE, "pkg/backend.py": backend}


def write_folder(root: Path, files: dict[str, str]) -> Path:
    """Write ``{relative path: source}`` under ``root`` (sources are dedented) and return it."""
    for relative, text in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return root


def echo_files() -> dict[str, str]:
    return {"src/echo.py": ECHO, "lib/__init__.py": "", "lib/helper.py": HELPER}


def tar_gz(files: dict[str, bytes]) -> bytes:
    """A gzip tar with these regular files, named as given (the SDK's ``step_file``)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, content in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(content)
            tar.addfile(info, io.BytesIO(content))
    return buffer.getvalue()


# The echo pipeline's declarations: one input and one output of every data type.
ECHO_INPUTS = [
    Input("text", T.STRING),
    Input("number", T.NUMBER),
    Input("flag", T.BOOLEAN),
    Input("data", T.JSON),
    Input("items", T.ARRAY),
    Input("document", T.FILE),
]
ECHO_OUTPUTS = [
    Output("text", T.STRING),
    Output("number", T.NUMBER),
    Output("flag", T.BOOLEAN),
    Output("data", T.JSON),
    Output("items", T.ARRAY),
    Output("document", T.FILE),
]
