"""Every command's help reads like git's or samtools': a flag shows no value, an option an
upper-case noun saying what to give, a positional its name (``NAME``, ``REGION...``) in the
Usage line and in the Arguments panel; no Python type labels (``<bool>``, ``<str>``)."""

from __future__ import annotations

import re

import pytest
import typer
from typer.testing import CliRunner

from sandgrain.cli import app, metavars

click = pytest.importorskip("typer._click")

_TYPE_LABEL = re.compile(r"<(bool|str|int|float|path|list|tuple|datetime|uuid)\b[^>]*>")
_BRACES = re.compile(r"\{[^}\s]+\}")


def _commands():
    """(path, command, context) of every command of the whole tree, groups included."""
    root = typer.main.get_command(app)

    def walk(command, path, parent):
        ctx = click.Context(command, info_name=path[-1], parent=parent, terminal_width=200)
        yield path, command, ctx
        for name in getattr(command, "commands", {}):
            yield from walk(command.get_command(ctx, name), [*path, name], ctx)

    return list(walk(root, ["sandgrain"], None))


COMMANDS = _commands()


def _help(path, monkeypatch) -> str:
    """``sandgrain ... --help`` as a terminal 200 columns wide shows it."""
    monkeypatch.setattr("typer.rich_utils.MAX_WIDTH", 200)  # no label cut by a narrow terminal
    result = CliRunner().invoke(app, [*path[1:], "--help"])
    assert result.exit_code == 0, result.output
    return result.output


def test_the_walk_reaches_every_domain():
    paths = {" ".join(p[1:]) for p, _, _ in COMMANDS}
    for command in (
        "genome region",
        "guides design",
        "beacon ingest",
        "strains nearest",
        "strains map export",
        "phenotypes code",
        "association forest",
        "calling run",
        "serve",
        "demo",
        "store gc",
    ):
        assert command in paths
    assert len(paths) > 50


@pytest.mark.parametrize(
    "path,command,ctx", COMMANDS, ids=[" ".join(p[1:]) or "sandgrain" for p, _, _ in COMMANDS]
)
def test_help_labels(path, command, ctx, monkeypatch):
    text = _help(path, monkeypatch)
    assert not _TYPE_LABEL.search(text), _TYPE_LABEL.search(text).group()
    usage = text.split("Usage:", 1)[1].splitlines()[0]
    assert not _BRACES.search(usage), usage  # {name}: typer's way, not click's or git's
    assert "[[" not in usage, usage  # an optional positional is bracketed once: [TEXT]
    for param in command.get_params(ctx):
        if param.hidden:
            continue
        if getattr(param, "is_flag", False) or getattr(param, "count", False):
            assert param.metavar is None, param.opts
            assert param.display_type_rich(ctx) is None, param.opts
            continue
        label = param.metavar
        assert label, (path, param.name)
        # a noun in capitals, a choice [a|b], or alternatives of those (FASTA|NAME)
        assert label.startswith("[") or label == label.upper(), (path, param.name, label)
        if param.param_type_name == "argument":
            assert label in usage, (path, label)


def test_a_command_reads_like_samtools(monkeypatch):
    text = _help(["sandgrain", "genome", "region"], monkeypatch)
    assert "Usage: sandgrain genome region [OPTIONS] NAME REGION..." in text
    assert re.search(r"--strand\s+\[\+\|-\]", text) and re.search(r"--width\s+N\b", text)
    assert re.search(r"\*\s+REGION\.\.\.\s+chrom:start-end", text)
    assert re.search(r"--help\s+-h\s+Show this message", text)  # a flag: nothing between

    text = _help(["sandgrain"], monkeypatch)
    assert re.search(r"--executor\s+SPEC\s", text) and re.search(r"--retries\s+N\s", text)
    assert re.search(r"--version\s+Print the version", text)


def test_default_metavars():
    design = next(c for p, c, _ in COMMANDS if p == ["sandgrain", "guides", "design"])
    by_name = {p.name: p for p in design.params}
    assert by_name["max_mismatches"].metavar == "N"  # int
    assert by_name["genome"].metavar == "NAME"  # set by the command
    assert by_name["primers"].metavar is None  # a flag
    assert metavars.default_metavar(by_name["region"]) == "REGION"  # str: its name
    simulate = next(c for p, c, _ in COMMANDS if p == ["sandgrain", "strains", "simulate"])
    rate = next(p for p in simulate.params if p.name == "rate")
    assert metavars.default_metavar(rate) == "X"  # float


def test_the_strains_commands_spell_their_options_alike():
    """An option of several strains commands has the same short form and label in each:
    ``-c COLLECTION`` everywhere (``add``, ``mutations`` and ``qc`` lacked ``-c``); a filter
    by QC status is ``--qc STATUSES``."""
    spellings: dict[str, set] = {}
    for path, command, ctx in COMMANDS:
        if path[1:2] != ["strains"]:
            continue
        for param in command.get_params(ctx):
            if param.param_type_name != "option" or param.name == "help":
                continue
            opts = [*param.opts, *param.secondary_opts]
            shorts = tuple(sorted(o for o in opts if not o.startswith("--")))
            for long in (o for o in opts if o.startswith("--")):
                spellings.setdefault(long, set()).add(shorts)
        if any(p.name == "collection" for p in command.get_params(ctx)):
            option = next(p for p in command.get_params(ctx) if p.name == "collection")
            assert "-c" in option.opts, path
            # several collections (over stores) read STORE#NAME; one collection, COLLECTION
            assert option.metavar == ("[STORE#]NAME" if option.multiple else "COLLECTION"), path
    assert {long: s for long, s in spellings.items() if len(s) > 1} == {}
    assert spellings["--collection"] == {("-c",)} and spellings["--qc"] == {()}
