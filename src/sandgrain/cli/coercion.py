"""Parameter values that convert to themselves skip typer's pydantic adapters.

typer (0.25 and later) converts each parameter's value with a pydantic ``TypeAdapter`` that it
builds the first time the parameter is processed, for every option of the command being run,
given or not, ``--help`` included: so every command imported pydantic (about 0.1 s) and built an
adapter per option (a few ms each) before its work began. :func:`install` has typer build a
stand-in instead, which builds typer's adapter only for a value that needs converting. The
values returned as they are, which the adapter would return unchanged, are: a string for a
``str`` parameter, and an ``int`` (``float``) for an ``int`` (``float``) parameter without a
parser and within its range (the defaults). An option left out (``None``) never reaches a
converter: typer returns it first. Every other value (``-m 4`` for an ``int``, a list, a path, a
choice) is converted by typer's own adapter, so results and messages stay typer's.

Where typer has no such machinery (another version), :func:`install` does nothing.
"""

from __future__ import annotations

import dataclasses
from typing import Any

try:
    from typer import core
    from typer._coercion import RuntimeParam, build_runtime_param
except ImportError:  # pragma: no cover - a typer that converts values otherwise
    RuntimeParam = build_runtime_param = None

__all__ = ["install", "returns_itself"]


def returns_itself(descriptor: Any, value: Any) -> bool:
    """Whether typer's adapter for a parameter (its ``type_descriptor``) would return ``value``
    unchanged, known without building the adapter."""
    info = descriptor.parameter_info
    if getattr(info, "parser", None) is not None or getattr(info, "click_type", None) is not None:
        return False
    if descriptor.is_file or descriptor.is_path or descriptor.is_choice:
        return False
    kind = descriptor.annotation
    if kind is str:
        return type(value) is str
    if kind in (int, float) and type(value) is kind and not info.clamp:
        return (info.min is None or value >= info.min) and (info.max is None or value <= info.max)
    return False


if RuntimeParam is not None:

    @dataclasses.dataclass(frozen=True)
    class _OnFirstValue(RuntimeParam):
        """A parameter's converter until a value needs typer's, which then replaces it."""

        descriptor: Any = None

        def _coerce_value(self, value: Any, param: Any, ctx: Any) -> Any:
            if returns_itself(self.descriptor, value):
                return value
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
