"""The step runner: runs one pipeline function inside its Argo pod.

The compiler embeds this file's text as the `source` of an Argo script template, so it must stay
stdlib-only, never import tender, run on any Python 3.8+, and never contain two opening braces in a
row (Argo would read them as a template tag). It reads the step from the `TENDER_STEP` environment
variable (JSON), calls the function, writes its outputs, and exits 0; on any failure it writes the
reason to stderr (the traceback for user code, then one `tender: <message>` line) and exits 1.

It runs before every step, so it imports only what a step needs (bench/README.md has its cost
over a bare interpreter): `json`, `typing`, `functools`, `importlib.util` and `traceback` each
cost the step milliseconds of imports (`json` pulls in `re` and `enum`). JSON goes through the C
scanner and encoder that `json` itself uses (`_json`), modules are loaded with the functions
`importlib.util` re-exports, and `traceback`, `shutil` and `site` are imported only when needed.
"""

from __future__ import annotations

import os
import sys

TYPE_CHECKING = False
if TYPE_CHECKING:  # the runner never imports typing at run time
    from collections.abc import Callable
    from typing import Any

    Step = dict[str, Any]
    # (kind, destination, payload): kind "value" carries JSON text, kind "file" a source path.
    Write = tuple[str, str, str]

_STEP_KEYS = ("function_path", "function_name", "code_dir", "inputs", "outputs", "max_value_bytes")
_PYTHON_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "number": (int, float),
    "boolean": (bool,),
    "array": (list,),
}
_JSON_SPACE = " \t\n\r"
_CONSTANTS = {"NaN": float("nan"), "Infinity": float("inf"), "-Infinity": float("-inf")}


class StepError(Exception):
    """A failure the runner reports as one `tender: <message>` line."""


class _JsonContext:
    """The settings `json.loads` hands the C scanner, by default."""

    strict = True
    object_hook = None
    object_pairs_hook = None
    parse_float = float
    parse_int = int
    parse_constant = _CONSTANTS.__getitem__


def _json_codec() -> tuple[Callable[[str], Any], Callable[[Any], str]]:
    """`json.loads` and `json.dumps(value, allow_nan=False)`, by the C code behind them."""
    try:
        from _json import encode_basestring_ascii, make_encoder, make_scanner
    except ImportError:  # another Python implementation: the json module itself
        import json

        return json.loads, lambda value: json.dumps(value, allow_nan=False)

    # typeshed types the context as a scanner; the C code reads only the attributes above.
    scan = make_scanner(_JsonContext())  # type: ignore[arg-type]

    def loads(text: str) -> Any:
        text = text.strip(_JSON_SPACE)
        try:
            value, end = scan(text, 0)
        except StopIteration:
            raise ValueError("expecting a JSON value") from None
        if end != len(text):
            raise ValueError(f"extra data at character {end}")
        return value

    def default(value: Any) -> Any:
        raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")

    # markers, default, encoder, indent, separators, sort_keys, skipkeys, allow_nan
    encode = make_encoder(
        {}, default, encode_basestring_ascii, None, ": ", ", ", False, False, False
    )

    def dumps(value: Any) -> str:
        return "".join(encode(value, 0))

    return loads, dumps


_loads, _dumps = _json_codec()


def _print_exception(exc: BaseException, skip_frames: int = 0) -> None:
    import traceback

    tb = exc.__traceback__
    for _ in range(skip_frames):
        tb = tb.tb_next if tb is not None else None
    traceback.print_exception(type(exc), exc, tb)


def _check_type(what: str, data_type: str, value: Any) -> None:
    """Refuse a value that does not match its declared type; never show the value itself."""
    if value is None or data_type == "json":
        return
    if data_type not in _PYTHON_TYPES:
        raise StepError(f"{what} has unknown data_type {data_type!r}")
    is_bool_number = data_type == "number" and isinstance(value, bool)
    if is_bool_number or not isinstance(value, _PYTHON_TYPES[data_type]):
        raise StepError(f"{what} is declared {data_type} but got {type(value).__name__}")


