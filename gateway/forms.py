"""Form bodies in the SDK's bracket notation, turned back into the JSON shape they came from.

``craft-ai-sdk`` 0.74.7 flattens the ``create_pipeline`` body with ``multipartify``
(``utils/file_utils.py``): nested dicts become ``a[b][c]``, lists ``a[0]``, ``a[1]``, every
scalar is sent as ``str(value)`` (``True``, ``1.5``; ``None`` as ``""``) and empty lists and
dicts are not sent at all. The round trip loses types, and this module restores what it can
(docs/craft-api.md section 3.4):

* ``""`` is null, except as the whole ``default_value`` of a ``string`` or ``json`` input: the
  SDK drops a ``None`` default before flattening, so an empty default can only be ``""``.
* ``is_required`` is ``True``/``False`` in any case.
* ``default_value`` follows its input's ``data_type``. Inside ``json`` and ``array`` defaults
  each leaf is read back as Python's ``str()`` wrote it: ``""`` null, ``True``/``False``
  booleans, JSON number literals numbers, anything else a string. So the strings ``"1"`` and
  ``"True"`` come back as ``1`` and ``True``, and a dict whose keys are ``"0"``, ``"1"``... as a
  list: the form cannot tell them apart, use a JSON body when it matters.
* A list or dict held directly in a list (``[[1, 2]]``) is not flattened by the SDK:
  ``requests`` sends a list's items as a repeated key in a urlencoded body, and the
  ``str()`` of the list or dict in a multipart one. A repeated key becomes a list, and a list
  item that reads as a Python list or dict literal becomes that value (``ast.literal_eval``,
  which evaluates nothing but literals). A one-item list in a list comes back as its item
  from a urlencoded body.
* Values that are not strings are left as they are, but strings are always read as form
  text: a JSON body goes to the model as it is, never through ``coerce_pipeline_form``.
"""

from __future__ import annotations

import ast
import math
import re
from collections.abc import Iterable, Mapping
from typing import Any

__all__ = ["FormError", "coerce_pipeline_form", "unflatten"]

# A name, then any number of [segment]; a segment holds no brackets and is not empty.
_KEY = re.compile(r"([^\[\]]+)((?:\[[^\[\]]+\])*)")
_SEGMENT = re.compile(r"\[([^\[\]]+)\]")
_INDEX = re.compile(r"0|[1-9][0-9]*")
# JSON number literals, the only numbers str() writes that JSON can hold (not inf or nan).
_INT = re.compile(r"-?(?:0|[1-9][0-9]*)")
_FLOAT = re.compile(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][-+]?[0-9]+)?")
MAX_DEPTH = 32

_LIST_FIELDS = ("included_folders", "system_dependencies")


class FormError(ValueError):
    """A form field whose name or value cannot be read; the message names the field."""


def unflatten(items: Iterable[tuple[str, str]]) -> dict[str, Any]:
    """Rebuild nested dicts and lists from ``(bracket key, text)`` pairs.

    A key given several times is a list of its values: that is how the SDK sends a list held
    directly in a list (``[[1, 2]]`` as ``a[0]=1&a[0]=2``; ``requests`` repeats the key).
    Raises FormError for a malformed key, a key that is both a value and a container, gaps in
    list indexes, and list indexes mixed with names at one level.
    """
    root: dict[str, Any] = {}
    for key, value in items:
        path = _parse_key(key)
        node = root
        for depth, segment in enumerate(path[:-1]):
            child = node.setdefault(segment, {})
            if not isinstance(child, dict):
                parent = _join(path[: depth + 1])
                raise FormError(f"form field {key!r} nests inside {parent!r}, which has a value")
            node = child
        previous = node.get(path[-1])
        if isinstance(previous, dict):
            raise FormError(f"form field {key!r} has a value and also nested fields")
        if previous is None:
            node[path[-1]] = value
        elif isinstance(previous, list):
            previous.append(value)
        else:
            node[path[-1]] = [previous, value]
    return {name: _listify(value, name) for name, value in root.items()}


def _parse_key(key: str) -> list[str]:
    match = _KEY.fullmatch(key)
    if match is None:
        raise FormError(f"malformed form field name {key!r}: expected name[key][0]...")
    path = [match.group(1), *_SEGMENT.findall(match.group(2))]
    if len(path) > MAX_DEPTH:
        raise FormError(f"form field {key!r} is nested deeper than {MAX_DEPTH} levels")
    return path


def _join(path: list[str]) -> str:
    return path[0] + "".join(f"[{segment}]" for segment in path[1:])


