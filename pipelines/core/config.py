"""Config helpers shared by every pipeline: presets, field docs, overrides from text, JSON."""

from __future__ import annotations

import ast
import dataclasses
import functools
import inspect
import json
import textwrap
import types
import typing
from pathlib import Path
from typing import Any

PRESETS = ("tiny", "quick", "full")


def make_preset(config_cls: type, preset: str) -> Any:
    """`Config.tiny()`, `Config.quick()`, or the full preset: `Config.full()` if defined, else `Config()`."""
    if preset not in PRESETS:
        raise ValueError(f"Unknown preset {preset!r}: choose one of {', '.join(PRESETS)}.")
    factory = getattr(config_cls, preset, None)
    return factory() if factory is not None else config_cls()


@functools.cache
def field_docs(config_cls: type) -> dict[str, str]:
    """The string literal written under each field of a dataclass, keyed by field name.

    This is where a field's help lives (it becomes CLI help and the UI tooltip), so it is read from
    the class source rather than kept in a second place.
    """
    docs: dict[str, str] = {}
    for klass in reversed(config_cls.__mro__):
        if not dataclasses.is_dataclass(klass):
            continue
        try:
            tree = ast.parse(textwrap.dedent(inspect.getsource(klass)))
        except (OSError, TypeError, SyntaxError):
            continue
        body = tree.body[0].body if tree.body and isinstance(tree.body[0], ast.ClassDef) else []
        for node, nxt in zip(body, body[1:]):
            if (
                isinstance(node, ast.AnnAssign)
                and isinstance(node.target, ast.Name)
                and isinstance(nxt, ast.Expr)
                and isinstance(nxt.value, ast.Constant)
                and isinstance(nxt.value.value, str)
            ):
                docs[node.target.id] = " ".join(nxt.value.value.split())
    return docs


def _field_types(config_cls: type) -> dict[str, Any]:
    return typing.get_type_hints(config_cls)


def _parse_value(text: str, annotation: Any, name: str) -> Any:
    """Parse CLI text into the annotated type (int, float, bool, str, Path, tuples, optionals)."""
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin in (typing.Union, types.UnionType):
        non_none = [a for a in args if a is not type(None)]
        if text.lower() in ("none", "null", ""):
            return None
        return _parse_value(text, non_none[0], name)
    if origin is tuple:
        items = [t for t in text.replace(";", ",").split(",") if t.strip()]
        item_type = args[0] if args else str
        return tuple(_parse_value(t.strip(), item_type, name) for t in items)
    if annotation is bool:
        low = text.lower()
        if low in ("1", "true", "yes", "on"):
            return True
        if low in ("0", "false", "no", "off"):
            return False
        raise ValueError(f"--{name} expects true/false, got {text!r}.")
    if annotation in (int, float):
        try:
            return annotation(text)
        except ValueError as err:
            raise ValueError(f"--{name} expects a number ({annotation.__name__}), got {text!r}.") from err
    if annotation is Path:
        return Path(text)
    return text


def override(cfg: Any, values: dict[str, Any]) -> Any:
    """`dataclasses.replace` with unknown-field and type checks; string values are parsed."""
    types_ = _field_types(type(cfg))
    clean: dict[str, Any] = {}
    for key, value in values.items():
        name = key.replace("-", "_")
        if name not in types_:
            known = ", ".join(sorted(types_))
            raise ValueError(f"Unknown setting {key!r}. Known settings: {known}.")
        if isinstance(value, str) and types_[name] is not str:
            value = _parse_value(value, types_[name], name)
        clean[name] = value
    return dataclasses.replace(cfg, **clean)


def to_jsonable(value: Any) -> Any:
    """Configs, paths, tuples and numpy scalars as plain JSON values."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    if hasattr(value, "item") and callable(value.item) and getattr(value, "ndim", 1) == 0:
        return value.item()
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)


def config_json(cfg: Any) -> str:
    return json.dumps(to_jsonable(cfg), sort_keys=True)
