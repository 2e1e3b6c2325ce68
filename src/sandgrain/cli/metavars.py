"""What ``--help`` says a parameter takes, the way git's and samtools' help say it.

A flag (``--quiet``, ``--help``) shows no value; an option shows an upper-case noun saying what
to give (``--genome NAME``, ``-o FILE``, ``--retries N``, ``--strand [+|-]``); a positional
shows its name upper-cased, in the Usage line and in the Arguments panel alike
(``sandgrain genome region [OPTIONS] NAME REGION...``).

typer (0.24 and later) labels every parameter with its Python type instead (``<bool>``,
``<str>``, ``<list[str]>``, flags and ``--help`` included) and wraps a required positional in
braces in the Usage line (``{name}``). :func:`install` has every parameter typer builds, on
every command of every domain, take a metavar when it was given none (:func:`default_metavar`:
a choice its ``[a|b]``, a path ``FILE`` or ``DIR``, an ``int`` ``N``, a ``float`` ``X``,
anything else the option's name upper-cased; a positional its name upper-cased, ``...`` after
one that takes several), shows no value for a flag, and writes positionals in the Usage line
as click does (``NAME``, ``[NAME]``, ``NAME...``). A command sets ``metavar=`` on an option
where the default does not say what to give (``--executor SPEC``, ``--reads FASTQ``).
``tests/cli/test_help.py`` walks every command's help.

Where typer has no such machinery (another version), :func:`install` does nothing.
"""

from __future__ import annotations

import functools
from typing import Any, get_args

try:
    from typer import core
    from typer._param_types import choice_as_str
except ImportError:  # pragma: no cover - a typer that labels parameters otherwise
    core = None

__all__ = ["default_metavar", "install"]

_NUMBER = {int: "N", float: "X"}


def _element(annotation: Any) -> Any:
    args = get_args(annotation)
    return args[0] if len(args) == 1 else annotation


def default_metavar(param: Any) -> str | None:
    """The metavar ``--help`` shows for a typer parameter given none: ``None`` for a flag."""
    if getattr(param, "is_flag", False) or getattr(param, "count", False):
        return None
    if param.param_type_name == "argument":
        name = (param.name or "ARG").upper()
        return name if param.nargs == 1 else f"{name}..."
    descriptor = param.type_descriptor
    if descriptor.is_choice:
        return "[" + "|".join(choice_as_str(c) for c in descriptor.choices or ()) + "]"
    if descriptor.is_path or descriptor.is_file:
        info = descriptor.parameter_info
        return "DIR" if getattr(info, "file_okay", True) is False else "FILE"
    kind = _element(descriptor.annotation) if descriptor.is_list else descriptor.annotation
    if kind in _NUMBER:
        return _NUMBER[kind]
    longest = max(param.opts, key=len, default=param.name or "VALUE")
    return longest.lstrip("-").upper()


def _no_value_for_flags(display_type_rich: Any) -> Any:
    @functools.wraps(display_type_rich)
    def display(self: Any, ctx: Any) -> str | None:
        if self.is_flag or self.count:
            return None
        return display_type_rich(self, ctx)

    return display


def _with_metavar(init: Any) -> Any:
    @functools.wraps(init)
    def construct(self: Any, *args: Any, **kwargs: Any) -> None:
        init(self, *args, **kwargs)
        if self.metavar is None:
            self.metavar = default_metavar(self)
        elif self.param_type_name == "argument" and self.nargs != 1 and "..." not in self.metavar:
            self.metavar += "..."

    construct.sandgrain_metavars = True  # type: ignore[attr-defined]
    return construct


def _argument_usage(self: Any) -> str:
    name = self.display_name_raw
    return name if self.required else f"[{name}]"


def install() -> None:
    """Patch typer's parameters as the module docstring says; a second call changes nothing."""
    if core is None or not hasattr(core.TyperArgument, "_usage_display_name"):
        return
    if getattr(core.TyperOption.__init__, "sandgrain_metavars", False):
        return
    core.TyperOption.__init__ = _with_metavar(core.TyperOption.__init__)
    core.TyperArgument.__init__ = _with_metavar(core.TyperArgument.__init__)
    core.TyperOption.display_type_rich = _no_value_for_flags(core.TyperOption.display_type_rich)
    # the Arguments panel shows the metavar as the name: no type column beside it
    core.TyperArgument.display_type_rich = lambda self, ctx: None
    core.TyperArgument._usage_display_name = _argument_usage
