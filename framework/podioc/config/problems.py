"""Every problem pydantic found in a config, as lines naming the field path and the fix."""

from __future__ import annotations

import difflib
import types
import typing
from collections.abc import Mapping, Sequence
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError
from pydantic.fields import FieldInfo

from ..errors import ConfigError, Problem
from .hints import ERROR_TYPE, Hint

M = TypeVar("M", bound=BaseModel)

#: pydantic error types -> our wording, for fields without a :class:`Hint`.
_WORDING = {
    "string_type": "must be a string",
    "int_type": "must be a whole number",
    "float_type": "must be a number",
    "bool_type": "must be true or false",
    "dict_type": "must be a mapping",
    "model_type": "must be a mapping",
    "model_attributes_type": "must be a mapping",
    "list_type": "must be a list",
}


def validate(model: type[M], data: Any, source: str, prefix: str = "") -> M:
    """``model`` validated from ``data``; :class:`ConfigError` with every problem if not.

    ``prefix`` is the field path of ``data`` in the file (e.g. ``autosave``).
    """
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ConfigError.of(source, problems_of(exc, model, prefix)) from None


def problems_of(exc: ValidationError, model: type[BaseModel], prefix: str = "") -> list[Problem]:
    """One :class:`Problem` per distinct error, in the order pydantic found them."""
    out: list[Problem] = []
    for error in exc.errors():
        loc = tuple(part for part in error["loc"] if part != "[key]")
        found = Problem(field_path(prefix, loc), *_explain(error, model, loc))
        if found not in out:
            out.append(found)
    return out


def field_path(prefix: str, loc: Sequence[str | int]) -> str:
    """``autosave`` + ``("pvs", 2)`` -> ``autosave.pvs[2]``; the empty path is ``<top level>``."""
    path = prefix
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            path += f".{part}" if path else str(part)
    return path or "<top level>"


def _explain(error: Mapping[str, Any], model: type[BaseModel],
             loc: tuple[str | int, ...]) -> tuple[str, str]:
    kind = error["type"]
    if kind == ERROR_TYPE:
        ctx = error.get("ctx") or {}
        return str(ctx.get("problem", error["msg"])), str(ctx.get("fix", ""))
    if kind == "missing":
        info = _field(model, loc)
        hint = next((m for m in info.metadata if isinstance(m, Hint)), None) if info else None
        if hint is not None:
            return hint.message(None), hint.fix
        return "missing", f"add '{loc[-1]}:'" if loc else ""
    if kind == "extra_forbidden":
        parent = _model_at(model, loc[:-1])
        known = [f.alias or name for name, f in parent.model_fields.items()] if parent else []
        close = difflib.get_close_matches(str(loc[-1]), known, n=1)
        text = "unknown setting" + (f"; did you mean {close[0]!r}?" if close else "")
        return text, f"known settings: {', '.join(known)}" if known else ""
    wording = _WORDING.get(kind, str(error["msg"]).replace("Input should", "should"))
    return f"{error.get('input')!r}: {wording}", ""


def _field(model: type[BaseModel], loc: tuple[str | int, ...]) -> FieldInfo | None:
    parent = _model_at(model, loc[:-1]) if loc else None
    if parent is None:
        return None
    return next((f for name, f in parent.model_fields.items()
                 if (f.alias or name) == loc[-1]), None)


def _model_at(model: type[BaseModel], loc: tuple[str | int, ...]) -> type[BaseModel] | None:
    """The model class that validates the value at ``loc``, if one does."""
    current: Any = model
    for part in loc:
        found = _as_model(current)
        if found is not None:
            info = next((f for name, f in found.model_fields.items()
                         if (f.alias or name) == part), None)
            if info is None:
                return None
            current = info.annotation
            continue
        args = [a for a in typing.get_args(_unwrap(current)) if a is not type(None)]
        origin = typing.get_origin(_unwrap(current))
        if origin in (list, tuple) and args:
            current = args[0]
        elif origin is dict and len(args) == 2:
            current = args[1]
        else:
            return None
    return _as_model(current)


def _unwrap(annotation: Any) -> Any:
    """Strip ``Annotated[...]`` and ``X | None``."""
    while typing.get_origin(annotation) is typing.Annotated:
        annotation = typing.get_args(annotation)[0]
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        members = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(members) == 1:
            return _unwrap(members[0])
    return annotation


def _as_model(annotation: Any) -> type[BaseModel] | None:
    bare = _unwrap(annotation)
    if isinstance(bare, type) and issubclass(bare, BaseModel):
        return bare
    return None