def _read_step() -> Step:
    text = os.environ.get("TENDER_STEP")
    if not text:
        raise StepError("the TENDER_STEP environment variable is not set")
    try:
        step: Step = _loads(text)
    except ValueError as exc:
        raise StepError(f"TENDER_STEP is not valid JSON: {exc}") from None
    missing = [key for key in _STEP_KEYS if key not in step]
    if missing:
        raise StepError(f"TENDER_STEP is missing {', '.join(missing)}")
    return step


def _prepare_paths(code_dir: str, deps_dir: str | None) -> None:
    """Put code_dir, then deps_dir (with its .pth files), at the front of sys.path."""
    if not os.path.isdir(code_dir):
        raise StepError(f"code_dir {code_dir!r} is not a folder")
    before = list(sys.path)
    if deps_dir and os.path.isdir(deps_dir):
        import site

        site.addsitedir(deps_dir)  # appends deps_dir and what its .pth files name
    added = [path for path in sys.path if path not in before]
    sys.path[:] = [code_dir, *added, *before]
    os.chdir(code_dir)


def _call_user(what: str, function: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Run user code; if it raises, print its traceback without the runner's own frame."""
    try:
        return function(*args, **kwargs)
    except (Exception, SystemExit) as exc:
        _print_exception(exc, skip_frames=1)
        raise StepError(f"{what} raised {type(exc).__name__}") from None


def _module_loader() -> tuple[Callable[..., Any], Callable[[Any], Any]]:
    """`spec_from_file_location` and `module_from_spec` without importing `importlib.util`."""
    try:
        from importlib._bootstrap import module_from_spec
        from importlib._bootstrap_external import spec_from_file_location
    except ImportError:
        from importlib.util import module_from_spec, spec_from_file_location
    return spec_from_file_location, module_from_spec


def _load_function(code_dir: str, function_path: str, function_name: str) -> Callable[..., Any]:
    file = os.path.realpath(os.path.join(code_dir, function_path))
    if os.path.commonpath([code_dir, file]) != code_dir:
        raise StepError(f"function_path {function_path!r} is outside code_dir {code_dir!r}")
    stem, extension = os.path.splitext(os.path.relpath(file, code_dir))
    if extension != ".py" or not os.path.isfile(file):
        raise StepError(f"function_path {function_path!r} is not a .py file in {code_dir!r}")
    # A dotted name registered before running the module lets pickle and dataclasses find it.
    module_name = stem.replace(os.sep, ".")
    if module_name in sys.modules:
        raise StepError(f"function_path {function_path!r} would shadow module {module_name!r}")
    spec_from_file_location, module_from_spec = _module_loader()
    spec = spec_from_file_location(module_name, file)
    if spec is None or spec.loader is None:
        raise StepError(f"cannot load {function_path!r}")
    module = module_from_spec(spec)
    sys.modules[module_name] = module
    _call_user(f"importing {function_path}", spec.loader.exec_module, module)
    function: Callable[..., Any] | None = getattr(module, function_name, None)
    if not callable(function):
        raise StepError(f"{function_path!r} has no function named {function_name!r}")
    return function


def _decode_env_input(entry: dict[str, Any]) -> tuple[bool, Any]:
    """Return (present, value) for an input passed through an environment variable, or (calls
    to a low-latency worker, see worker.py) as the entry's own ``text``."""
    name, data_type, env = entry["name"], entry["data_type"], entry["env"]
    text = entry["text"] if "text" in entry else os.environ.get(env)
    if text is None or (text == "" and entry["encoding"] == "json"):
        return False, None
    if entry["encoding"] == "raw" and data_type == "string":
        return True, text
    # A raw value is a user's environment variable: name it (never print its value), and
    # never the internal variable that carries it.
    source = f"environment variable {entry['variable']!r}" if "variable" in entry else None
    try:
        value = _loads(text)
    except ValueError:
        if source is None:
            raise StepError(f"input {name!r} ({data_type}) is not valid JSON") from None
        raise StepError(
            f"input {name!r} is a {data_type}, but {source}, which it is mapped from, "
            f"does not hold one (it is not valid JSON)"
        ) from None
    _check_type(f"input {name!r}" + (f" (from {source})" if source else ""), data_type, value)
    return True, value


def _decode_inputs(inputs: list[dict[str, Any]]) -> dict[str, Any]:
    kwargs: dict[str, Any] = {}
    for entry in inputs:
        if "path" in entry:
            if os.path.exists(entry["path"]):
                kwargs[entry["name"]] = {"path": os.path.abspath(entry["path"])}
            continue
        present, value = _decode_env_input(entry)
        if present:
            kwargs[entry["name"]] = value
    return kwargs


def _plan_file(name: str, value: Any, destination: str, code_dir: str) -> Write:
    path = value.get("path") if isinstance(value, dict) else None
    if not isinstance(path, str):
        raise StepError(f"file output {name!r} must be returned as a dict with a 'path' string")
    source = os.path.join(code_dir, path)  # the function may have changed its working folder
    if not os.path.exists(source):
        raise StepError(f"file output {name!r}: the returned path {path!r} does not exist")
    return ("file", destination, source)


def _encode_value(name: str, data_type: str, value: Any) -> str:
    _check_type(f"output {name!r}", data_type, value)
    try:
        return _dumps(value)
    except (TypeError, ValueError, RecursionError) as exc:
        raise StepError(f"output {name!r} is not JSON-serialisable: {exc}") from None


def _plan_outputs(step: Step, result: Any) -> list[Write]:
    """Validate the returned outputs completely, so that a failure writes nothing."""
    if result is None:
        result = {}
    if not isinstance(result, dict):
        raise StepError(f"the function must return a dict or None, not {type(result).__name__}")
    declared = {entry["name"]: entry for entry in step["outputs"]}
    undeclared = [key for key in result if key not in declared]
    if undeclared:
        names = ", ".join(repr(key) for key in undeclared)
        raise StepError(f"undeclared output {names}; declared outputs: {sorted(declared)}")
    writes: list[Write] = []
    for name, entry in declared.items():
        if entry["data_type"] == "file":
            if name in result:
                writes.append(_plan_file(name, result[name], entry["path"], step["code_dir"]))
        else:
            text = _encode_value(name, entry["data_type"], result.get(name))
            writes.append(("value", entry["path"], text))
    _check_size([text for kind, _, text in writes if kind == "value"], step["max_value_bytes"])
    return writes


def _check_size(texts: list[str], limit: int) -> None:
    total = sum(len(text.encode("utf-8")) for text in texts)
    if total > limit:
        raise StepError(
            f"non-file outputs total {total} bytes, over the limit of {limit} bytes "
            "(the 0.06 MB limit on non-file outputs); return large results as a file output"
        )


def _write_outputs(writes: list[Write]) -> None:
    for kind, destination, payload in writes:
        os.makedirs(os.path.dirname(destination) or ".", exist_ok=True)
        if kind == "value":
            with open(destination, "w", encoding="utf-8") as file:
                file.write(payload)  # no trailing newline: the file holds exactly the JSON text
            continue
        if os.path.realpath(payload) == os.path.realpath(destination):
            continue  # the function wrote straight to its output path
        import shutil

        if os.path.isdir(payload):
            shutil.copytree(payload, destination, dirs_exist_ok=True)
        else:
            shutil.copyfile(payload, destination)


def _run_step(step: Step) -> None:
    code_dir = os.path.realpath(step["code_dir"])
    step = {**step, "code_dir": code_dir}
    _prepare_paths(code_dir, step.get("deps_dir"))
    function = _load_function(code_dir, step["function_path"], step["function_name"])
    kwargs = _decode_inputs(step["inputs"])
    what = f"function {step['function_name']!r}"
    result = _call_user(what, function, **kwargs)
    _write_outputs(_plan_outputs(step, result))


def main() -> int:
    reconfigure = getattr(sys.stdout, "reconfigure", None)
    if reconfigure is not None:
        reconfigure(line_buffering=True)  # stream the user's prints to the pod log
    status = 1
    try:
        _run_step(_read_step())
        status = 0
    except StepError as exc:
        print(f"tender: {exc}", file=sys.stderr)
    except Exception as exc:
        _print_exception(exc)
        print(f"tender: internal error in the step runner: {exc!r}", file=sys.stderr)
    sys.stdout.flush()
    sys.stderr.flush()
    return status


if __name__ == "__main__":
    sys.exit(main())