def _listify(node: Any, where: str) -> Any:
    """Turn each dict whose keys are all list indexes into a list, checking there are no gaps."""
    if not isinstance(node, dict):
        return node
    indexes = [k for k in node if _INDEX.fullmatch(k)]
    if indexes and len(indexes) != len(node):
        names = sorted(set(node) - set(indexes))
        raise FormError(
            f"form field {where!r} mixes list indexes with names ({', '.join(names[:3])})"
        )
    if not indexes:
        return {k: _listify(v, f"{where}[{k}]") for k, v in node.items()}
    order = sorted(int(i) for i in indexes)
    if order != list(range(len(order))):
        missing = next(i for i, n in enumerate(order) if i != n)
        raise FormError(f"form field {where!r} has no item {missing}: list indexes have gaps")
    return [_listify(node[str(i)], f"{where}[{i}]") for i in order]


def coerce_pipeline_form(data: Mapping[str, Any]) -> dict[str, Any]:
    """The ``compiler.models.Pipeline`` shape of an unflattened ``create_pipeline`` form."""
    result = {key: _nulls(value) for key, value in data.items() if key not in ("inputs", "steps")}
    if "inputs" in data:
        result["inputs"] = _coerce_inputs(data["inputs"], "inputs")
    if isinstance(config := result.get("container_config"), dict):
        # NULL sent as "" for a list field: no folders, rather than a null the model refuses.
        for field in _LIST_FIELDS:
            if field in config and config[field] is None:
                config[field] = []
    if "steps" in data:
        result["steps"] = _coerce_steps(data["steps"])
    return result


def _coerce_steps(steps: Any) -> Any:
    if not isinstance(steps, list):
        return _nulls(steps)
    return [_coerce_step(step, f"steps[{index}]") for index, step in enumerate(steps)]


def _coerce_step(step: Any, where: str) -> Any:
    if not isinstance(step, dict) or "inputs" not in step:
        return _nulls(step)
    rest = {k: _nulls(v) for k, v in step.items() if k != "inputs"}
    return {**rest, "inputs": _coerce_inputs(step["inputs"], f"{where}[inputs]")}


def _coerce_inputs(inputs: Any, where: str) -> Any:
    if not isinstance(inputs, list):
        return _nulls(inputs)
    return [_coerce_input(item, f"{where}[{i}]") for i, item in enumerate(inputs)]


def _coerce_input(item: Any, where: str) -> Any:
    if not isinstance(item, dict):
        return _nulls(item)
    result = {k: _nulls(v) for k, v in item.items() if k != "default_value"}
    if isinstance(required := item.get("is_required"), str) and required != "":
        result["is_required"] = _boolean(required, f"{where}[is_required]")
    if "default_value" in item:
        result["default_value"] = _default(item["default_value"], item.get("data_type"))
    return result


def _boolean(text: str, where: str) -> bool:
    lowered = text.lower()
    if lowered not in ("true", "false"):
        raise FormError(f"form field {where!r} must be True or False, not {text!r}")
    return lowered == "true"


def _default(value: Any, data_type: Any) -> Any:
    """A default value as its data type wants it; what does not fit is left for the model."""
    if not isinstance(value, str):
        return _leaves(value)
    match data_type:
        case "string":
            return value
        case "number":
            return _number(value) if value else None
        case "boolean":
            return {"true": True, "false": False}.get(value.lower(), value or None)
        case "json":
            return _leaf(value) if value else value
        case _:
            return value or None


def _leaves(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _leaves(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_element(v) if isinstance(v, str) else _leaves(v) for v in value]
    return _leaf(value) if isinstance(value, str) else value


def _element(text: str) -> Any:
    """A list item: a list, dict or None in a list held in a list arrives as its ``str()``."""
    if (text[:1], text[-1:]) in (("[", "]"), ("{", "}")):
        try:
            value = ast.literal_eval(text)
        except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
            return text
        if isinstance(value, list | dict) and _is_json(value):
            return value
    return None if text == "None" else _leaf(text)


def _is_json(value: Any) -> bool:
    """Whether a literal holds only what JSON can (no tuples, sets, bytes, complex, inf)."""
    if isinstance(value, dict):
        return all(isinstance(k, str) and _is_json(v) for k, v in value.items())
    if isinstance(value, list):
        return all(_is_json(v) for v in value)
    if isinstance(value, float):
        return math.isfinite(value)
    return value is None or isinstance(value, str | int)


def _leaf(text: str) -> Any:
    """Undo Python's ``str()`` for the values JSON can hold."""
    if text == "":
        return None
    if text in ("True", "False"):
        return text == "True"
    return _number(text)


def _number(text: str) -> Any:
    """The number ``text`` writes, or ``text`` itself when it is none JSON can hold."""
    try:
        if _INT.fullmatch(text):
            return int(text)  # ValueError beyond sys.get_int_max_str_digits()
        if _FLOAT.fullmatch(text) and math.isfinite(number := float(text)):
            return number
    except ValueError:
        pass
    return text


def _nulls(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _nulls(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_nulls(v) for v in value]
    return None if value == "" else value
