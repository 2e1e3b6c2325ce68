"""Plain parameter values skip typer's pydantic adapters.

typer (0.25 and later) converts each parameter's value with a pydantic ``TypeAdapter`` that it
builds the first time the parameter is processed, for every option of the command being run,
given or not, ``--help`` included: so every command imported pydantic (about 0.1 s) and built an
adapter per option (a few ms each) before its work began. :func:`install` has typer build a
stand-in instead, which builds typer's adapter only for a value that is not *plain*. Plain
values are those whose conversion is known without the adapter (:func:`plain_value`): a string
for a ``str`` parameter and an ``int`` (``float``) for an ``int`` (``float``) parameter (both
returned as they are: the defaults), and a string of decimal digits without sign, spaces,
underscores or leading zeros for an ``int`` parameter (``-m 4``: its ``int``); the last two
within the parameter's range, and none for a parameter with a parser, a path, a file or a
choice. An option left out (``None``) never reaches a converter: typer returns it first. Every
other value (``+4``, ``4_0``, a value out of range, a list) is converted by typer's own adapter,
so results and messages stay typer's. ``tests/cli/test_startup.py`` holds the two together.

Where typer has no such machinery (another version), :func:`install` does nothing.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any

try:
    from typer import core
    from typer._coercion import RuntimeParam, build_runtime_param
except ImportError:  # pragma: no cover - a typer that converts values otherwise
    RuntimeParam = build_runtime_param = None

__all__ = ["NOT_PLAIN", "install", "plain_value"]

#: What :func:`plain_value` returns for a value typer's adapter must convert.
NOT_PLAIN = object()

_DECIMAL = re.compile(r"0|[1-9][0-9]{0,17}")  # [0-9] is ASCII; 18 digits fit an int64


def plain_value(descriptor: Any, value: Any) -> Any:
    """What typer's adapter for a parameter (its ``type_descriptor``) makes of ``value``, where
    that is known without building the adapter; else :data:`NOT_PLAIN`."""
    info = descriptor.parameter_info
    if getattr(info, "parser", None) is not None or getattr(info, "click_type", None) is not None:
        return NOT_PLAIN
    if descriptor.is_file or descriptor.is_path or descriptor.is_choice:
        return NOT_PLAIN
    kind = descriptor.annotation
    if kind is str:
        return value if type(value) is str else NOT_PLAIN
    if kind not in (int, float) or info.clamp:
        return NOT_PLAIN
    if type(value) is str and kind is int and _DECIMAL.fullmatch(value):
        value = int(value)
    if type(value) is not kind:
        return NOT_PLAIN
    if (info.min is not None and value < info.min) or (info.max is not None and value > info.max):
        return NOT_PLAIN  # typer's adapter says why
    return value


if RuntimeParam is not None:

    @dataclasses.dataclass(frozen=True)
    class _OnFirstValue(RuntimeParam):
        """A parameter's converter until a value needs typer's, which then replaces it."""

        descriptor: Any = None

        def _coerce_value(self, value: Any, param: Any, ctx: Any) -> Any:
            converted = plain_value(self.descriptor, value)
            if converted is not NOT_PLAIN:
                return converted
            param._runtime_param = build_runtime_param(self.descriptor)
            return param._runtime_param._coerce_value(value, param=param, ctx=ctx)

    def _stand_in(descriptor: Any) -> Any:
        return _OnFirstValue(
            parameter_info=descriptor.parameter_info,
            annotation=descriptor.annotation,
            descriptor=descriptor,
        )


def install() -> None:
    """Have typer give each parameter the stand-in converter (see the module docstring); a
    second call changes nothing."""
    if RuntimeParam is not None and getattr(core, "build_runtime_param", None) is not None:
        core.build_runtime_param = _stand_in
