"""A small safe evaluator for GenICam SwissKnife/Converter formulas."""

from __future__ import annotations

import ast
import math
import operator
import re
from collections.abc import Callable, Mapping
from typing import Any

from .errors import GenICamError

_BINOPS: dict[type[ast.operator], Callable[[Any, Any], Any]] = {
    ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul,
    ast.Div: operator.truediv, ast.Mod: operator.mod, ast.Pow: operator.pow,
    ast.BitAnd: lambda a, b: int(a) & int(b), ast.BitOr: lambda a, b: int(a) | int(b),
    ast.BitXor: lambda a, b: int(a) ^ int(b), ast.LShift: lambda a, b: int(a) << int(b),
    ast.RShift: lambda a, b: int(a) >> int(b),
}
_CMPOPS: dict[type[ast.cmpop], Callable[[Any, Any], bool]] = {
    ast.Eq: operator.eq, ast.NotEq: operator.ne, ast.Lt: operator.lt, ast.LtE: operator.le,
    ast.Gt: operator.gt, ast.GtE: operator.ge,
}
_FUNCS: dict[str, Callable[..., Any]] = {
    "ABS": abs, "SQRT": math.sqrt, "TRUNC": math.trunc, "FLOOR": math.floor,
    "CEIL": math.ceil, "ROUND": round, "LN": math.log, "LG": math.log10, "EXP": math.exp,
}


def _to_python(formula: str) -> str:
    text = formula.replace("&&", " and ").replace("||", " or ")
    text = re.sub(r"(?<![<>=!])=(?!=)", "==", text)
    text = text.replace("<>", "!=")
    return text


def evaluate(formula: str, names: Mapping[str, float]) -> float:
    """The value of ``formula`` with ``names`` bound; GenICamError when unsupported."""
    try:
        tree = ast.parse(_to_python(formula), mode="eval")
    except SyntaxError:
        raise GenICamError(f"formula {formula!r} is not supported") from None

    def ev(node: ast.AST) -> Any:
        if isinstance(node, ast.Expression):
            return ev(node.body)
        if isinstance(node, ast.Constant) and isinstance(node.value, int | float):
            return node.value
        if isinstance(node, ast.Name):
            if node.id in names:
                return names[node.id]
            if node.id == "PI":
                return math.pi
            raise GenICamError(f"formula {formula!r}: unknown name {node.id}")
        if isinstance(node, ast.BinOp) and type(node.op) in _BINOPS:
            return _BINOPS[type(node.op)](ev(node.left), ev(node.right))
        if isinstance(node, ast.UnaryOp):
            value = ev(node.operand)
            if isinstance(node.op, ast.USub):
                return -value
            if isinstance(node.op, ast.UAdd):
                return value
            if isinstance(node.op, ast.Invert):
                return ~int(value)
            if isinstance(node.op, ast.Not):
                return not value
        if isinstance(node, ast.BoolOp):
            values = [ev(v) for v in node.values]
            return all(values) if isinstance(node.op, ast.And) else any(values)
        if isinstance(node, ast.Compare) and len(node.ops) == 1 and type(node.ops[0]) in _CMPOPS:
            return _CMPOPS[type(node.ops[0])](ev(node.left), ev(node.comparators[0]))
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
                and node.func.id in _FUNCS):
            return _FUNCS[node.func.id](*[ev(a) for a in node.args])
        raise GenICamError(f"formula {formula!r}: {type(node).__name__} is not supported")

    try:
        return float(ev(tree))
    except (ZeroDivisionError, ValueError, OverflowError) as exc:
        raise GenICamError(f"formula {formula!r} failed: {exc}") from None
