"""Plain-language messages declared next to the config fields they belong to.

pydantic's own messages ("Input should be a valid integer") say neither what
a setting means nor how to fix it. A field annotated with :class:`Hint`
reports one message of ours instead, whatever failed inside it; validators
raise :func:`problem` (one place) or :func:`problems_at` (several places
below the value being validated). :mod:`.problems` turns them into lines.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any, NoReturn

from pydantic import BeforeValidator, GetCoreSchemaHandler, ValidationError
from pydantic_core import CoreSchema, InitErrorDetails, PydanticCustomError, core_schema

#: The pydantic error type of every message podioc writes itself.
ERROR_TYPE = "podioc"


def problem(text: str, fix: str = "") -> PydanticCustomError:
    """An error with our message (``text``) and fix, at the place being validated."""
    return PydanticCustomError(ERROR_TYPE, "{problem}", {"problem": text, "fix": fix})


Found = tuple[tuple[str | int, ...], Any, str, str]


def problems_at(found: Iterable[Found], also: ValidationError | None = None) -> NoReturn:
    """Raise several errors at once, each ``(location below this value, value, text, fix)``,
    after those of ``also`` (errors pydantic found in the same value)."""
    details: list[InitErrorDetails] = []
    for error in also.errors() if also is not None else ():
        ctx = error.get("ctx") or {}
        kind = (problem(str(ctx.get("problem", error["msg"])), str(ctx.get("fix", "")))
                if error["type"] == ERROR_TYPE else
                PydanticCustomError(error["type"], "{msg}", {**ctx, "msg": error["msg"]}))
        details.append(InitErrorDetails(type=kind, loc=error["loc"], input=error["input"]))
    details += [InitErrorDetails(type=problem(text, fix), loc=loc, input=value)
                for loc, value, text, fix in found]
    raise ValidationError.from_exception_data("podioc config", details)


class Hint:
    """Field metadata: any error inside the value becomes ``problem`` + ``fix``.

    ``{value}`` in ``problem`` is replaced by the repr of the value given (None
    when the setting is missing). Put it last in ``Annotated[...]`` so that it
    covers the constraints before it.
    """

    def __init__(self, problem: str, fix: str = "") -> None:
        self.problem = problem
        self.fix = fix

    def message(self, value: Any) -> str:
        """The problem text for ``value``."""
        return self.problem.replace("{value}", repr(value))

    def __get_pydantic_core_schema__(self, source: Any,
                                     handler: GetCoreSchemaHandler) -> CoreSchema:
        return core_schema.no_info_wrap_validator_function(self._validate, handler(source))

    def _validate(self, value: Any, handler: Callable[[Any], Any]) -> Any:
        try:
            return handler(value)
        except ValidationError:
            raise problem(self.message(value), self.fix) from None

    def __repr__(self) -> str:
        return f"Hint({self.problem!r})"


def block(what: str, fix: str = "") -> BeforeValidator:
    """A block (``deploy:``, ``autosave:``...): empty or null means ``{}``; else a mapping."""

    def check(value: Any) -> Any:
        if value is None:
            return {}
        if not isinstance(value, Mapping):
            raise problem(f"must be a mapping {what}", fix)
        return value

    return BeforeValidator(check)
