"""What a command loads before its work: `sandgrain --help` imports no domain's command module
and none of the heavy libraries, a command's help does not load the search kernels, and a
command whose options are left out or given as strings does not import pydantic (typer's
converters). How long it takes is measured by ``benchmarks/cli_startup.py``, not here."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import typer
from typer.models import OptionInfo

from sandgrain import registry
from sandgrain.cli import coercion

HEAVY = ("numpy", "numba", "pyarrow", "pysam", "fsspec", "pydantic", "fastapi", "rich.progress")


def _loaded(args: list[str], tmp_path, *, prefixes=HEAVY) -> tuple[list[str], str]:
    """Run ``sandgrain ARGS`` in a fresh interpreter; return the modules among ``prefixes`` and
    the ``sandgrain.cli.*`` modules it had imported, and its stdout."""
    code = (
        "import io, json, sys, contextlib\n"
        "from sandgrain.cli import main\n"
        "out = io.StringIO()\n"
        "with contextlib.redirect_stdout(out):\n"
        "    try:\n"
        f"        main({args!r})\n"
        "    except SystemExit:\n"
        "        pass\n"
        "print(json.dumps([sorted(sys.modules), out.getvalue()]))\n"
    )
    env = {**os.environ, "SANDGRAIN_HOME": str(tmp_path / "home"), "COLUMNS": "200"}
    env.pop("SANDGRAIN_STORE", None)
    run = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120
    )
    assert run.returncode == 0, run.stderr
    modules, stdout = json.loads(run.stdout.strip().splitlines()[-1])
    found = [m for m in modules if any(m == p or m.startswith(p + ".") for p in prefixes)]
    return found + [m for m in modules if m.startswith("sandgrain.cli.")], stdout


def test_root_help_lists_every_domain_and_imports_none(tmp_path):
    loaded, out = _loaded(["--help"], tmp_path)
    for domain in registry.domains():
        assert domain.name in out and domain.summary[:40] in out
    assert not [m for m in loaded if not m.startswith("sandgrain.cli.")], loaded
    # the interface modules (serve, store, progress, help labels) only; no domain's module
    assert {m for m in loaded if m.startswith("sandgrain.cli.")} <= {
        "sandgrain.cli.coercion",
        "sandgrain.cli.metavars",
        "sandgrain.cli.progress",
        "sandgrain.cli.serve",
        "sandgrain.cli.store",
    }


def test_a_command_help_loads_its_domain_only_and_no_kernels(tmp_path):
    loaded, out = _loaded(["guides", "offtargets", "--help"], tmp_path)
    assert "Cas-OFFinder" in out
    assert "sandgrain.cli.guides" in loaded
    assert "sandgrain.cli.beacon" not in loaded and "sandgrain.cli.genome" not in loaded
    assert not [m for m in loaded if m.split(".")[0] in ("numba", "pyarrow", "pysam", "pydantic")]


def test_genome_help_lists_the_index_command_of_the_guides_domain(tmp_path):
    loaded, out = _loaded(["genome", "--help"], tmp_path)
    assert "index" in out and "off-target site index" in out
    assert "sandgrain.cli.guides_index" in loaded
    assert not [m for m in loaded if m.split(".")[0] in ("numba", "pyarrow", "pysam")], loaded


def test_a_command_with_plain_options_does_not_import_pydantic(tmp_path):
    args = ["--executor", "serial", "--retries", "2", "genome", "list", "--json"]
    loaded, out = _loaded(args, tmp_path)
    assert json.loads(out) == []
    assert not [m for m in loaded if m.startswith("pydantic")], loaded


@pytest.mark.parametrize(
    ("kind", "info", "value"),
    [
        (str, {}, "NGG"),
        (str, {}, ""),
        (str, {}, " padded "),
        (int, {}, 4),
        (int, {}, -3),
        (int, {"min": 1}, 60),
        (int, {"min": 1}, 1),
        (int, {"min": 1000, "max": 10**9}, 256_000_000),
        (float, {}, 2.5),
        (float, {"min": 0.0}, 0.0),
        (int, {}, "4"),  # typed by the user
        (int, {}, "0"),
        (int, {"max": 5}, "5"),
        (int, {"min": 1000}, "256000000"),
        (int, {}, "999999999999999999"),
    ],
)
def test_a_plain_value_converts_as_typers_adapter_converts_it(kind, info, value):
    descriptor = _descriptor(kind, OptionInfo(**info))
    plain = coercion.plain_value(descriptor, value)
    assert plain is not coercion.NOT_PLAIN
    converted = _typer_converts(descriptor, value)
    assert plain == converted and type(plain) is type(converted)


@pytest.mark.parametrize(
    ("kind", "info", "value"),
    [
        (int, {}, "+4"),  # typer's adapter parses these: left to it
        (int, {}, " 4"),
        (int, {}, "4_0"),
        (int, {}, "007"),
        (int, {}, "-1"),
        (int, {}, "4.0"),
        (int, {}, "٤"),  # an Arabic-Indic digit
        (int, {}, "1" * 19),
        (int, {}, True),
        (int, {"min": 1}, 0),  # out of range: typer's adapter refuses it
        (int, {"min": 1}, "0"),
        (int, {"max": 5}, 6),
        (int, {"min": 1, "clamp": True}, 60),
        (float, {}, 2),  # an int for a float becomes 2.0
        (float, {}, "2.5"),
        (str, {}, b"NGG"),
        (str, {"parser": str.upper}, "ngg"),
        (bool, {}, "yes"),
        (list[str], {}, ["a"]),
    ],
)
def test_other_values_go_to_typers_adapter(kind, info, value):
    assert coercion.plain_value(_descriptor(kind, OptionInfo(**info)), value) is coercion.NOT_PLAIN


def test_an_int_option_typed_as_text_is_still_checked_by_typer(tmp_path):
    app = typer.Typer()

    @app.command()
    def cmd(width: int = typer.Option(60, "--width", min=1)) -> None:
        typer.echo(f"{width!r}")

    from typer.testing import CliRunner

    coercion.install()
    runner = CliRunner()
    assert runner.invoke(app, []).output.strip() == "60"
    assert runner.invoke(app, ["--width", "7"]).output.strip() == "7"
    assert runner.invoke(app, ["--width", "+7"]).output.strip() == "7"
    refused = runner.invoke(app, ["--width", "0"])
    assert refused.exit_code == 2 and "greater than or equal to 1" in refused.output


def _descriptor(kind, info):
    from typer._coercion import resolve_type_descriptor

    return resolve_type_descriptor(kind, info)


def _typer_converts(descriptor, value):
    """What typer's own converter (a pydantic adapter) makes of ``value``."""
    from typer._coercion import build_runtime_param

    return build_runtime_param(descriptor)._coerce_value(value, param=None, ctx=None)
